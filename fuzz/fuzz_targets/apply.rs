//! Fuzzes what the index does with whatever decodes: a batch of KV events
//! from the network applied to a small index (so eviction runs) in the key
//! mode the first byte picks, on two endpoints. No input may panic; the
//! index stays within its capacity; and every stored chain's lookup through
//! checkpoints answers exactly as the block-by-block walk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_kvindex::events::{decode_event_batch, KvEvent};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};
use llmd_kvindex::index::{IndexConfig, KeyMode, KvIndex, PrefixMatches};
use llmd_kvindex::BlockKey;

const MODEL: &str = "m";

fn mode(b: u8) -> KeyMode {
    match b % 3 {
        0 => {
            let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("42"))
                .expect("valid hasher config");
            KeyMode::EngineParity(BlockHasher::new(cfg).expect("valid hasher"))
        }
        1 => KeyMode::RouterKeys { block_size: 16 },
        _ => KeyMode::RouterKeys { block_size: 2 },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let Ok(batch) = decode_event_batch(bytes) else {
        return;
    };
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 64,
        key_mode: mode(first),
        ..IndexConfig::default()
    })
    .expect("valid config");
    let eps = [
        idx.register_endpoint("a:1").expect("slot"),
        idx.register_endpoint("b:1").expect("slot"),
    ];
    idx.apply_batch(eps[(first as usize / 3) % 2], MODEL, &batch);
    idx.apply_batch(eps[(first as usize / 6) % 2], MODEL, &batch);
    let stats = idx.stats();
    assert!(stats.entries <= stats.capacity, "{stats:?}");
    let (mut a, mut b) = (PrefixMatches::new(), PrefixMatches::new());
    for ev in &batch.events {
        let KvEvent::BlockStored(s) = ev else {
            continue;
        };
        let keys: Vec<BlockKey> = match idx.prompt_keys(MODEL, &s.token_ids, &RequestExtras::default()) {
            Ok(k) if matches!(first % 3, 1 | 2) => k,
            _ => s.block_hashes.iter().map(|h| h.key()).collect(),
        };
        // Twice: the second lookup reads the checkpoints the first wrote.
        for _ in 0..2 {
            idx.match_prefix(MODEL, &keys, &mut a);
            idx.match_prefix_walk(MODEL, &keys, &mut b);
            assert_eq!(a.as_slice(), b.as_slice());
        }
    }
});
