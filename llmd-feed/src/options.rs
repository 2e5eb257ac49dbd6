//! The feed's settings, with llm-d's defaults where llm-d has one.

use std::time::Duration;

use crate::zmq::Limits;

/// What to do when lost batches cannot be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnrecoverableGap {
    /// Drop what the index knows about the pod (SPEC §3.2): it may hold
    /// blocks the lost batches removed. The default.
    Clear,
    /// Keep the entries and apply the next batch (the gap is still counted).
    Keep,
}

/// Feed settings.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// Topic prefixes to subscribe to (llm-d: `topicFilter`, `kv@`); an
    /// empty prefix takes every topic (vLLM's default topic is "").
    pub topics: Vec<String>,
    /// Ingest workers; a pod's batches always go to the same one
    /// (llm-d: `concurrency`, 4). 0 applies each batch on the thread that
    /// received it (one per pod and rank, or per dialing connection): one
    /// thread hop fewer, so the lowest lag, and no queue to overflow; a slow
    /// ingest then backs up into the socket instead.
    pub concurrency: usize,
    /// Batches queued per worker before new ones are dropped (and counted;
    /// the next batch then shows a gap and is replayed).
    pub queue_capacity: usize,
    /// Payload bytes queued per worker before new batches are dropped (and
    /// counted, and replayed, as at a full queue): 64 MiB. A batch larger
    /// than this still passes an empty queue.
    pub queue_max_bytes: usize,
    /// With `Some(port)`, a pod added without an events endpoint gets
    /// `tcp://<host>:<port>` (llm-d: `discoverPods` with
    /// `podDiscoveryConfig.socketPort`, 5557).
    pub discover_events_port: Option<u16>,
    /// Likewise for the replay socket (`replaySocketPort`; off by default).
    pub discover_replay_port: Option<u16>,
    /// Endpoints to bind for pods that dial in (llm-d: `zmqEndpoint`):
    /// bound when the feed is built from a plan, else by `Feed::start`
    /// (an endpoint that cannot be bound fails it).
    pub bind: Vec<String>,
    /// Connections the bound sockets serve at once (4,096; each is a thread
    /// and a buffer); more are refused and counted in
    /// `llmd_feed_bound_refused_total`.
    pub max_bound_connections: usize,
    /// Bytes of unfinished messages the bound sockets' connections hold
    /// together (256 MiB; each connection alone is bounded by `limits`): a
    /// frame past it ends its connection, counted in
    /// `llmd_feed_bound_malformed_total`. Without it 4,096 connections
    /// could each hold a 64 MiB message.
    pub max_bound_bytes: usize,
    /// On first contact with a publisher whose numbering is past 0, replay
    /// what it still buffers so the index starts with the pod's cache.
    pub catch_up: bool,
    /// See [`UnrecoverableGap`].
    pub on_unrecoverable_gap: UnrecoverableGap,
    /// Deadline of one replay request.
    pub replay_timeout: Duration,
    /// Connect and handshake deadline for event sockets.
    pub connect_timeout: Duration,
    /// Reconnect backoff: first wait, doubling up to the max.
    pub reconnect_min: Duration,
    /// Longest reconnect wait.
    pub reconnect_max: Duration,
    /// After this long with nothing received on an event connection, send a
    /// ZMTP `PING`; when the next interval brings nothing either (not even
    /// the `PONG`), the connection is taken for dead, closed and dialed
    /// again (counted in `llmd_feed_heartbeat_timeouts_total`). A peer gone
    /// without closing its connection is found within two intervals; `None`
    /// (or zero) sends none, and such a connection waits until the pod is
    /// removed. Only peers that speak ZMTP 3.1 (libzmq 4.2 and later, as
    /// every vLLM ships) are sent `PING`; a ZMTP 3.0 peer's connection is
    /// closed after 30 intervals with nothing received (counted the same).
    /// 10 s.
    pub heartbeat_interval: Option<Duration>,
    /// Bounds on ZMQ messages from the network.
    pub limits: Limits,
    /// Scrape pods' `/metrics` (those added without their own metrics URL).
    /// Off when the configuration's data source asks for https, which the
    /// feed does not speak: scraping over plain http would fail and, after
    /// `remove_after`, remove every pod. True.
    pub scrape: bool,
    /// Scrape period (llm-d: the data source's `interval`, 50 ms tick).
    pub scrape_interval: Duration,
    /// Deadline of one scrape.
    pub scrape_timeout: Duration,
    /// Largest `/metrics` body accepted.
    pub max_scrape_bytes: usize,
    /// `/metrics` path for pods without a metrics URL (llm-d: `path`).
    pub metrics_path: String,
    /// Port to scrape instead of the pod's own (llm-d: the data source's
    /// `port`); `None` uses the address's port.
    pub metrics_port: Option<u16>,
    /// Consecutive failed scrapes before a pod is marked down.
    pub down_after_failures: u32,
    /// Time without a successful scrape before a down pod is removed from
    /// the scheduler (its index entries dropped); it is registered again
    /// when it answers.
    pub remove_after: Duration,
}

/// Most ingest workers ([`FeedOptions::concurrency`]): each is a thread.
pub const MAX_CONCURRENCY: usize = 1024;
/// Most batches queued per worker ([`FeedOptions::queue_capacity`]): each
/// queue's slots are allocated when the feed starts.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

impl FeedOptions {
    /// Why these settings cannot run, if they cannot: no topic at all
    /// (nothing would be subscribed), or more workers or queue slots than
    /// the bounds above. `Feed::start` refuses such settings with this
    /// message. Durations need no check: each is used saturating, and
    /// `Duration::MAX` means no limit.
    pub fn check(&self) -> Result<(), String> {
        if self.topics.is_empty() {
            return Err(
                "topics is empty: the feed would subscribe to nothing (\"\" takes every topic)"
                    .into(),
            );
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "concurrency {} is over {MAX_CONCURRENCY} ingest workers",
                self.concurrency
            ));
        }
        if self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(format!(
                "queue_capacity {} is over {MAX_QUEUE_CAPACITY} batches per worker",
                self.queue_capacity
            ));
        }
        Ok(())
    }
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            topics: vec!["kv@".into()],
            concurrency: 4,
            queue_capacity: 4096,
            queue_max_bytes: 64 << 20,
            discover_events_port: None,
            discover_replay_port: None,
            bind: Vec::new(),
            max_bound_connections: 4096,
            max_bound_bytes: 256 << 20,
            catch_up: true,
            on_unrecoverable_gap: UnrecoverableGap::Clear,
            replay_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(5),
            heartbeat_interval: Some(Duration::from_secs(10)),
            limits: Limits::default(),
            scrape: true,
            scrape_interval: Duration::from_millis(50),
            scrape_timeout: Duration::from_secs(1),
            max_scrape_bytes: 16 << 20,
            metrics_path: "/metrics".into(),
            metrics_port: None,
            down_after_failures: 3,
            remove_after: Duration::from_secs(30),
        }
    }
}
