//! Decision traces: every candidate, every filter drop, every scorer's raw and
//! weighted score, and the picker's choice.

use std::sync::Arc;

use serde::Serialize;

/// What one filter removed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FilterTrace {
    /// Plugin instance name.
    pub name: Arc<str>,
    /// Endpoints it dropped.
    pub dropped: Vec<Arc<str>>,
}

/// One scorer's output over the profile's scored endpoints (`ProfileTrace::scored`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScorerTrace {
    /// Plugin instance name.
    pub name: Arc<str>,
    /// Weight in this profile.
    pub weight: f64,
    /// Raw scores as the scorer returned them (before clamping).
    pub raw: Vec<f64>,
    /// `clamp(raw, 0, 1) * weight`.
    pub weighted: Vec<f64>,
}

/// One profile run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ProfileTrace {
    /// Profile name.
    pub profile: String,
    /// Filters in order.
    pub filters: Vec<FilterTrace>,
    /// Endpoints that survived the filters, in candidate order; the score
    /// vectors below are aligned with this list.
    pub scored: Vec<Arc<str>>,
    /// Scorers in order.
    pub scorers: Vec<ScorerTrace>,
    /// Combined score per scored endpoint.
    pub totals: Vec<f64>,
    /// Picker instance name.
    pub picker: Option<Arc<str>>,
    /// Picked endpoints, best first.
    pub picked: Vec<Arc<str>>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// The whole decision's explanation.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Explanation {
    /// Request id.
    pub request_id: String,
    /// Requested model.
    pub model: String,
    /// Every candidate endpoint considered.
    pub candidates: Vec<Arc<str>>,
    /// Prompt length in tokens as the pipeline saw it.
    pub prompt_tokens: usize,
    /// Producer and handler remarks (prefix matches, P/D decisions).
    pub notes: Vec<String>,
    /// Profile runs in execution order.
    pub profiles: Vec<ProfileTrace>,
    /// The primary profile.
    pub primary_profile: Option<String>,
    /// llm-d's `decision_type` (`decode-only`, `prefill-decode`, ...).
    pub decision_type: Option<&'static str>,
    /// The `predicted-latency-producer`'s output per candidate (empty
    /// without one): predicted TTFT/TPOT, headroom, validity, and the
    /// model inputs they came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub predicted_latency: Vec<PredictedLatency>,
}

/// One candidate's latency prediction in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PredictedLatency {
    /// Endpoint name.
    pub endpoint: Arc<str>,
    /// What the producer published for it.
    #[serde(flatten)]
    pub info: super::LatencyInfo,
}

impl Explanation {
    /// JSON rendering.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The trace of a profile by name.
    pub fn profile(&self, name: &str) -> Option<&ProfileTrace> {
        self.profiles.iter().find(|p| p.profile == name)
    }
}

impl ProfileTrace {
    /// A scorer's trace by instance name.
    pub fn scorer(&self, name: &str) -> Option<&ScorerTrace> {
        self.scorers.iter().find(|s| &*s.name == name)
    }
    /// A filter's trace by instance name.
    pub fn filter(&self, name: &str) -> Option<&FilterTrace> {
        self.filters.iter().find(|s| &*s.name == name)
    }
    /// Combined score of an endpoint, if it was scored.
    pub fn total_of(&self, endpoint: &str) -> Option<f64> {
        self.scored
            .iter()
            .position(|n| &**n == endpoint)
            .map(|i| self.totals[i])
    }
}
