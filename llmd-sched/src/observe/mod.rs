//! Token-level observability: Prometheus metrics recorded from scheduling
//! decisions and from the host's lifecycle calls, and decision traces.
//!
//! [`Metrics`] owns a `prometheus-client` registry. The scheduler records a
//! decision ([`Metrics::on_decision`] / [`Metrics::on_rejected`], plus
//! per-profile scores through [`ProfileSeries`] and stage latencies through
//! [`StageSeries`]); the host reports what the engine did
//! ([`Metrics::on_first_token`], [`Metrics::on_tokens`],
//! [`Metrics::on_prefill_done`], [`Metrics::on_complete`],
//! [`Metrics::on_error`]); [`Metrics::render`] returns Prometheus text. Every
//! time is an offset from the scheduler clock's epoch, passed in by the
//! caller. Recording is atomics on handles resolved once per label set.
//!
//! Names and labels are listed in `docs/metrics.md`; these queries work
//! verbatim:
//!
//! ```text
//! histogram_quantile(0.95, sum(rate(llmd_inference_ttft_bucket[5m])) by (le))
//! rate(llmd_inference_output_tokens_sum[5m]) / rate(llmd_inference_requests_total[5m])
//! sum(rate(llmd_kvcache_hits_total[5m])) by (pool) / sum(rate(llmd_kvcache_requests_total[5m])) by (pool)
//! histogram_quantile(0.90, sum(rate(llmd_router_routing_score_bucket[5m])) by (le))
//! ```
//!
//! ```
//! use llmd_sched::observe::{DecisionRecord, Leg, Metrics, MetricsConfig, Usage};
//! use std::time::Duration;
//!
//! let m = Metrics::new(MetricsConfig::default()).unwrap();
//! let ms = Duration::from_millis;
//! m.on_decision(&DecisionRecord {
//!     request_id: "r1", model: "llama", profile: "default",
//!     arrived: ms(0), decided: ms(1), prompt_tokens: 128, block_size: 16,
//!     decode: Leg { endpoint: "10.0.0.1:8000", predicted_hit_blocks: 4 },
//!     prefill: None, encode: false, slo: Default::default(), kv_bytes_per_token: None,
//!     opening: 0,
//! });
//! m.on_first_token("r1", ms(80));
//! m.on_tokens("r1", 9, ms(170));
//! m.on_complete("r1", Usage { cached_tokens: Some(64), ..Usage::default() }, ms(171));
//! let text = m.render(ms(200));
//! assert!(text.contains("llmd_inference_ttft_bucket{model=\"llama\",pool=\"default\",le=\"0.1\"} 1"));
//! ```

mod config;
mod families;
mod goodput;
mod health;
mod histogram;
mod inflight;
mod labels;
mod lifecycle;
mod metrics;
mod record;
mod routes;
mod samples;
mod sched;
mod screen;
mod series;
mod trace;

pub use config::{
    Buckets, MetricsConfig, ObserveError, SloTargets, BLOCK_BUCKETS, MARGIN_BUCKETS, QUEUE_BUCKETS,
    SCHEDULER_BUCKETS, SCORE_BUCKETS, TOKEN_BUCKETS, VLLM_ITL_BUCKETS,
    VLLM_REQUEST_LATENCY_BUCKETS, VLLM_TTFT_BUCKETS, WEIGHTED_SCORE_BUCKETS,
};
pub use goodput::{judge, tpot};
pub use health::EventStreamCounts;
pub use histogram::{AtomicHistogram, HistogramSnapshot};
pub use labels::{ErrorKind, Outcome, PdDecision, RejectReason, SloKind};
pub use metrics::Metrics;
pub use record::{DecisionRecord, Leg, RejectRecord, Usage};
pub use samples::{parse_text, Sample};
pub use sched::{decision_attributes, decision_spans, PickFacts};
pub use series::{ProfileSeries, StageSeries};
pub use trace::{
    AttrValue, Attribute, DecisionExplain, ProfileExplain, ScorerExplain, SpanRecord,
    TOP_CANDIDATES,
};

#[cfg(feature = "metrics-http")]
mod http;
#[cfg(feature = "metrics-http")]
pub use http::MetricsServer;

#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "otel")]
pub use otel::{export_decision_spans, export_spans, key_values, remote_parent};
