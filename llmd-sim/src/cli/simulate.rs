//! `llmd simulate`: run a scenario under each policy and compare.

use std::io::{IsTerminal, Write};
use std::path::Path;

use llmd_sim::engine::{self, RunOptions};
use llmd_sim::scenario::{PolicySpec, Scenario};
use llmd_sim::stages::StageReport;
use llmd_sim::summary::Summary;
use llmd_sim::{exposition, policy, report};

use super::Args;

/// Seconds a run takes before its progress bar appears.
const PROGRESS_AFTER_S: f64 = 2.0;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut a = Args::new(args);
    let scenario_path = a.value("--scenario")?;
    let given = a.values("--policy")?;
    let a_policy_was_given = !given.is_empty();
    let picks: Vec<String> = given
        .iter()
        .flat_map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let requests = a.value("--requests")?;
    let seed = a.value("--seed")?;
    let json = a.flag("--json");
    let quiet = a.flag("--quiet");
    let metrics_out = a.value("--metrics-out")?;
    let trace_out = a.value("--trace-out")?;
    let extra = a.positional()?;
    if !extra.is_empty() {
        return Err(format!("unexpected argument `{}`", extra[0]));
    }
    let mut sc = match &scenario_path {
        Some(p) => Scenario::load(Path::new(p)),
        None => Scenario::default_scenario(),
    }
    .map_err(|e| e.to_string())?;
    if let Some(n) = requests {
        sc.workload.max_requests = Some(
            n.parse()
                .map_err(|_| format!("--requests: not a number: {n}"))?,
        );
    }
    if let Some(s) = seed {
        sc.seed = s
            .parse()
            .map_err(|_| format!("--seed: not a number: {s}"))?;
    }
    let mut specs = policy::policies(&sc);
    // A policy named twice would print two rows of one name and write its
    // Prometheus series twice.
    if let Some(p) = picks
        .iter()
        .enumerate()
        .find_map(|(i, p)| picks[..i].contains(p).then_some(p))
    {
        return Err(format!("--policy: '{p}' is listed twice"));
    }
    if picks.is_empty() && a_policy_was_given {
        return Err("--policy: no policy named".into());
    }
    if !picks.is_empty() {
        let mut chosen = Vec::new();
        for p in &picks {
            match specs.iter().find(|s| s.name() == p) {
                Some(s) => chosen.push(s.clone()),
                None if Path::new(p).is_file() => chosen.push(PolicySpec::Config {
                    name: Path::new(p)
                        .file_stem()
                        .map_or(p.clone(), |s| s.to_string_lossy().into_owned()),
                    config: Some(std::fs::canonicalize(p).map_err(|e| format!("{p}: {e}"))?),
                    inline: None,
                }),
                None => chosen.push(PolicySpec::Builtin(p.clone())),
            }
        }
        specs = chosen;
    }
    // A progress bar only on a terminal, never with --json, and only once a
    // run has taken ~2 s (short runs print nothing but their result).
    let show_progress = !quiet && !json && std::io::stderr().is_terminal();
    let mut rows = Vec::new();
    let mut staged = Vec::new();
    let mut pages = Vec::new();
    let mut trace = String::new();
    for spec in &specs {
        let router = policy::build(spec, &sc).map_err(|e| e.to_string())?;
        let name = spec.name().to_string();
        let started = std::time::Instant::now();
        let mut drawn = false;
        let mut bar = |done: u64, total: Option<u64>| {
            if show_progress && started.elapsed().as_secs_f64() >= PROGRESS_AFTER_S {
                drawn = true;
                let line = match total {
                    Some(t) if t > 0 => {
                        let f = done as f64 / t as f64;
                        let filled = (f * 30.0) as usize;
                        format!(
                            "{name:<18} [{}{}] {done}/{t}",
                            "#".repeat(filled),
                            ".".repeat(30 - filled.min(30))
                        )
                    }
                    _ => format!("{name:<18} {done} requests done"),
                };
                eprint!("\r{line}\x1b[K");
                let _ = std::io::stderr().flush();
            }
        };
        let opts = RunOptions {
            progress: Some(&mut bar),
            ..RunOptions::default()
        };
        let out = engine::run(&sc, router, opts).map_err(|e| e.to_string())?;
        if drawn {
            eprint!("\r\x1b[K");
        }
        if !out.invariant_violations.is_empty() {
            return Err(format!("{name}: {}", out.invariant_violations.join("; ")));
        }
        for line in &out.not_executed {
            eprintln!("{name}: {line}");
        }
        let s = Summary::of(&out);
        if let Some(ladder) = &sc.workload.arrivals.ladder {
            staged.extend(StageReport::of(&out, ladder));
        }
        if metrics_out.is_some() {
            for (w, page) in out.metrics.iter().enumerate() {
                let labels = vec![
                    ("policy".to_string(), name.clone()),
                    ("endpoint".to_string(), out.worker_names[w].clone()),
                ];
                pages.push((labels, page.clone()));
            }
        }
        if trace_out.is_some() {
            for r in &out.records {
                let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("policy".into(), serde_json::Value::String(name.clone()));
                }
                trace.push_str(&v.to_string());
                trace.push('\n');
            }
        }
        rows.push(s);
    }
    if let Some(p) = &metrics_out {
        std::fs::write(p, exposition::merge(&pages)).map_err(|e| format!("{p}: {e}"))?;
    }
    if let Some(p) = &trace_out {
        std::fs::write(p, trace).map_err(|e| format!("{p}: {e}"))?;
    }
    if json {
        let mut doc = serde_json::json!({ "scenario": sc.name, "seed": sc.seed, "results": rows });
        if !staged.is_empty() {
            doc["ladder"] = serde_json::to_value(&staged).map_err(|e| e.to_string())?;
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
    } else {
        let sim_s = rows.iter().map(|r| r.sim_seconds).fold(0.0, f64::max);
        let wall: f64 = rows.iter().map(|r| r.wall_seconds).sum();
        let title = format!(
            "{} — {} requests, seed {}, {:.0} s simulated, {:.1} s wall",
            sc.name,
            rows.first().map_or(0, |r| r.requests),
            sc.seed,
            sim_s,
            wall
        );
        out!("{}", report::table(&title, &rows));
        if !staged.is_empty() {
            outln!();
            out!("{}", report::stage_table(&staged));
        }
    }
    Ok(())
}
