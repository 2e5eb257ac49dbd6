//! Prompt keys in the index's key mode.

use super::router::{router_chain, router_root};
use super::{IndexError, KeyMode, KvIndex};
use crate::hash::{RequestExtras, TokenId};
use crate::types::BlockKey;

impl KvIndex {
    /// The block keys of a prompt in this index's key mode: vLLM's keys
    /// (engine parity) or the router's own chain (router keys, approximate).
    /// Only full blocks get a key. In router modes only the LoRA adapter of
    /// `extras` (its name, else its id) enters the keys.
    pub fn prompt_keys<T: TokenId>(
        &self,
        model: &str,
        tokens: &[T],
        extras: &RequestExtras,
    ) -> Result<Vec<BlockKey>, IndexError> {
        match &self.cfg.key_mode {
            KeyMode::EngineParity(h) => Ok(h.block_keys(tokens, extras)?),
            KeyMode::RouterKeys { block_size } | KeyMode::Approximate { block_size } => {
                let lora = extras.lora.as_ref();
                let (name, id) = (
                    lora.and_then(|l| l.name.as_deref()),
                    lora.and_then(|l| l.id),
                );
                let mut keys = Vec::with_capacity(tokens.len() / block_size);
                router_chain(
                    router_root(model, name, id),
                    *block_size,
                    tokens.iter().map(|t| t.to_u64()),
                    &mut Vec::with_capacity((*block_size).min(tokens.len()) * 4),
                    &mut keys,
                );
                Ok(keys.into_iter().map(BlockKey).collect())
            }
        }
    }
}
