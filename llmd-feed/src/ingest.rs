//! The ingest workers: each batch from the network goes through the
//! publisher's sequence state ([`crate::stream`]), is replayed around when
//! batches were lost, and is applied to the scheduler.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmd_kvindex::events::seq::MAX_RANKS_PER_ENDPOINT;
use llmd_kvindex::events::{decode_event_batch, EventBatch, KvEvent};
use llmd_sched::Scheduler;

use crate::options::{FeedOptions, UnrecoverableGap};
use crate::pod::{unix_ns, wall_secs, PodRef, PodStats};
use crate::stream::{Action, StreamState};
use crate::zmq::{replay, ReplayEnd};

/// A batch as it came off a socket.
pub(crate) struct Work {
    pub pod: PodRef,
    /// The data-parallel rank of the socket it came from (each rank
    /// publishes on its own port); `None` on a bound socket, where the
    /// batch's own `data_parallel_rank` tells the publishers of one pod
    /// apart.
    pub rank: Option<i64>,
    pub seq: u64,
    pub payload: Vec<u8>,
    pub received: Instant,
}

/// Pods with a batch dropped at one worker's full queue.
pub(crate) type Drops = Arc<Mutex<Vec<PodRef>>>;

/// Payload bytes waiting in one worker's queue (bounded by
/// [`FeedOptions::queue_max_bytes`] beside the message count).
pub(crate) type Queued = Arc<std::sync::atomic::AtomicUsize>;

/// How long an idle worker waits before looking at its drops again.
const IDLE: Duration = Duration::from_millis(100);

/// Runs one worker until its queue closes. After every batch, and when the
/// queue is idle, it resyncs the pods whose batches were dropped at its full
/// queue, whichever pod the batch it just applied came from.
pub(crate) fn worker(
    sched: &Scheduler,
    opts: &FeedOptions,
    rx: Receiver<Work>,
    drops: &Drops,
    queued: &Queued,
) {
    loop {
        match rx.recv_timeout(IDLE) {
            Ok(w) => {
                queued.fetch_sub(w.payload.len(), Ordering::AcqRel);
                process(sched, opts, w)
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let pods = std::mem::take(&mut *drops.lock().unwrap());
        for pod in pods {
            if pod.dropped.swap(false, Ordering::AcqRel) {
                resync(sched, opts, &pod);
            }
        }
    }
}

/// After batches of `pod` were dropped at a full queue: replays every rank
/// from what it last applied, so that drops at the end of a stream are
/// healed too; batches still queued then arrive as duplicates.
fn resync(sched: &Scheduler, opts: &FeedOptions, pod: &PodRef) {
    if pod.stop.is_stopped() || !pod.stats.registered.load(Ordering::Acquire) {
        return;
    }
    let mut streams = pod.streams.lock().unwrap();
    for (&rank, state) in streams.iter_mut() {
        if pod.stop.is_stopped() {
            return;
        }
        // A stream at u64::MAX has nothing after it to replay.
        if let (Some(next), Some(_)) = (
            state.last().and_then(|l| l.checked_add(1)),
            pod.replay_for(rank),
        ) {
            recover(sched, opts, pod, rank, state, next, None, true);
        }
    }
}

pub(crate) fn process(sched: &Scheduler, opts: &FeedOptions, w: Work) {
    let pod = &w.pod;
    let st = &pod.stats;
    if pod.stop.is_stopped() || !st.registered.load(Ordering::Acquire) {
        PodStats::inc(&st.not_applied);
        return;
    }
    let mut batch = match decode_event_batch(&w.payload) {
        Ok(b) => b,
        Err(_) => {
            PodStats::inc(&st.decode_errors);
            // Not against a pod re-added under the name since.
            pod.unless_removed(|| sched.record_kv_decode_error(pod.name()));
            consume_undecodable(pod, w.rank, w.seq);
            return;
        }
    };
    let rank = w.rank.or(batch.data_parallel_rank).unwrap_or(0);
    let mut streams = pod.streams.lock().unwrap();
    // On a bound socket the rank comes from the payload: a negative one, or
    // a new one past the scheduler's own bound per endpoint, is refused (and
    // counted) rather than grow the pod's state without limit.
    if !streams.contains_key(&rank) && (rank < 0 || streams.len() >= MAX_RANKS_PER_ENDPOINT) {
        PodStats::inc(&st.malformed);
        return;
    }
    let state = streams.entry(rank).or_default();
    // The scheduler tracks sequence numbers per payload rank: give it the
    // rank the feed tracks this stream by (a pod's ranks publishing on their
    // own ports in payloads without a rank would otherwise share rank 0
    // there, and their interleaved numbers read as restarts that clear the
    // pod's entries).
    batch.data_parallel_rank = Some(rank);
    let seq = w.seq;
    match state.classify(seq) {
        Action::InOrder => {}
        Action::Duplicate => {
            PodStats::inc(&st.duplicates);
            return;
        }
        Action::First => {
            if seq > 0 && opts.catch_up && pod.replay_for(rank).is_some() {
                recover(sched, opts, pod, rank, state, 0, Some(seq), false);
            }
        }
        Action::Gap { from } => {
            PodStats::inc(&st.gaps);
            recover(sched, opts, pod, rank, state, from, Some(seq), true);
        }
        Action::Restart => {
            PodStats::inc(&st.restarts);
            if seq > 0 && pod.replay_for(rank).is_some() {
                // The new incarnation's first batches were missed: start
                // from a clean slate and replay them.
                clear(sched, pod, &batch);
                state.reset();
                // Just cleared: the index holds nothing of this publisher,
                // so a replay that cannot reach 0 drops (and counts) no
                // second time.
                recover(sched, opts, pod, rank, state, 0, Some(seq), false);
            }
        }
    }
    if state.classify(seq) == Action::Duplicate {
        // The replay already brought it.
        PodStats::inc(&st.duplicates);
        return;
    }
    apply(sched, pod, &batch, seq, w.received);
    state.applied(seq);
}

/// A live batch of a known stream that does not decode: counted (by the
/// caller) and its number consumed, as a replay consumes one, so that the
/// next batch is not taken for a gap (which would replay the same bytes,
/// count them again, and without a replay socket drop the pod's entries).
/// Out of order, it is left to the next batch's gap handling.
fn consume_undecodable(pod: &PodRef, rank: Option<i64>, seq: u64) {
    let mut streams = pod.streams.lock().unwrap();
    // On a bound socket the rank is in the payload that did not decode: a
    // pod of one data-parallel rank with one stream can only have sent it
    // there; otherwise (a rank whose stream has not started yet could have
    // sent it) the stream is unknown and the next batch of each tells.
    let rank = match rank {
        Some(r) => Some(r),
        None if pod.spec.data_parallel_size <= 1 && streams.len() == 1 => {
            streams.keys().next().copied()
        }
        None => None,
    };
    if let Some(state) = rank.and_then(|r| streams.get_mut(&r)) {
        if state.classify(seq) == Action::InOrder {
            state.applied(seq);
        }
    }
}

/// Replays `from..` so that `live` can follow in order; when the replay
/// cannot cover the gap, drops what is known about the pod (per
/// [`UnrecoverableGap`]). `known` says the index holds earlier state of this
/// publisher (so lost batches matter). With `live` `None` it replays what
/// the pod still buffers and only a replay that starts past `from` (lost for
/// good) drops anything.
#[allow(clippy::too_many_arguments)]
fn recover(
    sched: &Scheduler,
    opts: &FeedOptions,
    pod: &PodRef,
    rank: i64,
    state: &mut StreamState,
    from: u64,
    live: Option<u64>,
    known: bool,
) {
    let st = &pod.stats;
    let wanted = live.is_some();
    let live = live.unwrap_or(u64::MAX);
    let mut next = from;
    let mut cleared = false;
    let backed_off = pod.replay_for(rank).is_some() && replay_backed_off(state);
    if backed_off {
        PodStats::inc(&st.replays_skipped);
    }
    if let Some(ep) = pod.replay_for(rank).filter(|_| !backed_off) {
        // One retry from the first missing number after an incomplete reply.
        // A stopped pod (removed, or the feed stopping) replays no further:
        // its stop waits for at most the replay in flight.
        for _attempt in 0..2 {
            if pod.stop.is_stopped() {
                break;
            }
            let mut hole = false;
            let mut too_old = false;
            let asked = next;
            let r = replay(
                ep,
                next,
                opts.limits,
                opts.replay_timeout,
                |(seq, payload)| {
                    if pod.stop.is_stopped() {
                        return false;
                    }
                    if seq < next {
                        return true; // applied already
                    }
                    if seq > next {
                        if next != from {
                            hole = true; // a hole in the reply: ask again
                            return false;
                        }
                        if seq > live {
                            // Starting past the live batch that asked: what
                            // follows arrives live anyway, and taking these
                            // would mark every live number up to them as
                            // replayed (dropped as duplicates). The gap is
                            // not covered.
                            return false;
                        }
                        too_old = true; // the buffer no longer reaches `from`
                    }
                    let Ok(mut b) = decode_event_batch(payload) else {
                        // Consumed, not applied. Batches from `live` on also
                        // arrive (or arrived) live and are counted there.
                        if seq < live {
                            PodStats::inc(&st.decode_errors);
                            pod.unless_removed(|| sched.record_kv_decode_error(pod.name()));
                        }
                        state.replay_applied(seq);
                        next = seq.saturating_add(1);
                        return true;
                    };
                    b.data_parallel_rank = Some(rank);
                    if too_old && known && !cleared {
                        clear(sched, pod, &b);
                        cleared = true;
                    }
                    apply(sched, pod, &b, seq, Instant::now());
                    state.replay_applied(seq);
                    next = seq.saturating_add(1);
                    true
                },
            );
            let counter = match r {
                Ok(ReplayEnd::Complete) if !hole && too_old => &st.replays_too_old,
                Ok(ReplayEnd::Complete) if !hole => &st.replays_ok,
                Ok(_) => &st.replays_incomplete,
                Err(_) => &st.replays_failed,
            };
            PodStats::inc(counter);
            // A reply cut short by the timeout is asked again from where it
            // stopped, but only when it brought something: a socket that
            // answers nothing held the worker (and every pod it serves) for
            // the whole timeout, and is backed off like one that refuses.
            let timed_out = matches!(r, Ok(ReplayEnd::TimedOut));
            let progressed = next > asked;
            replay_outcome(
                state,
                r.is_ok() && (progressed || !timed_out),
                opts.replay_timeout,
            );
            if r.is_err() || next > live || !(hole || (timed_out && progressed)) {
                break;
            }
        }
    }
    if next > from && (next > live || !wanted) {
        // Live batches still in flight that the replay brought are
        // duplicates: from the live batch that asked for the replay on (the
        // numbers before it were lost, they cannot arrive live), so that a
        // restarted publisher's low numbers are not taken for them.
        state.replayed(if wanted { live } else { from }, next - 1);
    } else if wanted
        && next < live
        && known
        && !cleared
        && opts.on_unrecoverable_gap == UnrecoverableGap::Clear
    {
        let like = EventBatch {
            ts: 0.0,
            data_parallel_rank: Some(rank),
            events: Vec::new(),
            skipped_events: 0,
        };
        clear(sched, pod, &like);
    }
}

/// Longest wait between replays of a stream whose replay socket keeps
/// failing.
const MAX_REPLAY_BACKOFF: Duration = Duration::from_secs(60);

/// Whether this stream's replay socket (its rank's) failed lately and is
/// not to be asked yet: each replay that cannot reach it holds the ingest
/// worker (and every pod it serves) for up to the replay timeout, and the
/// batches dropped meanwhile would ask again at once.
fn replay_backed_off(state: &StreamState) -> bool {
    unix_ns() < state.replay_retry_at_ns
}

/// Records a replay's outcome: a failure backs the stream's replays off
/// (twice the replay timeout first, doubling up to [`MAX_REPLAY_BACKOFF`]);
/// a success ends the back-off.
fn replay_outcome(state: &mut StreamState, ok: bool, timeout: Duration) {
    if ok {
        state.replay_backoff_ns = 0;
        state.replay_retry_at_ns = 0;
        return;
    }
    // Saturating: a timeout of `Duration::MAX` means none.
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let first = nanos(timeout.saturating_mul(2).max(Duration::from_millis(100)));
    let wait = match state.replay_backoff_ns {
        0 => first,
        was => was.saturating_mul(2),
    }
    .min(nanos(MAX_REPLAY_BACKOFF));
    state.replay_backoff_ns = wait;
    state.replay_retry_at_ns = unix_ns().saturating_add(wait);
}

/// Drops every index entry of the pod.
fn clear(sched: &Scheduler, pod: &PodRef, like: &EventBatch) {
    let b = EventBatch {
        ts: like.ts,
        data_parallel_rank: like.data_parallel_rank,
        events: vec![KvEvent::AllBlocksCleared],
        skipped_events: 0,
    };
    if let Some(Ok(_)) = pod.unless_removed(|| sched.ingest_kv_batch(pod.name(), &b)) {
        PodStats::inc(&pod.stats.clears);
    }
}

/// Applies batch `seq` to the scheduler and counts it; the caller records
/// it in the stream state (live or replayed).
fn apply(sched: &Scheduler, pod: &PodRef, batch: &EventBatch, seq: u64, received: Instant) {
    let st = &pod.stats;
    match pod.unless_removed(|| sched.ingest_decoded_kv_events(pod.name(), batch, Some(seq))) {
        // The scheduler's own sequence tracking took it for one it applied.
        Some(Ok(rep)) if rep.ignored => PodStats::inc(&st.duplicates),
        Some(Ok(rep)) => {
            st.blocks_stored
                .fetch_add(rep.stats.stored as u64, Ordering::Relaxed);
            st.blocks_removed
                .fetch_add(rep.stats.removed as u64, Ordering::Relaxed);
            let now = unix_ns();
            st.last_event_unix_ns.store(now, Ordering::Relaxed);
            if batch.ts > 0.0 {
                let lag = wall_secs() - batch.ts;
                st.lag.observe(lag.max(0.0));
            } else {
                st.lag.observe(received.elapsed().as_secs_f64());
            }
            // Counted last and released: a reader that sees a batch counted
            // also sees its blocks, its time and its lag.
            st.batches.fetch_add(1, Ordering::Release);
        }
        // Refused, or the pod was removed meanwhile.
        Some(Err(_)) | None => PodStats::inc(&st.not_applied),
    }
}
