//! `lora-affinity-scorer`: prefer endpoints with the adapter loaded or a free slot.

use crate::framework::{CycleContext, EndpointIndex, Scorer};

/// 1.0 adapter active; 0.8 a free adapter slot; 0.6 adapter waiting; else 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoraAffinityScorer;

impl Scorer for LoraAffinityScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let target = ctx.request().target_model();
        for (o, &i) in out.iter_mut().zip(candidates) {
            let l = ctx.endpoint(i).lora_state();
            *o = if l.active.iter().any(|m| m == target) {
                1.0
            } else if ((l.active.len() + l.waiting.len()) as u64) < l.max as u64 {
                0.8
            } else if l.waiting.iter().any(|m| m == target) {
                0.6
            } else {
                0.0
            };
        }
    }
}
