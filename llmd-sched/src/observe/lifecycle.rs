//! Lifecycle calls from the host: first token, further tokens, end of the
//! prefill leg, completion and failure. Each takes the time it happened.

use super::goodput;
use super::inflight::InFlight;
use super::labels::{ErrorKind, Outcome};
use super::metrics::Metrics;
use super::record::Usage;
use std::time::Duration;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Metrics {
    fn missing(&self) -> bool {
        self.fam.unknown_calls.inc();
        false
    }

    /// The request `request_id` is served by `endpoint` instead of its
    /// decode target: its in-flight gauges move there, its request and
    /// output-token series are labelled with it and its latency series are
    /// its pool's from now on, and the cache hit predicted on the first
    /// target is dropped. False when the request is not tracked.
    pub fn on_served_by(&self, request_id: &str, endpoint: &str) -> bool {
        let Some((from, same)) = self.table.with(request_id, |r| {
            let same = &*r.route.endpoint.endpoint == endpoint;
            (r.route.clone(), same)
        }) else {
            return self.missing();
        };
        if same {
            return true;
        }
        // The new route is made outside the table's lock.
        let route = self.reroute(&from, endpoint);
        let requests = self.route_requests(&route);
        self.table
            .with(request_id, |r| {
                let tokens = i64::from(r.prompt) + r.tokens as i64;
                r.route.endpoint.inflight_requests.dec();
                r.route.endpoint.inflight_tokens.dec_by(tokens);
                route.endpoint.inflight_requests.inc();
                route.endpoint.inflight_tokens.inc_by(tokens);
                r.route = route;
                r.requests = requests;
                // What was predicted cached on the first target says
                // nothing of this one.
                if r.prefill.is_none() {
                    r.predicted_tokens = 0;
                }
            })
            .is_some()
    }

    /// The first output token of `request_id` arrived at `now`. Returns
    /// whether the request is tracked.
    /// A second call for the same request changes nothing (as in the
    /// scheduler's own accounting).
    pub fn on_first_token(&self, request_id: &str, now: Duration) -> bool {
        let found = self.table.with(request_id, |r| {
            if r.first.is_none() {
                add_tokens(r, 1, now);
            }
        });
        found.is_some() || self.missing()
    }

    /// `n` output tokens of `request_id` arrived at `now` (one streamed
    /// chunk). The first call of a request also records its TTFT.
    pub fn on_tokens(&self, request_id: &str, n: u32, now: Duration) -> bool {
        let found = self.table.with(request_id, |r| add_tokens(r, n, now));
        found.is_some() || self.missing()
    }

    /// Under P/D, the prefill leg of `request_id` ended at `now` (the
    /// prefill endpoint answered); frees the prefill endpoint's load and
    /// records the leg's latency. Without it the leg ends at the first token.
    pub fn on_prefill_done(&self, request_id: &str, now: Duration) -> bool {
        let found = self.table.with(request_id, |r| {
            let decided = r.decided;
            let prompt = r.prompt;
            if let Some(p) = r.prefill.as_mut() {
                if p.done.is_none() && r.first.is_none() {
                    p.done = Some(now);
                    p.route.latency.prefill[1].observe(secs(now.saturating_sub(decided)));
                    close_prefill(p, prompt);
                }
            }
        });
        found.is_some() || self.missing()
    }

    /// `request_id` completed at `now` with the engine's `usage`.
    pub fn on_complete(&self, request_id: &str, usage: Usage, now: Duration) -> bool {
        match self.table.remove(request_id) {
            Some(r) => {
                self.finish(r, Outcome::Ok, Some(usage), now);
                true
            }
            None => self.missing(),
        }
    }

    /// `request_id` failed at `now`.
    pub fn on_error(&self, request_id: &str, kind: ErrorKind, now: Duration) -> bool {
        match self.table.remove(request_id) {
            Some(r) => {
                self.finish(r, kind.into(), None, now);
                true
            }
            None => self.missing(),
        }
    }

    /// Drops `request_id`'s record of opening `opening` (or an earlier
    /// one), which never finished, at `now`, counting it with outcome
    /// `expired` (the scheduler's limit on open requests). False when it is
    /// not tracked, or when its record is of a later opening (a later
    /// request that reused the id, left alone). With `opening` 0 (records
    /// without serials), a record decided after `now` is the later one.
    /// A record of `opening` that has not arrived yet is counted `expired`
    /// when it does (the last 1,024 such openings are remembered).
    pub fn expire_request(&self, request_id: &str, opening: u64, now: Duration) -> bool {
        let earlier = |r: &InFlight| match opening {
            0 => r.decided <= now,
            _ => r.opening <= opening,
        };
        match self.table.remove_if(request_id, earlier) {
            Some(r) => {
                self.finish(r, Outcome::Expired, None, now);
                true
            }
            None => {
                // The pick records its decision moments after the scheduler
                // opened it: a record still to come is expired on arrival.
                self.table.expired_early(request_id, opening);
                false
            }
        }
    }

    /// Counts `n` open requests the scheduler expired because its table of
    /// open requests was full.
    pub fn count_expired_at_limit(&self, n: usize) {
        self.fam.expired_at_limit.inc_by(n as u64);
    }

    /// Counts a request that left the table with `outcome`.
    pub(super) fn finish(
        &self,
        r: InFlight,
        outcome: Outcome,
        usage: Option<Usage>,
        now: Duration,
    ) {
        self.release(&r);
        let usage = usage.unwrap_or_default();
        let n_out = usage.output_tokens.map_or(r.tokens, u64::from);
        r.requests.finish(&self.fam, outcome, n_out);
        if outcome != Outcome::Ok {
            goodput::count_failure(&r.route.latency, r.slo, r.first.is_some());
            return;
        }
        let lat = &r.route.latency;
        // Non-streaming hosts report no tokens: the whole answer is the first
        // token, and the time per output token cannot be measured.
        let streamed = r.first.is_some();
        let first = match r.first {
            Some(f) => f,
            None => {
                lat.ttft.observe(secs(now.saturating_sub(r.arrived)));
                let mode = usize::from(r.prefill.is_some());
                lat.prefill[mode].observe(secs(now.saturating_sub(r.decided)));
                now
            }
        };
        // The engine reported more tokens than the host's calls counted:
        // the rest came after the last call, by completion at the latest
        // (a host that reports only its first token and the usage).
        let last = if n_out > r.tokens {
            now
        } else {
            r.last.unwrap_or(now)
        }
        .max(first);
        let mode = usize::from(r.prefill.is_some());
        lat.decode[mode].observe(secs(last - first));
        let e2e = now.saturating_sub(r.arrived);
        lat.e2e.observe(secs(e2e));
        let tpot = streamed.then(|| goodput::tpot(first, last, n_out));
        if let Some(t) = tpot.filter(|_| n_out > 1) {
            lat.tpot.observe(secs(t));
        }
        let prompt = usage.prompt_tokens.unwrap_or(r.prompt);
        lat.input_tokens.observe(f64::from(prompt));
        if let Some(cached) = usage.cached_tokens {
            lat.cached_tokens.observe(f64::from(cached));
            let kv = r.prefill.as_ref().map_or(lat, |p| &p.route.latency);
            kv.kv_requests.inc();
            if cached > 0 {
                kv.kv_hits.inc();
            }
            if r.predicted_tokens > 0 {
                kv.kv_predicted_hits.inc();
            }
            kv.kv_prompt_tokens.inc_by(u64::from(prompt));
            kv.kv_cached_tokens[0].inc_by(u64::from(r.predicted_tokens.min(prompt)));
            kv.kv_cached_tokens[1].inc_by(u64::from(cached));
        }
        goodput::count_success(lat, r.slo, first.saturating_sub(r.arrived), tpot, e2e);
    }
}

/// `n` output tokens arrived at `now`; the first of a request is its first
/// token.
fn add_tokens(r: &mut InFlight, n: u32, now: Duration) {
    if n == 0 {
        return;
    }
    let n = u64::from(n);
    match r.last {
        // Tokens that came with the first one have no measurable gap.
        None => first_token(r, now),
        Some(last) => {
            let gap = secs(now.saturating_sub(last)) / n as f64;
            r.route.latency.itl.observe_n(gap, n);
        }
    }
    r.tokens = r.tokens.saturating_add(n);
    r.last = Some(now);
    r.route
        .endpoint
        .inflight_tokens
        .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
}

fn first_token(r: &mut InFlight, now: Duration) {
    r.first = Some(now);
    let lat = &r.route.latency;
    lat.ttft.observe(secs(now.saturating_sub(r.arrived)));
    let prompt = r.prompt;
    match r.prefill.as_mut() {
        None => lat.prefill[0].observe(secs(now.saturating_sub(r.decided))),
        Some(p) => match p.done {
            Some(done) => p
                .route
                .latency
                .handoff
                .observe(secs(now.saturating_sub(done))),
            None => {
                p.route.latency.prefill[1].observe(secs(now.saturating_sub(r.decided)));
                close_prefill(p, prompt);
            }
        },
    }
}

fn close_prefill(p: &mut super::inflight::PrefillLeg, prompt: u32) {
    if p.open {
        p.open = false;
        p.route.endpoint.inflight_requests.dec();
        p.route.endpoint.inflight_tokens.dec_by(i64::from(prompt));
    }
}
