//! Block hashing throughput: an 8k-token prompt in blocks of 16, for every
//! vLLM algorithm, next to raw SHA-256 / XXH3-128 over the very same payload
//! bytes (serialized beforehand, so only the hash is timed): the physical
//! limit of each algorithm.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::Digest as _;
use std::hint::black_box;

use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};

const PROMPT_TOKENS: usize = 8192;
const BLOCK_SIZE: usize = 16;
/// Llama 3 vocabulary size: token ids span every CBOR/pickle integer width.
const VOCAB: u64 = 128_256;

/// Seeded pseudo-random token ids (xorshift64*), reproducible across runs.
fn prompt() -> Vec<u32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..PROMPT_TOKENS)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % VOCAB) as u32
        })
        .collect()
}

fn hasher(algo: HashAlgo) -> BlockHasher {
    let version = if algo == HashAlgo::Sha256Cbor64Bit { "0.10.1.1" } else { "0.33.0" };
    let cfg = HasherConfig::for_vllm(version, algo, BLOCK_SIZE, Some("42")).expect("valid config");
    BlockHasher::new(cfg).expect("valid hasher")
}

fn raw_hash(algo: HashAlgo, payloads: &[Vec<u8>]) -> u64 {
    let mut acc = 0u64;
    for p in payloads {
        acc ^= match algo {
            HashAlgo::Xxhash | HashAlgo::XxhashCbor => xxhash_rust::xxh3::xxh3_128(p) as u64,
            _ => {
                let d = sha2::Sha256::digest(p);
                u64::from_be_bytes(d[24..].try_into().expect("8 bytes"))
            }
        };
    }
    acc
}

fn hashing(c: &mut Criterion) {
    let tokens = prompt();
    let extras = RequestExtras::default();
    let mut group = c.benchmark_group("hashing");
    group.throughput(Throughput::Elements(PROMPT_TOKENS as u64));
    for algo in HashAlgo::ALL {
        let h = hasher(algo);
        group.bench_function(BenchmarkId::new("block_keys", algo), |b| {
            b.iter(|| h.block_keys(black_box(&tokens), &extras).expect("hashes"))
        });
        let payloads: Vec<Vec<u8>> = h
            .trace(&tokens, &extras)
            .expect("trace")
            .into_iter()
            .map(|t| t.payload)
            .collect();
        let raw = match algo {
            HashAlgo::Xxhash | HashAlgo::XxhashCbor => "raw_xxh3_128",
            _ => "raw_sha256",
        };
        group.bench_function(BenchmarkId::new(raw, algo), |b| {
            b.iter(|| raw_hash(algo, black_box(&payloads)))
        });
    }
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
