//! `/metrics` scraping of one pod, and its health: a pod that stops
//! answering is marked down, then removed from the scheduler (its index
//! entries dropped), and registered again when it answers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use llmd_sched::metrics_text::parse_metrics_text;
use llmd_sched::Scheduler;

use crate::feed::register;
use crate::http::get;
use crate::options::FeedOptions;
use crate::pod::{unix_ns, PodRef, PodStats, Stopper};

/// What one scrape came to.
enum Scrape {
    /// The page parsed and its metrics reached the scheduler.
    Stored,
    /// The page parsed but the scheduler refused to register the pod again.
    Refused,
    /// No page, one that does not parse, or the pod was removed meanwhile.
    Failed,
}

/// Scrapes `pod` every `scrape_interval` until it or the feed stops.
pub(crate) fn run(sched: &Scheduler, opts: &FeedOptions, pod: &PodRef, feed: &Stopper) {
    let Some(url) = &pod.metrics else { return };
    let st = &pod.stats;
    while !pod.stop.is_stopped() && !feed.is_stopped() {
        let t0 = Instant::now();
        let r = get(url, opts.scrape_timeout, opts.max_scrape_bytes);
        st.scrape_seconds.observe(t0.elapsed().as_secs_f64());
        // A page is a sign of life only once it parses: a pod answering 200
        // with no vLLM gauges stays out (else it would be re-added and
        // evicted again every `remove_after`, its index dropped each time).
        // Stamped by the scheduler's clock when stored (0 = now).
        let parsed = r.ok().and_then(|text| parse_metrics_text(&text, 0).ok());
        let outcome = match parsed {
            Some(metrics) => {
                let registered = if st.registered.load(Ordering::Acquire) {
                    Some(true)
                } else {
                    match pod.unless_removed(|| register(sched, pod)) {
                        Some(Ok(())) => {
                            // Back after an eviction: a fresh registration
                            // whose event streams start over (and catch up by
                            // replay). Cleared outside `membership` (taken
                            // after `streams` elsewhere).
                            pod.streams.lock().unwrap().clear();
                            Some(true)
                        }
                        Some(Err(_)) => Some(false),
                        None => None,
                    }
                };
                match registered {
                    // Nothing of a removed pod reaches the scheduler.
                    Some(true) => {
                        let stored = pod
                            .unless_removed(|| sched.update_endpoint_metrics(pod.name(), metrics))
                            .is_some_and(|r| r.is_ok());
                        if stored {
                            Scrape::Stored
                        } else {
                            Scrape::Failed
                        }
                    }
                    Some(false) => Scrape::Refused,
                    None => Scrape::Failed,
                }
            }
            None => Scrape::Failed,
        };
        match outcome {
            Scrape::Stored => {
                PodStats::inc(&st.scrapes);
                st.consecutive_scrape_failures.store(0, Ordering::Relaxed);
                st.last_scrape_unix_ns.store(unix_ns(), Ordering::Relaxed);
                pod.last_ok_unix_ns.store(unix_ns(), Ordering::Relaxed);
                st.up.store(true, Ordering::Relaxed);
            }
            // The scheduler refused the pod (e.g. the prefix index's endpoint
            // slots are all taken): it answers, so it is up, but it is not
            // routable and its metrics went nowhere (neither a scrape nor a
            // failed one; the staleness keeps growing). Tried again at the
            // next scrape.
            Scrape::Refused => {
                PodStats::inc(&st.registration_failures);
                st.consecutive_scrape_failures.store(0, Ordering::Relaxed);
                pod.last_ok_unix_ns.store(unix_ns(), Ordering::Relaxed);
                st.up.store(true, Ordering::Relaxed);
            }
            Scrape::Failed => {
                PodStats::inc(&st.scrape_errors);
                let n = st
                    .consecutive_scrape_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n >= u64::from(opts.down_after_failures) {
                    st.up.store(false, Ordering::Relaxed);
                    let since_ok = Duration::from_nanos(
                        unix_ns().saturating_sub(pod.last_ok_unix_ns.load(Ordering::Relaxed)),
                    );
                    if since_ok >= opts.remove_after {
                        // Under `membership`: the endpoint removed is this
                        // pod's, never a pod re-added under its name.
                        // Counted once the endpoint is gone.
                        let evicted = pod.unless_removed(|| {
                            let was = st.registered.swap(false, Ordering::AcqRel);
                            if was {
                                let _ = sched.remove_endpoint(pod.name());
                            }
                            was
                        });
                        if evicted == Some(true) {
                            PodStats::inc(&st.evictions);
                        }
                    }
                }
            }
        }
        let wait = opts.scrape_interval.saturating_sub(t0.elapsed());
        if pod.stop.wait(wait.max(Duration::from_millis(1))) {
            return;
        }
    }
}
