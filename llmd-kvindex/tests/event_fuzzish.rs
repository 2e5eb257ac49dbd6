//! Hostile-input properties of the event decoder: no panics on any bytes,
//! on any truncation or mutation of a real payload, and no allocation out of
//! proportion to the payload (a counting allocator measures every decode).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use llmd_kvindex::events::{decode_event_batch, DecodeError, EventBatch};
use proptest::prelude::*;

/// Counts the bytes each thread allocates, so parallel tests do not see
/// each other's allocations.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with` fails only during thread teardown; nothing to measure then.
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialised thread-locals, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Decodes and checks that the largest single allocation and the total
/// allocated stay linear in the payload size.
fn decode_bounded(payload: &[u8]) -> Result<EventBatch, DecodeError> {
    LARGEST.with(|m| m.set(0));
    TOTAL.with(|t| t.set(0));
    let result = decode_event_batch(payload);
    let largest = LARGEST.with(Cell::get);
    let total = TOTAL.with(Cell::get);
    // A 1-byte hash decodes to a 32-byte value; events reserve at most one
    // ~340-byte slot per 15 payload bytes. Vec doubling adds a factor of 2.
    let bound = 64 * payload.len() + 4096;
    assert!(
        largest <= bound,
        "largest allocation {largest} for {} bytes",
        payload.len()
    );
    assert!(
        total <= 4 * bound,
        "total allocation {total} for {} bytes",
        payload.len()
    );
    if let Err(e) = &result {
        assert!(
            e.offset <= payload.len(),
            "offset {} past the end",
            e.offset
        );
        assert!(!e.to_string().is_empty());
    }
    result
}

const VECTORS: &str = include_str!("../../testdata/vllm-compat/vectors.json");

fn valid_payloads() -> &'static [Vec<u8>] {
    static PAYLOADS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PAYLOADS.get_or_init(parse_valid_payloads)
}

fn parse_valid_payloads() -> Vec<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors.json parses");
    v["event_cases"]
        .as_array()
        .expect("event_cases")
        .iter()
        .filter(|c| c["expected_error"].as_bool() == Some(false))
        .map(|c| {
            let h = c["payload_hex"].as_str().expect("payload_hex");
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

#[test]
fn every_truncation_of_every_valid_payload_is_an_error() {
    let payloads = valid_payloads();
    assert_eq!(payloads.len(), 35);
    for p in payloads {
        let batch = decode_bounded(p).expect("valid payload decodes");
        // The counter is live: a batch with events allocates their list.
        assert!(batch.events.is_empty() || LARGEST.with(Cell::get) > 0);
        for cut in 0..p.len() {
            assert!(
                decode_bounded(&p[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }
}

#[test]
fn huge_declared_lengths_are_rejected_without_allocating() {
    // array32 / map32 / str32 / bin32 / ext32 headers claiming ~4 GiB.
    for marker in [0xdd, 0xdf, 0xdb, 0xc6, 0xc9] {
        let mut p = vec![0x93, 0x00, marker, 0xff, 0xff, 0xff, 0xf0];
        p.extend_from_slice(&[0u8; 13]);
        let e = decode_bounded(&p).expect_err("huge length");
        assert_eq!(e.kind.code(), "huge_length", "marker {marker:02x}");
    }
}

#[test]
fn deep_nesting_is_rejected() {
    // An unknown map key whose value nests 10 000 arrays deep.
    let mut p = vec![0x93, 0x00, 0x91, 0x82, 0xa4];
    p.extend_from_slice(b"type");
    p.extend_from_slice(&[0xa2, b'B', b'S', 0xa1, b'x']);
    p.extend(std::iter::repeat_n(0x91, 10_000));
    p.extend_from_slice(&[0xc0, 0x00]);
    assert_eq!(
        decode_bounded(&p).expect_err("too deep").kind.code(),
        "too_deep"
    );
}

/// `[ts, [["BlockStored", <hashes>, nil, [], 16, nil, nil, nil, <extra>]], 0]`
/// with `n` hashes and `m` extra-key entries, each given by `hash` / `extra`
/// bytes.
fn tiny_values(n: u32, hash: &[u8], m: u32, extra: &[u8]) -> Vec<u8> {
    let mut p = vec![0x93, 0x00, 0x91, 0x99, 0xab];
    p.extend_from_slice(b"BlockStored");
    p.push(0xdd);
    p.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        p.extend_from_slice(hash);
    }
    p.extend_from_slice(&[0xc0, 0x90, 0x10, 0xc0, 0xc0, 0xc0, 0xdd]);
    p.extend_from_slice(&m.to_be_bytes());
    for _ in 0..m {
        p.extend_from_slice(extra);
    }
    p.push(0x00);
    p
}

#[test]
fn a_payload_of_tiny_values_is_refused_past_its_decode_budget() {
    use llmd_kvindex::events::{decode_budget, MAX_DECODE_EXPANSION};
    // 1-byte integers as hashes (32 bytes each decoded), nil or empty-array
    // extra keys (24 and 24 + 32 bytes): 32× and more their size.
    for p in [
        tiny_values(1 << 20, &[0x01], 0, &[]),
        tiny_values(0, &[], 1 << 20, &[0xc0]),
        tiny_values(0, &[], 1 << 19, &[0x91, 0x90]),
    ] {
        let e = decode_bounded(&p).expect_err("too large");
        assert_eq!(e.kind.code(), "too_large", "{e}");
        // What was built before the refusal stays within the budget (and
        // the vectors' doubling).
        let total = TOTAL.with(Cell::get);
        assert!(
            total <= 4 * decode_budget(p.len()),
            "{total} bytes for a {}-byte payload",
            p.len()
        );
    }
    // The same shapes with vLLM's 9-byte hashes decode.
    let mut hash = vec![0xcf];
    hash.extend_from_slice(&0x1234_5678_9abc_def0_u64.to_be_bytes());
    let batch = decode_bounded(&tiny_values(1 << 17, &hash, 0, &[])).unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(decode_budget(1 << 20), MAX_DECODE_EXPANSION << 20);
    assert_eq!(decode_budget(10), 64 << 10);
}

#[test]
fn a_long_vllm_prompt_decodes_within_its_budget() {
    use llmd_kvindex::events::{encode_event_batch, BlockStored, EventLayout, HashValue, KvEvent};
    // A 128k-token prefill with token ids of every width: 8,192 blocks.
    let tokens: Vec<u64> = (0..131_072u64).map(|i| (i * 7919) % 152_000).collect();
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: (0..8192u64)
            .map(|i| HashValue::Int(i128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .collect(),
        token_ids: tokens,
        block_size: 16,
        medium: Some("GPU".into()),
        ..BlockStored::default()
    });
    let batch = EventBatch {
        ts: 1.0,
        data_parallel_rank: Some(0),
        events: vec![ev],
        skipped_events: 0,
    };
    let p = encode_event_batch(&batch, EventLayout::V0_33);
    assert_eq!(decode_bounded(&p).unwrap(), batch);
    // Token ids below 128 take one byte each: still within the budget.
    let low = EventBatch {
        events: vec![KvEvent::BlockStored(BlockStored {
            block_hashes: vec![HashValue::Int(7)],
            token_ids: vec![5; 1 << 20],
            block_size: 16,
            ..BlockStored::default()
        })],
        ..batch
    };
    let p = encode_event_batch(&low, EventLayout::V0_33);
    assert_eq!(decode_bounded(&p).unwrap(), low);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_bounded(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_root_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        // A plausible prefix ([ts, [event...) makes random bytes reach the
        // event decoder instead of failing at the root.
        let mut p = vec![0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0, 0, 0x91];
        p.extend_from_slice(&tail);
        let _ = decode_bounded(&p);
    }

    #[test]
    fn mutations_of_valid_payloads_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let payloads = valid_payloads();
        let mut p = payloads[which.index(payloads.len())].clone();
        for (at, byte) in edits {
            let i = at.index(p.len());
            p[i] = byte;
        }
        let _ = decode_bounded(&p);
    }
}
