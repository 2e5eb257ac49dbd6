//! W3C Trace Context (`traceparent` / `tracestate`) through a decision.
//!
//! A request that arrives with a `traceparent` header gets a scheduling span
//! of its own: same trace id, a new span id, the caller's span as parent. The
//! decision carries it ([`crate::Decision::trace`]) and adds the `traceparent`
//! naming that span to the headers the proxy forwards to the chosen worker
//! (and, under P/D, on to the prefill worker), so the engines' own spans
//! continue the same trace. `tracestate` is forwarded unchanged when valid.
//! A malformed header is ignored (and counted in
//! `llmd_trace_context_invalid_total`), never an error; a request without one
//! gets no trace context (the host is not tracing it).
//!
//! Pure: the span id is derived from the caller's ids, the request id and the
//! clock, so no random source is read.

use serde::Serialize;

/// Header that carries the trace id, the parent span id and the flags.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// Header that carries vendor-specific trace state.
pub const HEADER_TRACESTATE: &str = "tracestate";

/// Longest `tracestate` accepted (W3C: 512 characters, 32 list members).
const TRACESTATE_MAX_LEN: usize = 512;
const TRACESTATE_MAX_MEMBERS: usize = 32;

/// The trace context of one decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceContext {
    /// The trace (16 bytes, as 32 lowercase hex digits in headers).
    #[serde(serialize_with = "hex16")]
    pub trace_id: [u8; 16],
    /// The caller's span: the scheduling span's parent.
    #[serde(serialize_with = "hex8")]
    pub parent_span_id: [u8; 8],
    /// The scheduling span: the parent of whatever the worker records.
    #[serde(serialize_with = "hex8")]
    pub span_id: [u8; 8],
    /// Trace flags as received (bit 0: sampled), forwarded unchanged.
    pub flags: u8,
    /// `tracestate`, when one arrived and was valid.
    pub tracestate: Option<String>,
}

/// Appends `bytes` as lowercase hex.
fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

fn hex16<S: serde::Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

fn hex8<S: serde::Serializer>(v: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

/// Decodes exactly `out.len() * 2` lowercase hex digits.
fn unhex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(())
}

/// Why a `traceparent` or `tracestate` was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidTraceContext {
    /// `traceparent` does not follow the W3C format.
    Traceparent,
    /// `tracestate` is too long, has too many members or a malformed one.
    Tracestate,
}

/// The caller's `traceparent`: (trace id, parent span id, flags), per W3C
/// Trace Context level 1: version `00` is exactly `00-<32 hex>-<16 hex>-<2
/// hex>`; a later version (not `ff`) may append fields after a `-`; ids must
/// not be all zero; hex is lowercase.
pub fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let v = v.trim_matches([' ', '\t']);
    let mut version = [0u8];
    unhex(v.get(..2)?, &mut version)?;
    match (version[0], v.len()) {
        (0xff, _) => return None,
        (0, 55) => {}
        (0, _) => return None,
        (_, 55) => {}
        (_, n) if n > 55 && v.as_bytes()[55] == b'-' => {}
        _ => return None,
    }
    let b = v.as_bytes();
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (mut trace, mut parent, mut flags) = ([0u8; 16], [0u8; 8], [0u8]);
    unhex(&v[3..35], &mut trace)?;
    unhex(&v[36..52], &mut parent)?;
    unhex(&v[53..55], &mut flags)?;
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent, flags[0]))
}

/// `tracestate` if it is a valid W3C list: at most 512 characters and 32
/// members, each `key=value` of printable ASCII without `,` and `=` in the
/// key; empty members (`a=1,,b=2`) are allowed.
pub fn valid_tracestate(v: &str) -> bool {
    if v.len() > TRACESTATE_MAX_LEN || !v.bytes().all(|c| (0x20..0x7f).contains(&c)) {
        return false;
    }
    let mut members = 0;
    for m in v.split(',') {
        let m = m.trim_matches([' ', '\t']);
        if m.is_empty() {
            continue;
        }
        members += 1;
        match m.split_once('=') {
            Some((k, val)) if !k.is_empty() && !val.is_empty() && !k.contains(' ') => {}
            _ => return false,
        }
    }
    members <= TRACESTATE_MAX_MEMBERS
}

impl TraceContext {
    /// The scheduling span's context for a request with these headers:
    /// `None` without a `traceparent`; `Err` when it (or `tracestate`) is
    /// malformed (a malformed `tracestate` alone drops only the state).
    pub fn child_of(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        request_id: &str,
        now_ns: u64,
    ) -> (Option<TraceContext>, Option<InvalidTraceContext>) {
        let Some(tp) = traceparent else {
            return (None, None);
        };
        let Some((trace_id, parent_span_id, flags)) = parse_traceparent(tp) else {
            return (None, Some(InvalidTraceContext::Traceparent));
        };
        let (tracestate, bad_state) = match tracestate {
            Some(s) if valid_tracestate(s) => (Some(s.to_string()), None),
            Some(_) => (None, Some(InvalidTraceContext::Tracestate)),
            None => (None, None),
        };
        let ctx = TraceContext {
            span_id: span_id(&trace_id, &parent_span_id, request_id, now_ns),
            trace_id,
            parent_span_id,
            flags,
            tracestate,
        };
        (Some(ctx), bad_state)
    }

    /// The `traceparent` to forward: version 00, this span as the parent.
    pub fn traceparent(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        s.push('-');
        push_hex(&mut s, &[self.flags]);
        s
    }

    /// Whether the caller sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// A non-zero span id unique to (trace, caller span, request, time).
fn span_id(trace: &[u8; 16], parent: &[u8; 8], request_id: &str, now_ns: u64) -> [u8; 8] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut ids = [0u8; 40];
    ids[..16].copy_from_slice(trace);
    ids[16..24].copy_from_slice(parent);
    ids[24..32].copy_from_slice(&now_ns.to_le_bytes());
    ids[32..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let seed = xxhash_rust::xxh3::xxh3_64(&ids);
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(request_id.as_bytes(), seed).max(1);
    h.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example_and_refuses_malformed_ones() {
        let (t, p, f) = parse_traceparent(TP).unwrap();
        assert_eq!(hex(&t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p), "00f067aa0ba902b7");
        assert_eq!(f, 1);
        // A future version may append fields.
        assert!(parse_traceparent(&format!("cc{}-what-the-future-holds", &TP[2..])).is_some());
        for bad in [
            "",
            "00",
            &TP[..54],
            &format!("{TP}-x"),
            &TP.to_uppercase(),
            &format!("ff{}", &TP[2..]),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_child_keeps_the_trace_and_names_a_new_span() {
        let (c, bad) = TraceContext::child_of(Some(TP), Some("congo=t61rcWkgMzE"), "r1", 5);
        let c = c.unwrap();
        assert_eq!(bad, None);
        assert!(c.sampled());
        assert_ne!(c.span_id, c.parent_span_id);
        assert_ne!(c.span_id, [0; 8]);
        let fwd = c.traceparent();
        assert_eq!(&fwd[..36], &TP[..36]);
        assert_eq!(&fwd[52..], "-01");
        assert_eq!(parse_traceparent(&fwd).unwrap().1, c.span_id);
        assert_eq!(c.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        // Two decisions of the same request at the same time still differ.
        let (d, _) = TraceContext::child_of(Some(TP), None, "r1", 5);
        assert_ne!(d.unwrap().span_id, c.span_id);
        // Unsampled stays unsampled.
        let unsampled = format!("{}00", &TP[..53]);
        let (u, _) = TraceContext::child_of(Some(&unsampled), None, "r", 0);
        assert!(!u.unwrap().sampled());
    }

    #[test]
    fn malformed_headers_are_ignored_and_reported() {
        assert_eq!(
            TraceContext::child_of(None, Some("a=1"), "r", 0),
            (None, None)
        );
        let (c, bad) = TraceContext::child_of(Some("garbage"), None, "r", 0);
        assert_eq!((c, bad), (None, Some(InvalidTraceContext::Traceparent)));
        let (c, bad) = TraceContext::child_of(Some(TP), Some("no-equals"), "r", 0);
        assert_eq!(bad, Some(InvalidTraceContext::Tracestate));
        assert_eq!(c.unwrap().tracestate, None);
        assert!(valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert!(valid_tracestate("a=1,,b=2"));
        assert!(!valid_tracestate(&"k=v,".repeat(33)));
        assert!(!valid_tracestate(&format!("k={}", "v".repeat(600))));
        assert!(!valid_tracestate("k=v\u{1}"));
    }
}
