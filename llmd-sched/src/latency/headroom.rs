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
/// An unknown TPOT fails a judged TPOT with a headroom of minus the objective.
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
    let tpot = p.tpot_ms.unwrap_or(f64::INFINITY);
    let headroom = if tpot.is_finite() {
        buffered - tpot
    } else {
        -buffered.max(0.0) - 1.0
    };
    (ttft_valid, tpot < buffered, ttft_headroom, headroom)
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
