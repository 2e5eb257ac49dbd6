//! OpenTelemetry export of decision spans (OTLP over HTTP/protobuf).
//!
//! The core renders a decision as llm-d's span tree
//! ([`llmd_sched::observe::decision_spans`]) and, when the request carried a
//! W3C `traceparent`, a trace context whose scheduling span is the parent
//! the worker's spans get (the decision forwards that `traceparent`). This
//! module turns the two into OTLP spans — the scheduling span keeps the
//! forwarded span id, so gateway, scheduler and vLLM spans form one trace —
//! and exports them from a thread of its own ([`OtlpExporter`]): the pick
//! path only hands a decision over (a bounded queue; what does not fit is
//! dropped and counted).

mod exporter;
mod proto;

pub use exporter::{OtlpExporter, OtlpOptions, OtlpStats};
pub use proto::export_request;

use llmd_sched::observe::{decision_attributes, decision_spans, Attribute};
use llmd_sched::Decision;

/// `SpanKind` INTERNAL.
pub const SPAN_KIND_INTERNAL: u8 = 1;
/// `SpanKind` SERVER.
pub const SPAN_KIND_SERVER: u8 = 2;
/// The scheduling span's name: llm-d's EPP span whose context it forwards.
pub const SCHEDULING_SPAN: &str = "gateway.request_orchestration";

/// One span to export.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanData {
    /// The trace.
    pub trace_id: [u8; 16],
    /// This span.
    pub span_id: [u8; 8],
    /// Its parent (`None`: a root span).
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C `tracestate`, forwarded.
    pub trace_state: Option<String>,
    /// llm-d's span name.
    pub name: String,
    /// OTLP `SpanKind`.
    pub kind: u8,
    /// Start, Unix nanoseconds.
    pub start_unix_ns: u64,
    /// End, Unix nanoseconds.
    pub end_unix_ns: u64,
    /// Attributes.
    pub attributes: Vec<Attribute>,
}

/// A child span id: non-zero, derived from the scheduling span's and the
/// span's place in the tree (so exports are reproducible).
fn child_id(root: [u8; 8], i: usize) -> [u8; 8] {
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&root);
    seed[8..].copy_from_slice(&(i as u64).to_le_bytes());
    let h = xxhash_rust::xxh3::xxh3_64(&seed).max(1);
    h.to_be_bytes()
}

/// The spans of a decision whose request carried a sampled `traceparent`,
/// all between `start_unix_ns` and `end_unix_ns` (the pick's own span):
/// first the scheduling span ([`SCHEDULING_SPAN`], SERVER, the decision's
/// attributes; its id is the one the decision forwards, its parent the
/// caller's span), then llm-d's per-profile spans under it
/// ([`decision_spans`]). `None` when the request had no trace context or its
/// sampled flag is off.
pub fn decision_span_data(
    d: &Decision,
    start_unix_ns: u64,
    end_unix_ns: u64,
) -> Option<Vec<SpanData>> {
    let tc = d.trace.as_ref().filter(|t| t.sampled())?;
    let end_unix_ns = end_unix_ns.max(start_unix_ns);
    let span = |span_id, parent, name: String, kind, attributes| SpanData {
        trace_id: tc.trace_id,
        span_id,
        parent_span_id: Some(parent),
        trace_state: tc.tracestate.clone(),
        name,
        kind,
        start_unix_ns,
        end_unix_ns,
        attributes,
    };
    let mut out = vec![span(
        tc.span_id,
        tc.parent_span_id,
        SCHEDULING_SPAN.to_string(),
        SPAN_KIND_SERVER,
        decision_attributes(d),
    )];
    let id = |i: usize| child_id(tc.span_id, i + 1);
    for (i, r) in decision_spans(d).into_iter().enumerate() {
        let parent = r.parent.map_or(tc.span_id, id);
        out.push(span(
            id(i),
            parent,
            r.name.into_owned(),
            SPAN_KIND_INTERNAL,
            r.attributes,
        ));
    }
    Some(out)
}
