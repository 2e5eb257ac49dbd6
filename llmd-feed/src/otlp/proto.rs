//! The OTLP trace export message (`ExportTraceServiceRequest` of
//! opentelemetry-proto `collector/trace/v1`, `trace/v1`, `common/v1`,
//! `resource/v1`) in protobuf wire format: only the fields llmd sets.

use llmd_sched::observe::AttrValue;

use super::SpanData;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A length-delimited sub-message built by `f`.
fn message(out: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut m = Vec::new();
    f(&mut m);
    bytes(out, field, &m);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// `AnyValue`.
fn any_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => bytes(out, 1, s.as_bytes()),
        AttrValue::Bool(b) => {
            tag(out, 2, 0);
            varint(out, u64::from(*b));
        }
        AttrValue::I64(i) => {
            tag(out, 3, 0);
            varint(out, *i as u64);
        }
        AttrValue::F64(f) => fixed64(out, 4, f.to_bits()),
        AttrValue::StrArray(items) => message(out, 5, |m| {
            for s in items {
                message(m, 1, |a| bytes(a, 1, s.as_bytes()));
            }
        }),
        AttrValue::F64Array(items) => message(out, 5, |m| {
            for f in items {
                message(m, 1, |a| fixed64(a, 4, f.to_bits()));
            }
        }),
    }
}

/// `KeyValue`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, v: &AttrValue) {
    message(out, field, |kv| {
        bytes(kv, 1, key.as_bytes());
        message(kv, 2, |a| any_value(a, v));
    });
}

/// `Span`.
fn span(out: &mut Vec<u8>, s: &SpanData) {
    message(out, 2, |m| {
        bytes(m, 1, &s.trace_id);
        bytes(m, 2, &s.span_id);
        if let Some(ts) = &s.trace_state {
            bytes(m, 3, ts.as_bytes());
        }
        if let Some(p) = &s.parent_span_id {
            bytes(m, 4, p);
        }
        bytes(m, 5, s.name.as_bytes());
        tag(m, 6, 0);
        varint(m, u64::from(s.kind));
        fixed64(m, 7, s.start_unix_ns);
        fixed64(m, 8, s.end_unix_ns);
        for a in &s.attributes {
            key_value(m, 9, &a.key, &a.value);
        }
    });
}

/// An `ExportTraceServiceRequest` with one resource (`service.name`) and one
/// instrumentation scope (`llmd`) holding `spans`.
pub fn export_request(service_name: &str, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::new();
    message(&mut out, 1, |rs| {
        message(rs, 1, |res| {
            key_value(
                res,
                1,
                "service.name",
                &AttrValue::Str(service_name.to_string()),
            );
        });
        message(rs, 2, |ss| {
            message(ss, 1, |scope| {
                bytes(scope, 1, b"llmd");
                bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for s in spans {
                span(ss, s);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_tags_are_protobufs() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut t = Vec::new();
        tag(&mut t, 7, 1);
        assert_eq!(t, [0x39]);
        let mut n = Vec::new();
        any_value(&mut n, &AttrValue::I64(-1));
        // Field 3, varint, ten bytes of two's complement.
        assert_eq!(n.len(), 11);
    }
}
