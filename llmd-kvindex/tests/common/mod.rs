//! Helpers shared by the index's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig};
use llmd_kvindex::index::{IndexConfig, KeyMode, KvIndex};

/// Engine-parity keys of vLLM 0.33 (`sha256_cbor`, block size 16, seed 42).
pub fn parity_mode() -> KeyMode {
    let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("42")).unwrap();
    KeyMode::EngineParity(BlockHasher::new(cfg).unwrap())
}

/// An engine-parity index of `capacity` entries; `cfg` sets the rest.
pub fn parity_index_with(capacity: usize, cfg: IndexConfig) -> KvIndex {
    KvIndex::new(IndexConfig {
        capacity_blocks: capacity,
        key_mode: parity_mode(),
        ..cfg
    })
    .unwrap()
}

/// An engine-parity index of `capacity` entries, defaults otherwise.
pub fn parity_index(capacity: usize) -> KvIndex {
    parity_index_with(capacity, IndexConfig::default())
}

/// A batch of one event.
pub fn batch(ev: KvEvent) -> EventBatch {
    EventBatch {
        ts: 0.0,
        data_parallel_rank: Some(0),
        events: vec![ev],
        skipped_events: 0,
    }
}
