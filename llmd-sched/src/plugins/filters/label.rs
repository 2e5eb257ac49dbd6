//! `label-selector-filter` (Kubernetes LabelSelector) and the deprecated `by-label`.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};

/// A `matchExpressions` operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// Value in the set.
    In,
    /// Label absent or value not in the set.
    NotIn,
    /// Label present.
    Exists,
    /// Label absent.
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (for `In` / `NotIn`).
    pub values: Vec<String>,
}

/// `matchLabels` AND `matchExpressions`; an empty selector matches everything.
#[derive(Clone, Debug, Default)]
pub struct LabelSelectorFilter {
    match_labels: Vec<(String, String)>,
    expressions: Vec<Requirement>,
}

impl LabelSelectorFilter {
    /// Decodes `matchLabels` / `matchExpressions` with Kubernetes' validation rules.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let match_labels = p.string_map("matchLabels")?;
        let mut expressions = Vec::new();
        for (i, mut e) in p.objects("matchExpressions")?.into_iter().enumerate() {
            let key = e
                .opt_string("key")?
                .ok_or_else(|| e.err("key", "required"))?;
            let op = e
                .opt_string("operator")?
                .ok_or_else(|| e.err("operator", "required"))?;
            let values = e.strings("values")?;
            let operator = match op.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(e.err(
                        "operator",
                        format!(
                            "unknown operator '{other}' (expected In, NotIn, Exists, DoesNotExist)"
                        ),
                    ))
                }
            };
            let needs_values = matches!(operator, Operator::In | Operator::NotIn);
            if needs_values && values.is_empty() {
                return Err(e.err(
                    "values",
                    format!("must be non-empty for operator {op} (matchExpressions[{i}])"),
                ));
            }
            if !needs_values && !values.is_empty() {
                return Err(e.err(
                    "values",
                    format!("must be empty for operator {op} (matchExpressions[{i}])"),
                ));
            }
            e.finish()?;
            expressions.push(Requirement {
                key,
                operator,
                values,
            });
        }
        Ok(LabelSelectorFilter {
            match_labels,
            expressions,
        })
    }

    /// Whether a label lookup satisfies the selector.
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| label(k) == Some(v.as_str()))
            && self.expressions.iter().all(|r| {
                let got = label(&r.key);
                match r.operator {
                    Operator::In => got.is_some_and(|g| r.values.iter().any(|v| v == g)),
                    Operator::NotIn => got.map_or(true, |g| r.values.iter().all(|v| v != g)),
                    Operator::Exists => got.is_some(),
                    Operator::DoesNotExist => got.is_none(),
                }
            })
    }
}

impl Filter for LabelSelectorFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        candidates.retain(|&i| {
            let ep = ctx.endpoint(i);
            self.matches(|k| ep.label(k))
        });
    }
}

/// Deprecated `by-label`: label value in a set, optionally admitting unlabeled endpoints.
#[derive(Clone, Debug)]
pub struct ByLabelFilter {
    label: String,
    valid: Vec<String>,
    allows_no_label: bool,
}

impl ByLabelFilter {
    /// Decodes `label`, `validValues`, `allowsNoLabel`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let label = p
            .opt_string("label")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| p.err("label", "required"))?;
        let valid = p.strings("validValues")?;
        let allows_no_label = p.bool("allowsNoLabel", false)?;
        if valid.is_empty() && !allows_no_label {
            return Err(p.err(
                "validValues",
                "must be non-empty unless allowsNoLabel is true",
            ));
        }
        Ok(ByLabelFilter {
            label,
            valid,
            allows_no_label,
        })
    }
}

impl Filter for ByLabelFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        candidates.retain(|&i| match ctx.endpoint(i).label(&self.label) {
            None => self.allows_no_label,
            Some(v) => self.valid.iter().any(|x| x == v),
        });
    }
}
