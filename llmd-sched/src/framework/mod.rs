//! The pipeline framework: stage traits, the per-cycle context, profiles and traces.

pub mod context;
pub mod explain;
mod note;
pub mod plugin;
pub mod profile;
mod record;
pub(crate) mod reduce;

pub use context::{
    CycleContext, EndpointIndex, LatencyInfo, LatencyPrediction, LatencyPredictor, PrefixInfo,
    PrefixMatch, ProfileRunResult, ScreenReport,
};
pub use explain::{Explanation, FilterTrace, PredictedLatency, ProfileTrace, ScorerTrace};
pub use note::{Note, PrefixLookupNote};
pub use plugin::{
    Decided, Decider, Filter, HandlerResult, Picker, PreRequest, Producer, ProfileHandler, Scorer,
    Screener,
};
pub use profile::{clamp_score, NamedFilter, NamedPicker, SchedulerProfile, WeightedScorer};
pub use record::{DecisionExplanation, ProfileOutcome};
pub(crate) use record::{EndpointNames, ExplanationRecord, ProfileNames, ProfileRecord};
