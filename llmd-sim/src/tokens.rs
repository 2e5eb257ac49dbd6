//! Cheap, deterministic token content and block keys.
//!
//! Token ids are a pure function of `(stream, position)`, so two prompts that
//! share a prefix stream share those token ids exactly, and nothing needs to
//! be stored between a request's arrival and its completion.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// SplitMix64 finaliser: a fast, well-mixed bijection on u64.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stream id derived from a label and two integers.
pub fn stream_id(label: u64, a: u64, b: u64) -> u64 {
    mix64(mix64(label ^ mix64(a)) ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// The token at `pos` of `stream`, in `[0, vocab)`.
pub fn token_at(stream: u64, pos: u64, vocab: u32) -> u32 {
    (mix64(stream ^ pos.wrapping_mul(0xA076_1D64_78BD_642F)) % u64::from(vocab.max(1))) as u32
}

/// Appends `len` tokens of `stream` starting at `start`.
pub fn push_tokens(out: &mut Vec<u32>, stream: u64, start: u64, len: u64, vocab: u32) {
    out.extend((start..start + len).map(|p| token_at(stream, p, vocab)));
}

/// A request's growing chain of block keys: tokens go in as they become
/// known; each completed block yields one key. A trailing partial block is
/// kept until it fills.
pub trait KeyChain: Send + std::fmt::Debug {
    /// Appends tokens, pushing the keys of the blocks they complete. An
    /// error (the hasher refused the request's extras) appends nothing.
    fn extend(&mut self, tokens: &[u32], out: &mut Vec<u64>) -> Result<(), String>;
}

/// How a worker turns block contents into the keys it publishes.
pub trait BlockKeyer: Send + Sync + std::fmt::Debug {
    /// A fresh chain for a request with `block_size`-token blocks and an
    /// optional LoRA adapter.
    fn start(&self, block_size: usize, lora: Option<&str>) -> Box<dyn KeyChain> {
        self.start_salted(block_size, lora, None)
    }

    /// As [`BlockKeyer::start`], for a request with vLLM's `cache_salt`
    /// (a non-empty salt keys the first block apart, so salted requests
    /// share cached blocks only with requests of the same salt).
    fn start_salted(
        &self,
        block_size: usize,
        lora: Option<&str>,
        cache_salt: Option<&str>,
    ) -> Box<dyn KeyChain>;

    /// Keys of every full block of `tokens` (convenience for tests and tools).
    fn keys(
        &self,
        tokens: &[u32],
        block_size: usize,
        lora: Option<&str>,
    ) -> Result<Vec<u64>, String> {
        let mut out = Vec::with_capacity(tokens.len() / block_size.max(1));
        self.start(block_size, lora).extend(tokens, &mut out)?;
        Ok(out)
    }
}

/// XXH3 over each block's token bytes, seeded by the parent key and the
/// adapter: fast, and a stand-in for any engine hash that chains blocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastKeyer;

#[derive(Debug)]
struct FastChain {
    bs: usize,
    salt: u64,
    parent: Option<u64>,
    pending: Vec<u32>,
}

impl FastChain {
    fn block(&mut self, tokens: &[u32]) -> u64 {
        let mut buf = [0u8; 1024];
        let seed = mix64(self.parent.unwrap_or(0x005E_ED0F_B10C) ^ self.salt);
        let k = if tokens.len() * 4 <= buf.len() {
            for (i, t) in tokens.iter().enumerate() {
                buf[i * 4..i * 4 + 4].copy_from_slice(&t.to_le_bytes());
            }
            xxh3_64_with_seed(&buf[..tokens.len() * 4], seed)
        } else {
            let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
            xxh3_64_with_seed(&bytes, seed)
        };
        self.parent = Some(k);
        k
    }
}

impl KeyChain for FastChain {
    fn extend(&mut self, mut tokens: &[u32], out: &mut Vec<u64>) -> Result<(), String> {
        if !self.pending.is_empty() {
            let take = (self.bs - self.pending.len()).min(tokens.len());
            self.pending.extend_from_slice(&tokens[..take]);
            tokens = &tokens[take..];
            if self.pending.len() < self.bs {
                return Ok(());
            }
            let block = std::mem::take(&mut self.pending);
            out.push(self.block(&block));
        }
        let mut chunks = tokens.chunks_exact(self.bs);
        for b in &mut chunks {
            out.push(self.block(b));
        }
        self.pending.extend_from_slice(chunks.remainder());
        Ok(())
    }
}

impl BlockKeyer for FastKeyer {
    fn start_salted(
        &self,
        block_size: usize,
        lora: Option<&str>,
        cache_salt: Option<&str>,
    ) -> Box<dyn KeyChain> {
        // Every block is seeded by its parent, so salting the chain keys
        // block 0 apart and with it every block after.
        let cache_salt = cache_salt
            .filter(|s| !s.is_empty())
            .map_or(0, |s| xxh3_64_with_seed(s.as_bytes(), 0x5A17));
        Box::new(FastChain {
            bs: block_size.max(1),
            salt: lora_salt(lora) ^ cache_salt,
            parent: None,
            pending: Vec::new(),
        })
    }
}

/// A per-request salt for LoRA adapters (0 for the base model).
pub fn lora_salt(lora: Option<&str>) -> u64 {
    lora.map_or(0, |name| xxh3_64_with_seed(name.as_bytes(), 0x10_4A))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stream_same_tokens_and_incremental_keys() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        push_tokens(&mut a, 7, 0, 64, 1000);
        push_tokens(&mut b, 7, 0, 30, 1000);
        push_tokens(&mut b, 7, 30, 34, 1000);
        assert_eq!(a, b);
        let whole = FastKeyer.keys(&a, 16, None).expect("keys");
        let mut chain = FastKeyer.start(16, None);
        let mut parts = Vec::new();
        for r in [0..7, 7..40, 40..64] {
            chain.extend(&a[r], &mut parts).expect("extend");
        }
        assert_eq!(whole, parts);
        assert_eq!(whole.len(), 4);
        assert_ne!(
            whole[0],
            FastKeyer.keys(&a, 16, Some("x")).expect("keys")[0]
        );
        let salted = |salt| {
            let mut out = Vec::new();
            FastKeyer
                .start_salted(16, None, Some(salt))
                .extend(&a, &mut out)
                .expect("extend");
            out
        };
        assert_eq!(salted(""), whole, "an empty salt is none");
        assert_ne!(salted("s")[0], whole[0]);
        assert_ne!(salted("s")[0], salted("t")[0]);
    }
}
