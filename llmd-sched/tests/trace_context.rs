//! W3C trace context through a decision: the scheduling span continues the
//! caller's trace and is forwarded to the worker; malformed headers are
//! ignored and counted.

mod common;

use common::*;
use llmd_sched::{Request, Scheduler, TraceContext};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn pool() -> Scheduler {
    let (s, _) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s
}

fn request(headers: &[(&str, &str)]) -> Request {
    let mut r = Request::with_tokens("r1", "m", tokens(32, 1));
    for (k, v) in headers {
        r.headers.insert(k.to_string(), v.to_string());
    }
    r
}

fn invalid(s: &Scheduler, header: &str) -> f64 {
    metric(
        s,
        &format!("llmd_trace_context_invalid_total{{header=\"{header}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn the_worker_gets_a_traceparent_naming_the_scheduling_span() {
    let s = pool();
    let d = s
        .pick(&request(&[
            ("TraceParent", TP),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]))
        .unwrap();
    let t: &TraceContext = d.trace.as_ref().unwrap();
    let fwd = d.header("traceparent").unwrap();
    assert_eq!(fwd, t.traceparent());
    assert!(fwd.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert!(fwd.ends_with("-01"), "sampling flag kept: {fwd}");
    assert!(
        !fwd.contains("00f067aa0ba902b7"),
        "a new span, not the caller's"
    );
    assert_eq!(d.header("tracestate"), Some("congo=t61rcWkgMzE"));
    // The explanation JSON carries the ids as hex.
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["trace"]["parent_span_id"], "00f067aa0ba902b7");
}

#[test]
fn no_traceparent_no_trace_and_malformed_ones_are_counted() {
    let s = pool();
    let d = s.pick(&request(&[])).unwrap();
    assert!(d.trace.is_none() && d.header("traceparent").is_none());
    let d = s
        .pick(&request(&[
            ("traceparent", "00-nope"),
            ("tracestate", "a=1"),
        ]))
        .unwrap();
    assert!(
        d.trace.is_none() && d.header("traceparent").is_none() && d.header("tracestate").is_none()
    );
    assert_eq!(invalid(&s, "traceparent"), 1.0);
    let d = s
        .pick(&request(&[
            ("traceparent", TP),
            ("tracestate", "missing-equals"),
        ]))
        .unwrap();
    assert!(d.trace.is_some() && d.header("tracestate").is_none());
    assert_eq!(invalid(&s, "tracestate"), 1.0);
}
