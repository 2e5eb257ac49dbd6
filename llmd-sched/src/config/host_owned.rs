//! Plugin types the library accepts and records but does not execute: the host
//! owns I/O (scraping, discovery, parsing), queuing and admission. A few have
//! their parameters validated ([`VALIDATED`]); the rest are recorded as they are.

use super::params::Params;
use super::registry::{BuildEnv, Built, Entry, Stability};
use crate::error::ConfigError;

use Stability::{Alpha as A, Beta as B};

/// Host-owned types whose parameters are validated.
pub static VALIDATED: &[Entry] = &[
    Entry {
        ty: "metrics-data-source",
        stability: B,
        build: metrics_data_source,
    },
    Entry {
        ty: "file-discovery",
        stability: B,
        build: file_discovery,
    },
    Entry {
        ty: "probabilistic-admitter",
        stability: B,
        build: probabilistic_admitter,
    },
    Entry {
        ty: "static-usage-limit-policy",
        stability: B,
        build: static_usage_limit,
    },
];

/// Types accepted and recorded but not executed by the library (the host owns
/// I/O, queues and admission); their parameters are not interpreted.
pub static HOST_OWNED: &[(&str, Stability, &str)] = &[
    ("core-metrics-extractor", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("endpoint-notification-source", B, "host-owned: endpoint discovery (call add_endpoint / remove_endpoint)"),
    ("k8s-notification-source", B, "host-owned: endpoint discovery (call add_endpoint / remove_endpoint)"),
    ("models-data-source", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("models-data-extractor", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("dcgm-data-source", A, "host-owned: scrape DCGM and set each value as an endpoint label (endpoint-attribute-* plugins read labels)"),
    ("dcgm-extractor", A, "host-owned: scrape DCGM and set each value as an endpoint label (endpoint-attribute-* plugins read labels)"),
    ("topology-extractor", A, "host-owned: set the endpoint labels kubernetes.io/hostname and topology.kubernetes.io/{rack,zone,region} (topology-affinity-* plugins read them)"),
    ("multicluster-metrics-data-source", A, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("multicluster-metrics-extractor", A, "host-owned: scrape each peer EPP's llm_d_epp_average_queue_size / llm_d_epp_average_kv_cache_utilization and set them as the peer endpoint's labels llm-d.ai/multicluster-queue-size / llm-d.ai/multicluster-kv-cache-utilization (the multicluster-*-scorer plugins read them)"),
    ("multicluster-file-discovery", A, "host-owned: endpoint discovery (call add_endpoint / remove_endpoint)"),
    ("destination-endpoint-served-verifier", B, "host-owned: response checking (llm-d test plugin)"),
    ("openai-parser", B, "host-owned: request parsing (build a Request)"),
    ("anthropic-parser", B, "host-owned: request parsing (build a Request)"),
    ("vllmhttp-parser", B, "host-owned: request parsing (build a Request)"),
    ("passthrough-parser", B, "host-owned: request parsing (build a Request)"),
    ("vllmgrpc-parser", B, "host-owned: request parsing (build a Request)"),
    ("sglanghttp-parser", B, "host-owned: request parsing (build a Request)"),
    ("vertexai-parser", B, "host-owned: request parsing (build a Request)"),
    ("fcfs-ordering-policy", B, "host-owned: flow control and queuing"),
    ("edf-ordering-policy", B, "host-owned: flow control and queuing"),
    ("slo-deadline-ordering-policy", B, "host-owned: flow control and queuing"),
    ("global-strict-fairness-policy", B, "host-owned: flow control and queuing"),
    ("round-robin-fairness-policy", B, "host-owned: flow control and queuing"),
    ("program-aware-fairness", B, "host-owned: flow control and queuing"),
    ("priority-holdback-policy", A, "host-owned: flow control and queuing"),
    ("soft-reflective-ceiling-policy", A, "host-owned: flow control and queuing"),
    ("sheddable-eviction-filter", B, "host-owned: flow control and queuing"),
    ("priority-then-time-eviction-order-policy", A, "host-owned: flow control and queuing"),
    ("session-id-producer", B, "host-owned: request parsing (set Request::session_id or headers)"),
    ("request-attribute-reporter", B, "host-owned: response metadata"),
    ("agent-identity", A, "host-owned: request headers"),
];

fn accepted(reason: &'static str) -> Built {
    Built {
        not_executed: Some(reason),
        ..Default::default()
    }
}

/// `metrics-data-source`'s TLS file settings (all optional strings).
pub const METRICS_TLS_PATHS: [&str; 6] = [
    "caCertPath",
    "certPath",
    "keyPath",
    "tlsCaPath",
    "tlsCertPath",
    "tlsKeyPath",
];

fn metrics_data_source(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    let scheme = p.string("scheme", "http")?;
    if scheme != "http" && scheme != "https" {
        return Err(p.err(
            "scheme",
            format!("unknown scheme '{scheme}' (expected http or https)"),
        ));
    }
    p.opt_string("path")?;
    if let Some(port) = p.opt_i64("port")? {
        if !(1..=65535).contains(&port) {
            return Err(p.err("port", "must be a port number in 1..=65535"));
        }
    }
    p.bool("insecureSkipVerify", true)?;
    p.opt_duration_ns("interval")?;
    for k in METRICS_TLS_PATHS {
        p.opt_string(k)?;
    }
    Ok(accepted(
        "host-owned: scrape /metrics and pass the text to update_endpoint_metrics_text",
    ))
}

fn file_discovery(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    p.opt_string("path")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| p.err("path", "required"))?;
    p.bool("watchFile", false)?;
    Ok(accepted(
        "host-owned: read the endpoint file and call add_endpoint / remove_endpoint",
    ))
}

fn probabilistic_admitter(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    for (k, d) in [
        ("queueDepthThreshold", 5.0),
        ("kvCacheUtilThreshold", 0.8),
        ("power", 5.0),
        ("k", 300.0),
    ] {
        if p.f64(k, d)? <= 0.0 {
            return Err(p.err(k, "must be > 0"));
        }
    }
    Ok(accepted("host-owned: admission runs before scheduling"))
}

fn static_usage_limit(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    let t = p.f64("threshold", 1.0)?;
    if t <= 0.0 {
        return Err(p.err("threshold", "must be > 0"));
    }
    Ok(accepted("host-owned: flow control"))
}
