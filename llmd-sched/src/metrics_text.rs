//! A bounded parser for a model server's Prometheus `/metrics` text, reading the
//! gauges llm-d's core metrics extractor reads (vLLM names, new and legacy, and SGLang's).

use std::borrow::Cow;

use crate::model::EndpointMetrics;

/// Largest accepted input.
pub const MAX_BYTES: usize = 16 << 20;
/// Longest accepted line.
pub const MAX_LINE: usize = 64 << 10;
/// Most labels accepted on one sample.
pub const MAX_LABELS: usize = 64;
/// Engines (data-parallel ranks) whose cache sizes are summed; more are
/// ignored (vLLM runs at most a few hundred ranks per server).
const MAX_ENGINES: usize = 1024;

/// Why a text could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct MetricsTextError {
    /// 1-based line number (0 for whole-input problems).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, Cow<'a, str>)>,
    value: f64,
}

fn err(line: usize, reason: impl Into<String>) -> MetricsTextError {
    MetricsTextError {
        line,
        reason: reason.into(),
    }
}

fn parse_line(line: &str, n: usize) -> Result<Sample<'_>, MetricsTextError> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| err(n, "sample without a value"))?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(err(n, format!("invalid metric name '{name}'")));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut s = r;
        loop {
            s = s.trim_start();
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            if labels.len() >= MAX_LABELS {
                return Err(err(n, format!("more than {MAX_LABELS} labels")));
            }
            let eq = s.find('=').ok_or_else(|| err(n, "label without '='"))?;
            let key = s[..eq].trim();
            let v = s[eq + 1..]
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| err(n, format!("label '{key}' value must be quoted")))?;
            let (value, end) =
                label_value(v).map_err(|why| err(n, format!("{why} of label '{key}'")))?;
            labels.push((key, value));
            s = v[end + 1..].trim_start();
            s = s.strip_prefix(',').unwrap_or(s);
        }
    }
    let mut parts = rest.split_whitespace();
    let raw = parts
        .next()
        .ok_or_else(|| err(n, format!("'{name}' has no value")))?;
    let value = match raw {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| err(n, format!("invalid value '{v}' for '{name}'")))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// A quoted label value (after its opening quote): the value, borrowed
/// unless it has escapes, and the offset of its closing quote.
fn label_value(v: &str) -> Result<(Cow<'_, str>, usize), &'static str> {
    match v.bytes().position(|b| b == b'"' || b == b'\\') {
        Some(end) if v.as_bytes()[end] == b'"' => return Ok((Cow::Borrowed(&v[..end]), end)),
        None => return Err("unterminated value"),
        Some(_) => {}
    }
    let mut value = String::new();
    let mut chars = v.char_indices();
    loop {
        match chars.next() {
            None => return Err("unterminated value"),
            Some((i, '"')) => return Ok((Cow::Owned(value), i)),
            Some((_, '\\')) => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, c)) => value.push(c),
                None => return Err("dangling escape in the value"),
            },
            Some((_, c)) => value.push(c),
        }
    }
}

fn label<'s>(s: &'s Sample<'_>, key: &str) -> Option<&'s str> {
    s.labels
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_ref())
}

fn list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Parses `/metrics` text into a snapshot stamped `now_ns`.
///
/// Queue and running gauges, and the cache size (`num_gpu_blocks` of each
/// engine's `cache_config_info`), are summed over series (one per engine /
/// DP rank);
/// KV usage is averaged, preferring `vllm:kv_cache_usage_perc` over the legacy
/// `vllm:gpu_cache_usage_perc`. `vllm:lora_requests_info`: the series with the
/// largest value (its creation time) wins; absence is not an error.
pub fn parse_metrics_text(text: &str, now_ns: u64) -> Result<EndpointMetrics, MetricsTextError> {
    if text.len() > MAX_BYTES {
        return Err(err(
            0,
            format!(
                "input of {} bytes exceeds the {MAX_BYTES}-byte limit",
                text.len()
            ),
        ));
    }
    let mut m = EndpointMetrics {
        updated_at_ns: now_ns,
        ..Default::default()
    };
    let (mut kv_new, mut kv_old) = ((0.0, 0u32), (0.0, 0u32));
    let mut lora_best = f64::NEG_INFINITY;
    let mut seen_any = false;
    let mut engines: Vec<(String, u64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.len() > MAX_LINE {
            return Err(err(n, format!("line longer than {MAX_LINE} bytes")));
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = parse_line(line, n)?;
        let v = s.value;
        match s.name {
            "vllm:num_requests_waiting" | "sglang:num_queue_reqs" => {
                m.waiting_queue_size = m.waiting_queue_size.saturating_add(count(v));
                seen_any = true;
            }
            "vllm:num_requests_running" | "sglang:num_running_reqs" => {
                m.running_requests_size = m.running_requests_size.saturating_add(count(v));
                seen_any = true;
            }
            "vllm:kv_cache_usage_perc" | "sglang:token_usage" if v.is_finite() => {
                kv_new = (kv_new.0 + v, kv_new.1 + 1);
                seen_any = true;
            }
            "vllm:gpu_cache_usage_perc" if v.is_finite() => {
                kv_old = (kv_old.0 + v, kv_old.1 + 1);
                seen_any = true;
            }
            "vllm:lora_requests_info" if v > lora_best => {
                lora_best = v;
                m.active_models = list(label(&s, "running_lora_adapters"));
                m.waiting_models = list(label(&s, "waiting_lora_adapters"));
                m.max_active_models = label(&s, "max_lora")
                    .and_then(|x| x.trim().parse().ok())
                    .unwrap_or(0);
            }
            "vllm:cache_config_info" | "sglang:cache_config_info" => {
                let bs = label(&s, "block_size").or_else(|| label(&s, "page_size"));
                let nb = label(&s, "num_gpu_blocks").or_else(|| label(&s, "num_pages"));
                if let Some(b) = bs.and_then(|x| x.trim().parse().ok()) {
                    m.cache_block_size = b;
                }
                if let Some(b) = nb.and_then(|x| x.trim().parse::<u64>().ok()) {
                    // One series per engine (data-parallel rank), each with its
                    // own cache: the endpoint holds their sum (as its index
                    // blocks sum over ranks). A repeated engine counts once.
                    let engine = label(&s, "engine").unwrap_or_default().to_string();
                    if let Some(slot) = engines.iter_mut().find(|(e, _)| *e == engine) {
                        slot.1 = b;
                    } else if engines.len() < MAX_ENGINES {
                        engines.push((engine, b));
                    }
                }
            }
            _ => {}
        }
    }
    if !engines.is_empty() {
        m.cache_num_blocks = engines.iter().fold(0u64, |t, (_, b)| t.saturating_add(*b));
    }
    if !seen_any {
        return Err(err(0, "no queue, running or KV-usage gauge found (expected vllm:num_requests_waiting, vllm:num_requests_running, vllm:kv_cache_usage_perc)"));
    }
    let kv = if kv_new.1 > 0 { kv_new } else { kv_old };
    if kv.1 > 0 {
        m.kv_cache_usage = (kv.0 / kv.1 as f64).clamp(0.0, 1.0);
    }
    Ok(m)
}

fn count(v: f64) -> u32 {
    if v.is_finite() && v > 0.0 {
        v.min(u32::MAX as f64) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="4",running_lora_adapters="c",waiting_lora_adapters="d"} 1.8e9
vllm:cache_config_info{block_size="16",num_gpu_blocks="27000",engine="0"} 1.0
"#;

    #[test]
    fn parses_vllm_gauges() {
        let m = parse_metrics_text(SAMPLE, 42).unwrap();
        assert_eq!((m.waiting_queue_size, m.running_requests_size), (7, 3));
        assert_eq!(m.kv_cache_usage, 0.25);
        assert_eq!(m.active_models, vec!["c".to_string()]);
        assert_eq!(m.waiting_models, vec!["d".to_string()]);
        assert_eq!(m.max_active_models, 4);
        assert_eq!((m.cache_block_size, m.cache_num_blocks), (16, 27000));
        // Data parallelism: one cache per engine, summed; a repeated engine once.
        let dp = "vllm:num_requests_waiting{engine=\"0\"} 1\nvllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\",engine=\"0\"} 1\nvllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\",engine=\"1\"} 1\nvllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\",engine=\"1\"} 1\n";
        assert_eq!(parse_metrics_text(dp, 1).unwrap().cache_num_blocks, 2000);
        assert_eq!(m.updated_at_ns, 42);
    }

    #[test]
    fn legacy_kv_name_and_errors() {
        let m = parse_metrics_text(
            "vllm:gpu_cache_usage_perc 0.5\nvllm:num_requests_waiting 1",
            0,
        )
        .unwrap();
        assert_eq!(m.kv_cache_usage, 0.5);
        let e = parse_metrics_text("vllm:num_requests_waiting{a=\"x} 1", 0).unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_metrics_text("ok 1\nvllm:num_requests_waiting abc", 0).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("abc"));
        assert!(parse_metrics_text("# nothing\n", 0).is_err());
        let e = parse_metrics_text("vllm:num_requests_waiting{a=\"x\\", 0).unwrap_err();
        assert!(e.reason.contains("dangling escape"), "{}", e.reason);
        assert!(parse_metrics_text(&"x".repeat(MAX_LINE + 1), 0).is_err());
    }

    #[test]
    fn label_values_with_and_without_escapes() {
        assert_eq!(label_value("abc\" 1"), Ok((Cow::Borrowed("abc"), 3)));
        assert_eq!(label_value("\" 1"), Ok((Cow::Borrowed(""), 0)));
        assert_eq!(
            label_value(r#"a\"b\\c\nd" 1"#),
            Ok((Cow::Owned("a\"b\\c\nd".to_string()), 10))
        );
        assert_eq!(label_value("abc"), Err("unterminated value"));
        assert_eq!(label_value(r#"ab\"#), Err("dangling escape in the value"));
        let m = parse_metrics_text(
            "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"a\\\"q,b\",waiting_lora_adapters=\"\"} 1\nvllm:num_requests_waiting 0",
            0,
        )
        .unwrap();
        assert_eq!(m.active_models, vec!["a\"q".to_string(), "b".to_string()]);
    }
}
