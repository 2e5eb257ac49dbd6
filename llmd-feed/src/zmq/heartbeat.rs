//! ZMTP heartbeats on a subscription: a peer gone without closing its TCP
//! connection (a node lost, a cable pulled, a NAT entry dropped) sends
//! nothing more, and a read would wait for it forever. After an interval
//! with nothing received the subscriber sends `PING`; a live libzmq peer
//! (4.2 or later, as every vLLM ships) answers `PONG`, so an idle but
//! healthy publisher keeps its connection. When a whole interval after a
//! `PING` brings nothing, the connection is taken for dead: closed, and
//! (on a dialed socket) dialed again, with the replay healing what was
//! missed. A dead peer is found within two intervals. Only a peer that
//! greeted with ZMTP 3.1 or later is sent `PING` (3.0 does not define it);
//! a connection to an older peer is closed after [`SILENT_3_0_INTERVALS`]
//! intervals with nothing received (no live vLLM speaks 3.0; a peer that
//! greets so and goes quiet must not hold a bound socket's place for good).

use std::time::{Duration, Instant};

use super::wire::{Connection, Message, WireError};

/// Intervals of silence after which a connection to a ZMTP 3.0 peer (which
/// cannot be pinged) is taken for gone.
pub const SILENT_3_0_INTERVALS: u32 = 30;

/// The heartbeat state of one connection.
#[derive(Debug)]
pub struct Heartbeat {
    interval: Option<Duration>,
    /// The peer answers `PING` (ZMTP 3.1 or later).
    pings: bool,
    pinged_at: Option<Instant>,
    lost: bool,
}

impl Heartbeat {
    /// Heartbeats every `interval` of silence on `conn` (`None` or zero:
    /// none, reads block as before; a ZMTP 3.0 peer: no `PING`, and the
    /// connection ends after [`SILENT_3_0_INTERVALS`] quiet intervals).
    pub fn start(conn: &Connection, interval: Option<Duration>) -> std::io::Result<Self> {
        let interval = interval.filter(|d| !d.is_zero());
        let pings = conn.peer_answers_ping();
        conn.set_read_timeout(match interval {
            Some(d) if !pings => Some(d.saturating_mul(SILENT_3_0_INTERVALS)),
            other => other,
        })?;
        Ok(Heartbeat {
            interval,
            pings,
            pinged_at: None,
            lost: false,
        })
    }

    /// The next message on `conn`, sending `PING`s while it is quiet; an
    /// error ends the connection ([`Heartbeat::lost`] says whether it was
    /// the heartbeat that ended it).
    pub fn recv(&mut self, conn: &mut Connection) -> Result<Message, WireError> {
        loop {
            if let Some(m) = conn.recv_or_idle()? {
                return Ok(m);
            }
            // Quiet for an interval (only with a read timeout set).
            if !self.pings {
                self.lost = true;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "a ZMTP 3.0 peer (no heartbeats) sent nothing for {} intervals",
                        SILENT_3_0_INTERVALS
                    ),
                )
                .into());
            }
            if self.pinged_at.is_some_and(|t| conn.last_received() < t) {
                self.lost = true;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer to a heartbeat within {:?}",
                        self.interval.unwrap_or_default()
                    ),
                )
                .into());
            }
            conn.ping()?;
            self.pinged_at = Some(Instant::now());
        }
    }

    /// Whether the peer went silent past a `PING` (the last error was the
    /// heartbeat's).
    pub fn lost(&self) -> bool {
        self.lost
    }
}
