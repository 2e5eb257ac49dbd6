//! What to do with the next batch of one publisher (pod, data-parallel
//! rank), from its sequence number alone (SPEC §3.2–3.3). Pure: the worker
//! acts on the answer (replays, clears, applies).

/// The action for a batch with sequence number `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The first batch seen from this publisher. With `seq > 0` the batches
    /// before it can be caught up from the replay socket.
    First,
    /// `seq == last + 1`: apply.
    InOrder,
    /// `seq > last + 1`: batches `from..seq` were lost; replay them first,
    /// or drop what is known about the publisher.
    Gap {
        /// The first missing sequence number.
        from: u64,
    },
    /// Already applied (a replay overlapping the live stream, or the same
    /// number again): skip.
    Duplicate,
    /// The publisher restarted (numbering went back): its cache is empty.
    Restart,
}

/// Sequence state of one publisher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    last: Option<u64>,
    /// After a replay that ran ahead of the live stream: live numbers in
    /// `[from, through]` were already applied.
    replayed: Option<(u64, u64)>,
    /// After a failed replay of this stream (its rank's replay socket): no
    /// replay is asked before this time (the feed's `unix_ns`), and the
    /// wait doubles with each failure in a row.
    pub(crate) replay_retry_at_ns: u64,
    pub(crate) replay_backoff_ns: u64,
}

impl StreamState {
    /// Classifies the next live batch.
    pub fn classify(&self, seq: u64) -> Action {
        let Some(last) = self.last else {
            return Action::First;
        };
        if let Some((from, through)) = self.replayed {
            if seq >= from && seq <= through {
                return Action::Duplicate;
            }
        }
        if seq == last.wrapping_add(1) {
            Action::InOrder
        } else if seq > last {
            Action::Gap { from: last + 1 }
        } else if seq == last && last > 0 {
            Action::Duplicate
        } else {
            Action::Restart
        }
    }

    /// Records that the live batch `seq` was applied.
    pub fn applied(&mut self, seq: u64) {
        if let Some((_, ceiling)) = self.replayed {
            if seq > ceiling || self.last.is_some_and(|l| seq < l) {
                self.replayed = None;
            }
        }
        self.last = Some(seq);
    }

    /// Records that a replay applied `seq` (it keeps the window of live
    /// duplicates: live batches of it may still be queued; see
    /// [`StreamState::replayed`]).
    pub fn replay_applied(&mut self, seq: u64) {
        self.last = Some(seq);
    }

    /// Records a replay that applied `from..=through`: live batches in that
    /// range still in flight are duplicates. A replay that continues the
    /// previous one (a resync after more batches were dropped, while live
    /// batches of the first window are still queued) extends its window
    /// rather than replace it: those queued batches stay duplicates instead
    /// of reading as a restart.
    pub fn replayed(&mut self, from: u64, through: u64) {
        let from = match self.replayed {
            Some((f0, t0)) if from <= t0.saturating_add(1) => f0.min(from),
            _ => from,
        };
        self.last = Some(through);
        self.replayed = Some((from, through));
    }

    /// The last applied number.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Forgets everything (the endpoint was re-registered).
    pub fn reset(&mut self) {
        *self = StreamState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_the_spec() {
        let mut s = StreamState::default();
        assert_eq!(s.classify(7), Action::First);
        s.applied(7);
        assert_eq!(s.classify(8), Action::InOrder);
        assert_eq!(s.classify(7), Action::Duplicate);
        assert_eq!(s.classify(11), Action::Gap { from: 8 });
        assert_eq!(s.classify(0), Action::Restart);
        assert_eq!(s.classify(3), Action::Restart);
        s.reset();
        s.applied(0);
        assert_eq!(s.classify(0), Action::Restart, "0 again is a restart");
    }

    #[test]
    fn replay_ahead_of_live_makes_in_flight_batches_duplicates() {
        let mut s = StreamState::default();
        s.applied(4);
        // Live 7 shows a gap 5..7; the replay brought 5..=9.
        assert_eq!(s.classify(7), Action::Gap { from: 5 });
        s.replayed(5, 9);
        for live in [7, 8, 9] {
            assert_eq!(s.classify(live), Action::Duplicate, "{live}");
        }
        assert_eq!(s.classify(10), Action::InOrder);
        s.applied(10);
        assert_eq!(s.classify(6), Action::Restart, "the window closed");
        assert_eq!(s.classify(0), Action::Restart);
    }

    /// A gap replay, then a resync that continues it (more batches were
    /// dropped at a full queue while the first replay ran): the live
    /// batches of the first window still queued are duplicates, not a
    /// restart that would clear the pod's entries.
    #[test]
    fn a_resync_that_continues_a_replay_keeps_its_window() {
        let mut s = StreamState::default();
        s.applied(4);
        assert_eq!(s.classify(7), Action::Gap { from: 5 });
        s.replayed(7, 9);
        for seq in 10..=14 {
            s.replay_applied(seq); // the resync's replay, batch by batch
        }
        s.replayed(10, 14);
        for live in 7..=14 {
            assert_eq!(s.classify(live), Action::Duplicate, "{live}");
        }
        assert_eq!(s.classify(15), Action::InOrder);
        // A later replay that does not continue it starts its own window.
        s.replayed(20, 22);
        assert_eq!(s.classify(8), Action::Restart);
        assert_eq!(s.classify(21), Action::Duplicate);
    }
}
