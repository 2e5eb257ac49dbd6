//! Bucket layouts, default SLOs and cardinality caps of the metrics.

use std::sync::Arc;
use std::time::Duration;

/// vLLM's `vllm:time_to_first_token_seconds` upper bounds (vLLM 0.10–0.33).
pub const VLLM_TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// vLLM's `vllm:inter_token_latency_seconds` and
/// `vllm:request_time_per_output_token_seconds` upper bounds.
pub const VLLM_ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// vLLM's request-latency family (`e2e`, `queue`, `prefill`, `decode`).
pub const VLLM_REQUEST_LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Router-side queueing: microseconds to seconds.
pub const QUEUE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Scheduler stage latency: one microsecond to 100 ms.
pub const SCHEDULER_BUCKETS: &[f64] = &[
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.0002, 0.0005, 0.001,
    0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
];

/// Raw scorer outputs, clamped to [0, 1] by the pipeline: steps of 0.05.
pub const SCORE_BUCKETS: &[f64] = &[
    0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
    0.85, 0.9, 0.95, 1.0,
];

/// Final weighted scores: a plain weighted sum, so it can exceed 1.
pub const WEIGHTED_SCORE_BUCKETS: &[f64] = &[
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0,
    8.0, 10.0, 15.0, 20.0,
];

/// Winner minus runner-up of the weighted score.
pub const MARGIN_BUCKETS: &[f64] = &[
    0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0,
];

/// Token counts: vLLM's 1-2-5 series up to 200k.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
    50000.0, 100000.0, 200000.0,
];

/// KV bytes moved per P/D request: 1 MiB to 64 GiB, ×4.
pub const BYTE_BUCKETS: &[f64] = &[
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
    68719476736.0,
];

/// Block counts of a predicted prefix hit (0 = miss) or a P/D KV transfer.
pub const BLOCK_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Why a bucket layout or configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObserveError {
    /// A bucket list was empty.
    #[error("bucket list `{0}` is empty")]
    EmptyBuckets(&'static str),
    /// A bucket bound was NaN or infinite (`+Inf` is implicit).
    #[error("bucket list `{family}` has a non-finite bound {value}")]
    NonFiniteBucket {
        /// Which bucket list.
        family: &'static str,
        /// The offending bound.
        value: f64,
    },
    /// A cap was zero.
    #[error("`{0}` must be at least 1")]
    ZeroCap(&'static str),
    /// A line of Prometheus text could not be parsed.
    #[error("exposition line {line}: {reason}")]
    BadExposition {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Validated histogram upper bounds: finite, sorted, without duplicates.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets(Arc<[f64]>);

impl Buckets {
    /// Sorts and de-duplicates `bounds`; `family` names the list in errors.
    pub fn new(family: &'static str, bounds: &[f64]) -> Result<Buckets, ObserveError> {
        if bounds.is_empty() {
            return Err(ObserveError::EmptyBuckets(family));
        }
        if let Some(v) = bounds.iter().find(|v| !v.is_finite()) {
            return Err(ObserveError::NonFiniteBucket { family, value: *v });
        }
        let mut v = bounds.to_vec();
        v.sort_by(f64::total_cmp);
        v.dedup();
        Ok(Buckets(v.into()))
    }

    /// These bounds plus `edges` (SLO thresholds, so attainment can be read
    /// from `_bucket{le="<slo>"}`).
    pub fn with_edges(&self, edges: impl IntoIterator<Item = f64>) -> Buckets {
        let mut v = self.0.to_vec();
        v.extend(edges.into_iter().filter(|e| e.is_finite()));
        v.sort_by(f64::total_cmp);
        v.dedup();
        Buckets(v.into())
    }

    /// The bounds.
    pub fn bounds(&self) -> &Arc<[f64]> {
        &self.0
    }
}

/// Service-level objectives of one request; `None` means "no objective".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SloTargets {
    /// Time to first token.
    pub ttft: Option<Duration>,
    /// Time per output token, DistServe's `(last − first) / (n_out − 1)`.
    pub tpot: Option<Duration>,
    /// End-to-end latency (arrival to last token).
    pub e2e: Option<Duration>,
}

impl SloTargets {
    /// True when any objective is set.
    pub fn any(self) -> bool {
        self.ttft.is_some() || self.tpot.is_some() || self.e2e.is_some()
    }

    /// Each objective of `self`, falling back to `defaults` where unset.
    pub fn or(self, defaults: SloTargets) -> SloTargets {
        SloTargets {
            ttft: self.ttft.or(defaults.ttft),
            tpot: self.tpot.or(defaults.tpot),
            e2e: self.e2e.or(defaults.e2e),
        }
    }
}

/// How the metrics are laid out. [`MetricsConfig::default`] gives vLLM's
/// buckets for the latencies vLLM also measures.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// TTFT bounds (seconds); the TTFT SLO is added as an edge.
    pub ttft_buckets: Buckets,
    /// Inter-token latency and TPOT bounds (seconds); the TPOT SLO is added.
    pub itl_buckets: Buckets,
    /// End-to-end and decode-time bounds (seconds); the e2e SLO is added.
    pub e2e_buckets: Buckets,
    /// Prefill-time bounds (seconds); TTFT-like, so vLLM's TTFT bounds.
    pub prefill_buckets: Buckets,
    /// Router queue-time and P/D hand-off bounds (seconds).
    pub queue_buckets: Buckets,
    /// Scheduler stage-latency bounds (seconds).
    pub scheduler_buckets: Buckets,
    /// Raw per-scorer score bounds.
    pub score_buckets: Buckets,
    /// Final weighted score bounds.
    pub weighted_score_buckets: Buckets,
    /// Winner − runner-up margin bounds.
    pub margin_buckets: Buckets,
    /// Token-count bounds (input, output, cached).
    pub token_buckets: Buckets,
    /// Predicted-hit block-count bounds.
    pub block_buckets: Buckets,
    /// KV-transfer byte bounds.
    pub byte_buckets: Buckets,
    /// KV-cache bytes per token of each model (`""`: every model not
    /// listed): 2 × layers × KV heads × head dim × bytes per element (e.g.
    /// Llama 3 8B in bf16: 2 × 32 × 8 × 128 × 2 = 131,072). With it, the
    /// estimated P/D KV transfer is also reported in bytes
    /// (`llmd_inference_pd_kv_transfer_bytes`); without it, in blocks only.
    pub kv_bytes_per_token: std::collections::BTreeMap<String, u64>,
    /// Objectives applied where a request brings none of its own.
    pub default_slo: SloTargets,
    /// Pool label of rejected requests and of endpoints registered without one.
    pub default_pool: String,
    /// Distinct `model` label values kept; later ones are reported as `other`.
    pub max_models: usize,
    /// Distinct `endpoint` label values kept; later ones become `other`.
    pub max_endpoints: usize,
    /// Requests tracked between decision and completion; beyond it a request
    /// is counted in `llmd_observe_untracked_requests_total` and not timed.
    pub max_tracked_requests: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        fn b(f: &'static str, v: &[f64]) -> Buckets {
            // The built-in lists are finite and non-empty.
            Buckets::new(f, v).unwrap_or_else(|_| Buckets(Arc::from(vec![1.0])))
        }
        MetricsConfig {
            ttft_buckets: b("ttft", VLLM_TTFT_BUCKETS),
            itl_buckets: b("itl", VLLM_ITL_BUCKETS),
            e2e_buckets: b("e2e", VLLM_REQUEST_LATENCY_BUCKETS),
            prefill_buckets: b("prefill", VLLM_TTFT_BUCKETS),
            queue_buckets: b("queue", QUEUE_BUCKETS),
            scheduler_buckets: b("scheduler", SCHEDULER_BUCKETS),
            score_buckets: b("score", SCORE_BUCKETS),
            weighted_score_buckets: b("weighted_score", WEIGHTED_SCORE_BUCKETS),
            margin_buckets: b("margin", MARGIN_BUCKETS),
            token_buckets: b("tokens", TOKEN_BUCKETS),
            block_buckets: b("blocks", BLOCK_BUCKETS),
            byte_buckets: b("bytes", BYTE_BUCKETS),
            kv_bytes_per_token: std::collections::BTreeMap::new(),
            default_slo: SloTargets::default(),
            default_pool: "default".to_owned(),
            max_models: 100,
            max_endpoints: 1000,
            max_tracked_requests: 1 << 20,
        }
    }
}

impl MetricsConfig {
    /// Checks the caps; bucket lists are valid by construction.
    pub fn validate(&self) -> Result<(), ObserveError> {
        if self.max_models == 0 {
            return Err(ObserveError::ZeroCap("max_models"));
        }
        if self.max_endpoints == 0 {
            return Err(ObserveError::ZeroCap("max_endpoints"));
        }
        if self.max_tracked_requests == 0 {
            return Err(ObserveError::ZeroCap("max_tracked_requests"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sort_dedup_and_reject_bad_bounds() {
        let b = Buckets::new("x", &[2.0, 1.0, 2.0]).unwrap();
        assert_eq!(&**b.bounds(), &[1.0, 2.0]);
        assert_eq!(Buckets::new("x", &[]), Err(ObserveError::EmptyBuckets("x")));
        assert!(matches!(
            Buckets::new("x", &[1.0, f64::INFINITY]),
            Err(ObserveError::NonFiniteBucket { .. })
        ));
        let e = b.with_edges([1.5, 2.0]);
        assert_eq!(&**e.bounds(), &[1.0, 1.5, 2.0]);
    }

    #[test]
    fn defaults_equal_vllm() {
        let c = MetricsConfig::default();
        assert_eq!(c.ttft_buckets.bounds().len(), 22);
        assert_eq!(c.itl_buckets.bounds().len(), 19);
        assert_eq!(c.e2e_buckets.bounds().len(), 21);
    }
}
