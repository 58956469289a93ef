//! [`StartGate`]: sources read nothing until every actor of the job exists.
//!
//! `start_in_arbiter` returns an address at once and creates the actor
//! later, on its thread; until its creation closure has run (and set the
//! mailbox capacity), its mailbox has actix's default capacity, not the
//! job's. A source that started reading before its downstream actors
//! existed could fill their mailboxes past the job's bound. Every actor
//! started through the spawner is expected here and arrives from its
//! creation closure; sources open their pump only once none is missing.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts actors whose creation closure has not run yet.
#[derive(Debug, Default)]
pub(crate) struct StartGate {
    pending: AtomicUsize,
    open: Notify,
}

impl StartGate {
    /// An actor is about to be started.
    pub(crate) fn expect(&self) {
        self.pending.fetch_add(1, SeqCst);
    }

    /// An expected actor has been created.
    pub(crate) fn arrived(&self) {
        if self.pending.fetch_sub(1, SeqCst) == 1 {
            self.open.notify_waiters();
        }
    }

    /// Completes once every expected actor has arrived. (Downstream actors
    /// are started before their upstreams, so when a source asks, all of
    /// its downstream actors are expected.)
    pub(crate) async fn opened(self: Arc<Self>) {
        loop {
            // Created before the check: an arrival in between still wakes
            // it.
            let notified = self.open.notified();
            if self.pending.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
