//! The `llmd` binary end to end.

use std::process::Command;

fn llmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llmd"))
        .args(args)
        .output()
        .expect("llmd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn simulate_json_trace_and_metrics() {
    let dir = std::env::temp_dir().join(format!("llmd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let trace = dir.join("t.jsonl");
    let prom = dir.join("m.prom");
    let (ok, stdout, stderr) = llmd(&[
        "simulate",
        "--requests",
        "30",
        "--policy",
        "random,precise-prefix",
        "--json",
        "--trace-out",
        trace.to_str().expect("utf8"),
        "--metrics-out",
        prom.to_str().expect("utf8"),
    ]);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json output");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["policy"], "precise-prefix");
    assert_eq!(results[0]["requests"], 30);
    let lines = std::fs::read_to_string(&trace).expect("trace written");
    assert_eq!(lines.lines().count(), 60);
    let metrics = std::fs::read_to_string(&prom).expect("metrics written");
    assert_eq!(
        metrics
            .matches("# TYPE vllm:num_requests_waiting gauge")
            .count(),
        1
    );
    assert!(metrics.contains("policy=\"precise-prefix\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hash_matches_vllm_and_bad_input_is_an_error() {
    let tokens: Vec<String> = (1..=32).map(|t| t.to_string()).collect();
    let mut args = vec!["hash"];
    args.extend(tokens.iter().map(String::as_str));
    let (ok, stdout, _) = llmd(&args);
    assert!(ok);
    assert!(stdout.starts_with("0\t16300212363532267629\t"), "{stdout}");
    let (ok, _, stderr) = llmd(&["hash", "1", "x"]);
    assert!(!ok);
    assert!(stderr.contains("not a token id"), "{stderr}");
    let (ok, _, stderr) = llmd(&["simulate", "--policy", "no-such-policy"]);
    assert!(!ok);
    assert!(stderr.contains("unknown built-in policy"), "{stderr}");
}

#[test]
fn events_decode_reads_wire_bytes() {
    let vectors = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/vllm-compat/vectors.json"
    ))
    .expect("vectors");
    let v: serde_json::Value = serde_json::from_str(&vectors).expect("json");
    let case = v["event_cases"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["expected_error"] == false))
        .expect("a valid event case");
    let hex = case["payload_hex"].as_str().expect("hex");
    let path = std::env::temp_dir().join(format!("llmd-ev-{}.hex", std::process::id()));
    std::fs::write(&path, hex).expect("write");
    let (ok, stdout, stderr) = llmd(&["events", "decode", "--hex", path.to_str().expect("utf8")]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert!(doc["events"].as_array().is_some_and(|e| !e.is_empty()));
    let (ok, _, _) = llmd(&["events", "decode", "--hex", "/nonexistent"]);
    assert!(!ok);
}

#[test]
fn config_check_prints_the_pipeline_or_the_error() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/llm-d-configs/");
    let (ok, stdout, stderr) = llmd(&[
        "config",
        "check",
        &format!("{dir}02-precise-prefix-kv-events.yaml"),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("scorer  prefix-cache-scorer (prefix-cache-scorer) weight 3"),
        "{stdout}"
    );
    assert!(stdout.contains("picker  max-score-picker"), "{stdout}");
    let (ok, stdout, stderr) = llmd(&[
        "config",
        "check",
        &format!("{dir}17-disaggregatedset-rollout-header-selectors.yaml"),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("screener rollout-screener (disaggregatedset-rollout-screener)"),
        "{stdout}"
    );
    let bad = std::env::temp_dir().join(format!("llmd-bad-{}.yaml", std::process::id()));
    std::fs::write(&bad, "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins: [{type: no-such-plugin}]\n").expect("write");
    let (ok, _, stderr) = llmd(&["config", "check", bad.to_str().expect("utf8")]);
    let _ = std::fs::remove_file(&bad);
    assert!(!ok);
    assert!(stderr.contains("no-such-plugin"), "{stderr}");
}
