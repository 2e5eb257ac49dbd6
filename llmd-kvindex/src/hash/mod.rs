//! vLLM-exact prefix-cache block hashing (vLLM SPEC §2).
//!
//! [`BlockHasher`] reproduces, bit for bit, the block hashes a vLLM engine
//! computes for its prefix cache and publishes in KV-cache events, for every
//! reproducible algorithm (`sha256`, `sha256_cbor`, `xxhash`, `xxhash_cbor`,
//! legacy `sha256_cbor_64bit`), seed (including vLLM's rule for an unset
//! `PYTHONHASHSEED`) and extra-key schema (LoRA, multimodal items, cache salt,
//! prompt embeddings) of vLLM 0.10.0 to 0.33.0.
//!
//! ```
//! use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};
//!
//! let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("42"))?;
//! let hasher = BlockHasher::new(cfg)?;
//! let tokens: Vec<u32> = (1..=32).collect();
//! let keys = hasher.block_keys(&tokens, &RequestExtras::default())?;
//! assert_eq!(keys[0].0, 16300212363532267629);
//! # Ok::<(), llmd_kvindex::hash::HashError>(())
//! ```
//!
//! How a block is hashed: the tuple `(parent, tokens, extra)` is serialized
//! (canonical CBOR, or pickle protocol 5 exactly as CPython's C pickler writes
//! it, frames and memo back-references included) into a buffer that is reused
//! for every block, then hashed once. Only full blocks are hashed; the chain
//! uses full digests; the published key is the last 8 bytes big-endian. The
//! payload tail that does not change between blocks (extra keys of a text or
//! LoRA request, the closing opcodes) is serialized once per request, and
//! tokens are encoded without branches on their width, so serialization costs
//! little next to the hash itself (see `benches/benches/hashing.rs`).
//!
//! Crates: SHA-256 comes from `sha2` (RustCrypto), which detects the CPU's SHA
//! extensions (x86 SHA-NI, ARMv8 SHA2) at run time through `cpufeatures` and
//! falls back to portable code elsewhere, so one portable binary runs at the
//! hardware limit on modern servers with no build flags. XXH3-128 comes from
//! `xxhash-rust`, a pure-Rust port that matches the reference implementation
//! (and thus Python's `xxhash.xxh3_128_digest`), needs no C toolchain and is
//! as fast as the C library on the short inputs block payloads are.

mod buf;
mod cbor;
mod chain;
mod config;
mod digest;
mod error;
mod extras;
mod hasher;
mod layout;
mod pickle;
mod session;
mod sha256;
mod tokens;

pub use chain::HashChain;
pub use config::{ExtraKeySchema, HashAlgo, HasherConfig, VllmVersion, UNSET_SEED};
pub use digest::{Digest, TokenId};
pub use error::HashError;
pub use extras::{ExtraKey, LoraRef, MmItem, PromptEmbeds, RequestExtras};
pub use hasher::{BlockHasher, BlockTrace};

#[cfg(test)]
mod tests;
