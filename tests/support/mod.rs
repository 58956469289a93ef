//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Waits until `cond` holds, polling every few milliseconds; fails the test
/// naming `what` after `timeout`.
pub(crate) fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on a thread of its own and returns its result, failing the
/// test if it takes longer than `timeout` (a hang is a failure, not a
/// stuck test run).
pub(crate) fn within<R: Send + 'static>(timeout: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => panic!("did not finish within {timeout:?}: the job hangs"),
    }
}
