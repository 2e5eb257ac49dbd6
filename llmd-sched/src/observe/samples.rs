//! Programmatic access to the values: the exposition parsed back into
//! samples, for hosts that feed their own telemetry and for tests.

use super::config::ObserveError;
use super::metrics::Metrics;
use std::time::Duration;

/// One exposed value: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Full series name (`..._bucket`, `..._total`, ...).
    pub name: String,
    /// Label pairs in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether every `(key, value)` of `want` is among the labels.
    pub fn matches(&self, name: &str, want: &[(&str, &str)]) -> bool {
        self.name == name && want.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

impl Metrics {
    /// Every current value as samples (the rendered text, parsed back).
    pub fn samples(&self, now: Duration) -> Vec<Sample> {
        // Our own exposition always parses; an empty list would only hide a bug
        // that the exposition tests catch.
        parse_text(&self.render(now)).unwrap_or_default()
    }
}

fn value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses Prometheus text format 0.0.4 (comments skipped, no timestamps).
pub fn parse_text(text: &str) -> Result<Vec<Sample>, ObserveError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason| ObserveError::BadExposition {
            line: i + 1,
            reason,
        };
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| bad("no value"))?;
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut key = String::new();
            let close;
            loop {
                let (pos, c) = chars.next().ok_or_else(|| bad("unterminated labels"))?;
                match c {
                    '}' => {
                        close = pos;
                        break;
                    }
                    ',' => {}
                    '=' => {
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return Err(bad("label value not quoted"));
                        }
                        let mut v = String::new();
                        loop {
                            match chars.next().ok_or_else(|| bad("unterminated value"))?.1 {
                                '"' => break,
                                '\\' => match chars.next().map(|(_, c)| c) {
                                    Some('n') => v.push('\n'),
                                    Some(c) => v.push(c),
                                    None => return Err(bad("dangling escape")),
                                },
                                c => v.push(c),
                            }
                        }
                        labels.push((std::mem::take(&mut key), v));
                    }
                    c => key.push(c),
                }
            }
            rest = &body[close + 1..];
        }
        let v = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = value(v).ok_or_else(|| bad("value is not a number"))?;
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_escapes_and_specials() {
        let s = parse_text(
            "# HELP x y\nx_total{a=\"1\",b=\"q\\\"\\n\"} 3\ny 2.5\nz_bucket{le=\"+Inf\"} +Inf\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label("b"), Some("q\"\n"));
        assert_eq!(s[0].value, 3.0);
        assert!(s[1].labels.is_empty());
        assert_eq!(s[2].value, f64::INFINITY);
        assert!(parse_text("x{a=1} 2").is_err());
        assert!(parse_text("x abc").is_err());
    }
}
