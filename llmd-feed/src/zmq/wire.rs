//! ZMTP 3.0 on a TCP stream: the greeting, the NULL-mechanism handshake and
//! framing (RFC 23/ZMTP). Enough of ZeroMQ for KV events: SUB and DEALER on
//! the router's side, PUB and ROUTER on a publisher's, interoperable with
//! libzmq peers (which accept 3.0 peers and speak down to them).
//!
//! Every length read from the network is checked against [`Limits`] before
//! anything is allocated, so a bad or hostile peer costs at most one message
//! of `max_message_bytes`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deadline::{self, Deadlined};

/// Flag bits of a frame header.
const MORE: u8 = 0x01;
const LONG: u8 = 0x02;
const COMMAND: u8 = 0x04;

/// The socket types this module speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketType {
    /// Receives published messages after sending its subscriptions.
    Sub,
    /// Publishes messages to subscribers whose subscription prefixes match.
    Pub,
    /// Request side of vLLM's replay protocol.
    Dealer,
    /// Reply side of vLLM's replay protocol.
    Router,
}

impl SocketType {
    fn name(self) -> &'static str {
        match self {
            SocketType::Sub => "SUB",
            SocketType::Pub => "PUB",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
        }
    }

    /// Peer types ZMQ allows this type to talk to.
    fn accepts(self, peer: &str) -> bool {
        match self {
            SocketType::Sub => matches!(peer, "PUB" | "XPUB"),
            SocketType::Pub => matches!(peer, "SUB" | "XSUB"),
            SocketType::Dealer => matches!(peer, "ROUTER" | "DEALER"),
            SocketType::Router => matches!(peer, "DEALER" | "REQ" | "ROUTER"),
        }
    }
}

/// The largest READY command taken in a handshake.
const MAX_READY_BYTES: usize = 64 << 10;

/// Bounds on what a peer may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest message (sum of its frames) accepted.
    pub max_message_bytes: usize,
    /// Most frames in one message.
    pub max_frames: usize,
    /// Longest a message (or command) may take to arrive once its first
    /// byte has: a peer that trickles a message's bytes cannot hold the
    /// connection and the bytes reserved for the message longer than this
    /// (`None`: no limit beyond each read's own timeout).
    pub message_timeout: Option<Duration>,
}

/// Largest command frame accepted (a `PING`, a subscription, `READY`):
/// commands carry a few names and bytes, never a payload.
pub const MAX_COMMAND_BYTES: usize = 64 << 10;

/// Longest `PING` context (ZMTP 3.1: `ping-context = 0*16OCTET`).
const MAX_PING_CONTEXT: usize = 16;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_frames: 16,
            message_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Bytes of unfinished messages that many connections together may hold
/// (the connections that any peer can open, a bound socket's, share one):
/// each connection's own limit times the connection count would be far
/// more memory than a host has.
#[derive(Debug)]
pub struct ByteBudget {
    cap: usize,
    held: std::sync::atomic::AtomicUsize,
}

impl ByteBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        ByteBudget {
            cap,
            held: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn reserve(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering::AcqRel;
        let before = self.held.fetch_add(n, AcqRel);
        if before.saturating_add(n) > self.cap {
            self.held.fetch_sub(n, AcqRel);
            return false;
        }
        true
    }

    fn release(&self, n: usize) {
        self.held.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What one message being read holds of its connection's budget; given
/// back when the message is returned or refused.
struct Held<'a> {
    budget: Option<&'a ByteBudget>,
    bytes: usize,
}

impl Held<'_> {
    /// Returns `n` of the bytes held (a frame already dropped).
    fn give_back(&mut self, n: usize) {
        let n = n.min(self.bytes);
        if let Some(b) = self.budget {
            b.release(n);
        }
        self.bytes -= n;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.budget {
            b.release(self.bytes);
        }
    }
}

/// Why a connection failed or was dropped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or was closed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer broke the protocol; the connection is closed.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl WireError {
    fn proto(msg: impl Into<String>) -> Self {
        WireError::Protocol(msg.into())
    }
}

/// One message: its frames in order.
pub type Message = Vec<Vec<u8>>;

/// A connection after a successful handshake.
pub struct Connection {
    reader: BufReader<Deadlined>,
    writer: TcpStream,
    /// Held while a message or command is written, here or through a
    /// [`Sender`]: a `PONG` that `recv` writes while another thread sends
    /// must not land inside that thread's message.
    write_lock: Arc<Mutex<()>>,
    limits: Limits,
    peer_type: String,
    /// The peer's ZMTP minor version (its greeting): 1 and later define
    /// `PING`.
    peer_minor: u8,
    /// When the last frame (message or command, a PONG included) arrived.
    last_rx: Instant,
    /// Shared with other connections ([`Connection::set_budget`]).
    budget: Option<Arc<ByteBudget>>,
    /// While a message is arriving under [`Limits::message_timeout`]: the
    /// reader's own deadline before it.
    message_clock: Option<Option<Instant>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.writer.peer_addr().ok())
            .field("peer_type", &self.peer_type)
            .finish()
    }
}

/// The greeting of a `ty` socket. The publishing side (PUB, ROUTER)
/// announces ZMTP 3.1: it takes subscriptions in both forms and answers
/// `PING`. The subscribing side (SUB, DEALER) announces 3.0, which every
/// libzmq 4.x peer speaks, and sends its subscriptions in that form.
fn greeting(ty: SocketType) -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = u8::from(matches!(ty, SocketType::Pub | SocketType::Router));
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn ready(ty: SocketType) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.push(5);
    body.extend_from_slice(b"READY");
    let mut prop = |name: &[u8], value: &[u8]| {
        body.push(name.len() as u8);
        body.extend_from_slice(name);
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    };
    prop(b"Socket-Type", ty.name().as_bytes());
    if matches!(ty, SocketType::Dealer | SocketType::Router) {
        prop(b"Identity", b"");
    }
    body
}

/// Finds the `Socket-Type` property of a READY command body.
fn peer_socket_type(body: &[u8]) -> Result<String, WireError> {
    let name_len = *body
        .first()
        .ok_or_else(|| WireError::proto("empty command"))? as usize;
    let name = body
        .get(1..1 + name_len)
        .ok_or_else(|| WireError::proto("truncated command name"))?;
    if name == b"ERROR" {
        let reason = body.get(2 + name_len..).unwrap_or_default();
        return Err(WireError::proto(format!(
            "peer refused the handshake: {}",
            String::from_utf8_lossy(reason)
        )));
    }
    if name != b"READY" {
        return Err(WireError::proto(format!(
            "expected READY, got command '{}'",
            String::from_utf8_lossy(name)
        )));
    }
    let mut rest = &body[1 + name_len..];
    while !rest.is_empty() {
        let n = rest[0] as usize;
        let key = rest
            .get(1..1 + n)
            .ok_or_else(|| WireError::proto("truncated property name"))?;
        let len_at = 1 + n;
        let len_bytes: [u8; 4] = rest
            .get(len_at..len_at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| WireError::proto("truncated property length"))?;
        let vlen = u32::from_be_bytes(len_bytes) as usize;
        let value = rest
            .get(len_at + 4..len_at + 4 + vlen)
            .ok_or_else(|| WireError::proto("truncated property value"))?;
        if key.eq_ignore_ascii_case(b"Socket-Type") {
            return String::from_utf8(value.to_vec())
                .map_err(|_| WireError::proto("socket type is not UTF-8"));
        }
        rest = &rest[len_at + 4 + vlen..];
    }
    Err(WireError::proto("READY without Socket-Type"))
}

/// Reads one frame (flags and body) from `r`; its length is checked against
/// `limits` before the body is allocated.
fn read_frame(r: &mut impl Read, limits: &Limits) -> Result<(u8, Vec<u8>), WireError> {
    read_frame_within(r, limits.max_message_bytes, |_| Ok(()))
}

/// [`read_frame`] with `budget` bytes left for the message it belongs to:
/// a frame longer than that is refused before its body is allocated.
/// `admit` is asked for the body's length before it is allocated.
fn read_frame_within(
    r: &mut impl Read,
    budget: usize,
    admit: impl FnOnce(usize) -> Result<(), WireError>,
) -> Result<(u8, Vec<u8>), WireError> {
    let mut head = [0u8; 1];
    r.read_exact(&mut head)?;
    let flags = head[0];
    if flags & !(MORE | LONG | COMMAND) != 0 {
        return Err(WireError::proto(format!("bad frame flags {flags:#04x}")));
    }
    let len = if flags & LONG != 0 {
        let mut l = [0u8; 8];
        r.read_exact(&mut l)?;
        u64::from_be_bytes(l)
    } else {
        let mut l = [0u8; 1];
        r.read_exact(&mut l)?;
        l[0] as u64
    };
    if len > budget as u64 {
        return Err(WireError::proto(format!(
            "frame of {len} bytes exceeds the {budget} bytes its message has left of the byte limit"
        )));
    }
    if flags & COMMAND != 0 && len > MAX_COMMAND_BYTES as u64 {
        return Err(WireError::proto(format!(
            "command of {len} bytes is over {MAX_COMMAND_BYTES}"
        )));
    }
    admit(len as usize)?;
    // Grown as the bytes arrive beyond the first `PREALLOCATED_BYTES`: a
    // header declaring more than the peer sends costs no more than it sent,
    // whatever limit the host set (an allocation of the declared length
    // could exceed the memory there is, and abort).
    // Reserved a chunk at a time, exactly: the buffer holds the frame, not
    // up to twice it, as the byte limits count.
    let len = len as usize;
    let mut body = Vec::new();
    while body.len() < len {
        let chunk = (len - body.len()).min(PREALLOCATED_BYTES);
        body.reserve_exact(chunk);
        let got = r.take(chunk as u64).read_to_end(&mut body)?;
        if got < chunk {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok((flags, body))
}

/// Bytes of a frame's body allocated before they arrive (one chunk).
const PREALLOCATED_BYTES: usize = 1 << 20;

/// What a peer's bytes after the greeting parse to ([`parse_after_greeting`]).
#[doc(hidden)]
#[derive(Debug)]
pub struct AfterGreeting {
    /// The READY command's socket type, or why it was refused.
    pub peer: Result<String, WireError>,
    /// Each frame read after it: flags and body length.
    pub frames: Vec<(u8, usize)>,
    /// Why reading stopped before the bytes ended, if it did.
    pub refused: Option<WireError>,
}

/// Reads `bytes` as a peer's side after the greeting, for tests and fuzzing
/// of the frame reader: its READY command, then frames until the bytes end
/// or one is refused.
#[doc(hidden)]
pub fn parse_after_greeting(mut bytes: &[u8], limits: &Limits) -> AfterGreeting {
    let peer = read_frame(&mut bytes, limits).and_then(|(flags, body)| {
        if flags & COMMAND == 0 {
            return Err(WireError::proto("expected the READY command"));
        }
        peer_socket_type(&body)
    });
    let mut frames = Vec::new();
    let mut refused = None;
    while !bytes.is_empty() {
        match read_frame(&mut bytes, limits) {
            Ok((flags, body)) => frames.push((flags, body.len())),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    AfterGreeting {
        peer,
        frames,
        refused,
    }
}

impl Connection {
    /// Runs the ZMTP 3.0 greeting and NULL handshake as `ty` on a connected
    /// stream, within `timeout` in all.
    pub fn handshake(
        stream: TcpStream,
        ty: SocketType,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Connection, WireError> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut writer = stream.try_clone()?;
        writer.write_all(&greeting(ty))?;
        let deadline = deadline::after(timeout);
        if deadline.is_none() {
            stream.set_read_timeout(None)?;
        }
        let mut reader = BufReader::with_capacity(64 << 10, Deadlined::new(stream, deadline));
        let mut peer = [0u8; 64];
        reader.read_exact(&mut peer[..10])?;
        if peer[0] != 0xFF || peer[9] & 1 != 1 {
            return Err(WireError::proto("not a ZMTP peer (bad signature)"));
        }
        reader.read_exact(&mut peer[10..])?;
        if peer[10] < 3 {
            return Err(WireError::proto(format!(
                "peer speaks ZMTP {}.x; 3.0 or later is required",
                peer[10]
            )));
        }
        let mechanism = &peer[12..32];
        if &mechanism[..4] != b"NULL" || mechanism[4..].iter().any(|b| *b != 0) {
            return Err(WireError::proto(format!(
                "security mechanism '{}' is not supported (only NULL)",
                String::from_utf8_lossy(mechanism).trim_end_matches('\0')
            )));
        }
        let mut conn = Connection {
            reader,
            writer,
            write_lock: Arc::default(),
            limits,
            peer_type: String::new(),
            peer_minor: if peer[10] > 3 { u8::MAX } else { peer[11] },
            last_rx: Instant::now(),
            budget: None,
            message_clock: None,
        };
        conn.write_frame(&ready(ty), false, true)?;
        conn.writer.flush()?;
        // READY carries a few short properties: a larger frame is refused
        // before it is read, so a handshake holds next to nothing (bound
        // connections share their budget only once it is done).
        let (flags, body) = conn.read_frame(conn.limits.max_message_bytes.min(MAX_READY_BYTES))?;
        if flags & COMMAND == 0 {
            return Err(WireError::proto("expected the READY command"));
        }
        let peer_type = peer_socket_type(&body)?;
        if !ty.accepts(&peer_type) {
            return Err(WireError::proto(format!(
                "a {} socket cannot talk to a {peer_type} socket",
                ty.name()
            )));
        }
        conn.peer_type = peer_type;
        conn.set_deadline(None)?;
        Ok(conn)
    }

    /// The peer's socket type from its READY command.
    pub fn peer_type(&self) -> &str {
        &self.peer_type
    }

    /// A handle on the underlying stream, e.g. to shut it down from another
    /// thread (which ends a blocked [`Connection::recv`]).
    pub fn stream(&self) -> io::Result<TcpStream> {
        self.writer.try_clone()
    }

    /// Sets the read timeout of [`Connection::recv`] (`None` blocks).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().s.set_read_timeout(t)
    }

    /// Bounds every later read by `deadline` (each read gets the time left;
    /// past it, reads fail with `TimedOut`), or lifts the bound (`None`: reads
    /// block, as with no read timeout).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let t = self.reader.get_mut();
        t.deadline = deadline;
        if deadline.is_none() {
            t.s.set_read_timeout(None)?;
        }
        Ok(())
    }

    /// Sets the write timeout of [`Connection::send`] (`None` blocks).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.writer.set_write_timeout(t)
    }

    fn write_frame(&mut self, body: &[u8], more: bool, command: bool) -> io::Result<()> {
        let _held = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        write_frames(&mut self.writer, &[body], more, command)
    }

    /// Sends one message.
    pub fn send<B: AsRef<[u8]>>(&mut self, frames: &[B]) -> io::Result<()> {
        let _held = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        write_frames(&mut self.writer, frames, false, false)
    }

    /// Whether the peer speaks ZMTP 3.1 or later, which defines `PING`
    /// (libzmq 4.2 and later; a 3.0 peer might take it for a protocol
    /// error).
    pub fn peer_answers_ping(&self) -> bool {
        self.peer_minor >= 1
    }

    /// A second handle that sends on this connection while another thread
    /// blocks in [`Connection::recv`] (a PUB socket reads subscriptions and
    /// writes messages at the same time).
    pub fn sender(&self) -> io::Result<Sender> {
        Ok(Sender(self.writer.try_clone()?, self.write_lock.clone()))
    }

    fn read_frame(&mut self, budget: usize) -> Result<(u8, Vec<u8>), WireError> {
        self.read_frame_held(budget, None)
    }

    /// [`Connection::read_frame`], the body reserved in `held`'s shared
    /// budget first when there is one.
    fn read_frame_held(
        &mut self,
        budget: usize,
        held: Option<&mut Held<'_>>,
    ) -> Result<(u8, Vec<u8>), WireError> {
        let admit = |len: usize| {
            match held {
            Some(h) => match h.budget {
                Some(b) if !b.reserve(len) => Err(WireError::proto(format!(
                    "a frame of {len} bytes would take the unfinished messages of the connections sharing this one's budget past {} bytes",
                    b.cap
                ))),
                _ => {
                    h.bytes += len;
                    Ok(())
                }
            },
            None => Ok(()),
        }
        };
        let f = read_frame_within(&mut self.reader, budget, admit)?;
        self.last_rx = Instant::now();
        Ok(f)
    }

    /// Shares `budget` for the bytes of messages being read with the other
    /// connections given it: a frame that would take them past it is
    /// refused (a protocol error) before its body is allocated.
    pub fn set_budget(&mut self, budget: Arc<ByteBudget>) {
        self.budget = Some(budget);
    }

    /// When the last frame arrived (a message, or a command such as the
    /// `PONG` that answers [`Connection::ping`]).
    pub fn last_received(&self) -> Instant {
        self.last_rx
    }

    /// Sends a ZMTP 3.1 `PING` (no TTL, no context); a libzmq peer (4.2 or
    /// later) answers `PONG`, this crate's connections too.
    pub fn ping(&mut self) -> io::Result<()> {
        self.write_frame(b"\x04PING\x00\x00", false, true)
    }

    /// Receives the next message. Commands between messages are handled:
    /// `PING` is answered with `PONG`, subscription commands (ZMTP 3.1
    /// peers) are returned as the 3.0 data form (`0x01`/`0x00` + topic), and
    /// others are ignored.
    pub fn recv(&mut self) -> Result<Message, WireError> {
        match self.recv_inner(false)? {
            Some(m) => Ok(m),
            None => Err(io::Error::from(io::ErrorKind::TimedOut).into()),
        }
    }

    /// As [`Connection::recv`], but `Ok(None)` when the read timeout
    /// ([`Connection::set_read_timeout`]) passes with nothing read of a
    /// message: the connection stays usable (a timeout inside a message is
    /// an error, as in `recv`).
    pub fn recv_or_idle(&mut self) -> Result<Option<Message>, WireError> {
        self.recv_inner(true)
    }

    fn recv_inner(&mut self, idle: bool) -> Result<Option<Message>, WireError> {
        let got = self.recv_frames(idle);
        let stopped = self.stop_message_clock();
        let got = got?;
        stopped?;
        Ok(got)
    }

    /// Starts the clock of [`Limits::message_timeout`]: the reads of the
    /// message get at most that long, or less when the reader's own
    /// deadline is sooner.
    fn start_message_clock(&mut self) -> io::Result<()> {
        let Some(timeout) = self.limits.message_timeout else {
            return Ok(());
        };
        let r = self.reader.get_mut();
        let own = r.deadline;
        self.message_clock = Some(own);
        r.deadline = match (own, crate::deadline::after(timeout)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Each read still waits no longer than the socket's own timeout
        // (a reader's own deadline already sets the reads' timeouts).
        if own.is_none() {
            r.clock = crate::deadline::Clock::On;
        }
        Ok(())
    }

    /// Ends the message clock: the reader's deadline and read timeout are
    /// back to what they were.
    fn stop_message_clock(&mut self) -> io::Result<()> {
        match self.message_clock.take() {
            Some(own) => self.reader.get_mut().stop_clock(own),
            None => Ok(()),
        }
    }

    fn recv_frames(&mut self, idle: bool) -> Result<Option<Message>, WireError> {
        let mut frames: Message = Vec::new();
        let mut total = 0usize;
        // The message's bytes, reserved in the shared budget as its frames
        // come and given back when it is returned or refused.
        let shared = self.budget.clone();
        let mut held = Held {
            budget: shared.as_deref(),
            bytes: 0,
        };
        loop {
            if frames.is_empty() {
                // Nothing of a message read yet: a timeout here consumed
                // nothing, so the stream stays in step (`recv_or_idle`
                // returns; `recv` fails as a read would). Once a byte has
                // come, the message's clock starts.
                // (A signal interrupts a read with a timeout set even under
                // SA_RESTART: it is retried, as `read_exact` does.)
                self.stop_message_clock()?;
                loop {
                    match self.reader.fill_buf() {
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e)
                            if idle
                                && matches!(
                                    e.kind(),
                                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                                ) =>
                        {
                            return Ok(None)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                self.start_message_clock()?;
            }
            // The message's frames together stay within the limit: a frame
            // is refused before its body is allocated.
            let budget = self.limits.max_message_bytes - total;
            let (flags, body) = self.read_frame_held(budget, Some(&mut held))?;
            if flags & COMMAND != 0 {
                if !frames.is_empty() {
                    return Err(WireError::proto("command inside a multi-frame message"));
                }
                // A command is handled and dropped here: its bytes go back
                // to the shared budget at once.
                held.give_back(body.len());
                if let Some(m) = self.on_command(&body)? {
                    return Ok(Some(m));
                }
                continue;
            }
            // Within the limit: each frame was refused past what was left.
            total += body.len();
            frames.push(body);
            if flags & MORE == 0 {
                return Ok(Some(frames));
            }
            if frames.len() >= self.limits.max_frames {
                return Err(WireError::proto(format!(
                    "message has more than {} frames",
                    self.limits.max_frames
                )));
            }
        }
    }

    fn on_command(&mut self, body: &[u8]) -> Result<Option<Message>, WireError> {
        let n = *body.first().unwrap_or(&0) as usize;
        let name = body.get(1..1 + n).unwrap_or_default();
        let data = body.get(1 + n..).unwrap_or_default();
        match name {
            b"PING" => {
                // PING: TTL (2 bytes) then context, echoed in PONG.
                let ctx = data.get(2..).unwrap_or_default();
                if ctx.len() > MAX_PING_CONTEXT {
                    return Err(WireError::proto(format!(
                        "PING context of {} bytes is over {MAX_PING_CONTEXT}",
                        ctx.len()
                    )));
                }
                let mut pong = Vec::with_capacity(5 + ctx.len());
                pong.push(4);
                pong.extend_from_slice(b"PONG");
                pong.extend_from_slice(ctx);
                self.write_frame(&pong, false, true)?;
                Ok(None)
            }
            b"SUBSCRIBE" | b"CANCEL" => {
                let mut m = Vec::with_capacity(1 + data.len());
                m.push(u8::from(name == b"SUBSCRIBE"));
                m.extend_from_slice(data);
                Ok(Some(vec![m]))
            }
            b"ERROR" => Err(WireError::proto(format!(
                "peer error: {}",
                String::from_utf8_lossy(data.get(1..).unwrap_or_default())
            ))),
            _ => Ok(None),
        }
    }
}

/// Writes `frames` as one message (or, with `command`, one command frame);
/// `more` marks the last frame as continued. Small frames are coalesced into
/// one write.
fn write_frames<B: AsRef<[u8]>>(
    w: &mut impl Write,
    frames: &[B],
    more: bool,
    command: bool,
) -> io::Result<()> {
    let mut buf = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let f = f.as_ref();
        let mut flags = if more || i + 1 < frames.len() {
            MORE
        } else {
            0
        };
        if command {
            flags |= COMMAND;
        }
        if f.len() > 255 {
            buf.push(flags | LONG);
            buf.extend_from_slice(&(f.len() as u64).to_be_bytes());
        } else {
            buf.push(flags);
            buf.push(f.len() as u8);
        }
        if f.len() > 4096 {
            w.write_all(&buf)?;
            buf.clear();
            w.write_all(f)?;
        } else {
            buf.extend_from_slice(f);
        }
    }
    w.write_all(&buf)
}

/// The sending half of a [`Connection`], usable from another thread.
#[derive(Debug)]
pub struct Sender(TcpStream, Arc<Mutex<()>>);

impl Sender {
    /// Sends one message.
    pub fn send<B: AsRef<[u8]>>(&mut self, frames: &[B]) -> io::Result<()> {
        let _held = self.1.lock().unwrap_or_else(|e| e.into_inner());
        write_frames(&mut self.0, frames, false, false)
    }

    /// Sets the write timeout (`None` blocks).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(t)
    }

    /// Closes the connection in both directions.
    pub fn shutdown(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A replay socket that never answers but PINGs every 100 ms: each
    /// PING came well within the read timeout, so before, the replay waited
    /// for as long as the PINGs went on; now it ends at its deadline.
    #[test]
    fn a_replay_ends_at_its_deadline_whatever_the_peer_sends() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut c = Connection::handshake(
                s,
                SocketType::Router,
                Limits::default(),
                Duration::from_secs(5),
            )
            .unwrap();
            let _ = c.recv(); // the request
            for _ in 0..60 {
                std::thread::sleep(Duration::from_millis(100));
                if c.write_frame(b"\x04PING\x00\x00", false, true).is_err() {
                    return;
                }
            }
        });
        let ep = crate::zmq::TcpEndpoint::parse(&format!("tcp://{addr}")).unwrap();
        let t0 = Instant::now();
        let end = crate::zmq::replay(
            &ep,
            0,
            Limits::default(),
            // Room for the handshake with a thread just spawned on a loaded
            // machine; the PINGs go on for 6 s.
            Duration::from_secs(2),
            |_| true,
        );
        assert!(
            matches!(end, Ok(crate::zmq::ReplayEnd::TimedOut)),
            "{end:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    }

    /// A read timeout between messages is idleness, not an error: nothing
    /// was consumed and the next message reads whole. A `PING` is answered
    /// by the peer's `recv`, and the `PONG` moves `last_received`.
    #[test]
    fn idle_between_messages_keeps_the_stream_in_step() {
        let (sub, publ) = pair(SocketType::Sub, SocketType::Pub);
        let (mut sub, mut publ) = (sub.unwrap(), publ.unwrap());
        // The publishing side greets as 3.1 (it answers PING), the
        // subscribing side as 3.0.
        assert!(sub.peer_answers_ping() && !publ.peer_answers_ping());
        sub.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert!(matches!(sub.recv_or_idle(), Ok(None)));
        let before = sub.last_received();
        sub.ping().unwrap();
        let t = std::thread::spawn(move || {
            // The publisher's side answers the PING inside recv, then sees
            // the subscription-like message the test sends next.
            let m = publ.recv().unwrap();
            (publ, m)
        });
        sub.send(&[b"\x01kv@"]).unwrap();
        let (mut publ, m) = t.join().unwrap();
        assert_eq!(m, vec![b"\x01kv@".to_vec()]);
        // The PONG arrives; with nothing else, the wait ends idle.
        assert!(matches!(sub.recv_or_idle(), Ok(None)));
        assert!(sub.last_received() > before, "the PONG was read");
        publ.send(&[&b"kv@m"[..], &[0; 8], b"x"]).unwrap();
        let m = sub.recv_or_idle().unwrap().expect("a message");
        assert_eq!(m.len(), 3);
    }

    /// A timeout inside a message is an error: part of it was consumed.
    #[test]
    fn a_timeout_inside_a_message_is_an_error() {
        let (sub, publ) = pair(SocketType::Sub, SocketType::Pub);
        let (mut sub, publ) = (sub.unwrap(), publ.unwrap());
        sub.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut w = publ.stream().unwrap();
        w.write_all(&[0x00, 10, b'a', b'b']).unwrap(); // 2 of 10 bytes
        assert!(matches!(sub.recv_or_idle(), Err(WireError::Io(_))));
    }

    #[test]
    fn bytes_after_the_greeting_parse_to_the_peer_type_and_frames() {
        let mut b = Vec::new();
        write_frames(&mut b, &[ready(SocketType::Pub)], false, true).unwrap();
        write_frames(&mut b, &[&b"kv@m"[..], &[0; 8], &[7; 300]], false, false).unwrap();
        let r = parse_after_greeting(&b, &Limits::default());
        assert_eq!(r.peer.unwrap(), "PUB");
        assert_eq!(r.frames, [(MORE, 4), (MORE, 8), (LONG, 300)]);
        assert!(r.refused.is_none());
        // A long frame claiming more than the limit is refused by its header.
        let mut huge = b[..b.len() - 309].to_vec();
        huge.push(LONG);
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        let r = parse_after_greeting(&huge, &Limits::default());
        assert!(matches!(r.refused, Some(WireError::Protocol(m)) if m.contains("exceeds")));
        // A READY whose property runs past its body.
        let mut short = Vec::new();
        write_frames(
            &mut short,
            &[&b"\x05READY\x0bSocket-Type\x00\x00\x00\x09PUB"[..]],
            false,
            true,
        )
        .unwrap();
        let r = parse_after_greeting(&short, &Limits::default());
        assert!(matches!(r.peer, Err(WireError::Protocol(m)) if m.contains("truncated")));
    }

    fn pair(
        a: SocketType,
        b: SocketType,
    ) -> (Result<Connection, WireError>, Result<Connection, WireError>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            Connection::handshake(s, b, Limits::default(), Duration::from_secs(2))
        });
        let c = Connection::handshake(
            TcpStream::connect(addr).unwrap(),
            a,
            Limits::default(),
            Duration::from_secs(2),
        );
        (c, t.join().unwrap())
    }

    const HANDSHAKE: Duration = Duration::from_secs(5);

    /// A peer that starts a message and then trickles its bytes, each well
    /// within the read timeout, is cut off at the message timeout: it
    /// cannot hold the connection (and the bytes reserved for the message)
    /// for as long as it trickles.
    #[test]
    fn a_trickled_message_ends_at_the_message_timeout() {
        use std::io::Write;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let c =
                Connection::handshake(s, SocketType::Pub, Limits::default(), HANDSHAKE).unwrap();
            let mut raw = c.stream().unwrap();
            // A 1,000-byte frame, announced, then one byte every 50 ms.
            raw.write_all(&[0, 200]).unwrap();
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(50));
                if raw.write_all(&[1]).is_err() {
                    return;
                }
            }
        });
        let limits = Limits {
            message_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        };
        let mut sub = Connection::handshake(
            TcpStream::connect(addr).unwrap(),
            SocketType::Sub,
            limits,
            HANDSHAKE,
        )
        .unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let t0 = Instant::now();
        assert!(sub.recv_or_idle().is_err());
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        drop(sub);
        t.join().unwrap();
    }

    /// ZMTP 3.1 allows a PING context of up to 16 bytes and commands carry
    /// no payload: a longer context or a command over the command limit is
    /// a protocol error, not echoed or held.
    #[test]
    fn oversized_pings_and_commands_are_refused() {
        for body in [
            [b"\x04PING\x00\x00".as_slice(), &[9u8; 17]].concat(),
            [
                b"\x04PING\x00\x00".as_slice(),
                &vec![9u8; MAX_COMMAND_BYTES],
            ]
            .concat(),
        ] {
            let (sub, publ) = pair(SocketType::Sub, SocketType::Pub);
            let (mut sub, mut publ) = (sub.unwrap(), publ.unwrap());
            publ.write_frame(&body, false, true).unwrap();
            let e = sub.recv().unwrap_err().to_string();
            assert!(e.contains("over"), "{e}");
        }
        // 16 bytes of context are echoed.
        let (sub, publ) = pair(SocketType::Sub, SocketType::Pub);
        let (mut sub, mut publ) = (sub.unwrap(), publ.unwrap());
        publ.write_frame(
            &[b"\x04PING\x00\x00".as_slice(), &[9u8; 16]].concat(),
            false,
            true,
        )
        .unwrap();
        publ.send(&[b"m".as_slice()]).unwrap();
        assert_eq!(sub.recv().unwrap(), vec![b"m".to_vec()]);
    }

    #[test]
    fn frames_round_trip_short_and_long() {
        let (c, s) = pair(SocketType::Sub, SocketType::Pub);
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        assert_eq!(c.peer_type(), "PUB");
        let big = vec![7u8; 70_000];
        s.send(&[b"kv@a@m".as_slice(), &5u64.to_be_bytes(), &big])
            .unwrap();
        s.send(&[b"".as_slice()]).unwrap();
        let m = c.recv().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], b"kv@a@m");
        assert_eq!(m[2], big);
        assert_eq!(c.recv().unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn incompatible_types_are_refused() {
        let (c, _) = pair(SocketType::Sub, SocketType::Router);
        assert!(matches!(c, Err(WireError::Protocol(m)) if m.contains("cannot talk")));
    }

    #[test]
    fn oversized_frames_are_refused_before_allocation() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut c = Connection::handshake(
                s,
                SocketType::Pub,
                Limits::default(),
                Duration::from_secs(2),
            )
            .unwrap();
            // A long frame header claiming 2^62 bytes, then nothing.
            let mut head = vec![LONG];
            head.extend_from_slice(&(1u64 << 62).to_be_bytes());
            c.writer.write_all(&head).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let mut c = Connection::handshake(
            TcpStream::connect(addr).unwrap(),
            SocketType::Sub,
            Limits::default(),
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(matches!(c.recv(), Err(WireError::Protocol(m)) if m.contains("limit")));
        t.join().unwrap();
    }

    /// With no practical byte limit, a header declaring far more than the
    /// peer sends allocates what arrives, not what it declares: the read
    /// ends at the peer's close with an error, and the process lives.
    #[test]
    fn a_declared_length_is_not_allocated_before_it_arrives() {
        let unlimited = Limits {
            max_message_bytes: usize::MAX,
            ..Limits::default()
        };
        let mut wire = vec![LONG];
        wire.extend_from_slice(&(1u64 << 62).to_be_bytes());
        wire.extend_from_slice(&[7u8; 100]);
        let r = read_frame(&mut &wire[..], &unlimited);
        assert!(
            matches!(&r, Err(WireError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{r:?}"
        );
        // A frame that arrives whole is read whole, past the preallocation.
        let body = vec![9u8; PREALLOCATED_BYTES + 5];
        let mut wire = vec![LONG];
        wire.extend_from_slice(&(body.len() as u64).to_be_bytes());
        wire.extend_from_slice(&body);
        assert_eq!(
            read_frame(&mut &wire[..], &unlimited).unwrap(),
            (LONG, body)
        );
    }

    #[test]
    fn non_zmtp_peers_are_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(
                b"HTTP/1.1 200 OK\r\n\r\nhello world, this is not zmq at all......................",
            )
            .unwrap();
        });
        let r = Connection::handshake(
            TcpStream::connect(addr).unwrap(),
            SocketType::Sub,
            Limits::default(),
            Duration::from_secs(2),
        );
        assert!(matches!(r, Err(WireError::Protocol(_))));
        t.join().unwrap();
    }

    /// Random bytes from a peer, before and after a valid greeting and
    /// READY, end in an error or a bounded message: never a panic, never an
    /// allocation past the limit.
    #[test]
    fn random_peers_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let limits = Limits {
            max_message_bytes: 1 << 16,
            max_frames: 8,
            ..Limits::default()
        };
        for case in 0..300 {
            let len = (next() % 600) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let valid_prefix = case % 2 == 0;
            if valid_prefix {
                let mut pre = greeting(SocketType::Pub).to_vec();
                let ready = ready(SocketType::Pub);
                pre.push(COMMAND);
                pre.push(ready.len() as u8);
                pre.extend_from_slice(&ready);
                pre.append(&mut junk);
                junk = pre;
            }
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let t = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let _ = s.write_all(&junk);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            });
            let s = TcpStream::connect(addr).unwrap();
            if let Ok(mut c) =
                Connection::handshake(s, SocketType::Sub, limits, Duration::from_secs(2))
            {
                while let Ok(m) = c.recv() {
                    assert!(m.len() <= limits.max_frames);
                    assert!(m.iter().map(Vec::len).sum::<usize>() <= limits.max_message_bytes);
                }
            }
            t.join().unwrap();
        }
    }

    /// A message's frames share its byte limit: a frame longer than what
    /// the frames before it left is refused from its header, before its
    /// body is allocated or waited for.
    #[test]
    fn a_frame_past_what_its_message_has_left_is_refused_from_its_header() {
        let limits = Limits {
            max_message_bytes: 1 << 16,
            max_frames: 8,
            ..Limits::default()
        };
        let (mut c, mut peer) = raw_peer(limits);
        let first = (1usize << 16) - 10;
        let mut out = vec![MORE | LONG];
        out.extend_from_slice(&(first as u64).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, first));
        // 11 bytes claimed where 10 are left; the body never comes.
        out.push(LONG);
        out.extend_from_slice(&11u64.to_be_bytes());
        peer.write_all(&out).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match c.recv() {
            Err(WireError::Protocol(m)) => {
                assert!(
                    m.contains("10 bytes its message has left of the byte limit"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    /// A PUB peer on loopback, greeted and READY; returns the subscriber's
    /// connection and the peer's raw socket.
    fn raw_peer(limits: Limits) -> (Connection, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut out = greeting(SocketType::Pub).to_vec();
            let ready = ready(SocketType::Pub);
            out.push(COMMAND);
            out.push(ready.len() as u8);
            out.extend_from_slice(&ready);
            s.write_all(&out).unwrap();
            s
        });
        let s = TcpStream::connect(addr).unwrap();
        let c = Connection::handshake(s, SocketType::Sub, limits, Duration::from_secs(2)).unwrap();
        (c, t.join().unwrap())
    }

    fn frame(more: bool, len: usize) -> Vec<u8> {
        let mut f = vec![if more { MORE } else { 0 }, len as u8];
        f.extend(std::iter::repeat_n(1u8, len));
        f
    }

    /// Connections sharing a budget: what one holds of an unfinished
    /// message counts against the others, a frame past the budget ends its
    /// connection before its body is allocated, and every byte is given
    /// back once a message is returned or refused.
    #[test]
    fn connections_sharing_a_budget_hold_at_most_it_together() {
        let budget = Arc::new(ByteBudget::new(100));
        let (mut a, mut pa) = raw_peer(Limits::default());
        let (mut b, mut pb) = raw_peer(Limits::default());
        a.set_budget(budget.clone());
        b.set_budget(budget.clone());
        pa.write_all(&frame(true, 60)).unwrap();
        let reader = std::thread::spawn(move || a.recv());
        let t0 = Instant::now();
        while budget.held() != 60 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(2));
        }
        pb.write_all(&frame(false, 50)).unwrap();
        match b.recv() {
            Err(WireError::Protocol(m)) => assert!(m.contains("past 100 bytes"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(budget.held(), 60);
        pa.write_all(&frame(false, 30)).unwrap();
        let m = reader.join().unwrap().unwrap();
        assert_eq!(m.iter().map(Vec::len).collect::<Vec<_>>(), [60, 30]);
        assert_eq!(budget.held(), 0);
    }

    /// A command frame's bytes go back to the shared budget as soon as it
    /// is handled: commands back to back do not add up against it.
    #[test]
    fn commands_hold_none_of_the_shared_budget() {
        let budget = Arc::new(ByteBudget::new(100));
        let (mut c, mut peer) = raw_peer(Limits::default());
        c.set_budget(budget.clone());
        let mut out = Vec::new();
        for _ in 0..3 {
            // An unknown command of 80 bytes (ignored).
            let mut body = vec![4u8];
            body.extend_from_slice(b"XTRA");
            body.extend(std::iter::repeat_n(0u8, 75));
            out.push(COMMAND);
            out.push(body.len() as u8);
            out.extend_from_slice(&body);
        }
        out.extend(frame(false, 50));
        peer.write_all(&out).unwrap();
        let m = c.recv().unwrap();
        assert_eq!(m.iter().map(Vec::len).collect::<Vec<_>>(), [50]);
        assert_eq!(budget.held(), 0);
    }
}
