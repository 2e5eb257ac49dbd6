//! `llmd pods`: a fake fleet of simulated vLLM pods on loopback.

use std::io::Write;
use std::path::Path;

use llmd_sim::pods::{EventForm, Fleet, FleetOptions};
use llmd_sim::scenario::Scenario;

use super::Args;

/// Most batches a pod keeps for replay (`--buffer-steps`): memory grows with
/// it, one encoded batch each.
const MAX_BUFFER_STEPS: usize = 1_000_000;

fn num<T: std::str::FromStr>(name: &str, v: Option<String>, default: T) -> Result<T, String> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("{name}: not a valid number: {s}")),
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut a = Args::new(args);
    let n = match a.value("-n")? {
        Some(v) => Some(v),
        None => a.value("--pods")?,
    };
    let pods: usize = num("-n", n, 4)?;
    let port: u16 = num("--port", a.value("--port")?, 0)?;
    let events = match a.value("--events")?.as_deref() {
        None | Some("map") => EventForm::Map,
        Some("array") => EventForm::Array,
        Some(other) => return Err(format!("--events: expected map or array, got {other}")),
    };
    let model = a.value("--model")?;
    let scenario_path = a.value("--scenario")?;
    let speed: f64 = num("--speed", a.value("--speed")?, 1.0)?;
    let buffer_steps: usize = num("--buffer-steps", a.value("--buffer-steps")?, 10_000)?;
    let otlp = a.value("--otlp-endpoint")?;
    let extra = a.positional()?;
    if let Some(x) = extra.first() {
        return Err(format!("unexpected argument `{x}`"));
    }
    if !(1..=256).contains(&pods) {
        return Err("-n: between 1 and 256 pods".into());
    }
    // Each pod keeps that many batches for replay; vLLM's default is 10,000.
    if buffer_steps > MAX_BUFFER_STEPS {
        return Err(format!(
            "--buffer-steps: at most {MAX_BUFFER_STEPS} batches kept for replay, got {buffer_steps}"
        ));
    }
    if !(speed.is_finite() && speed >= 1e-3) {
        return Err(format!("--speed must be a number >= 0.001, got {speed}"));
    }
    if port != 0 && u32::from(port) + pods as u32 > 65536 {
        return Err("--port: the pods' ports would pass 65535".into());
    }
    let scenario = match &scenario_path {
        Some(p) => Scenario::load(Path::new(p)),
        None => Scenario::default_scenario(),
    }
    .map_err(|e| e.to_string())?;
    if let Some(p) = scenario_path.as_deref() {
        // Said, not silently dropped: a pod is one engine, driven by clients.
        eprintln!(
            "llmd pods: {p}: using its model, model_name, engine, cost and calibration; its fleet \
             (pods are started with -n, each aggregated), workload, slo, client and policies are \
             not used"
        );
    }
    let fleet = Fleet::start(&FleetOptions {
        pods,
        port,
        events,
        model,
        scenario,
        speed,
        buffer_steps,
        tracer: match otlp {
            None => None,
            Some(endpoint) => Some(std::sync::Arc::new(
                llmd_feed::otlp::OtlpExporter::start(llmd_feed::otlp::OtlpOptions {
                    endpoint,
                    service_name: "vllm".into(),
                    flush_interval: std::time::Duration::from_millis(100),
                    ..Default::default()
                })
                .map_err(|e| format!("--otlp-endpoint: {e}"))?,
            )),
        },
    })
    .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for p in fleet.pods() {
        let _ = writeln!(
            out,
            "{} http://{} {} {}",
            p.name, p.http, p.events, p.replay
        );
    }
    let _ = out.flush();
    drop(out);
    // Serve until the process is interrupted.
    loop {
        std::thread::park();
    }
}
