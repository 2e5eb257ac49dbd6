//! Goodput: each request is judged once, at completion, against its own
//! objectives (or the configured defaults), as DistServe defines it.

use super::config::SloTargets;
use super::labels::SloKind;
use super::series::LatencySeries;
use std::time::Duration;

/// DistServe's per-request TPOT: `(t_last − t_first) / (n_out − 1)`, zero
/// when at most one token was generated.
pub fn tpot(first: Duration, last: Duration, output_tokens: u64) -> Duration {
    if output_tokens <= 1 {
        return Duration::ZERO;
    }
    let decode = last.saturating_sub(first);
    Duration::from_secs_f64(decode.as_secs_f64() / (output_tokens - 1) as f64)
}

/// Which objectives a finished request met: `[ttft, tpot, e2e, all]`, each
/// `None` when the request has no such objective. `all` is judged when the
/// request has at least one objective (it meets `all` when it meets each it
/// was judged on); a request without objectives is judged against none, so
/// it counts in no SLO series at all, `all` included. `tpot` is `None` when
/// it could not be measured (a non-streaming reply): the TPOT objective is
/// then not judged, while `all` still is.
pub fn judge(
    slo: SloTargets,
    ttft: Duration,
    tpot: Option<Duration>,
    e2e: Duration,
) -> [Option<bool>; 4] {
    let ttft_ok = slo.ttft.map(|t| ttft <= t);
    let tpot_ok = slo.tpot.zip(tpot).map(|(t, v)| v <= t);
    let e2e_ok = slo.e2e.map(|t| e2e <= t);
    let each = [ttft_ok, tpot_ok, e2e_ok];
    let all = slo.any().then(|| each.iter().all(|v| v.unwrap_or(true)));
    [ttft_ok, tpot_ok, e2e_ok, all]
}

/// Counts a successful request's verdicts.
pub(super) fn count_success(
    lat: &LatencySeries,
    slo: SloTargets,
    ttft: Duration,
    tpot: Option<Duration>,
    e2e: Duration,
) {
    for (i, verdict) in judge(slo, ttft, tpot, e2e).iter().enumerate() {
        if let Some(met) = verdict {
            lat.slo_evaluated[i].inc();
            if *met {
                lat.slo_met[i].inc();
            }
        }
    }
}

/// Counts a failed or rejected request: judged against every objective it
/// has, meeting none, except TPOT when it could not have been measured
/// (no token was streamed: as for a successful non-streaming reply, whose
/// TPOT is not judged, else a non-streaming host's TPOT attainment would
/// count only its failures).
pub(super) fn count_failure(lat: &LatencySeries, slo: SloTargets, streamed: bool) {
    let has = [
        slo.ttft.is_some(),
        slo.tpot.is_some() && streamed,
        slo.e2e.is_some(),
        slo.any(),
    ];
    for (i, k) in SloKind::ALL.iter().enumerate() {
        debug_assert_eq!(*k as usize, i);
        if has[i] {
            lat.slo_evaluated[i].inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn distserve_tpot() {
        assert_eq!(tpot(ms(100), ms(1100), 11), ms(100));
        assert_eq!(tpot(ms(100), ms(100), 1), Duration::ZERO);
        assert_eq!(tpot(ms(100), ms(100), 0), Duration::ZERO);
    }

    #[test]
    fn verdicts_are_inclusive_and_all_combines() {
        let slo = SloTargets {
            ttft: Some(ms(200)),
            tpot: Some(ms(50)),
            e2e: None,
        };
        assert_eq!(
            judge(slo, ms(200), Some(ms(50)), ms(9999)),
            [Some(true), Some(true), None, Some(true)]
        );
        assert_eq!(
            judge(slo, ms(201), Some(ms(10)), ms(1)),
            [Some(false), Some(true), None, Some(false)]
        );
        let none = SloTargets::default();
        assert_eq!(
            judge(none, ms(1), Some(ms(1)), ms(1)),
            [None, None, None, None]
        );
        // A non-streaming reply: TPOT unmeasured, not judged.
        let tpot_only = SloTargets {
            tpot: Some(ms(50)),
            ..SloTargets::default()
        };
        // `all` is still judged: the request has an objective.
        assert_eq!(
            judge(tpot_only, ms(1), None, ms(1)),
            [None, None, None, Some(true)]
        );
        assert_eq!(
            judge(slo, ms(100), None, ms(1)),
            [Some(true), None, None, Some(true)]
        );
    }
}
