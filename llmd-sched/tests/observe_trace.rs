//! Decision explanations rendered as span attributes and span trees.

use llmd_sched::observe::{
    AttrValue, DecisionExplain, PdDecision, ProfileExplain, ScorerExplain, SpanRecord,
};

fn attr<'a>(attrs: &'a [llmd_sched::observe::Attribute], key: &str) -> &'a AttrValue {
    &attrs
        .iter()
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .value
}

const SCORERS: [ScorerExplain<'static>; 2] = [
    ScorerExplain {
        name: "prefix",
        plugin_type: "prefix-cache-scorer",
        weight: 3.0,
        picked_score: 0.75,
    },
    ScorerExplain {
        name: "queue-scorer",
        plugin_type: "queue-scorer",
        weight: 2.0,
        picked_score: 0.5,
    },
];

const RANKED: [(&str, f64); 6] = [
    ("10.0.0.1:8000", 3.25),
    ("10.0.0.2:8000", 3.0),
    ("10.0.0.3:8000", 2.0),
    ("10.0.0.4:8000", 1.0),
    ("10.0.0.5:8000", 0.5),
    ("10.0.0.6:8000", 0.0),
];

fn explain<'a>(profiles: &'a [ProfileExplain<'a>]) -> DecisionExplain<'a> {
    DecisionExplain {
        request_id: "req-1",
        model: "llama",
        profiles,
        pd: PdDecision::PrefillDecode,
        pd_reason: Some("non-cached suffix above threshold"),
        decode_target: Some("10.0.0.1:8000"),
        prefill_target: Some("10.0.0.9:8001"),
    }
}

fn profiles() -> [ProfileExplain<'static>; 2] {
    [
        ProfileExplain {
            profile: "decode",
            candidates: 8,
            after_filters: 6,
            scorers: &SCORERS,
            ranked: &RANKED,
            picked: Some("10.0.0.1:8000"),
        },
        ProfileExplain {
            profile: "prefill",
            candidates: 2,
            after_filters: 2,
            scorers: &SCORERS[..1],
            ranked: &RANKED[..2],
            picked: Some("10.0.0.9:8001"),
        },
    ]
}

#[test]
fn flat_attributes_follow_genai_and_llm_d_names() {
    let p = profiles();
    let a = explain(&p).attributes();
    assert_eq!(
        attr(&a, "gen_ai.request.id"),
        &AttrValue::Str("req-1".into())
    );
    assert_eq!(
        attr(&a, "gen_ai.request.model"),
        &AttrValue::Str("llama".into())
    );
    assert_eq!(
        attr(&a, "server.address"),
        &AttrValue::Str("10.0.0.1".into())
    );
    assert_eq!(attr(&a, "server.port"), &AttrValue::I64(8000));
    assert_eq!(
        attr(&a, "llm_d.epp.profile_handler.decision"),
        &AttrValue::Str("complete_prefill-decode".into())
    );
    assert_eq!(
        attr(&a, "llm_d.epp.pd.disaggregation_used"),
        &AttrValue::Bool(true)
    );
    assert_eq!(
        attr(&a, "llm_d.epp.pd.prefill_pod_address"),
        &AttrValue::Str("10.0.0.9".into())
    );
    assert_eq!(
        attr(&a, "llm_d.epp.pd.prefill_pod_port"),
        &AttrValue::I64(8001)
    );
    assert_eq!(
        attr(&a, "llm_d.epp.scorer.prefix.score"),
        &AttrValue::F64(0.75)
    );
    assert_eq!(
        attr(&a, "llm_d.epp.scorer.queue-scorer.weight"),
        &AttrValue::F64(2.0)
    );
    // Top five, best first.
    match attr(&a, "llm_d.epp.picker.top_scores") {
        AttrValue::F64Array(v) => assert_eq!(v, &vec![3.25, 3.0, 2.0, 1.0, 0.5]),
        v => panic!("{v:?}"),
    }
    match attr(&a, "llm_d.epp.picker.top_endpoints") {
        AttrValue::StrArray(v) => assert_eq!(v.len(), 5),
        v => panic!("{v:?}"),
    }
}

#[test]
fn span_tree_uses_llm_d_span_names() {
    let p = profiles();
    let spans = explain(&p).spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names,
        vec![
            "run_scheduler_profile",
            "filter_endpoints",
            "llm_d.epp.scoring",
            "llm_d.epp.scorer.prefix-cache-scorer",
            "llm_d.epp.scorer.queue-scorer",
            "pick_endpoints",
            "run_scheduler_profile",
            "filter_endpoints",
            "llm_d.epp.scoring",
            "llm_d.epp.scorer.prefix-cache-scorer",
            "pick_endpoints",
            "prepare_disaggregation",
        ]
    );
    let parents: Vec<Option<usize>> = spans.iter().map(|s: &SpanRecord| s.parent).collect();
    assert_eq!(
        parents,
        vec![
            None,
            Some(0),
            Some(0),
            Some(2),
            Some(2),
            Some(0),
            None,
            Some(6),
            Some(6),
            Some(8),
            Some(6),
            None
        ]
    );
    assert_eq!(
        attr(&spans[1].attributes, "llm_d.epp.filter.filtered_endpoints"),
        &AttrValue::I64(6)
    );
    assert_eq!(
        attr(&spans[3].attributes, "llm_d.epp.scorer.score.picked"),
        &AttrValue::F64(0.75)
    );
}

#[cfg(feature = "otel")]
mod otel {
    use super::*;
    use llmd_sched::observe::export_spans;
    use opentelemetry::trace::{
        SpanBuilder, SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState, Tracer,
    };
    use opentelemetry::{Context, KeyValue};
    use std::borrow::Cow;
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    type Log = Arc<Mutex<Vec<(String, Option<u64>, u64, usize, bool)>>>;

    /// Records (name, parent span id, span id, attribute count, ended).
    #[derive(Clone, Default)]
    struct Recorder(Log);

    struct RecSpan {
        log: Log,
        idx: usize,
        cx: SpanContext,
    }

    impl opentelemetry::trace::Span for RecSpan {
        fn add_event_with_timestamp<T: Into<Cow<'static, str>>>(
            &mut self,
            _: T,
            _: SystemTime,
            _: Vec<KeyValue>,
        ) {
        }
        fn span_context(&self) -> &SpanContext {
            &self.cx
        }
        fn is_recording(&self) -> bool {
            true
        }
        fn set_attribute(&mut self, _: KeyValue) {}
        fn set_status(&mut self, _: Status) {}
        fn update_name<T: Into<Cow<'static, str>>>(&mut self, _: T) {}
        fn add_link(&mut self, _: SpanContext, _: Vec<KeyValue>) {}
        fn end_with_timestamp(&mut self, _: SystemTime) {
            self.log.lock().unwrap()[self.idx].4 = true;
        }
    }

    impl Tracer for Recorder {
        type Span = RecSpan;
        fn build_with_context(&self, b: SpanBuilder, parent: &Context) -> RecSpan {
            use opentelemetry::trace::TraceContextExt;
            let mut log = self.0.lock().unwrap();
            let id = log.len() as u64 + 1;
            let p = parent.span().span_context().clone();
            let parent_id = p
                .is_valid()
                .then(|| u64::from_be_bytes(p.span_id().to_bytes()));
            log.push((
                b.name.to_string(),
                parent_id,
                id,
                b.attributes.map_or(0, |a| a.len()),
                false,
            ));
            RecSpan {
                log: self.0.clone(),
                idx: log.len() - 1,
                cx: SpanContext::new(
                    TraceId::from(1u128),
                    SpanId::from(id),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
            }
        }
    }

    #[test]
    fn spans_are_exported_with_parents_and_ended() {
        let p = profiles();
        let spans = explain(&p).spans();
        let tracer = Recorder::default();
        let t = SystemTime::now();
        export_spans(&tracer, &Context::new(), &spans, t, t);
        let log = tracer.0.lock().unwrap();
        assert_eq!(log.len(), spans.len());
        for (rec, want) in log.iter().zip(&spans) {
            assert_eq!(rec.0, want.name);
            assert_eq!(rec.1, want.parent.map(|i| i as u64 + 1));
            assert_eq!(rec.3, want.attributes.len());
            assert!(rec.4, "{} not ended", rec.0);
        }
    }

    /// (span id the builder asked for, parent trace id, parent span id, parent is remote).
    type Seen = Arc<Mutex<Vec<(Option<SpanId>, TraceId, SpanId, bool)>>>;

    #[derive(Clone, Default)]
    struct Ids(Seen);

    impl Tracer for Ids {
        type Span = RecSpan;
        fn build_with_context(&self, b: SpanBuilder, parent: &Context) -> RecSpan {
            use opentelemetry::trace::TraceContextExt;
            let p = parent.span().span_context().clone();
            let mut seen = self.0.lock().unwrap();
            seen.push((b.span_id, p.trace_id(), p.span_id(), p.is_remote()));
            let id = b.span_id.unwrap_or(SpanId::from(seen.len() as u64 + 100));
            RecSpan {
                log: Arc::new(Mutex::new(vec![(String::new(), None, 0, 0, false)])),
                idx: 0,
                cx: SpanContext::new(
                    p.trace_id(),
                    id,
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
            }
        }
    }

    #[test]
    fn decision_spans_continue_the_callers_trace() {
        use llmd_sched::observe::export_decision_spans;
        let s = llmd_sched::Scheduler::default().with_seed(1);
        s.add_endpoint(llmd_sched::Endpoint::new("e1", "10.0.0.1:8000"))
            .unwrap();
        let mut r = llmd_sched::Request::with_tokens("r1", "m", vec![1, 2, 3]);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        r.headers.insert("traceparent".into(), tp.into());
        let d = s.pick(&r).unwrap();
        let trace = d.trace.clone().unwrap();
        let forwarded = d.header("traceparent").unwrap();
        assert_eq!(forwarded, trace.traceparent());
        let tracer = Ids::default();
        let t = SystemTime::now();
        export_decision_spans(&tracer, &d, &Context::new(), t, t);
        let seen = tracer.0.lock().unwrap();
        assert!(seen.len() > 1);
        // The root: the forwarded span id, under the caller's remote span.
        let (root_id, trace_id, parent, remote) = seen[0];
        assert_eq!(root_id, Some(SpanId::from_bytes(trace.span_id)));
        assert_eq!(
            trace_id,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(parent, SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(remote);
        // Its children hang under it, in the same trace.
        let (_, child_trace, child_parent, child_remote) = seen[1];
        assert_eq!(child_trace, trace_id);
        assert_eq!(child_parent, SpanId::from_bytes(trace.span_id));
        assert!(!child_remote);
    }
}
