//! Longest consecutive prefix match per endpoint, tier-weighted.
//!
//! The walk visits blocks in order and stops as soon as no endpoint still
//! matches; it only probes the endpoint clusters that still have a matching
//! endpoint. Buckets of the blocks a few steps ahead are prefetched, so the
//! cache misses of consecutive blocks overlap instead of adding up.

use super::endpoints::EndpointId;
use super::keys::{fingerprint, model_seed, GROUPS_PER_CLUSTER, TIERS};
use super::KvIndex;
use crate::types::BlockKey;
use std::sync::atomic::Ordering;

/// Blocks staged (hashed and prefetched) at a time, one chunk ahead of the
/// walk: 16–31 blocks ahead covers a DRAM miss (~100 ns) at a few ns of work
/// per block, and is few enough that the prefetched lines stay in L1.
const CHUNK: usize = 16;
/// Staged blocks kept: the chunk being probed and the one ahead.
const RING: usize = 2 * CHUNK;
const RING_MASK: usize = RING - 1;

/// Fingerprints and home buckets of the blocks staged ahead of the walk.
#[derive(Clone, Debug)]
struct Ring {
    fps: [u64; RING],
    /// `homes[slot * nclusters + cluster]`.
    homes: Vec<usize>,
    nclusters: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            fps: [0; RING],
            homes: Vec::new(),
            nclusters: 0,
        }
    }
}

/// One endpoint's match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointMatch {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// Blocks 0 .. `consecutive_blocks` are all held by the endpoint.
    pub consecutive_blocks: u32,
    /// Sum over those blocks of the best tier weight the endpoint holds each in.
    pub weighted_score: f64,
}

/// Result of [`KvIndex::match_prefix`]; reuse one per thread so the hot path
/// does not allocate.
#[derive(Clone, Debug, Default)]
pub struct PrefixMatches {
    matches: Vec<EndpointMatch>,
    total_blocks: u32,
    ring: Ring,
    alive: Vec<u64>,
    clusters: Vec<usize>,
    counts: Vec<[u32; TIERS - 1]>,
}

impl PrefixMatches {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Blocks in the query.
    pub fn total_blocks(&self) -> u32 {
        self.total_blocks
    }

    /// Endpoints with at least one matched block, by endpoint id.
    pub fn iter(&self) -> impl Iterator<Item = &EndpointMatch> {
        self.matches.iter()
    }

    /// As a slice, by endpoint id.
    pub fn as_slice(&self) -> &[EndpointMatch] {
        &self.matches
    }

    /// The match of one endpoint, if it matched at least one block.
    pub fn get(&self, ep: EndpointId) -> Option<&EndpointMatch> {
        self.matches
            .binary_search_by_key(&ep, |m| m.endpoint)
            .ok()
            .map(|i| &self.matches[i])
    }

    /// Number of endpoints with a match.
    pub fn len(&self) -> usize {
        self.matches.len()
    }

    /// True when no endpoint matched block 0.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// Records endpoints in `bits` of `group` as matching `len` blocks.
    fn finish(
        &mut self,
        group: usize,
        mut bits: u64,
        len: u32,
        w: &[f64; TIERS],
        order: &[usize; TIERS],
    ) {
        while bits != 0 {
            let e = group * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let c = std::mem::take(&mut self.counts[e]);
            let others: u32 = c.iter().sum();
            let mut score = w[order[0]] * f64::from(len - others);
            for k in 1..TIERS {
                score += w[order[k]] * f64::from(c[k - 1]);
            }
            self.matches.push(EndpointMatch {
                endpoint: EndpointId(e as u16),
                consecutive_blocks: len,
                weighted_score: score,
            });
        }
    }
}

#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that never faults, whatever the
    // address; SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Stages blocks `from..to` (at most one chunk): their fingerprints and,
/// for every cluster still matching, their home buckets, which are
/// prefetched. A short loop of independent hashes, so the core overlaps the
/// multiply chains of all the blocks in the chunk.
#[inline(always)]
fn stage(
    index: &KvIndex,
    seed: u64,
    keys: &[BlockKey],
    from: usize,
    clusters: &[usize],
    ring: &mut Ring,
) {
    let geo = index.table.geometry();
    let to = keys.len().min(from + CHUNK);
    for (j, key) in keys.iter().enumerate().take(to).skip(from) {
        let fp = fingerprint(seed, key.0);
        let r = j & RING_MASK;
        ring.fps[r] = fp;
        for &c in clusters {
            let home = geo.locate(fp, c).home;
            ring.homes[r * ring.nclusters + c] = home;
            prefetch(index.table.bucket(home).as_ptr());
        }
    }
}

impl KvIndex {
    /// Longest consecutive prefix of `keys` (from block 0) held by each
    /// endpoint, with tier-weighted scores, written into `out`.
    /// Lock-free: never waits for writers.
    pub fn match_prefix(&self, model: &str, keys: &[BlockKey], out: &mut PrefixMatches) {
        out.matches.clear();
        out.total_blocks = keys.len().min(u32::MAX as usize) as u32;
        let slots = self.high_water.load(Ordering::Acquire);
        if keys.is_empty() || slots == 0 {
            return;
        }
        let groups = slots.div_ceil(64);
        let nclusters = groups.div_ceil(GROUPS_PER_CLUSTER);
        out.alive.clear();
        out.alive.resize(nclusters * GROUPS_PER_CLUSTER, !0);
        // Sized for every slot of the probed groups: an endpoint registered
        // after `high_water` was read may already show up in a mask.
        if out.counts.len() < out.alive.len() * 64 {
            out.counts.resize(out.alive.len() * 64, [0; TIERS - 1]);
        }
        out.clusters.clear();
        out.clusters.extend(0..nclusters);
        out.ring.nclusters = nclusters;
        out.ring.homes.resize(RING * nclusters, 0);
        let seed = model_seed(model);
        let geo = self.table.geometry();
        let (w, order) = (&self.weights, &self.tier_order);
        let top = order[0];
        let n = keys.len();
        // Fingerprints and homes are computed one chunk ahead (only as far
        // as the walk goes), so each bucket's miss overlaps the probes of the
        // blocks before it. A cluster staged for block j is still alive when
        // block j is probed or already dropped, never revived, so every home
        // the walk reads was staged.
        stage(self, seed, keys, 0, &out.clusters, &mut out.ring);
        for i in 0..n {
            if i % CHUNK == 0 {
                stage(self, seed, keys, i + CHUNK, &out.clusters, &mut out.ring);
            }
            let r = i & RING_MASK;
            let fp = out.ring.fps[r];
            let mut ci = 0;
            while ci < out.clusters.len() {
                let c = out.clusters[ci];
                let mut held = [[0u64; GROUPS_PER_CLUSTER]; TIERS];
                let home = out.ring.homes[r * nclusters + c];
                if self.table.bucket(home).gather(fp, c, &mut held) {
                    if let Some(alt) = geo.locate(fp, c).alt() {
                        self.table.bucket(alt).gather(fp, c, &mut held);
                    }
                }
                let mut cluster_alive = 0;
                for (gl, h) in (0..GROUPS_PER_CLUSTER).map(|gl| (gl, held.map(|t| t[gl]))) {
                    let g = c * GROUPS_PER_CLUSTER + gl;
                    let a = out.alive[g];
                    if a == 0 {
                        continue;
                    }
                    let now = a & (h[0] | h[1] | h[2] | h[3]);
                    if i > 0 && a & !now != 0 {
                        out.finish(g, a & !now, i as u32, w, order);
                    }
                    out.alive[g] = now;
                    cluster_alive |= now;
                    // Only blocks not held in the top tier need per-endpoint
                    // counts; with one tier in use this is never entered.
                    let mut rest = now & !h[top];
                    for k in 1..TIERS {
                        if rest == 0 {
                            break;
                        }
                        let mut m = rest & h[order[k]];
                        rest &= !m;
                        while m != 0 {
                            out.counts[g * 64 + m.trailing_zeros() as usize][k - 1] += 1;
                            m &= m - 1;
                        }
                    }
                }
                if cluster_alive == 0 {
                    out.clusters.swap_remove(ci);
                } else {
                    ci += 1;
                }
            }
            if out.clusters.is_empty() {
                break;
            }
        }
        for c in std::mem::take(&mut out.clusters) {
            for g in c * GROUPS_PER_CLUSTER..(c + 1) * GROUPS_PER_CLUSTER {
                let a = std::mem::take(&mut out.alive[g]);
                out.finish(g, a, n as u32, w, order);
            }
        }
        out.matches.sort_unstable_by_key(|m| m.endpoint);
    }
}
