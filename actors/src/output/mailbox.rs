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
//! full mailbox (measured at p = 2: sources spent half the run blocked that
//! way).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// The mailbox gauge of one actor.
#[derive(Debug, Default)]
pub(crate) struct MailboxGauge {
    queued: AtomicUsize,
    room: Notify,
}

impl MailboxGauge {
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
        // Saturating: a plain actor may report a message it was sent
        // directly, not through a counted edge.
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
}
