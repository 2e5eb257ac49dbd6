//! Session affinity (`session-affinity-scorer`, `session-affinity-filter`): keep a
//! conversation on the endpoint that served it, by header token or session-id binding.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decided, EndpointIndex, Filter, PreRequest, Scorer};

/// Where a session id comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionSource {
    /// A request header.
    Header(String),
    /// A request attribute; the library reads [`crate::model::Request::session_id`].
    Attribute(String),
}

/// How the session's endpoint is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The header carries base64(`endpoint name`) of the endpoint that served the session.
    EncodedEndpointHeader {
        /// Header name (`x-session-token`).
        header: String,
    },
    /// An opaque session id bound to an endpoint at routing time.
    SessionId {
        /// Sources, first non-empty wins.
        sources: Vec<SessionSource>,
        /// Binding lifetime without use.
        ttl_ns: u64,
        /// How often expired bindings are swept.
        sweep_ns: u64,
    },
}

/// The most session bindings kept: session ids come from clients, so
/// without a bound a client inventing ids grows the map for as long as the
/// TTL.
const MAX_SESSION_BINDINGS: usize = 1 << 20;
/// The most `maxSessionBindings` may raise it to.
const MAX_SESSION_BINDINGS_LIMIT: usize = 1 << 24;

#[derive(Debug)]
struct Bindings {
    map: HashMap<String, (Arc<str>, u64)>,
    last_sweep: u64,
    max: usize,
    /// Bindings dropped (or not made) at the bound, before their TTL, since
    /// the scheduler last took the count.
    dropped: u64,
}

impl Default for Bindings {
    fn default() -> Self {
        Bindings {
            map: HashMap::new(),
            last_sweep: 0,
            max: MAX_SESSION_BINDINGS,
            dropped: 0,
        }
    }
}

impl Bindings {
    /// Binds `id` to `ep` at `now`: expired bindings are swept every
    /// `sweep_ns`; at the bound, the least recently used are dropped until a
    /// tenth is free (the age kept halves each pass: amortised O(1)).
    fn bind(&mut self, id: String, ep: Arc<str>, now: u64, ttl_ns: u64, sweep_ns: u64) {
        if now.saturating_sub(self.last_sweep) >= sweep_ns {
            self.map
                .retain(|_, (_, last)| now.saturating_sub(*last) <= ttl_ns);
            self.last_sweep = now;
        }
        if self.map.len() >= self.max && !self.map.contains_key(&id) {
            let before = self.map.len();
            let mut age = ttl_ns;
            while self.map.len() >= self.max - self.max / 10 && age > 0 {
                age /= 2;
                self.map
                    .retain(|_, (_, last)| now.saturating_sub(*last) <= age);
            }
            self.dropped += (before - self.map.len()) as u64;
            if self.map.len() >= self.max {
                // Every binding made this very instant: the new one waits.
                self.dropped += 1;
                return;
            }
        }
        self.map.insert(id, (ep, now));
    }
}

/// Shared by the scorer and the filter forms.
#[derive(Debug)]
pub struct SessionAffinity {
    /// The plugin instance's name (metrics label).
    name: Arc<str>,
    strategy: Strategy,
    profile: Option<String>,
    bindings: Mutex<Bindings>,
}

/// `encodedEndpointHeaderConfig`: the header carrying the endpoint.
fn encoded_header_config(mut e: Params) -> Result<String, ConfigError> {
    let h = e.string("header", "x-session-token")?;
    e.finish()?;
    Ok(h)
}

/// `sessionIdConfig`: the id's sources, the binding lifetime and the sweep
/// interval (seconds).
fn session_id_config(
    mut s: Params,
    not_executed: &mut Vec<(String, String)>,
) -> Result<(Vec<SessionSource>, f64, f64), ConfigError> {
    let mut sources = Vec::new();
    for mut src in s.objects("sources")? {
        for k in ["attribute", "producer"] {
            src.note_not_executed(not_executed, k, ATTRIBUTE_NOTE);
        }
        let h = src.opt_string("header")?;
        let a = src.opt_string("attribute")?;
        src.opt_string("producer")?;
        sources.push(match (h, a) {
            (Some(h), None) => SessionSource::Header(h.to_ascii_lowercase()),
            (None, Some(a)) => SessionSource::Attribute(a),
            _ => {
                return Err(src.err(
                    "header",
                    "each source needs exactly one of header or attribute",
                ))
            }
        });
        src.finish()?;
    }
    let ttl = s.f64("evictionTtlSeconds", 300.0)?;
    let sweep = s.f64("evictionSweepSeconds", 10.0)?;
    if ttl <= 0.0 {
        return Err(s.err("evictionTtlSeconds", "must be > 0"));
    }
    if sweep <= 0.0 {
        return Err(s.err("evictionSweepSeconds", "must be > 0"));
    }
    s.finish()?;
    Ok((sources, ttl, sweep))
}

/// What an attribute source reads instead of a named request attribute.
const ATTRIBUTE_NOTE: &str =
    "attribute sources read the request's session id (Request.session_id, set by the host); the attribute name and its producer are not looked up";

impl SessionAffinity {
    /// Decodes `strategy`, `encodedEndpointHeaderConfig`, `sessionIdConfig`,
    /// `profileName` and `maxSessionBindings` (an llmd extension: the bound
    /// on `session_id` bindings, default 2^20, in 10..=2^24). Both strategy blocks are checked; the one the strategy
    /// does not use, and what an attribute source names, are listed in
    /// `not_executed`.
    pub fn from_params(
        p: &mut Params,
        not_executed: &mut Vec<(String, String)>,
    ) -> Result<Self, ConfigError> {
        let strategy_name = p.string("strategy", "encoded_endpoint_header")?;
        let header = p
            .object("encodedEndpointHeaderConfig")?
            .map(encoded_header_config)
            .transpose()?;
        let session = p
            .object("sessionIdConfig")?
            .map(|s| session_id_config(s, not_executed))
            .transpose()?;
        let unused = |block: &str, used: &str| {
            (
                block.to_string(),
                format!("strategy is {used}: this block is not used"),
            )
        };
        let strategy = match strategy_name.as_str() {
            "encoded_endpoint_header" => {
                if session.is_some() {
                    not_executed.push(unused("sessionIdConfig", "encoded_endpoint_header"));
                }
                Strategy::EncodedEndpointHeader {
                    header: header.unwrap_or_else(|| "x-session-token".to_string()),
                }
            }
            "session_id" => {
                if header.is_some() {
                    not_executed.push(unused("encodedEndpointHeaderConfig", "session_id"));
                }
                let (sources, ttl, sweep) = session.unwrap_or((Vec::new(), 300.0, 10.0));
                let sources = if sources.is_empty() {
                    vec![SessionSource::Header("x-session-id".into())]
                } else {
                    sources
                };
                Strategy::SessionId {
                    sources,
                    ttl_ns: (ttl * 1e9) as u64,
                    sweep_ns: (sweep * 1e9) as u64,
                }
            }
            other => {
                return Err(p.err(
                    "strategy",
                    format!(
                    "unknown strategy '{other}' (expected encoded_endpoint_header or session_id)"
                ),
                ))
            }
        };
        let profile = p.opt_string("profileName")?;
        // llmd extension: the bound on session bindings.
        let max = p.i64("maxSessionBindings", MAX_SESSION_BINDINGS as i64)?;
        if !(10..=MAX_SESSION_BINDINGS_LIMIT as i64).contains(&max) {
            return Err(p.err(
                "maxSessionBindings",
                format!("must be in 10..={MAX_SESSION_BINDINGS_LIMIT}, got {max}"),
            ));
        }
        Ok(SessionAffinity {
            name: p.plugin_name().into(),
            strategy,
            profile,
            bindings: Mutex::new(Bindings {
                max: max as usize,
                ..Bindings::default()
            }),
        })
    }

    fn session_id(&self, ctx: &CycleContext<'_>, sources: &[SessionSource]) -> Option<String> {
        let req = ctx.request();
        sources.iter().find_map(|s| match s {
            SessionSource::Header(h) => req
                .header_value(h)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            SessionSource::Attribute(_) => req.session_id.clone().filter(|v| !v.is_empty()),
        })
    }

    /// The endpoint name the session is pinned to, if any.
    pub fn pinned(&self, ctx: &CycleContext<'_>) -> Option<Arc<str>> {
        match &self.strategy {
            Strategy::EncodedEndpointHeader { header } => {
                let raw = ctx.request().header_value(header)?;
                let bytes = base64_decode(raw.trim())?;
                Some(Arc::from(String::from_utf8(bytes).ok()?))
            }
            Strategy::SessionId {
                sources, ttl_ns, ..
            } => {
                let id = self.session_id(ctx, sources)?;
                let b = self.bindings.lock();
                let (ep, last) = b.map.get(&id)?;
                (ctx.now_ns().saturating_sub(*last) <= *ttl_ns).then(|| ep.clone())
            }
        }
    }

    fn pinned_index(
        &self,
        ctx: &CycleContext<'_>,
        candidates: &[EndpointIndex],
    ) -> Option<EndpointIndex> {
        let name = self.pinned(ctx)?;
        candidates
            .iter()
            .copied()
            .find(|&i| ctx.endpoint(i).name() == &*name)
    }

    /// Encodes an endpoint name for the `encoded_endpoint_header` strategy's response header.
    pub fn encode_token(endpoint: &str) -> String {
        base64_encode(endpoint.as_bytes())
    }
}

impl Scorer for SessionAffinity {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        if let Some(p) = self.pinned_index(ctx, candidates) {
            for (o, &i) in out.iter_mut().zip(candidates) {
                *o = if i == p { 1.0 } else { 0.0 };
            }
        }
    }
}

impl Filter for SessionAffinity {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        if let Some(p) = self.pinned_index(ctx, candidates) {
            candidates.retain(|&i| i == p);
        }
    }
}

impl PreRequest for SessionAffinity {
    /// The `encoded_endpoint_header` strategy (re)writes its header with the endpoint
    /// that serves the request, so the client's next turn pins to it.
    fn response_headers(
        &self,
        ctx: &CycleContext<'_>,
        decided: &Decided<'_>,
        out: &mut Vec<(String, String)>,
    ) {
        let Strategy::EncodedEndpointHeader { header } = &self.strategy else {
            return;
        };
        let Some(&served) = decided.targets.first() else {
            return;
        };
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(header)) {
            return;
        }
        out.push((
            header.clone(),
            Self::encode_token(ctx.endpoint(served).name()),
        ));
    }

    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        let Strategy::SessionId {
            sources,
            ttl_ns,
            sweep_ns,
        } = &self.strategy
        else {
            return;
        };
        let Some(id) = self.session_id(ctx, sources) else {
            return;
        };
        let pick = match &self.profile {
            Some(p) => decided.pick_of(p),
            None => decided.targets.first().copied(),
        };
        let Some(pick) = pick else { return };
        let now = ctx.now_ns();
        self.bindings
            .lock()
            .bind(id, ctx.endpoint(pick).name_arc(), now, *ttl_ns, *sweep_ns);
    }

    /// `session_binding_dropped`: bindings dropped at the bound before
    /// their TTL (their sessions' next requests are routed afresh).
    fn take_events(&self, out: &mut Vec<(Arc<str>, &'static str, u64)>) {
        let n = std::mem::take(&mut self.bindings.lock().dropped);
        if n > 0 {
            out.push((self.name.clone(), "session_binding_dropped", n));
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe alphabet, padding optional; `None` on any invalid input.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client-invented session ids cannot grow the bindings past the bound:
    /// at it, the least recently used go first, and a recent session keeps
    /// its binding.
    #[test]
    fn bindings_stay_within_their_bound() {
        let mut b = Bindings {
            max: 100,
            ..Bindings::default()
        };
        let ep: Arc<str> = "e1".into();
        let ttl = 3_600_000_000_000; // an hour, in ns
        for i in 0..10_000u64 {
            b.bind(format!("s{i}"), ep.clone(), i * 1_000_000, ttl, ttl);
            assert!(b.map.len() <= 100, "{} at {i}", b.map.len());
        }
        assert!(b.map.contains_key("s9999"));
        assert!(!b.map.contains_key("s0"));
        // Every binding made and not held now was dropped at the bound (the
        // TTL, an hour, expired none).
        assert_eq!(b.dropped, 10_000 - b.map.len() as u64);
    }

    #[test]
    fn base64_round_trip() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "default/vllm-0",
            "ns/pod-with-long-name-1234",
        ] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).as_deref(),
                Some(s.as_bytes())
            );
        }
        assert_eq!(base64_encode(b"default/pod"), "ZGVmYXVsdC9wb2Q=");
        assert!(base64_decode("a*b").is_none());
    }
}
