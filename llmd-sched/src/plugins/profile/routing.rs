//! Single-stage profile handlers of llm-d-router besides the default one:
//! `header-profile-handler` (a request header names the profile to run) and
//! `data-parallel-profile-handler` (one profile; the chosen rank's address
//! goes in `x-data-parallel-host-port` and the target's port becomes the
//! pod's primary port, where llm-d's sidecar fans out to the ranks).

use super::single::one_profile_outcome;
use crate::config::params::Params;
use crate::error::{ConfigError, ScheduleError};
use crate::framework::{CycleContext, HandlerResult, ProfileHandler, SchedulerProfile};

fn no_result(reason: String) -> ScheduleError {
    ScheduleError::ResourceExhausted {
        profile: None,
        reason,
    }
}

/// `header-profile-handler` (Alpha): runs the profile the request header
/// `headerName` (default `EPP-Profile`, case-insensitive; value trimmed,
/// case-sensitive) names, or `defaultProfile` (default `decode`) when the
/// header is missing or blank; with a single profile configured that one
/// always runs. An unknown name runs nothing and the request is refused (429).
#[derive(Debug)]
pub struct HeaderProfileHandler {
    header: String,
    default_profile: String,
}

impl HeaderProfileHandler {
    /// Decodes `headerName` and `defaultProfile`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let header = p
            .string("headerName", "EPP-Profile")?
            .trim()
            .to_ascii_lowercase();
        let default_profile = p.string("defaultProfile", "decode")?.trim().to_string();
        if header.is_empty() {
            return Err(p.err("headerName", "must not be blank"));
        }
        Ok(HeaderProfileHandler {
            header,
            default_profile,
        })
    }

    fn wanted<'a>(&'a self, ctx: &'a CycleContext<'_>) -> &'a str {
        ctx.request()
            .header_value(&self.header)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(&self.default_profile)
    }
}

impl ProfileHandler for HeaderProfileHandler {
    /// `defaultProfile` runs for every request without the header, unless
    /// one profile is configured (then that one always runs).
    fn expected_profiles(
        &self,
        profiles: &[SchedulerProfile],
    ) -> Vec<(&'static str, String, &'static str)> {
        if profiles.len() == 1 {
            return Vec::new();
        }
        vec![(
            "defaultProfile",
            self.default_profile.clone(),
            "a request without the header runs no profile and is refused (429)",
        )]
    }

    fn pick(
        &self,
        ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize> {
        if round > 0 {
            return Vec::new();
        }
        if profiles.len() == 1 {
            return vec![0];
        }
        let want = self.wanted(ctx).to_string();
        match profiles.iter().position(|p| p.name == want) {
            Some(i) => vec![i],
            None => {
                ctx.note(format!(
                    "header-profile-handler: no profile {want:?} (configured: {})",
                    profiles
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Vec::new()
            }
        }
    }

    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError> {
        let ran: Vec<usize> = (0..profiles.len())
            .filter(|&i| ctx.result(i).is_some() || ctx.error(i).is_some())
            .collect();
        match ran.as_slice() {
            [i] => one_profile_outcome(ctx, profiles, *i),
            [] => Err(no_result(format!(
                "no profile ran: header '{}' names none of the configured profiles and defaultProfile '{}' is not one",
                self.header, self.default_profile
            ))),
            _ => Err(no_result("more than one profile ran".into())),
        }
    }
}

/// `data-parallel-profile-handler`: the one configured profile runs; its
/// pick's address is written to `x-data-parallel-host-port` and the targets'
/// port becomes `primaryPort` (default 8000; 1..=65535).
#[derive(Debug)]
pub struct DataParallelProfileHandler {
    primary_port: u16,
}

impl DataParallelProfileHandler {
    /// Decodes `primaryPort`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let port = p.i64("primaryPort", 8000)?;
        if !(1..=65535).contains(&port) {
            return Err(p.err("primaryPort", "must be a port number in 1..=65535"));
        }
        Ok(DataParallelProfileHandler {
            primary_port: port as u16,
        })
    }
}

impl ProfileHandler for DataParallelProfileHandler {
    fn pick(
        &self,
        ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize> {
        if round > 0 {
            return Vec::new();
        }
        if profiles.len() != 1 {
            ctx.note(format!(
                "data-parallel-profile-handler: needs exactly one profile, {} configured",
                profiles.len()
            ));
            return Vec::new();
        }
        vec![0]
    }

    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError> {
        if profiles.len() != 1 {
            return Err(no_result(format!(
                "data-parallel-profile-handler needs exactly one profile, {} configured",
                profiles.len()
            )));
        }
        let mut outcome = one_profile_outcome(ctx, profiles, 0)?;
        outcome.data_parallel_port = Some(self.primary_port);
        Ok(outcome)
    }
}
