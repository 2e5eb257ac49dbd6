//! `latency-scorer`: scores endpoints by their predicted headroom against the
//! request's TTFT/TPOT objectives (llm-d's scorer of the same name).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Scorer};
use crate::latency::{self, LatencyView};

/// Which end of the headroom range wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Headroom {
    /// `least` (default): the smallest non-negative headroom wins (bin-packing).
    Least,
    /// `most`: the largest headroom wins.
    Most,
}

/// llm-d's `latency-scorer`:
///
/// * no prediction for any candidate: the composite fallback
///   `round(100 · (wkv·(1 − kv) + wq·(maxQ − q)/maxQ + wp·match/total)) / 100`
///   with the `composite*Weight`s normalised (queue term 1 when maxQ = 0);
/// * else candidates split into *positive* (no prediction, or no negative
///   headroom; an unpredicted one counts as headroom 0) and *negative*. The
///   positive bucket is scored with the configured strategy and the rest get
///   0; with none, idle negatives (nothing dispatched) are scored `least`,
///   else the first non-empty of TPOT-only-negative, TTFT-only-negative,
///   both-negative, `least`;
/// * a bucket is scored on `|headroom|` normalised over it per dimension
///   (0.5 when a dimension's range is under 1e-9; a dimension with no range
///   gives all weight to the other), blended `α·TTFT + β·TPOT` with the
///   weights normalised, and mapped to `(trunc(100·c) + 1) / 100` (`most`) or
///   `(trunc(100·(1 − c)) + 1) / 100` (`least`): scores in [0.01, 1.01], as
///   llm-d computes them (the scheduler clamps to 1 when weighting).
#[derive(Clone, Debug)]
pub struct LatencyScorer {
    /// `ttftWeight` (0.8).
    pub ttft_weight: f64,
    /// `tpotWeight` (0.2).
    pub tpot_weight: f64,
    /// `headroomSelectionStrategy` (`least`).
    pub strategy: Headroom,
    /// `compositeKVWeight`, `compositeQueueWeight`, `compositePrefixWeight` (1 each).
    pub composite: [f64; 3],
    /// `prefixMatchInfoProducerName` (for the composite's prefix term).
    pub prefix_producer: String,
}

impl LatencyScorer {
    /// Decodes llm-d's parameters (llm-d validates none; neither does this,
    /// beyond types). A `headroomSelectionStrategy` other than `least` and
    /// `most` is read as `least`, as llm-d reads it, and noted in
    /// `not_executed` (the setting as written is not what runs).
    pub fn from_params(
        p: &mut Params,
        not_executed: &mut Vec<(String, String)>,
    ) -> Result<Self, ConfigError> {
        let ttft_weight = p.f64("ttftWeight", 0.8)?;
        let tpot_weight = p.f64("tpotWeight", 0.2)?;
        let strategy = match p.string("headroomSelectionStrategy", "least")?.as_str() {
            "most" => Headroom::Most,
            "least" => Headroom::Least,
            other => {
                not_executed.push((
                    "headroomSelectionStrategy".into(),
                    format!("'{other}' is not a strategy (least, most): read as least, as llm-d reads it"),
                ));
                Headroom::Least
            }
        };
        let composite = [
            p.f64("compositeKVWeight", 1.0)?,
            p.f64("compositeQueueWeight", 1.0)?,
            p.f64("compositePrefixWeight", 1.0)?,
        ];
        let prefix_producer = p.string(
            "prefixMatchInfoProducerName",
            crate::plugins::producers::APPROX_PRODUCER,
        )?;
        Ok(LatencyScorer {
            ttft_weight,
            tpot_weight,
            strategy,
            composite,
            prefix_producer,
        })
    }

    fn composite(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let sum: f64 = self.composite.iter().sum();
        let [wkv, wq, wp] = if sum > 0.0 {
            self.composite.map(|w| w / sum)
        } else {
            [1.0, 0.0, 0.0]
        };
        let max_q = candidates
            .iter()
            .map(|&i| ctx.endpoint(i).waiting_queue_size())
            .max()
            .unwrap_or(0) as f64;
        let prefix = ctx.prefix_info(&self.prefix_producer);
        for (o, &i) in out.iter_mut().zip(candidates) {
            let ep = ctx.endpoint(i);
            let rel_q = if max_q > 0.0 {
                (max_q - ep.waiting_queue_size() as f64) / max_q
            } else {
                1.0
            };
            let kv_free = 1.0 - ep.kv_cache_usage();
            let pre = prefix
                .filter(|p| p.total_blocks > 0)
                .and_then(|p| Some(f64::from(p.get(i)?.match_blocks) / f64::from(p.total_blocks)))
                .unwrap_or(0.0);
            *o = (100.0 * (wkv * kv_free + wq * rel_q + wp * pre)).round() / 100.0;
        }
    }

    fn bucket(&self, members: &[(usize, f64, f64)], strategy: Headroom, out: &mut [f64]) {
        const EPS: f64 = 1e-9;
        let sum = self.ttft_weight + self.tpot_weight;
        let (mut a, mut b) = if sum > 0.0 {
            (self.ttft_weight / sum, self.tpot_weight / sum)
        } else {
            (1.0, 0.0)
        };
        // Smallest and largest |headroom| of each kind, in one pass.
        let (mut t_lo, mut t_hi, mut p_lo, mut p_hi) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(_, t, p) in members {
            let (t, p) = (t.abs(), p.abs());
            t_lo = t_lo.min(t);
            t_hi = t_hi.max(t);
            p_lo = p_lo.min(p);
            p_hi = p_hi.max(p);
        }
        let (t_range, p_range) = (t_hi - t_lo, p_hi - p_lo);
        if t_range <= EPS && p_range > EPS {
            (a, b) = (0.0, 1.0);
        } else if p_range <= EPS && t_range > EPS {
            (a, b) = (1.0, 0.0);
        }
        let norm = |v: f64, lo: f64, r: f64| if r <= EPS { 0.5 } else { (v - lo) / r };
        for &(k, t, p) in members {
            let c = a * norm(t.abs(), t_lo, t_range) + b * norm(p.abs(), p_lo, p_range);
            let w = match strategy {
                Headroom::Most => (c * 100.0) as i64 + 1,
                Headroom::Least => ((1.0 - c) * 100.0) as i64 + 1,
            };
            out[k] = score_of(w);
        }
    }
}

/// `w / 100` for the bucket weights 1 ..= 101, computed at compile time
/// (the same division, so the same bits); other values (not produced)
/// divide.
#[inline]
fn score_of(w: i64) -> f64 {
    const SCORES: [f64; 102] = {
        let mut a = [0.0; 102];
        let mut w = 0;
        while w < a.len() {
            a[w] = w as f64 / 100.0;
            w += 1;
        }
        a
    };
    usize::try_from(w)
        .ok()
        .and_then(|i| SCORES.get(i).copied())
        .unwrap_or(w as f64 / 100.0)
}

/// llm-d's buckets of a candidate, best first: predicted to meet both
/// objectives (or not predicted), then predicted to miss on an endpoint
/// with nothing dispatched, to miss the TPOT objective only, the TTFT
/// objective only, both. Only the best bucket present is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bucket {
    Meets,
    IdleMiss,
    TpotMiss,
    TtftMiss,
    BothMiss,
}

impl Bucket {
    fn of(v: &LatencyView) -> Bucket {
        match (v.ttft_headroom_ms < 0.0, v.tpot_headroom_ms < 0.0) {
            (false, false) => Bucket::Meets,
            _ if v.dispatched == 0 => Bucket::IdleMiss,
            (false, true) => Bucket::TpotMiss,
            (true, false) => Bucket::TtftMiss,
            (true, true) => Bucket::BothMiss,
        }
    }
}

impl Scorer for LatencyScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        // (position, TTFT headroom, TPOT headroom), and each one's bucket.
        let mut members = Vec::with_capacity(candidates.len());
        let mut buckets = Vec::with_capacity(candidates.len());
        let mut best = Bucket::BothMiss;
        let mut predicted = false;
        for (k, &i) in candidates.iter().enumerate() {
            let (bucket, t, p) = match latency::view(ctx, i) {
                Some(v) => {
                    predicted = true;
                    (Bucket::of(&v), v.ttft_headroom_ms, v.tpot_headroom_ms)
                }
                None => (Bucket::Meets, 0.0, 0.0),
            };
            best = best.min(bucket);
            members.push((k, t, p));
            buckets.push(bucket);
        }
        if !predicted {
            return self.composite(ctx, candidates, out);
        }
        out.fill(0.0);
        let strategy = if best == Bucket::Meets {
            self.strategy
        } else {
            Headroom::Least
        };
        let mut of = buckets.iter();
        members.retain(|_| of.next() == Some(&best));
        self.bucket(&members, strategy, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scorer(strategy: Headroom) -> LatencyScorer {
        LatencyScorer {
            ttft_weight: 0.8,
            tpot_weight: 0.2,
            strategy,
            composite: [1.0; 3],
            prefix_producer: String::new(),
        }
    }

    #[test]
    fn buckets_score_as_llm_d_does() {
        // TPOT headroom equal everywhere: all weight on TTFT.
        let m = [(0, 100.0, 10.0), (1, 50.0, 10.0), (2, 0.0, 10.0)];
        let mut out = [0.0; 3];
        scorer(Headroom::Least).bucket(&m, Headroom::Least, &mut out);
        assert_eq!(out, [0.01, 0.51, 1.01]);
        scorer(Headroom::Most).bucket(&m, Headroom::Most, &mut out);
        assert_eq!(out, [1.01, 0.51, 0.01]);
        // No range in either dimension: 0.51 for all.
        let m = [(0, 5.0, 5.0), (1, 5.0, 5.0)];
        let mut out = [0.0; 2];
        scorer(Headroom::Least).bucket(&m, Headroom::Least, &mut out);
        assert_eq!(out, [0.51, 0.51]);
        // Both dimensions vary: blended 0.8 / 0.2 on |headroom|, truncated.
        let m = [(0, 0.0, 0.0), (1, 100.0, 10.0), (2, 50.0, 0.0)];
        let mut out = [0.0; 3];
        scorer(Headroom::Least).bucket(&m, Headroom::Least, &mut out);
        // c = 0, 1, 0.4 -> (trunc(100 (1 - c)) + 1) / 100.
        assert_eq!(out, [1.01, 0.01, 0.61]);
    }

    #[test]
    fn bucket_scores_are_the_divisions() {
        for w in -3i64..110 {
            assert_eq!(score_of(w).to_bits(), (w as f64 / 100.0).to_bits(), "{w}");
        }
    }
}
