//! `weir bench`: end-to-end throughput of the reference workloads, weir
//! against a hand-written baseline, in one invocation.
//!
//! For each case (workload, K) the suite runs the `baseline` (a
//! single-threaded tight loop: the cost of the work without a framework)
//! and weir at each parallelism, `--runs` times, alternating the engines
//! (baseline, p=1, p=2, baseline, ...) so that the noise of a shared
//! machine spreads over all of them. Each measurement runs in a child
//! process of its own (`child`, the hidden `weir bench-one`), so that
//! each reports its own peak RSS; it prints one machine-readable line that
//! the parent parses (`child::Measurement`). The parent prints a table —
//! median events/s, ratios to the baseline and of p=2 to p=1, peak RSS,
//! and whether every checksum agrees with the baseline's and, for the runs
//! that have one, with the WORKLOAD.md check value (`check`) — and fails
//! if any disagrees (`report`).

mod baseline;
mod check;
pub(crate) mod child;
mod hash;
mod join;
mod report;
mod sessions;
mod sliding;
mod suite;
mod tumbling;

pub use suite::{run, Plan};

use crate::workload::Workload;

/// What runs a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    /// The hand-written loop.
    Baseline,
    /// weir with this many sources and window managers.
    Weir(usize),
}

impl Engine {
    /// `baseline` or `weir-p<N>` (the form `bench-one --engine` takes).
    pub fn name(self) -> String {
        match self {
            Engine::Baseline => "baseline".into(),
            Engine::Weir(p) => format!("weir-p{p}"),
        }
    }

    /// Reads [`Engine::name`].
    pub fn parse(s: &str) -> Result<Engine, String> {
        if s == "baseline" {
            return Ok(Engine::Baseline);
        }
        s.strip_prefix("weir-p")
            .and_then(|p| p.parse().ok())
            .filter(|&p| p > 0)
            .map(Engine::Weir)
            .ok_or_else(|| format!("unknown engine '{s}' (baseline, weir-p1, weir-p2, ...)"))
    }

    /// As the table shows it.
    fn label(self) -> String {
        match self {
            Engine::Baseline => "baseline".into(),
            Engine::Weir(p) => format!("weir p={p}"),
        }
    }
}

/// `wl1`, `wl2`, `wl3` or `wl4`.
pub(crate) fn workload_name(w: Workload) -> &'static str {
    match w {
        Workload::Wl1 => "wl1",
        Workload::Wl2 => "wl2",
        Workload::Wl3 => "wl3",
        Workload::Wl4 => "wl4",
    }
}

/// Reads a workload name (`wl1`, `wl2`, `wl3`, `wl4`).
pub fn parse_workload(s: &str) -> Result<Workload, String> {
    match s {
        "wl1" => Ok(Workload::Wl1),
        "wl2" => Ok(Workload::Wl2),
        "wl3" => Ok(Workload::Wl3),
        "wl4" => Ok(Workload::Wl4),
        _ => Err(format!("unknown workload '{s}' (wl1, wl2, wl3, wl4)")),
    }
}

/// One workload at one key count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The job.
    pub workload: Workload,
    /// Distinct keys K.
    pub keys: u64,
}

/// Runs one measurement (what `weir bench-one` does in each child process)
/// and prints its machine-readable line.
pub fn measure_one(case: Case, engine: Engine, events: u64, gap: i64) -> std::process::ExitCode {
    match child::measure(case, engine, events, gap) {
        Ok(m) => {
            println!("{}", m.to_line());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
