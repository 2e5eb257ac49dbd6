//! Small scenarios shared by the integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::path::Path;

use llmd_sim::engine::{self, RunOptions, RunOutput};
use llmd_sim::policy;
use llmd_sim::scenario::{PolicySpec, Scenario};

/// A shared-prefix scenario small enough for debug builds.
pub fn shared_prefix(extra_engine: &str, fleet: &str, requests: u64, rate: f64) -> Scenario {
    let yaml = format!(
        "name: test\nseed: 7\nmodel: llama-3.1-8b-tp1\nfleet:\n{fleet}\nengine:\n  kv_tokens: 24000\n  prefix_caching_hash_algo: fast\n{extra_engine}\nworkload:\n  arrivals:\n    rate: {rate}\n  max_requests: {requests}\n  shared_prefix:\n    groups: 24\n    system_prompt_len: 1600\n    users_per_group: 3\n    question_len: 120\n    output_len: 40\nslo:\n  ttft_s: 0.5\n  tpot_s: 0.05\n"
    );
    Scenario::parse(&yaml, Path::new(".")).expect("test scenario parses")
}

/// Runs `policy` on `sc` with every check switched on.
pub fn run_checked(sc: &Scenario, policy: &str) -> RunOutput {
    let router = policy::build(&PolicySpec::Builtin(policy.into()), sc).expect("policy builds");
    let opts = RunOptions {
        verify_index: true,
        check_invariants: true,
        ..RunOptions::default()
    };
    engine::run(sc, router, opts).expect("run succeeds")
}
