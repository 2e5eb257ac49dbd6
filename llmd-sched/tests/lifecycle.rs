//! The request lifecycle through the scheduler: engine usage at completion
//! (non-streaming replies included), unknown request ids in every call, and
//! goodput without objectives.

mod common;

use common::*;
use llmd_sched::observe::{Metrics, MetricsConfig, SloTargets};
use llmd_sched::{Request, RequestErrorKind, Scheduler, Usage};

fn pool() -> (Scheduler, std::sync::Arc<llmd_sched::ManualClock>) {
    let (s, clock) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    (s, clock)
}

#[test]
fn usage_is_read_from_an_openai_usage_object() {
    let u = Usage::from_openai(&serde_json::json!({
        "prompt_tokens": 120,
        "completion_tokens": 33,
        "total_tokens": 153,
        "prompt_tokens_details": {"cached_tokens": 96}
    }));
    assert_eq!(
        u,
        Usage {
            prompt_tokens: Some(120),
            output_tokens: Some(33),
            cached_tokens: Some(96)
        }
    );
    // Absent, null, negative, fractional and oversized counts are not reported.
    let u = Usage::from_openai(&serde_json::json!({
        "prompt_tokens": -1,
        "completion_tokens": 4294967296u64,
        "prompt_tokens_details": null
    }));
    assert_eq!(u, Usage::default());
    let u = Usage::from_openai(&serde_json::json!({"completion_tokens": 2.5}));
    assert_eq!(u, Usage::default());
    assert_eq!(
        Usage::from_openai(&serde_json::json!("x")),
        Usage::default()
    );
}

#[test]
fn a_non_streaming_reply_records_the_engines_output_tokens() {
    let (s, clock) = pool();
    let d = s
        .pick(&Request::with_tokens("r1", "m", tokens(64, 1)))
        .unwrap();
    assert_eq!(d.targets[0].name, "e1");
    clock.advance_ns(800_000_000);
    // No token calls: the whole answer arrived with the response.
    let sum = s
        .on_complete_with_usage(
            "r1",
            Usage {
                prompt_tokens: Some(64),
                output_tokens: Some(50),
                cached_tokens: Some(32),
            },
        )
        .unwrap();
    assert_eq!((sum.output_tokens, sum.cached_tokens), (50, Some(32)));
    assert_eq!(sum.first_token_at_ns, None);
    assert_eq!(
        metric(&s, "llmd_inference_output_tokens_sum{"),
        Some(50.0),
        "{}",
        s.render_metrics()
    );
    // TTFT is the whole request; TPOT is not observed for it.
    assert_eq!(metric(&s, "llmd_inference_ttft_sum{"), Some(0.8));
    assert_eq!(
        metric(&s, "llmd_inference_tpot_seconds_count{").unwrap_or(0.0),
        0.0
    );
}

#[test]
fn streamed_tokens_are_replaced_by_reported_usage() {
    let (s, _) = pool();
    s.pick(&Request::with_tokens("r1", "m", tokens(64, 1)))
        .unwrap();
    assert!(s.on_first_token("r1"));
    assert!(s.on_tokens("r1", 9));
    // The engine says 12 (e.g. the last chunk's tokens were not reported).
    let sum = s
        .on_complete_with_usage(
            "r1",
            Usage {
                output_tokens: Some(12),
                ..Usage::default()
            },
        )
        .unwrap();
    assert_eq!(sum.output_tokens, 12);
    // Without usage the counted tokens stand: 1 + 9.
    s.pick(&Request::with_tokens("r2", "m", tokens(64, 1)))
        .unwrap();
    s.on_first_token("r2");
    s.on_tokens("r2", 9);
    assert_eq!(s.on_complete("r2", None).unwrap().output_tokens, 10);
}

#[test]
fn unknown_request_ids_are_a_counted_no_op_in_every_call() {
    let (s, _) = pool();
    s.pick(&Request::with_tokens("known", "m", tokens(64, 1)))
        .unwrap();
    type Call = Box<dyn Fn(&Scheduler) -> bool>;
    let calls: [(&str, Call); 7] = [
        ("on_first_token", Box::new(|s| s.on_first_token("nope"))),
        ("on_tokens", Box::new(|s| s.on_tokens("nope", 3))),
        ("on_prefill_done", Box::new(|s| s.on_prefill_done("nope"))),
        (
            "on_complete",
            Box::new(|s| s.on_complete("nope", Some(1)).is_some()),
        ),
        (
            "on_complete_with_usage",
            Box::new(|s| s.on_complete_with_usage("nope", Usage::default()).is_some()),
        ),
        (
            "on_error",
            Box::new(|s| s.on_error("nope", RequestErrorKind::Other).is_some()),
        ),
        (
            "on_served_by",
            Box::new(|s| s.on_served_by("nope", "e1").unwrap()),
        ),
    ];
    for (i, (name, call)) in calls.iter().enumerate() {
        assert!(!call(&s), "{name} reported an unknown id as found");
        assert_eq!(
            metric(&s, "llmd_observe_unknown_request_calls_total"),
            Some((i + 1) as f64),
            "{name}"
        );
    }
    // Nothing else changed: the known request is still open.
    assert_eq!(s.open_requests(), 1);
    assert!(s.on_complete("known", None).is_some());
    // A second completion of the same id is unknown too.
    assert!(s.on_complete("known", None).is_none());
    assert_eq!(
        metric(&s, "llmd_observe_unknown_request_calls_total"),
        Some(8.0)
    );
}

/// A host that falls back to another target (the first could not be
/// reached) says so: the request's load, in-flight gauges, metric labels
/// and summary follow it to the endpoint that served it.
#[test]
fn a_request_served_by_a_fallback_moves_its_load_and_metrics_there() {
    let (s, clock) = sched(&single(
        "- type: inflight-load-producer\n- type: active-request-scorer\n- type: max-score-picker\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    let d = s
        .pick(&Request::with_tokens("r1", "m", tokens(64, 1)))
        .unwrap();
    let first = d.targets[0].name.clone();
    let other = if first == "e1" { "e2" } else { "e1" };
    let load = |name: &str| s.endpoint_state(name).unwrap().inflight_requests();
    let gauge = |name: &str| {
        metric(
            &s,
            &format!("llmd_router_inflight_requests{{endpoint=\"{name}\""),
        )
    };
    assert_eq!((load(&first), load(other)), (1, 0));
    assert_eq!(gauge(&first), Some(1.0));

    // An endpoint that is not registered is refused; nothing moves.
    assert!(s.on_served_by("r1", "nowhere").is_err());
    assert_eq!((load(&first), load(other)), (1, 0));

    assert_eq!(s.on_served_by("r1", other), Ok(true));
    assert_eq!((load(&first), load(other)), (0, 1));
    assert_eq!((gauge(&first), gauge(other)), (Some(0.0), Some(1.0)));
    // Served where it now is: a no-op.
    assert_eq!(s.on_served_by("r1", other), Ok(true));
    assert_eq!((load(&first), load(other)), (0, 1));

    clock.advance_ns(100_000_000);
    assert!(s.on_first_token("r1"));
    let sum = s.on_complete("r1", Some(0)).unwrap();
    assert_eq!(sum.target, other);
    assert_eq!((load(&first), load(other)), (0, 0));
    assert_eq!((gauge(&first), gauge(other)), (Some(0.0), Some(0.0)));
    // The request and its TTFT are counted under the endpoint that served it.
    let text = s.render_metrics();
    let served = |family: &str, name: &str| {
        text.lines().any(|l| {
            l.starts_with(family)
                && l.contains(&format!("endpoint=\"{name}\""))
                && !l.ends_with(" 0")
        })
    };
    assert!(served("llmd_inference_requests_total", other), "{text}");
    assert!(!served("llmd_inference_requests_total", &first), "{text}");
}

#[test]
fn without_objectives_no_slo_series_counts_the_request() {
    let (s, _) = pool();
    s.pick(&Request::with_tokens("r1", "m", tokens(64, 1)))
        .unwrap();
    s.on_first_token("r1");
    s.on_complete("r1", None).unwrap();
    let text = s.render_metrics();
    for slo in ["ttft", "tpot", "e2e", "all"] {
        let line = format!("llmd_slo_requests_total{{model=\"m\",pool=\"default\",slo=\"{slo}\"}}");
        assert!(
            metric(&s, &line).is_none_or(|v| v == 0.0),
            "{slo} counted without objectives:\n{text}"
        );
    }
    // With a default objective, `all` is judged.
    let (s2, _) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    let m = Metrics::new(MetricsConfig {
        default_slo: SloTargets {
            ttft: Some(std::time::Duration::from_secs(1)),
            ..SloTargets::default()
        },
        ..MetricsConfig::default()
    })
    .unwrap();
    let s2 = s2.with_metrics(std::sync::Arc::new(m));
    s2.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s2.pick(&Request::with_tokens("r1", "m", tokens(64, 1)))
        .unwrap();
    s2.on_first_token("r1");
    s2.on_complete("r1", None).unwrap();
    let all = "llmd_goodput_requests_total{model=\"m\",pool=\"default\",slo=\"all\"}";
    assert_eq!(metric(&s2, all), Some(1.0));
}

/// Objectives from clients' headers or the request that are not finite and
/// positive (`inf`, `1e400`, a huge finite value, negatives, NaN) are no
/// objective: the pick neither fails nor panics, and the request completes.
#[test]
fn objectives_that_are_not_finite_and_positive_count_as_none() {
    let (s, _) = pool();
    for (i, v) in ["inf", "1e400", "-5", "NaN", "0", "x"].iter().enumerate() {
        let id = format!("h{i}");
        let mut r = Request::with_tokens(&id, "m", tokens(64, 1));
        r.headers.insert("x-llm-d-slo-ttft-ms".into(), (*v).into());
        r.headers.insert("x-llm-d-slo-tpot-ms".into(), (*v).into());
        assert_eq!(r.ttft_slo_ms(), None, "{v}");
        assert_eq!(r.tpot_slo_ms(), None, "{v}");
        s.pick(&r).unwrap();
        s.on_first_token(&id);
        s.on_complete(&id, None).unwrap();
    }
    // A finite objective too long for a `Duration` (1e300 ms) is kept and
    // judged as met, not a panic.
    let mut r = Request::with_tokens("big", "m", tokens(64, 1));
    r.slo.ttft_ms = Some(1e300);
    r.slo.tpot_ms = Some(f64::INFINITY);
    assert_eq!((r.ttft_slo_ms(), r.tpot_slo_ms()), (Some(1e300), None));
    s.pick(&r).unwrap();
    s.on_first_token("big");
    s.on_complete("big", None).unwrap();
    let met = "llmd_goodput_requests_total{model=\"m\",pool=\"default\",slo=\"ttft\"}";
    assert_eq!(metric(&s, met), Some(1.0));
    // A valid header still counts.
    let mut r = Request::with_tokens("ok", "m", tokens(64, 1));
    r.headers.insert("x-llm-d-slo-ttft-ms".into(), "250".into());
    assert_eq!(r.ttft_slo_ms(), Some(250.0));
}

/// Endpoints are added and removed while other threads pick and complete:
/// afterwards no per-endpoint gauge of a removed endpoint is exported (a
/// decision about an endpoint being removed must not bring its series back).
#[test]
fn removed_endpoints_leave_no_gauges_under_concurrent_picks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (s, _) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    let s = Arc::new(s);
    let stop = Arc::new(AtomicBool::new(false));
    let pickers: Vec<_> = (0..2)
        .map(|t| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("p{t}-{n}");
                    if s.pick(&Request::with_tokens(&id, "m", tokens(16, 1)))
                        .is_ok()
                    {
                        s.on_first_token(&id);
                        s.on_complete(&id, None);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for i in 0..1500 {
        let name = format!("u-{i}");
        s.add_endpoint(ep(&name, metrics(0, 0, 0.0))).unwrap();
        std::thread::yield_now();
        s.remove_endpoint(&name).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for p in pickers {
        p.join().unwrap();
    }
    let text = s.render_metrics();
    let leaked: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with("llmd_router_inflight_") || l.starts_with("llmd_kvindex_blocks{"))
                && l.contains("endpoint=\"u-")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "{} series of removed endpoints: {:?}",
        leaked.len(),
        &leaked[..leaked.len().min(5)]
    );
    // A name removed and added again is exported again.
    s.add_endpoint(ep("u-7", metrics(0, 0, 0.0))).unwrap();
    assert!(s
        .render_metrics()
        .contains("llmd_router_inflight_requests{endpoint=\"u-7\""));
}

/// A host that never completes its requests holds a bounded table: at the
/// limit (`with_max_open_requests`) a pick expires the oldest
/// sixteenth of the open requests first, releasing their endpoint load,
/// counted with outcome `expired` and in
/// `llmd_open_requests_expired_at_limit_total`. The newest stay open.
#[test]
fn open_requests_are_bounded_by_expiring_the_oldest() {
    let (s, clock) = sched(&single(
        "- type: inflight-load-producer\n- type: active-request-scorer\n- type: max-score-picker\n",
    ));
    let s = s.with_max_open_requests(32);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    assert_eq!(s.open_requests_limit(), 32);
    // Some share a clock reading: ties go by order of picking.
    for i in 0..100 {
        if i % 3 == 0 {
            clock.advance_ns(1_000);
        }
        s.pick(&Request::with_tokens(format!("r{i}"), "m", tokens(64, i)))
            .unwrap();
        assert!(
            s.open_requests() <= 32,
            "{} open after r{i}",
            s.open_requests()
        );
    }
    let open = s.open_requests();
    let load = s.endpoint_state("e1").unwrap().inflight_requests();
    assert_eq!(
        load, open as i64,
        "the endpoint's load is the open requests'"
    );
    let expired = 100 - open;
    assert_eq!(
        metric(&s, "llmd_open_requests_expired_at_limit_total"),
        Some(expired as f64)
    );
    let text = s.render_metrics();
    let outcome = "llmd_inference_requests_total{model=\"m\",pool=\"default\",profile=\"default\",endpoint=\"e1\",outcome=\"expired\"}";
    assert_eq!(metric(&s, outcome), Some(expired as f64), "{text}");
    assert_eq!(
        metric(&s, "llmd_observe_untracked_requests_total"),
        Some(0.0),
        "the metrics' table never filled"
    );
    // The oldest went first: the last picks are still open, the first not.
    assert!(s.on_complete("r99", None).is_some());
    assert!(s.on_complete(&format!("r{}", 100 - open), None).is_some());
    assert!(s.on_complete("r0", None).is_none());
    assert!(s.on_complete(&format!("r{}", 99 - open), None).is_none());
}
