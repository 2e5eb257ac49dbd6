//! Pod discovery beside the host's own calls ([`crate::Feed::add_pod`],
//! [`crate::Feed::sync_pods`]): a headless service's DNS A/AAAA records,
//! re-resolved; or llm-d's endpoint file (`file-discovery`), re-read when it
//! changes. Each source adds and removes only its own pods.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::feed::Inner;
use crate::pod::{PodSpec, Source, Stopper};
use crate::FeedError;

/// A discovery source.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Every address `host` resolves to is a pod at `<ip>:<port>`, named by
    /// its IP (a Kubernetes headless service resolves to its ready pods).
    Dns {
        /// Name to resolve, e.g. `vllm.default.svc.cluster.local`.
        host: String,
        /// The pods' OpenAI port.
        port: u16,
        /// How often to resolve again.
        interval: Duration,
    },
    /// llm-d's endpoint file: `endpoints: [{name, namespace, address, port,
    /// labels}]` (YAML or JSON).
    File {
        /// The file.
        path: PathBuf,
        /// Re-read it when its modification time changes (llm-d:
        /// `watchFile`); otherwise read once.
        watch: bool,
        /// How often to check the modification time.
        interval: Duration,
    },
}

impl Discovery {
    pub(crate) fn validate(&self) -> Result<(), FeedError> {
        match self {
            Discovery::Dns { host, port, .. } if host.is_empty() || *port == 0 => Err(
                FeedError::Config("DNS discovery needs a host name and a port".into()),
            ),
            // Every binding's interval is checked here: none re-resolves in
            // a loop.
            Discovery::Dns { interval, .. } | Discovery::File { interval, .. }
                if *interval < std::time::Duration::from_millis(1) =>
            {
                Err(FeedError::Config(format!(
                    "the discovery interval must be at least 1 ms, got {interval:?}"
                )))
            }
            Discovery::File { path, .. } if path.as_os_str().is_empty() => {
                Err(FeedError::Config("file discovery needs a path".into()))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    #[serde(default)]
    endpoints: Vec<FileEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEndpoint {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    address: String,
    port: u16,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Largest endpoint file read (a pod is a few lines: far more than any
/// fleet's).
pub const MAX_ENDPOINT_FILE_BYTES: u64 = 16 << 20;

/// The endpoint file at `path`, read only up to [`MAX_ENDPOINT_FILE_BYTES`]:
/// a larger one (or a path to an endless device) is an error, not a read
/// of everything it holds.
pub fn read_endpoint_file(path: &std::path::Path) -> Result<String, FeedError> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_ENDPOINT_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_ENDPOINT_FILE_BYTES {
        return Err(FeedError::Config(format!(
            "endpoint file {} is over {MAX_ENDPOINT_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// Parses llm-d's endpoint file into pod specs (name `namespace/name` when a
/// namespace is given).
pub fn parse_endpoint_file(text: &str) -> Result<Vec<PodSpec>, FeedError> {
    use llmd_sched::config::yaml_budget::{check_yaml_nodes, MAX_YAML_NODES};
    check_yaml_nodes(text, MAX_YAML_NODES)
        .map_err(|e| FeedError::Config(format!("endpoint file: {e}")))?;
    let f: EndpointFile = serde_yaml_ng::from_str(text)
        .map_err(|e| FeedError::Config(format!("endpoint file: {e}")))?;
    Ok(f.endpoints
        .into_iter()
        .map(|e| {
            let name = match &e.namespace {
                Some(ns) if !ns.is_empty() => format!("{ns}/{}", e.name),
                _ => e.name,
            };
            let address = if e.address.contains(':') {
                format!("[{}]:{}", e.address, e.port)
            } else {
                format!("{}:{}", e.address, e.port)
            };
            let mut ep = llmd_sched::Endpoint::new(name.clone(), address.clone());
            ep.labels = e.labels;
            PodSpec {
                endpoint: Some(ep),
                ..PodSpec::new(name, address)
            }
        })
        .collect())
}

/// Longest DNS lookup a discovery source waits for (a stop waits no longer).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Consecutive "no such name" answers after which a DNS source's pods are
/// removed: a headless service with no ready pods (scaled to zero, all
/// failing readiness) has no records, and its last pods must not stay
/// routable; one answer could be a resolver's hiccup.
pub const NAME_GONE_AFTER: u32 = 3;

/// Resolves `host` to pod specs named by IP. A dual-stack name (a headless
/// service whose pods have an IPv4 and an IPv6 address) gives each pod
/// twice; only one family is kept, IPv4 when there is any (as a pod's
/// primary `podIP` usually is), so that no pod counts as two endpoints.
pub fn resolve(host: &str, port: u16) -> Result<Vec<PodSpec>, FeedError> {
    lookup(host, port).map_err(|(e, _)| e)
}

/// The answer says the name has no records (`EAI_NONAME` / `EAI_NODATA`,
/// as the platform words them), rather than that the lookup failed.
#[cfg(target_os = "linux")]
fn no_such_name(e: &std::io::Error) -> bool {
    let msg = e.to_string();
    [libc::EAI_NONAME, libc::EAI_NODATA].iter().any(|&code| {
        // SAFETY: gai_strerror returns a static NUL-terminated string.
        let text = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(code)) };
        msg.ends_with(&*text.to_string_lossy())
    })
}

/// Elsewhere every failed lookup keeps the current pods.
#[cfg(not(target_os = "linux"))]
fn no_such_name(_: &std::io::Error) -> bool {
    false
}

/// [`resolve`], with whether a failure says the name has no records.
fn lookup(host: &str, port: u16) -> Result<Vec<PodSpec>, (FeedError, bool)> {
    let name = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut ips: Vec<std::net::IpAddr> = crate::zmq::resolve_within(&name, LOOKUP_TIMEOUT)
        .map_err(|e| {
            let gone = no_such_name(&e);
            (FeedError::Config(format!("resolving '{host}': {e}")), gone)
        })?
        .into_iter()
        .map(|a| a.ip())
        .collect();
    if ips.iter().any(|ip| ip.is_ipv4()) {
        ips.retain(|ip| ip.is_ipv4());
    }
    ips.sort();
    ips.dedup();
    Ok(ips
        .into_iter()
        .map(|ip| {
            let addr = std::net::SocketAddr::new(ip, port).to_string();
            PodSpec::new(ip.to_string(), addr)
        })
        .collect())
}

/// Runs source `id` until the feed stops.
pub(crate) fn run(inner: &Arc<Inner>, id: usize, d: &Discovery, stop: &Stopper) {
    match d {
        Discovery::Dns {
            host,
            port,
            interval,
        } => {
            let mut gone = 0u32;
            loop {
                // A failed lookup keeps the current pods (DNS hiccups are
                // common); it is counted, as is each pod the sync could
                // not follow (inside `sync`). A name with no records, said
                // [`NAME_GONE_AFTER`] times in a row, removes them.
                match lookup(host, *port) {
                    Ok(specs) => {
                        gone = 0;
                        let _ = inner.sync(Source::Dns(id), specs);
                    }
                    Err((_, no_records)) => {
                        inner.discovery_failed();
                        gone = if no_records {
                            gone.saturating_add(1)
                        } else {
                            0
                        };
                        if gone >= NAME_GONE_AFTER {
                            let _ = inner.sync(Source::Dns(id), Vec::new());
                        }
                    }
                }
                if stop.wait(*interval) {
                    return;
                }
            }
        }
        Discovery::File {
            path,
            watch,
            interval,
        } => {
            let mut seen: Option<SystemTime> = None;
            let mut missing = false;
            loop {
                let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                // A file that is not there (a mistyped path, a volume not
                // mounted yet) is counted once per absence, not silently
                // waited for.
                if mtime.is_none() && !missing {
                    inner.discovery_failed();
                }
                missing = mtime.is_none();
                if mtime.is_some() && mtime != seen {
                    match read_endpoint_file(path) {
                        // Too large: counted once, read again only when it
                        // changes (not 16 MiB every interval).
                        Err(FeedError::Config(_)) => {
                            inner.discovery_failed();
                            seen = mtime;
                        }
                        text => match text.and_then(|t| parse_endpoint_file(&t)) {
                            // A sync that could not follow every pod (each
                            // failure counted inside) is tried again next
                            // interval, not only when the file changes.
                            Ok(specs) => {
                                if inner.sync(Source::File(id), specs).is_ok() {
                                    seen = mtime;
                                }
                            }
                            // Read again next interval (a file caught mid-write).
                            Err(_) => inner.discovery_failed(),
                        },
                    }
                }
                if (!*watch && seen.is_some()) || stop.wait(*interval) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name with no records (RFC 6761: `.invalid` never resolves) is told
    /// from a failed lookup, which keeps the pods.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_name_with_no_records_is_told_from_a_failed_lookup() {
        let (e, gone) = lookup("no-such-pool.invalid", 8000).unwrap_err();
        assert!(gone, "{e}");
        let failed = |code| {
            // SAFETY: as in `no_such_name`.
            let text = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(code)) };
            std::io::Error::other(format!(
                "failed to lookup address information: {}",
                text.to_string_lossy()
            ))
        };
        assert!(!no_such_name(&failed(libc::EAI_AGAIN)));
        assert!(no_such_name(&failed(libc::EAI_NONAME)));
        assert!(lookup("localhost", 8000).is_ok());
    }

    #[test]
    fn endpoint_file_in_llm_d_format() {
        let specs = parse_endpoint_file(
            "endpoints:\n- name: vllm-0\n  namespace: prod\n  address: 10.0.0.7\n  port: 8000\n  labels: {llm-d.ai/role: decode}\n- name: b\n  address: ::1\n  port: 8001\n",
        )
        .unwrap();
        assert_eq!(specs[0].name, "prod/vllm-0");
        assert_eq!(specs[0].address, "10.0.0.7:8000");
        assert_eq!(
            specs[0].endpoint.as_ref().unwrap().labels["llm-d.ai/role"],
            "decode"
        );
        assert_eq!(specs[1].address, "[::1]:8001");
        assert!(parse_endpoint_file("endpoints: [{name: x}]").is_err());
        assert!(parse_endpoint_file("bogus: 1").is_err());
    }

    #[test]
    fn dns_names_pods_by_ip() {
        let specs = resolve("localhost", 8000).unwrap();
        assert!(!specs.is_empty());
        assert!(specs.iter().all(|s| s.address.ends_with(":8000")));
        // localhost is 127.0.0.1 and often ::1 too: one pod, not two.
        if specs.iter().any(|s| s.name == "127.0.0.1") {
            assert_eq!(specs.len(), 1, "{specs:?}");
        }
    }
}
