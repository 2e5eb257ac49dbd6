//! The router's side: a SUB connection with its topic subscriptions, and the
//! DEALER request of vLLM's replay protocol (SPEC §3.3).

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::endpoint::TcpEndpoint;
use super::wire::{Connection, Limits, SocketType, WireError};

/// Connects to `ep` within `timeout`, name lookup included (each resolved
/// address in turn, sharing what is left of it).
pub fn dial(ep: &TcpEndpoint, timeout: Duration) -> std::io::Result<TcpStream> {
    // A timeout past the clock's range is as good as none.
    let deadline = crate::deadline::after(timeout);
    let mut last = None;
    for addr in resolve_within(&ep.socket_addr(), timeout)? {
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{ep}: no address answered within {timeout:?}"),
        )
    }))
}

/// Name lookups whose threads may run at once in the process: past it a
/// lookup fails at once (a stalled resolver would otherwise leave a thread
/// behind for every scrape and dial of every pod given by name).
pub const MAX_LOOKUPS_IN_FLIGHT: usize = 64;

static LOOKUPS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A lookup's place among at most `cap` counted by `count`, given back
/// when its thread ends (or never starts).
struct LookupSlot(&'static std::sync::atomic::AtomicUsize);

impl LookupSlot {
    fn take(count: &'static std::sync::atomic::AtomicUsize, cap: usize) -> Option<LookupSlot> {
        use std::sync::atomic::Ordering;
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| LookupSlot(count))
    }
}

impl Drop for LookupSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The addresses of `name` (`host:port`) within `timeout`. An IP literal
/// needs no lookup; a host name is looked up on a thread of its own, so
/// that a slow resolver (a search list tried domain by domain) costs the
/// caller its deadline, not the resolver's (the lookup finishes alone). At
/// most [`MAX_LOOKUPS_IN_FLIGHT`] such threads run at once; past that the
/// lookup fails at once.
pub fn resolve_within(name: &str, timeout: Duration) -> std::io::Result<Vec<SocketAddr>> {
    resolve_counted(name, timeout, &LOOKUPS_IN_FLIGHT, MAX_LOOKUPS_IN_FLIGHT)
}

/// [`resolve_within`] with at most `cap` lookup threads counted by `count`.
fn resolve_counted(
    name: &str,
    timeout: Duration,
    count: &'static std::sync::atomic::AtomicUsize,
    cap: usize,
) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(a) = name.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let slot = LookupSlot::take(count, cap).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "resolving {name}: {cap} name lookups already in flight (the resolver is stalled)"
            ),
        )
    })?;
    let (tx, rx) = mpsc::channel();
    let owned = name.to_string();
    std::thread::Builder::new()
        .name("llmd-feed-resolve".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(owned.to_socket_addrs().map(Iterator::collect));
        })?;
    rx.recv_timeout(timeout).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("resolving {name}: no answer within {timeout:?}"),
        )
    })?
}

/// Completes a SUB handshake on `stream` and subscribes to each prefix in
/// `topics` (the 3.0 form: a message `0x01 prefix`, which every libzmq
/// release accepts).
pub fn subscribe(
    stream: TcpStream,
    topics: &[String],
    limits: Limits,
    timeout: Duration,
) -> Result<Connection, WireError> {
    let mut c = Connection::handshake(stream, SocketType::Sub, limits, timeout)?;
    for t in topics {
        let mut m = Vec::with_capacity(1 + t.len());
        m.push(1);
        m.extend_from_slice(t.as_bytes());
        c.send(&[m])?;
    }
    Ok(c)
}

/// How a replay request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayEnd {
    /// The end marker arrived.
    Complete,
    /// The handler stopped the replay (it has what it needs).
    Stopped,
    /// No end marker within the timeout (before vLLM 0.33 the replay socket
    /// can drop replies past its send limit).
    TimedOut,
}

/// One replayed batch: `(seq, payload)`.
pub type Replayed<'a> = (u64, &'a [u8]);

fn seq_frame(f: &[u8]) -> Result<u64, WireError> {
    let b: [u8; 8] = f
        .try_into()
        .map_err(|_| WireError::Protocol(format!("replay seq frame of {} bytes", f.len())))?;
    Ok(u64::from_be_bytes(b))
}

/// Asks the replay socket at `ep` for every buffered batch from `start` on,
/// calling `each` per batch in arrival order until the end marker, a `false`
/// from `each`, or `timeout` in all. Accepts both reply layouts (with and
/// without the topic frame).
pub fn replay(
    ep: &TcpEndpoint,
    start: u64,
    limits: Limits,
    timeout: Duration,
    mut each: impl FnMut(Replayed<'_>) -> bool,
) -> Result<ReplayEnd, WireError> {
    let deadline = crate::deadline::after(timeout);
    let stream = dial(ep, timeout)?;
    // The handshake gets what the dial left of the replay's time, not a
    // fresh `timeout`: the whole replay ends by its deadline.
    let left = crate::deadline::left(deadline)?.unwrap_or(timeout);
    let mut c = Connection::handshake(stream, SocketType::Dealer, limits, left)?;
    c.send(&[&b""[..], &start.to_be_bytes()])?;
    // Every read, inside a message or between (PINGs a peer may send),
    // gets only the time left: the whole replay ends by the deadline.
    c.set_deadline(deadline)?;
    loop {
        let m = match c.recv() {
            Ok(m) => m,
            Err(WireError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(ReplayEnd::TimedOut)
            }
            Err(e) => return Err(e),
        };
        let body = match m.split_first() {
            Some((d, rest)) if d.is_empty() => rest,
            _ => {
                return Err(WireError::Protocol(
                    "replay reply without the empty delimiter".into(),
                ))
            }
        };
        let (seq, payload) = match body {
            // ≥ 0.26: topic, seq, payload; end marker "", ff×8, "".
            [_topic, seq, payload] => (seq_frame(seq)?, payload),
            // ≤ 0.25: seq, payload; end marker ff×8, "".
            [seq, payload] => (seq_frame(seq)?, payload),
            _ => {
                return Err(WireError::Protocol(format!(
                    "replay reply of {} frames",
                    body.len()
                )))
            }
        };
        if seq == u64::MAX {
            return Ok(ReplayEnd::Complete);
        }
        if !each((seq, payload)) {
            return Ok(ReplayEnd::Stopped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_keep_their_deadline() {
        // An IP literal is not looked up: no time needed.
        let a = resolve_within("127.0.0.1:5557", Duration::ZERO).unwrap();
        assert_eq!(a, vec!["127.0.0.1:5557".parse::<SocketAddr>().unwrap()]);
        let a = resolve_within("[::1]:5557", Duration::ZERO).unwrap();
        assert_eq!(a.len(), 1);
        assert!(!resolve_within("localhost:80", Duration::from_secs(10))
            .unwrap()
            .is_empty());
    }

    /// Lookup threads are counted: at the cap a lookup fails at once (IP
    /// literals need none), and a finished lookup gives its place back.
    #[test]
    fn lookups_in_flight_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        COUNT.store(2, Ordering::SeqCst); // two lookups stalled
        let e = resolve_counted("localhost:80", Duration::from_secs(10), &COUNT, 2).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
        assert!(resolve_counted("127.0.0.1:80", Duration::ZERO, &COUNT, 2).is_ok());
        COUNT.store(1, Ordering::SeqCst);
        assert!(resolve_counted("localhost:80", Duration::from_secs(10), &COUNT, 2).is_ok());
        let t0 = std::time::Instant::now();
        while COUNT.load(Ordering::SeqCst) != 1 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the place was not given back"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A timeout past the clock's range dials as with no deadline, not a
    /// panic.
    #[test]
    fn an_endless_dial_timeout_does_not_panic() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ep = TcpEndpoint::parse(&format!("tcp://{}", l.local_addr().unwrap())).unwrap();
        assert!(dial(&ep, Duration::MAX).is_ok());
    }
}
