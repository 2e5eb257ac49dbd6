//! The worker's `/metrics` page in vLLM's exposition format.

use std::fmt::Write;

use super::Worker;

/// vLLM's TTFT bucket bounds (seconds).
pub(crate) const TTFT_BUCKETS: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// Renders what a scrape of `w` serving `model` returns now.
pub fn render_metrics(w: &Worker, model: &str) -> String {
    let mut s = String::with_capacity(2048);
    let l = format!("engine=\"0\",model_name=\"{model}\"");
    let snap = w.snapshot(0.0);
    let c = &w.counters;
    let gauge = |s: &mut String, name: &str, help: &str, v: f64| {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{l}}} {v}"
        );
    };
    gauge(
        &mut s,
        "vllm:num_requests_running",
        "Requests in execution batches.",
        f64::from(snap.running),
    );
    gauge(
        &mut s,
        "vllm:num_requests_waiting",
        "Requests waiting to be processed.",
        f64::from(snap.waiting),
    );
    gauge(
        &mut s,
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        snap.kv_usage,
    );
    let counter = |s: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(
            s,
            "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{{{l}}} {v}"
        );
    };
    counter(
        &mut s,
        "vllm:prompt_tokens",
        "Number of prefill tokens processed.",
        c.prompt_tokens,
    );
    counter(
        &mut s,
        "vllm:generation_tokens",
        "Number of generation tokens processed.",
        c.generation_tokens,
    );
    counter(
        &mut s,
        "vllm:prefix_cache_queries",
        "Prefix cache queries, in tokens.",
        c.prefix_queries,
    );
    counter(
        &mut s,
        "vllm:prefix_cache_hits",
        "Prefix cache hits, in tokens.",
        c.prefix_hits,
    );
    counter(
        &mut s,
        "vllm:external_prefix_cache_hits",
        "External prefix cache hits, in tokens.",
        c.external_hits,
    );
    counter(
        &mut s,
        "vllm:num_preemptions",
        "Cumulative number of preemptions.",
        c.preemptions,
    );
    let _ = writeln!(
        s,
        "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\nvllm:request_success_total{{{l},finished_reason=\"length\"}} {}\nvllm:request_success_total{{{l},finished_reason=\"abort\"}} {}",
        c.success,
        c.aborted
    );
    let _ = writeln!(
        s,
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{{block_size=\"{}\",engine=\"0\",num_gpu_blocks=\"{}\"}} 1.0",
        w.kv.block_size(),
        w.kv.num_blocks()
    );
    let name = "vllm:time_to_first_token_seconds";
    let _ = writeln!(
        s,
        "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram"
    );
    let h = &w.ttft_hist;
    let mut cum = 0;
    for (b, n) in TTFT_BUCKETS.iter().zip(&h.buckets) {
        cum += n;
        let _ = writeln!(s, "{name}_bucket{{{l},le=\"{b}\"}} {cum}");
    }
    let _ = writeln!(s, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(s, "{name}_sum{{{l}}} {}", h.sum);
    let _ = writeln!(s, "{name}_count{{{l}}} {}", h.count);
    s
}

/// A cumulative histogram over [`TTFT_BUCKETS`].
#[derive(Clone, Debug, Default)]
pub struct TtftHistogram {
    buckets: [u64; 22],
    sum: f64,
    count: u64,
}

impl TtftHistogram {
    /// Records one observation.
    pub fn observe(&mut self, v: f64) {
        if let Some(i) = TTFT_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}
