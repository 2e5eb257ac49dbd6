//! `disaggregatedset-rollout-screener`: revision coverage, weighted revision
//! choice, strict and prefer header selectors, response stamping, both
//! config eras, and its errors — per llm-d's screener.

mod common;

use common::*;
use llmd_sched::{Request, ScheduleError, Scheduler};

const REV: &str = "disaggregatedset.x-k8s.io/revision";
const ROLE: &str = "disaggregatedset.x-k8s.io/role";
const SET: &str = "disaggregatedset.x-k8s.io/name";
const SLICE: &str = "disaggregatedset.x-k8s.io/slice";

/// A P/D config behind the screener (`screener` is its parameters block).
fn pd(screener: &str) -> String {
    format!("{HEAD}plugins:\n- type: disaggregatedset-rollout-screener\n  name: rollout\n  parameters:\n{screener}- type: decode-filter\n- type: prefill-filter\n- type: always-disagg-pd-decider\n- type: disagg-profile-handler\n  parameters: {{deciders: {{prefill: always-disagg-pd-decider}}}}\n- type: random-picker\nschedulingProfiles:\n- name: decode\n  plugins:\n  - {{pluginRef: decode-filter}}\n  - {{pluginRef: random-picker}}\n- name: prefill\n  plugins:\n  - {{pluginRef: prefill-filter}}\n  - {{pluginRef: random-picker}}\n")
}

const NEW_ERA: &str = "    scope: {labelSelector: \"disaggregatedset.x-k8s.io/name=my-set\"}\n    headerSelectors:\n    - {name: revision, headerName: X-Disagg-Revision, labelKey: disaggregatedset.x-k8s.io/revision, mode: strict}\n    - {name: slice, headerName: x-disagg-slice, labelKey: disaggregatedset.x-k8s.io/slice, mode: prefer}\n    revisionGating:\n      mode: MODE\n      requireRoles: {values: [prefill, decode]}\n";

fn new_era(mode: &str) -> String {
    pd(&NEW_ERA.replace("MODE", mode))
}

/// Adds `n` endpoints of `role` in revision `rev` (in scope unless `set` differs).
fn add(s: &Scheduler, set: &str, rev: &str, role: &str, n: usize) {
    for k in 0..n {
        let name = format!("{set}-{rev}-{role}-{k}");
        let e = ep(&name, metrics(0, 0, 0.1))
            .with_label("llm-d.ai/role", role)
            .with_label(SET, set)
            .with_label(REV, rev)
            .with_label(ROLE, role)
            .with_label(SLICE, format!("s{}", k % 2));
        s.add_endpoint(e).unwrap();
    }
}

/// Adds revisions `rev-a`, `rev-b`, … of `set`, each with (prefill, decode) endpoints.
fn revisions(s: &Scheduler, set: &str, shape: &[(usize, usize)]) {
    for (k, &(prefill, decode)) in shape.iter().enumerate() {
        let rev = format!("rev-{}", char::from(b'a' + k as u8));
        add(s, set, &rev, "prefill", prefill);
        add(s, set, &rev, "decode", decode);
    }
}

fn label_of(s: &Scheduler, name: &str, key: &str) -> String {
    s.endpoint_state(name)
        .unwrap()
        .label(key)
        .unwrap()
        .to_string()
}

fn req(id: &str, headers: &[(&str, &str)]) -> Request {
    let mut r = Request::with_tokens(id, "m", tokens(64, 1));
    for (k, v) in headers {
        r.headers.insert(k.to_string(), v.to_string());
    }
    r
}

/// The documentation's mid-rollout shape: A has 2 prefill and 9 decode, B 1
/// and 1. Returns the share of picks that went to B, checking every pick
/// pairs prefill and decode of one revision.
fn share_of_b(yaml: &str) -> f64 {
    let (s, _) = sched(yaml);
    revisions(&s, "my-set", &[(2, 9), (1, 1)]);
    let n = 4000;
    let mut b = 0;
    for i in 0..n {
        let d = s.pick(&req(&format!("r{i}"), &[])).unwrap();
        let decode = label_of(&s, &d.targets[0].name, REV);
        let prefill = label_of(&s, &d.prefill_target.as_ref().unwrap().name, REV);
        assert_eq!(decode, prefill, "pick {i} paired revisions");
        let stamped: Vec<_> = d
            .response_headers
            .iter()
            .filter(|(k, _)| k == "x-disagg-revision")
            .collect();
        assert_eq!(
            stamped,
            [&("x-disagg-revision".to_string(), decode.clone())]
        );
        assert!(d
            .response_headers
            .iter()
            .any(|(k, v)| k == "x-disagg-slice" && v.starts_with('s')));
        b += usize::from(decode == "rev-b");
        s.on_complete(&format!("r{i}"), None);
    }
    b as f64 / n as f64
}

#[test]
fn max_role_weights_revisions_by_the_largest_role() {
    // Decode is the larger role (10 vs 3): A 9, B 1 → B gets 10%.
    let b = share_of_b(&new_era("max-role"));
    assert!((b - 0.10).abs() < 0.02, "B share {b:.3}");
}

#[test]
fn sum_weights_revisions_by_every_required_role() {
    // A 2 + 9 = 11, B 1 + 1 = 2 → B gets 2/13.
    let b = share_of_b(&new_era("sum"));
    assert!((b - 2.0 / 13.0).abs() < 0.02, "B share {b:.3}");
}

#[test]
fn a_revision_missing_a_role_gets_nothing_and_none_covered_fails_closed() {
    let (s, _) = sched(&new_era("sum"));
    add(&s, "my-set", "rev-a", "prefill", 1);
    add(&s, "my-set", "rev-a", "decode", 2);
    add(&s, "my-set", "rev-c", "decode", 3); // no prefill: not covered
    for i in 0..200 {
        let d = s.pick(&req(&format!("r{i}"), &[])).unwrap();
        assert_eq!(label_of(&s, &d.targets[0].name, REV), "rev-a");
        s.on_complete(&format!("r{i}"), None);
    }
    // Endpoints out of scope do not count for coverage.
    let (s, _) = sched(&new_era("sum"));
    add(&s, "other-set", "rev-a", "prefill", 1);
    add(&s, "my-set", "rev-a", "decode", 2);
    let e = s.pick(&req("x", &[])).unwrap_err();
    assert!(matches!(e, ScheduleError::NoEndpoints { .. }), "{e:?}");
    assert!(e.to_string().contains("required role"), "{e}");
}

#[test]
fn a_strict_revision_header_is_authoritative_and_never_substituted() {
    let (s, _) = sched(&new_era("max-role"));
    revisions(&s, "my-set", &[(2, 9), (1, 1)]);
    for i in 0..50 {
        let d = s
            .pick(&req(&format!("r{i}"), &[("x-disagg-revision", "rev-b")]))
            .unwrap();
        assert_eq!(label_of(&s, &d.targets[0].name, REV), "rev-b");
        assert!(note_with(&d, "rollout").contains("requested"));
        s.on_complete(&format!("r{i}"), None);
    }
    let e = s
        .pick(&req("z", &[("x-disagg-revision", "rev-z")]))
        .unwrap_err();
    assert!(
        matches!(e, ScheduleError::NoEndpoints { .. }) && e.to_string().contains("rev-z"),
        "{e}"
    );
}

#[test]
fn disabled_gating_keeps_selectors_and_stamping() {
    let (s, _) = sched(&new_era("disabled"));
    add(&s, "my-set", "rev-a", "prefill", 1);
    add(&s, "my-set", "rev-a", "decode", 1);
    add(&s, "my-set", "rev-c", "decode", 3); // no prefill, still a candidate
    let mut seen_c = false;
    for i in 0..100 {
        let d = s.pick(&req(&format!("r{i}"), &[])).unwrap();
        let rev = label_of(&s, &d.targets[0].name, REV);
        seen_c |= rev == "rev-c";
        assert!(d
            .response_headers
            .contains(&("x-disagg-revision".to_string(), rev)));
        s.on_complete(&format!("r{i}"), None);
    }
    assert!(seen_c, "without gating every candidate goes on");
    let d = s
        .pick(&req("h", &[("x-disagg-revision", "rev-c")]))
        .unwrap();
    assert_eq!(label_of(&s, &d.targets[0].name, REV), "rev-c");
    assert!(s
        .pick(&req("n", &[("x-disagg-revision", "rev-q")]))
        .is_err());
}

#[test]
fn strict_selectors_on_other_labels_screen_every_profile() {
    let yaml = pd("    scope: {labelSelector: \"disaggregatedset.x-k8s.io/name in (my-set)\"}\n    headerSelectors:\n    - {name: slice, headerName: x-disagg-slice, labelKey: disaggregatedset.x-k8s.io/slice, mode: strict}\n    revisionGating: {mode: sum, requireRoles: {values: [prefill, decode]}}\n");
    let (s, _) = sched(&yaml);
    add(&s, "my-set", "rev-a", "prefill", 2);
    add(&s, "my-set", "rev-a", "decode", 4);
    for i in 0..50 {
        let d = s
            .pick(&req(&format!("r{i}"), &[("x-disagg-slice", "s1")]))
            .unwrap();
        assert_eq!(label_of(&s, &d.targets[0].name, SLICE), "s1");
        let p = &d.prefill_target.as_ref().unwrap().name;
        assert_eq!(label_of(&s, p, SLICE), "s1");
        s.on_complete(&format!("r{i}"), None);
    }
    let e = s.pick(&req("q", &[("x-disagg-slice", "s9")])).unwrap_err();
    assert!(e.to_string().contains("strict selector 'slice'"), "{e}");
}

/// The first era: `revisionHeaderName` and `requiredRoles`, the revision
/// header implied (and defaulted).
#[test]
fn the_first_era_config_loads_with_its_implied_revision_header() {
    let first = |extra: &str| {
        pd(&format!("    scope: {{labelSelector: \"disaggregatedset.x-k8s.io/name=my-set\"}}\n    revisionGating:\n      mode: max-role\n      requiredRoles: [prefill, decode]\n{extra}"))
    };
    for (yaml, header) in [
        (first(""), "x-llm-d-disagg-revision"),
        (
            first("      revisionHeaderName: X-Disagg-Revision\n"),
            "x-disagg-revision",
        ),
    ] {
        let (s, _) = sched(&yaml);
        revisions(&s, "my-set", &[(1, 1), (1, 1)]);
        for i in 0..20 {
            let d = s
                .pick(&req(&format!("r{i}"), &[(header, "rev-b")]))
                .unwrap();
            assert_eq!(label_of(&s, &d.targets[0].name, REV), "rev-b");
            assert!(d
                .response_headers
                .contains(&(header.to_string(), "rev-b".to_string())));
            s.on_complete(&format!("r{i}"), None);
        }
    }
}

#[test]
fn bad_parameters_name_the_field() {
    let err = |params: &str| match Scheduler::from_config_str(&pd(params)) {
        Ok(_) => panic!("loaded:\n{params}"),
        Err(e) => e.to_string(),
    };
    let gating = "    revisionGating: {mode: sum, requireRoles: {values: [prefill, decode]}}\n";
    let scope = "    scope: {labelSelector: \"a=b\"}\n";
    for (params, want) in [
        (gating.to_string(), "scope.labelSelector is required"),
        (
            format!("    scope: {{labelSelector: \"a in (b\"}}\n{gating}"),
            "not a valid label selector",
        ),
        (scope.to_string(), "revisionGating is required"),
        (
            format!("{scope}    revisionGating: {{mode: half}}\n"),
            "sum|max-role|disabled",
        ),
        (
            format!("{scope}    revisionGating: {{mode: sum}}\n"),
            "at least one role",
        ),
        (
            format!("{scope}    revisionGating: {{mode: sum, requiredRoles: [decode, decode]}}\n"),
            "duplicate role",
        ),
        (
            format!("{scope}    revisionGating: {{mode: sum, requiredRoles: [decode], surprise: 1}}\n"),
            "surprise",
        ),
        (
            format!("{scope}{gating}    headerSelectors:\n    - {{name: x, headerName: h, labelKey: k, mode: maybe}}\n"),
            "strict or prefer",
        ),
        (
            format!("{scope}{gating}    headerSelectors:\n    - {{name: x, labelKey: k, mode: strict}}\n"),
            "headerName",
        ),
    ] {
        let e = err(&params);
        assert!(
            e.contains(want) && e.contains("disaggregatedset-rollout-screener"),
            "{e}\n(wanted {want})"
        );
    }
}

fn example(name: &str) -> String {
    let path = format!(
        "{}/../testdata/llm-d-configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The two shipped forms route as documented: the first keeps a P/D pair on
/// one revision (decode-heavy shares), the second honours the strict
/// revision header and prefers the requested slice.
#[test]
fn the_example_configs_route_as_their_releases_document() {
    let (s, _) = sched(&example("16-disaggregatedset-rollout-revision-gating.yaml"));
    revisions(&s, "revision-rollout", &[(1, 3), (1, 1)]);
    let mut b = 0;
    for i in 0..2000 {
        let d = s.pick(&req(&format!("r{i}"), &[])).unwrap();
        let rev = label_of(&s, &d.targets[0].name, REV);
        assert_eq!(
            rev,
            label_of(&s, &d.prefill_target.as_ref().unwrap().name, REV)
        );
        b += usize::from(rev == "rev-b");
        s.on_complete(&format!("r{i}"), None);
    }
    let share = b as f64 / 2000.0;
    assert!(
        (share - 0.25).abs() < 0.03,
        "max-role on decode (3:1): B {share:.3}"
    );

    let (s, _) = sched(&example(
        "17-disaggregatedset-rollout-header-selectors.yaml",
    ));
    revisions(&s, "my-set", &[(2, 4), (1, 2)]);
    for i in 0..100 {
        let d = s
            .pick(&req(
                &format!("q{i}"),
                &[("x-disagg-revision", "rev-a"), ("x-disagg-slice", "s1")],
            ))
            .unwrap();
        let t = &d.targets[0].name;
        assert_eq!(label_of(&s, t, REV), "rev-a");
        assert_eq!(label_of(&s, t, SLICE), "s1", "the preferred slice wins");
        assert!(d
            .response_headers
            .contains(&("x-disagg-slice".to_string(), "s1".to_string())));
        s.on_complete(&format!("q{i}"), None);
    }
}

/// The revision shares are exposed per revision (an incomplete one at 0,
/// a vanished one's series removed) and strict selections that matched
/// nothing are counted, as llm-d's screener metrics do.
#[test]
fn shares_and_strict_misses_are_exposed() {
    let (s, _) = sched(&new_era("max-role"));
    revisions(&s, "my-set", &[(2, 9), (1, 1)]);
    add(&s, "my-set", "rev-c", "decode", 2); // incomplete
    s.pick(&req("a", &[])).unwrap();
    let share = |rev: &str| {
        metric(
            &s,
            &format!("llmd_rollout_revision_share{{plugin=\"rollout\",revision=\"{rev}\"}}"),
        )
    };
    assert_eq!(share("rev-a"), Some(0.9));
    assert_eq!(share("rev-b"), Some(0.1));
    assert_eq!(share("rev-c"), Some(0.0));
    let misses = |sel: &str| {
        metric(
            &s,
            &format!(
                "llmd_screener_strict_no_match_total{{plugin=\"rollout\",selector=\"{sel}\"}}"
            ),
        )
    };
    assert_eq!(misses("revision"), None);
    assert!(s
        .pick(&req("b", &[("x-disagg-revision", "rev-z")]))
        .is_err());
    assert!(s
        .pick(&req("c", &[("x-disagg-revision", "rev-c")]))
        .is_err());
    assert_eq!(misses("revision"), Some(2.0));
    // rev-c's endpoints leave: its series goes with them.
    for k in 0..2 {
        s.remove_endpoint(&format!("my-set-rev-c-decode-{k}"))
            .unwrap();
    }
    s.pick(&req("d", &[])).unwrap();
    assert_eq!(share("rev-c"), None);
    assert_eq!(share("rev-a"), Some(0.9));
}

/// The requests of one rollout decision (parallel subrequests sharing
/// `x-llm-d-revision-decision-id`, else one request id) stay on the
/// revision drawn for the first of them.
#[test]
fn a_decision_id_keeps_its_revision() {
    let (s, _) = sched(&new_era("sum"));
    revisions(&s, "my-set", &[(1, 1), (1, 1)]);
    let rev_of = |id: &str, headers: &[(&str, &str)]| {
        let d = s.pick(&req(id, headers)).unwrap();
        s.on_complete(id, None);
        label_of(&s, &d.targets[0].name, REV)
    };
    let first = rev_of("d0", &[("x-llm-d-revision-decision-id", "decision-1")]);
    for i in 1..30 {
        let id = format!("d{i}");
        assert_eq!(
            rev_of(&id, &[("x-llm-d-revision-decision-id", "decision-1")]),
            first
        );
    }
    let retried = rev_of("r0", &[("x-request-id", "req-9")]);
    for i in 1..10 {
        assert_eq!(
            rev_of(&format!("r{i}"), &[("x-request-id", "req-9")]),
            retried
        );
    }
    // Distinct decisions draw afresh: both revisions come up.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let d = format!("decision-{}", i + 100);
        seen.insert(rev_of(
            &format!("n{i}"),
            &[("x-llm-d-revision-decision-id", &d)],
        ));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}
