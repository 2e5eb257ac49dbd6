//! `disagg-profile-handler`: decode / prefill / encode disaggregation.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::params::Params;
use crate::error::{ConfigError, ScheduleError};
use crate::framework::{CycleContext, Decider, HandlerResult, ProfileHandler, SchedulerProfile};

/// Stage order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageOrder {
    /// Decode first, then (decided) encode and prefill with the decode pick as peer.
    DecodeFirst,
    /// Prefill (unconditionally), encode, then decode with the prefill pick as peer.
    PrefillFirst,
}

/// The handler with its profile names and deciders.
#[derive(Clone)]
pub struct DisaggProfileHandler {
    order: StageOrder,
    decode: String,
    prefill: String,
    encode: String,
    prefill_decider: Option<Arc<dyn Decider>>,
    encode_decider: Option<Arc<dyn Decider>>,
}

impl std::fmt::Debug for DisaggProfileHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisaggProfileHandler")
            .field("order", &self.order)
            .field("decode", &self.decode)
            .field("prefill", &self.prefill)
            .field("encode", &self.encode)
            .field("prefill_decider", &self.prefill_decider.is_some())
            .field("encode_decider", &self.encode_decider.is_some())
            .finish()
    }
}

impl DisaggProfileHandler {
    /// Decodes the nested form (`stageOrder`, `profiles`, `deciders`) or the
    /// legacy flat form; mixing both is an error. `deciders` maps plugin names to built deciders.
    pub fn from_params(
        p: &mut Params,
        deciders: &HashMap<String, Arc<dyn Decider>>,
    ) -> Result<Self, ConfigError> {
        let order = match p.string("stageOrder", "decode-first")?.as_str() {
            "" | "decode" | "decode-first" => StageOrder::DecodeFirst,
            "prefill" | "prefill-first" => StageOrder::PrefillFirst,
            other => {
                return Err(p.err(
                    "stageOrder",
                    format!(
                        "unknown stage order '{other}' (expected decode-first or prefill-first)"
                    ),
                ))
            }
        };
        let nested = p.has("profiles") || p.has("deciders");
        let flat_keys = [
            "decodeProfile",
            "prefillProfile",
            "encodeProfile",
            "prefillDeciderPluginName",
            "encodeDeciderPluginName",
            "deciderPluginName",
        ];
        if let Some(k) = flat_keys.iter().find(|k| p.has(k)) {
            if nested {
                return Err(p.err(
                    k,
                    "the legacy flat parameters cannot be mixed with 'profiles' / 'deciders'",
                ));
            }
        }
        let (mut decode, mut prefill, mut encode) = (
            "decode".to_string(),
            "prefill".to_string(),
            "encode".to_string(),
        );
        let (prefill_ref, encode_ref);
        if nested {
            if let Some(mut pr) = p.object("profiles")? {
                decode = pr.string("decode", &decode)?;
                prefill = pr.string("prefill", &prefill)?;
                encode = pr.string("encode", &encode)?;
                pr.finish()?;
            }
            match p.object("deciders")? {
                Some(mut d) => {
                    prefill_ref = d.opt_string("prefill")?;
                    encode_ref = d.opt_string("encode")?;
                    d.finish()?;
                }
                None => {
                    prefill_ref = None;
                    encode_ref = None;
                }
            }
        } else {
            decode = p.string("decodeProfile", &decode)?;
            prefill = p.string("prefillProfile", &prefill)?;
            encode = p.string("encodeProfile", &encode)?;
            let a = p.opt_string("prefillDeciderPluginName")?;
            let b = p.opt_string("deciderPluginName")?;
            prefill_ref = a.or(b);
            encode_ref = p.opt_string("encodeDeciderPluginName")?;
        }
        let resolve =
            |field: &str, r: Option<String>| -> Result<Option<Arc<dyn Decider>>, ConfigError> {
                match r {
                    None => Ok(None),
                    Some(name) => deciders.get(&name).cloned().map(Some).ok_or_else(|| {
                        p.err(
                            field,
                            format!("'{name}' does not name a configured P/D decider plugin"),
                        )
                    }),
                }
            };
        let prefill_decider = resolve("deciders.prefill", prefill_ref)?;
        let encode_decider = resolve("deciders.encode", encode_ref)?;
        if order == StageOrder::PrefillFirst && prefill_decider.is_some() {
            return Err(p.err(
                "deciders.prefill",
                "a prefill decider cannot be used with stageOrder prefill-first",
            ));
        }
        Ok(DisaggProfileHandler {
            order,
            decode,
            prefill,
            encode,
            prefill_decider,
            encode_decider,
        })
    }

    /// Decode first with these profile names and prefill decider (no encode
    /// stage): the shape of llm-d's deprecated `pd-profile-handler`.
    pub fn decode_first(
        decode: String,
        prefill: String,
        prefill_decider: Option<Arc<dyn Decider>>,
    ) -> Self {
        DisaggProfileHandler {
            order: StageOrder::DecodeFirst,
            decode,
            prefill,
            encode: "encode".into(),
            prefill_decider,
            encode_decider: None,
        }
    }

    fn find(profiles: &[SchedulerProfile], name: &str) -> Option<usize> {
        profiles.iter().position(|p| p.name == name)
    }
}

impl ProfileHandler for DisaggProfileHandler {
    /// The stages a decider is configured for: without their profile the
    /// decider is never consulted and every request is decode-only.
    fn required_profiles(&self) -> Vec<(&'static str, String)> {
        vec![("profiles.decode", self.decode.clone())]
    }

    fn expected_profiles(
        &self,
        _profiles: &[SchedulerProfile],
    ) -> Vec<(&'static str, String, &'static str)> {
        const WHY: &str = "the decider is never consulted and that stage never runs";
        let mut out = Vec::new();
        if self.prefill_decider.is_some() {
            out.push(("deciders.prefill", self.prefill.clone(), WHY));
        }
        if self.encode_decider.is_some() {
            out.push(("deciders.encode", self.encode.clone(), WHY));
        }
        out
    }

    fn pick(
        &self,
        ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize> {
        let decode = Self::find(profiles, &self.decode);
        let prefill = Self::find(profiles, &self.prefill);
        let encode = Self::find(profiles, &self.encode);
        let first_pick = |ctx: &CycleContext<'_>, i: Option<usize>| {
            i.and_then(|i| ctx.result(i))
                .and_then(|r| r.targets.first().copied())
        };
        match (self.order, round) {
            (StageOrder::DecodeFirst, 0) => decode.into_iter().collect(),
            (StageOrder::DecodeFirst, 1) => {
                let Some(peer) = first_pick(ctx, decode) else {
                    return Vec::new();
                };
                let mut next = Vec::new();
                if let (Some(e), Some(d)) = (encode, &self.encode_decider) {
                    if d.disaggregate(ctx, Some(peer)) {
                        next.push(e);
                    }
                }
                if let (Some(p), Some(d)) = (prefill, &self.prefill_decider) {
                    if d.disaggregate(ctx, Some(peer)) {
                        ctx.set_peer(Some(peer));
                        next.push(p);
                    }
                }
                next
            }
            (StageOrder::PrefillFirst, 0) => {
                let mut next: Vec<usize> = prefill.into_iter().collect();
                if let (Some(e), Some(d)) = (encode, &self.encode_decider) {
                    if d.disaggregate(ctx, None) {
                        next.push(e);
                    }
                }
                if next.is_empty() {
                    decode.into_iter().collect()
                } else {
                    next
                }
            }
            (StageOrder::PrefillFirst, 1) => match decode {
                Some(d) if ctx.result(d).is_none() && ctx.error(d).is_none() => {
                    ctx.set_peer(first_pick(ctx, prefill));
                    vec![d]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError> {
        let Some(decode) = Self::find(profiles, &self.decode) else {
            return Err(ScheduleError::ResourceExhausted {
                profile: None,
                reason: format!(
                    "failed to find available decode workers: no profile named '{}'",
                    self.decode
                ),
            });
        };
        if ctx.result(decode).is_none() {
            return Err(ctx.error(decode).cloned().unwrap_or_else(|| {
                ScheduleError::ResourceExhausted {
                    profile: Some(self.decode.clone()),
                    reason: "failed to find available decode workers".into(),
                }
            }));
        }
        let ran = |name: &str| Self::find(profiles, name).filter(|&i| ctx.result(i).is_some());
        let prefill = ran(&self.prefill);
        let encode = ran(&self.encode);
        let decision_type = match (encode.is_some(), prefill.is_some()) {
            (false, false) => "decode-only",
            (false, true) => "prefill-decode",
            (true, false) => "encode-decode",
            (true, true) => "encode-prefill-decode",
        };
        Ok(HandlerResult {
            primary: decode,
            prefill,
            encode,
            decision_type,
            data_parallel_port: None,
        })
    }
}
