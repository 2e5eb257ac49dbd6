//! llmd-sched: the llm-d-compatible scheduling pipeline.
//!
//! A [`Scheduler`] is built from an llm-d `EndpointPickerConfig` (or llm-d's
//! default: queue 2, kv-cache-utilization 2, prefix-cache 3). For each request,
//! [`Scheduler::pick`] runs llm-d's cycle: producers derive per-request facts
//! once (tokens, prefix matches, uncached tokens) in a [`framework::CycleContext`];
//! the profile handler picks profiles; each profile runs filters → weighted
//! scorers (each score clamped to [0, 1], plain weighted sum) → one picker. The
//! [`Decision`] carries the targets, the P/D headers, and an [`Explanation`].
//!
//! The library owns no threads and does no I/O: the host feeds endpoints,
//! metrics (`/metrics` text or values), KV events, and request lifecycle calls;
//! time comes from an injected [`model::Clock`].
//!
//! ```
//! use llmd_sched::{Endpoint, Request, Scheduler};
//!
//! let s = Scheduler::default().with_seed(7);
//! s.add_endpoint(Endpoint::new("pod-a", "10.0.0.1:8000")).unwrap();
//! s.add_endpoint(Endpoint::new("pod-b", "10.0.0.2:8000")).unwrap();
//! let d = s.pick(&Request::with_text("r1", "llama", "hello world")).unwrap();
//! assert!(d.header("x-gateway-destination-endpoint").is_some());
//! s.on_first_token("r1");
//! s.on_complete("r1", Some(0));
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod decision;
pub mod error;
pub mod framework;
pub mod inflight;
pub mod kv;
pub mod latency;
pub mod lifecycle;
pub mod metrics_text;
pub mod model;
pub mod observe;
pub mod plugins;
pub mod scheduler;
pub mod trace_context;

pub use config::{ConfigReport, LoadOptions};
pub use decision::{Decision, Target};
pub use error::{ConfigError, ScheduleError};
pub use framework::{CycleContext, DecisionExplanation, Explanation};
pub use lifecycle::{RequestErrorKind, RequestSummary};
pub use model::{
    Clock, Endpoint, EndpointMetrics, ManualClock, NotRendered, OpenAiKind, OpenAiPrompt,
    OpenAiRequest, Prompt, PromptTokenizer, Request, SystemClock,
};
pub use observe::Usage;
pub use scheduler::{
    IngestReport, Scheduler, DEFAULT_MAX_OPEN_REQUESTS, ESTIMATE_NOTE, MULTIMODAL_ESTIMATE_NOTE,
};
pub use trace_context::TraceContext;
