//! The feed handle (`llmd_feed_*`): the live connection between vLLM pods
//! and a scheduler (KV events over ZMQ with replay, `/metrics` scraping),
//! on threads the library owns.

use std::ffi::c_char;

use std::time::Duration;

use ::llmd_feed::{Discovery, Feed, FeedError, FeedOverrides, PodSpec};

use crate::args::{self, into_handle, Out};
use crate::error::{llmd_error, FfiError};
use crate::handle::{call, handle, read, release};
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use crate::string::{json, llmd_string, text_out};
use crate::views::llmd_str;

/// A feed driving one scheduler. Every call takes it as `const`; free it
/// (which stops it) before or after the scheduler, in any order.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_feed(Feed);
handle!(llmd_feed, Feed, "feed");

/// A pod to follow.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_pod_desc {
    /// Endpoint name (required); registered in the scheduler unless it is.
    pub name: llmd_str,
    /// `host:port` of the pod's OpenAI server (required).
    pub address: llmd_str,
    /// KV-event endpoint to connect to (`tcp://host:port`); NULL: none, or
    /// `tcp://<host>:<socketPort>` when the config discovers pods.
    pub events: llmd_str,
    /// Replay endpoint; NULL: gaps are not replayed.
    pub replay: llmd_str,
    /// `/metrics` URL; NULL: `http://<address>/metrics`.
    pub metrics_url: llmd_str,
    /// Non-zero: do not scrape `/metrics`.
    pub no_scrape: u8,
    /// Data-parallel ranks publishing on consecutive ports (0 means 1).
    pub data_parallel_size: u16,
}

impl From<FeedError> for FfiError {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Schedule(s) => FfiError::from(s),
            FeedError::UnknownPod(_) => {
                FfiError::with_code(llmd_status::UnknownEndpoint, "unknown_pod", e.to_string())
            }
            FeedError::Config(_) => FfiError::invalid(e.to_string()),
            FeedError::Io(_) => FfiError::new(llmd_status::Io, e.to_string()),
        }
    }
}

/// Creates a feed for `s` that executes what its configuration asks of the
/// data plane (a precise producer's `kvEventsConfig`, `metrics-data-source`,
/// `file-discovery`; see `llmd_feed_settings_json`). Nothing runs until
/// `llmd_feed_start`.
///
/// # Safety
/// `s` is NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_new(
    s: *const llmd_scheduler,
    out: *mut *mut llmd_feed,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract (no options).
    unsafe { llmd_feed_new_with_options(s, std::ptr::null(), 0, out, err) }
}

/// As `llmd_feed_new`, with the host's settings over the configuration's:
/// `options` is a JSON object (`len` bytes; NULL or empty: none) with any of
/// `topics` (list of topic prefixes), `concurrency` (ingest workers,
/// 1..=1024), `events_port` / `replay_port` (for pods added without those
/// endpoints), `scrape_interval`, `scrape_timeout`, `replay_timeout`,
/// `remove_after` (seconds), `clear_on_unrecoverable_gap` (bool) and
/// `heartbeat_interval` (seconds; 0 sends no ZMTP heartbeats). An unknown
/// name, a wrong type or a value out of range is
/// `LLMD_STATUS_INVALID_ARGUMENT` naming it. Each setting given appears in
/// `llmd_feed_settings_json` as the host's.
///
/// # Safety
/// `s` is NULL or live; `options` NULL or valid for `len` bytes; `out` valid
/// for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_new_with_options(
    s: *const llmd_scheduler,
    options: *const c_char,
    len: usize,
    out: *mut *mut llmd_feed,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let text = args::opt_str(options, len, "options")?.unwrap_or("");
            let overrides = if text.trim().is_empty() {
                FeedOverrides::default()
            } else {
                FeedOverrides::from_json(text)?
            };
            let feed = Feed::from_scheduler_with(s.clone(), &overrides)?;
            out.write(into_handle(llmd_feed(feed)));
            Ok(())
        })
    }
}

/// Follows a pod (see `llmd_pod_desc`).
///
/// # Safety
/// `f` NULL or live; `pod` NULL or valid with its views valid; `err` NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_add_pod(
    f: *const llmd_feed,
    pod: *const llmd_pod_desc,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(f, err, |f| {
            f.add_pod(pod_spec(args::handle(pod, "pod")?)?)
                .map_err(FfiError::from)
        })
    }
}

/// The pod a descriptor describes.
///
/// # Safety
/// `p`'s views valid for their lengths.
unsafe fn pod_spec(p: &llmd_pod_desc) -> Result<PodSpec, FfiError> {
    // SAFETY: forwarded caller contract.
    unsafe {
        Ok(PodSpec {
            events: p.events.optional("events")?,
            replay: p.replay.optional("replay")?,
            metrics_url: p.metrics_url.optional("metrics_url")?,
            scrape: p.no_scrape == 0,
            data_parallel_size: p.data_parallel_size.max(1),
            ..PodSpec::new(p.name.required("name")?, p.address.required("address")?)
        })
    }
}

/// Makes the followed pods exactly `pods` (a host's discovery callback,
/// e.g. a Kubernetes watch): new names are added, missing ones removed
/// (with their index entries), changed ones replaced; pods from DNS or file
/// discovery are left alone.
///
/// # Safety
/// `f` NULL or live; `pods` NULL with `n` 0 or valid for `n` descriptors
/// with their views valid; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_sync_pods(
    f: *const llmd_feed,
    pods: *const llmd_pod_desc,
    n: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(f, err, |f| {
            let specs = args::slice(pods, n, "pods")?
                .iter()
                .map(|p| pod_spec(p))
                .collect::<Result<Vec<_>, _>>()?;
            f.sync_pods(specs).map_err(FfiError::from)
        })
    }
}

/// Follows every address `host` resolves to (a headless service) as a pod
/// at `<ip>:<port>` named by its IP, resolving again every `interval_ms`
/// (at least 1; 0 is `LLMD_STATUS_INVALID_ARGUMENT`).
///
/// # Safety
/// `f` NULL or live; `host` valid for `host_len` bytes; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_discover_dns(
    f: *const llmd_feed,
    host: *const c_char,
    host_len: usize,
    port: u16,
    interval_ms: u64,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(f, err, |f| {
            let d = Discovery::Dns {
                host: args::str(host, host_len, "host")?.to_string(),
                port,
                interval: Duration::from_millis(interval_ms),
            };
            f.add_discovery(d).map_err(FfiError::from)
        })
    }
}

/// Follows the pods of llm-d's endpoint file at `path` (`endpoints: [{name,
/// namespace, address, port, labels}]`), re-read when it changes when
/// `watch` is true.
///
/// # Safety
/// `f` NULL or live; `path` valid for `len` bytes; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_watch_file(
    f: *const llmd_feed,
    path: *const c_char,
    len: usize,
    watch: bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(f, err, |f| {
            let d = Discovery::File {
                path: args::str(path, len, "path")?.into(),
                watch,
                interval: Duration::from_secs(1),
            };
            f.add_discovery(d).map_err(FfiError::from)
        })
    }
}

/// Stops following a pod and removes it (and its index entries) from the
/// scheduler; `LLMD_STATUS_UNKNOWN_ENDPOINT` (code `unknown_pod`) when the
/// feed does not follow it.
///
/// # Safety
/// `f` NULL or live; `name` valid for `name_len` bytes; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_remove_pod(
    f: *const llmd_feed,
    name: *const c_char,
    name_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(f, err, |f| {
            f.remove_pod(args::str(name, name_len, "name")?)
                .map_err(FfiError::from)
        })
    }
}

/// Binds a socket for pods that dial in (`tcp://*:5557`; port 0 picks one)
/// and returns the bound endpoint in `out`.
///
/// # Safety
/// `f` NULL or live; `endpoint` valid for `len` bytes; `out` valid for a
/// write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_bind_events(
    f: *const llmd_feed,
    endpoint: *const c_char,
    len: usize,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        text_out(f, out, err, |f| {
            Ok(f.bind_events(args::str(endpoint, len, "endpoint")?)?
                .to_string())
        })
    }
}

/// Starts the feed's threads (a stopped feed cannot start again).
///
/// # Safety
/// `f` NULL or live; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_start(
    f: *const llmd_feed,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { call(f, err, |f| Ok(f.start()?)) }
}

/// Stops every thread and closes every socket; waits for them. NULL is
/// ignored. A stopped feed cannot start again: adding pods, syncing,
/// binding and adding discovery sources then give
/// `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_stop(f: *const llmd_feed) {
    // SAFETY: caller contract.
    unsafe { read(f, (), |f| f.stop()) }
}

/// True between `llmd_feed_start` and `llmd_feed_stop`; false for NULL.
///
/// # Safety
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_running(f: *const llmd_feed) -> bool {
    // SAFETY: caller contract.
    unsafe { read(f, false, |f| f.is_running()) }
}

/// Messages received on a bound socket from publishers whose topic names
/// no followed pod (counted, not applied); 0 for NULL.
///
/// # Safety
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_unknown_publisher_messages(f: *const llmd_feed) -> u64 {
    // SAFETY: caller contract.
    unsafe { read(f, 0, |f| f.unknown_publisher_messages()) }
}

/// Names of the followed pods as a JSON list of strings.
///
/// # Safety
/// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_pods_json(
    f: *const llmd_feed,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(f, out, err, |f| json(serde_json::to_string(&f.pods()))) }
}

/// The endpoints bound for pods that dial in (`llmd_feed_bind_events` and
/// the configuration's `zmqEndpoint`), as a JSON list of strings, as this
/// host dials them: a port 0 asked for is the port given, a wildcard host
/// `*` is `127.0.0.1`. Empty once the feed is stopped.
///
/// # Safety
/// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_bound_endpoints_json(
    f: *const llmd_feed,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        text_out(f, out, err, |f| {
            let bound: Vec<String> = f.bound_endpoints().iter().map(|e| e.to_string()).collect();
            json(serde_json::to_string(&bound))
        })
    }
}

/// Per-pod counters as JSON: `{"<pod>": {"events": …, "blocks": …,
/// "gaps": …, "replays": …, "reconnects": …, "scrape_errors": …,
/// "evictions": …, "registration_failures": …,
/// "last_event_age_s": …, …}}`.
///
/// # Safety
/// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_stats_json(
    f: *const llmd_feed,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(f, out, err, |f| json(serde_json::to_string(&f.stats()))) }
}

/// The configuration settings the feed executes or not, as a JSON list of
/// `{"plugin", "setting", "executed", "note"}`.
///
/// # Safety
/// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_settings_json(
    f: *const llmd_feed,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(f, out, err, |f| json(serde_json::to_string(f.settings()))) }
}

/// The `llmd_feed_*` metrics as Prometheus text.
///
/// # Safety
/// `f` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_render_metrics(
    f: *const llmd_feed,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(f, out, err, |f| Ok(f.render_metrics())) }
}

/// Stops and releases a feed. NULL is accepted and ignored.
///
/// # Safety
/// `f` is NULL or a feed not yet freed, with no call on it in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_feed_free(f: *mut llmd_feed) {
    // SAFETY: caller contract.
    unsafe { release(f) }
}
