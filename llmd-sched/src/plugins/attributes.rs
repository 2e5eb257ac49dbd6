//! Plugins over data only the host has, read from endpoint labels:
//! `header-label-affinity-scorer`, `endpoint-attribute-filter` /
//! `endpoint-attribute-scorer` (numeric attributes such as DCGM GPU
//! utilisation) and `topology-affinity-filter` / `topology-affinity-scorer`
//! (host / rack / zone / region of the P/D peer). All are llm-d Alpha types.
//!
//! llm-d fills endpoint attributes from data-layer extractors (`dcgm-*`,
//! `topology-extractor`, custom metrics); the library does no I/O, so the host
//! sets them as endpoint labels (and re-registers the endpoint with
//! `replace_endpoint` when they change):
//! * a numeric attribute `A` is the label `A`, parsed as a number (the
//!   `producer` parameter is validated as llm-d does and names where the host
//!   took the value from);
//! * topology is the labels `kubernetes.io/hostname`,
//!   `topology.kubernetes.io/rack`, `topology.kubernetes.io/zone` and
//!   `topology.kubernetes.io/region` (the `topology-extractor` defaults).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter, Scorer};
use crate::model::EndpointState;

/// `header-label-affinity-scorer`: 1 when the endpoint's label `labelKey`
/// equals the request header `headerName` (names case-insensitive, values
/// exact), else 0; a missing header or label scores 0.
#[derive(Debug)]
pub struct HeaderLabelAffinityScorer {
    header: String,
    label: String,
}

impl HeaderLabelAffinityScorer {
    /// Decodes `headerName` and `labelKey` (both required).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let header = p.string("headerName", "")?.to_ascii_lowercase();
        let label = p.string("labelKey", "")?;
        if header.is_empty() {
            return Err(p.err("headerName", "is required"));
        }
        if label.is_empty() {
            return Err(p.err("labelKey", "is required"));
        }
        Ok(HeaderLabelAffinityScorer { header, label })
    }
}

impl Scorer for HeaderLabelAffinityScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let Some(want) = ctx
            .request()
            .header_value(&self.header)
            .filter(|v| !v.is_empty())
        else {
            return;
        };
        for (o, &i) in out.iter_mut().zip(candidates) {
            if ctx.endpoint(i).label(&self.label) == Some(want) {
                *o = 1.0;
            }
        }
    }
}

/// The endpoint's numeric attribute `key` (a label parsed as a number).
fn attribute(ep: &EndpointState, key: &str) -> Option<f64> {
    ep.label(key)?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// The attribute named by `field` (required, non-empty) with its
/// `producer` (optional; default `core-metrics-extractor`), validated as
/// llm-d does: an attribute written `producer/name` must be split.
fn attribute_name(p: &mut Params, field: &str) -> Result<String, ConfigError> {
    let attr = p.string(field, "")?;
    if attr.is_empty() {
        return Err(p.err(field, format!("a non-empty {field} is required")));
    }
    let given = p.has("producer");
    p.opt_string("producer")?;
    if !given && attr.contains('/') {
        return Err(p.err(
            field,
            format!("'{attr}' contains '/': give the attribute name and its producer separately (producer: ...)"),
        ));
    }
    Ok(attr)
}

/// A threshold comparison of `endpoint-attribute-filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `LessThan`.
    LessThan,
    /// `LessThanOrEqual`.
    LessThanOrEqual,
    /// `GreaterThan`.
    GreaterThan,
    /// `GreaterThanOrEqual`.
    GreaterThanOrEqual,
    /// `Equal`.
    Equal,
    /// `NotEqual`.
    NotEqual,
}

impl Comparison {
    fn holds(self, v: f64, t: f64) -> bool {
        match self {
            Comparison::LessThan => v < t,
            Comparison::LessThanOrEqual => v <= t,
            Comparison::GreaterThan => v > t,
            Comparison::GreaterThanOrEqual => v >= t,
            Comparison::Equal => v == t,
            Comparison::NotEqual => v != t,
        }
    }
}

/// `endpoint-attribute-filter`: keeps the endpoints whose attribute passes
/// `algorithm.threshold`; a missing attribute passes with `onMissing: Pass`
/// (default) and is dropped with `Fail`; when nothing is left the original
/// list comes back only with `fallbackOnEmpty: true`.
#[derive(Debug)]
pub struct EndpointAttributeFilter {
    attribute: String,
    keep_missing: bool,
    fallback_on_empty: bool,
    op: Comparison,
    value: f64,
}

impl EndpointAttributeFilter {
    /// Decodes llm-d's parameters (operators and `onMissing` case-sensitive).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let attribute = attribute_name(p, "attribute")?;
        let keep_missing = match p.string("onMissing", "Pass")?.as_str() {
            "Pass" => true,
            "Fail" => false,
            other => {
                return Err(p.err(
                    "onMissing",
                    format!("must be \"Pass\" or \"Fail\", got {other:?}"),
                ))
            }
        };
        let fallback_on_empty = p.bool("fallbackOnEmpty", false)?;
        let mut alg = p
            .object("algorithm")?
            .ok_or_else(|| p.err("algorithm", "required (type: threshold)"))?;
        let ty = alg.string("type", "")?;
        if ty != "threshold" {
            return Err(alg.err("type", format!("must be \"threshold\", got {ty:?}")));
        }
        let mut th = alg
            .object("threshold")?
            .ok_or_else(|| alg.err("threshold", "required when algorithm.type is \"threshold\""))?;
        let op = match th.string("operator", "")?.as_str() {
            "LessThan" => Comparison::LessThan,
            "LessThanOrEqual" => Comparison::LessThanOrEqual,
            "GreaterThan" => Comparison::GreaterThan,
            "GreaterThanOrEqual" => Comparison::GreaterThanOrEqual,
            "Equal" => Comparison::Equal,
            "NotEqual" => Comparison::NotEqual,
            other => {
                return Err(th.err(
                    "operator",
                    format!("unknown operator {other:?} (expected LessThan, LessThanOrEqual, GreaterThan, GreaterThanOrEqual, Equal, NotEqual)"),
                ))
            }
        };
        let value = th.f64("value", 0.0)?;
        th.finish()?;
        alg.finish()?;
        Ok(EndpointAttributeFilter {
            attribute,
            keep_missing,
            fallback_on_empty,
            op,
            value,
        })
    }
}

impl Filter for EndpointAttributeFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let before = candidates.clone();
        candidates.retain(|&i| match attribute(ctx.endpoint(i), &self.attribute) {
            Some(v) => self.op.holds(v, self.value),
            None => self.keep_missing,
        });
        if candidates.is_empty() && self.fallback_on_empty {
            *candidates = before;
        }
    }
}

/// `endpoint-attribute-scorer`: linear in the attribute, lower or higher
/// better, normalised over a fixed range or over the candidates that have
/// it (all equal: 1.0 each); a missing attribute scores 0.
#[derive(Debug)]
pub struct EndpointAttributeScorer {
    attribute: String,
    lower_is_better: bool,
    fixed: Option<(f64, f64)>,
}

impl EndpointAttributeScorer {
    /// Decodes `attributeKey`, `producer` and `algorithm`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let attribute = attribute_name(p, "attributeKey")?;
        let mut alg = p
            .object("algorithm")?
            .ok_or_else(|| p.err("algorithm", "required"))?;
        let lower_is_better = match alg.string("type", "")?.as_str() {
            "linear_lower_is_better" => true,
            "linear_higher_is_better" => false,
            other => {
                return Err(alg.err(
                    "type",
                    format!("must be \"linear_lower_is_better\" or \"linear_higher_is_better\", got {other:?}"),
                ))
            }
        };
        let mut fixed = None;
        if let Some(mut n) = alg.object("normalization")? {
            let adaptive = n.object("adaptiveRange")?;
            if let Some(mut f) = n.object("fixedRange")? {
                if adaptive.is_some() {
                    return Err(n.err(
                        "fixedRange",
                        "at most one normalization strategy (fixedRange or adaptiveRange)",
                    ));
                }
                let (min, max) = (f.f64("min", 0.0)?, f.f64("max", 0.0)?);
                if min >= max {
                    return Err(f.err("min", format!("must be below max ({min} >= {max})")));
                }
                f.finish()?;
                fixed = Some((min, max));
            }
            if let Some(a) = adaptive {
                a.finish()?;
            }
            n.finish()?;
        }
        alg.finish()?;
        Ok(EndpointAttributeScorer {
            attribute,
            lower_is_better,
            fixed,
        })
    }
}

impl Scorer for EndpointAttributeScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let values: Vec<Option<f64>> = candidates
            .iter()
            .map(|&i| attribute(ctx.endpoint(i), &self.attribute))
            .collect();
        let (min, max) = match self.fixed {
            Some(r) => r,
            None => {
                let present = values.iter().flatten();
                let min = present.clone().copied().fold(f64::INFINITY, f64::min);
                let max = present.copied().fold(f64::NEG_INFINITY, f64::max);
                (min, max)
            }
        };
        for (o, v) in out.iter_mut().zip(values) {
            let Some(v) = v else { continue };
            let n = if max > min {
                ((v - min) / (max - min)).clamp(0.0, 1.0)
            } else {
                // Adaptive range with every present value equal.
                *o = 1.0;
                continue;
            };
            *o = if self.lower_is_better { 1.0 - n } else { n };
        }
    }
}

/// Topology labels, tightest level first (the `topology-extractor` defaults).
const TOPOLOGY_LABELS: [&str; 4] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/rack",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
];

/// The tightest level (0 host … 3 region) at which both endpoints carry the
/// same non-empty label; `None` when no level matches or either has none.
fn shared_level(a: &EndpointState, b: &EndpointState) -> Option<usize> {
    TOPOLOGY_LABELS.iter().position(
        |k| matches!((a.label(k), b.label(k)), (Some(x), Some(y)) if !x.is_empty() && x == y),
    )
}

fn has_topology(ep: &EndpointState) -> bool {
    TOPOLOGY_LABELS
        .iter()
        .any(|k| ep.label(k).is_some_and(|v| !v.is_empty()))
}

/// Validates `topologyProducerName` (an instance name, default
/// `topology-extractor`).
fn topology_producer(p: &mut Params) -> Result<(), ConfigError> {
    p.opt_string("topologyProducerName")?;
    Ok(())
}

/// `topology-affinity-filter`: keeps the candidates sharing at least the
/// `minAffinity` level (`host` default, `rack`, `zone`, `region`) with the
/// P/D peer (the decode pick while prefill runs, decode-first); keeps all
/// when there is no peer, the peer has no topology, or nothing would be left.
#[derive(Debug)]
pub struct TopologyAffinityFilter {
    min_level: usize,
}

impl TopologyAffinityFilter {
    /// Decodes `minAffinity` and `topologyProducerName`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let min_level = match p.string("minAffinity", "host")?.as_str() {
            "host" => 0,
            "rack" => 1,
            "zone" => 2,
            "region" => 3,
            other => {
                return Err(p.err(
                    "minAffinity",
                    format!("invalid topology level {other:?} (expected host, rack, zone, region)"),
                ))
            }
        };
        topology_producer(p)?;
        Ok(TopologyAffinityFilter { min_level })
    }
}

impl Filter for TopologyAffinityFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let Some(peer) = ctx.peer().map(|i| ctx.endpoint(i)) else {
            return;
        };
        if !has_topology(peer) {
            return;
        }
        let kept: Vec<EndpointIndex> = candidates
            .iter()
            .copied()
            .filter(|&i| shared_level(ctx.endpoint(i), peer).is_some_and(|l| l <= self.min_level))
            .collect();
        if !kept.is_empty() {
            *candidates = kept;
        }
    }
}

/// `topology-affinity-scorer`: proximity to the P/D peer: same host 1.0,
/// rack 0.2, zone 0.05, region 0.02, else 0 (no peer topology: 0 for all).
#[derive(Debug)]
pub struct TopologyAffinityScorer;

/// Scores per shared level, host first.
const TOPOLOGY_SCORES: [f64; 4] = [1.0, 0.2, 0.05, 0.02];

impl TopologyAffinityScorer {
    /// Decodes `topologyProducerName`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        topology_producer(p)?;
        Ok(TopologyAffinityScorer)
    }
}

impl Scorer for TopologyAffinityScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let Some(peer) = ctx.peer().map(|i| ctx.endpoint(i)) else {
            return;
        };
        for (o, &i) in out.iter_mut().zip(candidates) {
            if let Some(l) = shared_level(ctx.endpoint(i), peer) {
                *o = TOPOLOGY_SCORES[l];
            }
        }
    }
}
