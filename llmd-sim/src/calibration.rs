//! Operator-level kernel timings measured on a GPU (`testdata/calibration`),
//! parsed into sorted tables ready for interpolation.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Result, SimError};

/// The H100 calibration shipped with the crate, so that `llmd simulate` needs no files.
pub const EMBEDDED_H100: &str = include_str!("../../testdata/calibration/h100_ops.json");

/// Architecture of one model shape, per GPU (already divided by the TP degree).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ShapeConfig {
    /// Hidden size (full model, not divided).
    pub hidden: u32,
    /// Query heads per GPU.
    pub q: u32,
    /// KV heads per GPU.
    pub kv: u32,
    /// Head dimension.
    pub hd: u32,
    /// MLP intermediate size per GPU.
    pub inter: u32,
    /// Decoder layers.
    pub layers: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
}

/// A sorted `(x, milliseconds)` table.
pub type Table = Vec<(f64, f64)>;

/// Timings of one model shape.
#[derive(Clone, Debug)]
pub struct ShapeCalibration {
    /// Shape name, e.g. `qwen3-32b-tp2`.
    pub name: String,
    /// Architecture.
    pub config: ShapeConfig,
    /// Dense projections `qkv`, `o`, `gate_up`, `down` summed, by M. All
    /// 1-D tables are made non-decreasing when loaded.
    pub layer_linear: Table,
    /// `lm_head` by M.
    pub lm_head: Table,
    /// Fresh causal prefill attention by prompt length.
    pub prefill_attn: Table,
    /// Attention of S new tokens over P cached: `(P, S, ms)`.
    pub cached_prefill_attn: Vec<(f64, f64, f64)>,
    /// Decode attention of B sequences at context C: `(B, C, ms)`.
    pub decode_attn: Vec<(f64, f64, f64)>,
    /// RMSNorm + SiLU·mul per layer by M.
    pub elementwise: Table,
}

/// Host/device copy bandwidths.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CopyBandwidth {
    /// Host to device, GB/s.
    #[serde(rename = "h2d_GBps")]
    pub h2d_gbps: f64,
    /// Device to host, GB/s.
    #[serde(rename = "d2h_GBps")]
    pub d2h_gbps: f64,
}

/// A whole calibration file.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// GPU name.
    pub device: String,
    /// Copy bandwidths.
    pub copy: CopyBandwidth,
    /// Model shapes by name, sorted.
    pub shapes: BTreeMap<String, ShapeCalibration>,
}

#[derive(Deserialize)]
struct RawFile {
    device: String,
    copy: CopyBandwidth,
    models: BTreeMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    config: ShapeConfig,
    linear_ms: BTreeMap<String, BTreeMap<String, f64>>,
    prefill_attn_ms: BTreeMap<String, f64>,
    cached_prefill_attn_ms: BTreeMap<String, f64>,
    decode_attn_ms: BTreeMap<String, f64>,
    elementwise_ms: BTreeMap<String, f64>,
}

impl Calibration {
    /// The calibration embedded in the crate.
    pub fn embedded() -> Result<Self> {
        Self::from_json(EMBEDDED_H100)
    }

    /// Parses a calibration JSON document.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawFile =
            serde_json::from_str(text).map_err(|e| SimError::Calibration(e.to_string()))?;
        let mut shapes = BTreeMap::new();
        for (name, s) in raw.models {
            let shape = convert(&name, s)?;
            shapes.insert(name, shape);
        }
        Ok(Calibration {
            device: raw.device,
            copy: raw.copy,
            shapes,
        })
    }

    /// The shape called `name`, or an error listing the known ones.
    pub fn shape(&self, name: &str) -> Result<&ShapeCalibration> {
        self.shapes.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.shapes.keys().map(String::as_str).collect();
            SimError::Calibration(format!(
                "unknown model shape `{name}`; known: {}",
                known.join(", ")
            ))
        })
    }
}

/// The slowest kernel a calibration may give (ms): a second, far above any
/// measured one.
const MAX_KERNEL_MS: f64 = 1_000.0;

fn convert(name: &str, s: RawShape) -> Result<ShapeCalibration> {
    let bad = |what: &str| SimError::Calibration(format!("{name}: {what}"));
    let mut layer_linear: BTreeMap<u64, f64> = BTreeMap::new();
    for op in ["qkv", "o", "gate_up", "down"] {
        let t = s
            .linear_ms
            .get(op)
            .ok_or_else(|| bad(&format!("missing linear `{op}`")))?;
        for (m, ms) in t {
            let m: u64 = m.parse().map_err(|_| bad(&format!("bad M `{m}`")))?;
            *layer_linear.entry(m).or_default() += ms;
        }
    }
    let lm = s
        .linear_ms
        .get("lm_head")
        .ok_or_else(|| bad("missing lm_head"))?;
    let pair = |k: &str| -> Result<(f64, f64)> {
        let mut it = k.splitn(2, ['+', 'x']);
        let a = it.next().and_then(|v| v.parse().ok());
        let b = it.next().and_then(|v| v.parse().ok());
        match (a, b) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(bad(&format!("bad key `{k}`"))),
        }
    };
    let mut cached = Vec::new();
    for (k, v) in &s.cached_prefill_attn_ms {
        let (p, n) = pair(k)?;
        cached.push((p, n, *v));
    }
    let mut decode = Vec::new();
    for (k, v) in &s.decode_attn_ms {
        let (b, c) = pair(k)?;
        decode.push((b, c, *v));
    }
    cached.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    decode.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let shape = ShapeCalibration {
        name: name.to_string(),
        config: s.config,
        layer_linear: layer_linear
            .into_iter()
            .map(|(m, t)| (m as f64, t))
            .collect(),
        lm_head: table(lm, &bad)?,
        prefill_attn: table(&s.prefill_attn_ms, &bad)?,
        cached_prefill_attn: cached,
        decode_attn: decode,
        elementwise: monotone(table(&s.elementwise_ms, &bad)?),
    };
    if shape.layer_linear.len() < 2
        || shape.prefill_attn.len() < 2
        || shape.decode_attn.is_empty()
        || shape.cached_prefill_attn.is_empty()
    {
        return Err(bad("tables need at least two points"));
    }
    // The architecture within what any model has (a step time built from
    // it stays a finite number of seconds).
    let c = &shape.config;
    for (what, v, max) in [
        ("hidden", c.hidden, 1 << 20),
        ("q", c.q, 1 << 12),
        ("kv", c.kv, 1 << 12),
        ("hd", c.hd, 1 << 12),
        ("inter", c.inter, 1 << 22),
        ("layers", c.layers, 1 << 10),
        ("vocab", c.vocab, 1 << 24),
        ("tp", c.tp, 1 << 10),
    ] {
        if v == 0 || v > max {
            return Err(bad(&format!("config.{what} must be 1 to {max}, got {v}")));
        }
    }
    // Interpolation is in logs: every size must be positive (a grid's may
    // be 0, e.g. no cached prefix) and every time positive, all finite, and
    // no kernel slower than a second.
    for (what, t) in [
        ("layer_linear", &shape.layer_linear),
        ("lm_head", &shape.lm_head),
        ("prefill_attn", &shape.prefill_attn),
        ("elementwise", &shape.elementwise),
    ] {
        if t.is_empty() {
            return Err(bad(&format!("{what} has no points")));
        }
        if let Some(p) = t
            .iter()
            .find(|(x, y)| !(x.is_finite() && *x > 0.0 && *y > 0.0 && *y <= MAX_KERNEL_MS))
        {
            return Err(bad(&format!(
                "{what} point {} -> {}: sizes must be finite and > 0, times > 0 and at most \
                 {MAX_KERNEL_MS} ms",
                p.0, p.1
            )));
        }
    }
    for (what, g) in [
        ("cached_prefill_attn", &shape.cached_prefill_attn),
        ("decode_attn", &shape.decode_attn),
    ] {
        if let Some(p) = g.iter().find(|(a, b, y)| {
            !(a.is_finite()
                && *a >= 0.0
                && b.is_finite()
                && *b >= 0.0
                && *y > 0.0
                && *y <= MAX_KERNEL_MS)
        }) {
            return Err(bad(&format!(
                "{what} point {}x{} -> {}: sizes must be finite and >= 0, times > 0 and at most \
                 {MAX_KERNEL_MS} ms",
                p.0, p.1, p.2
            )));
        }
    }
    Ok(shape)
}

fn table(m: &BTreeMap<String, f64>, bad: &dyn Fn(&str) -> SimError) -> Result<Table> {
    let mut t = Vec::with_capacity(m.len());
    for (k, v) in m {
        let x: f64 = k.parse().map_err(|_| bad(&format!("bad key `{k}`")))?;
        t.push((x, *v));
    }
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(t)
}

/// Makes a table non-decreasing by lowering each point to the smallest
/// value at or beyond it: a smaller batch never takes longer than a larger
/// one, and the few small-kernel spikes the README warns about (launch
/// noise, up to 2x) are removed rather than propagated.
fn monotone(mut t: Table) -> Table {
    let mut floor = f64::INFINITY;
    for p in t.iter_mut().rev() {
        floor = floor.min(p.1);
        p.1 = floor;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A calibration whose step times could not be a finite number of
    /// seconds (a kernel of 1e308 ms, four billion layers) is refused when
    /// loaded, naming the field.
    #[test]
    fn out_of_range_calibrations_are_refused() {
        let mut doc: serde_json::Value = serde_json::from_str(EMBEDDED_H100).unwrap();
        let models = doc["models"].as_object_mut().unwrap();
        let name = models.keys().next().unwrap().clone();
        let mut huge_layers = models[&name].clone();
        huge_layers["config"]["layers"] = 4_294_967_295u64.into();
        let mut slow = models[&name].clone();
        for v in slow["elementwise_ms"].as_object_mut().unwrap().values_mut() {
            *v = 1e308.into();
        }
        for (shape, want) in [(huge_layers, "config.layers"), (slow, "elementwise point")] {
            let mut d = doc.clone();
            d["models"] = serde_json::json!({ "m": shape });
            let e = Calibration::from_json(&d.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(Calibration::embedded().is_ok());
    }
}
