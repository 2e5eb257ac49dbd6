//! Health of the KV index and of the engines' event streams, fed by the
//! code that applies KV events.

use super::labels::Labels;
use super::metrics::Metrics;
use llmd_kvindex::Tier;
use std::sync::Arc;
use std::time::Duration;

/// What happened on one endpoint's event stream since the last report
/// (deltas, not totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStreamCounts {
    /// Events applied to the index.
    pub applied: u64,
    /// Events skipped for an unknown tag.
    pub unknown_tags: u64,
    /// Batches that failed to decode.
    pub decode_errors: u64,
    /// Sequence gaps (lost batches).
    pub sequence_gaps: u64,
    /// Stream restarts (sequence went backwards).
    pub restarts: u64,
}

fn tier_label(t: Tier) -> &'static str {
    match t {
        Tier::Gpu => "gpu",
        Tier::Cpu => "cpu",
        Tier::Storage => "storage",
    }
}

/// The `reason` label values of `llmd_kvindex_blocks_skipped_total`.
pub(super) const SKIP_REASONS: [&str; 3] = ["unknown_parent", "unknown_medium", "stale"];

impl Metrics {
    fn endpoint_label(&self, endpoint: &str) -> Arc<str> {
        self.endpoint_series(endpoint, None).endpoint.clone()
    }

    /// Adds one report of `endpoint`'s event stream, received at `now`.
    pub fn on_event_batch(&self, endpoint: &str, counts: &EventStreamCounts, now: Duration) {
        let ep = self.endpoint_label(endpoint);
        let labels: Labels = vec![("endpoint", ep.clone())];
        let f = &self.fam;
        // Not brought back for an endpoint removed meanwhile (its batch was
        // on the way): `remove_endpoint` dropped its series.
        self.unless_removed(endpoint, || {
            for (fam, v) in [
                (&f.events_applied, counts.applied),
                (&f.unknown_tags, counts.unknown_tags),
                (&f.decode_errors, counts.decode_errors),
                (&f.sequence_gaps, counts.sequence_gaps),
                (&f.stream_restarts, counts.restarts),
            ] {
                fam.get_or_create(&labels).inc_by(v);
            }
            self.last_event.lock().insert(ep, now)
        });
    }

    /// Sets how many blocks the index holds for `endpoint` in `tier`.
    pub fn set_index_blocks(&self, endpoint: &str, tier: Tier, blocks: u64) {
        let labels: Labels = vec![
            ("endpoint", self.endpoint_label(endpoint)),
            ("tier", Arc::from(tier_label(tier))),
        ];
        self.unless_removed(endpoint, || {
            self.fam
                .index_blocks
                .get_or_create(&labels)
                .set(i64::try_from(blocks).unwrap_or(i64::MAX))
        });
    }

    /// Adds `delta` blocks to `endpoint`'s count in `tier` (never below 0).
    pub(super) fn add_index_blocks(&self, endpoint: &str, tier: Tier, delta: i64) {
        let labels: Labels = vec![
            ("endpoint", self.endpoint_label(endpoint)),
            ("tier", Arc::from(tier_label(tier))),
        ];
        self.unless_removed(endpoint, || {
            let g = self.fam.index_blocks.get_or_create(&labels);
            if delta >= 0 {
                g.inc_by(delta);
            } else {
                let cur = g.get();
                g.set((cur + delta).max(0));
            }
        });
    }

    /// Counts blocks that moved between `endpoint`'s tiers (`moves[from][to]`).
    pub(super) fn add_block_moves(&self, endpoint: &str, moves: &[[u32; 3]; 3]) {
        for from in Tier::ALL {
            for to in Tier::ALL {
                let n = moves[from as usize][to as usize];
                if n == 0 {
                    continue;
                }
                let labels: Labels = vec![
                    ("endpoint", self.endpoint_label(endpoint)),
                    ("from", Arc::from(tier_label(from))),
                    ("to", Arc::from(tier_label(to))),
                ];
                self.unless_removed(endpoint, || {
                    self.fam
                        .block_moves
                        .get_or_create(&labels)
                        .inc_by(u64::from(n))
                });
            }
        }
    }

    /// Counts blocks of `endpoint`'s events that were not placed, by reason
    /// (one of [`SKIP_REASONS`]).
    pub(super) fn add_blocks_skipped(&self, endpoint: &str, reasons: &[(&'static str, u32)]) {
        for &(reason, n) in reasons {
            if n == 0 {
                continue;
            }
            let labels: Labels = vec![
                ("endpoint", self.endpoint_label(endpoint)),
                ("reason", Arc::from(reason)),
            ];
            self.unless_removed(endpoint, || {
                self.fam
                    .blocks_skipped
                    .get_or_create(&labels)
                    .inc_by(u64::from(n))
            });
        }
    }

    /// Counts a request whose trace context header was malformed.
    pub fn record_invalid_trace_context(&self, kind: crate::trace_context::InvalidTraceContext) {
        let header = match kind {
            crate::trace_context::InvalidTraceContext::Traceparent => "traceparent",
            crate::trace_context::InvalidTraceContext::Tracestate => "tracestate",
        };
        let labels: Labels = vec![("header", Arc::from(header))];
        self.fam.trace_context_invalid.get_or_create(&labels).inc();
    }

    /// Counts an OpenAI body picked on estimated token ids, by `reason`.
    pub fn record_prompt_estimated(&self, reason: &'static str) {
        let labels: Labels = vec![("reason", Arc::from(reason))];
        self.fam.prompts_estimated.get_or_create(&labels).inc();
    }

    /// Counts an endpoint refused for want of a prefix-index slot.
    pub fn record_endpoint_refused(&self) {
        self.fam.endpoints_refused.inc();
    }

    /// Sets every tier of `endpoint` to zero (its cache was cleared).
    pub(super) fn clear_index_blocks(&self, endpoint: &str) {
        for t in Tier::ALL {
            self.add_index_blocks(endpoint, t, i64::MIN / 2);
        }
    }

    /// Updates the gauges computed at exposition time: staleness, and the
    /// lifecycle table's size (read here so racing writers cannot leave a
    /// stale value).
    pub(super) fn refresh_staleness(&self, now: Duration) {
        self.fam.tracked.set(self.table.len() as i64);
        for (ep, at) in self.last_event.lock().iter() {
            let labels: Labels = vec![("endpoint", ep.clone())];
            self.fam
                .staleness
                .get_or_create(&labels)
                .set(now.saturating_sub(*at).as_secs_f64());
        }
    }

    /// Sets the prefix indexes' size gauges and brings their eviction
    /// counters up to the indexes' own counts (called before exposition).
    pub fn refresh_index_tables(
        &self,
        indexes: impl Iterator<Item = (Arc<str>, llmd_kvindex::index::IndexStats)>,
    ) {
        for (producer, st) in indexes {
            let labels: Labels = vec![("producer", producer.clone())];
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.fam
                .index_entries
                .get_or_create(&labels)
                .set(gauge(st.entries));
            self.fam
                .index_capacity
                .get_or_create(&labels)
                .set(gauge(st.capacity));
            let displaced = st.displacement_failures;
            for (reason, n) in [
                ("capacity", st.evictions.saturating_sub(displaced)),
                ("displacement", displaced),
            ] {
                let labels: Labels =
                    vec![("producer", producer.clone()), ("reason", reason.into())];
                let c = self.fam.index_evicted.get_or_create(&labels);
                c.inc_by(n.saturating_sub(c.get()));
            }
        }
    }

    pub(super) fn forget_index_endpoint(&self, ep: &Arc<str>) {
        self.last_event.lock().remove(ep);
        let labels: Labels = vec![("endpoint", ep.clone())];
        let f = &self.fam;
        f.staleness.remove(&labels);
        for fam in [
            &f.events_applied,
            &f.unknown_tags,
            &f.decode_errors,
            &f.sequence_gaps,
            &f.stream_restarts,
        ] {
            fam.remove(&labels);
        }
        for t in Tier::ALL {
            let mut l = labels.clone();
            l.push(("tier", Arc::from(tier_label(t))));
            f.index_blocks.remove(&l);
            for to in Tier::ALL {
                let l = vec![
                    ("endpoint", ep.clone()),
                    ("from", Arc::from(tier_label(t))),
                    ("to", Arc::from(tier_label(to))),
                ];
                f.block_moves.remove(&l);
            }
        }
        for reason in SKIP_REASONS {
            f.blocks_skipped.remove(&vec![
                ("endpoint", ep.clone()),
                ("reason", Arc::from(reason)),
            ]);
        }
    }
}
