//! `single-profile-handler`: run the one profile once; it is primary.

use crate::error::ScheduleError;
use crate::framework::{CycleContext, HandlerResult, ProfileHandler, SchedulerProfile};

/// The handler injected when a config has exactly one profile.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProfileHandler;

impl ProfileHandler for SingleProfileHandler {
    fn pick(
        &self,
        _ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize> {
        if round == 0 && !profiles.is_empty() {
            vec![0]
        } else {
            Vec::new()
        }
    }

    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError> {
        if ctx.result(0).is_some() {
            return Ok(HandlerResult {
                primary: 0,
                prefill: None,
                encode: None,
                decision_type: "single",
                data_parallel_port: None,
            });
        }
        Err(ctx
            .error(0)
            .cloned()
            .unwrap_or_else(|| ScheduleError::ResourceExhausted {
                profile: profiles.first().map(|p| p.name.clone()),
                reason: "the profile produced no result".into(),
            }))
    }
}
