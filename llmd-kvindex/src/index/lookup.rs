//! Longest consecutive prefix match per endpoint, tier-weighted.
//!
//! The walk visits blocks in order and stops as soon as no endpoint still
//! matches; it only probes the endpoint clusters that still have a matching
//! endpoint. Buckets of the blocks a few steps ahead are prefetched, so the
//! cache misses of consecutive blocks overlap instead of adding up.
//!
//! Prompts of [`MIN_BLOCKS`] blocks or more first look up verified-prefix
//! checkpoints (`checkpoints.rs`): an endpoint with a valid checkpoint at
//! block `p` is *pinned* — taken as holding blocks `0..=p` with the recorded
//! tier counts — and the walk skips ahead whenever every endpoint still
//! matching is pinned. The walk writes checkpoints as it passes them
//! (ingestion writes them too, `chains.rs`).

use super::bucket::prefetch;
use super::checkpoints::{self, pack, record_key, unpack, EPOCH_MASK, MAX_DEPTH, MIN_BLOCKS, SPAN};
use super::endpoints::EndpointId;
use super::keys::{fingerprint, model_seed, GROUPS_PER_CLUSTER, TIERS};
use super::lost::Losses;
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
/// No epoch read for this endpoint during the current lookup.
const NO_EPOCH: u64 = u64::MAX;
/// Pinned blocks whose reference bits a lookup refreshes when the table is
/// full (`touch_pinned`).
pub(crate) const TOUCHES: usize = 4;

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

/// One candidate's search for its furthest valid checkpoint: checkpoints
/// `lo..hi` are still undecided, `probe` is being read (record `key`).
#[derive(Clone, Copy, Debug)]
struct Search {
    ep: u16,
    /// Position among the lookup's candidates.
    cand: u16,
    lo: u32,
    hi: u32,
    probe: u32,
    key: u64,
    /// The furthest valid checkpoint so far and its counts.
    best: Option<(u32, u64)>,
}

/// What a stale checkpoint is checked against: the model's seed, the
/// prompt, and how many of its blocks the checkpoints cover.
type Query<'a> = (u64, &'a [BlockKey], usize);

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
    /// Checkpoint digests of the query (`checkpoints::digests`).
    digests: Vec<u64>,
    /// Per group: endpoints pinned by a checkpoint beyond the walk.
    pinned: Vec<u64>,
    /// Per endpoint: where its pin ends (blocks proven held).
    until: Vec<u32>,
    /// Per endpoint: its epoch as read before the walk, or `NO_EPOCH`.
    epochs: Vec<u64>,
    /// Endpoints holding block 0 when the lookup began.
    cands: Vec<u16>,
    /// Their checkpoint searches.
    search: Vec<Search>,
    /// What stale checkpoints still prove (read from the epoch logs).
    losses: Losses,
    probed: u32,
    /// Checkpoint records read by the last lookup.
    reads: u32,
    /// Lookups made with this value (moves the window `touch_pinned` uses).
    touch_seq: u64,
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

    /// Block positions the last lookup probed in the table, each counted
    /// once (block 0 included). Without checkpoints this is the longest
    /// match plus one (or the prompt length); with valid checkpoints, far
    /// fewer.
    pub fn probed_blocks(&self) -> u32 {
        self.probed
    }

    /// Checkpoint records the last lookup read to pin its candidates (0 for
    /// prompts under 32 blocks or when no endpoint holds block 0).
    pub fn checkpoint_reads(&self) -> u32 {
        self.reads
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

    /// Unpins the endpoints whose pin ends at block `i`; returns where the
    /// next pin ends (`usize::MAX`: none left).
    fn unpin(&mut self, i: usize) -> usize {
        let mut next = usize::MAX;
        for &e in &self.cands {
            let (e, bit) = (e as usize, 1u64 << (e % 64));
            if self.pinned[e / 64] & bit != 0 {
                let u = self.until[e] as usize;
                if u <= i {
                    self.pinned[e / 64] &= !bit;
                } else {
                    next = next.min(u);
                }
            }
        }
        next
    }
}

/// Stages blocks `from..to` (at most two chunks): their fingerprints and,
/// for every cluster still matching, their home buckets, which are
/// prefetched. A short loop of independent hashes, so the core overlaps the
/// multiply chains of all the blocks in the chunk.
#[inline(always)]
fn stage(
    index: &KvIndex,
    seed: u64,
    keys: &[BlockKey],
    (from, to): (usize, usize),
    clusters: &[usize],
    ring: &mut Ring,
) {
    let geo = index.table.geometry();
    let to = keys.len().min(to);
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
    /// Lock-free: never waits for writers (it may write checkpoints, which
    /// is a few stores, skipped when another thread is writing the same).
    pub fn match_prefix(&self, model: &str, keys: &[BlockKey], out: &mut PrefixMatches) {
        self.match_with(model, keys, out, true);
    }

    /// [`KvIndex::match_prefix`] probing every block, without reading or
    /// writing checkpoints: the reference the checkpointed lookup is tested
    /// and benchmarked against.
    #[doc(hidden)]
    pub fn match_prefix_walk(&self, model: &str, keys: &[BlockKey], out: &mut PrefixMatches) {
        self.match_with(model, keys, out, false);
    }

    fn match_with(&self, model: &str, keys: &[BlockKey], out: &mut PrefixMatches, ckpt: bool) {
        out.matches.clear();
        out.probed = 0;
        out.reads = 0;
        out.total_blocks = keys.len().min(u32::MAX as usize) as u32;
        let slots = self.high_water.load(Ordering::Acquire);
        if keys.is_empty() || slots == 0 {
            return;
        }
        let groups = slots.div_ceil(64);
        let nclusters = groups.div_ceil(GROUPS_PER_CLUSTER);
        out.alive.clear();
        out.alive.resize(nclusters * GROUPS_PER_CLUSTER, !0);
        out.pinned.clear();
        out.pinned.resize(out.alive.len(), 0);
        // Sized for every slot of the probed groups: an endpoint registered
        // after `high_water` was read may already show up in a mask.
        let eps = out.alive.len() * 64;
        if out.counts.len() < eps {
            out.counts.resize(eps, [0; TIERS - 1]);
            out.until.resize(eps, 0);
            out.epochs.resize(eps, NO_EPOCH);
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
        out.cands.clear();
        let mut next_unpin = usize::MAX;
        if ckpt && n >= MIN_BLOCKS {
            next_unpin = self.pin_verified(seed, keys, out);
        }
        // Checkpoints are written only for endpoints whose epoch was read.
        let checkpointed = !out.cands.is_empty();
        // Fingerprints and homes are staged a chunk ahead of the walk (only
        // as far as it goes), so each bucket's miss overlaps the probes of
        // the blocks before it. A cluster staged for block j is still alive
        // when block j is probed or already dropped, never revived, so every
        // home the walk reads was staged. After a skip ahead only the
        // target's chunk is staged: the blocks past a pin are usually few,
        // and the next chunk is staged once the walk reaches it.
        let mut i = 0;
        let mut run_start = 0;
        let mut staged_to;
        let pinned: usize = out.pinned.iter().map(|p| p.count_ones() as usize).sum();
        if checkpointed && pinned == out.cands.len() {
            // Every endpoint holding block 0 is pinned: nothing to probe
            // until the first pin ends (block 0 was probed to find them).
            out.alive.copy_from_slice(&out.pinned);
            out.probed = 1;
            i = next_unpin.min(n);
            run_start = i;
            staged_to = i;
        } else {
            staged_to = 2 * CHUNK;
            stage(
                self,
                seed,
                keys,
                (0, staged_to),
                &out.clusters,
                &mut out.ring,
            );
        }
        while i < n {
            if i == next_unpin {
                next_unpin = out.unpin(i);
            }
            if i >= staged_to {
                staged_to = (i / CHUNK + 1) * CHUNK;
                stage(
                    self,
                    seed,
                    keys,
                    (i, staged_to),
                    &out.clusters,
                    &mut out.ring,
                );
            }
            if i % CHUNK == 0 && i != run_start && staged_to == i + CHUNK {
                let ahead = (staged_to, staged_to + CHUNK);
                staged_to += CHUNK;
                stage(self, seed, keys, ahead, &out.clusters, &mut out.ring);
            }
            out.probed += 1;
            let r = i & RING_MASK;
            let fp = out.ring.fps[r];
            // Endpoints still matching that this block decides (not pinned).
            let mut walked_any = 0;
            let mut ci = 0;
            while ci < out.clusters.len() {
                let c = out.clusters[ci];
                let gs = c * GROUPS_PER_CLUSTER..(c + 1) * GROUPS_PER_CLUSTER;
                if gs.clone().all(|g| out.alive[g] & !out.pinned[g] == 0) {
                    ci += 1;
                    continue;
                }
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
                    let pinned = out.pinned[g];
                    let now = a & (h[0] | h[1] | h[2] | h[3] | pinned);
                    if i > 0 && a & !now != 0 {
                        out.finish(g, a & !now, i as u32, w, order);
                    }
                    out.alive[g] = now;
                    cluster_alive |= now;
                    let walked = now & !pinned;
                    walked_any |= walked;
                    // Only blocks not held in the top tier need per-endpoint
                    // counts; with one tier in use this is never entered.
                    let mut rest = walked & !h[top];
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
                    if checkpointed && walked != 0 && i % SPAN == SPAN - 1 && i + 1 < MAX_DEPTH {
                        self.save_verified(g, walked, i, out);
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
            if walked_any == 0 {
                // Every endpoint still matching is pinned past this block:
                // go straight to where the first pin ends.
                i = next_unpin.min(n);
                run_start = i;
                continue;
            }
            i += 1;
        }
        for c in std::mem::take(&mut out.clusters) {
            for g in c * GROUPS_PER_CLUSTER..(c + 1) * GROUPS_PER_CLUSTER {
                let a = std::mem::take(&mut out.alive[g]);
                out.finish(g, a, n as u32, w, order);
            }
        }
        if checkpointed && self.table.full() {
            self.touch_pinned(seed, keys, out);
        }
        for &e in &out.cands {
            out.epochs[e as usize] = NO_EPOCH;
        }
        out.matches.sort_unstable_by_key(|m| m.endpoint);
    }

    /// When the table is full (the next insert evicts by CLOCK), a lookup
    /// served from pins refreshes the reference bits of a few of the pinned
    /// blocks it did not probe — a window that moves by [`TOUCHES`] blocks
    /// per lookup of this `PrefixMatches` — so a prefix in use is not taken
    /// for an unused one because checkpoints spared its probes. Below
    /// capacity nothing is evicted and nothing is touched.
    fn touch_pinned(&self, seed: u64, keys: &[BlockKey], out: &mut PrefixMatches) {
        out.touch_seq = out.touch_seq.wrapping_add(1);
        let geo = self.table.geometry();
        for s in &out.search {
            let Some((j, _)) = s.best else { continue };
            let until = SPAN * (j as usize + 1);
            let cluster = s.ep as usize / 64 / GROUPS_PER_CLUSTER;
            for t in 0..TOUCHES {
                let pos = (out.touch_seq as usize * TOUCHES + t) % until;
                let fp = fingerprint(seed, keys[pos].0);
                let loc = geo.locate(fp, cluster);
                let mut held = [[0u64; GROUPS_PER_CLUSTER]; TIERS];
                if self.table.bucket(loc.home).gather(fp, cluster, &mut held) {
                    if let Some(alt) = loc.alt() {
                        self.table.bucket(alt).gather(fp, cluster, &mut held);
                    }
                }
            }
        }
    }

    /// Reads the epochs of the endpoints holding block 0 and pins each at
    /// its furthest valid checkpoint (the prompt's last checkpoint first,
    /// then a bisection, hinted by the first candidate's). Returns where the
    /// first pin ends.
    fn pin_verified(&self, seed: u64, keys: &[BlockKey], out: &mut PrefixMatches) -> usize {
        let fp = fingerprint(seed, keys[0].0);
        let geo = self.table.geometry();
        for c in 0..out.ring.nclusters {
            let mut held = [[0u64; GROUPS_PER_CLUSTER]; TIERS];
            let loc = geo.locate(fp, c);
            if self.table.bucket(loc.home).gather(fp, c, &mut held) {
                if let Some(alt) = loc.alt() {
                    self.table.bucket(alt).gather(fp, c, &mut held);
                }
            }
            for gl in 0..GROUPS_PER_CLUSTER {
                let mut m = held.iter().fold(0, |acc, t| acc | t[gl]);
                while m != 0 {
                    let e = (c * GROUPS_PER_CLUSTER + gl) * 64 + m.trailing_zeros() as usize;
                    m &= m - 1;
                    if e < out.epochs.len() {
                        out.cands.push(e as u16);
                    }
                }
            }
        }
        if out.cands.is_empty() {
            return usize::MAX;
        }
        checkpoints::digests(seed, keys, &mut out.digests);
        // A checkpoint's counts (of up to all its blocks) fit below MAX_DEPTH.
        let spans = out.digests.len().min((MAX_DEPTH - 1) / SPAN);
        // First probe of every candidate: the prompt's last checkpoint, all
        // read together (each read prefetched), so a cold lookup pays one
        // memory latency for the step instead of one per read.
        out.search.clear();
        out.losses.reset();
        let q: Query = (seed, keys, spans * SPAN);
        for (c, &e) in out.cands.iter().enumerate() {
            let epoch = self.table.epoch(e);
            out.epochs[e as usize] = epoch;
            let mut s = Search {
                ep: e,
                cand: c as u16,
                lo: 0,
                hi: spans as u32,
                probe: 0,
                key: 0,
                best: None,
            };
            self.aim(&mut s, spans as u32 - 1, &out.digests);
            out.search.push(s);
        }
        for s in &mut out.search {
            let epoch = out.epochs[s.ep as usize];
            self.settle(s, epoch, &mut out.reads, &mut out.losses, q);
        }
        // Endpoints holding the same prompt prefix (a shared system prompt,
        // a group's common turns) usually stop at the same checkpoint: one
        // undecided candidate bisects alone, and the others first try the
        // boundary it found (its last valid checkpoint and the next, two
        // reads) before bisecting what is left. Any valid checkpoint proves
        // its prefix, so a hint only changes how many records are read,
        // never the answer.
        if let Some(l) = out.search.iter().position(|s| s.lo < s.hi) {
            let leader = &mut out.search[l];
            let epoch = out.epochs[leader.ep as usize];
            while leader.lo < leader.hi {
                self.aim(
                    leader,
                    leader.lo + (leader.hi - leader.lo) / 2,
                    &out.digests,
                );
                self.settle(leader, epoch, &mut out.reads, &mut out.losses, q);
            }
            // The first checkpoint the leader found invalid.
            let edge = leader.lo;
            for s in out.search.iter_mut().filter(|s| s.lo < s.hi) {
                let (below, at) = (edge.checked_sub(1), edge);
                let mut second = *s;
                let try_at = at < s.hi;
                if try_at {
                    self.aim(&mut second, at, &out.digests);
                }
                let epoch = out.epochs[s.ep as usize];
                if let Some(b) = below.filter(|&b| b >= s.lo) {
                    self.aim(s, b, &out.digests);
                    self.settle(s, epoch, &mut out.reads, &mut out.losses, q);
                }
                if try_at && s.lo == at && s.lo < s.hi {
                    s.probe = second.probe;
                    s.key = second.key;
                    self.settle(s, epoch, &mut out.reads, &mut out.losses, q);
                }
            }
        }
        // Whatever is still undecided bisects, all candidates a step at a
        // time, each step's reads prefetched together.
        loop {
            let mut active = false;
            for s in out.search.iter_mut().filter(|s| s.lo < s.hi) {
                self.aim(s, s.lo + (s.hi - s.lo) / 2, &out.digests);
                active = true;
            }
            if !active {
                break;
            }
            for s in out.search.iter_mut().filter(|s| s.lo < s.hi) {
                let epoch = out.epochs[s.ep as usize];
                self.settle(s, epoch, &mut out.reads, &mut out.losses, q);
            }
        }
        let mut next = usize::MAX;
        for s in &out.search {
            if let Some((j, c)) = s.best {
                let (e, until) = (s.ep as usize, SPAN * (j as usize + 1));
                out.until[e] = until as u32;
                out.counts[e] = unpack(c);
                out.pinned[e / 64] |= 1 << (e % 64);
                next = next.min(until);
            }
        }
        next
    }

    /// Points `s` at checkpoint `j` and prefetches its record.
    #[inline(always)]
    fn aim(&self, s: &mut Search, j: u32, digests: &[u64]) {
        s.probe = j;
        s.key = record_key(digests[j as usize], s.ep);
        prefetch(self.checkpoints.set_ptr(s.key));
    }

    /// Reads the record `s` points at and narrows its undecided range: a
    /// valid checkpoint (stamped with the endpoint's `epoch`, or older with
    /// none of its blocks changed since, `lost.rs`) becomes its best and
    /// everything up to it decided; a missing or stale one decides
    /// everything from it on. An older checkpoint found valid is stamped
    /// again with `epoch` (it held then), so the next lookup of the prompt
    /// finds its search path fresh instead of aged past the log.
    #[inline(never)]
    fn settle(&self, s: &mut Search, epoch: u64, reads: &mut u32, losses: &mut Losses, q: Query) {
        *reads += 1;
        let valid = match self.checkpoints.find(s.key, s.ep) {
            Some((stamp, c)) if stamp == epoch & EPOCH_MASK => Some(c),
            Some((stamp, c)) => self.still_valid(s, (stamp, epoch), c, losses, q),
            None => None,
        };
        match valid {
            Some(c) => {
                s.best = Some((s.probe, c));
                s.lo = s.probe + 1;
            }
            None => s.hi = s.probe,
        }
    }

    /// A checkpoint stamped `stamp` while its endpoint's epoch is `epoch`:
    /// its counts `c` if the endpoint's log shows none of its blocks
    /// changed since, after stamping it again with `epoch`.
    #[cold]
    #[inline(never)]
    fn still_valid(
        &self,
        s: &Search,
        (stamp, epoch): (u64, u64),
        c: u64,
        losses: &mut Losses,
        q: Query,
    ) -> Option<u64> {
        let last = SPAN * (s.probe as usize + 1) - 1;
        let epochs = self.table.epochs();
        if !losses.kept(epochs, (s.cand as usize, s.ep), (stamp, epoch), last, q) {
            return None;
        }
        self.checkpoints
            .put(s.key, s.ep, epoch, c, |o| self.table.epoch(o));
        Some(c)
    }

    /// Writes checkpoints at block `i` for the endpoints in `walked` (of
    /// group `g`) whose epoch was read before the walk.
    fn save_verified(&self, g: usize, mut walked: u64, i: usize, out: &PrefixMatches) {
        let digest = out.digests[i / SPAN];
        while walked != 0 {
            let e = g * 64 + walked.trailing_zeros() as usize;
            walked &= walked - 1;
            let epoch = out.epochs[e];
            if epoch != NO_EPOCH {
                let ep = e as u16;
                let counts = pack(&out.counts[e]);
                self.checkpoints
                    .put(record_key(digest, ep), ep, epoch, counts, |o| {
                        self.table.epoch(o)
                    });
            }
        }
    }
}
