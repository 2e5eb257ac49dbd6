//! The in-process latency model through the scheduler: it learns each
//! endpoint's TTFT and TPOT from the lifecycle calls, llm-d's SLO plugins
//! route by its predictions, predictions and their errors are explained and
//! exported, and sheddable requests are refused when no endpoint can meet
//! their objectives.

mod common;

use common::*;
use llmd_sched::latency::PredictionSource;
use llmd_sched::{Request, ScheduleError, Scheduler, Usage};

const CONFIG: &str = "\
- type: predicted-latency-producer
  parameters:
    streamingMode: true
- type: slo-headroom-tier-filter
  parameters:
    epsilonExploreNeg: 0
- type: latency-scorer
- type: latency-slo-admitter
- type: max-score-picker
";

fn fleet() -> (Scheduler, std::sync::Arc<llmd_sched::ManualClock>) {
    let (s, clock) = sched(&single(CONFIG));
    s.add_endpoint(ep("e1", metrics(0, 4, 0.3))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 4, 0.3))).unwrap();
    (s, clock)
}

/// Serves one request on `target` (whatever was picked is overridden by
/// forcing the only candidate through a header-free replay): first token
/// after `ttft_ms`, then `n` tokens at `tpot_ms` each.
fn serve(
    s: &Scheduler,
    clock: &llmd_sched::ManualClock,
    id: &str,
    req: Request,
    ttft_ms: impl Fn(&str) -> u64,
    tpot_ms: impl Fn(&str) -> u64,
) -> String {
    let d = s.pick(&req).unwrap_or_else(|e| panic!("{e}"));
    let target = d.targets[0].name.clone();
    clock.advance_ns(ttft_ms(&target) * 1_000_000);
    assert!(s.on_first_token(id));
    let n = 20;
    clock.advance_ns(tpot_ms(&target) * 1_000_000 * (n - 1));
    s.on_tokens(id, n - 1);
    let summary = s
        .on_complete_with_usage(
            id,
            Usage {
                output_tokens: Some(n as u32),
                ..Usage::default()
            },
        )
        .expect("open request");
    assert_eq!(summary.target, target);
    target
}

fn slow_e1(t: &str) -> u64 {
    if t == "e1" {
        400
    } else {
        80
    }
}

fn tpot(t: &str) -> u64 {
    if t == "e1" {
        60
    } else {
        20
    }
}

#[test]
fn learns_each_endpoint_and_routes_to_the_one_meeting_the_slo() {
    let (s, clock) = fleet();
    // Without objectives and before anything is learnt, both endpoints serve.
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..60 {
        let id = format!("warm-{k}");
        let r = Request::with_tokens(&id, "m", tokens(256, k));
        seen.insert(serve(&s, &clock, &id, r, slow_e1, tpot));
    }
    assert_eq!(seen.len(), 2, "both endpoints were tried: {seen:?}");
    // The model has learnt both.
    let e1 = s.endpoint_state("e1").unwrap().uid();
    let e2 = s.endpoint_state("e2").unwrap().uid();
    let (n1, m1) = s.latency_model().samples(e1);
    let (n2, m2) = s.latency_model().samples(e2);
    assert!(
        n1 >= 10 && n2 >= 10 && m1 >= 10 && m2 >= 10,
        "{n1} {m1} {n2} {m2}"
    );
    // A request with a 200 ms TTFT objective goes to e2 and says why.
    let mut r = Request::with_tokens("slo", "m", tokens(256, 999));
    r.slo.ttft_ms = Some(200.0);
    r.slo.tpot_ms = Some(50.0);
    let d = s.pick(&r).unwrap();
    assert_eq!(d.targets[0].name, "e2");
    let p = &d.explanation.predicted_latency;
    assert_eq!(p.len(), 2);
    for x in p {
        let pred = x.info.prediction.expect("a prediction");
        let (ttft, tpot) = if &*x.endpoint == "e1" {
            (400.0, 60.0)
        } else {
            (80.0, 20.0)
        };
        assert!((pred.ttft_ms - ttft).abs() < ttft * 0.05, "{x:?}");
        assert!((pred.tpot_ms.unwrap() - tpot).abs() < tpot * 0.05, "{x:?}");
        assert_eq!(x.info.source, Some(PredictionSource::Endpoint));
        assert_eq!(x.info.is_valid(), &*x.endpoint == "e2", "{x:?}");
    }
    let json = d.explanation.to_json();
    assert!(json.contains("\"predicted_latency\""), "{json}");
    // The summary carries the prediction beside what was measured.
    clock.advance_ns(80_000_000);
    s.on_first_token("slo");
    let sum = s.on_complete("slo", None).unwrap();
    assert!(sum
        .predicted
        .is_some_and(|p| (p.ttft_ms - 80.0).abs() < 4.0));
}

/// llmd's `fleet-latency-scorer`: before anything is learnt the marginal
/// prefill cost is llm-d's throughput heuristic; once both endpoints are
/// learnt the one predicted faster scores 1, the other 0, and each
/// endpoint's learnt cost per uncached token is explained.
#[test]
fn the_fleet_latency_scorer_ranks_by_predicted_cost_and_explains_it() {
    let cfg = single(
        "- type: predicted-latency-producer\n  parameters: {streamingMode: true}\n- type: fleet-latency-scorer\n  parameters: {missCostFactor: 5}\n- type: max-score-picker\n",
    );
    let (s, clock) = sched(&cfg);
    s.add_endpoint(ep("e1", metrics(0, 4, 0.3))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 4, 0.3))).unwrap();
    let first = s
        .pick(&Request::with_tokens("cold", "m", tokens(256, 1)))
        .unwrap();
    assert_eq!(first.explanation.predicted_latency.len(), 2);
    for x in &first.explanation.predicted_latency {
        assert_eq!(x.info.source, Some(PredictionSource::Heuristic));
        let want = 1e3 / llmd_sched::latency::PEAK_PREFILL_TPS;
        assert!((x.info.prefill_ms_per_token - want).abs() < 1e-12, "{x:?}");
    }
    s.on_complete("cold", None);
    // Prompts of varied length, so the model sees TTFT move with the
    // uncached prompt: 40 ms + 0.1 ms a token on e1, 0.02 ms on e2.
    for k in 0..80u32 {
        let id = format!("warm-{k}");
        let len = 64 + (k % 8) as usize * 64;
        let r = Request::with_tokens(&id, "m", tokens(len, k));
        let per_token = |t: &str| if t == "e1" { 10 } else { 2 };
        serve(
            &s,
            &clock,
            &id,
            r,
            |t| 40 + per_token(t) * len as u64 / 100,
            tpot,
        );
    }
    let d = s
        .pick(&Request::with_tokens("now", "m", tokens(448, 999)))
        .unwrap();
    assert_eq!(d.targets[0].name, "e2");
    let scorer = &d.explanation.profiles[0].scorers[0];
    assert_eq!(&*scorer.name, "fleet-latency-scorer");
    let scored = &d.explanation.profiles[0].scored;
    let score_of = |n: &str| scorer.raw[scored.iter().position(|e| &**e == n).unwrap()];
    assert_eq!((score_of("e1"), score_of("e2")), (0.0, 1.0));
    assert_eq!(d.explanation.predicted_latency.len(), 2);
    for x in &d.explanation.predicted_latency {
        let want = if &*x.endpoint == "e1" { 0.1 } else { 0.02 };
        let got = x.info.prefill_ms_per_token;
        assert!((got - want).abs() < want * 0.25, "{x:?}");
    }
    let json = d.explanation.to_json();
    assert!(json.contains("\"prefill_ms_per_token\""), "{json}");
}

#[test]
fn predictions_and_errors_are_exported() {
    let (s, clock) = fleet();
    for k in 0..40 {
        let id = format!("r{k}");
        let r = Request::with_tokens(&id, "m", tokens(128, k));
        serve(&s, &clock, &id, r, slow_e1, tpot);
    }
    let text = s.metrics().render(std::time::Duration::from_secs(100));
    for name in [
        "llmd_predicted_ttft_seconds_bucket{endpoint=\"e1\"",
        "llmd_predicted_tpot_seconds_count{endpoint=\"e2\"}",
        "llmd_latency_prediction_error_ratio_bucket{endpoint=\"e1\",kind=\"ttft\"",
        "llmd_latency_prediction_error_ratio_count{endpoint=\"e2\",kind=\"tpot\"}",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    // Once an endpoint's own model answers, its errors are small: most of
    // the endpoint served most often are within 5%.
    let count = |needle: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(needle)).expect(needle);
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (e1, e2) = (
        count("llmd_latency_prediction_error_ratio_count{endpoint=\"e1\",kind=\"ttft\"}"),
        count("llmd_latency_prediction_error_ratio_count{endpoint=\"e2\",kind=\"ttft\"}"),
    );
    let busiest = if e1 > e2 { "e1" } else { "e2" };
    let within = count(&format!(
        "llmd_latency_prediction_error_ratio_bucket{{endpoint=\"{busiest}\",kind=\"ttft\",le=\"0.05\"}}"
    ));
    assert!(
        within >= (e1.max(e2) - 12.0),
        "{busiest}: {within} of {} within 5%",
        e1.max(e2)
    );
    // A removed endpoint's series go.
    s.remove_endpoint("e1").unwrap();
    let text = s.metrics().render(std::time::Duration::from_secs(100));
    for l in text.lines().filter(|l| l.contains("endpoint=\"e1\"")) {
        assert!(
            !l.starts_with("llmd_predicted_") && !l.starts_with("llmd_latency_prediction"),
            "{l}"
        );
    }
}

#[test]
fn sheddable_requests_are_refused_when_no_endpoint_can_meet_them() {
    let (s, clock) = fleet();
    for k in 0..40 {
        let id = format!("r{k}");
        let r = Request::with_tokens(&id, "m", tokens(128, k));
        serve(&s, &clock, &id, r, slow_e1, tpot);
    }
    // Fresh scrapes (the saturation detector would refuse stale ones).
    for e in ["e1", "e2"] {
        let mut m = metrics(0, 4, 0.3);
        m.updated_at_ns = 0;
        s.update_endpoint_metrics(e, m).unwrap();
    }
    // 50 ms TTFT: neither endpoint (80 / 400 ms) meets it; both run requests
    // and are warm.
    let mut r = Request::with_tokens("shed", "m", tokens(128, 7));
    r.slo.ttft_ms = Some(50.0);
    r.priority = -1;
    match s.pick(&r) {
        Err(ScheduleError::ResourceExhausted { reason, .. }) => {
            assert!(reason.contains("no valid endpoint"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The same request at priority 0 is routed (to the least bad endpoint).
    r.priority = 0;
    r.id = "kept".into();
    assert_eq!(s.pick(&r).unwrap().targets[0].name, "e2");
    // An idle endpoint admits a sheddable request.
    let mut m = metrics(0, 0, 0.3);
    m.updated_at_ns = 0;
    s.update_endpoint_metrics("e1", m).unwrap();
    r.priority = -1;
    r.id = "idle".into();
    assert!(s.pick(&r).is_ok());
}

#[test]
fn llm_d_parameters_are_checked_and_reported() {
    let bad = single("- type: predicted-latency-producer\n  parameters:\n    sloBufferFactor: 0\n- type: max-score-picker\n");
    let err = Scheduler::from_config_str(&bad).unwrap_err().to_string();
    assert!(err.contains("sloBufferFactor"), "{err}");
    let cfg = single("- type: predicted-latency-producer\n  parameters:\n    samplingMean: 500\n    contextTTL: 10m\n- type: max-score-picker\n");
    let s = Scheduler::from_config_str(&cfg).unwrap();
    let lines = s.config_report().not_executed_lines().join("\n");
    assert!(
        lines.contains("samplingMean") && lines.contains("contextTTL"),
        "{lines}"
    );
    // An unknown headroom strategy runs as llm-d runs it (least), and says so.
    let cfg = single("- type: latency-scorer\n  parameters: {headroomSelectionStrategy: composite-most}\n- type: max-score-picker\n");
    let s = Scheduler::from_config_str(&cfg).unwrap();
    let lines = s.config_report().not_executed_lines().join("\n");
    assert!(
        lines.contains("headroomSelectionStrategy") && lines.contains("read as least"),
        "{lines}"
    );
    for known in ["least", "most"] {
        let cfg = single(&format!("- type: latency-scorer\n  parameters: {{headroomSelectionStrategy: {known}}}\n- type: max-score-picker\n"));
        let s = Scheduler::from_config_str(&cfg).unwrap();
        assert!(s.config_report().not_executed_lines().is_empty());
    }
}

/// A host predictor that panics on its `n`-th prediction.
struct PanicsAt(std::sync::atomic::AtomicUsize);

impl llmd_sched::framework::LatencyPredictor for PanicsAt {
    fn predict(
        &self,
        _: &llmd_sched::framework::CycleContext<'_>,
        _: llmd_sched::framework::EndpointIndex,
    ) -> Option<llmd_sched::framework::LatencyPrediction> {
        if self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            panic!("predictor failed");
        }
        None
    }
}

/// A window whose third pick panics: the two requests already picked are
/// closed as failed (their decisions never reach the host), not left open.
#[test]
fn a_panicking_pick_in_a_batch_leaves_no_request_open() {
    let (s, _clock) = fleet();
    // Two endpoints: two predictions per pick; the fifth is the third pick's.
    let s = s.with_latency_predictor(std::sync::Arc::new(PanicsAt(5.into())));
    let window: Vec<Request> = (0..4)
        .map(|i| Request::with_tokens(format!("w{i}"), "m", vec![1; 64]))
        .collect();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.pick_batch(&window)));
    assert!(r.is_err(), "the third pick panics");
    assert_eq!(s.open_requests(), 0, "picked requests of the window closed");
    assert!(
        s.on_complete("w0", None).is_none(),
        "w0 was closed as failed"
    );
    // The scheduler goes on serving.
    let d = s
        .pick(&Request::with_tokens("after", "m", vec![1; 64]))
        .unwrap();
    assert!(!d.targets.is_empty());
    assert_eq!(s.open_requests(), 1);
}

/// A request id reused while the first request is still open replaces it:
/// the latency model's in-flight count and smallest TPOT objective drop the
/// first, so a tiny objective cannot pin an endpoint forever. Requests the
/// host dropped are released by `expire_requests`.
#[test]
fn reused_and_abandoned_request_ids_release_the_models_accounting() {
    let (s, clock) = fleet();
    let mut r = Request::with_tokens("same", "m", tokens(64, 1));
    r.headers
        .insert("x-llm-d-slo-tpot-ms".into(), "0.001".into());
    let first = s.pick(&r).unwrap().targets[0].name.clone();
    let uid = s.endpoint_state(&first).unwrap().uid();
    assert_eq!(s.latency_model().dispatched_on(uid), (1, 0.001));
    // The same id again (whichever endpoint it goes to), then completed.
    let mut again = Request::with_tokens("same", "m", tokens(64, 2));
    again
        .headers
        .insert("x-llm-d-slo-tpot-ms".into(), "50".into());
    s.pick(&again).unwrap();
    s.on_complete("same", None).unwrap();
    for e in ["e1", "e2"] {
        let uid = s.endpoint_state(e).unwrap().uid();
        assert_eq!(s.latency_model().dispatched_on(uid).0, 0, "{e}");
    }
    // Abandoned: never completed, released once older than the given age.
    s.pick(&Request::with_tokens("lost", "m", tokens(64, 3)))
        .unwrap();
    clock.advance_ns(5_000_000_000);
    s.pick(&Request::with_tokens("young", "m", tokens(64, 4)))
        .unwrap();
    assert_eq!(s.expire_requests(std::time::Duration::from_secs(2)), 1);
    assert_eq!(s.open_requests(), 1);
    assert!(s.on_complete("lost", None).is_none());
    assert!(s.on_complete("young", None).is_some());
    assert!(s.render_metrics().contains("outcome=\"expired\""));
}

/// A request served by a fallback target moves the model's in-flight
/// accounting there, and its timings train neither endpoint: its features
/// describe the first target, not the one that served it.
#[test]
fn a_request_served_by_a_fallback_trains_no_endpoint() {
    let (s, clock) = fleet();
    let mut r = Request::with_tokens("r", "m", tokens(64, 1));
    r.headers.insert("x-llm-d-slo-tpot-ms".into(), "20".into());
    let first = s.pick(&r).unwrap().targets[0].name.clone();
    let other = if first == "e1" { "e2" } else { "e1" };
    let uid = |e: &str| s.endpoint_state(e).unwrap().uid();
    assert_eq!(s.latency_model().dispatched_on(uid(&first)), (1, 20.0));
    assert_eq!(s.on_served_by("r", other), Ok(true));
    assert_eq!(s.latency_model().dispatched_on(uid(&first)).0, 0);
    assert_eq!(s.latency_model().dispatched_on(uid(other)), (1, 20.0));
    clock.advance_ns(50_000_000);
    assert!(s.on_first_token("r"));
    clock.advance_ns(190_000_000);
    s.on_tokens("r", 19);
    let summary = s.on_complete("r", None).unwrap();
    assert_eq!((summary.target.as_str(), summary.predicted), (other, None));
    for e in ["e1", "e2"] {
        assert_eq!(s.latency_model().samples(uid(e)), (0, 0), "{e}");
        assert_eq!(s.latency_model().dispatched_on(uid(e)).0, 0, "{e}");
    }
}

/// Under P/D the first token is made on the prefill endpoint: a streamed
/// request's TTFT is learnt there (as llm-d trains it), its TPOT on the
/// decode endpoint, and the summary's predicted TTFT is the prefill
/// endpoint's.
#[test]
fn pd_requests_teach_ttft_to_the_prefill_endpoint() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:
- type: predicted-latency-producer
  parameters: {streamingMode: true}
- type: decode-filter
- type: prefill-filter
- type: always-disagg-pd-decider
- type: disagg-profile-handler
  parameters:
    deciders: {prefill: always-disagg-pd-decider}
- type: max-score-picker
schedulingProfiles:
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: max-score-picker
";
    let (s, clock) = sched(yaml);
    s.add_endpoint(ep("d1", metrics(0, 0, 0.1)).with_label("llm-d.ai/role", "decode"))
        .unwrap();
    s.add_endpoint(ep("p2", metrics(0, 0, 0.1)).with_label("llm-d.ai/role", "prefill"))
        .unwrap();
    let uid = |n: &str| s.endpoint_state(n).unwrap().uid();
    let d = s
        .pick(&Request::with_tokens("r", "m", tokens(256, 1)))
        .unwrap();
    assert_eq!(d.targets[0].name, "d1");
    assert_eq!(
        d.prefill_target.as_ref().map(|t| t.name.as_str()),
        Some("p2")
    );
    clock.advance_ns(40_000_000);
    assert!(s.on_first_token("r"));
    clock.advance_ns(10_000_000 * 9);
    s.on_tokens("r", 9);
    let sum = s
        .on_complete_with_usage(
            "r",
            Usage {
                output_tokens: Some(10),
                ..Usage::default()
            },
        )
        .unwrap();
    // (TTFT samples, TPOT samples) per endpoint model.
    assert_eq!(s.latency_model().samples(uid("p2")), (1, 0));
    assert_eq!(s.latency_model().samples(uid("d1")), (0, 1));
    assert!(sum.predicted.is_some());
}

/// A host predictor's TTFT that is NaN, infinite or negative is no
/// prediction: that endpoint is predicted by the scheduler's own model
/// (a NaN would read as a positive headroom to the latency scorer and a
/// negative one to the tier filter); a non-finite TPOT is an unknown one.
struct Broken;

impl llmd_sched::framework::LatencyPredictor for Broken {
    fn predict(
        &self,
        ctx: &llmd_sched::framework::CycleContext<'_>,
        ep: llmd_sched::framework::EndpointIndex,
    ) -> Option<llmd_sched::framework::LatencyPrediction> {
        let (ttft_ms, tpot_ms) = match ctx.endpoint(ep).name() {
            "e1" => (f64::NAN, Some(10.0)),
            _ => (50.0, Some(f64::INFINITY)),
        };
        Some(llmd_sched::framework::LatencyPrediction { ttft_ms, tpot_ms })
    }
}

#[test]
fn a_host_prediction_that_is_not_a_number_is_no_prediction() {
    let (s, _clock) = fleet();
    let s = s.with_latency_predictor(std::sync::Arc::new(Broken));
    let mut r = Request::with_tokens("nan", "m", tokens(256, 5));
    r.slo.ttft_ms = Some(200.0);
    r.slo.tpot_ms = Some(50.0);
    let d = s.pick(&r).unwrap();
    let p = &d.explanation.predicted_latency;
    assert_eq!(p.len(), 2);
    for x in p {
        let pred = x.info.prediction.expect("a prediction");
        assert!(pred.ttft_ms.is_finite(), "{x:?}");
        if &*x.endpoint == "e1" {
            assert_ne!(x.info.source, Some(PredictionSource::Host), "{x:?}");
        } else {
            assert_eq!(x.info.source, Some(PredictionSource::Host), "{x:?}");
            assert_eq!(pred.ttft_ms, 50.0);
            assert_eq!(pred.tpot_ms, None, "{x:?}");
        }
    }
}
