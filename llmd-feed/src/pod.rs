//! One pod the feed follows: what it is (its spec), where its sockets are,
//! and its health counters.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmd_sched::observe::AtomicHistogram;
use llmd_sched::Endpoint;
use serde::Serialize;

use crate::http::HttpUrl;
use crate::stream::StreamState;
use crate::zmq::TcpEndpoint;
use crate::FeedError;
use llmd_kvindex::events::seq::MAX_RANKS_PER_ENDPOINT;

/// What to follow for one pod.
#[derive(Clone, Debug, Default)]
pub struct PodSpec {
    /// Endpoint name in the scheduler.
    pub name: String,
    /// `host:port` of the pod's OpenAI server.
    pub address: String,
    /// KV-event PUB endpoint to connect to (`tcp://host:port`; data-parallel
    /// rank r at port + r). `None`: no events, or the pod dials a bound
    /// socket ([`crate::Feed::bind_events`]).
    pub events: Option<String>,
    /// Replay ROUTER endpoint (rank r at port + r); `None`: gaps cannot be
    /// replayed.
    pub replay: Option<String>,
    /// `/metrics` URL; `None` means `http://<address>/metrics` unless
    /// scraping is off for the pod ([`PodSpec::scrape`]).
    pub metrics_url: Option<String>,
    /// Scrape `/metrics` at all.
    pub scrape: bool,
    /// Data-parallel ranks publishing separately (1 for most pods; 0 counts
    /// as 1, as in the C and Go bindings).
    pub data_parallel_size: u16,
    /// Labels and served model for the scheduler's endpoint, used when the
    /// scheduler does not have an endpoint of this name yet.
    pub endpoint: Option<Endpoint>,
}

impl PodSpec {
    /// A pod given as data (Python's `sync_pods` dicts): an object with
    /// `name` and `address` (strings), and optionally `events`, `replay`,
    /// `metrics_url` (strings or null), `scrape` (a bool) and
    /// `data_parallel_size` (an integer ≥ 1). A missing required key, a
    /// wrong type or an unknown key is an error naming it: `"scrape":
    /// "false"` must not turn scraping on.
    pub fn from_json(v: &serde_json::Value) -> Result<PodSpec, FeedError> {
        use serde_json::Value;
        let bad = |m: String| FeedError::Config(format!("pod: {m}"));
        let Value::Object(o) = v else {
            return Err(bad("must be an object".into()));
        };
        let string = |k: &str| -> Result<Option<String>, FeedError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("'{k}' must be a string"))),
            }
        };
        let (Some(name), Some(address)) = (string("name")?, string("address")?) else {
            return Err(bad("'name' and 'address' are required".into()));
        };
        let mut spec = PodSpec::new(name, address);
        spec.events = string("events")?;
        spec.replay = string("replay")?;
        spec.metrics_url = string("metrics_url")?;
        for (k, val) in o {
            match (k.as_str(), val) {
                ("name" | "address" | "events" | "replay" | "metrics_url", _) => {}
                ("scrape", Value::Bool(b)) => spec.scrape = *b,
                ("scrape", Value::Null) => {}
                ("data_parallel_size", Value::Number(n)) => {
                    spec.data_parallel_size = n
                        .as_u64()
                        .filter(|n| *n >= 1)
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| {
                            bad(format!(
                                "'data_parallel_size' must be an integer >= 1, got {n}"
                            ))
                        })?
                }
                ("data_parallel_size", Value::Null) => {}
                ("scrape", _) => return Err(bad("'scrape' must be a bool".into())),
                ("data_parallel_size", _) => {
                    return Err(bad("'data_parallel_size' must be an integer".into()))
                }
                (other, _) => return Err(bad(format!("unknown key '{other}'"))),
            }
        }
        Ok(spec)
    }

    /// A pod at `address` with `/metrics` scraping and nothing else.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> PodSpec {
        PodSpec {
            name: name.into(),
            address: address.into(),
            scrape: true,
            data_parallel_size: 1,
            ..PodSpec::default()
        }
    }

    /// Builder: the KV-event endpoint.
    pub fn with_events(mut self, endpoint: impl Into<String>) -> PodSpec {
        self.events = Some(endpoint.into());
        self
    }

    /// Builder: the replay endpoint.
    pub fn with_replay(mut self, endpoint: impl Into<String>) -> PodSpec {
        self.replay = Some(endpoint.into());
        self
    }

    /// The host part of the address (what llm-d's topics name a pod by).
    pub fn host(&self) -> &str {
        let a = self.address.as_str();
        match a.strip_prefix('[') {
            Some(r) => r.split(']').next().unwrap_or(r),
            None => a.rsplit_once(':').map_or(a, |(h, _)| h),
        }
    }
}

/// Counters and gauges of one pod, readable while the feed runs.
#[derive(Debug)]
pub(crate) struct PodStats {
    pub batches: AtomicU64,
    pub blocks_stored: AtomicU64,
    pub blocks_removed: AtomicU64,
    pub gaps: AtomicU64,
    pub duplicates: AtomicU64,
    pub restarts: AtomicU64,
    pub replays_ok: AtomicU64,
    pub replays_too_old: AtomicU64,
    pub replays_incomplete: AtomicU64,
    pub replays_failed: AtomicU64,
    pub replays_skipped: AtomicU64,
    pub clears: AtomicU64,
    pub connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub connect_failures: AtomicU64,
    pub malformed: AtomicU64,
    pub decode_errors: AtomicU64,
    pub queue_drops: AtomicU64,
    pub not_applied: AtomicU64,
    pub scrapes: AtomicU64,
    pub scrape_errors: AtomicU64,
    pub consecutive_scrape_failures: AtomicU64,
    pub evictions: AtomicU64,
    pub registration_failures: AtomicU64,
    pub last_event_unix_ns: AtomicU64,
    pub last_scrape_unix_ns: AtomicU64,
    pub up: AtomicBool,
    pub registered: AtomicBool,
    /// Seconds from a batch's timestamp to its ingest.
    pub lag: AtomicHistogram,
    /// Seconds per scrape (failed ones included).
    pub scrape_seconds: AtomicHistogram,
}

/// Lag buckets: 50 µs to 10 s (fine below 1 ms, where loopback lives).
pub(crate) const LAG_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Scrape-duration buckets: 1 ms to 10 s.
pub(crate) const SCRAPE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl PodStats {
    fn new() -> PodStats {
        let z = || AtomicU64::new(0);
        PodStats {
            batches: z(),
            blocks_stored: z(),
            blocks_removed: z(),
            gaps: z(),
            duplicates: z(),
            restarts: z(),
            replays_ok: z(),
            replays_too_old: z(),
            replays_incomplete: z(),
            replays_failed: z(),
            replays_skipped: z(),
            clears: z(),
            connects: z(),
            reconnects: z(),
            heartbeat_timeouts: z(),
            connect_failures: z(),
            malformed: z(),
            decode_errors: z(),
            queue_drops: z(),
            not_applied: z(),
            scrapes: z(),
            scrape_errors: z(),
            consecutive_scrape_failures: z(),
            evictions: z(),
            registration_failures: z(),
            last_event_unix_ns: z(),
            last_scrape_unix_ns: z(),
            up: AtomicBool::new(true),
            registered: AtomicBool::new(false),
            lag: AtomicHistogram::new(LAG_BUCKETS.into()),
            scrape_seconds: AtomicHistogram::new(SCRAPE_BUCKETS.into()),
        }
    }

    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A copy of one pod's counters, as [`crate::Feed::stats`] returns them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PodStatsSnapshot {
    /// Endpoint name.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Event batches applied to the scheduler.
    pub events: u64,
    /// Blocks stored by those batches.
    pub blocks: u64,
    /// Blocks removed by those batches.
    pub blocks_removed: u64,
    /// Sequence gaps seen (lost batches).
    pub gaps: u64,
    /// Batches skipped as already applied.
    pub duplicates: u64,
    /// Publisher restarts seen (numbering went back).
    pub restarts: u64,
    /// Replays that covered what was asked.
    pub replays: u64,
    /// Replays whose first batch was past what was asked (lost for good).
    pub replays_too_old: u64,
    /// Replays that ended without the end marker or with a hole.
    pub replays_incomplete: u64,
    /// Replay requests that failed (no socket, protocol error).
    pub replays_failed: u64,
    /// Replays not asked for because the pod's replay socket failed lately
    /// (the lost batches are then handled as unrecoverable).
    pub replays_skipped: u64,
    /// Times the pod's index entries were dropped (unrecoverable gap).
    pub clears: u64,
    /// Event connections that were re-established.
    pub reconnects: u64,
    /// Event connections closed for not answering a heartbeat
    /// ([`crate::FeedOptions::heartbeat_interval`]).
    pub heartbeat_timeouts: u64,
    /// Failed connection attempts.
    pub connect_failures: u64,
    /// Messages or connections dropped as malformed (frames, handshake).
    pub malformed: u64,
    /// Payloads that failed to decode.
    pub decode_errors: u64,
    /// Batches dropped because the ingest queue was full.
    pub queue_drops: u64,
    /// Batches that arrived while the pod was not registered or the feed not
    /// running (between `bind_events` and `start`, or after `stop`).
    pub not_applied: u64,
    /// Successful scrapes.
    pub scrapes: u64,
    /// Failed scrapes (connect, timeout, status, parse).
    pub scrape_errors: u64,
    /// Times the pod was removed from the scheduler for not answering.
    pub evictions: u64,
    /// Scrapes after an eviction whose pod answered but could not be
    /// registered in the scheduler again (e.g. the prefix index's endpoint
    /// slots all taken): it stays unroutable, and is tried at each scrape.
    pub registration_failures: u64,
    /// Seconds since the last applied batch (`None`: none yet).
    pub last_event_age_s: Option<f64>,
    /// Seconds since the last successful scrape (`None`: none yet).
    pub last_scrape_age_s: Option<f64>,
    /// Answering its scrapes.
    pub up: bool,
    /// Registered in the scheduler (routable).
    pub registered: bool,
}

/// Stops a pod's (or the feed's) threads: a flag, a condition variable to
/// wake sleepers, and the sockets to shut down.
#[derive(Debug, Default)]
pub(crate) struct Stopper {
    stopped: Mutex<bool>,
    cv: Condvar,
    /// Clones of the live sockets, by tracking id (the last id given out
    /// first): each is dropped, closing it, when its connection ends.
    sockets: Mutex<(u64, Vec<(u64, TcpStream)>)>,
}

/// A socket tracked by a [`Stopper`] while its connection lives: dropping
/// it forgets (and closes) the stopper's clone, so a connection that ends
/// leaves no descriptor behind.
#[derive(Debug)]
pub(crate) struct Tracked<'a> {
    stop: &'a Stopper,
    id: u64,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.stop.untrack(self.id);
    }
}

impl Stopper {
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap()
    }

    /// Sleeps up to `d`; true when stopped.
    pub fn wait(&self, d: Duration) -> bool {
        let g = self.stopped.lock().unwrap();
        let (g, _) = self.cv.wait_timeout_while(g, d, |s| !*s).unwrap();
        *g
    }

    /// Tracks a socket to shut down on stop until the returned guard is
    /// dropped; `None` (and the socket is shut) when already stopped.
    pub fn track(&self, s: &TcpStream) -> Option<Tracked<'_>> {
        self.track_id(s).map(|id| Tracked { stop: self, id })
    }

    /// [`Stopper::track`] for a connection handed to another thread: the
    /// id to give [`Stopper::untrack`] when it ends.
    pub fn track_id(&self, s: &TcpStream) -> Option<u64> {
        let stopped = self.stopped.lock().unwrap();
        if *stopped {
            let _ = s.shutdown(std::net::Shutdown::Both);
            return None;
        }
        let mut v = self.sockets.lock().unwrap();
        v.0 += 1;
        let id = v.0;
        if let Ok(c) = s.try_clone() {
            v.1.push((id, c));
        }
        Some(id)
    }

    /// Forgets (and closes) the clone tracked as `id`.
    pub fn untrack(&self, id: u64) {
        let mut v = self.sockets.lock().unwrap();
        if let Some(i) = v.1.iter().position(|(t, _)| *t == id) {
            v.1.swap_remove(i);
        }
    }

    pub fn stop(&self) {
        *self.stopped.lock().unwrap() = true;
        self.cv.notify_all();
        for (_, s) in self.sockets.lock().unwrap().1.drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Where a pod came from (discovery removes only its own pods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Host,
    Dns(usize),
    File(usize),
}

impl Source {
    /// Who follows a pod, for errors.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Host => "added by the host".into(),
            Source::Dns(i) => format!("from DNS discovery source {i}"),
            Source::File(i) => format!("from endpoint-file discovery source {i}"),
        }
    }
}

/// A followed pod.
#[derive(Debug)]
pub(crate) struct Pod {
    /// The spec with the feed's defaults filled in (ports, metrics URL, the
    /// host's endpoint description).
    pub spec: PodSpec,
    /// The spec as the host or discovery gave it: what a later sync compares
    /// with, so that a pod whose defaults were filled in is not taken for a
    /// changed one.
    pub requested: PodSpec,
    pub source: Source,
    /// Event endpoints per data-parallel rank.
    pub events: Vec<TcpEndpoint>,
    /// Replay endpoints per data-parallel rank.
    pub replay: Vec<TcpEndpoint>,
    pub metrics: Option<HttpUrl>,
    /// The scheduler endpoint to (re-)register.
    pub endpoint: Endpoint,
    pub stats: PodStats,
    pub streams: Mutex<HashMap<i64, StreamState>>,
    /// Set when a batch of this pod was dropped at a full queue: its worker
    /// replays from what it last applied once it reaches the drop (a drop at
    /// the end of a stream leaves no later batch to reveal the gap).
    pub dropped: AtomicBool,
    /// Hash of the name: which ingest worker takes the pod's batches.
    pub shard_hash: u64,
    pub stop: Stopper,
    /// Held while the pod is removed and around every scheduler call made
    /// for it ([`Pod::unless_removed`]): a removal never races a
    /// re-registration (which would leave an endpoint the feed no longer
    /// follows) nor late work of the removed pod. Taken after `streams`
    /// where both are held.
    pub membership: Mutex<()>,
    /// Wall-clock time of the last successful scrape (or of registration).
    pub last_ok_unix_ns: AtomicU64,
    /// Its subscribers and scraper were started: a pod added while the
    /// feed starts is seen by both `start` and `add_pod`, and started once.
    pub spawned: AtomicBool,
}

/// Now, for the feed's ages and timeouts (a pod's last event, its last good
/// scrape, when it is evicted): Unix nanoseconds read once, then moved by
/// the monotonic clock, so a step of the system clock (NTP, a VM resumed)
/// neither evicts a pod early nor keeps a dead one. These times never
/// leave the feed except as ages.
pub(crate) fn unix_ns() -> u64 {
    static ANCHOR: std::sync::OnceLock<(std::time::Instant, u64)> = std::sync::OnceLock::new();
    let (at, unix) =
        *ANCHOR.get_or_init(|| (std::time::Instant::now(), (wall_secs() * 1e9) as u64));
    unix.saturating_add(at.elapsed().as_nanos() as u64)
}

/// The system clock, in seconds since the Unix epoch: for comparing with an
/// engine's own timestamps (an event batch's `ts`).
pub(crate) fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn ranks(ep: Option<&str>, n: u16, what: &str) -> Result<Vec<TcpEndpoint>, FeedError> {
    let Some(ep) = ep else { return Ok(Vec::new()) };
    let base = TcpEndpoint::parse(ep).map_err(|e| FeedError::Config(format!("{what}: {e}")))?;
    if base.host == "*" {
        return Err(FeedError::Config(format!(
            "{what}: '{ep}' names no host to connect to"
        )));
    }
    (0..n.max(1))
        .map(|r| {
            base.offset(r)
                .map_err(|e| FeedError::Config(format!("{what}: {e}")))
        })
        .collect()
}

impl Pod {
    /// A pod from `spec` with the feed's defaults filled in; `requested` is
    /// the spec as it was given.
    pub fn new(
        spec: PodSpec,
        requested: PodSpec,
        source: Source,
        metrics_path: &str,
    ) -> Result<Pod, FeedError> {
        if spec.name.is_empty() {
            return Err(FeedError::Config("pod name is empty".into()));
        }
        // No Kubernetes name has one, and the pod's threads are named after
        // it (a thread name cannot hold a NUL).
        if spec.name.contains('\0') {
            return Err(FeedError::Config(format!(
                "pod name {:?} contains a NUL character",
                spec.name
            )));
        }
        // A thread per rank: no more ranks than the scheduler tracks per
        // endpoint.
        if usize::from(spec.data_parallel_size) > MAX_RANKS_PER_ENDPOINT {
            return Err(FeedError::Config(format!(
                "data_parallel_size {} is over {MAX_RANKS_PER_ENDPOINT}",
                spec.data_parallel_size
            )));
        }
        let events = ranks(spec.events.as_deref(), spec.data_parallel_size, "events")?;
        let replay = ranks(spec.replay.as_deref(), spec.data_parallel_size, "replay")?;
        let metrics = if spec.scrape {
            let url = spec
                .metrics_url
                .clone()
                .unwrap_or_else(|| format!("http://{}{metrics_path}", spec.address));
            Some(HttpUrl::parse(&url).map_err(|e| FeedError::Config(e.to_string()))?)
        } else {
            None
        };
        let shard_hash = xxhash_rust::xxh3::xxh3_64(spec.name.as_bytes());
        let endpoint = spec
            .endpoint
            .clone()
            .unwrap_or_else(|| Endpoint::new(spec.name.clone(), spec.address.clone()));
        Ok(Pod {
            events,
            replay,
            metrics,
            endpoint,
            source,
            spec,
            requested,
            stats: PodStats::new(),
            streams: Mutex::new(HashMap::new()),
            dropped: AtomicBool::new(false),
            shard_hash,
            stop: Stopper::default(),
            membership: Mutex::new(()),
            last_ok_unix_ns: AtomicU64::new(unix_ns()),
            spawned: AtomicBool::new(false),
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Runs `f`, a scheduler call on this pod's behalf, unless the pod was
    /// removed: under `membership`, so that once `remove_pod` returns no late
    /// work of this pod (a replay still running, a scrape answered after the
    /// removal) reaches the scheduler, where a pod re-added under the same
    /// name may already be. `None` when it was removed.
    pub fn unless_removed<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let _membership = self.membership.lock().unwrap();
        (!self.stop.is_stopped()).then(f)
    }

    /// The replay endpoint of `rank`.
    pub fn replay_for(&self, rank: i64) -> Option<&TcpEndpoint> {
        usize::try_from(rank).ok().and_then(|r| self.replay.get(r))
    }

    pub fn snapshot(&self) -> PodStatsSnapshot {
        let s = &self.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Read first, with acquire: the blocks of every batch counted here
        // are counted below (the ingest thread counts the batch last).
        let events = s.batches.load(Ordering::Acquire);
        let now = unix_ns();
        let age = |c: &AtomicU64| {
            let t = g(c);
            (t > 0).then(|| now.saturating_sub(t) as f64 / 1e9)
        };
        PodStatsSnapshot {
            name: self.spec.name.clone(),
            address: self.spec.address.clone(),
            events,
            blocks: g(&s.blocks_stored),
            blocks_removed: g(&s.blocks_removed),
            gaps: g(&s.gaps),
            duplicates: g(&s.duplicates),
            restarts: g(&s.restarts),
            replays: g(&s.replays_ok),
            replays_too_old: g(&s.replays_too_old),
            replays_incomplete: g(&s.replays_incomplete),
            replays_failed: g(&s.replays_failed),
            replays_skipped: g(&s.replays_skipped),
            clears: g(&s.clears),
            reconnects: g(&s.reconnects),
            heartbeat_timeouts: g(&s.heartbeat_timeouts),
            connect_failures: g(&s.connect_failures),
            malformed: g(&s.malformed),
            decode_errors: g(&s.decode_errors),
            queue_drops: g(&s.queue_drops),
            not_applied: g(&s.not_applied),
            scrapes: g(&s.scrapes),
            scrape_errors: g(&s.scrape_errors),
            evictions: g(&s.evictions),
            registration_failures: g(&s.registration_failures),
            last_event_age_s: age(&s.last_event_unix_ns),
            last_scrape_age_s: age(&s.last_scrape_unix_ns),
            up: s.up.load(Ordering::Relaxed),
            registered: s.registered.load(Ordering::Relaxed),
        }
    }
}

/// Shared handle.
pub(crate) type PodRef = Arc<Pod>;
