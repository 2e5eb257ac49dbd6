//! Built-in scorers.

pub mod context_length;
pub mod fleet_latency;
pub mod inflight;
pub mod latency;
pub mod load;
pub mod lora;
pub mod no_hit_lru;
pub mod prefix;
pub mod session;

pub use context_length::ContextLengthAware;
pub use fleet_latency::FleetLatencyScorer;
pub use inflight::{ActiveRequestScorer, TokenLoadScorer};
pub use latency::{Headroom, LatencyScorer};
pub use load::{Gauge, KvCacheUtilizationScorer, LoadAwareScorer, MinMaxScorer, PeerGaugeScorer};
pub use lora::LoraAffinityScorer;
pub use no_hit_lru::NoHitLruScorer;
pub use prefix::PrefixCacheScorer;
pub use session::SessionAffinity;
