//! `latency-slo-admitter`: sheddable requests with latency objectives are
//! refused when no endpoint is predicted to meet them (llm-d's rule).

use crate::error::ScheduleError;
use crate::framework::{CycleContext, EndpointIndex};

/// KV usage under which an endpoint counts as cold (llm-d: 2%).
const COLD_KV: f64 = 0.02;

/// Admits or refuses the request in `ctx`, after the producers ran.
///
/// Always admitted: requests with priority ≥ 0, without a TTFT or TPOT
/// objective above 0, or when no candidate has a prediction. Otherwise
/// refused when no candidate is predicted to meet every objective, none is
/// idle (nothing running, as scraped) and none is cold (KV usage < 2%);
/// idle and cold are judged on every candidate, with a prediction or not.
pub fn admit(ctx: &CycleContext<'_>, candidates: &[EndpointIndex]) -> Result<(), ScheduleError> {
    let req = ctx.request();
    if req.priority >= 0 {
        return Ok(());
    }
    let has_slo =
        req.ttft_slo_ms().is_some_and(|v| v > 0.0) || req.tpot_slo_ms().is_some_and(|v| v > 0.0);
    if !has_slo {
        return Ok(());
    }
    // As llm-d: idle and cold are judged on every candidate, validity on
    // those with a prediction; without any prediction, fail open.
    let (mut predicted, mut room) = (false, false);
    for &i in candidates {
        let ep = ctx.endpoint(i);
        room |= ep.running_requests_size() == 0 || ep.kv_cache_usage() < COLD_KV;
        if let Some(v) = super::view(ctx, i) {
            predicted = true;
            room |= v.valid;
        }
    }
    if !predicted || room {
        return Ok(());
    }
    Err(ScheduleError::ResourceExhausted {
        profile: None,
        reason: format!(
            "sheddable request (priority {}) rejected: no valid endpoint available to serve the request (no endpoint is predicted to meet its latency objectives, none is idle or cold)",
            req.priority
        ),
    })
}
