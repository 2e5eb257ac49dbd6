//! One simulated vLLM worker: a waiting queue, a running batch, a paged KV
//! cache, and the counters a `/metrics` scrape reports.

mod prom;
mod seq;
mod step;

use std::collections::VecDeque;

pub use prom::{render_metrics, TtftHistogram};
pub use seq::{Seq, SeqKind};
pub use step::{Progress, StepPlan};

use serde::{Deserialize, Serialize};

use crate::kvcache::KvCache;

/// Engine settings of one worker (vLLM names and defaults).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `--block-size`.
    pub block_size: u32,
    /// `--max-num-batched-tokens`: token budget per step (chunked prefill).
    pub max_num_batched_tokens: u32,
    /// `--max-num-seqs`: sequences per step (default 1024, vLLM's default
    /// for an API server on a GPU with 70 GiB or more, such as the H100 the
    /// calibration was measured on).
    pub max_num_seqs: u32,
    /// GPU KV capacity in tokens (rounded down to whole blocks).
    pub kv_tokens: u64,
    /// Host-memory KV tier in tokens (0 = none).
    pub cpu_kv_tokens: u64,
    /// `--prefix-caching-hash-algo` (`sha256_cbor`, `sha256`, `xxhash`,
    /// `xxhash_cbor`), or `fast` for a non-vLLM hash that is cheaper to run.
    pub prefix_caching_hash_algo: String,
    /// `PYTHONHASHSEED` of the engines.
    pub python_hash_seed: Option<String>,
    /// vLLM release whose hashing and event layout to reproduce.
    pub vllm_version: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            block_size: 16,
            max_num_batched_tokens: 8192,
            max_num_seqs: 1024,
            kv_tokens: 307_328,
            cpu_kv_tokens: 0,
            prefix_caching_hash_algo: "sha256_cbor".to_string(),
            python_hash_seed: Some("42".to_string()),
            vllm_version: "0.33.0".to_string(),
        }
    }
}

/// Monotonic counters, as vLLM exports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// `vllm:prompt_tokens_total`.
    pub prompt_tokens: u64,
    /// `vllm:generation_tokens_total`.
    pub generation_tokens: u64,
    /// `vllm:prefix_cache_queries_total` (tokens).
    pub prefix_queries: u64,
    /// `vllm:prefix_cache_hits_total` (tokens).
    pub prefix_hits: u64,
    /// External (CPU tier) prefix hits, tokens.
    pub external_hits: u64,
    /// `vllm:num_preemptions_total`.
    pub preemptions: u64,
    /// `vllm:request_success_total`.
    pub success: u64,
    /// Requests aborted because their client went away (vLLM's
    /// `finished_reason="abort"`).
    pub aborted: u64,
    /// Engine steps run.
    pub steps: u64,
    /// Busy time, seconds.
    pub busy_s: f64,
}

/// What a scrape of the worker would show now.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// `vllm:num_requests_waiting`.
    pub waiting: u32,
    /// `vllm:num_requests_running`.
    pub running: u32,
    /// `vllm:kv_cache_usage_perc` (0–1).
    pub kv_usage: f64,
    /// Simulated time of the scrape, seconds.
    pub at: f64,
}

/// A simulated worker.
#[derive(Debug)]
pub struct Worker {
    /// Index in the fleet.
    pub index: usize,
    /// Endpoint name (`ip:port` style).
    pub name: String,
    pub(crate) cfg: EngineConfig,
    pub(crate) kv: KvCache,
    pub(crate) waiting: VecDeque<Seq>,
    pub(crate) running: Vec<Seq>,
    pub(crate) plan: Option<StepPlan>,
    /// Requests aborted while a step that includes them is in flight: they
    /// leave the batch when it completes.
    pub(crate) aborting: Vec<u64>,
    pub(crate) vocab: u32,
    /// Counters.
    pub counters: Counters,
    /// TTFTs of requests decoded here (for the scrape histogram).
    pub ttft_hist: TtftHistogram,
}

impl Worker {
    /// A worker with an empty cache.
    pub fn new(index: usize, name: String, cfg: EngineConfig, vocab: u32) -> Self {
        let bs = u64::from(cfg.block_size.max(1));
        let blocks = u32::try_from(cfg.kv_tokens / bs).unwrap_or(u32::MAX);
        let cpu = u32::try_from(cfg.cpu_kv_tokens / bs).unwrap_or(u32::MAX);
        Worker {
            index,
            name,
            kv: KvCache::new(blocks, bs as usize, cpu),
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            plan: None,
            aborting: Vec::new(),
            vocab,
            counters: Counters::default(),
            ttft_hist: TtftHistogram::default(),
        }
    }

    /// The worker's KV cache.
    pub fn kv(&self) -> &KvCache {
        &self.kv
    }

    /// Engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Queues a sequence, or drops it with the reason when it can never fit
    /// in this worker's KV cache.
    pub fn enqueue(&mut self, seq: Seq) -> Result<(), String> {
        let bs = self.kv.block_size() as u64;
        let need = seq.max_len().div_ceil(bs);
        if need > self.kv.num_blocks() as u64 {
            let why = format!(
                "needs {need} KV blocks, worker {} has {}",
                self.name,
                self.kv.num_blocks()
            );
            return Err(why);
        }
        self.waiting.push_back(seq);
        Ok(())
    }

    /// Aborts `req` (its client disconnected), as vLLM does: a waiting
    /// request leaves the queue, a running one leaves the batch and gives its
    /// blocks back (its computed blocks stay cached). While a step is in
    /// flight a running request leaves when the step completes; anything the
    /// step reports for it is to be ignored. Returns whether `req` was here.
    pub fn abort(&mut self, req: u64) -> bool {
        if let Some(i) = self.waiting.iter().position(|s| s.req == req) {
            if let Some(s) = self.waiting.remove(i) {
                self.kv.release(&s.blocks);
            }
            self.counters.aborted += 1;
            return true;
        }
        let Some(i) = self.running.iter().position(|s| s.req == req) else {
            return false;
        };
        if self.plan.is_some() {
            self.aborting.push(req);
        } else {
            let s = self.running.remove(i);
            self.kv.release(&s.blocks);
        }
        self.counters.aborted += 1;
        true
    }

    /// True while a step is in flight.
    pub fn busy(&self) -> bool {
        self.plan.is_some()
    }

    /// True when there is anything to schedule.
    pub fn has_work(&self) -> bool {
        !self.waiting.is_empty() || !self.running.is_empty()
    }

    /// Requests queued or running.
    pub fn load(&self) -> usize {
        self.waiting.len() + self.running.len()
    }

    /// Current gauges.
    pub fn snapshot(&self, at: f64) -> Snapshot {
        Snapshot {
            waiting: self.waiting.len() as u32,
            running: self.running.len() as u32,
            kv_usage: self.kv.usage(),
            at,
        }
    }

    /// Drains the KV events produced since the last call.
    pub fn take_events(&mut self) -> Vec<llmd_kvindex::events::KvEvent> {
        self.kv.take_events()
    }
}

impl Worker {
    /// Checks block accounting: every block a sequence holds is referenced,
    /// referenced blocks are exactly those held, and no sequence lacks the
    /// blocks its computed tokens need.
    pub fn check_invariants(&self) -> Result<(), String> {
        let bs = self.kv.block_size();
        let mut held = vec![0u32; self.kv.num_blocks()];
        for s in &self.running {
            if s.blocks.len() * bs < s.computed as usize {
                return Err(format!(
                    "request {} computed {} tokens in {} blocks",
                    s.req,
                    s.computed,
                    s.blocks.len()
                ));
            }
            for &b in &s.blocks {
                held[b as usize] += 1;
            }
        }
        if self.waiting.iter().any(|s| !s.blocks.is_empty()) {
            return Err("a waiting request holds blocks".into());
        }
        let used = held.iter().filter(|h| **h > 0).count();
        if used != self.kv.used_blocks() {
            return Err(format!(
                "{used} blocks held by requests, {} referenced",
                self.kv.used_blocks()
            ));
        }
        if self.kv.used_blocks() > self.kv.num_blocks() {
            return Err("more blocks used than exist".into());
        }
        self.kv.check_refs(&held)
    }
}
