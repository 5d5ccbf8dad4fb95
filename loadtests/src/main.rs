//! The `banter-load` command line: `run` a scenario, `merge` reports, `show` a report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use banter_load::{Report, RunOptions, Scenario, chart, report};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "banter-load",
    version,
    about = "WebSocket load generator for Banter"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file against a server.
    Run {
        scenario: PathBuf,
        /// Override any scenario field: `--set publish.rate_per_sec=200` (repeatable).
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        overrides: Vec<String>,
        /// Shorthand for `--set url=…`.
        #[arg(long)]
        url: Option<String>,
        /// Shorthand for `--set api_url=…`.
        #[arg(long)]
        api_url: Option<String>,
        /// Shorthand for `--set connections=…`.
        #[arg(long)]
        connections: Option<usize>,
        /// Shorthand for `--set duration_secs=…`.
        #[arg(long)]
        duration: Option<f64>,
        /// Where to write the JSON report.
        #[arg(long, default_value = "banter-load-report.json")]
        out: PathBuf,
        /// Where to write the SVG chart (default: the report's path with `.svg`).
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Sample a local process's CPU and memory into the report: `PID` or `PID:label`.
        #[arg(long = "watch-pid", value_name = "PID[:LABEL]")]
        watch: Vec<String>,
        /// No progress line every second.
        #[arg(long)]
        quiet: bool,
        /// Exit with status 3 if any comment was lost, duplicated, reordered or still undelivered
        /// at the end.
        #[arg(long)]
        fail_on_loss: bool,
        /// Exit with status 4 if the server fell behind (comments still undelivered at the end,
        /// or posts unanswered) without losing anything. Off by default: a rate sweep
        /// overloads on purpose, and the summary's verdict line says it either way.
        #[arg(long)]
        fail_on_overload: bool,
    },
    /// Merge the reports of generators that ran one scenario together.
    Merge {
        reports: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// Cut a report's run into windows at the given Unix seconds (`--at during=1765000000
    /// --at after=1765000042`) and print each window's deliveries, reconnects, and delivery and
    /// acknowledgement percentiles (for "before, during and after" an event such as a rolling
    /// restart, or a flood's first second).
    Windows {
        report: PathBuf,
        #[arg(long = "at", value_name = "NAME=UNIX")]
        cuts: Vec<String>,
    },
    /// Print a report's summary (and optionally redraw its chart).
    Show {
        report: PathBuf,
        #[arg(long)]
        chart: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario,
            mut overrides,
            url,
            api_url,
            connections,
            duration,
            out,
            chart,
            watch,
            quiet,
            fail_on_loss,
            fail_on_overload,
        } => {
            let shorthands = [
                url.map(|v| format!("url={v:?}")),
                api_url.map(|v| format!("api_url={v:?}")),
                connections.map(|v| format!("connections={v}")),
                duration.map(|v| format!("duration_secs={v}")),
            ];
            overrides.extend(shorthands.into_iter().flatten());
            let scenario = Scenario::load(&scenario, &overrides)?;
            let watch = watch
                .iter()
                .map(|w| {
                    let (pid, label) = w.split_once(':').unwrap_or((w, "server"));
                    let pid = pid
                        .parse()
                        .with_context(|| format!("--watch-pid {w}: not a pid"))?;
                    Ok((pid, label.to_owned()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report =
                runtime.block_on(banter_load::run(scenario, RunOptions { watch, quiet }))?;
            write(&report, &out, chart.as_deref())?;
            print!("{}", report.summary());
            let l = report.loss;
            if fail_on_loss && (l.lost > 0 || l.late > 0 || l.duplicates > 0 || l.out_of_order > 0)
            {
                std::process::exit(3);
            }
            if fail_on_overload && report.verdict() == banter_load::Verdict::Overloaded {
                std::process::exit(4);
            }
        }
        Command::Merge {
            reports,
            out,
            chart,
        } => {
            let reports = reports
                .iter()
                .map(|p| read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let merged = report::merge(reports)?;
            write(&merged, &out, chart.as_deref())?;
            print!("{}", merged.summary());
        }
        Command::Windows { report, cuts } => {
            let r = read(&report)?;
            let cuts = cuts
                .iter()
                .map(|c| {
                    let (name, at) = c
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--at wants NAME=UNIX, got {c:?}"))?;
                    let at = at.parse::<u64>().with_context(|| format!("--at {c}"))?;
                    Ok((name.to_owned(), at))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let windows = banter_load::windows::windows(&r.series, &cuts);
            print!("{}", banter_load::windows::table(&windows));
        }
        Command::Show { report, chart } => {
            let r = read(&report)?;
            if let Some(c) = chart {
                std::fs::write(&c, chart::svg(&r))
                    .with_context(|| format!("writing {}", c.display()))?;
            }
            print!("{}", r.summary());
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Report::from_json(&text).with_context(|| format!("in {}", path.display()))
}

fn write(report: &Report, out: &Path, chart_path: Option<&Path>) -> anyhow::Result<()> {
    std::fs::write(out, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    let chart_path = chart_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.with_extension("svg"));
    std::fs::write(&chart_path, chart::svg(report))
        .with_context(|| format!("writing {}", chart_path.display()))?;
    eprintln!("report: {}  chart: {}", out.display(), chart_path.display());
    Ok(())
}
