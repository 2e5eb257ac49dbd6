//! What crosses a worker's boundary: KV transfers (P/D), published KV
//! events, scrapes, and the end-of-run index check.

use llmd_kvindex::events::EventBatch;

use crate::worker::{render_metrics, Seq, SeqKind};

use super::sim::Sim;
use super::Kind;

/// Idle scrape intervals simulated one by one before a jump to the next
/// arrival (see `scrape`).
const IDLE_SCRAPES: f64 = 1000.0;

impl Sim<'_> {
    /// P/D: ship the prompt's KV (what the decode worker lacks) over the link.
    pub(super) fn hand_over(&mut self, seq: Seq) {
        let req = seq.req as usize;
        let d = self.routes[req].decode;
        self.records[req].cached_tokens = seq.cached_tokens;
        let bs = self.sc.engine.block_size as usize;
        let max = (seq.prompt_len().saturating_sub(1) as usize / bs).min(seq.keys.len());
        let (local, _) = self.workers[d].kv().gpu_prefix(&seq.keys, max);
        let missing = f64::from(seq.prompt_len()) - (local * bs) as f64;
        let link = &self.sc.fleet.kv_transfer;
        let t = link.latency_ms / 1e3
            + missing.max(0.0) * self.cost.kv_bytes_per_token() / (link.bandwidth_gbps * 1e9);
        let next = Seq::new(
            seq.req,
            SeqKind::RemoteKv,
            seq.prompt.clone(),
            seq.output_len,
            seq.output_seed,
            seq.chain,
            seq.keys,
        );
        self.push(self.now + t, Kind::KvReady(d, Box::new(next)));
    }

    pub(super) fn publish(&mut self, w: usize) {
        let events = self.workers[w].take_events();
        if events.is_empty() {
            return;
        }
        let batch = EventBatch {
            ts: self.now,
            data_parallel_rank: Some(0),
            events,
            skipped_events: 0,
        };
        self.batches += 1;
        let got = match self.publishers[w].send(&batch) {
            Ok(got) => got,
            Err(e) => {
                self.violations
                    .push(format!("worker {w}: published batch does not decode: {e}"));
                return;
            }
        };
        if let Some(m) = self.mirror.as_mut() {
            m.apply(w, &got.batch);
        }
        self.router
            .on_kv_events(w, &got.payload, got.seq, &got.batch);
    }

    pub(super) fn scrape(&mut self) {
        let text = self.router.wants_metrics_text();
        for w in 0..self.workers.len() {
            self.scraped[w] = self.workers[w].snapshot(self.now);
            if text {
                let page = render_metrics(&self.workers[w], &self.sc.model_name);
                self.router.on_scrape(w, &page);
            }
        }
        if self.next.is_some() || self.active > 0 {
            let interval = self.sc.fleet.scrape_interval_ms / 1e3;
            let mut at = self.now + interval;
            // Nothing in flight: every scrape until the next arrival reads
            // the same pages. A gap of more than IDLE_SCRAPES intervals
            // (a trace's pause, a rare arrival) jumps to the last interval
            // before the arrival, so a far arrival costs one scrape, not
            // one per interval; shorter gaps are scraped as they were.
            if self.active == 0 {
                if let Some(r) = &self.next {
                    let intervals = ((r.arrival - self.now) / interval).floor();
                    if intervals > IDLE_SCRAPES {
                        at = self.now + intervals * interval;
                    }
                }
            }
            // Far from 0 a float clock may not resolve the interval: the
            // next scrape is then the next representable time, never now.
            if at <= self.now {
                // The next float after a non-negative finite one.
                at = f64::from_bits(self.now.to_bits() + 1);
            }
            self.push(at, Kind::Scrape);
        }
    }

    pub(super) fn verify(&self) -> Vec<String> {
        let Some(m) = &self.mirror else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, w) in self.workers.iter().enumerate() {
            let mut gpu: Vec<u64> = w.kv().gpu_keys().collect();
            gpu.sort_unstable();
            if gpu != m.keys_of(i, llmd_kvindex::Tier::Gpu) {
                out.push(format!(
                    "worker {i}: GPU keys differ from the event-fed index"
                ));
            }
            let mut cpu = w.kv().cpu_keys();
            cpu.sort_unstable();
            if cpu != m.keys_of(i, llmd_kvindex::Tier::Cpu) {
                out.push(format!(
                    "worker {i}: CPU keys differ from the event-fed index"
                ));
            }
        }
        out
    }
}
