//! Block hashing throughput: an 8k-token prompt in blocks of 16, for every
//! vLLM algorithm, next to raw SHA-256 / XXH3-128 over the very same payload
//! bytes (serialized beforehand, so only the hash is timed): the physical
//! limit of each algorithm. Two raw baselines: independent payloads (hashes
//! may overlap in the CPU) and chained ones (each hash waits for the previous
//! digest, as vLLM's chain must).

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
    let version = if algo == HashAlgo::Sha256Cbor64Bit {
        "0.10.1.1"
    } else {
        "0.33.0"
    };
    let cfg = HasherConfig::for_vllm(version, algo, BLOCK_SIZE, Some("42")).expect("valid config");
    BlockHasher::new(cfg).expect("valid hasher")
}

/// The low 64 bits of the raw hash of `payload`.
#[inline(always)]
fn raw(algo: HashAlgo, payload: &[u8]) -> u64 {
    match algo {
        HashAlgo::Xxhash | HashAlgo::XxhashCbor => xxhash_rust::xxh3::xxh3_128(payload) as u64,
        _ => {
            let d = sha2::Sha256::digest(payload);
            u64::from_be_bytes(d[24..].try_into().expect("8 bytes"))
        }
    }
}

/// Raw hashes of independent payloads: the CPU may overlap consecutive hashes.
fn raw_independent(algo: HashAlgo, payloads: &[Vec<u8>]) -> u64 {
    payloads.iter().fold(0, |acc, p| acc ^ raw(algo, p))
}

/// Raw hashes where each payload's address depends on the previous digest, as
/// in a real chain (the parent is part of the next payload): the latency
/// limit of chained hashing. `mask` is 0 at run time, unknown to the compiler.
fn raw_chained(algo: HashAlgo, payloads: &[Vec<u8>], mask: usize) -> u64 {
    let mut dep = 0u64;
    for i in 0..payloads.len() {
        dep = raw(algo, &payloads[i ^ (dep as usize & mask)]);
    }
    dep
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
        let name = match algo {
            HashAlgo::Xxhash | HashAlgo::XxhashCbor => "raw_xxh3_128",
            _ => "raw_sha256",
        };
        group.bench_function(BenchmarkId::new(name, algo), |b| {
            b.iter(|| raw_independent(algo, black_box(&payloads)))
        });
        group.bench_function(BenchmarkId::new(format!("{name}_chained"), algo), |b| {
            b.iter(|| raw_chained(algo, black_box(&payloads), black_box(0)))
        });
    }
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
