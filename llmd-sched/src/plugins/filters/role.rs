//! `decode-filter`, `prefill-filter`, `encode-filter`: keep endpoints by `llm-d.ai/role`.

use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::model::Role;

/// Every role, in declaration order (`role as usize` indexes it).
const ROLES: [Role; 6] = [
    Role::Decode,
    Role::Prefill,
    Role::Encode,
    Role::PrefillDecode,
    Role::EncodePrefill,
    Role::EncodePrefillDecode,
];

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
            let row = tag.role.map_or(ROLES.len(), |r| r as usize);
            kept += usize::from(verdicts[row][usize::from(tag.role_labeled)]);
        }
        candidates.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_listed_in_declaration_order() {
        for (k, r) in ROLES.iter().enumerate() {
            assert_eq!(*r as usize, k, "{r:?}");
        }
    }
}
