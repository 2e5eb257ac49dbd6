//! Built-in pickers. All take `maxNumOfEndpoints` (default 1; values <= 0 mean 1).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Picker};

/// Reads `maxNumOfEndpoints` with llm-d's fallback.
pub fn max_endpoints(p: &mut Params) -> Result<usize, ConfigError> {
    let n = p.i64("maxNumOfEndpoints", 1)?;
    Ok(if n <= 0 { 1 } else { n as usize })
}

/// `max-score-picker`: shuffle, stable sort by score descending, take N (random tie-break).
#[derive(Clone, Copy, Debug)]
pub struct MaxScorePicker {
    /// `maxNumOfEndpoints`.
    pub max: usize,
}

impl Picker for MaxScorePicker {
    fn pick(
        &self,
        ctx: &CycleContext<'_>,
        scored: &[(EndpointIndex, f64)],
        out: &mut Vec<EndpointIndex>,
    ) {
        if self.max == 1 {
            // Reservoir over the maxima: the same uniform tie-break as shuffle + stable sort, in one pass.
            let mut best: Option<EndpointIndex> = None;
            let (mut best_score, mut ties) = (f64::NEG_INFINITY, 0u32);
            for &(e, s) in scored {
                if s > best_score || best.is_none() {
                    best = Some(e);
                    best_score = s;
                    ties = 1;
                } else if s == best_score {
                    ties += 1;
                    if ctx.random_f64() * (ties as f64) < 1.0 {
                        best = Some(e);
                    }
                }
            }
            out.extend(best);
            return;
        }
        let mut v = scored.to_vec();
        ctx.shuffle(&mut v);
        v.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        out.extend(v.iter().take(self.max).map(|&(e, _)| e));
    }
}

/// `random-picker`: shuffle, take N; scores ignored.
#[derive(Clone, Copy, Debug)]
pub struct RandomPicker {
    /// `maxNumOfEndpoints`.
    pub max: usize,
}

impl Picker for RandomPicker {
    fn pick(
        &self,
        ctx: &CycleContext<'_>,
        scored: &[(EndpointIndex, f64)],
        out: &mut Vec<EndpointIndex>,
    ) {
        let mut v: Vec<EndpointIndex> = scored.iter().map(|&(e, _)| e).collect();
        ctx.shuffle(&mut v);
        out.extend(v.into_iter().take(self.max));
    }
}

/// `weighted-random-picker`: A-Res sampling with key `U^(1/score)`; no positive
/// score → behaves as `random-picker`.
#[derive(Clone, Copy, Debug)]
pub struct WeightedRandomPicker {
    /// `maxNumOfEndpoints`.
    pub max: usize,
}

impl Picker for WeightedRandomPicker {
    fn pick(
        &self,
        ctx: &CycleContext<'_>,
        scored: &[(EndpointIndex, f64)],
        out: &mut Vec<EndpointIndex>,
    ) {
        if !scored.iter().any(|&(_, s)| s > 0.0) {
            return RandomPicker { max: self.max }.pick(ctx, scored, out);
        }
        let mut keyed: Vec<(f64, EndpointIndex)> = scored
            .iter()
            .map(|&(e, s)| {
                if s <= 0.0 {
                    return (0.0, e);
                }
                let mut u = ctx.random_f64();
                if u == 0.0 {
                    u = 1e-10;
                }
                (u.powf(1.0 / s), e)
            })
            .collect();
        keyed.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        out.extend(keyed.iter().take(self.max).map(|&(_, e)| e));
    }
}
