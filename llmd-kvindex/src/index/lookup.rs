//! Longest consecutive prefix match per endpoint, tier-weighted.
//!
//! The walk visits blocks in order and stops as soon as no endpoint still
//! matches; it only probes the endpoint clusters that still have a matching
//! endpoint. Buckets of the blocks a few steps ahead are prefetched, so the
//! cache misses of consecutive blocks overlap instead of adding up.

use super::bucket::{Snapshot, SLOTS};
use super::endpoints::EndpointId;
use super::keys::{fingerprint, model_seed, tag_group, tag_tier, GROUPS_PER_CLUSTER, TIERS};
use super::KvIndex;
use crate::types::BlockKey;
use std::sync::atomic::Ordering;

/// Blocks ahead whose buckets are prefetched.
const PREFETCH_DISTANCE: usize = 6;

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
    fps: Vec<u64>,
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
        let seed = model_seed(model);
        out.fps.clear();
        out.fps.extend(keys.iter().map(|k| fingerprint(seed, k.0)));
        let geo = self.table.geometry();
        let (w, order) = (&self.weights, &self.tier_order);
        let top = order[0];
        let n = keys.len();
        let mut snap = Snapshot::new();
        for i in 0..n {
            if i + PREFETCH_DISTANCE < n {
                let fp = out.fps[i + PREFETCH_DISTANCE];
                for &c in &out.clusters {
                    prefetch(self.table.bucket(geo.locate(fp, c).home).as_ptr());
                }
            }
            let fp = out.fps[i];
            let mut ci = 0;
            while ci < out.clusters.len() {
                let c = out.clusters[ci];
                let mut held = [[0u64; GROUPS_PER_CLUSTER]; TIERS];
                let loc = geo.locate(fp, c);
                self.gather(loc.home, fp, c, &mut snap, &mut held);
                if snap.overflow {
                    if let Some(alt) = loc.alt() {
                        self.gather(alt, fp, c, &mut snap, &mut held);
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

    /// ORs the masks of `fp`'s entries of cluster `c` in bucket `b` into
    /// `held[tier][group in cluster]`, and marks them recently used.
    #[inline]
    fn gather(
        &self,
        b: usize,
        fp: u64,
        c: usize,
        snap: &mut Snapshot,
        held: &mut [[u64; GROUPS_PER_CLUSTER]; TIERS],
    ) {
        let bucket = self.table.bucket(b);
        bucket.read(fp, snap);
        for &(tag, mask) in &snap.hits[..snap.len.min(SLOTS)] {
            let g = tag_group(tag);
            if g / GROUPS_PER_CLUSTER == c {
                held[tag_tier(tag)][g % GROUPS_PER_CLUSTER] |= mask;
            }
        }
        if snap.hit_slots & !snap.ref_bits != 0 {
            bucket.touch(snap.hit_slots);
        }
    }
}
