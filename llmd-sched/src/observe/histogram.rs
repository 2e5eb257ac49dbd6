//! A lock-free histogram for the recording hot path.
//!
//! `prometheus-client`'s own histogram takes a mutex per observation; this one
//! is a slice of atomic bucket counters plus an atomic `f64` sum, so recording
//! from many threads never waits. It plugs into the same registry and encoders
//! through [`EncodeMetric`].

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::MetricConstructor;
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Cumulative-bucket histogram with atomic counters; cloning shares the data.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Finite upper bounds, strictly increasing; `+Inf` is implicit.
    bounds: Arc<[f64]>,
    /// One counter per bound plus the `+Inf` overflow bucket (non-cumulative).
    counts: Box<[AtomicU64]>,
    /// Sum of observed values, as `f64` bits.
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// Creates an empty histogram over `bounds` (finite, strictly increasing;
    /// [`super::Buckets`] guarantees that).
    pub fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds,
                counts,
                sum_bits: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, value: f64) {
        self.observe_n(value, 1);
    }

    /// Records `n` observations of the same value (e.g. `n` tokens that
    /// arrived in one chunk, each with the same inter-token gap).
    #[inline]
    pub fn observe_n(&self, value: f64, n: u64) {
        if n == 0 || value.is_nan() {
            return;
        }
        // `le` semantics: the first bound >= value. NaN was excluded above.
        let idx = self.inner.bounds.partition_point(|b| *b < value);
        self.inner.counts[idx].fetch_add(n, Ordering::Relaxed);
        let add = value * n as f64;
        let mut cur = self.inner.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + add).to_bits();
            match self.inner.sum_bits.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The bucket upper bounds (without `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        &self.inner.bounds
    }

    /// A consistent-enough copy: per-bucket (non-cumulative) counts with the
    /// `+Inf` bucket last, the count (the sum of the buckets, so `_count`
    /// always equals the `+Inf` bucket), and the sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<u64> = self
            .inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            count: buckets.iter().sum(),
            sum: f64::from_bits(self.inner.sum_bits.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

/// Values read from an [`AtomicHistogram`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Number of observations.
    pub count: u64,
    /// Sum of the observed values.
    pub sum: f64,
    /// Non-cumulative counts per bucket, one per bound and `+Inf` last.
    pub buckets: Vec<u64>,
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot();
        let mut pairs: Vec<(f64, u64)> = Vec::with_capacity(snap.buckets.len());
        for (i, c) in snap.buckets.iter().enumerate() {
            let bound = self.inner.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            pairs.push((bound, *c));
        }
        encoder.encode_histogram::<NoLabelSet>(snap.sum, snap.count, &pairs, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Builds histograms with fixed bounds for a labelled family.
#[derive(Clone, Debug)]
pub struct HistogramCtor(pub Arc<[f64]>);

impl MetricConstructor<AtomicHistogram> for HistogramCtor {
    fn new_metric(&self) -> AtomicHistogram {
        AtomicHistogram::new(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_semantics_and_sum() {
        let h = AtomicHistogram::new(Arc::from(vec![1.0, 2.0, 5.0]));
        h.observe(1.0); // le=1
        h.observe(1.5); // le=2
        h.observe_n(5.0, 3); // le=5
        h.observe(9.0); // +Inf
        h.observe(f64::NAN); // ignored
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![1, 1, 3, 1]);
        assert_eq!(s.count, 6);
        assert!((s.sum - (1.0 + 1.5 + 15.0 + 9.0)).abs() < 1e-9);
    }

    #[test]
    fn concurrent_observations_are_not_lost() {
        let h = AtomicHistogram::new(Arc::from(vec![0.5]));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let h = h.clone();
                s.spawn(move || {
                    for _ in 0..10_000 {
                        h.observe(0.25);
                    }
                });
            }
        });
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        assert_eq!(s.sum, 10_000.0);
    }
}
