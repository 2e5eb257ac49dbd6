//! `no-hit-lru-scorer`: spread cold requests (no prefix hit anywhere) over the
//! least recently used endpoints, so new prefixes land on cool caches.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decided, EndpointIndex, PreRequest, Scorer};
use crate::plugins::producers::APPROX_PRODUCER;

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

#[derive(Debug, Default)]
struct Lru {
    tick: u64,
    last_used: HashMap<Arc<str>, u64>,
}

/// The scorer and its recency list.
#[derive(Debug)]
pub struct NoHitLruScorer {
    producer: Arc<str>,
    capacity: usize,
    lru: Mutex<Lru>,
}

impl NoHitLruScorer {
    /// Decodes `lruSize` (1024), `prefixMatchInfoProducerName`; deprecated
    /// `prefixPluginType` / `prefixPluginName` are accepted and ignored, as
    /// llm-d does (listed in the config report).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let capacity = p.i64("lruSize", 1024)?;
        if capacity <= 0 {
            return Err(p.err("lruSize", "must be > 0"));
        }
        let producer: Arc<str> = p
            .string("prefixMatchInfoProducerName", APPROX_PRODUCER)?
            .into();
        let _ = p.take("prefixPluginType");
        let _ = p.take("prefixPluginName");
        Ok(NoHitLruScorer {
            producer,
            capacity: capacity as usize,
            lru: Mutex::new(Lru::default()),
        })
    }

    /// The producer whose matches decide warm vs cold.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    fn is_cold(&self, ctx: &CycleContext<'_>, eps: impl Iterator<Item = EndpointIndex>) -> bool {
        match ctx.prefix_info(&self.producer) {
            None => true,
            Some(info) => eps
                .into_iter()
                .all(|i| info.get(i).map_or(true, |m| m.match_blocks == 0)),
        }
    }

    fn touch(&self, name: Arc<str>) {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let t = lru.tick;
        lru.last_used.insert(name, t);
        if lru.last_used.len() > self.capacity {
            if let Some(oldest) = lru
                .last_used
                .iter()
                .min_by_key(|(_, &t)| t)
                .map(|(k, _)| k.clone())
            {
                lru.last_used.remove(&oldest);
            }
        }
    }
}

impl Scorer for NoHitLruScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        if !self.is_cold(ctx, candidates.iter().copied()) {
            out.iter_mut().for_each(|o| *o = 0.5);
            return;
        }
        let n = candidates.len();
        if n == 1 {
            out[0] = 1.0;
            return;
        }
        let lru = self.lru.lock();
        let mut used: Vec<(u64, usize)> = Vec::new();
        let mut rank = vec![0usize; n];
        let mut never = 0usize;
        for (pos, &i) in candidates.iter().enumerate() {
            match lru.last_used.get(ctx.endpoint(i).name()) {
                Some(&t) => used.push((t, pos)),
                None => {
                    rank[pos] = never;
                    never += 1;
                }
            }
        }
        drop(lru);
        used.sort_unstable();
        for (k, &(_, pos)) in used.iter().enumerate() {
            rank[pos] = never + k;
        }
        for (o, r) in out.iter_mut().zip(rank) {
            *o = (1.0 - r as f64 / (n - 1) as f64).max(0.0);
        }
    }
}

impl PreRequest for NoHitLruScorer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        if !self.is_cold(ctx, 0..ctx.endpoints().len()) {
            return;
        }
        if let Some(&p) = decided.targets.first() {
            self.touch(ctx.endpoint(p).name_arc());
        }
        if let Some(p) = decided.pick_of(PREFILL_PROFILE) {
            self.touch(ctx.endpoint(p).name_arc());
        }
    }
}
