//! Turning a scenario's policy list into routers.

use crate::error::{Result, SimError};
use crate::router::{builtin, Role, Router, SchedRouter, BUILTINS};
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
        PolicySpec::Config {
            name,
            config,
            inline,
        } => {
            let text = match (config, inline) {
                (Some(path), None) => {
                    let path = scenario.base_dir.join(path);
                    std::fs::read_to_string(&path)
                        .map_err(|e| SimError::io(path.display().to_string(), e))?
                }
                (None, Some(text)) => text.clone(),
                _ => {
                    return Err(SimError::Policy {
                        policy: name.clone(),
                        reason: "give exactly one of `config` (a file) or `inline`".into(),
                    })
                }
            };
            let (names, roles) = fleet_endpoints(scenario);
            let r = SchedRouter::new(
                name,
                &text,
                &names,
                &roles,
                &scenario.model_name,
                scenario.seed,
            )
            .map_err(|reason| SimError::Policy {
                policy: name.clone(),
                reason,
            })?;
            Ok(Box::new(r))
        }
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

/// Endpoint names and roles of the scenario's fleet, in worker order:
/// aggregated workers, then prefill, then decode.
pub fn fleet_endpoints(scenario: &Scenario) -> (Vec<String>, Vec<Role>) {
    let f = &scenario.fleet;
    let mut roles = vec![Role::Both; f.workers as usize];
    roles.extend(std::iter::repeat(Role::Prefill).take(f.prefill as usize));
    roles.extend(std::iter::repeat(Role::Decode).take(f.decode as usize));
    let names = (0..roles.len())
        .map(|i| format!("10.0.0.{}:8000", i + 1))
        .collect();
    (names, roles)
}
