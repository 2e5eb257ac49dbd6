//! One scheduling profile: filters, then weighted scorers, then one picker.

use std::sync::Arc;

use super::context::{CycleContext, EndpointIndex, ProfileRunResult};
use super::explain::{FilterTrace, ProfileTrace, ScorerTrace};
use super::plugin::{Filter, Picker, Scorer};
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
        trace.profile.clone_from(&self.name);
        let mut set: Vec<EndpointIndex> = candidates.to_vec();
        let mut before: Vec<EndpointIndex> = Vec::new();
        for f in &self.filters {
            before.clear();
            before.extend_from_slice(&set);
            f.filter.filter(ctx, &mut set);
            trace.filters.push(FilterTrace {
                name: f.name.clone(),
                dropped: dropped(ctx, &before, &set),
            });
            if set.is_empty() {
                let reason = format!(
                    "filter '{}' removed every endpoint in profile '{}'",
                    f.name, self.name
                );
                trace.error = Some(reason.clone());
                return Err(ScheduleError::ResourceExhausted {
                    profile: Some(self.name.clone()),
                    reason,
                });
            }
        }
        trace.scored = set.iter().map(|&i| ctx.endpoint(i).name_arc()).collect();
        let mut totals = vec![0.0f64; set.len()];
        let mut raw = vec![0.0f64; set.len()];
        for s in &self.scorers {
            raw.iter_mut().for_each(|x| *x = 0.0);
            s.scorer.score(ctx, &set, &mut raw);
            let weighted: Vec<f64> = raw.iter().map(|&r| clamp_score(r) * s.weight).collect();
            for (t, w) in totals.iter_mut().zip(&weighted) {
                *t += w;
            }
            trace.scorers.push(ScorerTrace {
                name: s.name.clone(),
                weight: s.weight,
                raw: raw.clone(),
                weighted,
            });
        }
        let scored: Vec<(EndpointIndex, f64)> =
            set.iter().copied().zip(totals.iter().copied()).collect();
        trace.totals = totals;
        let mut targets = Vec::new();
        self.picker.picker.pick(ctx, &scored, &mut targets);
        trace.picker = Some(self.picker.name.clone());
        trace.picked = targets
            .iter()
            .map(|&i| ctx.endpoint(i).name_arc())
            .collect();
        if targets.is_empty() {
            let reason = format!(
                "picker '{}' chose nothing in profile '{}'",
                self.picker.name, self.name
            );
            trace.error = Some(reason.clone());
            return Err(ScheduleError::ResourceExhausted {
                profile: Some(self.name.clone()),
                reason,
            });
        }
        Ok(ProfileRunResult { targets, scored })
    }
}

/// Survivors are a subsequence of `before`, so one merge pass finds the drops.
fn dropped(
    ctx: &CycleContext<'_>,
    before: &[EndpointIndex],
    after: &[EndpointIndex],
) -> Vec<Arc<str>> {
    let mut out = Vec::new();
    let mut j = 0;
    for &b in before {
        if j < after.len() && after[j] == b {
            j += 1;
        } else {
            out.push(ctx.endpoint(b).name_arc());
        }
    }
    out
}
