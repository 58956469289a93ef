//! Fan-out: one output feeding several consumers, each getting every
//! record.
//!
//! A [`Broadcast`] sits where a stream forks (`Stream::fan_out`): every
//! batch goes to each branch's edge, control messages too, and the actor
//! waits while any branch is blocked — so the slowest consumer paces the
//! producer. Branches whose edge passes batches on whole (a branch without
//! fused stages or `key_by`) to an actor on another thread share the
//! batch: one [`SharedBatch`] travels to all of them, and a consumer
//! copies records only if another still holds the batch when it takes
//! them — on its own thread, not the producer's. Every other branch takes
//! a copy made here, while the batch is in cache (records cloned); with
//! no branch sharing, the last takes the batch itself.

use crate::message::{Record, SharedBatch};
use crate::output::{join_blocked, Blocked, Control, Emit};

/// Sends everything to every branch.
pub(crate) struct Broadcast<T> {
    branches: Vec<Box<dyn Emit<T>>>,
    /// The copy handed to each branch but the last (reused).
    copy: Vec<Record<T>>,
}

impl<T> Broadcast<T> {
    pub(crate) fn new(branches: Vec<Box<dyn Emit<T>>>) -> Self {
        Broadcast { branches, copy: Vec::new() }
    }
}

impl<T: Clone + Send + 'static> Emit<T> for Broadcast<T> {
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        if batch.is_empty() {
            return;
        }
        let sharing = self.branches.iter().filter(|b| b.takes_shared()).count();
        // Branches that do not share get a copy made now; the batch itself
        // goes to the one that shares, or is shared by several, or (none
        // shares) goes to the last branch.
        let last = self.branches.len().saturating_sub(1);
        for (i, b) in self.branches.iter_mut().enumerate() {
            let copied = match sharing {
                0 => i != last,
                _ => !b.takes_shared(),
            };
            if copied {
                self.copy.clear();
                self.copy.extend_from_slice(batch);
                b.data(&mut self.copy);
            }
        }
        match sharing {
            0 | 1 => {
                let taker = if sharing == 0 {
                    self.branches.last_mut()
                } else {
                    self.branches.iter_mut().find(|b| b.takes_shared())
                };
                match taker {
                    Some(b) => b.data(batch),
                    None => batch.clear(),
                }
            }
            _ => {
                // The caller fills its buffer again: leave it one as large.
                let shared = SharedBatch::new(std::mem::replace(batch, Vec::with_capacity(batch.capacity())));
                for b in self.branches.iter_mut().filter(|b| b.takes_shared()) {
                    b.shared(shared.clone());
                }
            }
        }
    }
    fn control(&mut self, ctl: Control) {
        for b in &mut self.branches {
            b.control(ctl);
        }
    }
    fn flush(&mut self) {
        for b in &mut self.branches {
            b.flush();
        }
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        join_blocked(self.branches.iter_mut().map(|b| b.take_blocked()))
    }
    fn is_blocked(&self) -> bool {
        self.branches.iter().any(|b| b.is_blocked())
    }
}

/// Routes `Either` records to two outputs without copying: `Left` values
/// to the first, `Right` values to the second (`Stream::split`, the side
/// outputs of any operator).
pub(crate) struct Split<A, B> {
    left: Box<dyn Emit<A>>,
    right: Box<dyn Emit<B>>,
    lefts: Vec<Record<A>>,
    rights: Vec<Record<B>>,
}

impl<A, B> Split<A, B> {
    pub(crate) fn new(left: Box<dyn Emit<A>>, right: Box<dyn Emit<B>>) -> Self {
        Split { left, right, lefts: Vec::new(), rights: Vec::new() }
    }
}

impl<A: Send + 'static, B: Send + 'static> Emit<crate::join::Either<A, B>> for Split<A, B> {
    fn data(&mut self, batch: &mut Vec<Record<crate::join::Either<A, B>>>) {
        use crate::join::Either;
        for r in batch.drain(..) {
            match r.value {
                Either::Left(a) => self.lefts.push(Record { ts: r.ts, value: a }),
                Either::Right(b) => self.rights.push(Record { ts: r.ts, value: b }),
            }
        }
        if !self.lefts.is_empty() {
            self.left.data(&mut self.lefts);
        }
        if !self.rights.is_empty() {
            self.right.data(&mut self.rights);
        }
    }
    fn control(&mut self, ctl: Control) {
        self.left.control(ctl);
        self.right.control(ctl);
    }
    fn flush(&mut self) {
        self.left.flush();
        self.right.flush();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        join_blocked([self.left.take_blocked(), self.right.take_blocked()])
    }
    fn is_blocked(&self) -> bool {
        self.left.is_blocked() || self.right.is_blocked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records what it is given.
    struct Tape(Arc<Mutex<Vec<String>>>);

    impl Emit<u32> for Tape {
        fn data(&mut self, batch: &mut Vec<Record<u32>>) {
            let mut t = self.0.lock().unwrap();
            t.extend(batch.drain(..).map(|r| format!("{}@{}", r.value, r.ts)));
        }
        fn control(&mut self, ctl: Control) {
            self.0.lock().unwrap().push(format!("{ctl:?}"));
        }
        fn flush(&mut self) {}
        fn take_blocked(&mut self) -> Option<Blocked> {
            None
        }
    }

    #[test]
    fn every_branch_gets_every_record_and_control_message_in_order() {
        let tapes: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        let mut b = Broadcast::new(tapes.iter().map(|t| Box::new(Tape(Arc::clone(t))) as Box<dyn Emit<u32>>).collect());
        let mut batch = vec![Record::new(1, 10), Record::new(2, 20)];
        b.data(&mut batch);
        assert!(batch.is_empty(), "the last branch takes the batch itself");
        b.control(Control::Watermark(5));
        b.data(&mut vec![Record::new(6, 30)]);
        b.control(Control::End);
        for t in &tapes {
            assert_eq!(*t.lock().unwrap(), ["10@1", "20@2", "Watermark(5)", "30@6", "End"]);
        }
    }

    /// Passes batches on whole: keeps the shared batches it is given.
    struct Whole(Arc<Mutex<Vec<SharedBatch<u32>>>>);

    impl Emit<u32> for Whole {
        fn data(&mut self, batch: &mut Vec<Record<u32>>) {
            self.0.lock().unwrap().push(SharedBatch::new(std::mem::take(batch)));
        }
        fn control(&mut self, _ctl: Control) {}
        fn flush(&mut self) {}
        fn take_blocked(&mut self) -> Option<Blocked> {
            None
        }
        fn takes_shared(&self) -> bool {
            true
        }
        fn shared(&mut self, batch: SharedBatch<u32>) {
            self.0.lock().unwrap().push(batch);
        }
    }

    #[test]
    fn branches_that_pass_batches_on_whole_share_one_batch_and_the_others_get_copies() {
        let wholes: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        let tape = Arc::new(Mutex::new(Vec::new()));
        let mut branches: Vec<Box<dyn Emit<u32>>> =
            wholes.iter().map(|w| Box::new(Whole(Arc::clone(w))) as Box<dyn Emit<u32>>).collect();
        branches.insert(1, Box::new(Tape(Arc::clone(&tape))));
        let mut b = Broadcast::new(branches);
        let mut batch = vec![Record::new(1, 10), Record::new(2, 20)];
        let allocation = batch.as_ptr();
        b.data(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(*tape.lock().unwrap(), ["10@1", "20@2"], "a branch with stages gets a copy");
        let first = wholes[0].lock().unwrap().pop().expect("a shared batch");
        let second = wholes[1].lock().unwrap().pop().expect("a shared batch");
        assert_eq!(first, second);
        // The first consumer to take it copies (the other still reads it);
        // the last takes the producer's batch itself.
        let copied = first.into_vec();
        assert_ne!(copied.as_ptr(), allocation);
        let owned = second.into_vec();
        assert_eq!(owned.as_ptr(), allocation, "the last holder gets the batch, not a copy");
        assert_eq!(copied, owned);
    }
}
