//! llm-d's approximate prefix hashing (`dataproducer/prefixhash/hashing.go`), bit for bit:
//! `seed = xxh64(model ‖ cacheSalt)`, `c_i = xxh64(LE u32 tokens of block i)`,
//! `h_i = xxh64(LE64(c_i) ‖ LE64(h_{i-1}))`, `h_{-1} = seed`; the trailing
//! partial block is included.

use xxhash_rust::xxh64::{xxh64, Xxh64};

/// Block size floor applied at request time.
pub const MIN_BLOCK_SIZE: usize = 64;

/// The chain of block hashes for one prompt, at most `max_blocks` (0 = unlimited),
/// with the approximate producer's block-size floor ([`MIN_BLOCK_SIZE`]).
pub fn approx_block_hashes(
    model: &str,
    cache_salt: &str,
    tokens: &[u32],
    block_size: usize,
    max_blocks: usize,
) -> Vec<u64> {
    prefix_block_hashes(
        model,
        cache_salt,
        tokens,
        block_size.max(MIN_BLOCK_SIZE),
        max_blocks,
    )
}

/// The same chain for any block size ≥ 1 (llm-d's `prefixhash.GetBlockHashes`,
/// which the burst producer calls with its own `blockSizeTokens`).
pub fn prefix_block_hashes(
    model: &str,
    cache_salt: &str,
    tokens: &[u32],
    block_size: usize,
    max_blocks: usize,
) -> Vec<u64> {
    let block_size = block_size.max(1);
    let mut seed = Xxh64::new(0);
    seed.update(model.as_bytes());
    seed.update(cache_salt.as_bytes());
    let mut prev = seed.digest();
    let n = tokens.len().div_ceil(block_size);
    let n = if max_blocks > 0 { n.min(max_blocks) } else { n };
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::new();
    for chunk in tokens.chunks(block_size).take(n) {
        let c = xxh64(le_bytes(chunk, &mut buf), 0);
        let mut pair = [0u8; 16];
        pair[..8].copy_from_slice(&c.to_le_bytes());
        pair[8..].copy_from_slice(&prev.to_le_bytes());
        prev = xxh64(&pair, 0);
        out.push(prev);
    }
    out
}

/// The tokens as little-endian bytes: the slice itself on little-endian
/// targets (no copy), else a copy in `buf`.
#[inline]
fn le_bytes<'a>(tokens: &'a [u32], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if cfg!(target_endian = "little") {
        let _ = buf;
        // SAFETY: `u32` has no padding and every byte pattern is a valid
        // `u8`; the byte slice covers exactly the tokens' memory, is aligned
        // for `u8`, and borrows `tokens` for its whole lifetime. On a
        // little-endian target these are the tokens' LE encodings.
        unsafe { std::slice::from_raw_parts(tokens.as_ptr().cast::<u8>(), tokens.len() * 4) }
    } else {
        buf.clear();
        buf.extend(tokens.iter().flat_map(|t| t.to_le_bytes()));
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_shape() {
        let toks: Vec<u32> = (0..200).collect();
        let h = approx_block_hashes("m", "", &toks, 16, 0);
        // 16 is raised to 64; 200 tokens = 3 full blocks + a partial one.
        assert_eq!(h.len(), 4);
        // A prompt sharing the first two blocks shares the first two hashes only.
        let mut other = toks.clone();
        other[150] = 9999;
        let h2 = approx_block_hashes("m", "", &other, 64, 0);
        assert_eq!(h[..2], h2[..2]);
        assert_ne!(h[2], h2[2]);
        // Model and salt seed the chain.
        assert_ne!(approx_block_hashes("m2", "", &toks, 64, 0)[0], h[0]);
        assert_ne!(approx_block_hashes("m", "s", &toks, 64, 0)[0], h[0]);
        assert_eq!(approx_block_hashes("m", "", &toks, 64, 2).len(), 2);
    }

    #[test]
    fn matches_the_formula_by_hand() {
        let toks = [1u32, 2, 3];
        let seed = xxh64(b"model", 0);
        let c = xxh64(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], 0);
        let mut pair = c.to_le_bytes().to_vec();
        pair.extend_from_slice(&seed.to_le_bytes());
        assert_eq!(
            approx_block_hashes("model", "", &toks, 64, 0),
            vec![xxh64(&pair, 0)]
        );
    }
}
