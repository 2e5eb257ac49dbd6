//! Deadlines for an exchange with a peer (a scrape, a ZMTP handshake, a
//! replay): every read gets only the time left, so a peer trickling bytes or
//! PINGs cannot stretch the exchange past its deadline.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `timeout` from now; `None` when the clock cannot hold it (as good as no
/// deadline).
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The time left before `deadline` (`None`: no limit), or a `TimedOut`
/// error once it has passed.
pub(crate) fn left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    let Some(d) = deadline else {
        return Ok(None);
    };
    let l = d.saturating_duration_since(Instant::now());
    if l.is_zero() {
        Err(io::ErrorKind::TimedOut.into())
    } else {
        Ok(Some(l))
    }
}

/// A socket whose every read is bounded by `deadline` (`None`: reads as the
/// socket's own timeout says). Under a [`Clock`] each read is bounded by the
/// socket's own timeout too.
#[derive(Debug)]
pub(crate) struct Deadlined {
    pub s: TcpStream,
    pub deadline: Option<Instant>,
    pub clock: Clock,
}

/// A deadline laid over reads that otherwise wait by the socket's own read
/// timeout (a message's clock over a connection's idle timeout).
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Clock {
    /// None: `deadline` alone bounds the reads.
    #[default]
    Off,
    /// On, no read made under it yet (so nothing to restore).
    On,
    /// On; the socket's own timeout, as it was before the first read under
    /// the clock changed it.
    Read(Option<Duration>),
}

impl Deadlined {
    /// Reads bounded by `deadline` alone.
    pub fn new(s: TcpStream, deadline: Option<Instant>) -> Self {
        Deadlined {
            s,
            deadline,
            clock: Clock::Off,
        }
    }

    /// Ends the clock: the socket's own read timeout is back (a read was
    /// made under the clock), and `deadline` bounds reads again.
    pub fn stop_clock(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.deadline = deadline;
        if let Clock::Read(t) = std::mem::take(&mut self.clock) {
            if deadline.is_none() {
                self.s.set_read_timeout(t)?;
            }
        }
        Ok(())
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some() {
            // The socket's own timeout is read once per clock, at the first
            // read that needs the socket: a message already buffered costs
            // no system call.
            if self.clock == Clock::On {
                self.clock = Clock::Read(self.s.read_timeout()?);
            }
            let own = match self.clock {
                Clock::Read(t) => t,
                _ => None,
            };
            let t = match (left(self.deadline)?, own) {
                (Some(l), Some(p)) => Some(l.min(p)),
                (l, p) => l.or(p),
            };
            self.s.set_read_timeout(t)?;
        }
        self.s.read(buf)
    }
}
