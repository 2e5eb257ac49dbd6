//! One scheduling profile: filters, then weighted scorers, then one picker.

use std::sync::Arc;

use super::context::{CycleContext, EndpointIndex, ProfileRunResult};
use super::explain::ProfileTrace;
use super::plugin::{Filter, Picker, Scorer};
use super::record::{ProfileNames, ProfileRecord};
use crate::error::ScheduleError;

/// A filter with its instance name.
#[derive(Clone)]
pub struct NamedFilter {
    /// Instance name.
    pub name: Arc<str>,
    /// The filter.
    pub filter: Arc<dyn Filter>,
}

/// A scorer with its instance name and weight.
#[derive(Clone)]
pub struct WeightedScorer {
    /// Instance name.
    pub name: Arc<str>,
    /// The scorer.
    pub scorer: Arc<dyn Scorer>,
    /// Weight (not normalised; llm-d default 1.0).
    pub weight: f64,
}

/// A picker with its instance name.
#[derive(Clone)]
pub struct NamedPicker {
    /// Instance name.
    pub name: Arc<str>,
    /// The picker.
    pub picker: Arc<dyn Picker>,
}

/// A built scheduling profile.
#[derive(Clone)]
pub struct SchedulerProfile {
    /// Profile name (`default`, `decode`, `prefill`, ...).
    pub name: String,
    /// Filters in configured order.
    pub filters: Vec<NamedFilter>,
    /// Scorers in configured order.
    pub scorers: Vec<WeightedScorer>,
    /// The one picker.
    pub picker: NamedPicker,
}

impl std::fmt::Debug for SchedulerProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerProfile")
            .field("name", &self.name)
            .field(
                "filters",
                &self.filters.iter().map(|x| &*x.name).collect::<Vec<_>>(),
            )
            .field(
                "scorers",
                &self
                    .scorers
                    .iter()
                    .map(|x| (&*x.name, x.weight))
                    .collect::<Vec<_>>(),
            )
            .field("picker", &&*self.picker.name)
            .finish()
    }
}

/// `clamp(s, 0, 1)` as llm-d's `enforceScoreRange`; NaN counts as 0.
#[inline]
pub fn clamp_score(s: f64) -> f64 {
    if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 1.0)
    }
}

impl SchedulerProfile {
    /// Runs the profile over `candidates`; an empty filter result is
    /// `ResourceExhausted` naming the profile.
    pub fn run(
        &self,
        ctx: &CycleContext<'_>,
        candidates: &[EndpointIndex],
        trace: &mut ProfileTrace,
    ) -> Result<ProfileRunResult, ScheduleError> {
        let mut record = ProfileRecord::default();
        let r = self.run_recorded(ctx, candidates, &mut record);
        *trace = record.materialise(&ProfileNames::from(self), &|i| ctx.endpoint(i).name_arc());
        r
    }

    /// [`SchedulerProfile::run`] recording indices and scores only.
    pub(crate) fn run_recorded(
        &self,
        ctx: &CycleContext<'_>,
        candidates: &[EndpointIndex],
        record: &mut ProfileRecord,
    ) -> Result<ProfileRunResult, ScheduleError> {
        let mut set: Vec<EndpointIndex> = candidates.to_vec();
        let mut before: Vec<EndpointIndex> = Vec::new();
        for f in &self.filters {
            before.clear();
            before.extend_from_slice(&set);
            f.filter.filter(ctx, &mut set);
            push_dropped(&before, &set, &mut record.dropped);
            record.filter_ends.push(record.dropped.len() as u32);
            if set.is_empty() {
                let reason = format!(
                    "filter '{}' removed every endpoint in profile '{}'",
                    f.name, self.name
                );
                record.error = Some(reason.clone());
                return Err(ScheduleError::ResourceExhausted {
                    profile: Some(self.name.clone()),
                    reason,
                });
            }
        }
        let n = set.len();
        // Raw scores scorer after scorer, then the totals, in one buffer.
        let scores = &mut record.scores;
        scores.clear();
        scores.resize((self.scorers.len() + 1) * n, 0.0);
        let (raws, totals) = scores.split_at_mut(self.scorers.len() * n);
        for (s, raw) in self.scorers.iter().zip(raws.chunks_exact_mut(n.max(1))) {
            s.scorer.score(ctx, &set, raw);
            for (t, &r) in totals.iter_mut().zip(raw.iter()) {
                *t += clamp_score(r) * s.weight;
            }
        }
        record.scorers_run = self.scorers.len();
        let scored: Vec<(EndpointIndex, f64)> =
            set.iter().copied().zip(totals.iter().copied()).collect();
        record.scored = set;
        let mut targets = Vec::new();
        self.picker.picker.pick(ctx, &scored, &mut targets);
        record.picker_ran = true;
        record.picked.clone_from(&targets);
        if targets.is_empty() {
            let reason = format!(
                "picker '{}' chose nothing in profile '{}'",
                self.picker.name, self.name
            );
            record.error = Some(reason.clone());
            return Err(ScheduleError::ResourceExhausted {
                profile: Some(self.name.clone()),
                reason,
            });
        }
        Ok(ProfileRunResult { targets, scored })
    }
}

/// Survivors are a subsequence of `before`, so one merge pass finds the drops.
fn push_dropped(before: &[EndpointIndex], after: &[EndpointIndex], out: &mut Vec<EndpointIndex>) {
    let mut j = 0;
    for &b in before {
        if j < after.len() && after[j] == b {
            j += 1;
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_dropped;

    #[test]
    fn the_dropped_are_what_the_filter_left_out_in_order() {
        let before: Vec<usize> = (0..10).collect();
        for after in [
            vec![],
            vec![0, 2, 4, 6, 8],
            vec![1, 3, 5, 7, 9],
            before.clone(),
            vec![9],
            vec![0],
        ] {
            let mut out = vec![42];
            push_dropped(&before, &after, &mut out);
            let expect: Vec<usize> = std::iter::once(42)
                .chain(before.iter().copied().filter(|b| !after.contains(b)))
                .collect();
            assert_eq!(out, expect, "after {after:?}");
        }
    }
}
