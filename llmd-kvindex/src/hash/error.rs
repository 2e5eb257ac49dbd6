//! Errors of the hashing module.

use super::config::{HashAlgo, VllmVersion};

/// Why a hasher could not be configured or a request could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The hash block size was 0.
    #[error("hash block size must be at least 1 token")]
    ZeroBlockSize,
    /// An algorithm name that vLLM does not know or that cannot be reproduced.
    #[error("unknown or unsupported prefix-caching hash algorithm {0:?} (supported: sha256, sha256_cbor, xxhash, xxhash_cbor, sha256_cbor_64bit)")]
    UnknownAlgo(String),
    /// A version string that is not of the form `0.33.0` / `0.10.1.1`.
    #[error("invalid vLLM version {0:?} (expected e.g. \"0.33.0\" or \"0.10.1.1\")")]
    InvalidVersion(String),
    /// A vLLM release outside the range this crate reproduces.
    #[error("vLLM {0} is not supported (supported: 0.10.0 to 0.33.0)")]
    UnsupportedVersion(VllmVersion),
    /// The algorithm does not exist (or has other semantics) in that release.
    #[error("hash algorithm {algo} is not available in vLLM {version} (sha256_cbor_64bit: 0.10.0-0.10.1.1; sha256, sha256_cbor: 0.10.2+; xxhash, xxhash_cbor: 0.13.0+)")]
    AlgoNotAvailable {
        /// The requested algorithm.
        algo: HashAlgo,
        /// The configured release.
        version: VllmVersion,
    },
    /// The seed is unset and vLLM draws a random NONE_HASH per process.
    #[error("vLLM {version} with {algo} and PYTHONHASHSEED unset uses a random NONE_HASH per engine process: its hashes cannot be reproduced (set PYTHONHASHSEED on the engines, or key the index by request keys)")]
    RandomNoneHash {
        /// The requested algorithm.
        algo: HashAlgo,
        /// The configured release.
        version: VllmVersion,
    },
    /// The extra-key schema of the configuration is not the one of its release.
    #[error("extra-key schema {schema} does not match vLLM {version} (which uses {expected})")]
    SchemaMismatch {
        /// The configured schema.
        schema: &'static str,
        /// The schema of `version`.
        expected: &'static str,
        /// The configured release.
        version: VllmVersion,
    },
    /// The request uses a LoRA adapter but lacks what the schema hashes.
    #[error(
        "the extra-key schema {schema} hashes the LoRA {field}, but the request's LoRA has none"
    )]
    MissingLoraField {
        /// The schema that needs the field.
        schema: &'static str,
        /// `"int id"`, `"name"` or `"path"`.
        field: &'static str,
    },
    /// Multimodal items must come in placeholder order and cover at least one token.
    #[error("multimodal item {index} is invalid: {reason}")]
    InvalidMmItem {
        /// Position of the item in `RequestExtras::mm_items`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The prompt embeddings do not cover the hashed blocks.
    #[error("prompt embeddings have {rows} rows of {row_bytes} bytes, but block tokens up to {needed} are hashed")]
    EmbeddingsTooShort {
        /// Rows present.
        rows: usize,
        /// Bytes per row.
        row_bytes: usize,
        /// Rows needed.
        needed: usize,
    },
    /// `PromptEmbeds::row_bytes` was 0.
    #[error("prompt embeddings must have a non-zero row size")]
    ZeroEmbeddingRow,
    /// A payload component exceeds what the serialization formats can express.
    #[error("{0} is too large to serialize")]
    TooLarge(&'static str),
}
