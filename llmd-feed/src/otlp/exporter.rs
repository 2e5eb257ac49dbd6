//! The export thread: batches spans and POSTs them to an OTLP/HTTP
//! endpoint, with bounded memory and counted drops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llmd_sched::Decision;

use super::{decision_span_data, export_request, SpanData};
use crate::http::{post, HttpUrl};
use crate::FeedError;

/// Where and how spans are exported.
#[derive(Clone, Debug)]
pub struct OtlpOptions {
    /// The OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`
    /// (`http://` only: terminate TLS in a collector).
    pub endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Share of sampled traces exported (0 to 1), chosen per trace id so a
    /// trace is exported whole or not at all. Unsampled requests (flag off)
    /// are never exported.
    pub sampling_ratio: f64,
    /// Spans held for export at most; beyond it decisions are dropped and
    /// counted.
    pub max_queue_spans: usize,
    /// Spans per request at most.
    pub max_batch_spans: usize,
    /// Longest wait before a partial batch goes (at least 1 ms, under
    /// 10^9 s).
    pub flush_interval: Duration,
    /// Deadline of one POST (at least 1 ms, under 10^9 s).
    pub timeout: Duration,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        OtlpOptions {
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            service_name: "llmd".into(),
            sampling_ratio: 1.0,
            max_queue_spans: 65_536,
            max_batch_spans: 512,
            flush_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Export counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Spans the endpoint accepted.
    pub exported_spans: u64,
    /// Spans dropped because the queue was full.
    pub dropped_spans: u64,
    /// Spans lost to failed POSTs (an error status or no answer).
    pub failed_spans: u64,
    /// Decisions not exported: no trace context, unsampled, or outside the
    /// sampling ratio.
    pub unsampled_decisions: u64,
}

#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    unsampled: AtomicU64,
}

/// Queued work: a decision (turned into spans on the export thread, so the
/// caller only clones it) or spans built by the caller.
enum Job {
    Decision(Box<Decision>, u64, u64),
    Spans(Vec<SpanData>),
}

struct Queue {
    jobs: VecDeque<(Job, usize)>,
    /// Spans the queued jobs hold (decisions: an upper bound).
    spans: usize,
    stop: bool,
    /// Spans handed to the thread and not yet answered.
    in_flight: usize,
    /// A flush asks for partial batches now.
    flush: bool,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
    counters: Counters,
}

/// Exports decision spans to an OTLP/HTTP endpoint from a thread of its
/// own. [`OtlpExporter::export_decision`] never blocks on the network.
pub struct OtlpExporter {
    opts: OtlpOptions,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.opts.endpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

impl OtlpExporter {
    /// Starts the export thread. A bad endpoint or option is an error.
    pub fn start(opts: OtlpOptions) -> Result<OtlpExporter, FeedError> {
        let url = HttpUrl::parse(&opts.endpoint)
            .map_err(|e| FeedError::Config(format!("otlp endpoint: {e}")))?;
        if !(0.0..=1.0).contains(&opts.sampling_ratio) {
            return Err(FeedError::Config(
                "otlp sampling_ratio must be within 0..=1".into(),
            ));
        }
        if opts.max_queue_spans == 0 || opts.max_batch_spans == 0 {
            return Err(FeedError::Config(
                "otlp queue and batch sizes must be positive".into(),
            ));
        }
        // A zero interval would spin the export thread, a zero timeout fail
        // every POST, and a timeout past the clock's range overflow a deadline.
        for (what, d) in [
            ("flush_interval", opts.flush_interval),
            ("timeout", opts.timeout),
        ] {
            crate::overrides::seconds(&format!("otlp {what}"), d.as_secs_f64())
                .map_err(FeedError::Config)?;
        }
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue {
                jobs: VecDeque::new(),
                spans: 0,
                stop: false,
                in_flight: 0,
                flush: false,
            }),
            cv: Condvar::new(),
            counters: Counters::default(),
        });
        let (s, o) = (shared.clone(), opts.clone());
        let thread = std::thread::Builder::new()
            .name("llmd-otlp".into())
            .spawn(move || run(&s, &o, &url))
            .map_err(|e| FeedError::Config(format!("otlp thread: {e}")))?;
        Ok(OtlpExporter {
            opts,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues the spans of `d` (see [`super::decision_span_data`]) timed
    /// from `start_unix_ns` to `end_unix_ns`. Returns whether they were
    /// queued: a decision without a sampled trace context, one outside the
    /// sampling ratio, or one that does not fit the queue is not (and is
    /// counted).
    pub fn export_decision(&self, d: &Decision, start_unix_ns: u64, end_unix_ns: u64) -> bool {
        let traced = d
            .trace
            .as_ref()
            .is_some_and(|t| t.sampled() && in_ratio(&t.trace_id, self.opts.sampling_ratio));
        if !traced {
            self.shared
                .counters
                .unsampled
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // The spans are built on the export thread: here only a clone of
        // the decision (its explanation not yet materialised) is queued.
        let n = span_bound(d);
        let job = Job::Decision(Box::new(d.clone()), start_unix_ns, end_unix_ns);
        self.enqueue(job, n)
    }

    /// Queues `spans` as they are (whole or not at all).
    pub fn export_spans(&self, spans: Vec<SpanData>) -> bool {
        let n = spans.len();
        self.enqueue(Job::Spans(spans), n)
    }

    fn enqueue(&self, job: Job, n: usize) -> bool {
        let mut q = self.shared.q.lock().unwrap_or_else(|e| e.into_inner());
        if q.stop || q.spans + n > self.opts.max_queue_spans {
            drop(q);
            self.shared
                .counters
                .dropped
                .fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        q.spans += n;
        q.jobs.push_back((job, n));
        drop(q);
        self.shared.cv.notify_one();
        true
    }

    /// Waits until every queued span was sent (or failed), at most
    /// `timeout`; returns whether the queue drained.
    pub fn flush(&self, timeout: Duration) -> bool {
        // A timeout too long for the clock waits as long as it takes.
        let deadline = crate::deadline::after(timeout);
        let mut q = self.shared.q.lock().unwrap_or_else(|e| e.into_inner());
        q.flush = true;
        self.shared.cv.notify_all();
        while !q.jobs.is_empty() || q.in_flight > 0 {
            let Ok(left) = crate::deadline::left(deadline) else {
                return false;
            };
            let left = left.unwrap_or(Duration::MAX);
            q = self
                .shared
                .cv
                .wait_timeout(q, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            self.shared.cv.notify_all();
        }
        true
    }

    /// The counters.
    pub fn stats(&self) -> OtlpStats {
        let c = &self.shared.counters;
        OtlpStats {
            exported_spans: c.exported.load(Ordering::Relaxed),
            dropped_spans: c.dropped.load(Ordering::Relaxed),
            failed_spans: c.failed.load(Ordering::Relaxed),
            unsampled_decisions: c.unsampled.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued, then stops the thread: within about two POST
    /// timeouts (a batch in flight, then the rest until one timeout after
    /// the stop); once a POST fails or that time is up, what is left is
    /// counted as failed. Idempotent; also done on drop.
    pub fn stop(&self) {
        {
            let mut q = self.shared.q.lock().unwrap_or_else(|e| e.into_inner());
            q.stop = true;
        }
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a trace falls within the sampling ratio (by its id's low bits,
/// as OpenTelemetry's TraceIdRatioBased sampler does).
fn in_ratio(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low) >> 1;
    (x as f64) < ratio * (1u64 << 63) as f64
}

/// The spans a decision exports at most: the scheduling span, per profile
/// its span, filter, scoring, picker and one per scorer, and the P/D span.
fn span_bound(d: &Decision) -> usize {
    2 + d
        .explanation
        .outcomes()
        .map(|o| 4 + o.scorer_names().count())
        .sum::<usize>()
}

/// Counts every span still queued as failed and empties the queue (a stop
/// that cannot reach the collector does not wait a timeout per batch).
fn give_up(s: &Shared) {
    let mut q = s.q.lock().unwrap_or_else(|e| e.into_inner());
    let n = q.spans;
    q.jobs.clear();
    q.spans = 0;
    drop(q);
    s.counters.failed.fetch_add(n as u64, Ordering::Relaxed);
}

fn run(s: &Shared, o: &OtlpOptions, url: &HttpUrl) {
    // When stopping began: the queue is sent within one POST timeout of it.
    let mut stop_since: Option<Instant> = None;
    loop {
        let jobs: Vec<(Job, usize)> = {
            let mut q = s.q.lock().unwrap_or_else(|e| e.into_inner());
            if q.stop {
                let since = *stop_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= o.timeout && !q.jobs.is_empty() {
                    drop(q);
                    give_up(s);
                    return;
                }
            }
            let since = Instant::now();
            // Wait for a full batch, the flush interval, a flush, or stop.
            while !q.stop && !q.flush && q.spans < o.max_batch_spans {
                let left = o.flush_interval.saturating_sub(since.elapsed());
                if left.is_zero() && !q.jobs.is_empty() {
                    break;
                }
                let wait = if left.is_zero() {
                    o.flush_interval
                } else {
                    left
                };
                q =
                    s.cv.wait_timeout(q, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
            if q.jobs.is_empty() {
                q.flush = false;
                if q.stop {
                    return;
                }
                continue;
            }
            let mut taken = Vec::new();
            let mut n = 0;
            while let Some((job, k)) = q.jobs.pop_front() {
                n += k;
                taken.push((job, k));
                if n >= o.max_batch_spans {
                    break;
                }
            }
            q.spans -= n;
            q.in_flight = n;
            taken
        };
        let mut batch = Vec::new();
        for (job, _) in jobs {
            match job {
                Job::Decision(d, start, end) => {
                    batch.extend(decision_span_data(&d, start, end).unwrap_or_default());
                }
                Job::Spans(spans) => batch.extend(spans),
            }
        }
        let body = export_request(&o.service_name, &batch);
        let ok = post(url, "application/x-protobuf", &body, o.timeout, 1 << 20).is_ok();
        let counter = if ok {
            &s.counters.exported
        } else {
            &s.counters.failed
        };
        counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut q = s.q.lock().unwrap_or_else(|e| e.into_inner());
        q.in_flight = 0;
        let stopping = q.stop;
        drop(q);
        s.cv.notify_all();
        if stopping && !ok {
            // The collector is not answering: what is left would cost a
            // timeout per batch.
            give_up(s);
            return;
        }
    }
}
