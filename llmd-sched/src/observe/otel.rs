//! Export of decision spans through the `opentelemetry` API (feature
//! `otel`). Only the API crate is used: the host brings its tracer
//! provider, exporter and runtime, or none.

use super::trace::{AttrValue, Attribute, SpanRecord};
use crate::decision::Decision;
use crate::trace_context::TraceContext;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use std::time::SystemTime;

fn value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(s.clone().into()),
        AttrValue::I64(i) => Value::I64(*i),
        AttrValue::F64(f) => Value::F64(*f),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::StrArray(v) => Value::Array(Array::String(
            v.iter().map(|s| StringValue::from(s.clone())).collect(),
        )),
        AttrValue::F64Array(v) => Value::Array(Array::F64(v.clone())),
    }
}

/// Converts attributes to OpenTelemetry key-values (e.g. to set them on the
/// host's current span).
pub fn key_values(attrs: &[Attribute]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|a| KeyValue::new(a.key.clone(), value(&a.value)))
        .collect()
}

/// Creates and ends `spans` (from [`super::DecisionExplain::spans`]) under
/// `parent`, all spanning `start..end` (the decision's duration).
pub fn export_spans<T: Tracer>(
    tracer: &T,
    parent: &Context,
    spans: &[SpanRecord],
    start: SystemTime,
    end: SystemTime,
) where
    T::Span: Send + Sync + 'static,
{
    export(tracer, parent, None, spans, start, end);
}

/// The caller's span named by a decision's trace context, as the remote
/// parent of the scheduling span.
pub fn remote_parent(trace: &TraceContext) -> Context {
    let state = trace
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(trace.trace_id),
        SpanId::from_bytes(trace.parent_span_id),
        TraceFlags::new(trace.flags),
        true,
        state,
    ))
}

/// Exports a decision's span tree ([`super::decision_spans`]). With a trace
/// context ([`Decision::trace`]) the root scheduling span is a child of the
/// caller's span and carries the span id forwarded to the worker in
/// `traceparent`, so the worker's spans join the same trace under it;
/// without one the spans go under `fallback` (e.g. the host's current context).
pub fn export_decision_spans<T: Tracer>(
    tracer: &T,
    d: &Decision,
    fallback: &Context,
    start: SystemTime,
    end: SystemTime,
) where
    T::Span: Send + Sync + 'static,
{
    let spans = super::decision_spans(d);
    match &d.trace {
        Some(t) => export(
            tracer,
            &remote_parent(t),
            Some(SpanId::from_bytes(t.span_id)),
            &spans,
            start,
            end,
        ),
        None => export(tracer, fallback, None, &spans, start, end),
    }
}

fn export<T: Tracer>(
    tracer: &T,
    parent: &Context,
    root_id: Option<SpanId>,
    spans: &[SpanRecord],
    start: SystemTime,
    end: SystemTime,
) where
    T::Span: Send + Sync + 'static,
{
    let mut contexts: Vec<Context> = Vec::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        let pcx = s.parent.and_then(|i| contexts.get(i)).unwrap_or(parent);
        let mut builder = tracer
            .span_builder(s.name.clone())
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(key_values(&s.attributes));
        if let (0, Some(id)) = (i, root_id) {
            builder = builder.with_span_id(id);
        }
        let span = builder.start_with_context(tracer, pcx);
        contexts.push(pcx.with_span(span));
    }
    // Children end before their parents.
    for cx in contexts.iter().rev() {
        cx.span().end_with_timestamp(end);
    }
}
