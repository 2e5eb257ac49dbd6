//! The built-in policies. The prefix-aware ones are EndpointPickerConfigs run
//! by `llmd_sched::Scheduler` (fed event bytes and `/metrics` text like any
//! config policy); the baselines are small bespoke routers.

use super::{LeastQueue, RandomRouter, Role, RoundRobin, Router, SchedRouter, Weighted};

/// Built-in policy names, in report order.
pub const BUILTINS: [&str; 7] = [
    "random",
    "round-robin",
    "least-queue",
    "load-aware",
    "llm-d-default",
    "approx-prefix",
    "precise-prefix",
];

/// Built-ins beyond the default comparison, run when named (`--policy`, a
/// scenario's `policies`).
pub const EXTRA_BUILTINS: [&str; 2] = ["slo-aware", "slo-fleet"];

/// What a built-in needs to know about the scenario.
#[derive(Debug)]
pub struct BuiltinFleet<'a> {
    /// Endpoint names, in worker order.
    pub names: &'a [String],
    /// Worker roles, in worker order.
    pub roles: &'a [Role],
    /// Model name the workers serve.
    pub model: &'a str,
    /// Engine block size in tokens.
    pub block_size: usize,
    /// GPU blocks per worker (what llm-d's `autoTune` reads as LRU capacity).
    pub num_blocks: usize,
    /// Scenario seed.
    pub seed: u64,
}

/// A scorer of a built-in config: plugin document, instance name, weight.
struct Scorer {
    plugin: String,
    name: &'static str,
    weight: f64,
}

fn scorer(plugin: &str, name: &'static str, weight: f64) -> Scorer {
    Scorer {
        plugin: plugin.to_string(),
        name,
        weight,
    }
}

/// An EndpointPickerConfig with `producer` and `scorers` under a max-score
/// picker: one profile, or decode + prefill profiles (always disaggregated)
/// when the fleet has prefill workers.
fn config(producer: &str, scorers: &[Scorer], pd: bool) -> String {
    config_with(producer, &[], scorers, pd)
}

/// A built-in config with `filters` (plugin document, instance name) ahead
/// of the scorers in every profile.
fn config_with(producer: &str, filters: &[(&str, &str)], scorers: &[Scorer], pd: bool) -> String {
    let mut plugins = String::from(producer);
    let mut refs = String::new();
    for (doc, name) in filters {
        plugins.push_str(doc);
        refs.push_str(&format!("  - {{pluginRef: {name}}}\n"));
    }
    for s in scorers {
        plugins.push_str(&s.plugin);
        refs.push_str(&format!(
            "  - {{pluginRef: {}, weight: {}}}\n",
            s.name, s.weight
        ));
    }
    let head = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n";
    if !pd {
        return format!(
            "{head}plugins:\n{plugins}- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n{refs}  - {{pluginRef: max-score-picker}}\n"
        );
    }
    format!(
        "{head}plugins:\n{plugins}- type: decode-filter\n- type: prefill-filter\n- type: always-disagg-pd-decider\n- type: disagg-profile-handler\n  parameters: {{deciders: {{prefill: always-disagg-pd-decider}}}}\n- type: max-score-picker\nschedulingProfiles:\n- name: decode\n  plugins:\n  - {{pluginRef: decode-filter}}\n{refs}  - {{pluginRef: max-score-picker}}\n- name: prefill\n  plugins:\n  - {{pluginRef: prefill-filter}}\n{refs}  - {{pluginRef: max-score-picker}}\n"
    )
}

/// The config text of a scheduler-backed built-in, if `name` is one.
pub fn builtin_config(name: &str, f: &BuiltinFleet<'_>) -> Option<String> {
    let pd = f.roles.contains(&Role::Prefill);
    // llm-d's autoTune takes the LRU capacity from the engine's block count;
    // the library bounds every endpoint alike, so it is given explicitly.
    let approx = format!(
        "- type: approx-prefix-cache-producer\n  parameters: {{blockSizeTokens: 64, lruCapacityPerServer: {}}}\n",
        f.num_blocks.max(1)
    );
    let prefix = |producer: &str| {
        scorer(
            &format!(
                "- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: {producer}}}\n"
            ),
            "prefix-cache-scorer",
            3.0,
        )
    };
    let kv = |w| {
        scorer(
            "- type: kv-cache-utilization-scorer\n",
            "kv-cache-utilization-scorer",
            w,
        )
    };
    let queue = || scorer("- type: queue-scorer\n", "queue-scorer", 2.0);
    let no_hit = |producer: &str| {
        scorer(
            &format!(
                "- type: no-hit-lru-scorer\n  parameters: {{prefixMatchInfoProducerName: {producer}}}\n"
            ),
            "no-hit-lru-scorer",
            2.0,
        )
    };
    // llm-d's optimized baseline (scorer form): prefix 3, no-hit-lru 2,
    // kv-util 2, queue 2; the prefix-aware built-ins differ only in producer.
    let baseline = |producer: &str| [prefix(producer), no_hit(producer), kv(2.0), queue()];
    // The precise producer (as `precise-prefix`), the predicted-latency
    // producer over its matches, and the latency-slo-admitter.
    let latency_model = format!(
        "- type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: {}}}\n    speculativeIndexing: true\n- type: predicted-latency-producer\n  parameters: {{streamingMode: true, prefixMatchInfoProducerName: precise-prefix-cache-producer}}\n- type: latency-slo-admitter\n",
        f.block_size
    );
    Some(match name {
        // What the EPP runs with no config: queue 2, kv 2, approximate prefix 3.
        "llm-d-default" => config(
            &approx,
            &[queue(), kv(2.0), prefix("approx-prefix-cache-producer")],
            pd,
        ),
        // The optimized baseline over the routing-time (approximate) index.
        "approx-prefix" => config(&approx, &baseline("approx-prefix-cache-producer"), pd),
        // The optimized baseline over the index rebuilt from the engines' KV
        // events (router keys), with llm-d's speculative indexing (2 s TTL)
        // so a burst of one prefix sticks before the engine confirms it.
        "precise-prefix" => config(
            &format!(
                "- type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: {}}}\n    speculativeIndexing: true\n",
                f.block_size
            ),
            &baseline("precise-prefix-cache-producer"),
            pd,
        ),
        // The precise optimized baseline made SLO-aware with the in-process
        // latency model: llm-d's predicted-latency producer (streaming), its
        // slo-headroom-tier-filter, and its latency-scorer beside the
        // baseline's scorers; its latency-slo-admitter refuses sheddable
        // requests (`workload.sheddable`) no endpoint can serve in time.
        "slo-aware" => config_with(
            &latency_model,
            &[(
                "- type: slo-headroom-tier-filter\n",
                "slo-headroom-tier-filter",
            )],
            &{
                let mut s = Vec::from(baseline("precise-prefix-cache-producer"));
                s.push(scorer(
                    "- type: latency-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n",
                    "latency-scorer",
                    2.0,
                ));
                s
            },
            pd,
        ),
        // The precise optimized baseline with llmd's fleet-latency-scorer
        // (weight 1) on the same latency model: the request's predicted
        // TTFT plus the prefill its cache miss adds for the requests queued
        // there; the latency-slo-admitter as in `slo-aware`.
        "slo-fleet" => config(
            &latency_model,
            &{
                let mut s = Vec::from(baseline("precise-prefix-cache-producer"));
                s.push(scorer(
                    "- type: fleet-latency-scorer\n",
                    "fleet-latency-scorer",
                    1.0,
                ));
                s
            },
            pd,
        ),
        _ => return None,
    })
}

/// Builds a built-in policy by name; `None` for an unknown name.
pub fn builtin(name: &str, f: &BuiltinFleet<'_>) -> Option<Result<Box<dyn Router>, String>> {
    if let Some(text) = builtin_config(name, f) {
        return Some(
            SchedRouter::new(name, &text, f.names, f.roles, f.model, f.seed)
                .map(|r| Box::new(r) as Box<dyn Router>),
        );
    }
    let workers = f.names.len();
    let seed = f.seed;
    Some(Ok(match name {
        "random" => Box::new(RandomRouter::new(seed)),
        "round-robin" => Box::new(RoundRobin::default()),
        "least-queue" => Box::new(LeastQueue::new(seed)),
        // llm-d's scoring without prefix affinity (the blog's "load" policy).
        "load-aware" => Box::new(Weighted::new(name, 2.0, 2.0, workers, seed)),
        _ => return None,
    }))
}
