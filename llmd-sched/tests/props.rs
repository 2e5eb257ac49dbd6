//! Properties over random fleets and requests.

mod common;

use common::*;
use llmd_sched::{EndpointMetrics, Request, Scheduler};
use proptest::prelude::*;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../testdata/llm-d-configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[derive(Clone, Debug)]
struct Ep {
    queue: u32,
    running: u32,
    kv: f64,
    role: u8,
}

fn fleet() -> impl Strategy<Value = Vec<Ep>> {
    prop::collection::vec(
        (0u32..50, 0u32..50, 0.0f64..1.0, 0u8..4).prop_map(|(queue, running, kv, role)| Ep {
            queue,
            running,
            kv,
            role,
        }),
        1..12,
    )
}

fn build(text: &str, eps: &[Ep]) -> Scheduler {
    let (s, _) = sched(text);
    for (i, e) in eps.iter().enumerate() {
        let mut x = ep(&format!("e{}", i + 1), metrics(e.queue, e.running, e.kv));
        match e.role {
            1 => x = x.with_label("llm-d.ai/role", "decode"),
            2 => x = x.with_label("llm-d.ai/role", "prefill"),
            3 => x = x.with_label("llm-d.ai/role", "both"),
            _ => {}
        }
        s.add_endpoint(x).unwrap();
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pick_is_a_surviving_candidate_and_scores_stay_in_range(
        eps in fleet(),
        cfg in 0usize..4,
        len in 1usize..3000, // an empty prompt is refused (tests/plugins.rs)
        reqs in 1usize..4,
    ) {
        let text = example(["01-default-load-and-prefix.yaml", "03-pd-disaggregation-prefix-decider.yaml", "04-session-affinity-lora.yaml", "05-legacy-apiversion.yaml"][cfg]);
        let s = build(&text, &eps);
        for r in 0..reqs {
            let req = Request::with_tokens(format!("r{r}"), "m", tokens(len, r as u32 % 2)).header("x-session-id", "s");
            let d = match s.pick(&req) {
                Ok(d) => d,
                Err(e) => {
                    // Only role or label filters may empty a profile here.
                    prop_assert!(e.code() == 429, "{e}");
                    continue;
                }
            };
            for p in &d.explanation.profiles {
                let dropped: Vec<&str> = p.filters.iter().flat_map(|f| f.dropped.iter().map(|x| &**x)).collect();
                for picked in &p.picked {
                    prop_assert!(p.scored.contains(picked));
                    prop_assert!(!dropped.contains(&&**picked));
                    prop_assert!(d.explanation.candidates.contains(picked));
                }
                let mut max_total = 0.0;
                for sc in &p.scorers {
                    for &w in &sc.weighted {
                        let unit = if sc.weight != 0.0 { w / sc.weight } else { 0.0 };
                        prop_assert!((0.0..=1.0 + 1e-12).contains(&unit), "{} gave {unit}", sc.name);
                    }
                    max_total += sc.weight.max(0.0);
                }
                for &t in &p.totals {
                    prop_assert!(t <= max_total + 1e-9);
                }
            }
            prop_assert!(d.targets.iter().all(|t| d.explanation.profile(d.explanation.primary_profile.as_deref().unwrap()).unwrap().picked.iter().any(|p| **p == *t.name)));
        }
    }

    #[test]
    fn a_pipeline_that_ignores_load_never_changes_with_load(eps in fleet(), other in fleet(), len in 1usize..2000) {
        let text = single("- type: approx-prefix-cache-producer\n  parameters: {autoTune: false}\n- type: prefix-cache-scorer\n- type: lora-affinity-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 3}\n");
        let a = build(&text, &eps);
        let b = build(&text, &eps);
        // Different load on b: same endpoints, new queue/running/kv values.
        for (i, o) in other.iter().enumerate().take(eps.len()) {
            b.update_endpoint_metrics(&format!("e{}", i + 1), EndpointMetrics { waiting_queue_size: o.queue, running_requests_size: o.running, kv_cache_usage: o.kv, updated_at_ns: 1, ..Default::default() }).unwrap();
        }
        for r in 0..3 {
            let req = Request::with_tokens(format!("r{r}"), "m", tokens(len, r));
            let (da, db) = (a.pick(&req).unwrap(), b.pick(&req).unwrap());
            prop_assert_eq!(da.targets, db.targets);
        }
    }

    #[test]
    fn lifecycle_releases_all_load(eps in fleet(), n in 1usize..20) {
        let s = build(&example("03-pd-disaggregation-prefix-decider.yaml"), &eps);
        let mut ok = Vec::new();
        for i in 0..n {
            let id = format!("r{i}");
            if s.pick(&Request::with_tokens(id.clone(), "m", tokens(1500, i as u32))).is_ok() {
                ok.push(id);
            }
        }
        for (k, id) in ok.iter().enumerate() {
            s.on_first_token(id);
            if k % 2 == 0 { s.on_complete(id, Some(0)); } else { s.on_error(id, llmd_sched::RequestErrorKind::Cancelled); }
        }
        for i in 0..eps.len() {
            let st = s.endpoint_state(&format!("e{}", i + 1)).unwrap();
            prop_assert_eq!((st.inflight_requests(), st.inflight_tokens()), (0, 0));
        }
    }
}

proptest! {
    /// Any `scope.labelSelector` text loads or is refused with an error that
    /// names the field; never a panic.
    #[test]
    fn rollout_scope_selectors_never_panic(text in "[a-z=!,() ./-]{0,24}") {
        let yaml = format!(
            "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: disaggregatedset-rollout-screener\n  parameters:\n    scope: {{labelSelector: {text:?}}}\n    revisionGating: {{mode: disabled}}\n- type: random-picker\n"
        );
        if let Err(e) = Scheduler::from_config_str(&yaml) {
            prop_assert!(e.to_string().contains("labelSelector"), "{}", e);
        }
    }
}
