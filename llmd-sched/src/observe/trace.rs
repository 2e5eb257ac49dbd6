//! A decision's explanation as span attributes: OpenTelemetry GenAI
//! attribute names where one exists, llm-d's span and attribute names for
//! the scheduling steps. Plain data, so hosts can attach the attributes to
//! whatever span type they use; the `otel` feature exports them as spans.

use super::labels::PdDecision;
use std::borrow::Cow;

/// Top candidates kept in `llm_d.epp.picker.top_*` (llm-d keeps five).
pub const TOP_CANDIDATES: usize = 5;

/// An attribute value (the OpenTelemetry value kinds used here).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    StrArray(Vec<String>),
    /// A list of floats.
    F64Array(Vec<f64>),
}

/// One span attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Attribute key, e.g. `gen_ai.request.model`.
    pub key: Cow<'static, str>,
    /// Its value.
    pub value: AttrValue,
}

fn a(key: impl Into<Cow<'static, str>>, value: AttrValue) -> Attribute {
    Attribute {
        key: key.into(),
        value,
    }
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_owned())
}

/// One scorer of a profile, with the picked endpoint's raw score.
#[derive(Clone, Copy, Debug)]
pub struct ScorerExplain<'a> {
    /// Plugin name (defaults to its type in llm-d configs).
    pub name: &'a str,
    /// Plugin type, e.g. `prefix-cache-scorer`.
    pub plugin_type: &'a str,
    /// Weight in the profile.
    pub weight: f64,
    /// Raw (clamped) score of the picked endpoint.
    pub picked_score: f64,
}

/// One profile run.
#[derive(Clone, Copy, Debug)]
pub struct ProfileExplain<'a> {
    /// Profile name.
    pub profile: &'a str,
    /// Candidates before the filters.
    pub candidates: usize,
    /// Candidates the filters kept.
    pub after_filters: usize,
    /// Scorers in run order.
    pub scorers: &'a [ScorerExplain<'a>],
    /// Candidates with their weighted scores, best first (ties by name).
    pub ranked: &'a [(&'a str, f64)],
    /// The picked endpoint, if any.
    pub picked: Option<&'a str>,
}

/// A whole decision.
#[derive(Clone, Copy, Debug)]
pub struct DecisionExplain<'a> {
    /// Request id (`gen_ai.request.id`).
    pub request_id: &'a str,
    /// Requested model (`gen_ai.request.model`).
    pub model: &'a str,
    /// Profile runs, primary first.
    pub profiles: &'a [ProfileExplain<'a>],
    /// The P/D outcome.
    pub pd: PdDecision,
    /// Why P/D was or was not used (decider's reason), if known.
    pub pd_reason: Option<&'a str>,
    /// Decode (primary) target `host:port`.
    pub decode_target: Option<&'a str>,
    /// Prefill target `host:port` under P/D.
    pub prefill_target: Option<&'a str>,
}

/// A span to create: name, parent (index into the same list; `None` means
/// a child of the host's current span) and attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// Span name (llm-d's).
    pub name: Cow<'static, str>,
    /// Parent span in the list.
    pub parent: Option<usize>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
}

fn split_host_port(t: &str) -> (&str, Option<i64>) {
    match t.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (t, None),
        },
        None => (t, None),
    }
}

fn top(p: &ProfileExplain<'_>) -> [Attribute; 2] {
    let n = p.ranked.len().min(TOP_CANDIDATES);
    [
        a(
            "llm_d.epp.picker.top_endpoints",
            AttrValue::StrArray(p.ranked[..n].iter().map(|(e, _)| (*e).to_owned()).collect()),
        ),
        a(
            "llm_d.epp.picker.top_scores",
            AttrValue::F64Array(p.ranked[..n].iter().map(|(_, v)| *v).collect()),
        ),
    ]
}

impl DecisionExplain<'_> {
    /// Flat attributes for the host's current span (e.g. its request span).
    pub fn attributes(&self) -> Vec<Attribute> {
        let mut v = vec![
            a("gen_ai.request.id", s(self.request_id)),
            a("gen_ai.request.model", s(self.model)),
            a(
                "llm_d.epp.profile_handler.decision",
                AttrValue::Str(format!("complete_{}", self.pd.as_str())),
            ),
        ];
        if let Some(t) = self.decode_target {
            let (host, port) = split_host_port(t);
            v.push(a("server.address", s(host)));
            if let Some(p) = port {
                v.push(a("server.port", AttrValue::I64(p)));
            }
        }
        v.extend(self.pd_attributes());
        if let Some(p) = self.profiles.first() {
            v.push(a("llm_d.epp.scheduling.profile.name", s(p.profile)));
            v.extend(top(p));
            for sc in p.scorers {
                v.push(a(
                    format!("llm_d.epp.scorer.{}.score", sc.name),
                    AttrValue::F64(sc.picked_score),
                ));
                v.push(a(
                    format!("llm_d.epp.scorer.{}.weight", sc.name),
                    AttrValue::F64(sc.weight),
                ));
            }
        }
        v
    }

    fn pd_attributes(&self) -> Vec<Attribute> {
        let used = self.pd.disaggregated_prefill();
        let mut v = vec![a("llm_d.epp.pd.disaggregation_used", AttrValue::Bool(used))];
        if let Some(r) = self.pd_reason {
            v.push(a("llm_d.epp.pd.reason", s(r)));
        }
        if let Some(t) = self.prefill_target {
            let (host, port) = split_host_port(t);
            v.push(a("llm_d.epp.pd.prefill_pod_address", s(host)));
            if let Some(p) = port {
                v.push(a("llm_d.epp.pd.prefill_pod_port", AttrValue::I64(p)));
            }
        }
        v
    }

    /// The decision as llm-d's span tree: per profile `run_scheduler_profile`
    /// with `filter_endpoints`, `llm_d.epp.scoring` (one
    /// `llm_d.epp.scorer.<type>` child per scorer) and `pick_endpoints`,
    /// then `prepare_disaggregation`.
    pub fn spans(&self) -> Vec<SpanRecord> {
        let req = || {
            [
                a("gen_ai.request.model", s(self.model)),
                a("gen_ai.request.id", s(self.request_id)),
            ]
        };
        let mut out = Vec::new();
        for p in self.profiles {
            let root = out.len();
            out.push(SpanRecord {
                name: "run_scheduler_profile".into(),
                parent: None,
                attributes: vec![a("llm_d.epp.scheduling.profile.name", s(p.profile))],
            });
            let mut filter = vec![
                a(
                    "llm_d.epp.filter.candidate_endpoints",
                    AttrValue::I64(p.candidates as i64),
                ),
                a(
                    "llm_d.epp.filter.filtered_endpoints",
                    AttrValue::I64(p.after_filters as i64),
                ),
            ];
            filter.extend(req());
            out.push(SpanRecord {
                name: "filter_endpoints".into(),
                parent: Some(root),
                attributes: filter,
            });
            let scoring = out.len();
            let mut sc_attrs = vec![
                a(
                    "llm_d.epp.scorer.count",
                    AttrValue::I64(p.scorers.len() as i64),
                ),
                a(
                    "llm_d.epp.scoring.candidate_endpoints",
                    AttrValue::I64(p.after_filters as i64),
                ),
            ];
            sc_attrs.extend(req());
            out.push(SpanRecord {
                name: "llm_d.epp.scoring".into(),
                parent: Some(root),
                attributes: sc_attrs,
            });
            for sc in p.scorers {
                out.push(SpanRecord {
                    name: format!("llm_d.epp.scorer.{}", sc.plugin_type).into(),
                    parent: Some(scoring),
                    attributes: vec![
                        a("llm_d.epp.scorer.type", s(sc.plugin_type)),
                        a("llm_d.epp.scorer.name", s(sc.name)),
                        a("llm_d.epp.scorer.weight", AttrValue::F64(sc.weight)),
                        a(
                            "llm_d.epp.scorer.candidate_endpoints",
                            AttrValue::I64(p.after_filters as i64),
                        ),
                        a(
                            "llm_d.epp.scorer.score.picked",
                            AttrValue::F64(sc.picked_score),
                        ),
                    ],
                });
            }
            let mut pick = vec![a(
                "llm_d.epp.picker.candidate_endpoints",
                AttrValue::I64(p.after_filters as i64),
            )];
            pick.extend(top(p));
            if let Some(e) = p.picked {
                pick.push(a("llm_d.epp.picker.picked_endpoint", s(e)));
            }
            out.push(SpanRecord {
                name: "pick_endpoints".into(),
                parent: Some(root),
                attributes: pick,
            });
        }
        out.push(SpanRecord {
            name: "prepare_disaggregation".into(),
            parent: None,
            attributes: self.pd_attributes(),
        });
        out
    }
}
