//! Scenario files (YAML or JSON): fleet, model shape, roles, workload,
//! objectives and the policies to compare.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::cost::CostParams;
use crate::error::{Result, SimError};
use crate::request::Slo;
use crate::worker::EngineConfig;
use crate::workload::WorkloadSpec;

pub use llmd_sched::config::text_file::MAX_CONFIG_BYTES;

/// Reads a file the scenario names (a regular file of at most `max` bytes),
/// the error naming the path.
pub fn read_text(path: &Path, max: u64) -> Result<String> {
    llmd_sched::config::text_file::read_text_file(path, max)
        .map_err(|e| SimError::io(path.display().to_string(), e))
}

/// The scenario `llmd simulate` runs with no arguments.
pub const DEFAULT_SCENARIO: &str = include_str!("../../testdata/scenarios/default.yaml");

/// The most KV blocks a fleet may hold in all (GPU and CPU tiers, every
/// worker): 64 Mi, tens of times a real fleet's, allocated up front.
pub const MAX_FLEET_BLOCKS: u64 = 1 << 26;

/// The most token slots a fleet with a CPU tier may keep (2^30: 4 GiB of
/// token ids). A CPU tier keeps every cached block's tokens so it can
/// publish them when blocks move between tiers.
pub const MAX_FLEET_TOKENS: u64 = 1 << 30;

/// KV transfer between a prefill and a decode worker (P/D).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KvTransfer {
    /// Link bandwidth, GB/s.
    pub bandwidth_gbps: f64,
    /// Fixed latency per transfer, ms.
    pub latency_ms: f64,
}

impl Default for KvTransfer {
    fn default() -> Self {
        KvTransfer {
            bandwidth_gbps: 50.0,
            latency_ms: 2.0,
        }
    }
}

/// The workers and how the router observes them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSpec {
    /// Aggregated workers (prefill and decode).
    pub workers: u32,
    /// Prefill-only workers (P/D).
    pub prefill: u32,
    /// Decode-only workers (P/D).
    pub decode: u32,
    /// Metrics scrape interval, ms (llm-d polls every 50 ms).
    pub scrape_interval_ms: f64,
    /// KV transfer for P/D.
    pub kv_transfer: KvTransfer,
    /// Router replicas (Endpoint Pickers) sharing the fleet: requests go to
    /// them in turn, each knows only the requests it placed, all of them
    /// receive every KV event and scrape. 1 to 16.
    pub router_replicas: u32,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            workers: 4,
            prefill: 0,
            decode: 0,
            scrape_interval_ms: 50.0,
            kv_transfer: KvTransfer::default(),
            router_replicas: 1,
        }
    }
}

impl FleetSpec {
    /// Total workers.
    pub fn size(&self) -> usize {
        // Summed wide: three huge counts must not wrap to a small fleet.
        self.workers as usize + self.prefill as usize + self.decode as usize
    }
}

/// The load generator's side of a request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSpec {
    /// Seconds after which the client gives up on a request (its whole
    /// duration, first token to last included) and disconnects; the engine
    /// aborts it, as vLLM does when a client goes away. The request counts as
    /// failed. None: clients wait forever.
    pub timeout_s: Option<f64>,
    /// Requests the client keeps in flight at most. A request whose time
    /// comes while that many are in flight is sent when one ends; its TTFT
    /// and timeout run from that send, as inference-perf's workers measure
    /// them (each holds at most `worker_max_concurrency`, 100, and there is
    /// one worker per CPU that Python's `cpu_count()` reports: the node's).
    /// None: no cap (an open loop).
    pub max_in_flight: Option<u64>,
}

/// A policy to compare: a built-in name, or an EndpointPickerConfig.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PolicySpec {
    /// A built-in policy (`random`, `precise-prefix`, ...).
    Builtin(String),
    /// An EndpointPickerConfig file or inline text, run by the scheduler.
    Config {
        /// Name in reports.
        name: String,
        /// Path of the config (relative to the scenario file).
        #[serde(default)]
        config: Option<PathBuf>,
        /// Inline config text.
        #[serde(default)]
        inline: Option<String>,
    },
}

impl PolicySpec {
    /// Name in reports.
    pub fn name(&self) -> &str {
        match self {
            PolicySpec::Builtin(n) => n,
            PolicySpec::Config { name, .. } => name,
        }
    }
}

/// A whole scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name in reports.
    pub name: String,
    /// Seed of every random choice.
    #[serde(default)]
    pub seed: u64,
    /// Calibrated model shape (e.g. `qwen3-32b-tp2`).
    pub model: String,
    /// Model name in requests and metrics.
    #[serde(default = "default_model_name")]
    pub model_name: String,
    /// Workers.
    #[serde(default)]
    pub fleet: FleetSpec,
    /// Engine settings of every worker.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Cost-model knobs.
    #[serde(default)]
    pub cost: CostParams,
    /// Calibration JSON (default: the embedded H100 run).
    #[serde(default)]
    pub calibration: Option<PathBuf>,
    /// Requests.
    pub workload: WorkloadSpec,
    /// Objectives for goodput.
    #[serde(default)]
    pub slo: Slo,
    /// The load generator's behaviour (timeouts).
    #[serde(default)]
    pub client: ClientSpec,
    /// Policies to compare.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// Directory relative paths resolve against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_model_name() -> String {
    "model".to_string()
}

impl Scenario {
    /// Parses YAML (a superset of JSON).
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self> {
        use llmd_sched::config::yaml_budget::{check_yaml_nodes, MAX_YAML_NODES};
        check_yaml_nodes(text, MAX_YAML_NODES).map_err(SimError::Scenario)?;
        let mut s: Scenario =
            serde_yaml_ng::from_str(text).map_err(|e| SimError::Scenario(e.to_string()))?;
        s.base_dir = base_dir.to_path_buf();
        s.validate()?;
        Ok(s)
    }

    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::parse(&text, &base)
    }

    /// The scenario's calibration: its `calibration` file (relative to the
    /// scenario's directory), else the embedded H100 timings.
    pub fn calibration(&self) -> Result<Calibration> {
        match &self.calibration {
            Some(p) => {
                Calibration::from_json(&read_text(&self.base_dir.join(p), MAX_CONFIG_BYTES)?)
            }
            None => Calibration::embedded(),
        }
    }

    /// The embedded default scenario.
    pub fn default_scenario() -> Result<Self> {
        Self::parse(DEFAULT_SCENARIO, Path::new("."))
    }

    /// Checks that `workers` engines of this scenario's engine settings fit
    /// the fleet-wide cache bounds: every worker's cache is allocated up
    /// front, block by block (and with a CPU tier, token by token). The
    /// scenario's own fleet is checked when it is loaded; `llmd pods -n N`
    /// checks its own count.
    pub fn check_caches(&self, workers: usize) -> Result<()> {
        let e = &self.engine;
        let bad = |m: String| Err(SimError::Scenario(m));
        let blocks = e.kv_tokens.saturating_add(e.cpu_kv_tokens) / u64::from(e.block_size.max(1));
        if blocks.saturating_mul(workers as u64) > MAX_FLEET_BLOCKS {
            return bad(format!(
                "the fleet's KV caches hold {} blocks ({workers} workers x (kv_tokens + cpu_kv_tokens) / \
                 block_size); at most {MAX_FLEET_BLOCKS}",
                blocks.saturating_mul(workers as u64),
            ));
        }
        // With a CPU tier every block's tokens are kept, on both tiers.
        let tokens = (blocks * u64::from(e.block_size)).saturating_mul(workers as u64);
        if e.cpu_kv_tokens > 0 && tokens > MAX_FLEET_TOKENS {
            return bad(format!(
                "with a CPU tier the fleet keeps the tokens of {tokens} cached token slots \
                 ({workers} workers x (kv_tokens + cpu_kv_tokens), whole blocks); at most {MAX_FLEET_TOKENS}"
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let f = &self.fleet;
        let bad = |m: String| Err(SimError::Scenario(m));
        if f.size() == 0 {
            return bad("fleet has no workers".into());
        }
        if (f.prefill > 0) != (f.decode > 0) {
            return bad("P/D needs both fleet.prefill and fleet.decode".into());
        }
        if f.size() > 64 {
            return bad(format!(
                "at most 64 workers are supported, got {}",
                f.size()
            ));
        }
        if !(1..=16).contains(&f.router_replicas) {
            return bad(format!(
                "fleet.router_replicas must be 1 to 16, got {}",
                f.router_replicas
            ));
        }
        if let Some(t) = self.client.timeout_s {
            if !(t > 0.0 && t.is_finite()) {
                return bad(format!("client.timeout_s must be > 0, got {t}"));
            }
        }
        if self.client.max_in_flight == Some(0) {
            return bad("client.max_in_flight must be at least 1".to_string());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        // Each bound keeps a run's event count finite: a scrape every
        // interval while requests run, a transfer that ends.
        if !(1.0..=3_600_000.0).contains(&f.scrape_interval_ms) {
            return bad(format!(
                "fleet.scrape_interval_ms must be 1 ms to an hour, got {}",
                f.scrape_interval_ms
            ));
        }
        let t = &f.kv_transfer;
        if t.bandwidth_gbps < 0.01
            || !t.bandwidth_gbps.is_finite()
            || !(0.0..=60_000.0).contains(&t.latency_ms)
        {
            return bad(format!(
                "fleet.kv_transfer needs bandwidth_gbps >= 0.01 (finite) and latency_ms 0 to \
                 60000, got {} / {}",
                t.bandwidth_gbps, t.latency_ms
            ));
        }
        let c = &self.cost;
        if !positive(c.allreduce_gbps)
            || !non_negative(c.allreduce_latency_us)
            || !non_negative(c.step_overhead_ms)
        {
            return bad(format!(
                "cost needs allreduce_gbps > 0, allreduce_latency_us >= 0 and step_overhead_ms >= 0 \
                 (finite), got {} / {} / {}",
                c.allreduce_gbps, c.allreduce_latency_us, c.step_overhead_ms
            ));
        }
        let e = &self.engine;
        if e.block_size == 0 || e.max_num_batched_tokens == 0 || e.max_num_seqs == 0 {
            return bad(
                "engine block_size, max_num_batched_tokens, max_num_seqs must be > 0".into(),
            );
        }
        if e.kv_tokens < u64::from(e.block_size) {
            return bad("engine.kv_tokens must hold at least one block".into());
        }
        self.check_caches(f.size())?;
        if !(positive(self.slo.ttft_s) && positive(self.slo.tpot_s)) {
            return bad("slo ttft_s and tpot_s must be > 0".into());
        }
        Ok(())
    }
}
