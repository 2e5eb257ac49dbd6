//! Per-request records kept between `pick` and completion, for the lifecycle calls.

use std::collections::HashMap;

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

/// The open-request table.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    map: Mutex<HashMap<String, Record>>,
}

/// What [`Requests::tokens`] saw.
pub(crate) struct TokensSeen {
    /// The endpoint uid of the request's latency sample, when it has one.
    pub uid: Option<u64>,
    /// `Some` when these were the request's first tokens: its latency
    /// sample (if any) and the time since it was scheduled.
    pub first: Option<Option<(LatencySample, u64)>>,
}

impl Requests {
    /// Opens `id`; returns the record of an open request it replaces (the
    /// host reused an id), whose accounting the caller releases.
    pub fn open(&self, id: &str, r: Record) -> Option<Record> {
        self.map.lock().insert(id.to_string(), r)
    }
    /// Ids of the requests scheduled before `cutoff_ns`.
    pub fn older_than(&self, cutoff_ns: u64) -> Vec<String> {
        self.map
            .lock()
            .iter()
            .filter(|(_, r)| r.scheduled_at_ns < cutoff_ns)
            .map(|(id, _)| id.clone())
            .collect()
    }
    /// Marks the first token. `None` for an unknown id; else, the first time,
    /// the latency sample with the time since dispatch (ns).
    pub fn first_token(&self, id: &str, now: u64) -> Option<Option<(LatencySample, u64)>> {
        let mut map = self.map.lock();
        let r = map.get_mut(id)?;
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
        let r = map.get_mut(id)?;
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
        let r = map.get_mut(id)?;
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

    /// As [`close`](Self::close), only when the request open under `id` was
    /// scheduled before `cutoff_ns`: a request that reused the id of one
    /// being expired is not the one expired.
    pub fn close_if_older(
        &self,
        id: &str,
        cutoff_ns: u64,
        now: u64,
    ) -> Option<(RequestSummary, Option<LatencySample>)> {
        self.close_if(
            id,
            now,
            crate::observe::Usage::default(),
            Some(RequestErrorKind::Other),
            |r| r.scheduled_at_ns < cutoff_ns,
        )
    }

    fn close_if(
        &self,
        id: &str,
        now: u64,
        usage: crate::observe::Usage,
        error: Option<RequestErrorKind>,
        cond: impl FnOnce(&Record) -> bool,
    ) -> Option<(RequestSummary, Option<LatencySample>)> {
        let r = {
            let mut map = self.map.lock();
            if !cond(map.get(id)?) {
                return None;
            }
            map.remove(id)?
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
            predicted: r.latency.as_ref().and_then(|l| l.prediction),
        };
        Some((summary, r.latency))
    }
    pub fn len(&self) -> usize {
        self.map.lock().len()
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
        r.open("x", record(10));
        assert_eq!(r.older_than(50), vec!["x".to_string()]);
        r.open("x", record(60)); // the id reused after the listing
        assert!(r.close_if_older("x", 50, 100).is_none());
        assert_eq!(r.len(), 1);
        let (s, _) = r.close_if_older("x", 70, 100).unwrap();
        assert_eq!(
            (s.scheduled_at_ns, s.error),
            (60, Some(RequestErrorKind::Other))
        );
    }
}
