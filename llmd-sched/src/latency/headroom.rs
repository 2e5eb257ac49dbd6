//! Headroom of a prediction against a request's objectives, as llm-d's
//! predicted-latency producer computes it (`validatePrediction`).

use crate::framework::{CycleContext, EndpointIndex, LatencyPrediction};

/// How TPOT is judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TpotRule {
    /// TPOT is judged at all (streaming mode, and not a prefill endpoint).
    pub judged: bool,
    /// `sloBufferFactor`.
    pub buffer: f64,
    /// Smallest TPOT objective of the requests in flight on the endpoint
    /// (0: none, or one of them has none).
    pub endpoint_min_ms: f64,
}

/// `(ttft_valid, tpot_valid, ttft_headroom_ms, tpot_headroom_ms)` of `p`
/// against the objectives (0 when the request has none, as llm-d reads an
/// absent header): TTFT must be below its objective; the judged TPOT below
/// `objective × buffer`, lowered to `endpoint_min × buffer` when that is set.
/// An unknown TPOT (no model has learnt TPOT yet) is not judged: valid,
/// with a headroom of 0 — as the plugins fail open without predictions, a
/// cold model must not refuse or divert requests on a guess.
#[inline]
pub fn headroom(
    p: &LatencyPrediction,
    ttft_slo_ms: f64,
    tpot_slo_ms: f64,
    rule: TpotRule,
) -> (bool, bool, f64, f64) {
    let ttft_valid = p.ttft_ms < ttft_slo_ms;
    let ttft_headroom = ttft_slo_ms - p.ttft_ms;
    if !rule.judged {
        return (ttft_valid, true, ttft_headroom, 0.0);
    }
    let mut buffered = tpot_slo_ms * rule.buffer;
    if rule.endpoint_min_ms > 0.0 {
        buffered = buffered.min(rule.endpoint_min_ms * rule.buffer);
    }
    match p.tpot_ms.filter(|t| t.is_finite()) {
        Some(tpot) => (ttft_valid, tpot < buffered, ttft_headroom, buffered - tpot),
        None => (ttft_valid, true, ttft_headroom, 0.0),
    }
}

/// What the SLO plugins read of one endpoint's prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyView {
    /// Predicted TTFT, ms.
    pub ttft_ms: f64,
    /// TTFT objective − predicted TTFT, ms.
    pub ttft_headroom_ms: f64,
    /// Buffered TPOT objective − predicted TPOT, ms (0 when not judged).
    pub tpot_headroom_ms: f64,
    /// Both objectives predicted to be met (llm-d's `IsValid`).
    pub valid: bool,
    /// Requests dispatched there and not finished.
    pub dispatched: u32,
}

/// An endpoint's latency view for the SLO plugins: the producer's output
/// when a `predicted-latency-producer` ran, else (a host-attached
/// predictor, no producer) the host's prediction judged with both
/// objectives. `None`: no prediction for this endpoint.
#[inline(always)]
pub fn view(ctx: &CycleContext<'_>, ep: EndpointIndex) -> Option<LatencyView> {
    if ctx.has_latency_info() {
        let i = ctx.latency_info(ep)?;
        let p = i.prediction?;
        return Some(LatencyView {
            ttft_ms: p.ttft_ms,
            ttft_headroom_ms: i.ttft_headroom_ms,
            tpot_headroom_ms: i.tpot_headroom_ms,
            valid: i.is_valid(),
            dispatched: i.dispatched,
        });
    }
    let p = ctx.predict(ep)?;
    let req = ctx.request();
    let (ttft_slo, tpot_slo) = (
        req.ttft_slo_ms().unwrap_or(0.0),
        req.tpot_slo_ms().unwrap_or(0.0),
    );
    let rule = TpotRule {
        judged: tpot_slo > 0.0,
        buffer: 1.0,
        endpoint_min_ms: 0.0,
    };
    let (ttft_valid, tpot_valid, ttft_headroom_ms, tpot_headroom_ms) =
        headroom(&p, ttft_slo, tpot_slo, rule);
    Some(LatencyView {
        ttft_ms: p.ttft_ms,
        ttft_headroom_ms,
        tpot_headroom_ms,
        valid: ttft_valid && tpot_valid,
        dispatched: ctx.endpoint(ep).inflight_requests().max(0) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUDGED: TpotRule = TpotRule {
        judged: true,
        buffer: 1.0,
        endpoint_min_ms: 0.0,
    };

    fn p(ttft_ms: f64, tpot_ms: Option<f64>) -> LatencyPrediction {
        LatencyPrediction { ttft_ms, tpot_ms }
    }

    #[test]
    fn judged_against_the_objectives() {
        assert_eq!(
            headroom(&p(80.0, Some(30.0)), 100.0, 50.0, JUDGED),
            (true, true, 20.0, 20.0)
        );
        assert_eq!(
            headroom(&p(120.0, Some(60.0)), 100.0, 50.0, JUDGED),
            (false, false, -20.0, -10.0)
        );
        // The smallest objective in flight on the endpoint lowers the bound.
        let min = TpotRule {
            endpoint_min_ms: 40.0,
            ..JUDGED
        };
        assert_eq!(
            headroom(&p(80.0, Some(45.0)), 100.0, 50.0, min),
            (true, false, 20.0, -5.0)
        );
        // Not judged: TPOT is ignored.
        let off = TpotRule {
            judged: false,
            ..JUDGED
        };
        assert_eq!(
            headroom(&p(80.0, Some(99.0)), 100.0, 50.0, off),
            (true, true, 20.0, 0.0)
        );
    }

    /// Before any model has learnt TPOT, TPOT neither fails a request nor
    /// counts as headroom.
    #[test]
    fn an_unknown_tpot_is_not_judged() {
        assert_eq!(
            headroom(&p(80.0, None), 100.0, 50.0, JUDGED),
            (true, true, 20.0, 0.0)
        );
        assert_eq!(
            headroom(&p(80.0, Some(f64::NAN)), 100.0, 50.0, JUDGED),
            (true, true, 20.0, 0.0)
        );
    }
}
