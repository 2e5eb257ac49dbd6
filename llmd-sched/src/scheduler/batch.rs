//! `pick_batch`: a window of requests picked together, so burst producers
//! (`burst-prefix-cache-producer`) can co-locate the ones sharing a prompt.

use std::sync::Arc;

use super::{Fleet, Scheduler};
use crate::decision::Decision;
use crate::error::ScheduleError;
use crate::model::{Prompt, Request};
use crate::plugins::producers::burst_prefix::{assign, Replica};
use crate::plugins::producers::{estimate_tokens, BurstPrefixProducer, BurstSlot};

impl Scheduler {
    /// Picks a window of requests together, one result per request in order.
    ///
    /// llm-d's `burst-prefix-cache-producer` holds requests for
    /// `windowDurationMs` and assigns them jointly; the library holds nothing,
    /// so the host collects a window ([`Scheduler::burst_window`]) and passes
    /// it here. Each burst producer assigns the window once (llm-d's
    /// assignment, per target model: requests sharing a prompt go to the same
    /// replica), then each request is picked as by [`Scheduler::pick`] with
    /// its assignment as a full prefix match on its replica. Without a burst
    /// producer this is `pick` on each request in turn.
    ///
    /// If a pick panics (a host-supplied predictor, say), the requests of the
    /// window already picked are closed as failed before the panic goes on:
    /// their decisions never reach the host, so nothing would complete them.
    pub fn pick_batch(&self, reqs: &[Request]) -> Vec<Result<Decision, ScheduleError>> {
        let plans = self.plan_bursts(reqs);
        let mut opened = OpenedInWindow {
            scheduler: self,
            ids: Vec::with_capacity(reqs.len()),
        };
        let out = reqs
            .iter()
            .zip(plans)
            .map(|(req, slots)| {
                let d = self.pick_in_batch(req, &slots);
                if d.is_ok() {
                    opened.ids.push(&req.id);
                }
                d
            })
            .collect();
        opened.ids.clear();
        out
    }

    /// The longest `windowDurationMs` of the configured burst producers:
    /// how long a host should collect requests for [`Scheduler::pick_batch`]
    /// (`None` without a burst producer).
    pub fn burst_window(&self) -> Option<std::time::Duration> {
        self.pipeline
            .producers
            .iter()
            .filter_map(|(_, p)| p.as_burst())
            .map(BurstPrefixProducer::window)
            .max()
    }

    /// Every burst producer's assignment of the window, per request.
    fn plan_bursts(&self, reqs: &[Request]) -> Vec<Vec<(Arc<str>, BurstSlot)>> {
        let mut plans = vec![Vec::new(); reqs.len()];
        let bursts: Vec<&BurstPrefixProducer> = self
            .pipeline
            .producers
            .iter()
            .filter_map(|(_, p)| p.as_burst())
            .collect();
        if bursts.is_empty() {
            return plans;
        }
        let fleet = self.fleet.read().clone();
        for b in bursts {
            for (plan, slot) in plans.iter_mut().zip(self.plan_burst(b, &fleet, reqs)) {
                self.metrics.record_burst(&b.name, slot.outcome(), 1);
                plan.push((b.name.clone(), slot));
            }
        }
        plans
    }

    /// One burst producer's slots: the first `maxBatchSize` requests are the
    /// window, assigned per target model over the candidates of the model's
    /// first request with a prefix (llm-d assigns a window over one pool);
    /// the rest are past the cap.
    fn plan_burst(
        &self,
        b: &BurstPrefixProducer,
        fleet: &Fleet,
        reqs: &[Request],
    ) -> Vec<BurstSlot> {
        let admitted = b.config.max_batch.unwrap_or(usize::MAX).min(reqs.len());
        let mut slots = vec![BurstSlot::BatchFull; reqs.len()];
        let hashes: Vec<Vec<u64>> = reqs[..admitted]
            .iter()
            .map(|r| match &r.prompt {
                Prompt::Tokens(t) => b.block_hashes(r, t),
                Prompt::Text(s) => b.block_hashes(r, &estimate_tokens(s)),
            })
            .collect();
        let mut models: Vec<&str> = Vec::new();
        for r in &reqs[..admitted] {
            if !models.contains(&r.target_model()) {
                models.push(r.target_model());
            }
        }
        for model in models {
            let members: Vec<usize> = (0..admitted)
                .filter(|&i| reqs[i].target_model() == model)
                .collect();
            let pool = members
                .iter()
                .find(|&&i| !hashes[i].is_empty())
                .map(|&i| self.candidates(fleet, &reqs[i]))
                .unwrap_or_default();
            let replicas: Vec<Replica<'_>> = pool
                .iter()
                .map(|&e| Replica {
                    name: fleet.eps[e].name(),
                    running: fleet.eps[e].running_requests_size(),
                })
                .collect();
            let window: Vec<&[u64]> = members.iter().map(|&i| hashes[i].as_slice()).collect();
            for (&i, placed) in members.iter().zip(assign(&b.config, &window, &replicas)) {
                let blocks = hashes[i].len() as u32;
                slots[i] = match placed {
                    Some(r) => BurstSlot::Assigned {
                        uid: fleet.eps[pool[r]].uid(),
                        blocks,
                    },
                    None => BurstSlot::NoAffinity { blocks },
                };
            }
        }
        slots
    }
}

/// The requests of a `pick_batch` window picked so far; dropped with any
/// left (only when a later pick unwinds), it closes them as failed.
struct OpenedInWindow<'s, 'r> {
    scheduler: &'s Scheduler,
    ids: Vec<&'r str>,
}

impl Drop for OpenedInWindow<'_, '_> {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            self.scheduler
                .on_error(id, crate::lifecycle::RequestErrorKind::Other);
        }
    }
}
