//! Export of decision spans through the `opentelemetry` API (feature
//! `otel`). Only the API crate is used: the host brings its tracer
//! provider, exporter and runtime, or none.

use super::trace::{AttrValue, Attribute, SpanRecord};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
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
    let mut contexts: Vec<Context> = Vec::with_capacity(spans.len());
    for s in spans {
        let pcx = s.parent.and_then(|i| contexts.get(i)).unwrap_or(parent);
        let span = tracer
            .span_builder(s.name.clone())
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(key_values(&s.attributes))
            .start_with_context(tracer, pcx);
        contexts.push(pcx.with_span(span));
    }
    // Children end before their parents.
    for cx in contexts.iter().rev() {
        cx.span().end_with_timestamp(end);
    }
}
