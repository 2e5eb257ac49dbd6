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

/// A policy named twice, a `--policy` naming none, and a file that is no
/// config are errors; the last one's message stays short (the reader quotes
/// what it found).
#[test]
fn simulate_refuses_repeated_or_empty_policy_lists() {
    let (ok, _, err) = llmd(&["simulate", "--requests", "5", "--policy", "random,random"]);
    assert!(!ok && err.contains("'random' is listed twice"), "{err}");
    let (ok, _, err) = llmd(&["simulate", "--requests", "5", "--policy", ",,"]);
    assert!(!ok && err.contains("no policy named"), "{err}");
    let dir = std::env::temp_dir().join(format!("llmd-cli-notconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let f = dir.join("notes.txt");
    std::fs::write(&f, "word ".repeat(10_000)).expect("write");
    let (ok, _, err) = llmd(&[
        "simulate",
        "--requests",
        "5",
        "--policy",
        f.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("cannot decode EndpointPickerConfig"),
        "{err}"
    );
    assert!(err.len() < 1_000, "{} bytes", err.len());
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

/// A running `llmd pods -n 1` (killed on drop) and its pod's `host:port`.
struct Pods(std::process::Child, String);

impl Drop for Pods {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pods() -> Pods {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmd"))
        .args(["pods", "-n", "1", "--model", "m", "--speed", "50"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("llmd pods runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a pod line");
    let addr = line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("http://"))
        .expect("pod url")
        .to_string();
    Pods(child, addr)
}

type Conn = (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>);

fn connect(addr: &str) -> Conn {
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    (s.try_clone().unwrap(), std::io::BufReader::new(s))
}

/// Reads one response with a Content-Length body: (status, body).
fn response(r: &mut std::io::BufReader<std::net::TcpStream>) -> (u16, String) {
    use std::io::{BufRead, Read};
    let mut head = String::new();
    r.read_line(&mut head).expect("status line");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut len, mut chunked) = (0, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        if h.trim().is_empty() {
            break;
        }
        let h = h.to_ascii_lowercase();
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
        chunked |= h.starts_with("transfer-encoding:") && h.contains("chunked");
    }
    if !chunked {
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("body");
        return (status, String::from_utf8_lossy(&body).into_owned());
    }
    // Chunks up to the closing one (a stream cut off fails here).
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).expect("chunk size");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).expect("chunk");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// POSTs `body` to `path` on a kept connection: (status, body).
fn post((w, r): &mut Conn, path: &str, body: &str) -> (u16, String) {
    use std::io::Write;
    write!(
        w,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    response(r)
}

/// `llmd pods` speaks HTTP/1.1 as a client expects: a non-streamed
/// completion keeps the connection for the next request, chunked bodies and
/// `Expect: 100-continue` are served, and ambiguous framings (conflicting
/// lengths, both framings at once) are refused.
#[test]
fn pods_keep_connections_and_refuse_ambiguous_framing() {
    use std::io::Write;
    let fleet = pods();
    let connect = || connect(&fleet.1);
    let mut c = connect();
    let body = r#"{"model":"m","prompt":"w1 w2 w3","max_tokens":2}"#;
    let (status, text) = post(&mut c, "/v1/completions", body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"usage\""), "{text}");
    let (w, r) = &mut c;
    w.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(response(r).0, 200, "the connection was kept");
    // A chunked body (with an extension and a trailer), then the next
    // request on the same connection.
    w.write_all(
        b"POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7;x=1\r\n{\"promp\r\nB\r\nt\":\"w1 w2\"}\r\n0\r\nX-T: 1\r\n\r\n",
    )
    .unwrap();
    let (status, text) = response(r);
    assert!(
        status == 200 && text.contains("\"count\":2"),
        "{status} {text}"
    );
    // Expect: 100-continue: the interim answer comes before the body is sent.
    w.write_all(
        b"POST /tokenize HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 18\r\n\r\n",
    )
    .unwrap();
    let (status, _) = response(r);
    assert_eq!(status, 100, "no 100 Continue");
    w.write_all(br#"{"prompt":"w1 w2"}"#).unwrap();
    let (status, text) = response(r);
    assert!(
        status == 200 && text.contains("\"count\":2"),
        "{status} {text}"
    );
    for bad in [
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        // A size that overflows any sum with the body so far.
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nffffffffffffffff\r\n",
    ] {
        let (mut w, mut r) = connect();
        w.write_all(bad.as_bytes()).unwrap();
        assert_eq!(response(&mut r).0, 400, "{bad:?}");
    }
    // A streamed reply is chunked and ends with its closing chunk, so the
    // connection serves the next request.
    let mut c = connect();
    let (status, text) = post(
        &mut c,
        "/v1/completions",
        r#"{"model":"m","prompt":"w1 w2","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}"#,
    );
    assert_eq!(status, 200);
    assert!(
        text.ends_with("data: [DONE]\n\n") && text.contains("\"usage\""),
        "{text}"
    );
    let (status, _) = post(&mut c, "/v1/completions", body);
    assert_eq!(status, 200, "the connection was kept after the stream");
    // vLLM's /tokenize takes text: token ids are refused, as there.
    let mut c = connect();
    let (status, text) = post(&mut c, "/tokenize", r#"{"prompt":[1,2,3]}"#);
    assert_eq!(status, 400, "{text}");
    let (status, text) = post(&mut c, "/tokenize", r#"{"prompt":"w1 w2"}"#);
    assert!(status == 200 && text.contains("\"count\":2"), "{text}");
}

/// A client that leaves while its non-streamed completion runs has the
/// request aborted, as vLLM aborts it: the pod's running count falls back
/// to 0 long before the request would have finished.
#[test]
fn pods_abort_a_non_streamed_request_whose_client_left() {
    use std::io::Write;
    let fleet = pods();
    let running = || -> f64 {
        let mut c = connect(&fleet.1);
        c.0.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (_, text) = response(&mut c.1);
        text.lines()
            .find(|l| l.starts_with("vllm:num_requests_running"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .expect("num_requests_running")
    };
    let (mut w, r) = connect(&fleet.1);
    let body = r#"{"model":"m","prompt":"w1 w2","max_tokens":90000}"#;
    write!(
        w,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running() < 1.0 {
        assert!(std::time::Instant::now() < deadline, "never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop((w, r));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running() > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after its client left"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `cache_salt` keys a request's blocks apart as vLLM does: the same
/// prompt hits the prefix cache only under the same salt, and a salt that
/// is not a non-empty string is refused.
#[test]
fn pods_key_cached_blocks_by_cache_salt() {
    let fleet = pods();
    let mut c = connect(&fleet.1);
    let words: Vec<String> = (0..96).map(|i| format!("w{i}")).collect();
    let prompt = words.join(" ");
    let mut cached = |salt: &str| -> u64 {
        let body = format!(r#"{{"model":"m","prompt":"{prompt}","max_tokens":1{salt}}}"#);
        let (status, text) = post(&mut c, "/v1/completions", &body);
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .expect("cached_tokens")
    };
    assert_eq!(cached(r#","cache_salt":"a""#), 0, "a first salted request");
    assert!(cached(r#","cache_salt":"a""#) > 0, "the same salt hits");
    assert_eq!(cached(r#","cache_salt":"b""#), 0, "another salt misses");
    assert_eq!(cached(""), 0, "no salt misses the salted blocks");
    assert!(cached(r#","cache_salt":null"#) > 0, "null is no salt");
    // The output limit is checked as vLLM checks it, never clamped.
    for (extra, status) in [
        (r#""max_tokens":0"#, 400),
        (r#""max_tokens":-3"#, 400),
        (r#""max_tokens":1.5"#, 400),
        (r#""max_tokens":200000"#, 400),
        (r#""n":2"#, 400),
        (r#""max_tokens":5000"#, 200),
    ] {
        let body = format!(r#"{{"model":"m","prompt":"w1 w2",{extra}}}"#);
        let (got, text) = post(&mut c, "/v1/completions", &body);
        assert_eq!(got, status, "{extra}: {text}");
        if status == 200 {
            assert!(text.contains(r#""completion_tokens":5000"#), "{text}");
        }
    }
    for bad in [r#""""#, "7", "[]"] {
        let body = format!(r#"{{"model":"m","prompt":"w1 w2","cache_salt":{bad}}}"#);
        let (status, text) = post(&mut c, "/v1/completions", &body);
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("cache_salt"), "{text}");
    }
}

/// Arguments: an option followed by another option has no value, an option
/// given twice is refused, `events decode` reads one file, `--speed`
/// below what the engine clock can run is refused rather than raised, and a
/// replay buffer past a million batches is refused.
#[test]
fn arguments_are_checked_not_guessed() {
    let (ok, _, err) = llmd(&["hash", "--seed", "--seed-unset", "1"]);
    assert!(!ok && err.contains("--seed needs a value"), "{err}");
    let (ok, _, err) = llmd(&["hash", "--seed", "1", "--seed", "2", "1"]);
    assert!(
        !ok && err.contains("--seed is given more than once"),
        "{err}"
    );
    let (ok, _, err) = llmd(&["events", "decode", "a.bin", "b.bin"]);
    assert!(!ok && err.contains("one FILE"), "{err}");
    let (ok, _, err) = llmd(&["pods", "--speed", "0.0001"]);
    assert!(!ok && err.contains("--speed"), "{err}");
    let (ok, _, err) = llmd(&["pods", "--buffer-steps", "1000000000000"]);
    assert!(!ok && err.contains("--buffer-steps: at most"), "{err}");
}

/// A reader that goes away (`| head -1`) ends the tool quietly: status 0,
/// nothing on stderr, where `println!` would have panicked.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{Read, Write};
    // 12,500 blocks: far more output than a pipe holds, so the tool is
    // still writing when the reader leaves.
    let tokens: String = (1..=200_000).map(|i| format!("{i} ")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmd"))
        .arg("hash")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("llmd runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(tokens.as_bytes());
    });
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("output");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("exits");
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

/// A prompt past the context is refused even without `max_tokens`; an
/// absurd `max_tokens` is a 400, not a dead connection thread.
#[test]
fn pods_refuse_prompts_past_the_context_and_absurd_outputs() {
    let fleet = pods();
    let mut c = connect(&fleet.1);
    let long: Vec<String> = (0..140_000).map(|i| (i % 1000).to_string()).collect();
    let body = format!("{{\"model\": \"m\", \"prompt\": [{}]}}", long.join(","));
    let (status, text) = post(&mut c, "/v1/completions", &body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("maximum context length"), "{text}");
    let mut c = connect(&fleet.1);
    let (status, text) = post(
        &mut c,
        "/v1/completions",
        r#"{"model": "m", "prompt": "a", "max_tokens": 18446744073709551615}"#,
    );
    assert_eq!(status, 400, "{text}");
    // The pod still serves.
    let (status, text) = post(
        &mut c,
        "/v1/completions",
        r#"{"model": "m", "prompt": "a", "max_tokens": 2}"#,
    );
    assert_eq!(status, 200, "{text}");
}
