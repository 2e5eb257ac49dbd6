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

    /// Parses Kubernetes' string form of a selector (`labels.Parse`):
    /// comma-separated requirements `key=value`, `key==value`,
    /// `key!=value` (absent or different), `key in (a, b)`,
    /// `key notin (a, b)`, `key` (present) and `!key` (absent). An empty
    /// string matches everything.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut sel = LabelSelectorFilter::default();
        for part in split_requirements(text)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!("empty requirement in '{text}'"));
            }
            sel.expressions.push(parse_requirement(part)?);
        }
        Ok(sel)
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

/// Splits a selector at the commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced ')' in '{text}'"))?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '(' in '{text}'"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// A label key or value: Kubernetes' characters (alphanumerics, `-`, `_`,
/// `.`, and `/` for a key's prefix).
fn valid_word(w: &str, key: bool) -> bool {
    w.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || (key && c == '/'))
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let key_ok = |k: &str| -> Result<String, String> {
        let k = k.trim();
        if k.is_empty() || !valid_word(k, true) {
            return Err(format!("invalid label key '{k}' in '{part}'"));
        }
        Ok(k.to_string())
    };
    let value_ok = |v: &str| -> Result<String, String> {
        let v = v.trim();
        if !valid_word(v, false) {
            return Err(format!("invalid label value '{v}' in '{part}'"));
        }
        Ok(v.to_string())
    };
    let req = |key, operator, values| Requirement {
        key,
        operator,
        values,
    };
    if let Some(k) = part.strip_prefix('!') {
        return Ok(req(key_ok(k)?, Operator::DoesNotExist, vec![]));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(req(key_ok(k)?, Operator::NotIn, vec![value_ok(v)?]));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(req(key_ok(k)?, Operator::In, vec![value_ok(v)?]));
    }
    if let Some(open) = part.find('(') {
        let close = part
            .rfind(')')
            .filter(|&c| c > open && part[c + 1..].trim().is_empty())
            .ok_or_else(|| format!("expected ')' at the end of '{part}'"))?;
        let head: Vec<&str> = part[..open].split_whitespace().collect();
        let operator = match head.as_slice() {
            [_, "in"] => Operator::In,
            [_, "notin"] => Operator::NotIn,
            _ => {
                return Err(format!(
                    "expected 'key in (...)' or 'key notin (...)', got '{part}'"
                ))
            }
        };
        let values = part[open + 1..close]
            .split(',')
            .map(value_ok)
            .collect::<Result<Vec<_>, _>>()?;
        if values.iter().all(String::is_empty) {
            return Err(format!("no values in '{part}'"));
        }
        return Ok(req(key_ok(head[0])?, operator, values));
    }
    Ok(req(key_ok(part)?, Operator::Exists, vec![]))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sel: &str, labels: &[(&str, &str)]) -> bool {
        let s = LabelSelectorFilter::parse(sel).unwrap_or_else(|e| panic!("{e}"));
        s.matches(|k| labels.iter().find(|(l, _)| *l == k).map(|(_, v)| *v))
    }

    #[test]
    fn parses_kubernetes_string_selectors() {
        let l = [
            ("app", "vllm"),
            ("disaggregatedset.x-k8s.io/name", "set-a"),
            ("tier", "gpu"),
        ];
        assert!(m("", &l));
        assert!(m("app=vllm", &l));
        assert!(m("app==vllm,tier = gpu", &l));
        assert!(m("disaggregatedset.x-k8s.io/name=set-a", &l));
        assert!(!m("app=other", &l));
        assert!(m("app!=other", &l));
        assert!(m("missing!=x", &l), "!= matches an absent label");
        assert!(m("tier in (gpu, cpu)", &l));
        assert!(!m("tier notin (gpu,cpu)", &l));
        assert!(m("app, !missing", &l));
        assert!(!m("!app", &l));
        assert!(m("app in (vllm),tier notin (cpu)", &l));
    }

    #[test]
    fn refuses_malformed_selectors() {
        for bad in [
            "app=vllm,",
            ",app",
            "app in (a",
            "app in a)",
            "app between (a)",
            "a b",
            "app in ()",
            "=x",
            "app=va lue",
        ] {
            assert!(LabelSelectorFilter::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
