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
/// socket's own timeout says), and by `per_read` when that is shorter.
#[derive(Debug)]
pub(crate) struct Deadlined {
    pub s: TcpStream,
    pub deadline: Option<Instant>,
    /// The longest one read may wait, whatever time is left (used with a
    /// deadline only).
    pub per_read: Option<Duration>,
}

impl Deadlined {
    /// Reads bounded by `deadline` alone.
    pub fn new(s: TcpStream, deadline: Option<Instant>) -> Self {
        Deadlined {
            s,
            deadline,
            per_read: None,
        }
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some() {
            let t = match (left(self.deadline)?, self.per_read) {
                (Some(l), Some(p)) => Some(l.min(p)),
                (l, p) => l.or(p),
            };
            self.s.set_read_timeout(t)?;
        }
        self.s.read(buf)
    }
}
