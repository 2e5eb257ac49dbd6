//! Sheddable requests (`workload.sheddable`) and the router's admission
//! control: only sheddable requests are refused, refusals are counted apart
//! from failures, and a fleet past capacity keeps the rest within their
//! objectives.

mod common;

use llmd_sim::request::Outcome;
use llmd_sim::summary::Summary;

fn overloaded(sheddable: f64) -> llmd_sim::scenario::Scenario {
    let mut sc = common::shared_prefix("", "  workers: 2", 400, 150.0);
    sc.workload.sheddable = sheddable;
    sc
}

#[test]
fn admission_refuses_only_sheddable_requests_and_counts_them() {
    let out = common::run_checked(&overloaded(0.5), "slo-aware");
    let recs = &out.records;
    let sheddable = recs.iter().filter(|r| r.priority < 0).count();
    // The share is drawn per request: about half of 400.
    assert!((150..=250).contains(&sheddable), "{sheddable} sheddable");
    let rejected: Vec<_> = recs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Rejected(_)))
        .collect();
    assert!(!rejected.is_empty(), "an overloaded fleet refuses some");
    for r in &rejected {
        assert_eq!(
            r.priority, -1,
            "request {} refused at priority {}",
            r.id, r.priority
        );
        assert!(r.worker.is_none() && r.first_token.is_none());
    }
    let s = Summary::of(&out);
    assert_eq!(s.rejected, rejected.len() as u64);
    assert_eq!(s.completed + s.failed + s.rejected, s.requests);
    let table = llmd_sim::report::table("t", std::slice::from_ref(&s));
    assert!(table.contains("rejected"), "{table}");
}

#[test]
fn without_sheddable_requests_nothing_is_refused() {
    let out = common::run_checked(&overloaded(0.0), "slo-aware");
    assert!(out.records.iter().all(|r| r.priority == 0));
    let s = Summary::of(&out);
    assert_eq!(s.rejected, 0);
    let table = llmd_sim::report::table("t", std::slice::from_ref(&s));
    assert!(!table.contains("rejected"), "{table}");
}

/// Refusing sheddable requests past capacity is what keeps the others
/// within their objectives: the same overload with half the requests
/// sheddable meets more objectives per second than with none (llm-d's
/// optimized baseline, whose saturation detector refuses them).
#[test]
fn shedding_past_capacity_raises_goodput() {
    let none = Summary::of(&common::run_checked(&overloaded(0.0), "precise-prefix"));
    let half = Summary::of(&common::run_checked(&overloaded(0.5), "precise-prefix"));
    assert!(
        half.goodput > none.goodput,
        "goodput with shedding {:.2} vs without {:.2}",
        half.goodput,
        none.goodput
    );
}

#[test]
fn sheddable_share_is_validated() {
    let mut sc = overloaded(0.0);
    sc.workload.sheddable = 1.5;
    let router = llmd_sim::policy::build(
        &llmd_sim::scenario::PolicySpec::Builtin("random".into()),
        &sc,
    )
    .expect("policy builds");
    let Err(e) = llmd_sim::engine::run(&sc, router, Default::default()) else {
        panic!("a share above 1 is refused")
    };
    assert!(e.to_string().contains("sheddable"), "{e}");
}
