//! Decoded KV-cache events: the shapes of vLLM's `EventBatch` (SPEC §4),
//! normalised over every release's layout.

use crate::types::BlockKey;

/// One decoded `EventBatch`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventBatch {
    /// `time.time()` of the batch (float64 on the wire; integers accepted).
    pub ts: f64,
    /// Data-parallel rank of the publisher; `None` when absent or nil (vLLM 0.9.0).
    pub data_parallel_rank: Option<i64>,
    /// Known events in occurrence order.
    pub events: Vec<KvEvent>,
    /// Events with an unknown tag, skipped without failing the batch.
    pub skipped_events: u32,
}

/// One known event.
// Events are stored once per batch and moved rarely; boxing BlockStored
// would add an allocation per event on the decode path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum KvEvent {
    /// Blocks committed to the prefix cache.
    BlockStored(BlockStored),
    /// Blocks evicted.
    BlockRemoved(BlockRemoved),
    /// The publisher dropped its whole prefix cache.
    AllBlocksCleared,
}

/// A hash as published: an integer of any width and sign, or raw digest bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashValue {
    /// An integer hash (u64, or a signed 64-bit `builtin` hash).
    Int(i128),
    /// Raw digest bytes (`VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0`).
    Bytes(Vec<u8>),
}

impl HashValue {
    /// The 64-bit key of SPEC §2.6: `v mod 2^64` for integers, the last 8
    /// bytes big-endian (left-padded with zeros) for byte strings.
    pub fn key(&self) -> BlockKey {
        match self {
            HashValue::Int(v) => BlockKey(*v as u64),
            HashValue::Bytes(b) => {
                let mut buf = [0u8; 8];
                let tail = &b[b.len().saturating_sub(8)..];
                buf[8 - tail.len()..].copy_from_slice(tail);
                BlockKey(u64::from_be_bytes(buf))
            }
        }
    }
}

/// An opaque item of an `extra_keys` entry (SPEC §4.5 rule 9).
#[derive(Clone, Debug, PartialEq)]
pub enum ExtraValue {
    /// msgpack nil.
    Nil,
    /// Any integer.
    Int(i128),
    /// A UTF-8 string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A nested array.
    Array(Vec<ExtraValue>),
}

/// `BlockStored`: every field of every release; absent fields are `None`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BlockStored {
    /// Published hashes of the stored blocks, in chain order.
    pub block_hashes: Vec<HashValue>,
    /// Published hash of the block before `block_hashes[0]`; `None` from block 0.
    /// Kept as published; read it through [`BlockStored::parent`].
    pub parent_block_hash: Option<HashValue>,
    /// Tokens from the first to the last stored block.
    pub token_ids: Vec<u64>,
    /// Tokens per block of this KV-cache group.
    pub block_size: i64,
    /// Integer LoRA adapter id (deprecated by vLLM).
    pub lora_id: Option<i64>,
    /// `"GPU"`, `"CPU"`, `"STORAGE"` (any case) or `None`.
    pub medium: Option<String>,
    /// LoRA adapter name (≥ 0.14).
    pub lora_name: Option<String>,
    /// One entry per published block: nil or the block's extra-key array (≥ 0.17).
    pub extra_keys: Option<Vec<Option<Vec<ExtraValue>>>>,
    /// KV-cache group (≥ 0.20).
    pub group_idx: Option<i64>,
    /// KV-cache spec kind, e.g. `full_attention` (≥ 0.22).
    pub kv_cache_spec_kind: Option<String>,
    /// Window of a sliding-window group (≥ 0.22).
    pub kv_cache_spec_sliding_window: Option<i64>,
    /// `"LOCAL"` / `"REMOTE"` for offloaded copies (≥ 0.26).
    pub locality: Option<String>,
    /// Opaque owner of an offloaded copy (≥ 0.29).
    pub ownership: Option<String>,
    /// Request session id (≥ 0.30).
    pub session_id: Option<String>,
    /// Per block, the lookahead tokens its hash covers (0.33).
    pub lookahead_token_ids: Option<Vec<Vec<u64>>>,
}

impl BlockStored {
    /// The parent block's hash, with llm-d's rule that an integer 0 means
    /// "no parent": llm-d-inference-sim publishes 0 for a chain's first block
    /// in the array form, where vLLM publishes nil. vLLM never publishes 0 as
    /// a real hash: its integer hashes are 64-bit digests (a zero digest has
    /// probability 2^-64) and its newer hashes are byte strings.
    pub fn parent(&self) -> Option<&HashValue> {
        self.parent_block_hash
            .as_ref()
            .filter(|h| !matches!(h, HashValue::Int(0)))
    }
}

/// `BlockRemoved`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BlockRemoved {
    /// Published hashes of the evicted blocks.
    pub block_hashes: Vec<HashValue>,
    /// Medium the blocks were evicted from.
    pub medium: Option<String>,
    /// KV-cache group (≥ 0.20).
    pub group_idx: Option<i64>,
    /// `"LOCAL"` / `"REMOTE"` (≥ 0.26).
    pub locality: Option<String>,
    /// Opaque owner (≥ 0.29).
    pub ownership: Option<String>,
}
