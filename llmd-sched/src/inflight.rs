//! In-flight load: requests and uncached prompt tokens this scheduler has sent
//! to each endpoint, released by the request lifecycle calls.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::EndpointState;

/// How a request's token contribution is released.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReleasePolicy {
    /// `addEstimatedOutputTokens`: output estimates stay until generated.
    pub estimated_output: bool,
}

#[derive(Debug)]
struct Contribution {
    ep: Arc<EndpointState>,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    prefill: bool,
}

#[derive(Debug)]
struct Entry {
    /// Serial number of the request's opening (the scheduler's).
    opening: u64,
    parts: Vec<Contribution>,
    first_token_seen: bool,
}

/// Per-request contributions, keyed by request id.
#[derive(Debug, Default)]
pub struct InFlightTable {
    map: Mutex<HashMap<String, Entry>>,
}

/// One endpoint's share of a request being recorded.
#[derive(Debug)]
pub struct Share {
    /// The endpoint.
    pub ep: Arc<EndpointState>,
    /// Uncached prompt tokens sent there.
    pub input_tokens: i64,
    /// Estimated output tokens (0 unless `addEstimatedOutputTokens`).
    pub output_tokens: i64,
    /// True for the prefill profile's pick (released entirely at first token).
    pub prefill: bool,
}

impl InFlightTable {
    /// Records a routed request opened under serial number `opening`
    /// ([`crate::CycleContext::opening`]); a request id already in flight is
    /// released first. Of two picks of one id the later opening keeps the
    /// id whichever records first, as in the open-request table, so the
    /// tables agree on which request an id is.
    pub fn record(&self, request_id: &str, opening: u64, shares: Vec<Share>) {
        let parts: Vec<Contribution> = shares
            .into_iter()
            .map(|s| {
                s.ep.add_inflight(1, s.input_tokens + s.output_tokens);
                Contribution {
                    ep: s.ep,
                    requests: 1,
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    prefill: s.prefill,
                }
            })
            .collect();
        let entry = Entry {
            opening,
            parts,
            first_token_seen: false,
        };
        let released = {
            let mut map = self.map.lock();
            match map.get_mut(request_id) {
                // A later pick of the id recorded first: this one is over.
                Some(newer) if newer.opening > opening => Some(entry),
                Some(older) => Some(std::mem::replace(older, entry)),
                None => {
                    map.insert(request_id.to_string(), entry);
                    None
                }
            }
        };
        if let Some(e) = released {
            release_all(&e);
        }
    }

    /// First token: prompt tokens are done everywhere; the prefill share ends entirely.
    /// Returns false for an unknown request id.
    pub fn first_token(&self, request_id: &str) -> bool {
        let mut map = self.map.lock();
        let Some(e) = map.get_mut(request_id) else {
            return false;
        };
        if e.first_token_seen {
            return true;
        }
        e.first_token_seen = true;
        for c in &mut e.parts {
            let req = if c.prefill {
                std::mem::take(&mut c.requests)
            } else {
                0
            };
            let out = if c.prefill {
                std::mem::take(&mut c.output_tokens)
            } else {
                0
            };
            c.ep.add_inflight(-req, -(c.input_tokens + out));
            c.input_tokens = 0;
        }
        true
    }

    /// `n` output tokens generated: estimated output shrinks by `n`.
    pub fn tokens(&self, request_id: &str, n: u64) -> bool {
        let mut map = self.map.lock();
        let Some(e) = map.get_mut(request_id) else {
            return false;
        };
        for c in &mut e.parts {
            let d = c.output_tokens.min(i64::try_from(n).unwrap_or(i64::MAX));
            c.output_tokens -= d;
            c.ep.add_inflight(0, -d);
        }
        true
    }

    /// The request is served by `ep` instead of `target`, its primary
    /// (decode) target: the host fell back to another endpoint. What it
    /// still holds on `target` moves to `ep`; an unknown request id holds
    /// nothing.
    pub fn reassign(&self, request_id: &str, target: &str, ep: &Arc<EndpointState>) {
        let mut map = self.map.lock();
        let Some(e) = map.get_mut(request_id) else {
            return;
        };
        let primary = e
            .parts
            .iter_mut()
            .find(|c| !c.prefill && c.ep.name() == target);
        if let Some(c) = primary {
            if !Arc::ptr_eq(&c.ep, ep) {
                let tokens = c.input_tokens + c.output_tokens;
                c.ep.add_inflight(-c.requests, -tokens);
                ep.add_inflight(c.requests, tokens);
                c.ep = ep.clone();
            }
        }
    }

    /// Completion, error or cancel: everything the request still holds is released.
    pub fn finish(&self, request_id: &str) -> bool {
        self.finish_if(request_id, |_| true)
    }

    /// As [`InFlightTable::finish`], only if `request_id` is still the
    /// request opened under `opening`: an expiry that closed an old request
    /// leaves a newer one that reused its id alone.
    pub fn finish_opening(&self, request_id: &str, opening: u64) -> bool {
        self.finish_if(request_id, |e| e.opening == opening)
    }

    /// Releases `request_id` if `wanted` says so of its entry.
    fn finish_if(&self, request_id: &str, wanted: impl FnOnce(&Entry) -> bool) -> bool {
        let e = {
            let mut map = self.map.lock();
            match map.get(request_id) {
                Some(e) if wanted(e) => map.remove(request_id),
                _ => None,
            }
        };
        match e {
            Some(e) => {
                release_all(&e);
                true
            }
            None => false,
        }
    }

    /// Requests currently tracked.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn release_all(e: &Entry) {
    for c in &e.parts {
        c.ep.add_inflight(-c.requests, -(c.input_tokens + c.output_tokens));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn share(ep: &Arc<EndpointState>, tokens: i64) -> Vec<Share> {
        vec![Share {
            ep: ep.clone(),
            input_tokens: tokens,
            output_tokens: 0,
            prefill: false,
        }]
    }

    /// An expiry that closed request "x" (opening 1) and releases its load
    /// after a new request took the id (opening 2) leaves the new one's
    /// load alone; the new one's own release takes it.
    #[test]
    fn an_expired_opening_does_not_release_a_newer_one() {
        let ep = Arc::new(EndpointState::new(Endpoint::new("e", "10.0.0.1:8000")));
        let t = InFlightTable::default();
        t.record("x", 1, share(&ep, 100));
        // The host reused the id: the first request's load is released.
        t.record("x", 2, share(&ep, 40));
        assert_eq!((ep.inflight_requests(), ep.inflight_tokens()), (1, 40));
        assert!(!t.finish_opening("x", 1));
        assert_eq!((ep.inflight_requests(), ep.inflight_tokens()), (1, 40));
        assert!(t.finish_opening("x", 2));
        assert_eq!((ep.inflight_requests(), ep.inflight_tokens()), (0, 0));
        assert!(t.is_empty());
    }

    /// Two picks of one id recording out of order: the later opening keeps
    /// the id, the earlier one's load is released at once.
    #[test]
    fn the_later_opening_keeps_the_id_whatever_the_order() {
        let ep = Arc::new(EndpointState::new(Endpoint::new("e", "10.0.0.1:8000")));
        let t = InFlightTable::default();
        t.record("x", 2, share(&ep, 40));
        t.record("x", 1, share(&ep, 100));
        assert_eq!((ep.inflight_requests(), ep.inflight_tokens()), (1, 40));
        assert!(!t.finish_opening("x", 1));
        assert!(t.finish_opening("x", 2));
        assert_eq!((ep.inflight_requests(), ep.inflight_tokens()), (0, 0));
    }
}
