//! Running a feed from llm-d's EndpointPickerConfig: the settings the
//! scheduler's loader only accepts (a precise producer's `kvEventsConfig`,
//! the `metrics-data-source`, `file-discovery`) become feed options, and
//! each is reported as executed or not, with the reason.

use std::path::PathBuf;
use std::time::Duration;

use llmd_sched::config::host_owned::METRICS_TLS_PATHS;
use llmd_sched::config::params::parse_duration_ns;
use llmd_sched::ConfigReport;
use serde::Serialize;
use serde_json::Value;

use crate::discovery::Discovery;
use crate::options::FeedOptions;
use crate::FeedError;

/// One configured setting and what the feed does with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedSetting {
    /// Plugin instance name.
    pub plugin: String,
    /// Dotted path inside its `parameters` (llm-d's default when absent is
    /// marked "(default)").
    pub setting: String,
    /// True when the feed acts on it.
    pub executed: bool,
    /// What the feed does, or why it does not.
    pub note: String,
}

/// Options, discovery sources and the settings report derived from a
/// scheduler's configuration.
#[derive(Clone, Debug)]
pub struct FeedPlan {
    /// Options to start the feed with.
    pub options: FeedOptions,
    /// Discovery sources from `file-discovery`.
    pub discovery: Vec<Discovery>,
    /// Every feed-related setting found, executed or not.
    pub settings: Vec<FeedSetting>,
}

/// llm-d's data layer polls every 50 ms at the least.
const MIN_SCRAPE: Duration = Duration::from_millis(50);

struct Out<'a> {
    plugin: &'a str,
    settings: Vec<FeedSetting>,
}

impl Out<'_> {
    fn done(&mut self, setting: &str, note: impl Into<String>) {
        self.push(setting, true, note)
    }
    fn not(&mut self, setting: &str, note: impl Into<String>) {
        self.push(setting, false, note)
    }
    fn push(&mut self, setting: &str, executed: bool, note: impl Into<String>) {
        self.settings.push(FeedSetting {
            plugin: self.plugin.to_string(),
            setting: setting.to_string(),
            executed,
            note: note.into(),
        })
    }
}

/// A whole number as the loader takes one (`5558` or `5558.0`).
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..9.0e15).contains(f))
            .map(|f| f as u64)
    })
}

/// The port `field` names, `default` when absent; anything but a whole
/// number in 1..=65535 is an error naming the field, never a port dropped.
fn port(v: Option<&Value>, default: Option<u16>, field: &str) -> Result<Option<u16>, FeedError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    match whole(v).and_then(|p| u16::try_from(p).ok()) {
        Some(p) if p > 0 => Ok(Some(p)),
        _ => Err(FeedError::Config(format!(
            "{field}: expected a port number (1-65535), got {v}"
        ))),
    }
}

/// A duration as the loader takes one: `"2s"`, `"500ms"`, … or a number of
/// seconds.
fn duration_ns(v: &Value, field: &str) -> Result<u64, FeedError> {
    match v {
        Value::String(s) => {
            parse_duration_ns(s).map_err(|e| FeedError::Config(format!("{field}: {e}")))
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if f >= 0.0 && f.is_finite() => Ok((f * 1e9).min(u64::MAX as f64) as u64),
            _ => Err(FeedError::Config(format!(
                "{field}: duration must be non-negative, got {n}"
            ))),
        },
        other => Err(FeedError::Config(format!(
            "{field}: expected a duration such as \"2s\", got {other}"
        ))),
    }
}

/// Builds the feed's plan from a loaded configuration. The loader already
/// validated every value; this only reads them.
pub fn plan(report: &ConfigReport) -> Result<FeedPlan, FeedError> {
    let mut options = FeedOptions::default();
    let mut discovery = Vec::new();
    let mut settings = Vec::new();
    // One feed serves every producer: the first `kvEventsConfig` sets it up.
    let mut first_kv: Option<&str> = None;
    for p in &report.plugins {
        let params = &p.parameters;
        let mut out = Out {
            plugin: &p.name,
            settings: Vec::new(),
        };
        if p.plugin_type == "precise-prefix-cache-producer"
            || params.get("kvEventsConfig").is_some()
        {
            match first_kv {
                None => {
                    kv_events(params.get("kvEventsConfig"), &mut options, &mut out)?;
                    first_kv = Some(&p.name);
                }
                Some(first) => {
                    later_kv_events(params.get("kvEventsConfig"), first, &mut options, &mut out)?
                }
            }
        }
        match p.plugin_type.as_str() {
            "metrics-data-source" => metrics_source(params, &mut options, &mut out)?,
            "file-discovery" => {
                let path = params.get("path").and_then(Value::as_str).unwrap_or("");
                let watch = params
                    .get("watchFile")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                discovery.push(Discovery::File {
                    path: PathBuf::from(path),
                    watch,
                    interval: Duration::from_secs(1),
                });
                out.done("path", format!("pods are read from {path}"));
                out.done(
                    "watchFile",
                    if watch {
                        "the file is re-read when it changes (checked every second)"
                    } else {
                        "the file is read once"
                    },
                );
            }
            _ => {}
        }
        settings.extend(out.settings);
    }
    Ok(FeedPlan {
        options,
        discovery,
        settings,
    })
}

/// A `kvEventsConfig` after the first: its endpoints to bind add up, and its
/// other settings are executed where they agree with the first's; where they
/// differ they are reported not executed (the feed has one topic filter,
/// one set of workers and one discovery port).
fn later_kv_events(
    ev: Option<&Value>,
    first: &str,
    o: &mut FeedOptions,
    out: &mut Out<'_>,
) -> Result<(), FeedError> {
    let mut mine = o.clone();
    let mut lines = Out {
        plugin: out.plugin,
        settings: Vec::new(),
    };
    kv_events(ev, &mut mine, &mut lines)?;
    o.bind = mine.bind.clone();
    for s in lines.settings {
        let differs = match s.setting.as_str() {
            "kvEventsConfig.topicFilter" => mine.topics != o.topics,
            "kvEventsConfig.concurrency" => mine.concurrency != o.concurrency,
            "kvEventsConfig.discoverPods" => {
                (mine.discover_events_port, mine.discover_replay_port)
                    != (o.discover_events_port, o.discover_replay_port)
            }
            _ => false,
        };
        if s.executed && differs {
            out.not(
                &s.setting,
                format!(
                    "one feed serves every producer and follows the kvEventsConfig of '{first}', which differs here ({})",
                    s.note
                ),
            );
        } else {
            out.settings.push(s);
        }
    }
    Ok(())
}

fn kv_events(ev: Option<&Value>, o: &mut FeedOptions, out: &mut Out<'_>) -> Result<(), FeedError> {
    let null = Value::Null;
    let ev = ev.unwrap_or(&null);
    let topic = ev
        .get("topicFilter")
        .and_then(Value::as_str)
        .unwrap_or("kv@");
    o.topics = vec![topic.to_string()];
    out.done(
        "kvEventsConfig.topicFilter",
        format!("subscribed to topics starting with '{topic}'"),
    );
    // The loader takes any positive number: a fraction is rounded down
    // (to at least 1), as the setting's report line shows.
    let conc = match ev.get("concurrency").filter(|v| !v.is_null()) {
        None => 4,
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite() && *f > 0.0)
            .map(|f| f.min(1e6) as u64)
            .ok_or_else(|| {
                FeedError::Config(format!(
                    "kvEventsConfig.concurrency: expected a positive number, got {v}"
                ))
            })?,
    };
    o.concurrency = conc.clamp(1, 1024) as usize;
    out.done(
        "kvEventsConfig.concurrency",
        format!("{} ingest workers", o.concurrency),
    );
    let pd = ev.get("podDiscoveryConfig").unwrap_or(&null);
    if ev
        .get("discoverPods")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        let sp = port(
            pd.get("socketPort"),
            Some(5557),
            "podDiscoveryConfig.socketPort",
        )?;
        o.discover_events_port = sp;
        o.discover_replay_port = port(
            pd.get("replaySocketPort"),
            None,
            "podDiscoveryConfig.replaySocketPort",
        )?;
        out.done(
            "kvEventsConfig.discoverPods",
            format!(
                "every pod the feed follows is subscribed at tcp://<pod-ip>:{}{}",
                sp.unwrap_or(5557),
                match o.discover_replay_port {
                    Some(r) => format!(", replay at port {r}"),
                    None => ", without replay (no replaySocketPort)".into(),
                }
            ),
        );
        for k in ["podLabelSelector", "podNamespace"] {
            if pd.get(k).is_some() {
                out.not(
                    &format!("kvEventsConfig.podDiscoveryConfig.{k}"),
                    "the feed does not watch the Kubernetes API: the host passes its pods (add_pod / sync_pods) or uses DNS or file discovery",
                );
            }
        }
    } else {
        (o.discover_events_port, o.discover_replay_port) = (None, None);
        out.done(
            "kvEventsConfig.discoverPods",
            "false: pods are not subscribed individually",
        );
    }
    if let Some(ep) = ev.get("zmqEndpoint").and_then(Value::as_str) {
        // Two producers naming one endpoint share its socket.
        if !o.bind.iter().any(|b| b == ep) {
            o.bind.push(ep.to_string());
        }
        out.done(
            "kvEventsConfig.zmqEndpoint",
            format!("bound at {ep} for pods that dial in"),
        );
    }
    match ev.get("engineType").and_then(Value::as_str) {
        Some("sglang") => out.not(
            "kvEventsConfig.engineType",
            "sglang's event stream is not decoded; only vLLM's",
        ),
        Some(_) => out.done("kvEventsConfig.engineType", "vLLM event format"),
        None => {}
    }
    Ok(())
}

fn metrics_source(p: &Value, o: &mut FeedOptions, out: &mut Out<'_>) -> Result<(), FeedError> {
    let scheme = p.get("scheme").and_then(Value::as_str).unwrap_or("http");
    if scheme == "https" {
        o.scrape = false;
        out.not(
            "scheme",
            "https is not scraped by the feed (no TLS client): pods are not scraped (nor evicted for it) unless given a metrics URL; scrape in the host and call update_endpoint_metrics_text",
        );
        for k in std::iter::once("insecureSkipVerify").chain(METRICS_TLS_PATHS) {
            if p.get(k).is_some() {
                out.not(k, "TLS settings are not executed (no TLS client)");
            }
        }
    } else {
        out.done("scheme", "http");
    }
    if let Some(path) = p.get("path").and_then(Value::as_str) {
        if !path.starts_with('/') {
            return Err(FeedError::Config(format!(
                "metrics data source path '{path}' must start with '/'"
            )));
        }
        o.metrics_path = path.to_string();
        out.done("path", format!("scraped at {path}"));
    }
    if let Some(port) = port(p.get("port"), None, "metrics data source port")? {
        o.metrics_port = Some(port);
        out.done("port", format!("scraped on port {port}"));
    }
    if let Some(iv) = p.get("interval").filter(|v| !v.is_null()) {
        let ns = duration_ns(iv, "metrics data source interval")?;
        o.scrape_interval = Duration::from_nanos(ns).max(MIN_SCRAPE);
        out.done("interval", format!("scraped every {:?}", o.scrape_interval));
    }
    Ok(())
}
