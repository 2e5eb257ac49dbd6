//! A vLLM-style KV-event publisher: a PUB socket (bound, or dialing a bound
//! subscriber) sending `topic | seq | payload`, and the ROUTER replay socket
//! serving the last `buffer_steps` batches (SPEC §3.2–3.3). The fake fleet
//! (`llmd pods`) publishes with it; tests use it as a stand-in engine.

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::endpoint::TcpEndpoint;
use super::wire::{Connection, Limits, Sender, SocketType};

const HANDSHAKE: Duration = Duration::from_secs(5);
/// Connections served at once per bound socket; more are closed.
const MAX_CONNECTIONS: usize = 1024;
/// Distinct subscriptions a subscriber may hold; one more drops it.
const MAX_SUBSCRIPTIONS: usize = 1024;

const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reply layout of the replay socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayLayout {
    /// vLLM 0.26.0 and later: `topic, seq, payload`; end `"", ff×8, ""`.
    WithTopic,
    /// vLLM 0.9.0 – 0.25.1: `seq, payload`; end `ff×8, ""`.
    WithoutTopic,
    /// Completes the handshake, reads requests and answers none: a replay
    /// socket that stalls (before vLLM 0.33 one drops the replies past its
    /// send limit), for testing how a router copes.
    Silent,
}

struct Peer {
    tx: Sender,
    subs: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct Shared {
    topic: Vec<u8>,
    next_seq: AtomicU64,
    peers: Mutex<Vec<Peer>>,
    ring: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
    buffer_steps: usize,
    closed: AtomicBool,
    /// Clones of the live connections' sockets, to shut on close, by id
    /// (the last id given out first); each goes when its connection ends.
    streams: Mutex<(u64, Vec<(u64, TcpStream)>)>,
}

/// A connection's socket tracked for `close` while the connection lives.
struct Tracked<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        let mut v = self.shared.streams.lock().unwrap();
        if let Some(i) = v.1.iter().position(|(t, _)| *t == self.id) {
            v.1.swap_remove(i);
        }
    }
}

impl Shared {
    fn track(&self, s: &TcpStream) -> Tracked<'_> {
        let mut v = self.streams.lock().unwrap();
        v.0 += 1;
        let id = v.0;
        if let Ok(c) = s.try_clone() {
            v.1.push((id, c));
        }
        Tracked { shared: self, id }
    }
}

/// A KV-event publisher with vLLM's wire behaviour.
pub struct Publisher {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    events: Option<TcpEndpoint>,
    replay: Option<TcpEndpoint>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("events", &self.events)
            .field("replay", &self.replay)
            .finish()
    }
}

fn bind(ep: &str) -> std::io::Result<(TcpListener, TcpEndpoint)> {
    let e = TcpEndpoint::parse(ep).map_err(std::io::Error::other)?;
    let l = TcpListener::bind(e.socket_addr())?;
    let port = l.local_addr()?.port();
    let host = if e.host == "*" {
        "127.0.0.1".to_string()
    } else {
        e.host
    };
    Ok((l, TcpEndpoint { host, port }))
}

impl Publisher {
    /// A publisher with `topic`, keeping `buffer_steps` batches for replay.
    /// Nothing is sent until [`Publisher::bind`] or [`Publisher::connect`].
    pub fn new(topic: &str, buffer_steps: usize) -> Publisher {
        Publisher {
            shared: Arc::new(Shared {
                topic: topic.as_bytes().to_vec(),
                next_seq: AtomicU64::new(0),
                peers: Mutex::new(Vec::new()),
                ring: Mutex::new(VecDeque::new()),
                buffer_steps,
                closed: AtomicBool::new(false),
                streams: Mutex::new((0, Vec::new())),
            }),
            threads: Vec::new(),
            events: None,
            replay: None,
        }
    }

    /// Binds the PUB socket (vLLM's default, `tcp://*:5557`); port 0 picks a
    /// free one. Returns the endpoint subscribers connect to.
    pub fn bind(&mut self, endpoint: &str) -> std::io::Result<TcpEndpoint> {
        let local = self.accept(endpoint, serve_subscriber)?;
        self.events = Some(local.clone());
        Ok(local)
    }

    /// Binds `endpoint` and serves each connection with `serve` on its own
    /// thread until the publisher closes.
    fn accept(
        &mut self,
        endpoint: &str,
        serve: impl Fn(Arc<Shared>, TcpStream) + Send + Sync + Clone + 'static,
    ) -> std::io::Result<TcpEndpoint> {
        let (l, local) = bind(endpoint)?;
        let shared = self.shared.clone();
        self.threads.push(std::thread::spawn(move || {
            let cap = crate::conn_cap::ConnectionCap::new(MAX_CONNECTIONS);
            for s in l.incoming() {
                if shared.closed.load(Ordering::Acquire) {
                    break;
                }
                let Ok(s) = s else {
                    // Out of descriptors, say: wait rather than spin.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let Some(slot) = cap.admit() else {
                    continue; // dropped: closed
                };
                let (sh, serve) = (shared.clone(), serve.clone());
                // A thread the OS refuses drops the connection, not the socket.
                let _ = std::thread::Builder::new().spawn(move || {
                    let _slot = slot;
                    serve(sh, s)
                });
            }
        }));
        Ok(local)
    }

    /// Dials a bound subscriber (vLLM's mode for a `tcp://host:port` endpoint
    /// without `*`), redialing every 100 ms while it is unreachable or gone.
    pub fn connect(&mut self, endpoint: &str) -> std::io::Result<()> {
        let e = TcpEndpoint::parse(endpoint).map_err(std::io::Error::other)?;
        let shared = self.shared.clone();
        self.threads.push(std::thread::spawn(move || {
            while !shared.closed.load(Ordering::Acquire) {
                if let Ok(s) = TcpStream::connect(e.socket_addr()) {
                    serve_subscriber(shared.clone(), s);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        Ok(())
    }

    /// Serves the replay ROUTER socket on `endpoint` with `layout`.
    pub fn bind_replay(
        &mut self,
        endpoint: &str,
        layout: ReplayLayout,
    ) -> std::io::Result<TcpEndpoint> {
        let local = self.accept(endpoint, move |sh, s| serve_replay(sh, s, layout))?;
        self.replay = Some(local.clone());
        Ok(local)
    }

    /// Number of connected subscribers.
    pub fn subscribers(&self) -> usize {
        self.shared.peers.lock().unwrap().len()
    }

    /// Number of connected subscribers that have sent a subscription (a
    /// PUB drops what it publishes before that, as ZMQ does).
    pub fn subscribed(&self) -> usize {
        self.shared
            .peers
            .lock()
            .unwrap()
            .iter()
            .filter(|p| !p.subs.lock().unwrap().is_empty())
            .count()
    }

    /// Publishes a batch with the next sequence number; returns it.
    pub fn publish(&self, payload: &[u8]) -> u64 {
        let seq = self.shared.next_seq.fetch_add(1, Ordering::AcqRel);
        self.publish_with_seq(seq, payload);
        seq
    }

    /// Publishes with an explicit sequence number (to stage gaps, duplicates
    /// and restarts); the batch is also kept for replay. The next
    /// [`Publisher::publish`] continues from `seq + 1`.
    pub fn publish_with_seq(&self, seq: u64, payload: &[u8]) {
        let sh = &self.shared;
        sh.next_seq.store(seq.wrapping_add(1), Ordering::Release);
        let payload = Arc::new(payload.to_vec());
        {
            let mut ring = sh.ring.lock().unwrap();
            ring.push_back((seq, payload.clone()));
            while ring.len() > sh.buffer_steps {
                ring.pop_front();
            }
        }
        self.send_live(seq, &payload);
    }

    /// Keeps a batch for replay without sending it live (a batch the
    /// network "lost").
    pub fn record_only(&self, seq: u64, payload: &[u8]) {
        let sh = &self.shared;
        sh.next_seq.store(seq.wrapping_add(1), Ordering::Release);
        let mut ring = sh.ring.lock().unwrap();
        ring.push_back((seq, Arc::new(payload.to_vec())));
        while ring.len() > sh.buffer_steps {
            ring.pop_front();
        }
    }

    fn send_live(&self, seq: u64, payload: &[u8]) {
        let sh = &self.shared;
        let seq_bytes = seq.to_be_bytes();
        let frames: [&[u8]; 3] = [&sh.topic, &seq_bytes, payload];
        sh.peers.lock().unwrap().retain_mut(|p| {
            let wants = p
                .subs
                .lock()
                .unwrap()
                .iter()
                .any(|s| sh.topic.starts_with(s));
            if !wants {
                return true;
            }
            let sent = p.tx.send(&frames).is_ok();
            if !sent {
                // Dropped: its connection is shut too, or the subscriber
                // (whose PINGs the reader thread still answers) would wait
                // on it for good instead of dialing again.
                p.tx.shutdown();
            }
            sent
        });
    }

    /// Forgets the replay buffer and restarts numbering at 0 (an engine
    /// restart as its subscribers see it).
    pub fn restart(&self) {
        self.shared.ring.lock().unwrap().clear();
        self.shared.next_seq.store(0, Ordering::Release);
    }

    /// Closes every socket and stops the threads.
    pub fn close(&mut self) {
        let sh = &self.shared;
        sh.closed.store(true, Ordering::Release);
        for p in sh.peers.lock().unwrap().drain(..) {
            p.tx.shutdown();
        }
        for (_, s) in sh.streams.lock().unwrap().1.drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // Wake blocked accept() calls (a host name is resolved first).
        for ep in [&self.events, &self.replay].into_iter().flatten() {
            let addrs = super::resolve_within(&ep.socket_addr(), Duration::from_millis(500));
            if let Some(a) = addrs.ok().and_then(|a| a.into_iter().next()) {
                let _ = TcpStream::connect_timeout(&a, Duration::from_millis(200));
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.close();
    }
}

fn serve_subscriber(shared: Arc<Shared>, s: TcpStream) {
    if shared.closed.load(Ordering::Acquire) {
        return;
    }
    let _tracked = shared.track(&s);
    let Ok(mut conn) = Connection::handshake(s, SocketType::Pub, Limits::default(), HANDSHAKE)
    else {
        return;
    };
    let Ok(tx) = conn.sender() else { return };
    let _ = tx.set_write_timeout(Some(WRITE_TIMEOUT));
    let subs = Arc::new(Mutex::new(Vec::new()));
    shared.peers.lock().unwrap().push(Peer {
        tx,
        subs: subs.clone(),
    });
    // Subscriptions arrive as `0x01 prefix` / `0x00 prefix` messages; a
    // prefix subscribed twice needs two unsubscriptions, as in libzmq, and
    // is held once with its count.
    let mut counts: Vec<u32> = Vec::new();
    while let Ok(m) = conn.recv() {
        // An empty frame is no subscription message: ignored.
        let Some((&kind, prefix)) = m.first().and_then(|f| f.split_first()) else {
            continue;
        };
        let mut s = subs.lock().unwrap();
        let at = s.iter().position(|x| x[..] == *prefix);
        match (kind, at) {
            (1, Some(i)) => counts[i] = counts[i].saturating_add(1),
            (1, None) if s.len() >= MAX_SUBSCRIPTIONS => break,
            (1, None) => {
                s.push(prefix.to_vec());
                counts.push(1);
            }
            (0, Some(i)) => {
                counts[i] -= 1;
                if counts[i] == 0 {
                    s.remove(i);
                    counts.remove(i);
                }
            }
            _ => {}
        }
    }
    // The subscriber went away: forget it (and its socket) now rather than
    // at the next publish.
    shared
        .peers
        .lock()
        .unwrap()
        .retain(|p| !Arc::ptr_eq(&p.subs, &subs));
}

fn serve_replay(shared: Arc<Shared>, s: TcpStream, layout: ReplayLayout) {
    let _tracked = shared.track(&s);
    let Ok(mut conn) = Connection::handshake(s, SocketType::Router, Limits::default(), HANDSHAKE)
    else {
        return;
    };
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let end = u64::MAX.to_be_bytes();
    while let Ok(m) = conn.recv() {
        // A DEALER sends an empty delimiter, then the start; a REQ the same.
        let start = match m.as_slice() {
            [d, s] if d.is_empty() && s.len() == 8 => u64::from_be_bytes(s[..].try_into().unwrap()),
            [s] if s.len() == 8 => u64::from_be_bytes(s[..].try_into().unwrap()),
            _ => continue,
        };
        let batches: Vec<(u64, Arc<Vec<u8>>)> = shared
            .ring
            .lock()
            .unwrap()
            .iter()
            .filter(|(seq, _)| *seq >= start)
            .cloned()
            .collect();
        for (seq, p) in batches {
            let seq = seq.to_be_bytes();
            let r = match layout {
                ReplayLayout::WithTopic => conn.send(&[&b""[..], &shared.topic, &seq, &p]),
                ReplayLayout::WithoutTopic => conn.send(&[&b""[..], &seq, &p]),
                ReplayLayout::Silent => Ok(()),
            };
            if r.is_err() {
                return;
            }
        }
        let r = match layout {
            ReplayLayout::WithTopic => conn.send(&[&b""[..], b"", &end, b""]),
            ReplayLayout::WithoutTopic => conn.send(&[&b""[..], &end, b""]),
            ReplayLayout::Silent => Ok(()),
        };
        if r.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publisher bound to a host name closes: its accept threads are
    /// woken through the resolved address.
    #[test]
    fn closes_when_bound_to_a_host_name() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut p = Publisher::new("kv@x@m", 4);
            p.bind("tcp://localhost:0").unwrap();
            p.close();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("close() returned");
    }

    /// A publisher bound on loopback and a subscriber to "kv@" that then
    /// sent `then`, once the publisher has its subscription.
    fn subscribed(then: &[Vec<u8>]) -> (Publisher, Connection) {
        let mut p = Publisher::new("kv@x@m", 4);
        let ep = p.bind("tcp://127.0.0.1:0").unwrap();
        let s = TcpStream::connect(ep.socket_addr()).unwrap();
        let mut c =
            Connection::handshake(s, SocketType::Sub, Limits::default(), HANDSHAKE).unwrap();
        c.send(&[b"\x01kv@".to_vec()]).unwrap();
        for m in then {
            c.send(std::slice::from_ref(m)).unwrap();
        }
        let t0 = std::time::Instant::now();
        while p.subscribed() == 0 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(5));
        }
        (p, c)
    }

    /// A subscriber too slow to take a batch within the write timeout is
    /// dropped with its connection shut, so it sees the end and can dial
    /// again, rather than a connection that answers and never delivers.
    #[test]
    fn a_subscriber_dropped_for_a_slow_write_sees_its_connection_end() {
        use std::io::Read;
        let (mut p, c) = subscribed(&[]);
        // Nothing is read until the publisher has given up on this peer.
        let big = vec![7u8; 1 << 20];
        let t0 = std::time::Instant::now();
        while p.subscribers() > 0 {
            assert!(t0.elapsed() < Duration::from_secs(60), "never dropped");
            p.publish(&big);
        }
        // Draining what was sent reaches the end of the stream.
        let mut raw = c.stream().unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match raw.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("the connection stayed open: {e}"),
            }
        }
        p.close();
    }
    /// An empty message frame from a subscriber is ignored: the peer keeps
    /// its subscription and publishing goes on (it used to panic the
    /// peer's thread with the subscription list locked).
    #[test]
    fn an_empty_frame_from_a_subscriber_is_ignored() {
        let (mut p, mut c) = subscribed(&[Vec::new(), b"\x01kv@x".to_vec()]);
        std::thread::sleep(Duration::from_millis(50));
        p.publish(b"batch");
        let m = c.recv().unwrap();
        assert_eq!(m.last().map(|f| &f[..]), Some(&b"batch"[..]));
        assert_eq!(p.subscribers(), 1);
        p.close();
    }
}
