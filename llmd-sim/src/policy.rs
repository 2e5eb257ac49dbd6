//! Turning a scenario's policy list into routers.

use crate::error::{Result, SimError};
use crate::router::{
    builtin, BuiltinFleet, Replicated, Role, Router, SchedRouter, BUILTINS, EXTRA_BUILTINS,
};
use crate::scenario::{PolicySpec, Scenario};

/// Builds the router for `spec` in `scenario`'s fleet: with
/// `fleet.router_replicas` > 1, that many independent replicas of it (seeds
/// differ) behind a round-robin spreader.
pub fn build(spec: &PolicySpec, scenario: &Scenario) -> Result<Box<dyn Router>> {
    let n = scenario.fleet.router_replicas.max(1);
    if n == 1 {
        return build_one(spec, scenario);
    }
    let mut replicas = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut sc = scenario.clone();
        sc.seed = scenario.seed.wrapping_add(u64::from(i));
        replicas.push(build_one(spec, &sc)?);
    }
    Ok(Box::new(Replicated::new(spec.name(), replicas)))
}

fn build_one(spec: &PolicySpec, scenario: &Scenario) -> Result<Box<dyn Router>> {
    let bs = scenario.engine.block_size as usize;
    let blocks =
        (scenario.engine.kv_tokens / u64::from(scenario.engine.block_size.max(1))) as usize;
    match spec {
        PolicySpec::Builtin(name) => {
            let (names, roles) = fleet_endpoints(scenario);
            let fleet = BuiltinFleet {
                names: &names,
                roles: &roles,
                model: &scenario.model_name,
                block_size: bs,
                num_blocks: blocks,
                seed: scenario.seed,
            };
            match builtin(name, &fleet) {
                Some(Ok(r)) => Ok(r),
                Some(Err(reason)) => Err(SimError::Policy {
                    policy: name.clone(),
                    reason,
                }),
                None => Err(SimError::Policy {
                    policy: name.clone(),
                    reason: format!(
                        "unknown built-in policy; known: {}, {}",
                        BUILTINS.join(", "),
                        EXTRA_BUILTINS.join(", ")
                    ),
                }),
            }
        }
        PolicySpec::Config {
            name,
            config,
            inline,
        } => {
            let text = match (config, inline) {
                (Some(path), None) => crate::scenario::read_text(
                    &scenario.base_dir.join(path),
                    crate::scenario::MAX_CONFIG_BYTES,
                )?,
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
