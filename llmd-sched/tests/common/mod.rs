//! Shared test fixtures.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::sync::Arc;

use llmd_sched::{Endpoint, EndpointMetrics, ManualClock, Request, Scheduler};

pub const HEAD: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n";

/// A scheduler from YAML with a manual clock at 1 s and a fixed seed.
pub fn sched(yaml: &str) -> (Scheduler, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000_000));
    let s = Scheduler::from_config_str(yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_clock(clock.clone())
        .with_seed(42);
    (s, clock)
}

/// One-profile config with the given plugins section (already indented list items).
pub fn single(plugins: &str) -> String {
    format!("{HEAD}plugins:\n{plugins}")
}

pub fn metrics(queue: u32, running: u32, kv: f64) -> EndpointMetrics {
    EndpointMetrics {
        waiting_queue_size: queue,
        running_requests_size: running,
        kv_cache_usage: kv,
        updated_at_ns: 1_000_000_000,
        ..Default::default()
    }
}

pub fn ep(name: &str, m: EndpointMetrics) -> Endpoint {
    Endpoint::new(
        name,
        format!(
            "10.0.0.{}:8000",
            name.trim_start_matches(|c: char| !c.is_ascii_digit())
        ),
    )
    .with_metrics(m)
}

/// Raw scores of `scorer` in profile `profile` of a pick, by endpoint name.
pub fn raw_scores(
    s: &Scheduler,
    req: &Request,
    profile: &str,
    scorer: &str,
) -> HashMap<String, f64> {
    let d = s.pick(req).unwrap_or_else(|e| panic!("{e}"));
    let p = d
        .explanation
        .profile(profile)
        .unwrap_or_else(|| panic!("no profile {profile}"));
    let sc = p
        .scorer(scorer)
        .unwrap_or_else(|| panic!("no scorer {scorer}"));
    p.scored
        .iter()
        .map(|n| n.to_string())
        .zip(sc.raw.iter().copied())
        .collect()
}

pub fn tokens(n: usize, offset: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761).wrapping_add(offset))
        .collect()
}

pub fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}
