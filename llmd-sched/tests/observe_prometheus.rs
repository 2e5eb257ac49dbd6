//! End to end against a real Prometheus: `promtool check metrics` on the
//! exposition, then a Prometheus on loopback scrapes the metrics of a
//! scripted workload and every headline and dashboard query must return the
//! expected values. Needs the `prometheus` and `promtool` binaries (set
//! `PROMETHEUS` / `PROMTOOL` to override); `scripts/test-prom.sh` installs
//! them and runs these ignored tests.

mod observe_support;

use llmd_sched::observe::{Metrics, MetricsServer, Sample};
use observe_support::promql::{self, Env, Labels, Vector};
use observe_support::{config, end_of, run_phase};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bin(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmd-observe-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

#[test]
#[ignore = "needs promtool; run by scripts/test-prom.sh"]
fn promtool_accepts_the_exposition() {
    let m = Arc::new(Metrics::new(config()).unwrap());
    let (_s, _) = run_phase(&m, 0);
    let text = m.render(end_of(0));
    let mut child = Command::new(bin("PROMTOOL", "promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed: {said}");
    assert!(said.trim().is_empty(), "promtool lint findings:\n{said}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Evaluation time of every query once set, so that all rates share
    /// one range.
    at: Option<f64>,
}

impl Prometheus {
    fn start(target: u16) -> Prometheus {
        let dir = scratch("prom");
        let port = free_port();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: llmd\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(bin("PROMETHEUS", "prometheus"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run prometheus");
        let p = Prometheus {
            child,
            port,
            dir,
            at: None,
        };
        wait_for("prometheus ready", || {
            http_get(p.port, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        p
    }

    fn query(&self, q: &str) -> Vector {
        let at = self.at.map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let path = format!("/api/v1/query?query={}{at}", encode(q));
        let (status, body) = http_get(self.port, &path).expect("query prometheus");
        assert_eq!(status, 200, "{q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resultType"], "vector", "{q}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let labels: Labels = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| !["job", "instance"].contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                let value = match r["value"][1].as_str().unwrap() {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    s => s.parse().unwrap(),
                };
                (labels, value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else if let Ok(log) = std::fs::read_to_string(self.dir.join("prometheus.log")) {
            eprintln!("prometheus log:\n{log}");
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 + 1e-6 * a.abs().max(b.abs())
}

fn assert_same(q: &str, got: &Vector, want: &Vector) {
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    assert_eq!(gk, wk, "label sets of {q}");
    for (l, w) in want {
        assert!(
            close(got[l], *w),
            "{q} {l:?}: prometheus {} expected {w}",
            got[l]
        );
    }
    assert!(!want.is_empty(), "{q} returned no data");
}

fn sum(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

#[test]
#[ignore = "needs prometheus; run by scripts/test-prom.sh"]
fn prometheus_scrapes_and_every_query_matches() {
    let m = Arc::new(Metrics::new(config()).unwrap());
    let (_phase0, _) = run_phase(&m, 0);
    let now_ms = Arc::new(AtomicU64::new(end_of(0).as_millis() as u64));
    let (m2, n2) = (m.clone(), now_ms.clone());
    let server = MetricsServer::start("127.0.0.1:0", move || {
        m2.render(Duration::from_millis(n2.load(Ordering::Acquire)))
    })
    .unwrap();
    let mut prom = Prometheus::start(server.local_addr().port());

    // Two scrapes see phase 0 only; then phase 1 repeats it, so every series
    // starts the range at the value it then grows by, and rate() scales all
    // series alike.
    wait_for("two scrapes", || server.scrapes() >= 2);
    let (_phase1, raw) = run_phase(&m, 1);
    assert!(raw.disaggregated > 0 && raw.disaggregated < 12, "a P/D mix");
    now_ms.store(end_of(1).as_millis() as u64, Ordering::Release);
    let seen = server.scrapes();
    wait_for("three more scrapes", || server.scrapes() >= seen + 3);
    let now = m.samples(end_of(1));
    let total = sum(&now, "llmd_router_decisions_total");
    wait_for("prometheus to ingest the last scrape", || {
        prom.query("sum(llmd_router_decisions_total)")
            .values()
            .next()
            .is_some_and(|v| *v == total)
    });

    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    prom.at = Some(unix.as_secs_f64());

    // What one phase adds, measured on a fresh instance.
    let fresh = Arc::new(Metrics::new(config()).unwrap());
    let (_fresh_sched, _) = run_phase(&fresh, 1);
    let delta = fresh.samples(end_of(1));
    let requests = sum(&delta, "llmd_inference_requests_total");
    let rate = prom.query("sum(rate(llmd_inference_requests_total[5m]))");
    let scale = rate.values().next().copied().expect("request rate") / requests;
    assert!(scale > 0.0);
    let env = Env {
        delta: &delta,
        now: &now,
        scale,
    };

    // The four headline queries, verbatim, against values computed from the
    // workload's raw numbers.
    let cfg = config();
    let ttft_bounds = cfg.ttft_buckets.with_edges([0.3]);
    let q1 = "histogram_quantile(0.95, sum(rate(llmd_inference_ttft_bucket[5m])) by (le))";
    let want = promql::histogram_quantile(0.95, &bucketize(&raw.ttft, ttft_bounds.bounds()));
    assert_same(q1, &prom.query(q1), &want);

    let q2 = "rate(llmd_inference_output_tokens_sum[5m]) / rate(llmd_inference_requests_total[5m])";
    let got = prom.query(q2);
    let ok_zero: Vector = got
        .iter()
        .filter(|(l, _)| !raw.output_tokens.contains_key(&to_vec(l)))
        .map(|(l, v)| (l.clone(), *v))
        .collect();
    for (l, v) in &ok_zero {
        assert!(
            v.is_nan(),
            "{q2}: series {l:?} had no requests yet returned {v}"
        );
    }
    let want: Vector = raw
        .output_tokens
        .iter()
        .map(|(l, (s, c))| (l.iter().cloned().collect(), s / c))
        .collect();
    let got_nonzero: Vector = got
        .into_iter()
        .filter(|(l, _)| !ok_zero.contains_key(l))
        .collect();
    assert_same(q2, &got_nonzero, &want);

    let q3 = "sum(rate(llmd_kvcache_hits_total[5m])) by (pool) / sum(rate(llmd_kvcache_requests_total[5m])) by (pool)";
    let want: Vector = raw
        .kv_hits
        .iter()
        .map(|(p, (h, n))| {
            (
                [("pool".to_owned(), p.clone())].into_iter().collect(),
                h / n,
            )
        })
        .collect();
    let got = prom.query(q3);
    // Pools with series but no completed requests (the rejections' default
    // pool) divide 0 by 0.
    for (l, v) in got.iter().filter(|(l, _)| !want.contains_key(*l)) {
        assert!(v.is_nan(), "{q3}: {l:?} had no requests yet returned {v}");
    }
    let got: Vector = got
        .into_iter()
        .filter(|(l, _)| want.contains_key(l))
        .collect();
    assert_same(q3, &got, &want);

    let q4 = "histogram_quantile(0.90, sum(rate(llmd_router_routing_score_bucket[5m])) by (le))";
    let want = promql::histogram_quantile(
        0.90,
        &bucketize(&raw.routing_scores, cfg.weighted_score_buckets.bounds()),
    );
    assert_same(q4, &prom.query(q4), &want);

    // Every dashboard query.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana/llmd-dashboard.json"
        ))
        .expect("dashboard json"),
    )
    .unwrap();
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let q = t["expr"].as_str().unwrap();
            let want = promql::eval(q, &env);
            assert_same(q, &prom.query(q), &want);
            // Empty answers would pass trivially; require at least one real number.
            assert!(
                want.values().any(|v| v.is_finite()),
                "{q}: no finite value expected"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} dashboard queries");
    drop(prom);
}

fn to_vec(l: &Labels) -> Vec<(String, String)> {
    ["model", "pool", "profile", "endpoint", "outcome"]
        .iter()
        .filter_map(|k| l.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Cumulative `le` buckets of `values`, as Prometheus would see them.
fn bucketize(values: &[f64], bounds: &[f64]) -> Vector {
    let mut v = Vector::new();
    let fmt = |b: f64| {
        if b.is_infinite() {
            "+Inf".to_owned()
        } else {
            format!("{b}")
        }
    };
    for b in bounds.iter().copied().chain([f64::INFINITY]) {
        let n = values.iter().filter(|x| **x <= b).count() as f64;
        v.insert([("le".to_owned(), fmt(b))].into_iter().collect(), n);
    }
    v
}
