//! The parent of `weir bench`: runs every measurement in a child process,
//! engines alternating, and collects what they report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use indicatif::{ProgressBar, ProgressStyle};

use super::child::Measurement;
use super::report::Report;
use super::{workload_name, Case, Engine};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events per run, N.
    pub events: u64,
    /// Runs per engine and case.
    pub runs: usize,
    /// The cases, in order.
    pub cases: Vec<Case>,
    /// weir's parallelisms (the baseline always runs).
    pub parallelism: Vec<usize>,
    /// Session gap (WL3).
    pub gap: i64,
    /// Also write the results as JSON here.
    pub json: Option<PathBuf>,
}

/// Runs `plan`, prints the table; fails if a child failed or a checksum
/// disagrees.
pub fn run(plan: &Plan) -> ExitCode {
    let mut engines = vec![Engine::Baseline];
    engines.extend(plan.parallelism.iter().map(|&p| Engine::Weir(p)));
    let total = plan.cases.len() * plan.runs * engines.len();
    let bar = progress_bar(total as u64);
    eprintln!(
        "weir bench: N={} events, {} run(s) of {} engine(s) on {} case(s), each in a child process",
        plan.events,
        plan.runs,
        engines.len(),
        plan.cases.len()
    );
    let mut measurements = Vec::with_capacity(total);
    for &case in &plan.cases {
        // Alternate the engines run by run, so that noise spreads evenly.
        for run in 0..plan.runs {
            for &engine in &engines {
                let what = format!(
                    "{} K={} {} run {}/{}",
                    workload_name(case.workload),
                    case.keys,
                    engine.label(),
                    run + 1,
                    plan.runs
                );
                if let Some(bar) = &bar {
                    bar.set_message(what.clone());
                }
                match run_child(case, engine, plan.events, plan.gap) {
                    Ok(m) => {
                        if bar.is_none() {
                            eprintln!(
                                "  {what}: {:.2} M events/s, {} MB peak",
                                m.events_per_sec() / 1e6,
                                m.rss_kb / 1024
                            );
                        }
                        measurements.push(m);
                    }
                    Err(e) => {
                        if let Some(bar) = &bar {
                            bar.abandon();
                        }
                        eprintln!("error: {what}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = Report::new(plan, &engines, measurements);
    print!("{}", report.table());
    if let Some(path) = &plan.json {
        if let Err(e) = std::fs::write(path, report.json()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.all_agree() {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: some checksums disagree (see the table)");
        ExitCode::FAILURE
    }
}

/// Runs one measurement in a child: this executable's hidden `bench-one`.
fn run_child(case: Case, engine: Engine, events: u64, gap: i64) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let out = Command::new(exe)
        .arg("bench-one")
        .args(["--workload", workload_name(case.workload)])
        .args(["--keys", &case.keys.to_string()])
        .args(["--events", &events.to_string()])
        .args(["--engine", &engine.name()])
        .args(["--gap", &gap.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the child failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Measurement::from_output(&stdout)
}

/// A bar over the measurements when stderr is a terminal.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} measurements: {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    })
}
