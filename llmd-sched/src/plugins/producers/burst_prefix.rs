//! `burst-prefix-cache-producer` (Alpha): co-locates a burst of prompt-sharing
//! requests (the `n` samples of an RL rollout group, a fan-out over one
//! document) so the shared prefix is prefilled once instead of on every cold
//! replica a load scorer spreads them to.
//!
//! llm-d holds each request in the producer until a time window closes, then
//! assigns the window's requests jointly. The library holds nothing: the host
//! collects the window's requests (the producer's [`BurstPrefixProducer::window`])
//! and hands them to [`crate::Scheduler::pick_batch`], which runs [`assign`] —
//! llm-d's joint assignment — once over them and then picks each request with
//! the result. A plain `pick` is a window of one: it shares a prompt with
//! nobody, so it gets no affinity, as in llm-d.
//!
//! What the producer emits is llm-d's: prefix-match data with a full match on
//! the assigned replica and none elsewhere, for a `prefix-cache-scorer` bound
//! to it. It is an affinity, not a cache prediction, so `cached_blocks` stays 0
//! (no predicted-hit metric counts it).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::approx_hash::prefix_block_hashes;
use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, PrefixInfo, PrefixMatch, Producer};
use crate::model::Request;

/// The type name.
pub const BURST_PRODUCER: &str = "burst-prefix-cache-producer";
/// llm-d's `maxWindowDurationMs`.
const MAX_WINDOW_MS: i64 = 10_000;
/// llm-d's `defaultMaxPrefixBlocks`: leading blocks that form a group key.
const DEFAULT_MAX_PREFIX_BLOCKS: usize = 2048;

/// The producer's settings (llm-d's parameters, validated as llm-d does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BurstConfig {
    /// `windowDurationMs` (100, 1..=10000): how long the host collects a batch.
    pub window_ms: u64,
    /// `maxPerReplica` (-1 = `None`, unlimited): samples of one group per replica.
    pub max_per_replica: Option<usize>,
    /// `blockSizeTokens` (64).
    pub block_size: usize,
    /// Leading blocks hashed: `maxPrefixTokensToMatch / blockSizeTokens`, or 2048.
    pub max_blocks: usize,
    /// `minColocateBlocks` (0): shared leading blocks that let different
    /// prompts co-locate, and let a lone request gain an affinity at all.
    pub min_colocate_blocks: usize,
    /// `maxBatchSize` (1000, -1 = `None`): requests one window may hold; the
    /// rest of a batch get no affinity.
    pub max_batch: Option<usize>,
    /// `balanceBy: tokens` (else `requests`): balance replicas by prefix
    /// blocks, charging a unit's prefix once per replica less what the
    /// replica already holds of it in this batch.
    pub balance_by_tokens: bool,
}

/// What a batch decided for one request, read by the producer in that
/// request's cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BurstSlot {
    /// Steered to the endpoint with `uid`; the request hashed into `blocks`
    /// (kept so its cycle does not hash the prompt again).
    Assigned {
        /// The endpoint's uid.
        uid: u64,
        /// The request's prefix blocks.
        blocks: u32,
    },
    /// Shares no prompt prefix with the rest of the batch (or has none).
    NoAffinity {
        /// The request's prefix blocks.
        blocks: u32,
    },
    /// Past `maxBatchSize`: the producer emits nothing for it (llm-d's
    /// `Produce` fails for such a request, which leaves it unscored).
    BatchFull,
}

impl BurstSlot {
    /// The `outcome` label of `llmd_burst_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            BurstSlot::Assigned { .. } => "colocated",
            BurstSlot::NoAffinity { .. } => "no_affinity",
            BurstSlot::BatchFull => "batch_full",
        }
    }
}

/// One candidate replica as the assignment sees it.
#[derive(Clone, Copy, Debug)]
pub struct Replica<'a> {
    /// Endpoint name (the last tie-break).
    pub name: &'a str,
    /// Running requests (the tie-break before the name).
    pub running: u32,
}

/// The producer.
#[derive(Debug)]
pub struct BurstPrefixProducer {
    /// Instance name (the data key a `prefix-cache-scorer` binds to).
    pub name: Arc<str>,
    /// Settings.
    pub config: BurstConfig,
}

impl BurstPrefixProducer {
    /// Decodes and validates llm-d's parameters.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let window = p.i64("windowDurationMs", 100)?;
        if !(1..=MAX_WINDOW_MS).contains(&window) {
            return Err(p.err(
                "windowDurationMs",
                format!("must be in 1..={MAX_WINDOW_MS}, got {window}"),
            ));
        }
        let max_per_replica = unlimited_or_count(p, "maxPerReplica", -1)?;
        let block_size = p.i64("blockSizeTokens", 64)?;
        super::precise_prefix::block_size_param(p, "blockSizeTokens", block_size)?;
        let max_tokens = p.i64("maxPrefixTokensToMatch", 0)?;
        if max_tokens < 0 || (max_tokens > 0 && max_tokens < block_size) {
            return Err(p.err(
                "maxPrefixTokensToMatch",
                format!("must be 0 or >= blockSizeTokens ({block_size}), got {max_tokens}"),
            ));
        }
        let min_colocate = p.i64("minColocateBlocks", 0)?;
        if min_colocate < 0 {
            return Err(p.err(
                "minColocateBlocks",
                format!("must be >= 0, got {min_colocate}"),
            ));
        }
        let max_batch = unlimited_or_count(p, "maxBatchSize", 1000)?;
        let balance_by_tokens = match p.string("balanceBy", "requests")?.as_str() {
            "" | "requests" => false,
            "tokens" => true,
            other => {
                return Err(p.err(
                    "balanceBy",
                    format!("must be \"requests\" or \"tokens\", got {other:?}"),
                ))
            }
        };
        let max_blocks = if max_tokens > 0 {
            (max_tokens / block_size) as usize
        } else {
            DEFAULT_MAX_PREFIX_BLOCKS
        };
        Ok(BurstPrefixProducer {
            name: p.plugin_name().into(),
            config: BurstConfig {
                window_ms: window as u64,
                max_per_replica,
                block_size: block_size as usize,
                max_blocks,
                min_colocate_blocks: min_colocate as usize,
                max_batch,
                balance_by_tokens,
            },
        })
    }

    /// How long a host should collect requests before handing them to
    /// [`crate::Scheduler::pick_batch`] (`windowDurationMs`).
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.config.window_ms)
    }

    /// The request's leading block hashes (llm-d's `prefixhash`, under the
    /// request's target model and cache salt).
    pub fn block_hashes(&self, req: &Request, tokens: &[u32]) -> Vec<u64> {
        prefix_block_hashes(
            req.target_model(),
            req.cache_salt.as_deref().unwrap_or(""),
            tokens,
            self.config.block_size,
            self.config.max_blocks,
        )
    }
}

/// A count where -1 means unlimited (`None`); 0 and other negatives are refused.
fn unlimited_or_count(
    p: &mut Params,
    key: &str,
    default: i64,
) -> Result<Option<usize>, ConfigError> {
    match p.i64(key, default)? {
        -1 => Ok(None),
        n if n >= 1 => Ok(Some(n as usize)),
        n => Err(p.err(key, format!("must be -1 (unlimited) or >= 1, got {n}"))),
    }
}

impl Producer for BurstPrefixProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let slot = ctx.burst_slot(&self.name);
        let (assigned, total) = match slot {
            Some(BurstSlot::Assigned { uid, blocks }) => (Some(uid), blocks),
            Some(BurstSlot::NoAffinity { blocks }) => (None, blocks),
            Some(BurstSlot::BatchFull) => {
                let n = self.config.max_batch.unwrap_or(usize::MAX);
                ctx.note(format!(
                    "{}: batch full (maxBatchSize {n}): no affinity produced",
                    self.name
                ));
                return;
            }
            // A plain pick: a window of one, hashed here.
            None => (
                None,
                self.block_hashes(ctx.request(), ctx.tokens()).len() as u32,
            ),
        };
        let mut matches = vec![None; ctx.endpoints().len()];
        let mut placed = None;
        for &i in candidates {
            let hit = assigned == Some(ctx.endpoint(i).uid());
            if hit {
                placed = Some(i);
            }
            matches[i] = Some(PrefixMatch {
                match_blocks: if hit { total } else { 0 },
                cached_blocks: 0,
            });
        }
        let note = match (slot, placed) {
            (None, _) => format!(
                "{}: a window of one (pick); pick_batch co-locates a window's requests",
                self.name
            ),
            (Some(BurstSlot::Assigned { .. }), Some(i)) => format!(
                "{}: co-located on {} ({total} blocks)",
                self.name,
                ctx.endpoint(i).name()
            ),
            (Some(BurstSlot::Assigned { .. }), None) => {
                ctx.report_burst_absent(self.name.clone());
                format!(
                    "{}: the assigned replica is not among this request's candidates: no affinity",
                    self.name
                )
            }
            _ => format!(
                "{}: shares no prefix with the rest of the batch: no affinity",
                self.name
            ),
        };
        ctx.note(note);
        ctx.set_prefix_info(PrefixInfo {
            producer: self.name.clone(),
            block_size: self.config.block_size as u32,
            total_blocks: total,
            probed_blocks: 0,
            queried_blocks: 0,
            matches,
            keys: Vec::new(),
            key_endpoint: None,
        });
    }

    fn as_burst(&self) -> Option<&BurstPrefixProducer> {
        Some(self)
    }
}

/// llm-d's joint assignment of one window (`burstprefix.assign`): the replica
/// (index into `replicas`) each request is steered to, `None` for no affinity.
/// `hashes[i]` are request `i`'s leading block hashes.
///
/// Requests with identical prefixes form a group; a group of two or more is
/// always placed, and with `min_colocate_blocks > 0` so is a lone request that
/// shares that many leading blocks with another. Groups are placed before
/// lone requests, longest prefix first, each whole on one replica unless
/// `max_per_replica` caps it. A unit's first replica prefers the one holding
/// the longest prefix of it in this batch (at least `min_colocate_blocks`),
/// below its fair share; otherwise, and for the rest of a capped group, the
/// least loaded (then fewest running requests, then lowest name).
pub fn assign<H: AsRef<[u64]>>(
    cfg: &BurstConfig,
    hashes: &[H],
    replicas: &[Replica<'_>],
) -> Vec<Option<usize>> {
    let mut out = vec![None; hashes.len()];
    if replicas.is_empty() {
        return out;
    }
    // Identical prefixes, in order of first appearance.
    let mut by_prefix: HashMap<&[u64], usize> = HashMap::new();
    let mut groups: Vec<(&[u64], Vec<usize>)> = Vec::new();
    for (i, h) in hashes.iter().map(AsRef::as_ref).enumerate() {
        if h.is_empty() {
            continue;
        }
        let g = *by_prefix.entry(h).or_insert_with(|| {
            groups.push((h, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let shared = shares_prefix(&groups, cfg.min_colocate_blocks);
    let (mut whole, mut lone): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for (g, (_, members)) in groups.iter().enumerate() {
        if members.len() >= 2 {
            whole.push(g);
        } else if shared[g] {
            lone.push(g);
        }
    }
    // Longest prefix first (stable): shorter units then match against the
    // richest set of placed blocks.
    whole.sort_by_key(|&g| std::cmp::Reverse(groups[g].0.len()));
    lone.sort_by_key(|&g| std::cmp::Reverse(groups[g].0.len()));
    let units: Vec<usize> = whole.into_iter().chain(lone).collect();
    if units.is_empty() {
        return out;
    }
    let total: usize = units
        .iter()
        .map(|&g| {
            if cfg.balance_by_tokens {
                groups[g].0.len()
            } else {
                groups[g].1.len()
            }
        })
        .sum();
    let mut batch = Batch {
        cfg,
        replicas,
        max_share: total.div_ceil(replicas.len()),
        load: vec![0; replicas.len()],
        held: HashMap::new(),
    };
    for g in units {
        let (prefix, members) = &groups[g];
        batch.place(prefix, members, &mut out);
    }
    out
}

/// Which groups share at least `min` leading blocks with another request of
/// the batch (none when `min` is 0).
fn shares_prefix(groups: &[(&[u64], Vec<usize>)], min: usize) -> Vec<bool> {
    let mut shared = vec![false; groups.len()];
    if min == 0 {
        return shared;
    }
    let mut count: HashMap<&[u64], usize> = HashMap::new();
    for (prefix, members) in groups.iter().filter(|(p, _)| p.len() >= min) {
        *count.entry(&prefix[..min]).or_default() += members.len();
    }
    for (s, (prefix, _)) in shared.iter_mut().zip(groups) {
        *s = prefix.len() >= min && count[&prefix[..min]] >= 2;
    }
    shared
}

/// The state of one window's placement.
struct Batch<'a> {
    cfg: &'a BurstConfig,
    replicas: &'a [Replica<'a>],
    /// Fair share per replica: ceil(total / replicas), in the balanced unit.
    max_share: usize,
    /// Load per replica in the balanced unit (requests or blocks).
    load: Vec<usize>,
    /// Replicas holding each block placed so far.
    held: HashMap<u64, Vec<usize>>,
}

impl Batch<'_> {
    /// Places one unit's members (request indices), filling one replica up to
    /// `max_per_replica` before spilling to the next.
    fn place(&mut self, prefix: &[u64], members: &[usize], out: &mut [Option<usize>]) {
        let n = self.replicas.len();
        let mut prefer = self.cfg.min_colocate_blocks > 0;
        let matches = if prefer || self.cfg.balance_by_tokens {
            self.longest_prefix(prefix)
        } else {
            vec![0; n]
        };
        let mut here = vec![0usize; n];
        let mut i = 0;
        while i < members.len() {
            let t = self.pick(&here, &matches, prefer);
            let mut run = members.len() - i;
            if let Some(k) = self.cfg.max_per_replica {
                // More members than k × replicas: place one and rebalance.
                run = run.min(k.saturating_sub(here[t]).max(1));
            }
            for &m in &members[i..i + run] {
                out[m] = Some(t);
            }
            let first = here[t] == 0;
            here[t] += run;
            if !self.cfg.balance_by_tokens {
                self.load[t] += run;
            } else if first {
                self.load[t] += prefix.len().saturating_sub(matches[t]);
            }
            i += run;
            prefer = false; // only the unit's first replica prefers a match
        }
        for (t, _) in here.iter().enumerate().filter(|(_, &c)| c > 0) {
            for &h in prefix {
                let holders = self.held.entry(h).or_default();
                if !holders.contains(&t) {
                    holders.push(t);
                }
            }
        }
    }

    /// Leading blocks of `prefix` each replica holds in this batch (the walk
    /// stops at the first block nobody holds).
    fn longest_prefix(&self, prefix: &[u64]) -> Vec<usize> {
        let mut res = vec![0; self.replicas.len()];
        for h in prefix {
            match self.held.get(h) {
                Some(holders) if !holders.is_empty() => {
                    for &r in holders {
                        res[r] += 1;
                    }
                }
                _ => break,
            }
        }
        res
    }

    /// The replica for the unit's next run.
    fn pick(&self, here: &[usize], matches: &[usize], prefer: bool) -> usize {
        let room = |r: usize| self.cfg.max_per_replica.map_or(true, |k| here[r] < k);
        if prefer {
            let mut best: Option<usize> = None;
            for r in 0..self.replicas.len() {
                if !room(r)
                    || self.load[r] >= self.max_share
                    || matches[r] < self.cfg.min_colocate_blocks
                {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        matches[r] > matches[b]
                            || (matches[r] == matches[b] && self.order(r, b) == Ordering::Less)
                    }
                };
                if better {
                    best = Some(r);
                }
            }
            if let Some(b) = best {
                return b;
            }
        }
        let least = |pool: &mut dyn Iterator<Item = usize>| pool.min_by(|&a, &b| self.order(a, b));
        least(&mut (0..self.replicas.len()).filter(|&r| room(r)))
            .or_else(|| least(&mut (0..self.replicas.len())))
            .unwrap_or(0)
    }

    /// llm-d's `less`: fewer assigned in this batch, then fewer running
    /// requests, then the lower name.
    fn order(&self, a: usize, b: usize) -> Ordering {
        let (ra, rb) = (&self.replicas[a], &self.replicas[b]);
        self.load[a]
            .cmp(&self.load[b])
            .then(ra.running.cmp(&rb.running))
            .then(ra.name.cmp(rb.name))
    }
}

#[cfg(test)]
mod tests;
