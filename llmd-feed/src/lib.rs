//! # llmd-feed
//!
//! The live connection between vLLM pods and an llmd [`Scheduler`]: the
//! I/O that the pure core crates (`llmd-kvindex`, `llmd-sched`) leave to the
//! host, on threads this crate owns.
//!
//! [`Scheduler`]: llmd_sched::Scheduler
//! [`Scheduler::pick`]: llmd_sched::Scheduler::pick
//! [`Scheduler::update_endpoint_metrics_text`]: llmd_sched::Scheduler::update_endpoint_metrics_text
//!
//! - **KV events over ZMQ** ([`zmq`]): a SUB connection per pod and
//!   data-parallel rank (vLLM binds, the router connects), or a bound socket
//!   that pods dial ([`Feed::bind_events`]); topic filter; frames
//!   `topic | seq | payload`. Per publisher, sequence numbers are followed
//!   ([`stream`]): a gap is replayed from the pod's replay socket (both
//!   reply layouts), a replay overlapping the live stream is applied once, a
//!   publisher restart drops the pod's entries, and lost batches that cannot
//!   be replayed drop what is known about the pod. Reconnects back off.
//!   Ingest runs on `concurrency` workers fed by bounded queues (drops are
//!   counted and healed by the replay of the gap they leave).
//! - **`/metrics` scraping** per pod at an interval with a timeout, into
//!   [`Scheduler::update_endpoint_metrics_text`] (which also picks up
//!   `vllm:cache_config_info`). A pod that stops answering is marked down,
//!   then removed from the scheduler (index entries dropped), and comes back
//!   when it answers.
//! - **Discovery**: pods from the host ([`Feed::add_pod`],
//!   [`Feed::sync_pods`] for a controller's callback), from DNS (a headless
//!   service, re-resolved) or from llm-d's endpoint file ([`Discovery`]).
//! - **Configuration**: [`Feed::from_scheduler`] executes what an llm-d
//!   config asks of the data plane (`kvEventsConfig`, `metrics-data-source`,
//!   `file-discovery`) and reports each setting ([`FeedSetting`]).
//! - **Health**: [`Feed::stats`] per pod, and `llmd_feed_*` metrics
//!   ([`Feed::render_metrics`]).
//! - **A publisher** ([`zmq::Publisher`]) with vLLM's wire behaviour, for
//!   fake fleets and tests.
//! - **Trace export** ([`otlp::OtlpExporter`]): decision spans over
//!   OTLP/HTTP (protobuf) from a thread of its own, continuing the
//!   request's W3C trace.
//!
//! Nothing here adds a lock or an allocation to [`Scheduler::pick`]: the
//! feed only calls the scheduler's ingest and metrics methods.
//!
//! ```no_run
//! use std::sync::Arc;
//! use llmd_feed::{Feed, FeedOptions, PodSpec};
//! use llmd_sched::Scheduler;
//!
//! let sched = Arc::new(Scheduler::from_config_str("").unwrap());
//! let feed = Feed::new(sched.clone(), FeedOptions::default());
//! feed.add_pod(PodSpec::new("pod-a", "10.0.0.7:8000").with_events("tcp://10.0.0.7:5557"))
//!     .unwrap();
//! feed.start().unwrap();
//! // ... sched.pick(&request) routes with the pods' caches and load ...
//! feed.stop();
//! ```

pub mod config;
pub mod conn_cap;
mod deadline;
pub mod discovery;
mod feed;
pub mod http;
mod ingest;
mod metrics;
pub mod options;
pub mod otlp;
mod overrides;
mod pod;
mod scrape;
pub mod stream;
pub mod zmq;

pub use config::{plan, FeedPlan, FeedSetting};
pub use discovery::Discovery;
pub use feed::Feed;
pub use options::{FeedOptions, UnrecoverableGap};
pub use overrides::{seconds, FeedOverrides};
pub use pod::{PodSpec, PodStatsSnapshot};

use llmd_sched::ScheduleError;

/// Errors of the feed's API (network trouble is never an error here: it is
/// counted in the pod's stats and retried).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A setting or a pod description is invalid.
    #[error("feed config: {0}")]
    Config(String),
    /// No followed pod has this name.
    #[error("unknown pod '{0}'")]
    UnknownPod(String),
    /// The scheduler refused a call (e.g. an endpoint over the index's limit).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Binding a socket or starting a thread failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl FeedError {
    /// Stable code: `config`, `unknown_pod`, `io`, or the scheduler's code.
    pub fn code(&self) -> &'static str {
        match self {
            FeedError::Config(_) => "config",
            FeedError::UnknownPod(_) => "unknown_pod",
            FeedError::Schedule(e) => e.name(),
            FeedError::Io(_) => "io",
        }
    }
}
