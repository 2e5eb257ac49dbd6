//! Shared test fixtures.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::sync::Arc;

use llmd_sched::{Decision, Endpoint, EndpointMetrics, ManualClock, Request, Scheduler};

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

/// A `BlockStored` of `toks` in 16-token blocks, engine keys
/// `first_key, first_key + 1, ...`, chained to `parent`.
pub fn stored(
    first_key: u64,
    parent: Option<u64>,
    toks: &[u32],
    medium: Option<&str>,
) -> llmd_kvindex::events::KvEvent {
    use llmd_kvindex::events::{BlockStored, HashValue, KvEvent};
    KvEvent::BlockStored(BlockStored {
        block_hashes: (0..toks.len() as u64 / 16)
            .map(|i| HashValue::Int((first_key + i) as i128))
            .collect(),
        parent_block_hash: parent.map(|p| HashValue::Int(p as i128)),
        token_ids: toks.iter().map(|&t| u64::from(t)).collect(),
        block_size: 16,
        medium: medium.map(str::to_string),
        ..Default::default()
    })
}

/// `events` as one msgpack `EventBatch` payload in `layout`.
pub fn payload(
    events: Vec<llmd_kvindex::events::KvEvent>,
    layout: llmd_kvindex::events::EventLayout,
) -> Vec<u8> {
    llmd_kvindex::events::encode_event_batch(
        &llmd_kvindex::events::EventBatch {
            ts: 1.0,
            data_parallel_rank: None,
            events,
            skipped_events: 0,
        },
        layout,
    )
}

/// `events` as a payload in the newest layout.
pub fn batch(events: Vec<llmd_kvindex::events::KvEvent>) -> Vec<u8> {
    payload(events, llmd_kvindex::events::EventLayout::V0_33)
}

/// The value of the first exposed sample line starting with `prefix`.
pub fn metric(s: &Scheduler, prefix: &str) -> Option<f64> {
    s.render_metrics()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The decision's explanation note that contains `part` (panics, listing the
/// notes, when none does).
pub fn note_with<'a>(d: &'a Decision, part: &str) -> &'a str {
    let notes = &d.explanation.notes;
    match notes.iter().find(|n| n.contains(part)) {
        Some(n) => n,
        None => panic!("no note containing {part:?} in {notes:?}"),
    }
}
