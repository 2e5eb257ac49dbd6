//! Step time of one engine iteration from operator-level timings.
//!
//! Per layer: the four dense projections and the elementwise ops at
//! M = tokens in the step, one attention call per prefill chunk, one batched
//! decode attention; times the layer count; plus `lm_head` at M = sequences
//! that emit a token, two tensor-parallel all-reduces per layer and a fixed
//! per-step overhead. Tables are interpolated log-log; outside a table the
//! nearest point is scaled by the ratio of work (tokens for projections,
//! attention FLOPs for attention) and never drops below the table's floor.

use serde::{Deserialize, Serialize};

use crate::calibration::{ShapeCalibration, Table};
use crate::error::{Result, SimError};

/// Knobs of the cost model that the calibration does not measure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostParams {
    /// All-reduce bus bandwidth per direction, GB/s (NVLink 4 ≈ 450).
    pub allreduce_gbps: f64,
    /// Fixed latency of one all-reduce, microseconds.
    pub allreduce_latency_us: f64,
    /// Scheduler and sampling overhead per engine step, milliseconds.
    pub step_overhead_ms: f64,
}

impl Default for CostParams {
    fn default() -> Self {
        CostParams {
            allreduce_gbps: 450.0,
            allreduce_latency_us: 5.0,
            step_overhead_ms: 0.5,
        }
    }
}

/// A rectangular `(a, b) → ms` grid.
#[derive(Clone, Debug)]
struct Grid {
    a: Vec<f64>,
    b: Vec<f64>,
    t: Vec<f64>,
    floor: f64,
}

impl Grid {
    fn new(points: &[(f64, f64, f64)], what: &str) -> Result<Grid> {
        let mut a: Vec<f64> = points.iter().map(|p| p.0).collect();
        let mut b: Vec<f64> = points.iter().map(|p| p.1).collect();
        a.sort_by(f64::total_cmp);
        a.dedup();
        b.sort_by(f64::total_cmp);
        b.dedup();
        let mut t = vec![f64::NAN; a.len() * b.len()];
        for &(pa, pb, v) in points {
            let ia = a.iter().position(|x| *x == pa);
            let ib = b.iter().position(|x| *x == pb);
            if let (Some(ia), Some(ib)) = (ia, ib) {
                t[ia * b.len() + ib] = v;
            }
        }
        if t.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return Err(SimError::Calibration(format!(
                "{what}: grid is not rectangular"
            )));
        }
        let floor = t.iter().cloned().fold(f64::INFINITY, f64::min);
        Ok(Grid { a, b, t, floor })
    }

    fn at(&self, a: f64, b: f64, work: fn(f64, f64) -> f64) -> f64 {
        let ca = a.clamp(self.a[0], self.a[self.a.len() - 1]);
        let cb = b.clamp(self.b[0], self.b[self.b.len() - 1]);
        let (ia, fa) = bracket(&self.a, ca);
        let (ib, fb) = bracket(&self.b, cb);
        let n = self.b.len();
        let ja = (ia + 1).min(self.a.len() - 1);
        let jb = (ib + 1).min(n - 1);
        let l = |i: usize, j: usize| self.t[i * n + j].ln();
        let lo = l(ia, ib) * (1.0 - fb) + l(ia, jb) * fb;
        let hi = l(ja, ib) * (1.0 - fb) + l(ja, jb) * fb;
        let base = (lo * (1.0 - fa) + hi * fa).exp();
        (base * work(a, b) / work(ca, cb)).max(self.floor)
    }
}

/// Index of the left point and the log-space fraction towards the next.
fn bracket(xs: &[f64], x: f64) -> (usize, f64) {
    let i = xs
        .partition_point(|v| *v <= x)
        .saturating_sub(1)
        .min(xs.len() - 1);
    if i + 1 >= xs.len() || xs[i + 1] == xs[i] {
        return (i, 0.0);
    }
    let f = (x.ln() - xs[i].ln()) / (xs[i + 1].ln() - xs[i].ln());
    (i, f.clamp(0.0, 1.0))
}

/// Log-log interpolation in a 1-D table; beyond the ends the nearest point is
/// scaled by `(x / x_end)^power`, never below the smallest value.
fn interp(t: &Table, x: f64, power: f64) -> f64 {
    let first = t[0];
    let last = t[t.len() - 1];
    let floor = t.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if x >= last.0 {
        return last.1 * (x / last.0).powf(power);
    }
    if x <= first.0 {
        return (first.1 * (x / first.0).powf(power)).max(floor);
    }
    let i = t.partition_point(|p| p.0 <= x) - 1;
    let (x0, y0) = t[i];
    let (x1, y1) = t[i + 1];
    let f = (x.ln() - x0.ln()) / (x1.ln() - x0.ln());
    (y0.ln() * (1.0 - f) + y1.ln() * f).exp()
}

/// What one engine step computes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepShape {
    /// Prefill chunks as `(cached tokens before the chunk, new tokens)`.
    pub prefills: Vec<(u32, u32)>,
    /// Sequences decoding one token.
    pub decodes: u32,
    /// Sum of the decoding sequences' context lengths.
    pub decode_context: u64,
    /// The decoding sequences by context length in power-of-two buckets
    /// (bucket `i` holds contexts in `[2^i, 2^(i+1))`, the last one every
    /// longer context): (sequences, sum of their contexts). Attention is
    /// timed per bucket at the bucket's mean context, each sequence's share
    /// of the batched kernel being its own context's cost. When the buckets
    /// do not account for every decode (a shape built by hand with only
    /// `decode_context`), all decodes are timed at the mean context.
    pub decode_buckets: [(u32, u64); CONTEXT_BUCKETS],
    /// Sequences that sample a token in this step (decodes + finished prefills).
    pub sampled: u32,
}

/// Power-of-two context buckets of [`StepShape::decode_buckets`].
pub const CONTEXT_BUCKETS: usize = 24;

impl StepShape {
    /// Adds one decoding sequence whose context (tokens it attends over,
    /// the new one included) is `ctx`.
    pub fn add_decode(&mut self, ctx: u64) {
        self.decodes += 1;
        self.decode_context += ctx;
        let i = (ctx.max(1).ilog2() as usize).min(CONTEXT_BUCKETS - 1);
        self.decode_buckets[i].0 += 1;
        self.decode_buckets[i].1 += ctx;
    }

    /// Tokens processed in the step (M of the projections).
    pub fn tokens(&self) -> u64 {
        self.prefills.iter().map(|p| u64::from(p.1)).sum::<u64>() + u64::from(self.decodes)
    }
}

/// Step-time model of one worker (one model shape on its TP group).
#[derive(Clone, Debug)]
pub struct CostModel {
    shape: ShapeCalibration,
    params: CostParams,
    h2d_gbps: f64,
    cached: Grid,
    decode: Grid,
}

impl CostModel {
    /// Builds the model of a calibrated shape.
    pub fn new(shape: &ShapeCalibration, params: CostParams) -> Result<Self> {
        Ok(CostModel {
            cached: Grid::new(&shape.cached_prefill_attn, "cached_prefill_attn_ms")?,
            decode: Grid::new(&shape.decode_attn, "decode_attn_ms")?,
            shape: shape.clone(),
            params,
            h2d_gbps: 50.0,
        })
    }

    /// Sets the host-to-device bandwidth (GB/s) used for CPU-tier loads.
    pub fn with_h2d_gbps(mut self, gbps: f64) -> Self {
        if gbps > 0.0 {
            self.h2d_gbps = gbps;
        }
        self
    }

    /// Seconds to copy `bytes` from host to device.
    pub fn h2d_seconds(&self, bytes: f64) -> f64 {
        bytes / (self.h2d_gbps * 1e9)
    }

    /// The shape this model times.
    pub fn shape(&self) -> &ShapeCalibration {
        &self.shape
    }

    /// KV-cache bytes per token across the whole model (K and V, bf16).
    pub fn kv_bytes_per_token(&self) -> f64 {
        let c = &self.shape.config;
        2.0 * f64::from(c.layers) * f64::from(c.kv) * f64::from(c.hd) * 2.0
    }

    /// Attention of `new` tokens over `cached` earlier ones, one layer, ms.
    pub fn prefill_attention_ms(&self, cached: u32, new: u32) -> f64 {
        if new == 0 {
            return 0.0;
        }
        if cached == 0 {
            return interp(&self.shape.prefill_attn, f64::from(new), 2.0);
        }
        fn work(p: f64, s: f64) -> f64 {
            s * (p + s / 2.0)
        }
        self.cached.at(f64::from(cached), f64::from(new), work)
    }

    /// Decode attention of `batch` sequences at mean context `ctx`, one layer, ms.
    pub fn decode_attention_ms(&self, batch: u32, ctx: f64) -> f64 {
        if batch == 0 {
            return 0.0;
        }
        fn work(b: f64, c: f64) -> f64 {
            b * c
        }
        self.decode.at(f64::from(batch), ctx.max(1.0), work)
    }

    /// Two all-reduces of `tokens × hidden` bf16 values per layer, ms per layer.
    pub fn allreduce_ms(&self, tokens: u64) -> f64 {
        let tp = f64::from(self.shape.config.tp);
        if tp <= 1.0 || tokens == 0 {
            return 0.0;
        }
        let bytes = tokens as f64 * f64::from(self.shape.config.hidden) * 2.0;
        let wire = bytes * 2.0 * (tp - 1.0) / tp / (self.params.allreduce_gbps * 1e9) * 1e3;
        2.0 * (self.params.allreduce_latency_us * 1e-3 + wire)
    }

    /// Wall time of one engine step, milliseconds.
    pub fn step_ms(&self, step: &StepShape) -> f64 {
        let m = step.tokens();
        if m == 0 {
            return 0.0;
        }
        let mf = m as f64;
        let mut attn: f64 = step
            .prefills
            .iter()
            .map(|&(p, s)| self.prefill_attention_ms(p, s))
            .sum();
        if step.decodes > 0 {
            let b = step.decodes;
            let bucketed: u32 = step.decode_buckets.iter().map(|x| x.0).sum();
            if bucketed == b {
                for &(n, sum) in step.decode_buckets.iter().filter(|x| x.0 > 0) {
                    let ctx = sum as f64 / f64::from(n);
                    attn += self.decode_attention_ms(b, ctx) * f64::from(n) / f64::from(b);
                }
            } else {
                let ctx = step.decode_context as f64 / f64::from(b);
                attn += self.decode_attention_ms(b, ctx);
            }
        }
        let per_layer = interp(&self.shape.layer_linear, mf, 1.0)
            + interp(&self.shape.elementwise, mf, 1.0)
            + attn
            + self.allreduce_ms(m);
        let head = if step.sampled > 0 {
            interp(&self.shape.lm_head, f64::from(step.sampled), 1.0)
        } else {
            0.0
        };
        per_layer * f64::from(self.shape.config.layers) + head + self.params.step_overhead_ms
    }
}
