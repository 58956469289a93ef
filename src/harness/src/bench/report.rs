//! The results of a suite: one row per (case, engine) with the median of
//! its runs, as a table for people and as JSON for tools.

use std::fmt::Write as _;

use crate::workload::{Checksum, StreamParams};

use super::check::check_value;
use super::child::Measurement;
use super::suite::Plan;
use super::{workload_name, Case, Engine};

/// One (case, engine) row.
#[derive(Debug)]
struct Row {
    case: Case,
    engine: Engine,
    /// Events per second of each run, in run order.
    rates: Vec<f64>,
    median: f64,
    /// The largest peak RSS of its runs, KiB.
    rss_kb: u64,
    /// The first run's checksum.
    checksum: Checksum,
    /// Every run's checksum equals the baseline's first.
    agrees: bool,
    /// Every run's checksum equals the WORKLOAD.md value (`None`: the table
    /// has none for this run).
    check: Option<bool>,
    late: u64,
}

/// The rows of a suite, cases in plan order, engines in plan order.
#[derive(Debug)]
pub(crate) struct Report {
    events: u64,
    runs: usize,
    gap: i64,
    rows: Vec<Row>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Report {
    pub(crate) fn new(plan: &Plan, engines: &[Engine], measurements: Vec<Measurement>) -> Self {
        let mut rows = Vec::new();
        for &case in &plan.cases {
            let of = |engine: Engine| measurements.iter().filter(move |m| m.case == case && m.engine == engine);
            let reference = of(Engine::Baseline).next().map(|m| m.checksum);
            let params = StreamParams { events: plan.events, keys: case.keys, ..StreamParams::default() };
            let expected = check_value(case.workload, &params, params.disorder as i64, plan.gap);
            for &engine in engines {
                let ms: Vec<&Measurement> = of(engine).collect();
                let Some(first) = ms.first() else { continue };
                let rates: Vec<f64> = ms.iter().map(|m| m.events_per_sec()).collect();
                rows.push(Row {
                    case,
                    engine,
                    median: median(rates.clone()),
                    rates,
                    rss_kb: ms.iter().map(|m| m.rss_kb).max().unwrap_or(0),
                    checksum: first.checksum,
                    agrees: reference.is_some_and(|r| ms.iter().all(|m| m.checksum == r)),
                    check: expected.map(|want| ms.iter().all(|m| m.checksum == want)),
                    late: ms.iter().map(|m| m.late).max().unwrap_or(0),
                });
            }
        }
        Report { events: plan.events, runs: plan.runs, gap: plan.gap, rows }
    }

    /// Whether every checksum equals its baseline's (and the check value,
    /// where there is one).
    pub(crate) fn all_agree(&self) -> bool {
        self.rows.iter().all(|r| r.agrees && r.check != Some(false))
    }

    fn row(&self, case: Case, engine: Engine) -> Option<&Row> {
        self.rows.iter().find(|r| r.case == case && r.engine == engine)
    }

    /// `median / baseline median` and, for weir at p > 1, `median / weir
    /// p=1 median`.
    fn ratios(&self, r: &Row) -> (Option<f64>, Option<f64>) {
        let base = self.row(r.case, Engine::Baseline).map(|b| r.median / b.median);
        let p1 = match r.engine {
            Engine::Weir(p) if p > 1 => self.row(r.case, Engine::Weir(1)).map(|one| r.median / one.median),
            _ => None,
        };
        (base, p1)
    }

    /// The table (Markdown), then each case's checksum.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "N = {} events, median of {} run(s); M events/s of wall time, build to end",
            self.events, self.runs
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| workload | K | engine | M events/s | min–max | vs baseline | p=N / p=1 | peak RSS MB | checksum |"
        );
        let _ = writeln!(
            s,
            "|----------|---|--------|-----------:|---------|------------:|----------:|------------:|----------|"
        );
        for r in &self.rows {
            let (base, p1) = self.ratios(r);
            let lo = r.rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.rates.iter().copied().fold(0.0, f64::max);
            let mut verdict = if r.engine == Engine::Baseline {
                "reference".to_string()
            } else if r.agrees {
                "= baseline".to_string()
            } else {
                "DIFFERS from baseline".to_string()
            };
            match r.check {
                Some(true) => verdict.push_str(", = WORKLOAD.md"),
                Some(false) => verdict.push_str(", DIFFERS from WORKLOAD.md"),
                None => {}
            }
            if r.late > 0 {
                let _ = write!(verdict, ", {} late", r.late);
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2}–{:.2} | {} | {} | {:.0} | {} |",
                workload_name(r.case.workload),
                r.case.keys,
                r.engine.label(),
                r.median / 1e6,
                lo / 1e6,
                hi / 1e6,
                base.map_or("".into(), |x| format!("{x:.2}")),
                p1.map_or("".into(), |x| format!("{x:.2}")),
                r.rss_kb as f64 / 1024.0,
                verdict
            );
        }
        let _ = writeln!(s);
        for r in self.rows.iter().filter(|r| r.engine == Engine::Baseline) {
            let _ = writeln!(s, "checksum {} K={}: {}", workload_name(r.case.workload), r.case.keys, r.checksum);
        }
        s
    }

    /// The results as JSON.
    pub(crate) fn json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\n  \"events\": {},\n  \"runs\": {},\n  \"gap\": {},\n  \"results\": [",
            self.events, self.runs, self.gap
        );
        for (i, r) in self.rows.iter().enumerate() {
            let (base, p1) = self.ratios(r);
            let num = |x: Option<f64>| x.map_or("null".to_string(), |x| format!("{x:.4}"));
            let rates: Vec<String> = r.rates.iter().map(|x| format!("{x:.0}")).collect();
            let (engine, parallelism) = match r.engine {
                Engine::Baseline => ("baseline", "null".to_string()),
                Engine::Weir(p) => ("weir", p.to_string()),
            };
            let _ = write!(
                s,
                "{}\n    {{\"workload\": \"{}\", \"keys\": {}, \"engine\": \"{}\", \"parallelism\": {}, \
                 \"events_per_sec_median\": {:.0}, \"events_per_sec\": [{}], \"ratio_to_baseline\": {}, \
                 \"ratio_to_p1\": {}, \"peak_rss_kb\": {}, \"checksum\": \"{}\", \"late\": {}, \
                 \"agrees_with_baseline\": {}, \"matches_check_value\": {}}}",
                if i == 0 { "" } else { "," },
                workload_name(r.case.workload),
                r.case.keys,
                engine,
                parallelism,
                r.median,
                rates.join(", "),
                num(base),
                num(p1),
                r.rss_kb,
                r.checksum,
                r.late,
                r.agrees,
                r.check.map_or("null".to_string(), |b| b.to_string()),
            );
        }
        s.push_str("\n  ]\n}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
