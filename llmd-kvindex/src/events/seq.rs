//! Per-publisher sequence tracking (vLLM SPEC §3.2): vLLM numbers batches
//! 0, 1, 2, … per process and data-parallel rank and starts again at 0 when
//! the engine restarts.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Most data-parallel ranks remembered per endpoint. The rank comes from
/// the payload, so a hostile publisher could otherwise grow the table
/// without bound; past the cap the oldest rank is forgotten.
pub const MAX_RANKS_PER_ENDPOINT: usize = 256;

/// What a sequence number means relative to the last one of its publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeqStatus {
    /// The first number seen from this (endpoint, rank).
    First,
    /// `seq == last + 1`.
    InOrder,
    /// `seq > last + 1`: `missing` batches were lost (replay them, or drop
    /// what is known about the publisher).
    Gap {
        /// Number of batches between `last` and `seq`.
        missing: u64,
    },
    /// `seq == 0`, or `seq < last`: the publisher restarted, its cache is
    /// empty. Drop its entries, then apply this batch.
    Restart,
    /// `seq == last` with `last > 0`: the same batch again (e.g. a replay
    /// overlapping the live stream), or a number of the last gap already
    /// replayed. Ignore the batch.
    Duplicate,
    /// `seq < last`, the next lost number of a recent [`SeqStatus::Gap`]:
    /// one of the lost batches, brought in order by the publisher's replay
    /// socket after the live batch that showed the gap. Apply it; `last`
    /// stays.
    Replayed,
}

/// Last sequence number per (endpoint, data-parallel rank).
///
/// Rule for `seq == last`: a repeated number greater than 0 is a
/// [`SeqStatus::Duplicate`]; a repeated 0 is a [`SeqStatus::Restart`]. ZMQ
/// PUB/SUB never redelivers, so 0 again means an engine that restarted after
/// publishing a single batch; treating it as a restart is also safe if it
/// were a duplicate, since dropping the publisher's entries and applying
/// batch 0 again leaves exactly batch 0's effects.
///
/// Replays: a host that applies the live batch showing a gap first and then
/// asks the publisher's replay socket for the lost ones gets numbers below
/// `last`. The replay socket sends them in order, so a number is
/// [`SeqStatus::Replayed`] only when it is the next lost number of one of
/// the [`MAX_GAPS`] most recent gaps (a number of a gap being replayed that
/// was replayed already is a [`SeqStatus::Duplicate`]; a gap once filled is
/// forgotten); any other number below `last` is a restart, which forgets
/// the gaps. vLLM's replay socket sends everything it holds from the number
/// asked for, the batches after the gap too: a host stops reading it after
/// the gap's last number, since those later batches, applied live already,
/// would read as a restart. Lost batches applied after later ones can undo
/// what the later ones did (a block stored again after its removal):
/// replaying before applying the batch that showed the gap, as
/// `llmd-feed` does, keeps the order.
///
/// ```
/// use llmd_kvindex::events::{SeqStatus, SeqTracker};
/// let mut t: SeqTracker = SeqTracker::new();
/// assert_eq!(t.observe("pod-a", 0, 0), SeqStatus::First);
/// assert_eq!(t.observe("pod-a", 0, 1), SeqStatus::InOrder);
/// assert_eq!(t.observe("pod-a", 0, 4), SeqStatus::Gap { missing: 2 });
/// assert_eq!(t.observe("pod-a", 0, 2), SeqStatus::Replayed);
/// assert_eq!(t.observe("pod-a", 0, 3), SeqStatus::Replayed);
/// assert_eq!(t.observe("pod-a", 0, 5), SeqStatus::InOrder);
/// assert_eq!(t.observe("pod-a", 0, 0), SeqStatus::Restart);
/// ```
#[derive(Clone, Debug)]
pub struct SeqTracker<K = String> {
    endpoints: HashMap<K, Vec<RankSeq>, ahash::RandomState>,
}

/// Recent gaps remembered per (endpoint, rank) for their replays.
pub const MAX_GAPS: usize = 4;

/// One (endpoint, rank)'s numbers.
#[derive(Clone, Copy, Debug)]
struct RankSeq {
    rank: i64,
    last: u64,
    /// Recent gaps with numbers not yet replayed, oldest first.
    gaps: [Option<Lost>; MAX_GAPS],
}

/// A gap's lost numbers `start ..= end`; `next ..= end` not yet replayed.
#[derive(Clone, Copy, Debug)]
struct Lost {
    start: u64,
    next: u64,
    end: u64,
}

impl<K: Eq + Hash> Default for SeqTracker<K> {
    fn default() -> Self {
        SeqTracker {
            endpoints: HashMap::default(),
        }
    }
}

impl<K: Eq + Hash> SeqTracker<K> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `seq` for (`endpoint`, `dp_rank`) and classifies it. Use rank
    /// 0 for batches that carry none.
    pub fn observe<Q>(&mut self, endpoint: &Q, dp_rank: i64, seq: u64) -> SeqStatus
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(ranks) = self.endpoints.get_mut(endpoint) {
            return observe_rank(ranks, dp_rank, seq);
        }
        let mut ranks = Vec::with_capacity(1);
        let status = observe_rank(&mut ranks, dp_rank, seq);
        self.endpoints.insert(endpoint.to_owned(), ranks);
        status
    }

    /// The last sequence number recorded for (`endpoint`, `dp_rank`).
    pub fn last<Q>(&self, endpoint: &Q, dp_rank: i64) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let ranks = self.endpoints.get(endpoint)?;
        ranks.iter().find(|r| r.rank == dp_rank).map(|r| r.last)
    }

    /// Forgets every rank of `endpoint` (it left the fleet); its next
    /// number is [`SeqStatus::First`] again.
    pub fn forget<Q>(&mut self, endpoint: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.endpoints.remove(endpoint);
    }

    /// Number of endpoints tracked.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether no endpoint is tracked.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

/// Records `seq` in one endpoint's rank table.
fn observe_rank(ranks: &mut Vec<RankSeq>, dp_rank: i64, seq: u64) -> SeqStatus {
    let Some(slot) = ranks.iter_mut().find(|r| r.rank == dp_rank) else {
        if ranks.len() >= MAX_RANKS_PER_ENDPOINT {
            ranks.remove(0);
        }
        ranks.push(RankSeq {
            rank: dp_rank,
            last: seq,
            gaps: [None; MAX_GAPS],
        });
        return SeqStatus::First;
    };
    if seq != 0 && seq < slot.last {
        for g in slot.gaps.iter_mut() {
            let Some(lost) = *g else { continue };
            if seq == lost.next {
                *g = (seq < lost.end).then_some(Lost {
                    next: seq + 1,
                    ..lost
                });
                return SeqStatus::Replayed;
            }
            if (lost.start..lost.next).contains(&seq) {
                return SeqStatus::Duplicate;
            }
        }
    }
    let status = classify(slot.last, seq);
    match status {
        SeqStatus::Duplicate => {}
        SeqStatus::Gap { .. } => {
            // The oldest gap makes room.
            slot.gaps.rotate_left(1);
            slot.gaps[MAX_GAPS - 1] = Some(Lost {
                start: slot.last + 1,
                next: slot.last + 1,
                end: seq - 1,
            });
            slot.last = seq;
        }
        SeqStatus::Restart => {
            slot.gaps = [None; MAX_GAPS];
            slot.last = seq;
        }
        _ => slot.last = seq,
    }
    status
}

fn classify(last: u64, seq: u64) -> SeqStatus {
    if seq == 0 || seq < last {
        SeqStatus::Restart
    } else if seq == last {
        SeqStatus::Duplicate
    } else if seq - last == 1 {
        SeqStatus::InOrder
    } else {
        SeqStatus::Gap {
            missing: seq - last - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_transition() {
        let mut t: SeqTracker = SeqTracker::new();
        assert_eq!(t.observe("a", 0, 5), SeqStatus::First);
        assert_eq!(t.observe("a", 0, 5), SeqStatus::Duplicate);
        assert_eq!(t.observe("a", 0, 6), SeqStatus::InOrder);
        assert_eq!(t.observe("a", 0, 3), SeqStatus::Restart);
        assert_eq!(t.last("a", 0), Some(3));
        assert_eq!(t.observe("a", 0, 0), SeqStatus::Restart);
        assert_eq!(t.observe("a", 0, 0), SeqStatus::Restart);
        assert_eq!(t.observe("a", 0, 1), SeqStatus::InOrder);
        assert_eq!(
            t.observe("a", 0, u64::MAX),
            SeqStatus::Gap {
                missing: u64::MAX - 2
            }
        );
        // Ranks and endpoints are independent.
        assert_eq!(t.observe("a", 1, 9), SeqStatus::First);
        assert_eq!(t.observe("b", 0, 1), SeqStatus::First);
        t.forget("a");
        assert_eq!(t.len(), 1);
        assert_eq!(t.observe("a", 0, 7), SeqStatus::First);
    }

    /// The lost batches of the last gap, replayed after the live batch that
    /// showed it, are applied and leave `last` alone; repeats of them are
    /// duplicates, and a restart still reads as one.
    #[test]
    fn replays_of_the_last_gap_are_not_restarts() {
        let mut t: SeqTracker = SeqTracker::new();
        assert_eq!(t.observe("a", 0, 10), SeqStatus::First);
        assert_eq!(t.observe("a", 0, 14), SeqStatus::Gap { missing: 3 });
        assert_eq!(t.observe("a", 0, 11), SeqStatus::Replayed);
        assert_eq!(t.observe("a", 0, 11), SeqStatus::Duplicate);
        assert_eq!(t.observe("a", 0, 12), SeqStatus::Replayed);
        assert_eq!(t.last("a", 0), Some(14));
        assert_eq!(t.observe("a", 0, 15), SeqStatus::InOrder);
        assert_eq!(t.observe("a", 0, 13), SeqStatus::Replayed);
        // The gap is filled: 12 again is below last and outside any gap.
        assert_eq!(t.observe("a", 0, 12), SeqStatus::Restart);
        assert_eq!(t.observe("a", 0, 13), SeqStatus::InOrder);
        // A second gap while the first is replayed: both are followed.
        assert_eq!(t.observe("a", 0, 20), SeqStatus::Gap { missing: 6 });
        assert_eq!(t.observe("a", 0, 30), SeqStatus::Gap { missing: 9 });
        assert_eq!(t.observe("a", 0, 14), SeqStatus::Replayed);
        assert_eq!(t.observe("a", 0, 21), SeqStatus::Replayed);
        assert_eq!(t.observe("a", 0, 15), SeqStatus::Replayed);
        // A number that skips ahead in a gap is no replay (the socket sends
        // in order): a publisher that restarted and lost its first batches.
        assert_eq!(t.observe("a", 0, 25), SeqStatus::Restart);
        assert_eq!(t.observe("a", 0, 40), SeqStatus::Gap { missing: 14 });
        assert_eq!(t.observe("a", 0, 0), SeqStatus::Restart);
        assert_eq!(t.observe("a", 0, 20), SeqStatus::Gap { missing: 19 });
        assert_eq!(t.observe("a", 0, 1), SeqStatus::Replayed);
        // Only the most recent gaps are followed.
        for k in 1..=MAX_GAPS as u64 {
            t.observe("a", 0, 20 + 2 * k);
        }
        assert_eq!(t.observe("a", 0, 2), SeqStatus::Restart);
    }

    #[test]
    fn ranks_per_endpoint_are_capped() {
        let mut t: SeqTracker = SeqTracker::new();
        for rank in 0..(MAX_RANKS_PER_ENDPOINT as i64 + 10) {
            t.observe("a", rank, 0);
        }
        assert_eq!(t.endpoints["a"].len(), MAX_RANKS_PER_ENDPOINT);
        assert_eq!(t.last("a", 0), None);
        assert_eq!(t.last("a", MAX_RANKS_PER_ENDPOINT as i64 + 9), Some(0));
    }
}
