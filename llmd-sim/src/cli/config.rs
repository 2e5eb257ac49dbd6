//! `llmd config check`: load an EndpointPickerConfig and print the pipeline
//! the scheduler built from it.

use llmd_sched::Scheduler;

use super::Args;

pub fn run(args: &[String]) -> Result<(), String> {
    let (sub, rest) = args
        .split_first()
        .ok_or("usage: llmd config check [--json] FILE")?;
    if sub != "check" {
        return Err(format!("unknown config command `{sub}` (try `check`)"));
    }
    let mut a = Args::new(rest);
    let json = a.flag("--json");
    let files = a.positional()?;
    let [path] = files.as_slice() else {
        return Err("usage: llmd config check [--json] FILE".into());
    };
    let sched = Scheduler::from_config_file(path).map_err(|e| format!("{path}: {e}"))?;
    let report = sched.config_report();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(report).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let kind = |name: &str| {
        report
            .plugin(name)
            .map_or(String::new(), |p| p.plugin_type.clone())
    };
    outln!("{path}: OK (apiVersion {})", report.api_version);
    let p = sched.pipeline();
    for (name, _) in &p.screeners {
        outln!("screener {name} ({})", kind(name));
    }
    for prof in &p.profiles {
        outln!("profile `{}`:", prof.name);
        for f in &prof.filters {
            outln!("  filter  {} ({})", f.name, kind(&f.name));
        }
        for s in &prof.scorers {
            outln!(
                "  scorer  {} ({}) weight {}",
                s.name,
                kind(&s.name),
                s.weight
            );
        }
        outln!(
            "  picker  {} ({})",
            prof.picker.name,
            kind(&prof.picker.name)
        );
    }
    for (name, _) in &p.producers {
        outln!("producer {name} ({})", kind(name));
    }
    outln!("plugins:");
    for r in &report.plugins {
        let status = match &r.status {
            llmd_sched::config::PluginStatus::Executed => "executed".to_string(),
            llmd_sched::config::PluginStatus::AcceptedNotExecuted(why) => {
                format!("accepted, not executed: {why}")
            }
        };
        let injected = if r.injected { ", injected" } else { "" };
        outln!("  {} ({}{injected}): {status}", r.name, r.plugin_type);
    }
    for w in &report.warnings {
        outln!("warning: {w}");
    }
    Ok(())
}
