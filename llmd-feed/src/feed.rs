//! The feed: pods, their threads, the bound event sockets and the ingest
//! workers, started and stopped together.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llmd_kvindex::events::zmq::parse_message;
use llmd_sched::{ScheduleError, Scheduler};

use crate::config::FeedSetting;
use crate::discovery::{self, Discovery};
use crate::ingest::{worker, Drops, Queued, Work};
use crate::options::FeedOptions;
use crate::overrides::FeedOverrides;
use crate::pod::{unix_ns, Pod, PodRef, PodSpec, PodStats, PodStatsSnapshot, Source, Stopper};
use crate::scrape;
use crate::zmq::{dial, subscribe, ByteBudget, Heartbeat, Message, TcpEndpoint, WireError};
use crate::FeedError;

/// Lifecycle of a feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Running,
    Stopped,
}

/// Pause after a failed `accept` (say, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Counters that belong to no pod.
#[derive(Debug, Default)]
pub(crate) struct FeedCounters {
    /// Messages on a bound socket whose topic names no known pod.
    pub unknown_publisher: AtomicU64,
    /// Messages whose topic starts with no subscribed prefix, dropped on
    /// receipt as a libzmq SUB socket drops them (a publisher that does not
    /// filter on its side, or one that dialed a bound socket).
    pub topic_filtered: AtomicU64,
    /// Connections or messages on a bound socket dropped as malformed.
    pub bound_malformed: AtomicU64,
    /// Connections to a bound socket not served: over
    /// `FeedOptions::max_bound_connections`, a failed `accept` (out of
    /// descriptors), or no thread or read timeout to serve one with.
    pub bound_refused: AtomicU64,
    /// Connections to a bound socket closed for not answering a heartbeat.
    pub bound_heartbeat_timeouts: AtomicU64,
    /// Discovery failures: pods a sync could not add or remove, and DNS
    /// lookups or endpoint files that could not be read.
    pub discovery_errors: AtomicU64,
}

pub(crate) struct Inner {
    pub sched: Arc<Scheduler>,
    pub opts: FeedOptions,
    pub pods: RwLock<BTreeMap<String, PodRef>>,
    /// Held across a pod's removal (map and scheduler) and a pod's
    /// registration, so that a pod re-added under a name being removed
    /// finds neither the old pod nor its endpoint. The map itself is not
    /// held across the removal's table scan (messages read it).
    membership_changes: Mutex<()>,
    pub counters: FeedCounters,
    state: Mutex<State>,
    /// True between start and stop (read per message, without the lock).
    started: std::sync::atomic::AtomicBool,
    stop: Stopper,
    /// Per ingest worker: its queue, and the pods with a batch dropped at
    /// that full queue, which the worker resyncs as soon as it can.
    queues: RwLock<Vec<(SyncSender<Work>, Drops, Queued)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    bound: Mutex<Vec<TcpEndpoint>>,
    /// `FeedOptions::bind` endpoints not bound yet: [`Feed::with_plan`]
    /// binds them at once, [`Feed::start`] those still left.
    bind_pending: Mutex<Vec<String>>,
    /// Discovery sources, and how many of them (the first ones) run.
    discoveries: Mutex<(Vec<Discovery>, usize)>,
    settings: Vec<FeedSetting>,
    /// What the bound sockets' connections may hold together
    /// (`FeedOptions::max_bound_bytes`).
    bound_budget: Arc<ByteBudget>,
}

/// The live connection between vLLM pods and a [`Scheduler`]: KV events over
/// ZMQ (with replay), `/metrics` scraping and pod discovery, each on its own
/// threads. See the crate documentation.
pub struct Feed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("pods", &self.inner.pods.read().unwrap().len())
            .field("state", &*self.inner.state.lock().unwrap())
            .finish()
    }
}

impl Feed {
    /// A feed driving `sched` with `opts`. Nothing runs until
    /// [`Feed::start`], which also binds `opts.bind`; pods may be added
    /// before or after.
    pub fn new(sched: Arc<Scheduler>, opts: FeedOptions) -> Feed {
        let bind = opts.bind.clone();
        Feed {
            inner: Arc::new(Inner {
                sched,
                bound_budget: Arc::new(ByteBudget::new(opts.max_bound_bytes)),
                opts,
                pods: RwLock::new(BTreeMap::new()),
                membership_changes: Mutex::new(()),
                counters: FeedCounters::default(),
                state: Mutex::new(State::Idle),
                started: std::sync::atomic::AtomicBool::new(false),
                stop: Stopper::default(),
                queues: RwLock::new(Vec::new()),
                threads: Mutex::new(Vec::new()),
                bound: Mutex::new(Vec::new()),
                bind_pending: Mutex::new(bind),
                discoveries: Mutex::new((Vec::new(), 0)),
                settings: Vec::new(),
            }),
        }
    }

    /// A feed that executes what the scheduler's configuration asks of the
    /// data plane (see [`crate::config::plan`]): a precise producer's
    /// `kvEventsConfig` (topic filter, concurrency, per-pod subscription at
    /// `socketPort` / `replaySocketPort`, a bound `zmqEndpoint`), the
    /// `metrics-data-source` (path, port, interval) and `file-discovery`.
    /// [`Feed::settings`] lists each setting, executed or not.
    pub fn from_scheduler(sched: Arc<Scheduler>) -> Result<Feed, FeedError> {
        let plan = crate::config::plan(sched.config_report())?;
        Feed::with_plan(sched, plan.options, plan.settings, plan.discovery)
    }

    /// As [`Feed::from_scheduler`], with the host's settings over the
    /// configuration's (each reported in [`Feed::settings`] as the host's).
    pub fn from_scheduler_with(
        sched: Arc<Scheduler>,
        overrides: &FeedOverrides,
    ) -> Result<Feed, FeedError> {
        let mut plan = crate::config::plan(sched.config_report())?;
        overrides.apply(&mut plan.options)?;
        plan.settings.extend(overrides.settings());
        Feed::with_plan(sched, plan.options, plan.settings, plan.discovery)
    }

    /// As [`Feed::from_scheduler`] with options the host adjusted (the
    /// plan's `options.bind` endpoints are bound, its discovery sources
    /// added, its settings reported).
    pub fn with_plan(
        sched: Arc<Scheduler>,
        options: FeedOptions,
        settings: Vec<FeedSetting>,
        discovery: Vec<Discovery>,
    ) -> Result<Feed, FeedError> {
        let mut feed = Feed::new(sched, options);
        Arc::get_mut(&mut feed.inner)
            .expect("a new feed is not shared")
            .settings = settings;
        feed.bind_pending()?;
        for d in discovery {
            feed.add_discovery(d)?;
        }
        Ok(feed)
    }

    /// The configuration settings this feed was built from, each marked
    /// executed or not (empty for [`Feed::new`]).
    pub fn settings(&self) -> &[FeedSetting] {
        &self.inner.settings
    }

    /// The scheduler this feed drives.
    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.inner.sched
    }

    /// The settings.
    pub fn options(&self) -> &FeedOptions {
        &self.inner.opts
    }

    /// Follows a pod: registers it in the scheduler (unless an endpoint of
    /// that name exists), and once the feed runs, subscribes to its events
    /// and scrapes its `/metrics`. A pod without an events endpoint gets
    /// `tcp://<host>:<discover_events_port>` when that option is set.
    /// A stopped feed refuses it ([`FeedError::Config`]).
    pub fn add_pod(&self, spec: PodSpec) -> Result<(), FeedError> {
        self.refuse_if_stopped()?;
        self.inner.add_pod(spec, Source::Host, None)
    }

    /// A stopped feed cannot start again: pods, discovery sources and
    /// bound sockets given to it would never be followed (an endpoint
    /// registered for a pod nothing updates, a socket nothing reads).
    fn refuse_if_stopped(&self) -> Result<(), FeedError> {
        if *self.inner.state.lock().unwrap() == State::Stopped {
            return Err(FeedError::Config(
                "the feed is stopped: nothing would follow it; create a new feed".into(),
            ));
        }
        Ok(())
    }

    /// Stops following a pod and removes its endpoint (and index entries)
    /// from the scheduler; batches still in flight are not applied.
    pub fn remove_pod(&self, name: &str) -> Result<(), FeedError> {
        self.inner.remove_pod(name)
    }

    /// Makes the followed pods exactly `specs` (for hosts with their own
    /// discovery, e.g. a Kubernetes controller's callback): new names are
    /// added, missing ones removed, changed ones replaced. Pods found by DNS
    /// or file discovery are left alone.
    /// A stopped feed refuses it ([`FeedError::Config`]).
    pub fn sync_pods(&self, specs: Vec<PodSpec>) -> Result<(), FeedError> {
        self.refuse_if_stopped()?;
        self.inner.sync(Source::Host, specs)
    }

    /// Names of the followed pods.
    pub fn pods(&self) -> Vec<String> {
        self.inner.pods.read().unwrap().keys().cloned().collect()
    }

    /// Binds a SUB socket at `endpoint` (`tcp://*:5557`) for pods that dial
    /// in (vLLM with a `tcp://host:port` endpoint; llm-d-inference-sim).
    /// Messages are matched to pods by their topic's pod part (`kv@<pod>@…`:
    /// a pod name or its address's host). Returns the bound endpoint as this
    /// host dials it (port 0 picks one; a wildcard host `*` is given as
    /// `127.0.0.1`). Can be called before or after [`Feed::start`], not
    /// after [`Feed::stop`].
    pub fn bind_events(&self, endpoint: &str) -> Result<TcpEndpoint, FeedError> {
        let ep = TcpEndpoint::parse(endpoint).map_err(FeedError::Config)?;
        // Held until the accept loop is registered: a concurrent stop then
        // finds it, wakes it and joins it.
        let state = self.inner.state.lock().unwrap();
        if *state == State::Stopped {
            return Err(FeedError::Config(
                "the feed is stopped: nothing would read the socket; create a new feed".into(),
            ));
        }
        let l = TcpListener::bind(ep.socket_addr())?;
        let port = l.local_addr()?.port();
        let local = TcpEndpoint {
            host: if ep.host == "*" {
                "127.0.0.1".into()
            } else {
                ep.host
            },
            port,
        };
        self.inner.bound.lock().unwrap().push(local.clone());
        let inner = self.inner.clone();
        let t = std::thread::Builder::new()
            .name(format!("llmd-feed-bind-{port}"))
            .spawn(move || inner.accept_loop(l))?;
        self.inner.threads.lock().unwrap().push(t);
        drop(state);
        Ok(local)
    }

    /// Binds the `FeedOptions::bind` endpoints not bound yet.
    fn bind_pending(&self) -> Result<(), FeedError> {
        let pending = std::mem::take(&mut *self.inner.bind_pending.lock().unwrap());
        for ep in pending {
            self.bind_events(&ep)?;
        }
        Ok(())
    }

    /// The endpoints bound for pods that dial in ([`Feed::bind_events`] and
    /// `FeedOptions::bind`, bound by [`Feed::start`], or when the feed is
    /// built from a configuration's `zmqEndpoint`), as this host dials them:
    /// a port 0 asked for is the port given, a wildcard host `*` is
    /// `127.0.0.1`. Empty once the feed is stopped (the sockets are closed).
    pub fn bound_endpoints(&self) -> Vec<TcpEndpoint> {
        self.inner.bound.lock().unwrap().clone()
    }

    /// Adds a discovery source (DNS or an endpoint file); it runs while the
    /// feed runs and adds and removes its own pods.
    /// A stopped feed refuses it ([`FeedError::Config`]).
    pub fn add_discovery(&self, d: Discovery) -> Result<(), FeedError> {
        d.validate()?;
        self.refuse_if_stopped()?;
        // Added before the state is read: either this call sees the feed
        // running and starts the source, or a start not yet running then
        // finds it; whichever comes second finds it started already.
        self.inner.discoveries.lock().unwrap().0.push(d);
        if *self.inner.state.lock().unwrap() == State::Running {
            self.inner.spawn_discoveries()?;
        }
        Ok(())
    }

    /// Starts the workers, the pods' threads and the discovery sources. When
    /// a thread cannot be started the feed is stopped (what did start is
    /// joined) and the error returned: it never runs half started.
    pub fn start(&self) -> Result<(), FeedError> {
        let r = (self.inner.opts.check().map_err(FeedError::Config))
            .and_then(|()| self.bind_pending())
            .and_then(|()| self.start_all());
        if r.is_err() {
            self.stop();
        }
        r
    }

    fn start_all(&self) -> Result<(), FeedError> {
        let inner = &self.inner;
        // Held until the workers and their queues are in place: a `stop`
        // racing this start waits for them, then stops and joins them (it
        // would otherwise join workers whose queues it never saw, and wait
        // for them for good).
        let mut st = inner.state.lock().unwrap();
        match *st {
            State::Running => return Ok(()),
            State::Stopped => {
                return Err(FeedError::Config(
                    "a stopped feed cannot be started again; create a new one".into(),
                ))
            }
            State::Idle => *st = State::Running,
        }
        let mut queues = Vec::new();
        for i in 0..inner.opts.concurrency {
            let (tx, rx) = sync_channel(inner.opts.queue_capacity.max(1));
            let (drops, queued) = (Drops::default(), Queued::default());
            let (me, d, q) = (inner.clone(), drops.clone(), queued.clone());
            let t = std::thread::Builder::new()
                .name(format!("llmd-feed-ingest-{i}"))
                .spawn(move || worker(&me.sched, &me.opts, rx, &d, &q))?;
            inner.threads.lock().unwrap().push(t);
            queues.push((tx, drops, queued));
        }
        *inner.queues.write().unwrap() = queues;
        inner.started.store(true, Ordering::Release);
        drop(st);
        let pods: Vec<PodRef> = inner.pods.read().unwrap().values().cloned().collect();
        for p in pods {
            inner.spawn_pod(&p)?;
        }
        inner.spawn_discoveries()
    }

    /// Stops every thread and closes every socket; waits for them (a replay
    /// in flight on a worker ends by its `replay_timeout`, and no further
    /// replay starts). Pods stay registered in the scheduler.
    pub fn stop(&self) {
        let inner = &self.inner;
        {
            let mut st = inner.state.lock().unwrap();
            if *st == State::Stopped {
                return;
            }
            *st = State::Stopped;
        }
        inner.started.store(false, Ordering::Release);
        inner.stop.stop();
        for p in inner.pods.read().unwrap().values() {
            p.stop.stop();
        }
        // Wake the accept loops.
        for ep in inner.bound.lock().unwrap().iter() {
            let _ = dial(ep, std::time::Duration::from_millis(200));
        }
        inner.queues.write().unwrap().clear();
        let threads: Vec<JoinHandle<()>> = inner.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
        // Their sockets closed with their accept loops.
        inner.bound.lock().unwrap().clear();
    }

    /// True between [`Feed::start`] and [`Feed::stop`].
    pub fn is_running(&self) -> bool {
        *self.inner.state.lock().unwrap() == State::Running
    }

    /// Per-pod counters, by pod name.
    pub fn stats(&self) -> BTreeMap<String, PodStatsSnapshot> {
        self.inner
            .pods
            .read()
            .unwrap()
            .iter()
            .map(|(k, p)| (k.clone(), p.snapshot()))
            .collect()
    }

    /// Messages on bound sockets whose topic named no followed pod.
    pub fn unknown_publisher_messages(&self) -> u64 {
        self.inner
            .counters
            .unknown_publisher
            .load(Ordering::Relaxed)
    }

    /// The `llmd_feed_*` metrics in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        crate::metrics::render(&self.inner)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// Counts a discovery failure (a read, or a pod a sync could not follow).
    pub(crate) fn discovery_failed(&self) {
        self.counters
            .discovery_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    fn running(&self) -> bool {
        *self.state.lock().unwrap() == State::Running
    }

    /// Follows `spec` from `source`; `described` is the scheduler
    /// description to register it with when the spec gives none (a pod
    /// re-registered for a changed spec keeps its old one). What a later
    /// sync compares with is the spec as given.
    pub(crate) fn add_pod(
        self: &Arc<Self>,
        mut spec: PodSpec,
        source: Source,
        described: Option<llmd_sched::Endpoint>,
    ) -> Result<(), FeedError> {
        let requested = spec.clone();
        if spec.endpoint.is_none() {
            spec.endpoint = described;
        }
        // A pod given its own metrics URL is scraped at it; the others only
        // when the feed scrapes at all (not when the config asks for https).
        spec.scrape &= self.opts.scrape || spec.metrics_url.is_some();
        if spec.events.is_none() {
            if let Some(port) = self.opts.discover_events_port {
                spec.events = Some(format!("tcp://{}:{port}", bracket(spec.host())));
            }
        }
        if spec.replay.is_none() {
            if let Some(port) = self.opts.discover_replay_port {
                spec.replay = Some(format!("tcp://{}:{port}", bracket(spec.host())));
            }
        }
        if spec.metrics_url.is_none() {
            if let Some(port) = self.opts.metrics_port {
                spec.metrics_url = Some(format!(
                    "http://{}:{port}{}",
                    bracket(spec.host()),
                    self.opts.metrics_path
                ));
            }
        }
        let pod;
        {
            let _changes = self.membership_changes.lock().unwrap();
            // Read under the membership lock: a removal of the same name
            // racing this add must not lend it the removed endpoint's
            // description (its address and labels).
            if let Ok(existing) = self.sched.endpoint_state(&spec.name) {
                // The host registered it (labels, model): keep that description.
                spec.endpoint = Some(existing.info().clone());
            }
            pod = Arc::new(Pod::new(spec, requested, source, &self.opts.metrics_path)?);
            let mut pods = self.pods.write().unwrap();
            // Under the map's lock: `stop` marks the feed stopped before it
            // stops the pods it finds there, so a pod is either found and
            // stopped, or refused here (a discovery sync racing `stop`).
            if self.stop.is_stopped() {
                return Err(FeedError::Config(
                    "the feed is stopped: nothing would follow the pod".into(),
                ));
            }
            if pods.contains_key(pod.name()) {
                return Err(FeedError::Config(format!(
                    "pod '{}' is already followed",
                    pod.name()
                )));
            }
            register(&self.sched, &pod)?;
            pods.insert(pod.name().to_string(), pod.clone());
        }
        if self.running() {
            if let Err(e) = self.spawn_pod(&pod) {
                // Not followed after all: threads already started stop with
                // the pod, and it is not left routable with nothing keeping
                // it current.
                let _ = self.remove_pod(pod.name());
                return Err(e);
            }
        }
        Ok(())
    }

    pub(crate) fn remove_pod(&self, name: &str) -> Result<(), FeedError> {
        // Membership changes wait until the endpoint is gone: a pod re-added
        // under the same name meanwhile would otherwise find the old
        // endpoint, keep it, and lose it to this removal (followed, but not
        // routable). Lock order: membership changes, pods, a pod's
        // membership, the scheduler.
        let _changes = self.membership_changes.lock().unwrap();
        let pod = self
            .pods
            .write()
            .unwrap()
            .remove(name)
            .ok_or_else(|| FeedError::UnknownPod(name.to_string()))?;
        let _membership = pod.membership.lock().unwrap();
        pod.stop.stop();
        match self.sched.remove_endpoint(name) {
            Ok(()) | Err(ScheduleError::UnknownEndpoint(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn sync(
        self: &Arc<Self>,
        source: Source,
        specs: Vec<PodSpec>,
    ) -> Result<(), FeedError> {
        // A discovery thread caught mid-lookup by `stop` changes nothing.
        if self.stop.is_stopped() {
            return Ok(());
        }
        let current: Vec<(String, PodSpec)> = self
            .pods
            .read()
            .unwrap()
            .values()
            .filter(|p| p.source == source)
            .map(|p| (p.name().to_string(), p.requested.clone()))
            .collect();
        // Every pod is handled even when one fails (a bad entry in an
        // endpoint file must not hide the ones after it); each failure is
        // counted and the first returned.
        let mut first = None;
        let mut failed = |e: FeedError| {
            self.discovery_failed();
            first.get_or_insert(e);
        };
        // A name listed twice: the first entry counts, the others are
        // errors (taking one to compare and another to add would remove and
        // add the pod again at every sync).
        let mut seen = std::collections::HashSet::new();
        let specs: Vec<PodSpec> = specs
            .into_iter()
            .filter(|s| {
                let first = seen.insert(s.name.clone());
                if !first {
                    failed(FeedError::Config(format!(
                        "pod '{}' is listed more than once; the first entry is followed",
                        s.name
                    )));
                }
                first
            })
            .collect();
        let wanted: BTreeMap<&str, &PodSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
        // A pod whose spec changed is removed and added again: the
        // description it was registered with (the host's labels and model)
        // goes over to the new registration unless the new spec gives one.
        let mut described: BTreeMap<String, llmd_sched::Endpoint> = BTreeMap::new();
        for (name, spec) in &current {
            match wanted.get(name.as_str()) {
                Some(w) if same(w, spec) => {}
                w => {
                    if w.is_some_and(|w| w.endpoint.is_none()) {
                        if let Ok(ep) = self.sched.endpoint_state(name) {
                            described.insert(name.clone(), ep.info().clone());
                        }
                    }
                    if let Err(e) = self.remove_pod(name) {
                        failed(e);
                    }
                }
            }
        }
        for s in specs {
            let owner = self
                .pods
                .read()
                .unwrap()
                .get(&s.name)
                .map(|p| p.source.clone());
            if let Some(o) = owner.as_ref().filter(|o| **o != source) {
                // Followed from another source (the host, another file or
                // name): this entry is not followed, and that is counted.
                failed(FeedError::Config(format!(
                    "pod '{}' is followed already ({}); this entry is not",
                    s.name,
                    o.describe()
                )));
                continue;
            }
            if owner.is_none() {
                let carried = described.remove(&s.name).map(|mut ep| {
                    ep.address.clone_from(&s.address);
                    ep
                });
                if let Err(e) = self.add_pod(s, source.clone(), carried) {
                    failed(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn spawn(&self, name: String, f: impl FnOnce() + Send + 'static) -> Result<(), FeedError> {
        // A NUL would make the name refused with a panic (pod names with one
        // are refused before; this keeps any other name from doing it).
        let name = name.replace('\0', "?");
        let t = std::thread::Builder::new().name(name).spawn(f)?;
        let mut threads = self.threads.lock().unwrap();
        threads.retain(|t| !t.is_finished());
        threads.push(t);
        Ok(())
    }

    fn spawn_pod(self: &Arc<Self>, pod: &PodRef) -> Result<(), FeedError> {
        if pod.spawned.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        for (rank, ep) in pod.events.iter().enumerate() {
            let (me, p, ep) = (self.clone(), pod.clone(), ep.clone());
            self.spawn(format!("llmd-feed-sub-{}", pod.name()), move || {
                me.subscriber(&p, rank as i64, &ep)
            })?;
        }
        if pod.metrics.is_some() {
            let (me, p) = (self.clone(), pod.clone());
            self.spawn(format!("llmd-feed-scrape-{}", pod.name()), move || {
                scrape::run(&me.sched, &me.opts, &p, &me.stop)
            })?;
        }
        Ok(())
    }

    /// Starts the discovery sources not started yet, each once.
    fn spawn_discoveries(self: &Arc<Self>) -> Result<(), FeedError> {
        let mut ds = self.discoveries.lock().unwrap();
        // A source added while the feed stops is not started after it.
        if self.stop.is_stopped() {
            return Ok(());
        }
        while ds.1 < ds.0.len() {
            let (id, d) = (ds.1, ds.0[ds.1].clone());
            ds.1 += 1;
            let me = self.clone();
            self.spawn(format!("llmd-feed-discovery-{id}"), move || {
                discovery::run(&me, id, &d, &me.stop)
            })?;
        }
        Ok(())
    }

    /// Connects (and reconnects, with backoff) to one rank's PUB socket.
    fn subscriber(&self, pod: &PodRef, rank: i64, ep: &TcpEndpoint) {
        let st = &pod.stats;
        let mut backoff = self.opts.reconnect_min;
        let stopped = || pod.stop.is_stopped() || self.stop.is_stopped();
        while !stopped() {
            let conn = dial(ep, self.opts.connect_timeout)
                .map_err(WireError::from)
                .and_then(|s| {
                    // Closed with the connection (or shut at once when the
                    // pod is being stopped: the handshake then fails).
                    let tracked = pod.stop.track(&s);
                    subscribe(
                        s,
                        &self.opts.topics,
                        self.opts.limits,
                        self.opts.connect_timeout,
                    )
                    .map(|c| (c, tracked))
                });
            let (mut conn, _tracked) = match conn {
                Ok(c) => c,
                Err(e) => {
                    if matches!(e, WireError::Protocol(_)) {
                        PodStats::inc(&st.malformed);
                    }
                    PodStats::inc(&st.connect_failures);
                    if pod.stop.wait(backoff) {
                        return;
                    }
                    backoff = backoff.saturating_mul(2).min(self.opts.reconnect_max);
                    continue;
                }
            };
            if st.connects.fetch_add(1, Ordering::Relaxed) > 0 {
                PodStats::inc(&st.reconnects);
            }
            backoff = self.opts.reconnect_min;
            // (Failing to set the read timeout ends the connection.)
            if let Ok(mut hb) = Heartbeat::start(&conn, self.opts.heartbeat_interval) {
                loop {
                    match hb.recv(&mut conn) {
                        Ok(m) if !self.subscribed(&m) => {
                            self.counters.topic_filtered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(m) => {
                            if !self.dispatch(pod, Some(rank), m) {
                                PodStats::inc(&st.malformed);
                            }
                        }
                        Err(WireError::Protocol(_)) => {
                            PodStats::inc(&st.malformed);
                            break;
                        }
                        Err(WireError::Io(_)) => {
                            if hb.lost() {
                                PodStats::inc(&st.heartbeat_timeouts);
                            }
                            break;
                        }
                    }
                }
            }
            if pod.stop.wait(backoff) {
                return;
            }
        }
    }

    /// Whether `m`'s topic (its first frame) starts with a subscribed
    /// prefix.
    fn subscribed(&self, m: &Message) -> bool {
        let topic = m.first().map_or(&[][..], Vec::as_slice);
        self.opts
            .topics
            .iter()
            .any(|t| topic.starts_with(t.as_bytes()))
    }

    /// Queues one event message; false when it is malformed.
    fn dispatch(&self, pod: &PodRef, rank: Option<i64>, m: Message) -> bool {
        let frames: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
        let Ok((_, seq, _)) = parse_message(&frames) else {
            return false;
        };
        let mut m = m;
        let payload = m.pop().unwrap_or_default();
        let w = Work {
            pod: pod.clone(),
            rank,
            seq,
            payload,
            received: Instant::now(),
        };
        if !self.started.load(Ordering::Acquire) {
            // Between bind_events and start (or after stop): nothing applies.
            PodStats::inc(&pod.stats.not_applied);
            return true;
        }
        if self.opts.concurrency == 0 {
            // Inline: this connection's thread applies its own batches.
            crate::ingest::process(&self.sched, &self.opts, w);
            return true;
        }
        let queues = self.queues.read().unwrap();
        if queues.is_empty() {
            PodStats::inc(&pod.stats.not_applied);
            return true;
        }
        let (queue, drops, queued) = &queues[(pod.shard_hash % queues.len() as u64) as usize];
        // Bounded in bytes too: a publisher (or anyone who can dial a bound
        // socket) sending large batches faster than they apply must not
        // grow the queue to count × message size. One message always fits
        // an empty queue.
        let len = w.payload.len();
        let before = queued.fetch_add(len, Ordering::AcqRel);
        let sent = if before > 0 && before + len > self.opts.queue_max_bytes {
            Err(TrySendError::Full(w))
        } else {
            queue.try_send(w)
        };
        if sent.is_err() {
            queued.fetch_sub(len, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => {}
            // The worker is gone (the feed is stopping): not applied.
            Err(TrySendError::Disconnected(_)) => PodStats::inc(&pod.stats.not_applied),
            Err(TrySendError::Full(_)) => {
                PodStats::inc(&pod.stats.queue_drops);
                if !pod.dropped.swap(true, Ordering::AcqRel) {
                    drops.lock().unwrap().push(pod.clone());
                }
            }
        }
        true
    }

    fn accept_loop(self: Arc<Self>, l: TcpListener) {
        let cap = crate::conn_cap::ConnectionCap::new(self.opts.max_bound_connections);
        for s in l.incoming() {
            if self.stop.is_stopped() {
                return;
            }
            let s = match s {
                Ok(s) => s,
                // Out of descriptors, or a transient failure: counted, and
                // waited out instead of spinning on an accept that fails
                // at once.
                Err(_) => {
                    self.counters.bound_refused.fetch_add(1, Ordering::Relaxed);
                    if self.stop.wait(ACCEPT_BACKOFF) {
                        return;
                    }
                    continue;
                }
            };
            let Some(slot) = cap.admit() else {
                let _ = s.shutdown(std::net::Shutdown::Both);
                self.counters.bound_refused.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let Some(id) = self.stop.track_id(&s) else {
                return;
            };
            let me = self.clone();
            // A thread that does not start drops the closure and its slot.
            let spawned = self.spawn("llmd-feed-bound".into(), move || {
                let _slot = slot;
                me.bound_connection(s);
                me.stop.untrack(id);
            });
            if spawned.is_err() {
                self.stop.untrack(id);
                self.counters.bound_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One pod that dialed a bound socket: messages go to the pod their
    /// topic names.
    fn bound_connection(&self, s: std::net::TcpStream) {
        let mut conn = match subscribe(
            s,
            &self.opts.topics,
            self.opts.limits,
            self.opts.connect_timeout,
        ) {
            Ok(c) => c,
            Err(_) => {
                self.counters
                    .bound_malformed
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        conn.set_budget(self.bound_budget.clone());
        let Ok(mut hb) = Heartbeat::start(&conn, self.opts.heartbeat_interval) else {
            self.counters.bound_refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        loop {
            let m = match hb.recv(&mut conn) {
                Ok(m) => m,
                Err(WireError::Protocol(_)) => {
                    self.counters
                        .bound_malformed
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(WireError::Io(_)) => {
                    if hb.lost() {
                        self.counters
                            .bound_heartbeat_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            };
            if !self.subscribed(&m) {
                self.counters.topic_filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let pod = {
                let frames: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
                match parse_message(&frames) {
                    Ok((topic, _, _)) => self.pod_for_topic(topic.pod),
                    Err(_) => {
                        self.counters
                            .bound_malformed
                            .fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            };
            match pod {
                Some(p) => {
                    self.dispatch(&p, None, m);
                }
                None => {
                    self.counters
                        .unknown_publisher
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The pod a bound socket's topic names: by pod name, else by host or
    /// address when exactly one followed pod has it. Pods sharing a host
    /// (host networking, several engines on one machine) cannot be told
    /// apart by it: such a message is counted as from an unknown publisher
    /// rather than given to one of them.
    fn pod_for_topic(&self, id: &str) -> Option<PodRef> {
        let pods = self.pods.read().unwrap();
        pods.get(id).cloned().or_else(|| {
            let mut found = pods
                .values()
                .filter(|p| p.spec.host() == id || p.spec.address == id);
            let one = found.next().cloned();
            found.next().is_none().then_some(one).flatten()
        })
    }
}

/// Registers the pod's endpoint unless the scheduler has one of that name.
pub(crate) fn register(sched: &Scheduler, pod: &Pod) -> Result<(), FeedError> {
    if sched.endpoint_state(pod.name()).is_err() {
        sched.add_endpoint(pod.endpoint.clone())?;
    }
    pod.stats.registered.store(true, Ordering::Release);
    pod.last_ok_unix_ns.store(unix_ns(), Ordering::Relaxed);
    Ok(())
}

fn same(a: &PodSpec, b: &PodSpec) -> bool {
    a.address == b.address
        && a.events == b.events
        && a.replay == b.replay
        && a.metrics_url == b.metrics_url
        && a.scrape == b.scrape
        && a.data_parallel_size == b.data_parallel_size
        && a.endpoint == b.endpoint
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
