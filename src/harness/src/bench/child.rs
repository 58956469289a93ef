//! One measurement, in a process of its own (`weir bench-one`), reported as
//! one line on stdout:
//!
//! ```text
//! weir-bench workload=wl1 keys=16 events=20000000 engine=weir-p2 secs=1.234 rss_kb=5120 rows=.. sum_count=.. total=.. digest=.. late=0
//! ```
//!
//! `rss_kb` is the process's peak resident set (`VmHWM` in
//! `/proc/self/status`), read after the run: the child does nothing else,
//! so it is the run's own peak (plus the binary's few MB).

use std::time::Instant;

use crate::workload::{self, Checksum, StreamParams, WorkloadSpec};

use super::{baseline, parse_workload, workload_name, Case, Engine};

/// The line's first word.
const TAG: &str = "weir-bench";

/// What one child measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measurement {
    pub(crate) case: Case,
    pub(crate) engine: Engine,
    /// Events of the stream, N.
    pub(crate) events: u64,
    /// Wall time from building the job (or entering the loop) to its end.
    pub(crate) secs: f64,
    /// Peak resident set, KiB (0 where `/proc` is missing).
    pub(crate) rss_kb: u64,
    pub(crate) checksum: Checksum,
    pub(crate) late: u64,
}

impl Measurement {
    /// Events per second of wall time.
    pub(crate) fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.secs.max(1e-9)
    }

    /// The line the child prints.
    pub(crate) fn to_line(self) -> String {
        let c = &self.checksum;
        format!(
            "{TAG} workload={} keys={} events={} engine={} secs={:.6} rss_kb={} rows={} sum_count={} total={} digest={} late={}",
            workload_name(self.case.workload),
            self.case.keys,
            self.events,
            self.engine.name(),
            self.secs,
            self.rss_kb,
            c.rows,
            c.events,
            c.total,
            c.digest,
            self.late
        )
    }

    /// Finds and reads the line in a child's stdout.
    pub(crate) fn from_output(stdout: &str) -> Result<Measurement, String> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with(TAG))
            .ok_or_else(|| format!("no '{TAG}' line in the child's output: {stdout:?}"))?;
        let field = |name: &str| -> Result<&str, String> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .ok_or_else(|| format!("no {name}= in '{line}'"))
        };
        let num = |name: &str| -> Result<u64, String> {
            field(name)?.parse().map_err(|e| format!("{name} in '{line}': {e}"))
        };
        Ok(Measurement {
            case: Case { workload: parse_workload(field("workload")?)?, keys: num("keys")? },
            engine: Engine::parse(field("engine")?)?,
            events: num("events")?,
            secs: field("secs")?.parse().map_err(|e| format!("secs in '{line}': {e}"))?,
            rss_kb: num("rss_kb")?,
            checksum: Checksum {
                rows: num("rows")?,
                events: num("sum_count")?,
                total: num("total")?,
                digest: num("digest")?,
            },
            late: num("late")?,
        })
    }
}

/// Runs `case` over `events` events on `engine` in this process.
pub(crate) fn measure(case: Case, engine: Engine, events: u64, gap: i64) -> Result<Measurement, String> {
    let stream = StreamParams { events, keys: case.keys, ..StreamParams::default() };
    let bound = stream.disorder as i64;
    let start = Instant::now();
    let (checksum, late) = match engine {
        Engine::Baseline => {
            let out = baseline::run(case.workload, &stream, bound, gap);
            (out.checksum, out.late)
        }
        Engine::Weir(parallelism) => {
            let spec = WorkloadSpec { stream, bound, gap, parallelism, ..WorkloadSpec::new(case.workload) };
            let (builder, outputs) = workload::build(&spec);
            let job = builder.build().map_err(|e| e.to_string())?;
            job.run_blocking().map_err(|e| e.to_string())?;
            let r = outputs.result();
            (r.checksum, r.late)
        }
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(Measurement { case, engine, events, secs, rss_kb: peak_rss_kb(), checksum, late })
}

/// This process's peak resident set in KiB (`VmHWM`), 0 if unknown.
pub(crate) fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    #[test]
    fn the_line_reads_back() {
        let m = Measurement {
            case: Case { workload: Workload::Wl3, keys: 100_000 },
            engine: Engine::Weir(2),
            events: 42,
            secs: 1.5,
            rss_kb: 1234,
            checksum: Checksum { rows: 1, events: 2, total: 3, digest: u64::MAX },
            late: 0,
        };
        let back = Measurement::from_output(&format!("noise\n{}\n", m.to_line())).expect("a line");
        assert_eq!(back.to_line(), m.to_line());
    }
}
