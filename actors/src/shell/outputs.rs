//! [`Outputs`]: the output ports of an actor run by the shell — none (a
//! sink), one [`Outlet`], or a pair (a window manager's results and its
//! late data). The shell forwards watermarks, idleness, barriers and end of
//! input to every port after what the core emitted, flushes them when the
//! mailbox runs dry, and waits while any of them is blocked.

use crate::message::{CheckpointId, Timestamp};
use crate::output::outlet::Outlet;
use crate::output::{join_blocked, Blocked};

/// The output ports of a [`crate::shell::Core`]: `()`, one `Outlet<T>`, or
/// a pair of outlets. Sealed: weir implements it.
pub trait Outputs: sealed::Ports {}

impl<P: sealed::Ports> Outputs for P {}

pub(crate) mod sealed {
    use super::*;

    /// What the shell does with every port.
    pub trait Ports: Send + 'static {
        /// Sends the watermark after what was emitted.
        fn watermark(&mut self, wm: Timestamp);
        /// Tells downstream this actor is idle.
        fn idle(&mut self);
        /// Forwards a barrier after what was emitted.
        fn barrier(&mut self, id: CheckpointId);
        /// Final watermark and end of input.
        fn end(&mut self);
        /// Sends partial batches.
        fn flush(&mut self);
        /// What a full mailbox refused, to be delivered before anything else.
        fn take_blocked(&mut self) -> Option<Blocked>;
    }
}

impl sealed::Ports for () {
    fn watermark(&mut self, _wm: Timestamp) {}
    fn idle(&mut self) {}
    fn barrier(&mut self, _id: CheckpointId) {}
    fn end(&mut self) {}
    fn flush(&mut self) {}
    fn take_blocked(&mut self) -> Option<Blocked> {
        None
    }
}

impl<T: Send + 'static> sealed::Ports for Outlet<T> {
    fn watermark(&mut self, wm: Timestamp) {
        Outlet::watermark(self, wm);
    }
    fn idle(&mut self) {
        Outlet::idle(self);
    }
    fn barrier(&mut self, id: CheckpointId) {
        Outlet::barrier(self, id);
    }
    fn end(&mut self) {
        Outlet::end(self);
    }
    fn flush(&mut self) {
        Outlet::flush(self);
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        Outlet::take_blocked(self)
    }
}

impl<A: sealed::Ports, B: sealed::Ports> sealed::Ports for (A, B) {
    fn watermark(&mut self, wm: Timestamp) {
        self.0.watermark(wm);
        self.1.watermark(wm);
    }
    fn idle(&mut self) {
        self.0.idle();
        self.1.idle();
    }
    fn barrier(&mut self, id: CheckpointId) {
        self.0.barrier(id);
        self.1.barrier(id);
    }
    fn end(&mut self) {
        self.0.end();
        self.1.end();
    }
    fn flush(&mut self) {
        self.0.flush();
        self.1.flush();
    }
    fn take_blocked(&mut self) -> Option<Blocked> {
        join_blocked([self.0.take_blocked(), self.1.take_blocked()])
    }
}
