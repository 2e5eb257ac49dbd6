//! Every request completes or fails with a reason; block accounting holds
//! after every step; the index fed only by published event bytes equals
//! every worker's cache at the end.

mod common;

use llmd_sim::engine::RunOutput;
use llmd_sim::request::Outcome;

fn assert_conserved(out: &RunOutput, expected: usize) {
    assert_eq!(
        out.records.len(),
        expected,
        "{}: every request has a record",
        out.policy
    );
    for r in &out.records {
        match &r.outcome {
            Outcome::Completed => {
                assert!(
                    r.first_token.is_some() && r.finished.is_some(),
                    "request {} completed without times",
                    r.id
                );
                assert!(r.finished >= r.first_token && r.first_token >= Some(r.arrival));
            }
            Outcome::Failed(reason) => assert!(
                !reason.is_empty(),
                "request {} failed without a reason",
                r.id
            ),
            Outcome::Rejected(reason) => assert!(
                !reason.is_empty() && r.priority < 0 && r.worker.is_none(),
                "request {} (priority {}) rejected without a reason or after placement",
                r.id,
                r.priority
            ),
        }
    }
    assert!(
        out.invariant_violations.is_empty(),
        "{:?}",
        out.invariant_violations
    );
    assert!(
        out.index_mismatches.is_empty(),
        "{:?}",
        out.index_mismatches
    );
}

#[test]
fn aggregated_fleet_under_pressure() {
    // Small caches and a high rate force evictions and preemptions.
    let mut sc = common::shared_prefix("  max_num_seqs: 64", "  workers: 3", 200, 100.0);
    sc.engine.kv_tokens = 6000;
    sc.workload
        .shared_prefix
        .as_mut()
        .expect("shared prefix")
        .output_len = 400;
    let out = common::run_checked(&sc, "precise-prefix");
    assert_conserved(&out, 200);
    assert!(out.records.iter().all(|r| r.outcome == Outcome::Completed));
    assert!(out.event_batches > 0, "workers published events");
    assert!(
        out.records.iter().any(|r| r.preemptions > 0),
        "the scenario is meant to preempt"
    );
}

#[test]
fn cpu_tier_events_reconstruct_both_tiers() {
    let sc = common::shared_prefix("  cpu_kv_tokens: 40000", "  workers: 2", 150, 40.0);
    let out = common::run_checked(&sc, "random");
    assert_conserved(&out, 150);
}

#[test]
fn prefill_decode_disaggregation() {
    let sc = common::shared_prefix("", "  workers: 0\n  prefill: 2\n  decode: 2", 120, 20.0);
    let out = common::run_checked(&sc, "round-robin");
    assert_conserved(&out, 120);
    assert!(out
        .records
        .iter()
        .all(|r| r.prefill_worker.is_some_and(|p| p < 2)));
    assert!(out.records.iter().all(|r| r.worker.is_some_and(|d| d >= 2)));
    assert!(out.records.iter().all(|r| r.outcome == Outcome::Completed));
}

#[test]
fn oversized_prompts_fail_with_a_reason() {
    let mut sc = common::shared_prefix("", "  workers: 2", 20, 5.0);
    sc.engine.kv_tokens = 1024;
    let out = common::run_checked(&sc, "random");
    assert_conserved(&out, 20);
    for r in &out.records {
        match &r.outcome {
            Outcome::Failed(why) => assert!(why.contains("KV blocks"), "{why}"),
            Outcome::Completed => panic!("a 1720-token prompt cannot fit 1024 tokens"),
            Outcome::Rejected(why) => panic!("nothing is sheddable here, yet: {why}"),
        }
    }
}

/// An overloaded fleet whose clients give up: requests fail with the
/// timeout as their reason, the engines abort them (waiting, running, or in
/// a step in flight) and give their blocks back, and the event-fed index
/// still equals every cache.
fn timeouts_under(fleet: &str, policy: &str) {
    let mut sc = common::shared_prefix("  max_num_seqs: 32", fleet, 300, 400.0);
    sc.engine.kv_tokens = 8000;
    sc.client.timeout_s = Some(3.0);
    let out = common::run_checked(&sc, policy);
    assert_conserved(&out, 300);
    let timed_out: Vec<_> = out
        .records
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Failed(w) if w.contains("client timeout")))
        .collect();
    assert!(
        timed_out.len() > 30,
        "{policy}: the scenario is meant to time out ({} did)",
        timed_out.len()
    );
    // What streamed before the timeout is recorded, never past the limit.
    assert!(
        timed_out
            .iter()
            .any(|r| r.first_token.is_some() && r.output_tokens > 1),
        "{policy}: some timed-out requests had streamed tokens"
    );
    for r in &timed_out {
        assert_eq!(
            r.first_token.is_some(),
            r.output_tokens > 0,
            "request {}",
            r.id
        );
        assert!(r.output_tokens <= 40, "request {}", r.id);
        let end = r.finished.expect("a timed-out request has an end");
        assert!(
            (end - r.arrival - 3.0).abs() < 1e-9,
            "request {} ended {} s after arrival",
            r.id,
            end - r.arrival
        );
    }
    assert!(
        out.records.iter().any(|r| r.outcome == Outcome::Completed),
        "{policy}: some requests finish in time"
    );
    let aborted: f64 = out
        .metrics
        .iter()
        .flat_map(|page| page.lines())
        .filter(|l| l.starts_with("vllm:request_success_total") && l.contains("\"abort\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // Requests still waiting for a KV transfer (P/D) are dropped without an
    // engine abort; every other timed-out request was aborted by its engine(s).
    assert!(
        aborted >= timed_out.len() as f64 * 0.5,
        "{policy}: engines aborted {aborted} of {} timed-out requests",
        timed_out.len()
    );
}

#[test]
fn client_timeouts_abort_requests() {
    timeouts_under("  workers: 3", "precise-prefix");
}

#[test]
fn client_timeouts_abort_disaggregated_requests() {
    timeouts_under("  workers: 0\n  prefill: 2\n  decode: 2", "round-robin");
}

/// A P/D request preempted on its decode worker lost the KV its prefill
/// worker sent; re-admitted, it recomputes its prompt there (as vLLM does
/// once the connector's transfer was consumed), so that compute is charged:
/// the decode worker's `vllm:prompt_tokens_total` grows past the one token
/// per request that a transferred prompt costs it.
#[test]
fn a_decode_side_preemption_recomputes_the_prompt() {
    let mut sc = common::shared_prefix(
        "  max_num_seqs: 64",
        "  workers: 0\n  prefill: 1\n  decode: 1",
        120,
        100.0,
    );
    sc.engine.kv_tokens = 8000;
    sc.workload
        .shared_prefix
        .as_mut()
        .expect("shared prefix")
        .output_len = 400;
    let out = common::run_checked(&sc, "round-robin");
    assert_conserved(&out, 120);
    let preempted = out.records.iter().filter(|r| r.preemptions > 0).count();
    assert!(preempted > 0, "the scenario is meant to preempt on decode");
    let decode = out.worker_names.len() - 1;
    let prompt_tokens: u64 = out.metrics[decode]
        .lines()
        .find(|l| l.starts_with("vllm:prompt_tokens_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("the counter") as u64;
    let served = out
        .records
        .iter()
        .filter(|r| r.worker == Some(decode))
        .count() as u64;
    assert!(
        prompt_tokens > served + 100,
        "decode worker computed {prompt_tokens} prompt tokens for {served} requests, {preempted} preempted"
    );
}

/// Drained ladder stages (inference-perf's load generator): each stage sends
/// exactly ⌊rate × duration⌋ requests, and the next stage's first request
/// comes `stage_gap_s` after the last request of the one before ended, so
/// an overloaded stage leaves no backlog to the next. Without draining the
/// same ladder overlaps its stages.
#[test]
fn drained_stages_send_their_count_and_do_not_overlap() {
    use llmd_sim::workload::{Arrivals, Stage};
    let mut sc = common::shared_prefix("  max_num_seqs: 16", "  workers: 2", 1, 1.0);
    sc.workload.max_requests = None;
    sc.engine.kv_tokens = 8000;
    let stage = |rate: f64, duration_s: f64, warmup: bool| Stage {
        rate,
        duration_s,
        warmup,
    };
    sc.workload.arrivals = Arrivals {
        drain_stages: true,
        stage_gap_s: 2.0,
        // An overloading warm-up, a stage of no request, a light stage.
        ..Arrivals::ladder(vec![
            stage(200.0, 0.5, true),
            stage(0.5, 1.0, false),
            stage(20.0, 1.0, false),
        ])
    };
    let drained_start = |out: &RunOutput| {
        let of = |k: u32| -> Vec<_> { out.records.iter().filter(|r| r.stage == Some(k)).collect() };
        let (first, empty, last) = (of(0), of(1), of(2));
        assert_eq!((first.len(), empty.len(), last.len()), (100, 0, 20));
        let drained = first
            .iter()
            .map(|r| r.finished.expect("ended"))
            .fold(0.0, f64::max);
        let start = last.iter().map(|r| r.arrival).fold(f64::INFINITY, f64::min);
        (drained, start)
    };
    let out = common::run_checked(&sc, "precise-prefix");
    assert_conserved(&out, 120);
    let (drained, start) = drained_start(&out);
    // Two stage boundaries (the empty stage's included), 2 s each, then the
    // first gap of a 20/s stage (over a second: e^-20).
    assert!(
        drained > 0.5 && start >= drained + 4.0 && start < drained + 5.0,
        "stage 2 starts at {start}, stage 0 drained at {drained}"
    );
    // Requests the client gives up on end their stage too.
    let mut timing_out = sc.clone();
    timing_out.client.timeout_s = Some(1.0);
    let out = common::run_checked(&timing_out, "precise-prefix");
    assert_conserved(&out, 120);
    assert!(out
        .records
        .iter()
        .any(|r| matches!(&r.outcome, Outcome::Failed(w) if w.contains("client timeout"))));
    let (drained, start) = drained_start(&out);
    assert!(
        start >= drained + 4.0 && start < drained + 5.0,
        "{start} {drained}"
    );
    // The same ladder on the clock: stage 2 starts while stage 0 still runs.
    sc.workload.arrivals.drain_stages = false;
    let out = common::run_checked(&sc, "precise-prefix");
    let first_end = out
        .records
        .iter()
        .filter(|r| r.stage == Some(0))
        .map(|r| r.finished.expect("ended"))
        .fold(0.0, f64::max);
    let last_start = out
        .records
        .iter()
        .filter(|r| r.stage == Some(2))
        .map(|r| r.arrival)
        .fold(f64::INFINITY, f64::min);
    assert!(last_start < first_end, "{last_start} vs {first_end}");
}

/// A client cap (inference-perf's workers × their concurrency): never more
/// requests in flight than the cap; the others are sent as one ends, and
/// their TTFT runs from that send.
#[test]
fn the_clients_cap_bounds_requests_in_flight() {
    let mut sc = common::shared_prefix("  max_num_seqs: 64", "  workers: 2", 150, 400.0);
    sc.client.max_in_flight = Some(6);
    let out = common::run_checked(&sc, "random");
    assert_conserved(&out, 150);
    // Sweep sends and ends in time order (an end before a send at a tie:
    // the send waited for it).
    let mut edges: Vec<(f64, i32)> = out
        .records
        .iter()
        .flat_map(|r| [(r.arrival, 1), (r.finished.expect("ended"), -1)])
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut live = 0;
    let mut most = 0;
    for (_, d) in edges {
        live += d;
        most = most.max(live);
    }
    assert_eq!(most, 6, "at most the cap in flight, and the cap reached");
    // Sent one by one as others end: far later than 400/s would send them.
    let last = out.records.iter().map(|r| r.arrival).fold(0.0, f64::max);
    assert!(last > 1.0, "last send at {last}");
}
