//! Scenario mistakes are errors that name the field, never a run that
//! hangs, aborts the process, or prints figures skewed by them.

mod common;

use std::path::Path;

use llmd_sim::calibration::{Calibration, EMBEDDED_H100};
use llmd_sim::engine::{self, RunOptions};
use llmd_sim::policy;
use llmd_sim::request::Outcome;
use llmd_sim::scenario::{PolicySpec, Scenario};

const BASE: &str = "name: t\nseed: 1\nmodel: llama-3.1-8b-tp1\nengine:\n  kv_tokens: 24000\n  prefix_caching_hash_algo: fast\nslo:\n  ttft_s: 1.0\n  tpot_s: 0.1\n";

/// A small valid workload, for scenarios that are about something else.
const WORKLOAD: &str = "workload:\n  max_requests: 2\n  shared_prefix: {groups: 1, system_prompt_len: 10, users_per_group: 1, question_len: 10, output_len: 1}\n";

fn parse(extra: &str) -> Result<Scenario, String> {
    let workload = if extra.contains("workload:") {
        ""
    } else {
        WORKLOAD
    };
    Scenario::parse(&format!("{BASE}{extra}{workload}"), Path::new(".")).map_err(|e| e.to_string())
}

/// The error of running `workload` (YAML under `workload:`), or the run.
fn run(workload: &str) -> Result<engine::RunOutput, String> {
    let sc = parse(&format!("fleet:\n  workers: 2\nworkload:\n{workload}"))?;
    let router =
        policy::build(&PolicySpec::Builtin("random".into()), &sc).map_err(|e| e.to_string())?;
    engine::run(&sc, router, RunOptions::default()).map_err(|e| e.to_string())
}

/// The base scenario with `engine` replacing its `kv_tokens` line and a
/// fleet of `workers`.
fn with_engine(engine: &str, workers: usize) -> Result<Scenario, String> {
    let text = BASE
        .replace("kv_tokens: 24000", engine)
        .replace("seed: 1", &format!("seed: 1\nfleet:\n  workers: {workers}"));
    Scenario::parse(&format!("{text}{WORKLOAD}"), Path::new(".")).map_err(|e| e.to_string())
}

fn refused(r: Result<impl std::fmt::Debug, String>, needle: &str) {
    match r {
        Ok(v) => panic!("accepted, expected an error naming {needle}: {v:?}"),
        Err(e) => assert!(e.contains(needle), "{e}"),
    }
}

#[test]
fn numeric_settings_out_of_range_are_refused() {
    refused(
        parse("fleet:\n  workers: 2\ncost:\n  step_overhead_ms: -50\n"),
        "step_overhead_ms",
    );
    refused(
        parse("fleet:\n  workers: 2\ncost:\n  allreduce_gbps: 0\n"),
        "allreduce_gbps",
    );
    refused(
        parse("fleet:\n  workers: 2\ncost:\n  allreduce_latency_us: .nan\n"),
        "allreduce_latency_us",
    );
    refused(
        parse("fleet:\n  workers: 0\n  prefill: 1\n  decode: 1\n  kv_transfer:\n    latency_ms: .nan\n"),
        "kv_transfer",
    );
    refused(
        parse("fleet:\n  workers: 2\n  scrape_interval_ms: .inf\n"),
        "scrape_interval_ms",
    );
    // Counts that would wrap to a small fleet in 32 bits.
    refused(
        parse("fleet:\n  workers: 4294967295\n  prefill: 1\n  decode: 1\n"),
        "at most 64 workers",
    );
    // Caches allocated up front: a fleet-wide bound, not an abort.
    refused(with_engine("kv_tokens: 2000000000", 64), "blocks");
    refused(
        with_engine("kv_tokens: 18446744073709551615\n  cpu_kv_tokens: 1", 1),
        "blocks",
    );
    refused(
        parse("fleet:\n  workers: 2\nworkload:\n  arrivals:\n    ladder:\n    - {rate: 1, duration_s: .inf}\n  shared_prefix: {groups: 1, system_prompt_len: 10, users_per_group: 1, question_len: 10, output_len: 1}\n")
            .and_then(|sc| {
                let r = policy::build(&PolicySpec::Builtin("random".into()), &sc).map_err(|e| e.to_string())?;
                engine::run(&sc, r, RunOptions::default()).map_err(|e| e.to_string())
            }),
        "duration_s",
    );
}

#[test]
fn empty_or_huge_prompts_and_endless_runs_are_refused() {
    let shared = |sys: u32, q: u32| {
        format!("  max_requests: 3\n  shared_prefix: {{groups: 1, system_prompt_len: {sys}, users_per_group: 1, question_len: {q}, output_len: 2}}\n")
    };
    refused(run(&shared(0, 0)), "shared_prefix prompt");
    refused(run(&shared(4_000_000_000, 0)), "at most");
    refused(
        run("  max_requests: 3\n  lora: {adapters: 2, system_prompt_len: 0, question_len: 0, output_len: 2}\n"),
        "lora prompt",
    );
    refused(
        run("  max_requests: 3\n  chat: {turns: 2, system_prompt_len: 0, user_len: 0, output_len: 2, think_time_s: 1}\n"),
        "chat first prompt",
    );
    refused(
        run("  max_requests: 3\n  chat: {turns: 4000000, system_prompt_len: 10, user_len: 10, output_len: 10, think_time_s: 1}\n"),
        "chat context",
    );
    refused(
        run("  max_requests: 3\n  doc_qa: {documents: 2, document_len: 4294967295, question_len: 4294967295, output_len: 2}\n"),
        "doc_qa prompt",
    );
    // A plain rate with no request bound would run forever.
    refused(
        run("  arrivals: {rate: 5}\n  shared_prefix: {groups: 1, system_prompt_len: 10, users_per_group: 1, question_len: 10, output_len: 1}\n"),
        "max_requests",
    );
    // A trace line with an empty prompt names its line.
    let dir = std::env::temp_dir().join(format!("llmd-bad-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    std::fs::write(&trace, "{\"arrival\": 0.0, \"prompt_len\": 8, \"output_len\": 2}\n{\"arrival\": 0.1, \"prompt_tokens\": [], \"output_len\": 2}\n").unwrap();
    refused(
        run(&format!("  trace: {{path: {}}}\n", trace.display())),
        "t.jsonl:2: the prompt must be > 0",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Client timeouts of requests that finished long before are no events:
/// the simulated span ends with the last request, not `timeout_s` later.
#[test]
fn stale_client_timeouts_do_not_stretch_the_run() {
    let mut sc = common::shared_prefix("", "  workers: 2", 20, 20.0);
    sc.client.timeout_s = Some(300.0);
    let out = common::run_checked(&sc, "random");
    assert!(out.records.iter().all(|r| r.outcome == Outcome::Completed));
    let last = out
        .records
        .iter()
        .filter_map(|r| r.finished)
        .fold(0.0, f64::max);
    assert!(out.sim_seconds < 60.0, "{} s simulated", out.sim_seconds);
    assert!(
        (out.sim_seconds - last).abs() < 1.0,
        "{} vs {last}",
        out.sim_seconds
    );
}

/// A calibration table that interpolation cannot use is an error at load,
/// not a panic (empty table) or NaN step times (a zero size) mid-run.
#[test]
fn unusable_calibration_tables_are_refused() {
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED_H100).unwrap();
        f(&mut v["models"]["llama-3.1-8b-tp1"]);
        Calibration::from_json(&v.to_string())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(with(&|_| {}).is_ok());
    refused(
        with(&|m| m["linear_ms"]["lm_head"] = serde_json::json!({})),
        "lm_head has no points",
    );
    refused(
        with(&|m| m["elementwise_ms"] = serde_json::json!({})),
        "elementwise has no points",
    );
    refused(
        with(&|m| m["prefill_attn_ms"]["0"] = serde_json::json!(0.1)),
        "prefill_attn point 0",
    );
    refused(
        with(&|m| m["decode_attn_ms"]["1x512"] = serde_json::json!(-1.0)),
        "decode_attn point",
    );
}

/// Values that would make a run hang or abort: an infinite trace time
/// scale, rates or think times whose draws overflow to an infinite time,
/// Zipf draws over billions of items or with a NaN exponent, and a CPU
/// tier whose token slots would take hundreds of GiB. A far but finite
/// arrival runs, in one scrape per idle gap rather than one per interval.
#[test]
fn values_that_would_hang_or_abort_a_run_are_refused() {
    let shared = "  shared_prefix: {groups: 1, system_prompt_len: 10, users_per_group: 1, question_len: 10, output_len: 1}\n";
    refused(
        run(&format!(
            "  max_requests: 2\n  arrivals: {{rate: 5e-324}}\n{shared}"
        )),
        "arrivals.rate",
    );
    refused(
        run(&format!(
            "  arrivals:\n    ladder:\n    - {{rate: 1e-300, duration_s: 10}}\n{shared}"
        )),
        "ladder stage",
    );
    refused(
        run("  max_requests: 3\n  chat: {turns: 2, system_prompt_len: 10, user_len: 10, output_len: 2, think_time_s: 1e300}\n"),
        "think_time_s",
    );
    refused(
        run("  max_requests: 3\n  lora: {adapters: 4294967295, system_prompt_len: 10, question_len: 10, output_len: 2}\n"),
        "lora.adapters must be at most",
    );
    refused(
        run("  max_requests: 3\n  doc_qa: {documents: 20, document_len: 10, question_len: 10, output_len: 2, skew: .nan}\n"),
        "doc_qa.document skew",
    );
    refused(
        with_engine(
            "block_size: 1048576\n  kv_tokens: 1048576\n  cpu_kv_tokens: 68719476736",
            4,
        ),
        "token slots",
    );
    let dir = std::env::temp_dir().join(format!("llmd-far-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    std::fs::write(&trace, "{\"arrival\": 0.0, \"prompt_len\": 8, \"output_len\": 2}\n{\"arrival\": 1e300, \"prompt_len\": 8, \"output_len\": 2}\n").unwrap();
    refused(
        run(&format!(
            "  trace: {{path: {}, time_scale: .inf}}\n",
            trace.display()
        )),
        "time_scale",
    );
    refused(
        run(&format!(
            "  trace: {{path: {}, time_scale: 1e10}}\n",
            trace.display()
        )),
        "not a finite time",
    );
    // 1e300 s away: without the idle jump, 2e301 scrapes.
    let out = run(&format!("  trace: {{path: {}}}\n", trace.display())).expect("runs");
    assert_eq!(out.records.len(), 2);
    assert!(out.records.iter().all(|r| r.outcome == Outcome::Completed));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Settings that made a run never end or grow without bound are refused;
/// a request arriving far from time 0 (where the float clock no longer
/// resolves a scrape interval) runs to its end.
#[test]
fn runs_that_would_never_end_or_outgrow_memory_are_refused() {
    refused(
        parse("fleet:\n  workers: 2\n  scrape_interval_ms: 1e-300\n"),
        "scrape_interval_ms",
    );
    refused(
        parse("fleet:\n  workers: 2\n  kv_transfer: {bandwidth_gbps: 1e-7}\n"),
        "bandwidth_gbps",
    );
    refused(
        parse("fleet:\n  workers: 2\n  kv_transfer: {latency_ms: 1e12}\n"),
        "latency_ms",
    );
    refused(
        run("  max_requests: 1000000000000\n  shared_prefix: {groups: 1, system_prompt_len: 2, users_per_group: 1, question_len: 2, output_len: 1}\n"),
        "max_requests is at most",
    );
    refused(
        run("  arrivals: {ladder: [{rate: 1e9, duration_s: 1e9}]}\n  shared_prefix: {groups: 1, system_prompt_len: 2, users_per_group: 1, question_len: 2, output_len: 1}\n"),
        "the ladder would send",
    );
    refused(
        parse("client:\n  max_in_flight: 0\nfleet:\n  workers: 1\n"),
        "max_in_flight",
    );
    // Drained stages need a ladder of independent requests, and a sane gap.
    let shared = "  shared_prefix: {groups: 1, system_prompt_len: 2, users_per_group: 1, question_len: 2, output_len: 1}\n";
    refused(
        run(&format!(
            "  max_requests: 2\n  arrivals: {{rate: 1, drain_stages: true}}\n{shared}"
        )),
        "drain_stages needs a ladder",
    );
    refused(
        run(&format!("  arrivals: {{ladder: [{{rate: 1, duration_s: 2}}], drain_stages: true, stage_gap_s: -1}}\n{shared}")),
        "stage_gap_s",
    );
    refused(
        run("  arrivals: {ladder: [{rate: 1, duration_s: 2}], drain_stages: true}\n  chat: {turns: 2, system_prompt_len: 4, user_len: 4, output_len: 2, think_time_s: 1}\n"),
        "not to chat sessions",
    );
    if Path::new("/dev/zero").exists() {
        refused(
            Scenario::load(Path::new("/dev/zero")).map_err(|e| e.to_string()),
            "not a regular file",
        );
    }
    let dir = std::env::temp_dir().join(format!("llmd-late-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    std::fs::write(
        &trace,
        "{\"arrival\": 1e15, \"prompt_len\": 8000, \"output_len\": 10}\n",
    )
    .unwrap();
    let out = run(&format!("  trace: {{path: {}}}\n", trace.display())).expect("runs");
    assert_eq!(out.records.len(), 1);
    std::fs::write(
        &trace,
        "{\"arrival\": 0, \"prompt_len\": 8, \"output_len\": 2, \"slo_ttft_ms\": 0}\n",
    )
    .unwrap();
    refused(
        run(&format!("  trace: {{path: {}}}\n", trace.display())),
        "slo_ttft_ms must be a finite number > 0",
    );
    assert_eq!(out.records[0].outcome, Outcome::Completed);
    std::fs::remove_dir_all(&dir).unwrap();
}
