//! The session-affinity response header and conditional decode (`Prefer: if-available`).

mod common;

use common::*;
use llmd_sched::plugins::scorers::SessionAffinity;
use llmd_sched::{Request, ScheduleError, Scheduler};

fn three(yaml: &str) -> Scheduler {
    let (s, _) = sched(yaml);
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    s
}

fn decode_token(v: &str) -> String {
    // The token is opaque to clients; the scheduler must accept its own output back.
    for n in ["e1", "e2", "e3"] {
        if SessionAffinity::encode_token(n) == v {
            return n.to_string();
        }
    }
    panic!("token {v} names no endpoint")
}

#[test]
fn encoded_header_strategy_writes_the_served_endpoint() {
    let s = three(&single("- type: session-affinity-scorer\n"));
    let d = s.pick(&Request::with_tokens("r0", "m", vec![1])).unwrap();
    let tok = d
        .response_header("x-session-token")
        .expect("response header");
    assert_eq!(decode_token(tok), d.primary().unwrap().name);
    assert_eq!(d.response_headers.len(), 1);
    assert!(
        d.header("x-session-token").is_none(),
        "not an upstream header"
    );
    // The client sends it back: every later turn pins to the same endpoint.
    let served = d.primary().unwrap().name.clone();
    for i in 1..6 {
        let d2 = s
            .pick(
                &Request::with_tokens(format!("r{i}"), "m", vec![1]).header("X-Session-Token", tok),
            )
            .unwrap();
        assert_eq!(d2.primary().unwrap().name, served);
        assert_eq!(d2.response_header("x-session-token"), Some(tok));
    }
}

#[test]
fn configured_header_name_and_filter_form() {
    let y = single("- type: session-affinity-filter\n  parameters:\n    encodedEndpointHeaderConfig: {header: x-pin}\n- type: session-affinity-scorer\n  parameters:\n    encodedEndpointHeaderConfig: {header: x-pin}\n");
    let s = three(&y);
    let tok = SessionAffinity::encode_token("e3");
    let d = s
        .pick(&Request::with_tokens("r", "m", vec![1]).header("x-pin", tok.clone()))
        .unwrap();
    assert_eq!(d.primary().unwrap().name, "e3");
    // Two plugins name the same header: it is written once.
    assert_eq!(d.response_headers, vec![("x-pin".to_string(), tok)]);
}

#[test]
fn no_response_header_without_the_encoded_strategy() {
    let s = three(&single(
        "- type: session-affinity-scorer\n  parameters: {strategy: session_id}\n",
    ));
    let d = s
        .pick(&Request::with_tokens("r", "m", vec![1]).header("x-session-id", "abc"))
        .unwrap();
    assert!(d.response_headers.is_empty(), "{:?}", d.response_headers);
    let s = three(&single("- type: queue-scorer\n"));
    let d = s.pick(&Request::with_tokens("r", "m", vec![1])).unwrap();
    assert!(d.response_headers.is_empty());
}

const PREFIX: &str = "- type: approx-prefix-cache-producer\n  parameters: {autoTune: false, blockSizeTokens: 64}\n- type: inflight-load-producer\n- type: prefix-cache-scorer\n- type: max-score-picker\n";

fn inflight(s: &Scheduler) -> i64 {
    ["e1", "e2", "e3"]
        .iter()
        .map(|n| s.endpoint_state(n).unwrap().inflight_requests())
        .sum()
}

#[test]
fn if_available_without_cached_prefix_is_412_and_leaves_no_load() {
    let s = three(&single(PREFIX));
    let req = Request::with_tokens("r0", "m", tokens(256, 7)).header("Prefer", "If-Available");
    let e = s.pick(&req).unwrap_err();
    assert!(
        matches!(e, ScheduleError::PreconditionFailed { .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), 412);
    assert_eq!(inflight(&s), 0);
    assert_eq!(s.open_requests(), 0);
    // Nothing was indexed for the refused request either: a retry still misses.
    let retry = Request::with_tokens("r1", "m", tokens(256, 7)).header("prefer", "if-available");
    assert!(matches!(
        s.pick(&retry),
        Err(ScheduleError::PreconditionFailed { .. })
    ));
    assert_eq!(inflight(&s), 0);
    // Not counted as a rejection (nor as a request) in the metrics.
    let text = s.render_metrics();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("llmd_inference_requests_total{") && l.contains("rejected")),
        "{text}"
    );
}

#[test]
fn if_available_with_cached_prefix_schedules() {
    let s = three(&single(PREFIX));
    let warm = s
        .pick(&Request::with_tokens("w", "m", tokens(256, 7)))
        .unwrap();
    let served = warm.primary().unwrap().name.clone();
    s.on_complete("w", None);
    let req = Request::with_tokens("r", "m", tokens(256, 7))
        .header("prefer", "respond-async, if-available");
    let d = s.pick(&req).unwrap();
    assert_eq!(d.primary().unwrap().name, served);
    assert_eq!(inflight(&s), 1);
    // A different prompt has no cached prefix anywhere.
    let cold = Request::with_tokens("c", "m", tokens(256, 99)).header("prefer", "if-available");
    assert_eq!(s.pick(&cold).unwrap_err().code(), 412);
    // Without the preference a miss schedules normally.
    assert!(s
        .pick(&Request::with_tokens("c2", "m", tokens(256, 99)))
        .is_ok());
    // Another preference alone does not make the request conditional.
    assert!(s
        .pick(&Request::with_tokens("c3", "m", tokens(256, 98)).header("prefer", "respond-async"))
        .is_ok());
}

#[test]
fn if_available_without_any_prefix_producer_is_412() {
    let s = three(&single("- type: queue-scorer\n"));
    let req = Request::with_tokens("r", "m", vec![1, 2, 3]).header("prefer", "if-available");
    assert_eq!(s.pick(&req).unwrap_err().code(), 412);
    assert_eq!(s.open_requests(), 0);
}
