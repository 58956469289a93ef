//! [`MailboxGauge`]: how many messages wait in an actor's mailbox, and the
//! signal a blocked sender waits on.
//!
//! Senders raise the count before offering a message and lower it again if
//! the mailbox refused it; the actor lowers it when it takes a message and
//! then wakes every sender waiting for room. A sender whose `try_send` met
//! a full mailbox (actix parks it until the receiver takes a message) waits
//! on [`MailboxGauge::room`] and tries again: it resumes at the receiver's
//! next message, not — as `Recipient::send(..).await` would — only once the
//! receiver has *handled* the held message, which sits at the back of a
//! full mailbox.
//!
//! The gauge also carries the receiver's *paused inputs*: while a barrier
//! alignment holds back an input (see `checkpoint::align`), the receiver
//! pauses that input once the records it holds reach the configured cap;
//! a sender on that input then keeps its messages as if the mailbox were
//! full, until the alignment completes and the receiver resumes every
//! input. Only messages sent after the input's barrier are held that way
//! (the receiver pauses an input only once its barrier has arrived), so
//! the barriers of the other inputs still come through.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The mailbox gauge of one actor.
#[derive(Debug, Default)]
pub(crate) struct MailboxGauge {
    queued: AtomicUsize,
    room: Notify,
    /// Whether any input is paused (the senders' fast check).
    any_paused: AtomicBool,
    /// The paused inputs.
    paused: Mutex<BTreeSet<usize>>,
    /// Woken when the paused inputs resume.
    resumed: Notify,
    /// The thread the actor runs on, once it started.
    home: OnceLock<ThreadId>,
}

impl MailboxGauge {
    /// The actor runs on the calling thread (set once, when it starts).
    pub(crate) fn set_home(&self) {
        let _ = self.home.set(std::thread::current().id());
    }

    /// Whether the actor runs on another thread than the caller (or is
    /// not known to run on the caller's).
    pub(crate) fn is_elsewhere(&self) -> bool {
        match self.home.get() {
            Some(home) => *home != std::thread::current().id(),
            None => true,
        }
    }

    /// Messages queued now.
    pub(crate) fn len(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// A sender is about to offer a message.
    pub(crate) fn offered(&self) {
        self.queued.fetch_add(1, Relaxed);
    }

    /// The offered message was refused (full, or the receiver has stopped).
    pub(crate) fn refused(&self) {
        self.taken_quietly();
    }

    /// The actor took a message: one fewer queued, and every sender waiting
    /// for room tries again. (Cheap when nobody waits: an atomic load and
    /// add, once per message, never per record.)
    pub(crate) fn taken(&self) {
        self.taken_quietly();
        self.room.notify_waiters();
    }

    fn taken_quietly(&self) {
        // Saturating: the count never goes below zero, whatever the order
        // in which a refusal and a take are seen.
        let _ = self.queued.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Completes at the receiver's next [`MailboxGauge::taken`] after this
    /// call. Create it *before* trying again, then await it if the mailbox
    /// is still full: a message taken in between still wakes it (tokio's
    /// `notify_waiters` reaches every `Notified` created before it), so no
    /// wake-up is lost.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// Whether the receiver holds back what `input` sends (one relaxed
    /// load when no input is paused, once per message).
    #[inline]
    pub(crate) fn is_paused(&self, input: usize) -> bool {
        self.any_paused.load(Relaxed) && self.paused.lock().map(|p| p.contains(&input)).unwrap_or(false)
    }

    /// The receiver holds back what `input` sends from now on.
    pub(crate) fn pause(&self, input: usize) {
        if let Ok(mut p) = self.paused.lock() {
            p.insert(input);
            self.any_paused.store(true, Relaxed);
        }
    }

    /// Every paused input may send again; waiting senders are woken.
    pub(crate) fn resume_all(&self) {
        if !self.any_paused.load(Relaxed) {
            return;
        }
        if let Ok(mut p) = self.paused.lock() {
            p.clear();
            self.any_paused.store(false, Relaxed);
        }
        self.resumed.notify_waiters();
    }

    /// Completes once `input` is no longer paused.
    pub(crate) async fn unpaused(&self, input: usize) {
        loop {
            // Created before the check: a resume in between still wakes it.
            let resumed = self.resumed.notified();
            if !self.is_paused(input) {
                return;
            }
            resumed.await;
        }
    }
}
