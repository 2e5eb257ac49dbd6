//! The comparison table printed by `llmd simulate`.

use std::fmt::Write;

use crate::stages::StageReport;
use crate::summary::Summary;

fn secs(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}s")
    } else if v >= 1.0 {
        format!("{v:.2}s")
    } else {
        format!("{:.0}ms", v * 1e3)
    }
}

/// Renders summaries as an aligned text table.
pub fn table(title: &str, rows: &[Summary]) -> String {
    let header = [
        "policy",
        "TTFT p50",
        "p90",
        "p99",
        "TPOT p50",
        "p90",
        "out tok/s",
        "hit rate",
        "goodput/s",
        "SLO ok",
        "load max/mean",
        "failed",
    ];
    // Admission refusals get a column when a run had any.
    let rejected = rows.iter().any(|r| r.rejected > 0);
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    if rejected {
        cells[0].push("rejected".into());
    }
    for r in rows {
        cells.push(vec![
            r.policy.clone(),
            secs(r.ttft_p50),
            secs(r.ttft_p90),
            secs(r.ttft_p99),
            secs(r.tpot_p50),
            secs(r.tpot_p90),
            format!("{:.0}", r.output_tps),
            format!("{:.1}%", r.cache_hit_rate * 100.0),
            format!("{:.2}", r.goodput),
            format!("{:.1}%", r.slo_attainment * 100.0),
            format!("{:.2}", r.load_max_over_mean),
            r.failed.to_string(),
        ]);
        if rejected {
            cells.last_mut().expect("row").push(r.rejected.to_string());
        }
    }
    render(title, &cells)
}

/// Renders ladder runs as llm-d reports them: the mean of the per-stage
/// throughputs and TTFT over the ladder, then each stage.
pub fn stage_table(rows: &[StageReport]) -> String {
    let header = ["policy", "out tok/s", "req/s", "TTFT p90", "TTFT mean"];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(vec![
            r.policy.clone(),
            format!("{:.1}", r.output_tps),
            format!("{:.3}", r.request_rate),
            secs(r.ttft_p90),
            secs(r.ttft_mean),
        ]);
    }
    let mut out = render(
        "As llm-d reports a ladder (per-stage throughput averaged over stages; TTFT over the ladder; warm-up left out):",
        &cells,
    );
    let mut cells: Vec<Vec<String>> = vec![[
        "policy",
        "QPS",
        "requests",
        "out tok/s",
        "req/s",
        "TTFT p90",
        "TTFT mean",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for r in rows {
        for s in &r.stages {
            cells.push(vec![
                r.policy.clone(),
                format!("{}", s.rate),
                s.requests.to_string(),
                format!("{:.1}", s.output_tps),
                format!("{:.3}", s.request_rate),
                secs(s.ttft_p90),
                secs(s.ttft_mean),
            ]);
        }
    }
    out.push_str(&render("Per stage:", &cells));
    out
}

/// An aligned table: the first row is the header, the first column is
/// left-aligned, the others right-aligned.
fn render(title: &str, cells: &[Vec<String>]) -> String {
    let columns = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    for (i, row) in cells.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}
