//! A group worker on the web layer (cargo features `web` and `nats`):
//! `GET /api/status` shows its [`WorkerStatus`], `/metrics` its gauges,
//! and the job list follows the jobs of the partitions it runs.

use ::prometheus::core::{Collector, Desc};
use ::prometheus::proto::MetricFamily;
use ::prometheus::{GaugeVec, Opts};

use crate::nats::{WorkerStatus, WorkerView};

/// Labels of per-worker series.
const WORKER_LABELS: [&str; 2] = ["group", "member"];
/// Labels of per-partition series.
const PARTITION_LABELS: [&str; 3] = ["group", "member", "partition"];

/// A gauge family; names and labels are the constants of this module,
/// valid by construction.
fn gauge(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge name and labels")
}

/// The worker's series, read from its status at each scrape.
pub(crate) struct WorkerCollector {
    status: WorkerStatus,
    template: Vec<GaugeVec>,
}

/// (name, help, per partition, read).
type Series = (&'static str, &'static str, bool, fn(&WorkerView, usize) -> Option<f64>);

const SERIES: &[Series] = &[
    ("weir_worker_generation", "Generation of the assignment the worker last acted on.", false, |v, _| {
        Some(v.generation as f64)
    }),
    ("weir_worker_members", "Members of the group that own partitions.", false, |v, _| Some(v.members as f64)),
    ("weir_worker_partitions", "Partitions of the input.", false, |v, _| Some(v.partitions as f64)),
    ("weir_worker_partitions_owned", "Partitions this worker runs.", false, |v, _| Some(v.owned.len() as f64)),
    ("weir_worker_partitions_done", "Partitions done, by any member.", false, |v, _| Some(v.done as f64)),
    ("weir_worker_partition_epoch", "Epoch of the worker's claim on the partition.", true, |v, i| {
        Some(v.owned[i].epoch as f64)
    }),
    (
        "weir_worker_partition_checkpoint",
        "Sequence of the partition's newest complete checkpoint (absent before the first).",
        true,
        |v, i| v.owned[i].checkpoint.map(|c| c as f64),
    ),
    (
        "weir_worker_partition_lag_messages",
        "Input messages of the partition after the last one its source took (absent before the first).",
        true,
        |v, i| v.owned[i].lag_messages.map(|l| l as f64),
    ),
];

impl WorkerCollector {
    pub(crate) fn new(status: WorkerStatus) -> Self {
        WorkerCollector { status, template: Self::families() }
    }

    fn families() -> Vec<GaugeVec> {
        SERIES
            .iter()
            .map(|(name, help, per_partition, _)| {
                gauge(name, help, if *per_partition { &PARTITION_LABELS } else { &WORKER_LABELS })
            })
            .collect()
    }
}

impl Collector for WorkerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.template.iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let v = self.status.view();
        let families = Self::families();
        for ((_, _, per_partition, read), fam) in SERIES.iter().zip(&families) {
            if *per_partition {
                for (i, p) in v.owned.iter().enumerate() {
                    if let Some(x) = read(&v, i) {
                        let partition = p.partition.to_string();
                        fam.with_label_values(&[v.group.as_str(), v.member.as_str(), partition.as_str()]).set(x);
                    }
                }
            } else if let Some(x) = read(&v, 0) {
                fam.with_label_values(&[v.group.as_str(), v.member.as_str()]).set(x);
            }
        }
        families.iter().flat_map(|g| g.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_show_the_worker_and_each_of_its_partitions() {
        let status = WorkerStatus::new();
        let registry = ::prometheus::Registry::new();
        registry.register(Box::new(WorkerCollector::new(status.clone()))).unwrap();
        status.update(|v| (v.group, v.member, v.generation, v.partitions) = ("g".into(), "m".into(), 4, 8));
        let gauge = status.lag(5);
        status.test_own(5, 2);
        gauge.store(17, std::sync::atomic::Ordering::Relaxed);
        let text = {
            let mut buf = Vec::new();
            ::prometheus::Encoder::encode(&::prometheus::TextEncoder::new(), &registry.gather(), &mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(text.contains("weir_worker_generation{group=\"g\",member=\"m\"} 4"), "{text}");
        assert!(text.contains("weir_worker_partitions_owned{group=\"g\",member=\"m\"} 1"), "{text}");
        assert!(
            text.contains("weir_worker_partition_lag_messages{group=\"g\",member=\"m\",partition=\"5\"} 17"),
            "{text}"
        );
        assert!(text.contains("weir_worker_partition_epoch{group=\"g\",member=\"m\",partition=\"5\"} 2"), "{text}");
        assert!(!text.contains("weir_worker_partition_checkpoint{"), "no checkpoint yet: {text}");
    }
}
