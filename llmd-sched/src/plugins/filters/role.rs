//! `decode-filter`, `prefill-filter`, `encode-filter`: keep endpoints by `llm-d.ai/role`.

use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::model::Role;

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
        candidates.retain(|&i| {
            let ep = ctx.endpoint(i);
            let role = ep.role();
            // The label map lookup only matters for an unparsed role.
            self.admits(role, role.is_none() && ep.has_role_label())
        });
    }
}
