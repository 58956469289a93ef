//! Public handles are `Send`/`Sync` where users need to move or share them.

use weir::prelude::*;
use weir::{BuildError, Job, JobError, JobHandle, JobMetrics, PushHandle};

fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    send::<Job>();
    send::<JobBuilder>();
    sync::<JobBuilder>();
    send::<JobHandle>();
    sync::<JobHandle>();
    send::<PushHandle<u64>>();
    sync::<PushHandle<u64>>();
    send::<weir::Collected<u64>>();
    sync::<weir::Collected<u64>>();
    send::<JobMetrics>();
    sync::<JobMetrics>();
    send::<BuildError>();
    sync::<BuildError>();
    send::<JobError>();
    sync::<JobError>();
    send::<Stream<u64>>();
    send::<WindowResult<u64, u64>>();
}
