//! The OTLP exporter: a sampled decision's spans reach an HTTP endpoint as
//! one protobuf POST continuing the caller's trace; unsampled decisions and
//! what does not fit the queue are counted, never sent. (The payload is
//! decoded with the official OTLP definitions in the Python suite.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use llmd_feed::otlp::{decision_span_data, OtlpExporter, OtlpOptions, SCHEDULING_SPAN};
use llmd_sched::{Endpoint, Request, Scheduler};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn decision(traceparent: &str) -> llmd_sched::Decision {
    let s = Scheduler::from_config_str("").unwrap().with_seed(1);
    s.add_endpoint(Endpoint::new("a", "10.0.0.1:8000")).unwrap();
    let r = Request::with_tokens("r", "", vec![1, 2, 3]).header("traceparent", traceparent);
    s.pick(&r).unwrap()
}

/// A one-shot HTTP server: sends (request head, body) of each POST.
fn receiver() -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let mut r = BufReader::new(c);
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            r.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            let _ = tx.send((head, body));
        }
    });
    (url, rx)
}

#[test]
fn spans_continue_the_callers_trace() {
    let d = decision(TRACEPARENT);
    let spans = decision_span_data(&d, 1_000, 2_000).unwrap();
    let root = &spans[0];
    assert_eq!(root.name, SCHEDULING_SPAN);
    let tc = d.trace.as_ref().unwrap();
    assert_eq!(root.span_id, tc.span_id);
    assert_eq!(root.parent_span_id, Some(tc.parent_span_id));
    let forwarded = d.headers.iter().find(|(k, _)| k == "traceparent").unwrap();
    assert!(forwarded.1.contains(&hex(&root.span_id)));
    for s in &spans[1..] {
        assert!(
            spans.iter().any(|p| Some(p.span_id) == s.parent_span_id),
            "{}",
            s.name
        );
        assert_eq!(
            (s.trace_id, s.start_unix_ns, s.end_unix_ns),
            (tc.trace_id, 1_000, 2_000)
        );
    }
    // Unsampled (flags 00) or without a traceparent: nothing.
    assert!(
        decision("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
            .trace
            .is_some_and(|_| decision_span_data(
                &decision("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
                0,
                0
            )
            .is_none())
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_exporter_posts_protobuf_and_counts_what_it_does_not_send() {
    let (url, rx) = receiver();
    let exp = OtlpExporter::start(OtlpOptions {
        endpoint: url,
        flush_interval: Duration::from_millis(10),
        ..OtlpOptions::default()
    })
    .unwrap();
    let d = decision(TRACEPARENT);
    let n = decision_span_data(&d, 1, 2).unwrap().len();
    assert!(exp.export_decision(&d, 1, 2));
    assert!(!exp.export_decision(
        &decision("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        1,
        2
    ));
    assert!(exp.flush(Duration::from_secs(10)));
    let (head, body) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.starts_with("POST /v1/traces HTTP/1.1"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/x-protobuf"));
    // ExportTraceServiceRequest: field 1 (resource_spans), length-delimited.
    assert_eq!(body[0], 0x0a);
    let st = exp.stats();
    assert_eq!(
        (st.exported_spans, st.unsampled_decisions, st.dropped_spans),
        (n as u64, 1, 0)
    );
    // A queue smaller than one decision: dropped whole, counted.
    let tiny = OtlpExporter::start(OtlpOptions {
        max_queue_spans: 1,
        ..OtlpOptions::default()
    })
    .unwrap();
    assert!(!tiny.export_decision(&d, 1, 2));
    assert_eq!(tiny.stats().dropped_spans, n as u64);
    // Bad options are errors.
    for bad in [
        OtlpOptions {
            sampling_ratio: 2.0,
            ..OtlpOptions::default()
        },
        OtlpOptions {
            endpoint: "https://c:4318/v1/traces".into(),
            ..OtlpOptions::default()
        },
        // A zero interval would spin the export thread; a zero timeout
        // fails every POST; an endless one overflows a deadline.
        OtlpOptions {
            flush_interval: Duration::ZERO,
            ..OtlpOptions::default()
        },
        OtlpOptions {
            timeout: Duration::ZERO,
            ..OtlpOptions::default()
        },
        OtlpOptions {
            timeout: Duration::MAX,
            ..OtlpOptions::default()
        },
    ] {
        let e = OtlpExporter::start(bad).expect_err("refused");
        assert!(matches!(e, llmd_feed::FeedError::Config(_)), "{e}");
    }
}

/// Stopping with a collector that does not answer takes about a POST
/// timeout, not one per queued batch; what was not sent is counted failed.
#[test]
fn a_stop_does_not_wait_a_timeout_per_batch() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
    // Accepts and never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    let exp = OtlpExporter::start(OtlpOptions {
        endpoint: url,
        flush_interval: Duration::from_secs(3600),
        max_batch_spans: 1,
        timeout: Duration::from_millis(300),
        ..OtlpOptions::default()
    })
    .unwrap();
    let d = decision(TRACEPARENT);
    let n = decision_span_data(&d, 1, 2).unwrap().len() as u64;
    for _ in 0..20 {
        assert!(exp.export_decision(&d, 1, 2));
    }
    let t0 = std::time::Instant::now();
    exp.stop();
    // 20 decisions in batches of one span: minutes at one timeout each.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let st = exp.stats();
    assert_eq!((st.exported_spans, st.failed_spans), (0, 20 * n));
}
