//! Turning a scenario's policy list into routers.

use crate::error::{Result, SimError};
use crate::router::{builtin, Router, BUILTINS};
use crate::scenario::{PolicySpec, Scenario};

/// Builds the router for `spec` in `scenario`'s fleet.
pub fn build(spec: &PolicySpec, scenario: &Scenario) -> Result<Box<dyn Router>> {
    let workers = scenario.fleet.size();
    let bs = scenario.engine.block_size as usize;
    let blocks =
        (scenario.engine.kv_tokens / u64::from(scenario.engine.block_size.max(1))) as usize;
    match spec {
        PolicySpec::Builtin(name) => {
            builtin(name, workers, bs, blocks, scenario.seed).ok_or_else(|| SimError::Policy {
                policy: name.clone(),
                reason: format!("unknown built-in policy; known: {}", BUILTINS.join(", ")),
            })
        }
        PolicySpec::Config { name, .. } => Err(SimError::Policy {
            policy: name.clone(),
            reason: "EndpointPickerConfig policies need the llmd-sched scheduler".into(),
        }),
    }
}

/// The scenario's policies, or every built-in when it lists none.
pub fn policies(scenario: &Scenario) -> Vec<PolicySpec> {
    if scenario.policies.is_empty() {
        BUILTINS
            .iter()
            .map(|s| PolicySpec::Builtin(s.to_string()))
            .collect()
    } else {
        scenario.policies.clone()
    }
}
