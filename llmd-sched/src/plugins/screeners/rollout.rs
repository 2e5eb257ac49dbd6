//! `disaggregatedset-rollout-screener`: keeps prefill and decode on one
//! revision of a DisaggregatedSet during a rollout.
//!
//! llm-d watches Pod notifications for Ready Pods; the library counts the
//! endpoints the host has registered instead (a registered endpoint is a
//! Ready Pod), reading each one's revision and role from its labels. Per
//! request, with revision gating on:
//!
//! 1. a revision without an endpoint of every required role is dropped;
//! 2. a revision header (strict) selects that revision, else one covered
//!    revision is drawn at random, weighted by `sum` (endpoints of the
//!    required roles) or `max-role` (endpoints of the role with the most
//!    across covered revisions);
//! 3. only that revision's candidates go on, to every profile, so prefill
//!    and decode cannot pair across revisions. None left fails the request
//!    (llm-d answers 503), never a silent substitute.
//!
//! Requests of one decision (`x-llm-d-revision-decision-id`, else
//! `x-request-id`) keep the revision drawn for the first of them, in this
//! scheduler (llm-d's local decision state; its cross-replica sync is the
//! host's).
//!
//! Strict header selectors keep only endpoints whose label equals the
//! header; every selector stamps the picked endpoint's label into its
//! response header. Two config eras load: the first (`revisionHeaderName`,
//! `requiredRoles`: the revision header is implied) and the later
//! (`headerSelectors`, `requireRoles.values`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::params::Params;
use crate::error::{ConfigError, ScheduleError};
use crate::framework::{CycleContext, Decided, EndpointIndex, PreRequest, ScreenReport, Screener};
use crate::plugins::filters::LabelSelectorFilter;

/// Default label of a Pod's revision.
pub const REVISION_LABEL: &str = "disaggregatedset.x-k8s.io/revision";
/// Default label of a Pod's role.
pub const ROLE_LABEL: &str = "disaggregatedset.x-k8s.io/role";
/// The first era's default revision header.
pub const REVISION_HEADER: &str = "x-llm-d-disagg-revision";

/// How revisions are gated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatingMode {
    /// Weight = endpoints of every required role.
    Sum,
    /// Weight = endpoints of the role with the most across covered revisions.
    MaxRole,
    /// No coverage check or weighted choice (selectors still apply).
    Disabled,
}

/// What a header selector does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorMode {
    /// Keep only endpoints whose label equals the header; none fails.
    Strict,
    /// Only stamp the response header (a scorer applies the preference).
    Prefer,
}

/// One `headerSelectors` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderSelector {
    /// Stable identifier.
    pub name: String,
    /// Request and response header.
    pub header: String,
    /// Endpoint label compared and stamped.
    pub label: String,
    /// Strict or prefer.
    pub mode: SelectorMode,
}

/// Request header naming the rollout decision a request belongs to (parallel
/// subrequests of one user request share it); `x-request-id` otherwise.
pub const DECISION_ID_HEADER: &str = "x-llm-d-revision-decision-id";

/// Decisions remembered per decision id (oldest forgotten first).
const DECISIONS_KEPT: usize = 16_384;

/// Revisions drawn per decision id, so the requests of one decision stay
/// on one revision (llm-d's local decision state).
#[derive(Debug, Default)]
struct DecisionMemo {
    chosen: std::collections::HashMap<String, String>,
    order: std::collections::VecDeque<String>,
}

impl DecisionMemo {
    /// The revision of decision `id`: the one drawn first for it, else `drawn`.
    fn get_or_set(&mut self, id: &str, drawn: String) -> String {
        if let Some(r) = self.chosen.get(id) {
            return r.clone();
        }
        if self.order.len() >= DECISIONS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.chosen.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.chosen.insert(id.to_string(), drawn.clone());
        drawn
    }
}

/// The screener.
#[derive(Debug)]
pub struct RolloutScreener {
    /// Plugin instance name (for notes).
    pub name: String,
    /// `scope.labelSelector`: endpoints counted for revision coverage.
    pub scope: LabelSelectorFilter,
    /// Header selectors (the first era's revision header among them).
    pub selectors: Vec<HeaderSelector>,
    /// Gating mode.
    pub mode: GatingMode,
    /// Roles every served revision needs, in tie-break order.
    pub roles: Vec<String>,
    /// Revision label key.
    pub revision_label: String,
    /// Role label key.
    pub role_label: String,
    decisions: parking_lot::Mutex<DecisionMemo>,
    /// The shares of the last fleet seen, keyed by its endpoints' ids (an
    /// endpoint's labels change only with a new registration, so the ids
    /// identify the revision layout).
    shares_cache: parking_lot::Mutex<Option<(u64, Shares)>>,
}

/// Revision → traffic share.
type Shares = Arc<BTreeMap<String, f64>>;

/// A key of a fleet's registrations, in order.
fn fleet_key(ctx: &CycleContext<'_>) -> u64 {
    ctx.endpoints()
        .iter()
        .fold(ctx.endpoints().len() as u64, |h, ep| {
            (h ^ ep.uid())
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29)
        })
}

impl RolloutScreener {
    /// Decodes llm-d's parameters (either era).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let name = p.plugin_name().to_string();
        let mut scope_p = p
            .object("scope")?
            .ok_or_else(|| p.err("scope", "scope.labelSelector is required"))?;
        let text = scope_p
            .opt_string("labelSelector")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| scope_p.err("labelSelector", "scope.labelSelector is required"))?;
        let scope = LabelSelectorFilter::parse(&text).map_err(|e| {
            scope_p.err("labelSelector", format!("not a valid label selector: {e}"))
        })?;
        scope_p.finish()?;
        let mut selectors = Vec::new();
        for (i, mut s) in p.objects("headerSelectors")?.into_iter().enumerate() {
            let mut field = |k: &str| {
                s.opt_string(k)?
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| s.err(k, format!("required (headerSelectors[{i}])")))
            };
            let (name, header, label, mode) = (
                field("name")?,
                field("headerName")?,
                field("labelKey")?,
                field("mode")?,
            );
            let mode = match mode.as_str() {
                "strict" => SelectorMode::Strict,
                "prefer" => SelectorMode::Prefer,
                other => {
                    return Err(s.err(
                        "mode",
                        format!("'{other}' must be strict or prefer (headerSelectors[{i}])"),
                    ))
                }
            };
            s.finish()?;
            selectors.push(HeaderSelector {
                name,
                header: header.to_ascii_lowercase(),
                label,
                mode,
            });
        }
        let mut g = p
            .object("revisionGating")?
            .ok_or_else(|| p.err("revisionGating", "revisionGating is required"))?;
        let mode_text = g
            .opt_string("mode")?
            .ok_or_else(|| g.err("mode", "revisionGating.mode is required"))?;
        let mode = match mode_text.as_str() {
            "sum" => GatingMode::Sum,
            "max-role" => GatingMode::MaxRole,
            "disabled" => GatingMode::Disabled,
            other => {
                return Err(g.err(
                    "mode",
                    format!("revisionGating.mode '{other}' must be one of sum|max-role|disabled"),
                ))
            }
        };
        let revision_label = g.string("revisionLabelKey", REVISION_LABEL)?;
        let role_label = g.string("roleLabelKey", ROLE_LABEL)?;
        // The first era: the roles as a list and an implied revision header.
        let first_era_header = g.opt_string("revisionHeaderName")?;
        let mut roles = g.strings("requiredRoles")?;
        let first_era = first_era_header.is_some() || !roles.is_empty();
        if let Some(mut r) = g.object("requireRoles")? {
            roles.extend(r.strings("values")?);
            r.finish()?;
        }
        g.finish()?;
        if mode != GatingMode::Disabled {
            if roles.is_empty() {
                return Err(p.err(
                    "revisionGating",
                    format!(
                        "requireRoles.values must name at least one role when mode is {mode_text}"
                    ),
                ));
            }
            for (i, r) in roles.iter().enumerate() {
                if r.is_empty() {
                    return Err(p.err("revisionGating", format!("role {i} must not be empty")));
                }
                if roles[..i].contains(r) {
                    return Err(p.err("revisionGating", format!("duplicate role '{r}'")));
                }
            }
        }
        if first_era {
            let header = first_era_header
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| REVISION_HEADER.to_string());
            selectors.push(HeaderSelector {
                name: "revision".into(),
                header: header.to_ascii_lowercase(),
                label: revision_label.clone(),
                mode: SelectorMode::Strict,
            });
        }
        Ok(RolloutScreener {
            name,
            scope,
            selectors,
            mode,
            roles,
            revision_label,
            role_label,
            decisions: Default::default(),
            shares_cache: Default::default(),
        })
    }

    /// [`Self::shares`] of the fleet in `ctx`, computed once per fleet;
    /// true when this fleet's were just computed.
    fn cached_shares(&self, ctx: &CycleContext<'_>) -> (Shares, bool) {
        let key = fleet_key(ctx);
        if let Some((k, shares)) = &*self.shares_cache.lock() {
            if *k == key {
                return (shares.clone(), false);
            }
        }
        let shares = Arc::new(self.shares(ctx));
        *self.shares_cache.lock() = Some((key, shares.clone()));
        (shares, true)
    }

    /// Each covered revision's share of traffic (0 for one missing a
    /// required role), from the endpoints in scope.
    pub fn shares(&self, ctx: &CycleContext<'_>) -> BTreeMap<String, f64> {
        let mut counts: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ep in ctx.endpoints() {
            if !self.scope.matches(|k| ep.label(k)) {
                continue;
            }
            let (Some(rev), Some(role)) =
                (ep.label(&self.revision_label), ep.label(&self.role_label))
            else {
                continue;
            };
            if rev.is_empty() || role.is_empty() {
                continue;
            }
            *counts.entry(rev).or_default().entry(role).or_default() += 1;
        }
        let covered: Vec<(&str, &BTreeMap<&str, u64>)> = counts
            .iter()
            .filter(|(_, per_role)| {
                self.roles
                    .iter()
                    .all(|r| per_role.get(r.as_str()).copied().unwrap_or(0) > 0)
            })
            .map(|(rev, per_role)| (*rev, per_role))
            .collect();
        let count = |per_role: &BTreeMap<&str, u64>, r: &str| per_role.get(r).copied().unwrap_or(0);
        let weight: Vec<(&str, u64)> = match self.mode {
            GatingMode::MaxRole => {
                // The role with the most endpoints over covered revisions;
                // the configured order breaks ties.
                let mut dominant = ("", 0u64);
                for r in &self.roles {
                    let total: u64 = covered.iter().map(|(_, pr)| count(pr, r)).sum();
                    if dominant.0.is_empty() || total > dominant.1 {
                        dominant = (r, total);
                    }
                }
                covered
                    .iter()
                    .map(|(rev, pr)| (*rev, count(pr, dominant.0)))
                    .collect()
            }
            _ => covered
                .iter()
                .map(|(rev, pr)| (*rev, self.roles.iter().map(|r| count(pr, r)).sum()))
                .collect(),
        };
        let total: u64 = weight.iter().map(|w| w.1).sum();
        let mut shares: BTreeMap<String, f64> =
            counts.keys().map(|r| (r.to_string(), 0.0)).collect();
        if total > 0 {
            for (rev, w) in weight {
                shares.insert(rev.to_string(), w as f64 / total as f64);
            }
        }
        shares
    }

    /// The name of the strict selector on the revision label.
    fn revision_selector(&self) -> String {
        self.selectors
            .iter()
            .find(|s| s.mode == SelectorMode::Strict && s.label == self.revision_label)
            .map_or_else(|| "revision".to_string(), |s| s.name.clone())
    }

    /// Counts a strict selection that matched no endpoint.
    fn no_match(&self, ctx: &mut CycleContext<'_>, selector: &str) {
        ctx.report_screen(ScreenReport {
            plugin: self.name.clone(),
            shares: None,
            strict_no_match: Some(selector.to_string()),
        });
    }

    fn header<'r>(ctx: &'r CycleContext<'_>, name: &str) -> Option<&'r str> {
        ctx.request().header_value(name).filter(|v| !v.is_empty())
    }

    fn fail(&self, ctx: &CycleContext<'_>, why: String) -> ScheduleError {
        ScheduleError::NoEndpoints {
            model: ctx.request().model.clone(),
            reason: Some(format!(
                "{} ({}): {why}",
                self.name, "disaggregatedset-rollout-screener"
            )),
        }
    }
}

/// A revision drawn with probability proportional to its share (revisions
/// in name order, as llm-d sorts them); `None` when no share is positive.
fn draw(shares: &[(&str, f64)], u: f64) -> Option<String> {
    let total: f64 = shares.iter().map(|s| s.1).sum();
    if total <= 0.0 {
        return None;
    }
    let x = u * total;
    let mut cumulative = 0.0;
    for (rev, share) in shares {
        cumulative += share;
        if x < cumulative {
            return Some(rev.to_string());
        }
    }
    shares.last().map(|s| s.0.to_string())
}

impl Screener for RolloutScreener {
    fn screen(
        &self,
        ctx: &mut CycleContext<'_>,
        candidates: &mut Vec<EndpointIndex>,
    ) -> Result<(), ScheduleError> {
        let mut requested_revision = None;
        // Strict selectors other than the revision's keep matching endpoints.
        for s in self
            .selectors
            .iter()
            .filter(|s| s.mode == SelectorMode::Strict)
        {
            let Some(want) = Self::header(ctx, &s.header).map(str::to_string) else {
                continue;
            };
            if s.label == self.revision_label {
                requested_revision = Some(want);
                continue;
            }
            candidates.retain(|&i| ctx.endpoint(i).label(&s.label) == Some(want.as_str()));
            if candidates.is_empty() {
                self.no_match(ctx, &s.name);
                return Err(self.fail(
                    ctx,
                    format!(
                        "strict selector '{}' ({}: {want}) matched no endpoint",
                        s.name, s.header
                    ),
                ));
            }
        }
        if self.mode == GatingMode::Disabled {
            if let Some(want) = requested_revision {
                candidates.retain(|&i| {
                    ctx.endpoint(i).label(&self.revision_label) == Some(want.as_str())
                });
                if candidates.is_empty() {
                    self.no_match(ctx, &self.revision_selector());
                    return Err(self.fail(
                        ctx,
                        format!("requested revision '{want}' matched no endpoint"),
                    ));
                }
            }
            return Ok(());
        }
        let (shares, changed) = self.cached_shares(ctx);
        if changed {
            // The metrics follow the shares when the fleet changes.
            ctx.report_screen(ScreenReport {
                plugin: self.name.clone(),
                shares: Some(shares.iter().map(|(r, s)| (r.clone(), *s)).collect()),
                strict_no_match: None,
            });
        }
        // Covered revisions among the candidates.
        let mut seen: Vec<(&str, f64)> = Vec::new();
        for &i in candidates.iter() {
            if let Some(rev) = ctx.endpoint(i).label(&self.revision_label) {
                let share = shares.get(rev).copied().unwrap_or(0.0);
                if share > 0.0 && !seen.iter().any(|s| s.0 == rev) {
                    seen.push((rev, share));
                }
            }
        }
        seen.sort_by(|a, b| a.0.cmp(b.0));
        let chosen = match &requested_revision {
            Some(r) => r.clone(),
            None => match draw(&seen, ctx.random_f64()) {
                // Requests of one decision (its id, else the request id)
                // keep the revision drawn for the first of them.
                Some(r) => match Self::header(ctx, DECISION_ID_HEADER)
                    .or_else(|| Self::header(ctx, "x-request-id"))
                {
                    Some(id) => self.decisions.lock().get_or_set(id, r),
                    None => r,
                },
                None => {
                    return Err(self.fail(ctx, format!(
                        "no revision among the candidates has an endpoint of every required role ({})",
                        self.roles.join(", ")
                    )))
                }
            },
        };
        let covered = seen.iter().any(|s| s.0 == chosen);
        let note = format!(
            "{}: revision '{chosen}' ({}; shares {})",
            self.name,
            if requested_revision.is_some() {
                "requested"
            } else {
                "drawn"
            },
            seen.iter()
                .map(|(r, s)| format!("{r} {s:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !covered {
            if requested_revision.is_some() {
                self.no_match(ctx, &self.revision_selector());
            }
            return Err(self.fail(ctx, format!(
                "requested revision '{chosen}' has no endpoint of every required role ({}) among the candidates",
                self.roles.join(", ")
            )));
        }
        let label = self.revision_label.clone();
        candidates.retain(|&i| ctx.endpoint(i).label(&label) == Some(chosen.as_str()));
        ctx.note(note);
        Ok(())
    }
}

impl PreRequest for RolloutScreener {
    fn pre_request(&self, _ctx: &CycleContext<'_>, _decided: &Decided<'_>) {}

    /// Stamps each selector's label of the picked endpoint into its header.
    fn response_headers(
        &self,
        ctx: &CycleContext<'_>,
        decided: &Decided<'_>,
        out: &mut Vec<(String, String)>,
    ) {
        let Some(&first) = decided.targets.first() else {
            return;
        };
        let ep = ctx.endpoint(first);
        for s in &self.selectors {
            if let Some(v) = ep.label(&s.label).filter(|v| !v.is_empty()) {
                out.push((s.header.clone(), v.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_shares() {
        let shares = [("rev-a", 0.9), ("rev-b", 0.1)];
        assert_eq!(draw(&shares, 0.0).as_deref(), Some("rev-a"));
        assert_eq!(draw(&shares, 0.899).as_deref(), Some("rev-a"));
        assert_eq!(draw(&shares, 0.9).as_deref(), Some("rev-b"));
        assert_eq!(draw(&shares, 0.999_999).as_deref(), Some("rev-b"));
        assert_eq!(draw(&[("x", 0.0)], 0.5), None);
        assert_eq!(draw(&[], 0.5), None);
    }
}
