//! Property tests of phase one of a restore (`Restorer`) given snapshots
//! that are arbitrary bytes or real snapshots with random edits: an
//! operator's (its state, timers and watermark), a window manager's and a
//! source's (its position and watermark). Never a panic: the restore is
//! refused with [`JobError::Restore`] naming the checkpoint, its directory
//! and the actor, and saying what did not decode or fit; or it is
//! accepted, and the operator then runs to its end.
//!
//! No case is skipped: there is no `prop_assume!` here.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::checkpoint::Snapshot;
use crate::edits::{edit, edited};
use crate::error::{JobError, SnapshotError};
use crate::message::{CheckpointId, Record};
use crate::operator::{Collector, Operator, OperatorContext, OperatorCore, OperatorHarness};
use crate::source::actor::SourceSnapshot;
use crate::spawn::Restorer;
use crate::window::core::WindowCore;
use crate::window::{Count, Sum, WindowOptions, Windows};
use crate::window_manager::WindowManager;

/// The checkpoint and directory every refusal must name.
const SEQ: u64 = 7;
const DIR: &str = "/checkpoints/job";

/// Remembers the values it saw and emits each again 10 ms later (a timer).
#[derive(Debug, Default)]
struct Echo {
    seen: Vec<u64>,
}

impl Operator for Echo {
    type In = u64;
    type Out = u64;
    fn process(&mut self, batch: &mut Vec<Record<u64>>, ctx: &mut OperatorContext, out: &mut Collector<'_, u64>) {
        for r in batch.drain(..) {
            self.seen.push(r.value);
            ctx.register_timer(r.ts.saturating_add(10));
            out.emit(r.ts, r.value);
        }
    }
    fn on_timer(&mut self, at: i64, _ctx: &mut OperatorContext, out: &mut Collector<'_, u64>) {
        out.emit(at, self.seen.len() as u64);
    }
    fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        Snapshot::encode(&self.seen)
    }
    fn restore(&mut self, state: &Snapshot) -> Result<(), SnapshotError> {
        self.seen = state.decode()?;
        Ok(())
    }
}

fn records(values: &[(i64, u64)]) -> Vec<Record<u64>> {
    values.iter().map(|&(ts, v)| Record::new(ts, v)).collect()
}

/// A restorer holding `bytes` as the snapshot of `actor` in checkpoint
/// [`SEQ`] of [`DIR`].
fn restorer(actor: &str, bytes: Vec<u8>) -> Restorer {
    let id = CheckpointId { job: uuid::Uuid::nil(), seq: SEQ };
    Restorer::new(true, Some((id, HashMap::from([(actor.to_owned(), bytes)]))), DIR.to_owned())
}

/// Checks a refusal: it names the checkpoint, the directory and the actor.
fn refused(e: JobError, actor: &str) -> Result<(), TestCaseError> {
    let text = e.to_string();
    match e {
        JobError::Restore { checkpoint, dir, reason } => {
            prop_assert_eq!(checkpoint, SEQ);
            prop_assert_eq!(dir, DIR);
            prop_assert!(reason.starts_with(&format!("{actor}: ")), "{}", reason);
            prop_assert!(reason.contains("does not decode") || reason.contains("does not fit"), "{}", reason);
            prop_assert!(text.contains(DIR) && text.contains(actor), "{}", text);
        }
        other => prop_assert!(false, "not a refused restore: {other:?}"),
    }
    Ok(())
}

/// An operator restored from `bytes` through the restorer: refused, or
/// it resumes (the harness restores the same bytes alike) and runs on.
fn restore_operator(bytes: Vec<u8>, rest: &[(i64, u64)]) -> Result<(), TestCaseError> {
    let mut r = restorer("echo#0", bytes.clone());
    let mut core = OperatorCore::new(Echo::default());
    match r.restore_core("echo#0", &mut core) {
        Err(e) => refused(e, "echo#0")?,
        Ok(()) => {
            let mut h = OperatorHarness::restored(Echo::default(), &Snapshot::from_bytes(bytes))
                .expect("the harness restores it too");
            h.process(records(rest));
            h.end();
            let _ = h.take_output();
        }
    }
    Ok(())
}

type Manager = WindowManager<u32, i64, (Count, Sum<fn(&i64) -> i64>), (u32, i64)>;

fn window_manager() -> Manager {
    let agg = (Count, Sum::of((|v: &i64| *v) as fn(&i64) -> i64));
    let options = WindowOptions::default();
    WindowManager::new(WindowCore::new(Windows::tumbling(10), options, agg), options, true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn an_edited_operator_snapshot_is_refused_naming_the_actor_or_runs_to_its_end(
        before in prop::collection::vec((-5i64..50, any::<u64>()), 0..12), wm in -10i64..60,
        after in prop::collection::vec((-5i64..80, any::<u64>()), 0..12),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let mut h = OperatorHarness::new(Echo::default());
        h.process(records(&before));
        h.watermark(wm);
        let bytes = edited(h.snapshot().expect("encodes").into_bytes(), &edits);
        restore_operator(bytes, &after)?;
    }

    #[test]
    fn arbitrary_bytes_as_any_snapshot_are_refused_naming_the_actor(bytes in prop::collection::vec(any::<u8>(), 1..48)) {
        restore_operator(bytes.clone(), &[(1, 1)])?;
        let mut manager = window_manager();
        if let Err(e) = restorer("window#0", bytes.clone()).restore_core("window#0", &mut manager) {
            refused(e, "window#0")?;
        }
        // A source's snapshot decodes before its source seeks (the job
        // names the source when it refuses).
        if let Err(e) = Snapshot::from_bytes(bytes).decode::<SourceSnapshot>() {
            prop_assert!(e.to_string().contains("SourceSnapshot") && e.to_string().contains("does not decode"), "{}", e);
        }
    }
}
