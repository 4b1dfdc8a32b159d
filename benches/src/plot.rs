//! `cadence-bench plot DIR`: SVG charts (plotters) of every run in a result
//! folder against its session count: engine CPU, loss and p99 lateness. One
//! series per scenario.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::results::ScenarioResult;

/// One chart: its file name, title, y label and the run metric it plots.
struct Chart {
    file: &'static str,
    title: &'static str,
    y: &'static str,
    metric: &'static str,
    scale: f64,
}

const CHARTS: &[Chart] = &[
    Chart {
        file: "sessions-cpu.svg",
        title: "Engine CPU against sessions",
        y: "engine CPU, % of one core",
        metric: "server_cpu_pct",
        scale: 1.0,
    },
    Chart {
        file: "sessions-loss.svg",
        title: "Packet loss against sessions",
        y: "loss, %",
        metric: "loss_pct",
        scale: 1.0,
    },
    Chart {
        file: "sessions-p99-lateness.svg",
        title: "p99 lateness against sessions",
        y: "p99 lateness, ms",
        metric: "p99_lateness_us",
        scale: 1e-3,
    },
];

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Series of (sessions, value) per scenario with Cadence runs, sorted.
fn series(results: &[ScenarioResult], metric: &str, scale: f64) -> Vec<(String, Vec<(f64, f64)>)> {
    results
        .iter()
        .filter(|r| r.skipped.is_none())
        .filter_map(|r| {
            let mut pts: Vec<(f64, f64)> = r
                .runs
                .iter()
                .filter(|x| x.server == "cadence")
                .filter_map(|x| Some((x.clients as f64, x.metrics.get(metric)? * scale)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!pts.is_empty()).then(|| (r.scenario.name.clone(), pts))
        })
        .collect()
}

/// Writes the charts into `<dir>/plots/` and returns their paths.
pub fn plot(dir: &Path, results: &[ScenarioResult]) -> Result<Vec<PathBuf>> {
    let out = dir.join("plots");
    std::fs::create_dir_all(&out)?;
    let mut written = Vec::new();
    for c in CHARTS {
        let data = series(results, c.metric, c.scale);
        if data.is_empty() {
            continue;
        }
        let path = out.join(c.file);
        let x_max = data
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.0))
            .fold(0.0, f64::max)
            * 1.05;
        let y_max = data
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(0.0, f64::max)
            .max(if c.metric == "loss_pct" { 0.01 } else { 1.0 })
            * 1.1;
        {
            let root = SVGBackend::new(&path, (900, 540)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(c.title, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..x_max.max(1.0), 0.0..y_max)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("concurrent sessions (300 kbit/s)")
                .y_desc(c.y)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for (i, (name, pts)) in data.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                    .map_err(|e| anyhow!("{e}"))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            root.present().map_err(|e| anyhow!("{e}"))?;
        }
        written.push(path);
    }
    Ok(written)
}
