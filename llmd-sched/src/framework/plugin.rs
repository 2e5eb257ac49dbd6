//! The stage traits, named as in llm-d. Each is object-safe and batch shaped:
//! one virtual call per stage, not per endpoint.

use std::sync::Arc;

use super::context::{CycleContext, EndpointIndex};
use super::profile::SchedulerProfile;
use crate::error::ScheduleError;
use crate::model::EndpointState;

/// Narrows the candidate set in place; order of survivors is kept.
pub trait Filter: Send + Sync {
    /// Retains the candidates that pass.
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>);
}

/// Scores every candidate. Values outside [0, 1] are clamped by the framework;
/// `out[i]` belongs to `candidates[i]` and starts at 0.
pub trait Scorer: Send + Sync {
    /// Writes one raw score per candidate.
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]);
}

/// Chooses the targets from the scored candidates.
pub trait Picker: Send + Sync {
    /// Appends the chosen endpoints, best first, to `out`.
    fn pick(
        &self,
        ctx: &CycleContext<'_>,
        scored: &[(EndpointIndex, f64)],
        out: &mut Vec<EndpointIndex>,
    );
}

/// Derives per-request data once per cycle, before any profile runs
/// (llm-d DataProducer), over the candidate endpoints.
pub trait Producer: Send + Sync {
    /// Adds its data to the context.
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]);

    /// An endpoint joins the pool (before any pick can see it). An error
    /// refuses the endpoint: [`crate::Scheduler::add_endpoint`] fails with it
    /// and the endpoint is not added.
    fn on_endpoint_added(&self, _uid: u64) -> Result<(), crate::ScheduleError> {
        Ok(())
    }

    /// An endpoint left the pool; drop whatever state is kept for it.
    fn on_endpoint_removed(&self, _uid: u64) {}

    /// This producer as a burst producer, whose batches
    /// [`crate::Scheduler::pick_batch`] assigns before the picks.
    fn as_burst(&self) -> Option<&crate::plugins::producers::BurstPrefixProducer> {
        None
    }

    /// The size and health of the block index this producer keeps, if it
    /// keeps one (exported as `llmd_kvindex_entries` and related metrics).
    fn index_stats(&self) -> Option<llmd_kvindex::index::IndexStats> {
        None
    }
}

/// The decision being committed, as seen by [`PreRequest`] hooks.
#[derive(Clone, Copy, Debug)]
pub struct Decided<'p> {
    /// Name of the primary profile.
    pub primary_profile: &'p str,
    /// The primary profile's picks, best first.
    pub targets: &'p [EndpointIndex],
    /// First pick of every profile that produced one, by profile name.
    pub picks: &'p [(&'p str, EndpointIndex)],
}

impl Decided<'_> {
    /// First pick of the profile with this name.
    pub fn pick_of(&self, profile: &str) -> Option<EndpointIndex> {
        self.picks
            .iter()
            .find(|(n, _)| *n == profile)
            .map(|(_, e)| *e)
    }
}

/// Narrows a request's candidates before any producer or profile sees them
/// (llm-d's request-control Screener), so no later filter, scorer or picker
/// can undo the constraint.
pub trait Screener: Send + Sync {
    /// Keeps the candidates this request may use. An error fails the
    /// request; an empty set fails it as having no endpoints.
    fn screen(
        &self,
        ctx: &mut CycleContext<'_>,
        candidates: &mut Vec<EndpointIndex>,
    ) -> Result<(), ScheduleError>;
}

/// Runs after a successful decision (llm-d PreRequest): routing-time index
/// updates, LRU touches, session bindings.
pub trait PreRequest: Send + Sync {
    /// Records the decision.
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>);

    /// Appends the events this hook counted since it was last asked, as
    /// `(plugin instance, event, count)` (a session binding dropped at its
    /// bound); the scheduler adds them to `llmd_plugin_events_total` after
    /// each pick. None by default.
    fn take_events(&self, _out: &mut Vec<(Arc<str>, &'static str, u64)>) {}

    /// Appends headers the proxy sets on the response to the client (llm-d's
    /// ResponseHeader hooks that depend only on the decision). The library never sees
    /// the response, so they travel in the decision instead. Nothing by default.
    fn response_headers(
        &self,
        _ctx: &CycleContext<'_>,
        _decided: &Decided<'_>,
        _out: &mut Vec<(String, String)>,
    ) {
    }

    /// Headers to set on the request sent upstream (`set`) and to strip from
    /// it (`remove`), as llm-d's PreRequest hooks edit the request. Nothing
    /// by default.
    fn request_headers(
        &self,
        _ctx: &CycleContext<'_>,
        _decided: &Decided<'_>,
        _set: &mut Vec<(String, String)>,
        _remove: &mut Vec<String>,
    ) {
    }
}

/// Decides whether a stage (prefill or encode) runs on a separate endpoint.
pub trait Decider: Send + Sync {
    /// `peer` is the decode pick (decode-first) or `None` (prefill-first encode).
    fn disaggregate(&self, ctx: &CycleContext<'_>, peer: Option<EndpointIndex>) -> bool;
}

/// What the profile handler reports once the loop ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerResult {
    /// Index of the primary profile.
    pub primary: usize,
    /// Index of the profile whose first pick is the remote prefill target.
    pub prefill: Option<usize>,
    /// Index of the profile whose picks are the encoders.
    pub encode: Option<usize>,
    /// `decode-only`, `prefill-decode`, `encode-decode`, `encode-prefill-decode`, or `single`.
    pub decision_type: &'static str,
    /// Data-parallel serving: the primary pick's address (a rank's port) goes
    /// in `x-data-parallel-host-port` and the targets' port becomes this one.
    pub data_parallel_port: Option<u16>,
}

/// Chooses which profiles run, possibly in several rounds, and which result is primary.
pub trait ProfileHandler: Send + Sync {
    /// Indices of the profiles to run next; empty ends the loop. Results of
    /// earlier rounds are in `ctx.result(i)`.
    fn pick(
        &self,
        ctx: &mut CycleContext<'_>,
        profiles: &[SchedulerProfile],
        round: usize,
    ) -> Vec<usize>;
    /// Builds the outcome from the results in `ctx`.
    fn process_results(
        &self,
        ctx: &CycleContext<'_>,
        profiles: &[SchedulerProfile],
    ) -> Result<HandlerResult, ScheduleError>;
    /// The profiles this handler's settings expect to run among the
    /// configured `profiles`, as `(setting, profile name, what happens
    /// without it)`: one the configuration does not define is reported when
    /// it loads (a strict load refuses it). None by default.
    fn expected_profiles(
        &self,
        _profiles: &[SchedulerProfile],
    ) -> Vec<(&'static str, String, &'static str)> {
        Vec::new()
    }
    /// The profiles every request needs, as `(setting, profile name)`: one
    /// the configuration does not define is reported when it loads (every
    /// pick then fails, as in llm-d; a strict load refuses it). None by
    /// default.
    fn required_profiles(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Closures are filters: `|ctx, ep| ep.waiting_queue_size() < 10`.
impl<F> Filter for F
where
    F: Fn(&CycleContext<'_>, &EndpointState) -> bool + Send + Sync,
{
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        candidates.retain(|&i| self(ctx, ctx.endpoint(i)));
    }
}

/// Closures are scorers: `|ctx, ep| 1.0 / (1.0 + ep.inflight_requests() as f64)`.
impl<F> Scorer for F
where
    F: Fn(&CycleContext<'_>, &EndpointState) -> f64 + Send + Sync,
{
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(candidates) {
            *o = self(ctx, ctx.endpoint(i));
        }
    }
}
