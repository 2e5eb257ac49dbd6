//! The pool saturation detector of legacy admission (a sheddable request is
//! refused when the candidates' mean saturation reaches 1): the
//! `utilization-detector` (llm-d's default) or a `concurrency-detector`.

use crate::model::EndpointState;

use super::{ConcurrencyDetector, UtilizationDetector};

/// The plugin `flowControl.saturationDetector.pluginRef` names.
#[derive(Clone, Debug)]
pub enum SaturationDetector {
    /// `max(queue / queueDepthThreshold, kv / kvCacheUtilThreshold)`; stale
    /// metrics count as 1.
    Utilization(UtilizationDetector),
    /// The scheduler's own in-flight count over its bound
    /// ([`ConcurrencyDetector::endpoint_saturation`]).
    Concurrency(ConcurrencyDetector),
}

impl SaturationDetector {
    /// One endpoint's saturation at clock time `now_ns` (1 = saturated).
    pub fn endpoint_saturation(&self, ep: &EndpointState, now_ns: u64) -> f64 {
        match self {
            SaturationDetector::Utilization(d) => d.endpoint_saturation(ep, now_ns),
            SaturationDetector::Concurrency(d) => d.endpoint_saturation(ep),
        }
    }
}
