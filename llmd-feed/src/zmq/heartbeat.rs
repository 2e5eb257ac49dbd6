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
//! a connection to an older peer blocks in its reads as before.

use std::time::{Duration, Instant};

use super::wire::{Connection, Message, WireError};

/// The heartbeat state of one connection.
#[derive(Debug)]
pub struct Heartbeat {
    interval: Option<Duration>,
    pinged_at: Option<Instant>,
    lost: bool,
}

impl Heartbeat {
    /// Heartbeats every `interval` of silence on `conn` (`None` or zero,
    /// or a ZMTP 3.0 peer: none, reads block as before).
    pub fn start(conn: &Connection, interval: Option<Duration>) -> std::io::Result<Self> {
        let interval = interval
            .filter(|d| !d.is_zero())
            .filter(|_| conn.peer_answers_ping());
        conn.set_read_timeout(interval)?;
        Ok(Heartbeat {
            interval,
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
