//! Built-in data producers: tokens, prefix matches (approximate and precise), in-flight load.

pub mod approx_hash;
pub mod approx_prefix;
pub mod burst_prefix;
pub mod inflight;
pub mod mm_cache;
pub mod p2p_source;
pub mod precise_prefix;
pub mod predicted_latency;
pub mod token;

pub use approx_prefix::ApproxPrefixProducer;
pub use burst_prefix::{BurstPrefixProducer, BurstSlot};
pub use inflight::InFlightLoadProducer;
pub use mm_cache::{MmEmbeddingsCacheProducer, MmEmbeddingsCacheScorer};
pub use p2p_source::P2pSourceProducer;
pub use precise_prefix::PrecisePrefixProducer;
pub use predicted_latency::{LatencySettings, PredictedLatencyProducer};
pub use token::{estimate_tokens, TokenBackend, TokenProducer};

/// Name (and default data key) of the approximate prefix producer.
pub const APPROX_PRODUCER: &str = "approx-prefix-cache-producer";
/// llm-d's default instance name of the in-flight load producer (what
/// `inFlightLoadProducerName` names when absent).
pub const INFLIGHT_PRODUCER: &str = "inflight-load-producer";
/// Default name of the precise prefix producer.
pub const PRECISE_PRODUCER: &str = "precise-prefix-cache-producer";
