//! `weir bench`: weir against a hand-written baseline on the reference
//! workloads, each measurement in a child process (`weir bench-one`, hidden).
//! The work is in the `weir-harness` crate (`src/harness/src/bench/`,
//! `weir_harness::bench`); this file is its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use weir_harness::bench::{self as harness, parse_workload, Case, Engine};
use weir_harness::workload::Workload;

/// `weir bench`.
#[derive(Args, Debug)]
pub(super) struct BenchArgs {
    /// Events per run, N.
    #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Runs per engine and case (the table shows the median).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    runs: u64,
    /// Workloads, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "wl1,wl2,wl3,wl4", value_parser = parse_workload)]
    workloads: Vec<Workload>,
    /// Key counts K, comma-separated (default: 16 and 100000 for wl1 and
    /// wl2, 100000 for wl3 and wl4; wl4 joins with J = 500).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
    keys: Option<Vec<u64>>,
    /// weir's parallelisms, comma-separated (the baseline always runs).
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = clap::value_parser!(u64).range(1..=64))]
    parallelism: Vec<u64>,
    /// Session gap G, ms (wl3).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..))]
    gap: i64,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// `weir bench-one`: one measurement, for `weir bench` to run in a child.
#[derive(Args, Debug)]
pub(super) struct BenchOneArgs {
    #[arg(long, value_parser = parse_workload)]
    workload: Workload,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    #[arg(long)]
    events: u64,
    /// `baseline` or `weir-p<N>`.
    #[arg(long, value_parser = Engine::parse)]
    engine: Engine,
    #[arg(long, default_value_t = 500)]
    gap: i64,
}

/// Runs the suite.
pub(super) fn bench(args: BenchArgs) -> ExitCode {
    let mut cases = Vec::new();
    for &workload in &args.workloads {
        let keys = args.keys.clone().unwrap_or_else(|| match workload {
            Workload::Wl3 | Workload::Wl4 => vec![100_000],
            _ => vec![16, 100_000],
        });
        cases.extend(keys.into_iter().map(|keys| Case { workload, keys }));
    }
    let plan = harness::Plan {
        events: args.events,
        runs: args.runs as usize,
        cases,
        parallelism: args.parallelism.iter().map(|&p| p as usize).collect(),
        gap: args.gap,
        json: args.json,
    };
    harness::run(&plan)
}

/// Runs one measurement and prints its line.
pub(super) fn bench_one(args: BenchOneArgs) -> ExitCode {
    harness::measure_one(Case { workload: args.workload, keys: args.keys }, args.engine, args.events, args.gap)
}
