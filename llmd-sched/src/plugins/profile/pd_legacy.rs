//! `pd-profile-handler`: llm-d's P/D handler before `disagg-profile-handler`
//! (deprecated since v0.7), in every release's parameter form, executed by
//! the decode-first disaggregation flow.
//!
//! * v0.6 and later: `decodeProfile` ("decode"), `prefillProfile`
//!   ("prefill"), `deciderPluginName` (a configured decider instance;
//!   default `prefix-based-pd-decider`, the v0.7 default), `primaryPort`
//!   (0: none; else the decode targets go to that port and the chosen rank's
//!   address travels in `x-data-parallel-host-port`, as llm-d did), and the
//!   never-used `prefixPluginType` / `prefixPluginName` /
//!   `prefixMatchInfoProducerName`.
//! * v0.2 – v0.5: `threshold` (non-cached prompt *characters* from which to
//!   disaggregate; 0 = always) and `hashBlockSize`. As then, the prefix hit is
//!   read from the prefix plugin named `prefixPluginName` (default
//!   `prefix-cache-scorer`) on the decode pick and counts as 0 when there is
//!   none; characters are counted as 4 per token (llm-d's own estimate), said
//!   in the load report's remark. `hashBlockSize` is reported as not executed
//!   (blocks come from the prefix producer).
//! * Neither form given and no `prefix-based-pd-decider` configured: the
//!   v0.2 – v0.5 default (threshold 0: always disaggregate).

use std::collections::HashMap;
use std::sync::Arc;

use super::deciders::AlwaysDisaggDecider;
use super::disagg::DisaggProfileHandler;
use crate::config::params::Params;
use crate::error::{ConfigError, ScheduleError};
use crate::framework::{
    CycleContext, Decider, EndpointIndex, HandlerResult, ProfileHandler, SchedulerProfile,
};

/// The v0.2 – v0.5 rule: disaggregate when the prompt's non-cached part, in
/// characters (4 per token), is at least the threshold.
struct CharacterThreshold {
    threshold_chars: u64,
    prefix_producer: String,
}

impl Decider for CharacterThreshold {
    fn disaggregate(&self, ctx: &CycleContext<'_>, peer: Option<EndpointIndex>) -> bool {
        let tokens = ctx.prompt_tokens() as u64;
        let cached = ctx
            .prefix_info(&self.prefix_producer)
            .and_then(|info| {
                peer.and_then(|e| info.get(e))
                    .map(|m| u64::from(m.cached_blocks) * u64::from(info.block_size))
            })
            .unwrap_or(0);
        tokens.saturating_sub(cached) * 4 >= self.threshold_chars
    }
}

/// The handler: the decode-first flow plus the optional primary port.
#[derive(Debug)]
pub struct PdProfileHandler {
    inner: DisaggProfileHandler,
    primary_port: Option<u16>,
}

/// What building it found worth reporting.
#[derive(Debug, Default)]
pub struct PdReport {
    /// How a v0.2 – v0.5 threshold was executed, if one was.
    pub remark: Option<&'static str>,
    /// Settings accepted but not executed: (name, why).
    pub not_executed: Vec<(String, String)>,
}

/// The default decider instance name since v0.7.
const DEFAULT_DECIDER: &str = "prefix-based-pd-decider";

impl PdProfileHandler {
    /// Decodes every release's parameters; `deciders` are the configured
    /// decider instances by name.
    pub fn from_params(
        p: &mut Params,
        deciders: &HashMap<String, Arc<dyn Decider>>,
    ) -> Result<(Self, PdReport), ConfigError> {
        let mut report = PdReport::default();
        let decode = p.string("decodeProfile", "decode")?;
        let prefill = p.string("prefillProfile", "prefill")?;
        let port = p.i64("primaryPort", 0)?;
        if !(0..=65535).contains(&port) {
            return Err(p.err("primaryPort", "must be 0 or a port number in 1..=65535"));
        }
        // llm-d: `prefixPluginName` falls back to `prefixPluginType`.
        let plugin_type = p.opt_string("prefixPluginType")?;
        let prefix_plugin = p
            .opt_string("prefixPluginName")?
            .or(plugin_type)
            .unwrap_or_else(|| "prefix-cache-scorer".to_string());
        p.note_not_executed(
            &mut report.not_executed,
            "prefixMatchInfoProducerName",
            "the decider reads the approximate producer's matches, as llm-d's does (the name only made that producer required there)",
        );
        p.opt_string("prefixMatchInfoProducerName")?;
        let threshold = p.opt_i64("threshold")?;
        if threshold.is_some_and(|t| t < 0) {
            return Err(p.err("threshold", "must be >= 0"));
        }
        if let Some(b) = p.opt_i64("hashBlockSize")? {
            if b <= 0 {
                return Err(p.err("hashBlockSize", "must be > 0"));
            }
            report.not_executed.push((
                "hashBlockSize".into(),
                "prefix blocks come from the configured prefix producer".into(),
            ));
        }
        let named = p.opt_string("deciderPluginName")?;
        if named.is_some() && threshold.is_some() {
            report.not_executed.push((
                "threshold".into(),
                "deciderPluginName is given: that decider decides".into(),
            ));
        }
        let decider: Arc<dyn Decider> = match (named, threshold) {
            (Some(name), _) => deciders.get(&name).cloned().ok_or_else(|| {
                p.err(
                    "deciderPluginName",
                    format!("'{name}' does not name a configured P/D decider plugin"),
                )
            })?,
            (None, Some(t)) if t > 0 => {
                report.remark = Some("threshold (v0.2-v0.5) counts non-cached prompt characters as 4 per token, with the prefix hit of prefixPluginName's data on the decode pick (0 when it has none)");
                Arc::new(CharacterThreshold {
                    threshold_chars: t as u64,
                    prefix_producer: prefix_plugin.clone(),
                })
            }
            (None, Some(_)) => Arc::new(AlwaysDisaggDecider),
            (None, None) => match deciders.get(DEFAULT_DECIDER) {
                Some(d) => d.clone(),
                None => {
                    report.remark = Some("no deciderPluginName and no prefix-based-pd-decider configured: the v0.2-v0.5 default (threshold 0) disaggregates every request");
                    Arc::new(AlwaysDisaggDecider)
                }
            },
        };
        let handler = PdProfileHandler {
            inner: DisaggProfileHandler::decode_first(decode, prefill, Some(decider)),
            primary_port: (port > 0).then_some(port as u16),
        };
        Ok((handler, report))
    }
}

impl ProfileHandler for PdProfileHandler {
    fn pick(
        &self,
        ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize> {
        self.inner.pick(ctx, profiles, round)
    }

    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError> {
        let mut r = self.inner.process_results(ctx, profiles)?;
        r.data_parallel_port = self.primary_port;
        Ok(r)
    }
}
