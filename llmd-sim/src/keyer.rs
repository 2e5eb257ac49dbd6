//! vLLM-exact block keys for the simulated engines, so that a scheduler
//! hashing prompts the vLLM way matches the keys the workers publish.

use llmd_kvindex::hash::{BlockHasher, HashAlgo, HashChain, HasherConfig, LoraRef, RequestExtras};

use crate::error::{Result, SimError};
use crate::tokens::{BlockKeyer, FastKeyer, KeyChain};

/// Keys as a given vLLM release computes them.
#[derive(Clone, Debug)]
pub struct VllmKeyer {
    hasher: BlockHasher,
}

impl VllmKeyer {
    /// A keyer for vLLM `version`, `--prefix-caching-hash-algo algo`,
    /// `--block-size block_size` and `PYTHONHASHSEED=seed`.
    pub fn new(version: &str, algo: &str, block_size: usize, seed: Option<&str>) -> Result<Self> {
        let bad = |e: String| SimError::Scenario(format!("engine hashing: {e}"));
        let algo: HashAlgo = algo
            .parse()
            .map_err(|e: llmd_kvindex::hash::HashError| bad(e.to_string()))?;
        let cfg = HasherConfig::for_vllm(version, algo, block_size, seed)
            .map_err(|e| bad(e.to_string()))?;
        let hasher = BlockHasher::new(cfg).map_err(|e| bad(e.to_string()))?;
        Ok(VllmKeyer { hasher })
    }
}

#[derive(Debug)]
struct VllmChain(HashChain);

impl KeyChain for VllmChain {
    fn extend(&mut self, tokens: &[u32], out: &mut Vec<u64>) -> std::result::Result<(), String> {
        let keys = self.0.extend(tokens).map_err(|e| e.to_string())?;
        out.extend(keys.iter().map(|k| k.0));
        Ok(())
    }
}

impl BlockKeyer for VllmKeyer {
    fn start_salted(
        &self,
        _block_size: usize,
        lora: Option<&str>,
        cache_salt: Option<&str>,
    ) -> Box<dyn KeyChain> {
        let extras = RequestExtras {
            cache_salt: cache_salt.map(str::to_string),
            lora: lora.map(|name| LoraRef {
                id: Some(lora_int_id(name)),
                name: Some(name.to_string()),
                path: Some(format!("/adapters/{name}")),
            }),
            ..RequestExtras::default()
        };
        Box::new(VllmChain(self.hasher.chain(extras)))
    }
}

/// vLLM numbers adapters from 1 in load order; the simulator derives a
/// stable id from the name instead.
fn lora_int_id(name: &str) -> i64 {
    1 + (crate::tokens::lora_salt(Some(name)) % 1_000_000) as i64
}

/// The keyer an engine config asks for: `fast` or a vLLM algorithm name.
pub fn for_engine(
    algo: &str,
    version: &str,
    block_size: usize,
    seed: Option<&str>,
) -> Result<Box<dyn BlockKeyer>> {
    if algo == "fast" {
        return Ok(Box::new(FastKeyer));
    }
    Ok(Box::new(VllmKeyer::new(version, algo, block_size, seed)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_vector() {
        let k = VllmKeyer::new("0.33.0", "sha256_cbor", 16, Some("42")).expect("keyer");
        let tokens: Vec<u32> = (1..=32).collect();
        let keys = k.keys(&tokens, 16, None).expect("keys");
        assert_eq!(keys[0], 16300212363532267629);
        let mut chain = k.start(16, None);
        let mut parts = Vec::new();
        chain.extend(&tokens[..5], &mut parts).expect("extend");
        chain.extend(&tokens[5..], &mut parts).expect("extend");
        assert_eq!(parts, keys);
        let with_lora = k.keys(&tokens, 16, Some("a")).expect("LoRA keys");
        assert_eq!(with_lora.len(), 2);
        assert_ne!(with_lora[0], keys[0]);
    }

    /// A salted request's keys are vLLM's (the `cache_salt` vectors of
    /// `testdata/vllm-compat`); an empty salt keys as none.
    #[test]
    fn cache_salt_keys_match_the_vectors() {
        let tokens: Vec<u32> = (1..=32).collect();
        for (version, want) in [
            ("0.30.0", [11292359283095282548, 7538109252485696977]),
            ("0.33.0", [14001779076879015449, 11658315540680974127]),
        ] {
            let k = VllmKeyer::new(version, "sha256_cbor", 16, Some("42")).expect("keyer");
            let mut salted = Vec::new();
            k.start_salted(16, None, Some("salt-1"))
                .extend(&tokens, &mut salted)
                .expect("extend");
            assert_eq!(salted, want, "{version}");
            let mut empty = Vec::new();
            k.start_salted(16, None, Some(""))
                .extend(&tokens, &mut empty)
                .expect("extend");
            assert_eq!(empty, k.keys(&tokens, 16, None).expect("keys"));
        }
    }
}
