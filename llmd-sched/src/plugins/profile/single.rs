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
        one_profile_outcome(ctx, profiles, 0)
    }
}

/// The outcome when profile `i` alone ran: a `single` decision with it as
/// primary, or its error (a 503 naming it when it left neither).
pub(crate) fn one_profile_outcome(
    ctx: &CycleContext<'_>,
    profiles: &[SchedulerProfile],
    i: usize,
) -> Result<HandlerResult, ScheduleError> {
    if ctx.result(i).is_some() {
        return Ok(HandlerResult {
            primary: i,
            prefill: None,
            encode: None,
            decision_type: "single",
            data_parallel_port: None,
        });
    }
    Err(ctx
        .error(i)
        .cloned()
        .unwrap_or_else(|| ScheduleError::ResourceExhausted {
            profile: profiles.get(i).map(|p| p.name.clone()),
            reason: "the profile produced no result".into(),
        }))
}
