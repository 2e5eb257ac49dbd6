//! Decision traces as recorded on the hot path: endpoint indices and one flat
//! score buffer per profile. Names, per-scorer vectors and weighted scores are
//! materialised into an [`Explanation`] only when a host reads it, so a `pick`
//! whose explanation nobody reads pays for neither the name reference counts
//! nor the per-scorer allocations.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};

use super::context::EndpointIndex;
use super::explain::{Explanation, FilterTrace, PredictedLatency, ProfileTrace, ScorerTrace};
use super::profile::{clamp_score, SchedulerProfile};

/// Endpoint names by snapshot index, resolved when an explanation is materialised.
pub(crate) trait EndpointNames: Send + Sync {
    /// Name of the endpoint at index `i` of the snapshot.
    fn endpoint_name(&self, i: EndpointIndex) -> Arc<str>;
}

/// The plugin instance names of one profile, taken once when the pipeline is built.
#[derive(Debug)]
pub(crate) struct ProfileNames {
    name: String,
    filters: Vec<Arc<str>>,
    scorers: Vec<(Arc<str>, f64)>,
    picker: Arc<str>,
}

impl ProfileNames {
    /// The names of every profile, in pipeline order.
    pub(crate) fn of(profiles: &[SchedulerProfile]) -> Arc<[ProfileNames]> {
        profiles.iter().map(ProfileNames::from).collect()
    }
}

impl From<&SchedulerProfile> for ProfileNames {
    fn from(p: &SchedulerProfile) -> Self {
        ProfileNames {
            name: p.name.clone(),
            filters: p.filters.iter().map(|f| f.name.clone()).collect(),
            scorers: p
                .scorers
                .iter()
                .map(|s| (s.name.clone(), s.weight))
                .collect(),
            picker: p.picker.name.clone(),
        }
    }
}

/// One profile run as indices and scores.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProfileRecord {
    /// Index of the profile in the pipeline.
    pub(crate) profile: usize,
    /// End offset into `dropped` of each filter that ran, in order.
    pub(crate) filter_ends: Vec<u32>,
    /// Endpoints the filters dropped, filter after filter.
    pub(crate) dropped: Vec<EndpointIndex>,
    /// Endpoints that survived the filters.
    pub(crate) scored: Vec<EndpointIndex>,
    /// Raw scores scorer after scorer (`scored.len()` each), then the totals.
    pub(crate) scores: Vec<f64>,
    /// Scorers that ran.
    pub(crate) scorers_run: usize,
    /// True once the picker ran.
    pub(crate) picker_ran: bool,
    /// Picked endpoints, best first.
    pub(crate) picked: Vec<EndpointIndex>,
    /// Why the run failed, if it did.
    pub(crate) error: Option<String>,
}

impl ProfileRecord {
    fn totals(&self) -> &[f64] {
        let n = self.scored.len();
        self.scores.get(self.scorers_run * n..).unwrap_or(&[])
    }

    /// The full trace, with names from `names` and `endpoint`.
    pub(crate) fn materialise(
        &self,
        names: &ProfileNames,
        endpoint: &dyn Fn(EndpointIndex) -> Arc<str>,
    ) -> ProfileTrace {
        let mut start = 0usize;
        let filters = self
            .filter_ends
            .iter()
            .zip(&names.filters)
            .map(|(&end, name)| {
                let dropped = self.dropped[start..end as usize]
                    .iter()
                    .map(|&i| endpoint(i))
                    .collect();
                start = end as usize;
                FilterTrace {
                    name: name.clone(),
                    dropped,
                }
            })
            .collect();
        let n = self.scored.len();
        let scorers = names
            .scorers
            .iter()
            .take(self.scorers_run)
            .enumerate()
            .map(|(k, (name, weight))| {
                let raw = self.scores[k * n..(k + 1) * n].to_vec();
                let weighted = raw.iter().map(|&r| clamp_score(r) * weight).collect();
                ScorerTrace {
                    name: name.clone(),
                    weight: *weight,
                    raw,
                    weighted,
                }
            })
            .collect();
        ProfileTrace {
            profile: names.name.clone(),
            filters,
            scored: self.scored.iter().map(|&i| endpoint(i)).collect(),
            scorers,
            totals: self.totals().to_vec(),
            picker: self.picker_ran.then(|| names.picker.clone()),
            picked: self.picked.iter().map(|&i| endpoint(i)).collect(),
            error: self.error.clone(),
        }
    }
}

/// What a whole decision recorded.
#[derive(Clone)]
pub(crate) struct ExplanationRecord {
    pub(crate) request_id: String,
    pub(crate) model: String,
    pub(crate) endpoints: Arc<dyn EndpointNames>,
    pub(crate) names: Arc<[ProfileNames]>,
    pub(crate) candidates: Vec<EndpointIndex>,
    pub(crate) prompt_tokens: usize,
    pub(crate) notes: Vec<super::Note>,
    pub(crate) profiles: Vec<ProfileRecord>,
    pub(crate) primary: usize,
    pub(crate) decision_type: &'static str,
    /// The latency producer's output per endpoint (`None` where it has none).
    pub(crate) latency: Option<Vec<Option<crate::framework::LatencyInfo>>>,
}

impl ExplanationRecord {
    fn materialise(&self) -> Explanation {
        let endpoint = |i: EndpointIndex| self.endpoints.endpoint_name(i);
        Explanation {
            request_id: self.request_id.clone(),
            model: self.model.clone(),
            candidates: self.candidates.iter().map(|&i| endpoint(i)).collect(),
            prompt_tokens: self.prompt_tokens,
            notes: self.notes.iter().map(|n| n.to_string()).collect(),
            profiles: self
                .profiles
                .iter()
                .filter_map(|p| Some(p.materialise(self.names.get(p.profile)?, &endpoint)))
                .collect(),
            primary_profile: self.names.get(self.primary).map(|n| n.name.clone()),
            decision_type: Some(self.decision_type),
            predicted_latency: self
                .latency
                .iter()
                .flat_map(|v| v.iter().enumerate())
                .filter_map(|(i, info)| {
                    Some(PredictedLatency {
                        endpoint: endpoint(i),
                        info: (*info)?,
                    })
                })
                .collect(),
        }
    }
}

/// A decision's [`Explanation`], built on first access (it dereferences to
/// it) from what the pick recorded. Cheap summaries for metrics are read
/// without building it.
#[derive(Clone)]
pub struct DecisionExplanation {
    record: ExplanationRecord,
    full: OnceLock<Explanation>,
}

impl DecisionExplanation {
    pub(crate) fn new(record: ExplanationRecord) -> Self {
        DecisionExplanation {
            record,
            full: OnceLock::new(),
        }
    }

    /// The full explanation (what dereferencing gives).
    pub fn full(&self) -> &Explanation {
        self.full.get_or_init(|| self.record.materialise())
    }

    /// Name of the primary profile, without building the explanation.
    pub fn primary_profile_name(&self) -> Option<&str> {
        self.record
            .names
            .get(self.record.primary)
            .map(|n| n.name.as_str())
    }

    /// Adds a note (before the full explanation is first built).
    pub(crate) fn push_note(&mut self, note: String) {
        self.record.notes.push(super::Note::Text(note));
        self.full = OnceLock::new();
    }

    /// llm-d's `decision_type` (`decode-only`, `prefill-decode`, ...),
    /// without building the explanation.
    pub fn decision_type(&self) -> &'static str {
        self.record.decision_type
    }

    /// Prompt length in tokens as the pipeline saw it.
    pub fn prompt_token_count(&self) -> usize {
        self.record.prompt_tokens
    }

    /// Each profile run that picked an endpoint, summarised for metrics.
    pub fn outcomes(&self) -> impl Iterator<Item = ProfileOutcome<'_>> {
        self.record.profiles.iter().filter_map(|p| {
            let names = self.record.names.get(p.profile)?;
            let first = *p.picked.first()?;
            let winner = p.scored.iter().position(|&i| i == first)?;
            Some(ProfileOutcome {
                names,
                record: p,
                winner,
            })
        })
    }
}

/// A profile's winner: its raw score per scorer, its total and the runner-up's.
#[derive(Clone, Copy)]
pub struct ProfileOutcome<'a> {
    names: &'a ProfileNames,
    record: &'a ProfileRecord,
    winner: usize,
}

impl<'a> ProfileOutcome<'a> {
    /// Profile name.
    pub fn profile(&self) -> &'a str {
        &self.names.name
    }
    /// Instance names of the scorers that ran, in order.
    pub fn scorer_names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names: &'a ProfileNames = self.names;
        names
            .scorers
            .iter()
            .take(self.record.scorers_run)
            .map(|(n, _)| &**n)
    }
    /// The winner's raw score from each scorer that ran, in order.
    pub fn winner_raw(&self) -> impl Iterator<Item = f64> + 'a {
        let (r, n, w) = (self.record, self.record.scored.len(), self.winner);
        (0..r.scorers_run).map(move |k| r.scores[k * n + w])
    }
    /// The winner's combined score.
    pub fn winner_total(&self) -> f64 {
        self.record
            .totals()
            .get(self.winner)
            .copied()
            .unwrap_or(0.0)
    }
    /// The best combined score among the other scored endpoints.
    pub fn runner_up_total(&self) -> Option<f64> {
        let t = self.record.totals();
        let w = self.winner.min(t.len());
        super::reduce::max_of([&t[..w], t.get(w + 1..).unwrap_or(&[])])
    }
}

impl Deref for DecisionExplanation {
    type Target = Explanation;
    fn deref(&self) -> &Explanation {
        self.full()
    }
}

impl PartialEq for DecisionExplanation {
    fn eq(&self, other: &Self) -> bool {
        self.full() == other.full()
    }
}

impl fmt::Debug for DecisionExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.full().fmt(f)
    }
}

impl Serialize for DecisionExplanation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.full().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Endpoint, EndpointMetrics, Request};
    use crate::Scheduler;

    #[test]
    fn outcomes_agree_with_the_materialised_explanation() {
        let s = Scheduler::default().with_seed(3);
        for i in 0..6u32 {
            let m = EndpointMetrics {
                waiting_queue_size: i % 3,
                kv_cache_usage: f64::from(i) / 10.0,
                ..Default::default()
            };
            let ep = Endpoint::new(format!("e{i}"), format!("10.0.0.{i}:80")).with_metrics(m);
            s.add_endpoint(ep).unwrap();
        }
        let d = s
            .pick(&Request::with_tokens("r", "", (0..300).collect()))
            .unwrap();
        // The pick (metrics included) left the explanation unbuilt.
        assert!(
            d.explanation.full.get().is_none(),
            "the pick built the explanation"
        );
        assert_eq!(d.explanation.decision_type(), "single");
        let outcomes: Vec<_> = d.explanation.outcomes().collect();
        assert_eq!(
            d.explanation.primary_profile_name(),
            d.explanation.primary_profile.as_deref()
        );
        assert_eq!(d.explanation.prompt_token_count(), 300);
        assert_eq!(outcomes.len(), d.explanation.profiles.len());
        for (o, t) in outcomes.iter().zip(&d.explanation.profiles) {
            assert_eq!(o.profile(), t.profile);
            let w = t.scored.iter().position(|n| *n == t.picked[0]).unwrap();
            let names: Vec<&str> = t.scorers.iter().map(|s| &*s.name).collect();
            assert_eq!(o.scorer_names().collect::<Vec<_>>(), names);
            let raw: Vec<f64> = t.scorers.iter().map(|s| s.raw[w]).collect();
            assert_eq!(o.winner_raw().collect::<Vec<_>>(), raw);
            assert_eq!(o.winner_total(), t.totals[w]);
            let runner_up = t
                .totals
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != w)
                .map(|(_, &v)| v)
                .reduce(f64::max);
            assert_eq!(o.runner_up_total(), runner_up);
            assert_eq!(t.totals.len(), t.scored.len());
            assert_eq!(t.scored.len(), 6);
        }
    }
}
