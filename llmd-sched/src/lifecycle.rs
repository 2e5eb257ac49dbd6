//! Per-request records kept between `pick` and completion, for the lifecycle calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// How a request ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestErrorKind {
    /// The client went away.
    Cancelled,
    /// The upstream endpoint failed or timed out.
    Upstream,
    /// Anything else.
    Other,
}

/// What is known about a finished request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestSummary {
    /// Request id.
    pub id: String,
    /// Primary target name.
    pub target: String,
    /// Remote prefill target name, if any.
    pub prefill_target: Option<String>,
    /// Prompt tokens as scheduled.
    pub prompt_tokens: u64,
    /// Clock time of the decision.
    pub scheduled_at_ns: u64,
    /// Clock time of the first token, if seen.
    pub first_token_at_ns: Option<u64>,
    /// Clock time of completion or failure.
    pub finished_at_ns: u64,
    /// Output tokens: the engine's `completion_tokens` when reported at
    /// completion, else those counted by the token calls (the first token
    /// counts once).
    pub output_tokens: u64,
    /// Prompt tokens served from cache, as the engine reported.
    pub cached_tokens: Option<u32>,
    /// Set when the request failed.
    pub error: Option<RequestErrorKind>,
    /// The latency model's prediction for the request on its target at
    /// dispatch (with a `predicted-latency-producer`), to set beside the
    /// measured TTFT and TPOT.
    pub predicted: Option<crate::framework::LatencyPrediction>,
}

/// What the latency model needs to learn from a request's outcome.
#[derive(Clone, Debug)]
pub(crate) struct LatencySample {
    pub uid: u64,
    pub endpoint: std::sync::Arc<str>,
    pub features: crate::latency::LatencyFeatures,
    pub prediction: Option<crate::framework::LatencyPrediction>,
    pub tpot_slo_ms: f64,
    pub streaming: bool,
    /// False once the request moved to another endpoint than the one its
    /// features describe: its timings then teach the model nothing.
    pub train: bool,
    /// Under P/D, the prefill endpoint, where the first token is made: the
    /// request's TTFT is learnt and judged there.
    pub prefill: Option<PrefillLatency>,
}

/// The prefill leg of a P/D request's latency sample.
#[derive(Clone, Debug)]
pub(crate) struct PrefillLatency {
    pub uid: u64,
    pub endpoint: std::sync::Arc<str>,
    pub features: crate::latency::LatencyFeatures,
    /// Predicted TTFT there, ms.
    pub ttft_ms: Option<f64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub latency: Option<LatencySample>,
    pub target: String,
    pub prefill_target: Option<String>,
    pub prompt_tokens: u64,
    pub scheduled_at_ns: u64,
    pub first_token_at_ns: Option<u64>,
    pub output_tokens: u64,
}

impl Record {
    /// Marks the first token at `now`: the latency sample (if any) and the
    /// time since the request was scheduled.
    fn first_token(&mut self, now: u64) -> Option<(LatencySample, u64)> {
        self.first_token_at_ns = Some(now);
        let since = now.saturating_sub(self.scheduled_at_ns);
        self.latency.clone().map(|l| (l, since))
    }
}

/// The open-request table. Each record carries the serial number of its
/// opening (taken when its pick begins, [`Requests::next_serial`]), so a
/// listing of old requests closes exactly the requests it listed, not newer
/// ones that took their ids since; the in-flight load table keeps the same
/// serial for the same reason.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    map: Mutex<HashMap<String, (u64, Record)>>,
    /// Records in `map`, readable without the lock.
    len: AtomicUsize,
    /// Serial number of the next opening.
    serial: AtomicU64,
}

/// An open request as listed for expiry: its id and the serial number of
/// its opening.
pub(crate) type Listed = (String, u64);

/// What [`Requests::tokens`] saw.
pub(crate) struct TokensSeen {
    /// The endpoint uid of the request's latency sample, when it has one.
    pub uid: Option<u64>,
    /// `Some` when these were the request's first tokens: its latency
    /// sample (if any) and the time since it was scheduled.
    pub first: Option<Option<(LatencySample, u64)>>,
}

impl Requests {
    /// A new serial number for a request being picked, from 1 (0 means
    /// "no serial" to the metrics).
    pub fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }
    /// Opens `id` under `serial` (from [`Requests::next_serial`]); returns
    /// the record of an open request it replaces (the host reused an id),
    /// whose accounting the caller releases. Of two picks of one id the
    /// later serial keeps it whichever opens first (the other record is
    /// returned), as in the in-flight load table.
    pub fn open(&self, id: &str, serial: u64, r: Record) -> Option<Record> {
        let mut map = self.map.lock();
        let old = match map.get_mut(id) {
            Some((newer, _)) if *newer > serial => return Some(r),
            Some(slot) => Some(std::mem::replace(slot, (serial, r))),
            None => {
                map.insert(id.to_string(), (serial, r));
                None
            }
        };
        self.len.store(map.len(), Ordering::Relaxed);
        old.map(|(_, r)| r)
    }
    /// The requests scheduled before `cutoff_ns`.
    pub fn older_than(&self, cutoff_ns: u64) -> Vec<Listed> {
        self.map
            .lock()
            .iter()
            .filter(|(_, (_, r))| r.scheduled_at_ns < cutoff_ns)
            .map(|(id, (serial, _))| (id.clone(), *serial))
            .collect()
    }
    /// The `n` requests opened first (fewer when fewer are open), by
    /// scheduling time, then by order of opening. One pass over the table
    /// and a selection: O(open requests).
    pub fn oldest(&self, n: usize) -> Vec<Listed> {
        let map = self.map.lock();
        let mut all: Vec<(u64, u64, &String)> = map
            .iter()
            .map(|(id, (serial, r))| (r.scheduled_at_ns, *serial, id))
            .collect();
        if n < all.len() {
            all.select_nth_unstable(n);
            all.truncate(n);
        }
        all.into_iter()
            .map(|(_, serial, id)| (id.clone(), serial))
            .collect()
    }
    /// Marks the first token. `None` for an unknown id; else, the first time,
    /// the latency sample with the time since dispatch (ns).
    pub fn first_token(&self, id: &str, now: u64) -> Option<Option<(LatencySample, u64)>> {
        let mut map = self.map.lock();
        let (_, r) = map.get_mut(id)?;
        if r.first_token_at_ns.is_some() {
            return Some(None);
        }
        r.output_tokens = r.output_tokens.max(1);
        Some(r.first_token(now))
    }
    /// Counts `n` more output tokens at clock time `now`. `None` for an
    /// unknown id; else the endpoint uid of its latency sample, when it has
    /// one, and, when these are its first tokens (a host that streams
    /// without reporting the first token), what [`Requests::first_token`]
    /// gives for a first token.
    pub fn tokens(&self, id: &str, n: u64, now: u64) -> Option<TokensSeen> {
        let mut map = self.map.lock();
        let (_, r) = map.get_mut(id)?;
        let first = (n > 0 && r.first_token_at_ns.is_none()).then(|| r.first_token(now));
        r.output_tokens = r.output_tokens.saturating_add(n);
        Some(TokensSeen {
            uid: r.latency.as_ref().map(|l| l.uid),
            first,
        })
    }
    /// The request is served by `target` (uid `uid`) instead: the record
    /// names it, and its latency sample moves there, untrained and without
    /// a prediction. `moved(was, sample)` runs under the table's lock with
    /// the target it had and the sample as it was, so the caller's own
    /// accounting moves before any other lifecycle call on the request can
    /// see the new target. `None` for an unknown id; `Some(false)` when
    /// `target` is the request's already.
    pub fn reassign(
        &self,
        id: &str,
        target: &str,
        uid: u64,
        moved: impl FnOnce(&str, Option<&LatencySample>),
    ) -> Option<bool> {
        let mut map = self.map.lock();
        let (_, r) = map.get_mut(id)?;
        if r.target == target {
            return Some(false);
        }
        moved(&r.target, r.latency.as_ref());
        r.target = target.to_string();
        if let Some(l) = r.latency.as_mut() {
            l.uid = uid;
            l.endpoint = target.into();
            l.prediction = None;
            l.train = false;
        }
        Some(true)
    }

    pub fn close(
        &self,
        id: &str,
        now: u64,
        usage: crate::observe::Usage,
        error: Option<RequestErrorKind>,
    ) -> Option<(RequestSummary, Option<LatencySample>)> {
        self.close_if(id, now, usage, error, |_| true)
    }

    /// Closes a listed request as expired, only if it is still the one
    /// listed: a request that reused the id of one being expired is not
    /// the one expired.
    pub fn close_listed(
        &self,
        (id, serial): &Listed,
        now: u64,
    ) -> Option<(RequestSummary, Option<LatencySample>)> {
        self.close_if(
            id,
            now,
            crate::observe::Usage::default(),
            Some(RequestErrorKind::Other),
            |s| s == *serial,
        )
    }

    fn close_if(
        &self,
        id: &str,
        now: u64,
        usage: crate::observe::Usage,
        error: Option<RequestErrorKind>,
        cond: impl FnOnce(u64) -> bool,
    ) -> Option<(RequestSummary, Option<LatencySample>)> {
        let r = {
            let mut map = self.map.lock();
            if !cond(map.get(id)?.0) {
                return None;
            }
            let (_, r) = map.remove(id)?;
            self.len.store(map.len(), Ordering::Relaxed);
            r
        };
        let cached = usage.cached_tokens;
        let summary = RequestSummary {
            id: id.to_string(),
            target: r.target,
            prefill_target: r.prefill_target,
            prompt_tokens: r.prompt_tokens,
            scheduled_at_ns: r.scheduled_at_ns,
            first_token_at_ns: r.first_token_at_ns,
            finished_at_ns: now,
            output_tokens: usage.output_tokens.map_or(r.output_tokens, u64::from),
            cached_tokens: cached,
            error,
            // TTFT as predicted where the first token is made (the
            // prefill endpoint under P/D), TPOT on the decode endpoint.
            predicted: r.latency.as_ref().and_then(|l| {
                let mut p = l.prediction?;
                if let Some(t) = l.prefill.as_ref().and_then(|x| x.ttft_ms) {
                    p.ttft_ms = t;
                }
                Some(p)
            }),
        };
        Some((summary, r.latency))
    }
    /// Requests open (read without the table's lock).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: u64) -> Record {
        Record {
            latency: None,
            target: "e".into(),
            prefill_target: None,
            prompt_tokens: 1,
            scheduled_at_ns: at,
            first_token_at_ns: None,
            output_tokens: 0,
        }
    }

    /// An expiry that listed an id does not close a newer request that
    /// took the id meanwhile.
    #[test]
    fn expiry_closes_only_the_old_request() {
        let r = Requests::default();
        r.open("x", r.next_serial(), record(10));
        let listed = r.older_than(50);
        assert_eq!(listed, vec![("x".to_string(), 1)]);
        r.open("x", r.next_serial(), record(60)); // the id reused after the listing
        assert!(r.close_listed(&listed[0], 100).is_none());
        assert_eq!(r.len(), 1);
        let listed = r.older_than(70);
        let (s, _) = r.close_listed(&listed[0], 100).unwrap();
        assert_eq!(
            (s.scheduled_at_ns, s.error),
            (60, Some(RequestErrorKind::Other))
        );
        assert_eq!(r.len(), 0);
    }

    /// Two picks of one id opening out of order: the later serial keeps the
    /// id, and the earlier record is handed back for release.
    #[test]
    fn the_later_serial_keeps_the_id_whatever_the_order() {
        let r = Requests::default();
        let (a, b) = (r.next_serial(), r.next_serial());
        assert!(r.open("x", b, record(20)).is_none());
        let back = r.open("x", a, record(10)).unwrap();
        assert_eq!(back.scheduled_at_ns, 10);
        assert_eq!(r.older_than(100), vec![("x".to_string(), b)]);
        assert_eq!(r.len(), 1);
    }

    /// The oldest requests are those scheduled first; among requests
    /// scheduled at the same time, those opened first.
    #[test]
    fn oldest_orders_by_time_then_opening() {
        let r = Requests::default();
        for (id, at) in [("c", 30), ("a", 10), ("b", 10), ("d", 20)] {
            r.open(id, r.next_serial(), record(at));
        }
        let mut ids: Vec<String> = r.oldest(3).into_iter().map(|(id, _)| id).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "d"]);
        let ids: Vec<String> = r.oldest(1).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(r.oldest(10).len(), 4);
        assert!(r.oldest(0).is_empty());
    }
}
