//! KV-event decoding throughput, in blocks per second, for a realistic
//! batch: 64 BlockStored events of 16 blocks (16 tokens each) as vLLM 0.33
//! (map form) and 0.22 (array form) publish it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llmd_kvindex::events::{
    decode_event_batch, encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue,
    KvEvent,
};

const EVENTS: usize = 64;
const BLOCKS_PER_EVENT: usize = 16;
const BLOCK_SIZE: usize = 16;

/// Seeded splitmix64, so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn realistic_batch() -> EventBatch {
    let mut rng = Rng(42);
    let events = (0..EVENTS)
        .map(|i| {
            KvEvent::BlockStored(BlockStored {
                block_hashes: (0..BLOCKS_PER_EVENT)
                    .map(|_| HashValue::Int(i128::from(rng.next())))
                    .collect(),
                // Half continue an earlier prefix, half start at block 0.
                parent_block_hash: (i % 2 == 1).then(|| HashValue::Int(i128::from(rng.next()))),
                // Token ids of a ~150k vocabulary.
                token_ids: (0..BLOCKS_PER_EVENT * BLOCK_SIZE)
                    .map(|_| rng.next() % 151_936)
                    .collect(),
                block_size: BLOCK_SIZE as i64,
                medium: Some("GPU".to_owned()),
                extra_keys: Some(vec![None; BLOCKS_PER_EVENT]),
                group_idx: Some(0),
                kv_cache_spec_kind: Some("full_attention".to_owned()),
                ..BlockStored::default()
            })
        })
        .collect();
    EventBatch {
        ts: 1_700_000_000.5,
        data_parallel_rank: Some(0),
        events,
        skipped_events: 0,
    }
}

fn events(c: &mut Criterion) {
    let batch = realistic_batch();
    let blocks = (EVENTS * BLOCKS_PER_EVENT) as u64;
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(blocks));
    for layout in [EventLayout::V0_33, EventLayout::V0_22] {
        let payload = encode_event_batch(&batch, layout);
        assert_eq!(
            decode_event_batch(&payload).map(|b| b.events.len()),
            Ok(EVENTS)
        );
        group.bench_with_input(
            BenchmarkId::new("decode", format!("{layout} ({} bytes)", payload.len())),
            &payload,
            |b, p| b.iter(|| decode_event_batch(black_box(p))),
        );
        group.bench_with_input(BenchmarkId::new("encode", layout), &batch, |b, batch| {
            b.iter(|| encode_event_batch(black_box(batch), layout))
        });
    }
    group.finish();
}

criterion_group!(benches, events);
criterion_main!(benches);
