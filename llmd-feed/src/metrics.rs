//! The `llmd_feed_*` metrics, rendered from the pods' counters at
//! exposition time (Prometheus text format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use llmd_sched::observe::AtomicHistogram;

use crate::feed::Inner;
use crate::pod::{unix_ns, Pod, PodStats};

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

type Get = fn(&PodStats) -> &AtomicU64;
/// A counter family: name, help, and its series (extra label, value).
type CounterFamily = (&'static str, &'static str, &'static [(&'static str, Get)]);
/// A gauge family computed from a pod at a wall-clock time (ns).
type GaugeFamily = (&'static str, &'static str, fn(&Pod, u64) -> Option<f64>);

/// Counters per pod: (name, help, extra label, value).
const COUNTERS: &[CounterFamily] = &[
    ("llmd_feed_event_batches_total", "KV-event batches applied to the scheduler", &[("", |s| &s.batches)]),
    ("llmd_feed_blocks_total", "Blocks stored or removed by applied batches", &[
        ("op=\"stored\"", |s| &s.blocks_stored),
        ("op=\"removed\"", |s| &s.blocks_removed),
    ]),
    ("llmd_feed_gaps_total", "Sequence gaps seen (lost batches)", &[("", |s| &s.gaps)]),
    ("llmd_feed_duplicates_total", "Batches skipped as already applied (a replay overlapping the live stream)", &[("", |s| &s.duplicates)]),
    ("llmd_feed_restarts_total", "Publisher restarts seen (sequence numbers went back)", &[("", |s| &s.restarts)]),
    ("llmd_feed_replays_total", "Replay requests by result: ok, too_old (the buffer no longer reached the first lost batch), incomplete (no end marker or a hole), failed, skipped (not asked: the replay socket failed lately and is backed off)", &[
        ("result=\"ok\"", |s| &s.replays_ok),
        ("result=\"too_old\"", |s| &s.replays_too_old),
        ("result=\"incomplete\"", |s| &s.replays_incomplete),
        ("result=\"failed\"", |s| &s.replays_failed),
        ("result=\"skipped\"", |s| &s.replays_skipped),
    ]),
    ("llmd_feed_clears_total", "Times a pod's index entries were dropped because lost batches could not be replayed", &[("", |s| &s.clears)]),
    ("llmd_feed_reconnects_total", "Event connections re-established", &[("", |s| &s.reconnects)]),
    ("llmd_feed_heartbeat_timeouts_total", "Event connections closed because the publisher answered no heartbeat (gone without closing the connection)", &[("", |s| &s.heartbeat_timeouts)]),
    ("llmd_feed_connect_failures_total", "Failed event connection attempts", &[("", |s| &s.connect_failures)]),
    ("llmd_feed_malformed_total", "Event messages or handshakes dropped as malformed", &[("", |s| &s.malformed)]),
    ("llmd_feed_decode_errors_total", "Event payloads that failed to decode", &[("", |s| &s.decode_errors)]),
    ("llmd_feed_queue_drops_total", "Batches dropped because the ingest queue was full", &[("", |s| &s.queue_drops)]),
    ("llmd_feed_not_applied_total", "Batches that arrived while the pod was not registered or the feed was not running", &[("", |s| &s.not_applied)]),
    ("llmd_feed_scrapes_total", "Scrapes of /metrics by result", &[
        ("result=\"ok\"", |s| &s.scrapes),
        ("result=\"error\"", |s| &s.scrape_errors),
    ]),
    ("llmd_feed_evictions_total", "Times a pod was removed from the scheduler for not answering its scrapes", &[("", |s| &s.evictions)]),
    ("llmd_feed_registration_failures_total", "Scrapes of an evicted pod that answered but could not be registered in the scheduler again (e.g. the prefix index's endpoint slots all taken)", &[("", |s| &s.registration_failures)]),
];

fn labels(pod: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!("{{pod=\"{}\"}}", esc(pod))
    } else {
        format!("{{pod=\"{}\",{extra}}}", esc(pod))
    }
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    pods: &[&Pod],
    h: fn(&PodStats) -> &AtomicHistogram,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for p in pods {
        let hist = h(&p.stats);
        let snap = hist.snapshot();
        let pod = esc(p.name());
        let mut cum = 0;
        for (i, c) in snap.buckets.iter().enumerate() {
            cum += c;
            let le = hist
                .bounds()
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{pod=\"{pod}\",le=\"{le}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_sum{{pod=\"{pod}\"}} {}", snap.sum);
        let _ = writeln!(out, "{name}_count{{pod=\"{pod}\"}} {}", snap.count);
    }
}

pub(crate) fn render(inner: &Inner) -> String {
    let pods = inner.pods.read().unwrap();
    let pods: Vec<&Pod> = pods.values().map(|p| p.as_ref()).collect();
    let mut out = String::new();
    for (name, help, series) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for p in &pods {
            for (extra, get) in *series {
                let v = get(&p.stats).load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{} {v}", labels(p.name(), extra));
            }
        }
    }
    histogram(
        &mut out,
        "llmd_feed_event_lag_seconds",
        "Seconds from a batch's timestamp (engine clock) to its ingest",
        &pods,
        |s| &s.lag,
    );
    histogram(
        &mut out,
        "llmd_feed_scrape_duration_seconds",
        "Seconds per /metrics scrape, failed ones included",
        &pods,
        |s| &s.scrape_seconds,
    );
    let now = unix_ns();
    let gauges: [GaugeFamily; 4] = [
        (
            "llmd_feed_pod_up",
            "1 while the pod answers its scrapes",
            |p, _| Some(f64::from(u8::from(p.stats.up.load(Ordering::Relaxed)))),
        ),
        (
            "llmd_feed_pod_registered",
            "1 while the pod is registered in the scheduler (routable)",
            |p, _| {
                Some(f64::from(u8::from(
                    p.stats.registered.load(Ordering::Relaxed),
                )))
            },
        ),
        (
            "llmd_feed_last_event_age_seconds",
            "Seconds since the pod's last applied batch",
            |p, now| {
                let t = p.stats.last_event_unix_ns.load(Ordering::Relaxed);
                (t > 0).then(|| now.saturating_sub(t) as f64 / 1e9)
            },
        ),
        (
            "llmd_feed_metrics_staleness_seconds",
            "Seconds since the pod's last successful scrape",
            |p, now| {
                let t = p.stats.last_scrape_unix_ns.load(Ordering::Relaxed);
                (t > 0).then(|| now.saturating_sub(t) as f64 / 1e9)
            },
        ),
    ];
    for (name, help, f) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for p in &pods {
            if let Some(v) = f(p, now) {
                let _ = writeln!(out, "{name}{} {v}", labels(p.name(), ""));
            }
        }
    }
    for (name, help, v) in [
        (
            "llmd_feed_unknown_publisher_messages_total",
            "Messages on a bound socket whose topic names no followed pod",
            &inner.counters.unknown_publisher,
        ),
        (
            "llmd_feed_topic_filtered_messages_total",
            "Messages whose topic starts with no subscribed prefix, dropped on receipt",
            &inner.counters.topic_filtered,
        ),
        (
            "llmd_feed_bound_malformed_total",
            "Connections or messages on a bound socket dropped as malformed",
            &inner.counters.bound_malformed,
        ),
        (
            "llmd_feed_bound_heartbeat_timeouts_total",
            "Connections to a bound socket closed because the publisher answered no heartbeat",
            &inner.counters.bound_heartbeat_timeouts,
        ),
        (
            "llmd_feed_bound_refused_total",
            "Connections to a bound socket not served: over the connection limit, a failed accept, or no thread to serve one with",
            &inner.counters.bound_refused,
        ),
        (
            "llmd_feed_discovery_errors_total",
            "Discovered pods that could not be added or removed, and DNS lookups or endpoint files that could not be read",
            &inner.counters.discovery_errors,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    }
    out
}
