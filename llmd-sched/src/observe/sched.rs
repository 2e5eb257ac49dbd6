//! The scheduler's side of the metrics: turns a `pick` result, its stage
//! timestamps and its predicted prefix hits into records, and KV-event
//! batches into index-health counts. Called by `Scheduler`; hosts use the
//! `Scheduler` methods.

use super::health::EventStreamCounts;
use super::labels::PdDecision;
use super::labels::RejectReason;
use super::metrics::Metrics;
use super::record::{DecisionRecord, Leg, RejectRecord};
use super::series::{Cache, ProfileSeries, StageSeries};
use super::trace::{Attribute, DecisionExplain, ProfileExplain, ScorerExplain, SpanRecord};
use crate::decision::Decision;
use crate::error::ScheduleError;
use crate::framework::{CycleContext, EndpointIndex, ProfileOutcome, ProfileTrace};
use crate::kv::ApplyStats;
use crate::model::Request;
use llmd_kvindex::events::{EventBatch, KvEvent, SeqStatus};
use llmd_kvindex::Tier;
use prometheus_client::metrics::counter::Counter;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Clock readings taken during one `pick` (nanoseconds), plus the prefix
/// hits the producers predicted for the chosen endpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickFacts {
    /// Entry into `pick`.
    pub start: u64,
    /// Producers done.
    pub produced: u64,
    /// Profile runs done.
    pub profiled: u64,
    /// `pick` returning.
    pub end: u64,
    /// Tokens per block of the producer that predicted the hits (0 = none).
    pub block_size: u32,
    /// Predicted cached blocks on the primary target.
    pub primary_hit_blocks: u32,
    /// Predicted cached blocks on the prefill target.
    pub prefill_hit_blocks: u32,
    /// The primary target's [`crate::model::KV_BYTES_LABEL`], when set and valid.
    pub kv_bytes_per_token: Option<u64>,
    /// Blocks the prefix producers' index lookups were asked about.
    pub lookup_queried_blocks: u32,
    /// Block positions those lookups probed in their indexes.
    pub lookup_probed_blocks: u32,
    /// Serial number of the request's opening in the scheduler (0: none).
    pub opening: u64,
}

impl PickFacts {
    /// Takes the predicted cached blocks of the chosen endpoints from the
    /// producers' prefix matches (the longest any producer found), and what
    /// the producers' index lookups cost.
    pub(crate) fn set_predicted_hits(
        &mut self,
        ctx: &CycleContext<'_>,
        primary: Option<EndpointIndex>,
        prefill: Option<EndpointIndex>,
    ) {
        let best = |ep: Option<EndpointIndex>| {
            ctx.prefix_infos()
                .iter()
                .filter_map(|p| {
                    ep.and_then(|e| p.get(e))
                        .map(|m| (m.cached_blocks, p.block_size))
                })
                .max_by_key(|(blocks, _)| *blocks)
        };
        let p = best(primary);
        let f = best(prefill);
        self.primary_hit_blocks = p.map_or(0, |x| x.0);
        self.prefill_hit_blocks = f.map_or(0, |x| x.0);
        self.block_size = f.or(p).map_or(0, |x| x.1);
        self.kv_bytes_per_token = primary.and_then(|e| ctx.endpoints()[e].kv_bytes_per_token());
        for p in ctx.prefix_infos() {
            self.lookup_queried_blocks += p.queried_blocks;
            self.lookup_probed_blocks += p.probed_blocks;
        }
    }
}

/// Handles the scheduler resolves once.
#[derive(Debug, Default)]
pub(crate) struct SchedHandles {
    stages: OnceLock<[StageSeries; 4]>,
    /// `llmd_kvindex_lookup_blocks{kind="queried"}` and `{kind="probed"}`.
    lookups: OnceLock<[Counter; 2]>,
    profiles: Cache<Box<str>, ProfileSeries>,
}

fn ns(v: u64) -> Duration {
    Duration::from_nanos(v)
}

fn winner(t: &ProfileTrace) -> Option<usize> {
    let picked = t.picked.first()?;
    t.scored.iter().position(|n| n == picked)
}

impl Metrics {
    /// Records one `pick`: stage latencies, per-profile scores, and the
    /// decision or the rejection. `Scheduler::pick` calls it; it is public so
    /// that a host replaying decisions (or a benchmark) can record them.
    pub fn record_pick(
        &self,
        req: &Request,
        result: &Result<Decision, ScheduleError>,
        f: &PickFacts,
    ) {
        let stages = self.sched.stages.get_or_init(|| {
            ["total", "produce", "profiles", "finish"].map(|s| self.stage_series(s))
        });
        stages[0].observe(ns(f.end.saturating_sub(f.start)));
        if f.lookup_queried_blocks > 0 {
            let lookups = self.sched.lookups.get_or_init(|| {
                ["queried", "probed"].map(|k| {
                    self.fam
                        .lookup_blocks
                        .get_or_create_owned(&vec![("kind", Arc::from(k))])
                })
            });
            lookups[0].inc_by(u64::from(f.lookup_queried_blocks));
            lookups[1].inc_by(u64::from(f.lookup_probed_blocks));
        }
        // Arrival as the host saw it; `pick`'s own start when not given.
        let arrived = ns(req
            .arrived_at_ns
            .filter(|&a| a <= f.start)
            .unwrap_or(f.start));
        // Objectives are finite and positive; one too large for a Duration
        // (over 584 years) is as good as none, and kept as the longest.
        let ms = |v: f64| Duration::try_from_secs_f64(v / 1e3).unwrap_or(Duration::MAX);
        let slo = super::SloTargets {
            ttft: req.ttft_slo_ms().map(ms),
            tpot: req.tpot_slo_ms().map(ms),
            e2e: None,
        };
        let d = match result {
            Ok(d) => d,
            Err(e) => {
                let reason = match e {
                    ScheduleError::NoEndpoints { .. } => RejectReason::NoEndpoints,
                    // A malformed request is the client's fault (400), not a rejection.
                    ScheduleError::InvalidRequest(_) => return,
                    // A conditional-decode miss (412, `Prefer: if-available`) is an
                    // answer the client asked for, not a capacity rejection; the
                    // host retries without the preference, which is counted then.
                    ScheduleError::PreconditionFailed { .. } => return,
                    // llm-d maps every other scheduling failure to 429.
                    _ => RejectReason::Saturated,
                };
                let profile = match e {
                    ScheduleError::ResourceExhausted {
                        profile: Some(p), ..
                    } => p.as_str(),
                    _ => super::labels::NONE,
                };
                self.on_rejected(&RejectRecord {
                    model: &req.model,
                    profile,
                    reason,
                    arrived,
                    decided: ns(f.end),
                    slo,
                });
                return;
            }
        };
        stages[1].observe(ns(f.produced.saturating_sub(f.start)));
        stages[2].observe(ns(f.profiled.saturating_sub(f.produced)));
        stages[3].observe(ns(f.end.saturating_sub(f.profiled)));
        for o in d.explanation.outcomes() {
            self.record_profile(&o);
        }
        let Some(primary) = d.primary() else {
            return;
        };
        self.on_decision(&DecisionRecord {
            request_id: &req.id,
            model: &req.model,
            profile: d.explanation.primary_profile_name().unwrap_or(""),
            arrived,
            decided: ns(f.end),
            prompt_tokens: u32::try_from(d.explanation.prompt_token_count()).unwrap_or(u32::MAX),
            block_size: f.block_size,
            decode: Leg {
                endpoint: &primary.name,
                predicted_hit_blocks: f.primary_hit_blocks,
            },
            prefill: d.prefill_target.as_ref().map(|t| Leg {
                endpoint: &t.name,
                predicted_hit_blocks: f.prefill_hit_blocks,
            }),
            // Read from the record: the pick path never builds the full
            // explanation (dereferencing `explanation` would).
            encode: d.explanation.decision_type().starts_with("encode"),
            slo,
            kv_bytes_per_token: f.kv_bytes_per_token,
            opening: f.opening,
        });
    }

    fn record_profile(&self, o: &ProfileOutcome<'_>) {
        let series = self.sched.profiles.get_or_make(o.profile(), || {
            let names: Vec<&str> = o.scorer_names().collect();
            (
                Box::from(o.profile()),
                self.profile_series(o.profile(), &names),
            )
        });
        let mut raw = [0.0f64; 16];
        let mut n = 0;
        for (slot, r) in raw.iter_mut().zip(o.winner_raw()) {
            *slot = r.clamp(0.0, 1.0);
            n += 1;
        }
        series.record(&raw[..n], o.winner_total(), o.runner_up_total());
    }

    /// Records one KV-event payload from `endpoint`: the decoded batch (or
    /// `None` when it failed to decode), its sequence status and the number
    /// of events applied; block gauges follow the stored/removed/cleared
    /// events per tier.
    /// `applied` is what the prefix indexes did with the batch (`None` when
    /// the pipeline has none): block counts then follow what was placed,
    /// not what the events announced, and blocks not placed are counted by
    /// reason.
    pub(crate) fn record_kv_batch(
        &self,
        endpoint: &str,
        batch: Option<&EventBatch>,
        applied: Option<&ApplyStats>,
        status: Option<SeqStatus>,
        now: u64,
    ) {
        let mut counts = EventStreamCounts {
            decode_errors: u64::from(batch.is_none()),
            sequence_gaps: u64::from(matches!(status, Some(SeqStatus::Gap { .. }))),
            restarts: u64::from(status == Some(SeqStatus::Restart)),
            ..EventStreamCounts::default()
        };
        if status == Some(SeqStatus::Restart) {
            self.clear_index_blocks(endpoint);
        }
        if let (Some(b), Some(st)) = (batch, applied) {
            let not_applied = st.skipped_stale + st.skipped_unknown_medium;
            counts.applied = (b.events.len() as u64).saturating_sub(u64::from(not_applied));
            counts.unknown_tags = u64::from(b.skipped_events);
            if st.cleared > 0 {
                self.clear_index_blocks(endpoint);
            }
            for t in Tier::ALL {
                let i = t as usize;
                let delta = i64::from(st.stored_by_tier[i]) - i64::from(st.removed_by_tier[i]);
                if delta != 0 {
                    self.add_index_blocks(endpoint, t, delta);
                }
            }
            self.add_block_moves(endpoint, &st.moves);
            self.add_blocks_skipped(
                endpoint,
                &[
                    (super::health::SKIP_REASONS[0], st.skipped_unknown_parent),
                    (super::health::SKIP_REASONS[1], st.skipped_unknown_medium),
                    (super::health::SKIP_REASONS[2], st.skipped_stale),
                ],
            );
        } else if let Some(b) = batch {
            counts.applied = b.events.len() as u64;
            counts.unknown_tags = u64::from(b.skipped_events);
            for e in &b.events {
                match e {
                    KvEvent::BlockStored(s) => {
                        let tier = Tier::from_medium(s.medium.as_deref()).unwrap_or(Tier::Gpu);
                        self.add_index_blocks(endpoint, tier, s.block_hashes.len() as i64);
                    }
                    KvEvent::BlockRemoved(r) => {
                        let tier = Tier::from_medium(r.medium.as_deref()).unwrap_or(Tier::Gpu);
                        self.add_index_blocks(endpoint, tier, -(r.block_hashes.len() as i64));
                    }
                    KvEvent::AllBlocksCleared => self.clear_index_blocks(endpoint),
                }
            }
        }
        self.on_event_batch(endpoint, &counts, ns(now));
    }
}

/// A decision's explanation as span attributes for the host's current span.
pub fn decision_attributes(d: &Decision) -> Vec<Attribute> {
    with_explain(d, |e| e.attributes())
}

/// A decision's explanation as llm-d's span tree.
pub fn decision_spans(d: &Decision) -> Vec<SpanRecord> {
    with_explain(d, |e| e.spans())
}

fn with_explain<R>(d: &Decision, f: impl FnOnce(&DecisionExplain<'_>) -> R) -> R {
    let x = &d.explanation;
    let winners: Vec<Option<usize>> = x.profiles.iter().map(winner).collect();
    let scorers: Vec<Vec<ScorerExplain<'_>>> = x
        .profiles
        .iter()
        .zip(&winners)
        .map(|(t, w)| {
            t.scorers
                .iter()
                .map(|s| ScorerExplain {
                    name: &s.name,
                    plugin_type: &s.name,
                    weight: s.weight,
                    picked_score: w.and_then(|w| s.raw.get(w)).copied().unwrap_or(0.0),
                })
                .collect()
        })
        .collect();
    let ranked: Vec<Vec<(&str, f64)>> = x
        .profiles
        .iter()
        .map(|t| {
            let mut r: Vec<(&str, f64)> = t
                .scored
                .iter()
                .map(|n| &**n)
                .zip(t.totals.iter().copied())
                .collect();
            r.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            r
        })
        .collect();
    let profiles: Vec<ProfileExplain<'_>> = x
        .profiles
        .iter()
        .enumerate()
        .map(|(i, t)| ProfileExplain {
            profile: &t.profile,
            candidates: x.candidates.len(),
            after_filters: t.scored.len(),
            scorers: &scorers[i],
            ranked: &ranked[i],
            picked: t.picked.first().map(|p| &**p),
        })
        .collect();
    let encode = x.decision_type.is_some_and(|t| t.starts_with("encode"));
    let pd = PdDecision::of(encode, d.prefill_target.is_some());
    f(&DecisionExplain {
        request_id: &x.request_id,
        model: &x.model,
        profiles: &profiles,
        pd,
        pd_reason: x.decision_type,
        decode_target: d.primary().map(|t| t.address.as_str()),
        prefill_target: d.prefill_target.as_ref().map(|t| t.address.as_str()),
    })
}
