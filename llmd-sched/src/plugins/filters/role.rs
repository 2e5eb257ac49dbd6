//! `decode-filter`, `prefill-filter`, `encode-filter`: keep endpoints by `llm-d.ai/role`.

use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::model::Role;

/// Every role, listed at its [`row`].
const ROLES: [Role; 6] = [
    Role::Decode,
    Role::Prefill,
    Role::Encode,
    Role::PrefillDecode,
    Role::EncodePrefill,
    Role::EncodePrefillDecode,
];

/// The verdict row of a role: its place in [`ROLES`], and one past them for
/// none. Exhaustive, so a new role does not compile until it has a row.
fn row(role: Option<Role>) -> usize {
    match role {
        Some(Role::Decode) => 0,
        Some(Role::Prefill) => 1,
        Some(Role::Encode) => 2,
        Some(Role::PrefillDecode) => 3,
        Some(Role::EncodePrefill) => 4,
        Some(Role::EncodePrefillDecode) => 5,
        None => ROLES.len(),
    }
}

/// Which stage the role filter selects for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `decode-filter`: decode-capable roles; unlabeled endpoints pass.
    Decode,
    /// `prefill-filter`: prefill-capable roles; unlabeled endpoints are dropped.
    Prefill,
    /// `encode-filter`: encode-capable roles; unlabeled endpoints are dropped.
    Encode,
}

/// Keeps endpoints whose role serves the stage.
#[derive(Clone, Copy, Debug)]
pub struct RoleFilter {
    stage: Stage,
}

impl RoleFilter {
    /// A filter for one stage.
    pub fn new(stage: Stage) -> Self {
        RoleFilter { stage }
    }

    /// Whether an endpoint with this role (or without the label) passes.
    pub fn admits(&self, role: Option<Role>, labeled: bool) -> bool {
        use Role::*;
        match (self.stage, role) {
            (Stage::Decode, None) => !labeled,
            (Stage::Decode, Some(r)) => matches!(r, Decode | PrefillDecode | EncodePrefillDecode),
            (Stage::Prefill, Some(r)) => matches!(
                r,
                Prefill | EncodePrefill | PrefillDecode | EncodePrefillDecode
            ),
            (Stage::Encode, Some(r)) => matches!(r, Encode | EncodePrefill | EncodePrefillDecode),
            (_, None) => false,
        }
    }
}

impl Filter for RoleFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        // Every (role, labeled) verdict up front, and a pass without a branch
        // on them: fleets interleave roles, and a branch per endpoint would
        // mispredict on about every other one.
        let verdicts: [[bool; 2]; ROLES.len() + 1] = std::array::from_fn(|r| {
            let role = ROLES.get(r).copied();
            [self.admits(role, false), self.admits(role, true)]
        });
        let mut kept = 0;
        for k in 0..candidates.len() {
            let i = candidates[k];
            let tag = ctx.tag(i);
            candidates[kept] = i;
            kept += usize::from(verdicts[row(tag.role)][usize::from(tag.role_labeled)]);
        }
        candidates.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, EndpointState, Request, ROLE_LABEL};
    use std::sync::Arc;

    #[test]
    fn every_role_sits_at_its_row() {
        for (k, r) in ROLES.iter().enumerate() {
            assert_eq!(row(Some(*r)), k, "{r:?}");
        }
        assert_eq!(row(None), ROLES.len());
    }

    /// Over a fleet of every role label (and none, and one no role parses
    /// from), each stage keeps exactly the endpoints `admits` accepts, in
    /// order, whether the roles come from the scheduler's dense tags or
    /// from the endpoints.
    #[test]
    fn the_filter_keeps_what_admits_accepts() {
        let labels = [
            None,
            Some("decode"),
            Some("prefill"),
            Some("encode"),
            Some("prefill-decode"),
            Some("both"),
            Some("encode-prefill"),
            Some("encode-prefill-decode"),
            Some("sidecar"),
        ];
        let mut rng = fastrand::Rng::with_seed(3);
        let eps: Vec<Arc<EndpointState>> = (0..200)
            .map(|i| {
                let e = Endpoint::new(format!("e{i}"), "10.0.0.1:8000");
                let e = match labels[rng.usize(..labels.len())] {
                    Some(l) => e.with_label(ROLE_LABEL, l),
                    None => e,
                };
                Arc::new(EndpointState::new(e))
            })
            .collect();
        let tags: Vec<_> = eps.iter().map(|e| e.tag()).collect();
        let req = Request::with_tokens("r", "m", vec![1]);
        for stage in [Stage::Decode, Stage::Prefill, Stage::Encode] {
            let f = RoleFilter::new(stage);
            let candidates: Vec<usize> = (0..eps.len()).filter(|_| rng.u8(..4) != 0).collect();
            let want: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| {
                    let ep = &eps[i];
                    f.admits(ep.role(), ep.role().is_none() && ep.has_role_label())
                })
                .collect();
            assert!(
                !want.is_empty() && want.len() < candidates.len(),
                "{stage:?}"
            );
            for dense in [false, true] {
                let ctx = CycleContext::new(&req, &eps, 0, 1, 0);
                let ctx = if dense { ctx.with_tags(&tags) } else { ctx };
                let mut got = candidates.clone();
                f.filter(&ctx, &mut got);
                assert_eq!(got, want, "{stage:?}, dense tags {dense}");
            }
        }
    }
}
