//! One engine iteration, as vLLM's v1 scheduler runs it: running requests
//! first (decodes and unfinished prefill chunks), preempting the newest
//! running request when blocks run out, then waiting requests in FCFS order
//! while the token budget, the sequence cap and free blocks allow.

use super::{Seq, SeqKind, Worker};
use crate::cost::{CostModel, StepShape};

/// Something the engine must act on after a step.
#[derive(Debug)]
pub enum Progress {
    /// The request's first output token was produced.
    FirstToken {
        /// Request.
        req: u64,
        /// Prompt tokens served from a prefix cache here.
        cached_tokens: u32,
    },
    /// The request produced its last token.
    Finished {
        /// Request.
        req: u64,
    },
    /// P/D prefill finished; the sequence goes to its decode worker.
    PrefillDone {
        /// The sequence (blocks already released here).
        seq: Box<Seq>,
    },
    /// The request was preempted (recompute).
    Preempted {
        /// Request.
        req: u64,
    },
    /// The request produced an output token after its first (a streamed
    /// token reaching the client, which marks the end of the step).
    Token {
        /// Request.
        req: u64,
    },
}

/// Tokens scheduled for each running sequence in the step in flight.
#[derive(Debug)]
pub struct StepPlan {
    sched: Vec<u32>,
    /// Step duration, seconds.
    pub duration: f64,
}

fn ceil_div(a: u64, b: u64) -> usize {
    a.div_ceil(b) as usize
}

impl Worker {
    /// Composes the next step and returns its duration in seconds, or `None`
    /// when there is nothing to run (or a step is already in flight).
    pub fn begin_step(&mut self, cost: &CostModel, progress: &mut Vec<Progress>) -> Option<f64> {
        if self.plan.is_some() || !self.has_work() {
            return None;
        }
        let bs = self.kv.block_size() as u64;
        let mut budget = self.cfg.max_num_batched_tokens.max(1);
        let mut sched: Vec<u32> = Vec::with_capacity(self.running.len() + 8);
        let mut preempted = false;
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let s = &self.running[i];
            let need = (s.total() - s.computed).min(budget);
            let mut scheduled = true;
            loop {
                let s = &mut self.running[i];
                let want =
                    ceil_div(u64::from(s.computed + need), bs).saturating_sub(s.blocks.len());
                if want == 0 || self.kv.allocate(want, &mut s.blocks) {
                    break;
                }
                let victim = self.running.len() - 1;
                self.preempt(victim, progress);
                preempted = true;
                if victim == i {
                    scheduled = false;
                    break;
                }
            }
            if !scheduled {
                break;
            }
            sched.push(need);
            budget -= need;
            i += 1;
        }
        sched.resize(self.running.len(), 0);
        let mut load_bytes = 0.0;
        if !preempted {
            load_bytes = self.admit(&mut budget, &mut sched, cost.kv_bytes_per_token());
        }
        let mut shape = StepShape::default();
        for (s, &n) in self.running.iter().zip(&sched) {
            if n == 0 {
                continue;
            }
            if n == 1 && s.computed > 0 {
                shape.add_decode(u64::from(s.computed) + 1);
            } else {
                shape.prefills.push((s.computed, n));
            }
            if s.computed + n == s.total() {
                shape.sampled += 1;
            }
        }
        if shape.tokens() == 0 {
            return None;
        }
        let duration = cost.step_ms(&shape) / 1e3 + cost.h2d_seconds(load_bytes);
        self.counters.steps += 1;
        self.counters.busy_s += duration;
        self.plan = Some(StepPlan { sched, duration });
        Some(duration)
    }

    fn preempt(&mut self, idx: usize, progress: &mut Vec<Progress>) {
        let mut s = self.running.remove(idx);
        self.kv.release(&s.blocks);
        s.blocks.clear();
        s.computed = 0;
        s.committed = 0;
        // A P/D decode request's prompt came from a prefill worker once;
        // preempted, its blocks are gone and it recomputes here, as vLLM
        // does once the connector's transfer has been consumed.
        if s.kind == SeqKind::RemoteKv {
            s.kind = SeqKind::Full;
        }
        self.counters.preemptions += 1;
        progress.push(Progress::Preempted { req: s.req });
        self.waiting.push_front(s);
    }

    /// Admits waiting sequences; returns bytes loaded from the CPU tier.
    fn admit(&mut self, budget: &mut u32, sched: &mut Vec<u32>, kv_bytes: f64) -> f64 {
        let bs = self.kv.block_size();
        let mut load_bytes = 0.0;
        while *budget > 0 && (self.running.len() as u32) < self.cfg.max_num_seqs {
            let Some(s) = self.waiting.front() else { break };
            let total = s.total();
            let max_hit = ((total.saturating_sub(1)) as usize / bs).min(s.keys.len());
            let (gh, gfree) = self.kv.gpu_prefix(&s.keys, max_hit);
            let ch = self.kv.cpu_prefix(&s.keys, gh, max_hit);
            let cached = ((gh + ch) * bs) as u32;
            let (computed, chunk) = match s.kind {
                SeqKind::RemoteKv => (total - 1, 1),
                _ => (cached, (total - cached).min(*budget)),
            };
            let blocks = ceil_div(u64::from(computed + chunk), bs as u64);
            let fresh = blocks.saturating_sub(gh);
            if self.kv.free_blocks().saturating_sub(gfree) < fresh {
                break;
            }
            let Some(mut s) = self.waiting.pop_front() else {
                break;
            };
            self.kv.acquire(&s.keys[..gh], &mut s.blocks);
            if ch > 0 {
                let parent = gh.checked_sub(1).map(|j| s.keys[j]);
                if self
                    .kv
                    .load_from_cpu(&s.keys[gh..gh + ch], parent, &mut s.blocks)
                {
                    load_bytes += (ch * bs) as f64 * kv_bytes;
                }
            }
            let rest = blocks.saturating_sub(s.blocks.len());
            if !self.kv.allocate(rest, &mut s.blocks) {
                // Cannot happen after the capacity check; put it back unharmed.
                self.kv.release(&s.blocks);
                s.blocks.clear();
                self.waiting.push_front(s);
                break;
            }
            s.computed = computed;
            s.committed = gh + ch;
            if !s.admitted {
                s.admitted = true;
                s.cached_tokens = cached.min(s.prompt_len());
                self.counters.prefix_queries += u64::from(s.prompt_len());
                self.counters.prefix_hits += (gh * bs) as u64;
                self.counters.external_hits += (ch * bs) as u64;
            }
            sched.push(chunk);
            *budget -= chunk;
            self.running.push(s);
        }
        load_bytes
    }

    /// Applies the step in flight: advances sequences, commits full blocks,
    /// emits tokens, retires finished sequences.
    pub fn finish_step(&mut self, progress: &mut Vec<Progress>) {
        let Some(plan) = self.plan.take() else { return };
        let bs = self.kv.block_size();
        let vocab = self.vocab;
        let mut scratch = Vec::new();
        let mut toks = Vec::new();
        let mut done = vec![false; self.running.len()];
        for (idx, s) in self.running.iter_mut().enumerate() {
            let n = plan.sched.get(idx).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let before_total = s.total();
            let prompt_part = s.prompt_len().saturating_sub(s.computed).min(n);
            self.counters.prompt_tokens += u64::from(prompt_part);
            s.computed += n;
            let full = (s.computed as usize / bs).min(s.blocks.len());
            if full > s.committed {
                s.ensure_keys(full, bs, vocab, &mut scratch);
            }
            // Blocks whose keys could not be computed stay uncached.
            let full = full.min(s.keys.len());
            if full > s.committed {
                s.block_tokens(s.committed, full, bs, vocab, &mut toks);
                let parent = s.committed.checked_sub(1).map(|j| s.keys[j]);
                self.kv.commit(
                    &s.blocks[s.committed..full],
                    &s.keys[s.committed..full],
                    parent,
                    &toks,
                );
                s.committed = full;
            }
            if s.computed < before_total {
                continue;
            }
            if s.kind == SeqKind::PrefillOnly {
                done[idx] = true;
                continue;
            }
            s.generated += 1;
            self.counters.generation_tokens += 1;
            if s.generated == 1 {
                progress.push(Progress::FirstToken {
                    req: s.req,
                    cached_tokens: s.cached_tokens,
                });
            } else {
                progress.push(Progress::Token { req: s.req });
            }
            if s.generated >= s.output_len {
                done[idx] = true;
            }
        }
        let running = std::mem::take(&mut self.running);
        let aborting = std::mem::take(&mut self.aborting);
        for (s, d) in running.into_iter().zip(done) {
            if aborting.contains(&s.req) {
                // Its client is gone: whatever the step did for it is dropped.
                self.kv.release(&s.blocks);
                continue;
            }
            if !d {
                self.running.push(s);
                continue;
            }
            self.kv.release(&s.blocks);
            if s.kind == SeqKind::PrefillOnly {
                let mut s = s;
                s.blocks.clear();
                progress.push(Progress::PrefillDone { seq: Box::new(s) });
            } else {
                self.counters.success += 1;
                progress.push(Progress::Finished { req: s.req });
            }
        }
    }
}
