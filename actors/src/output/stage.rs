//! Fused stateless stages: `map`, `filter`, `flat_map` run inside the
//! upstream actor, batch at a time, instead of costing a mailbox hop each
//! (Flink's operator chaining). One dynamic call per batch per stage; the
//! per-record loop is monomorphised over the user's closure.

use crate::message::Record;
use crate::output::{Blocked, Control, Emit};

/// Records a stage hands on at once: a large input (all the results of a
/// window with many keys) leaves as batches of ordinary size, so that what
/// a full mailbox holds back stays bounded by its capacity in batches.
const CHUNK: usize = 1024;

macro_rules! forward_control {
    () => {
        fn control(&mut self, ctl: Control) {
            self.inner.control(ctl)
        }
        fn flush(&mut self) {
            self.inner.flush()
        }
        fn take_blocked(&mut self) -> Option<Blocked> {
            self.inner.take_blocked()
        }
        fn is_blocked(&self) -> bool {
            self.inner.is_blocked()
        }
    };
}

/// `map`: one output per input, same timestamp.
pub(crate) struct Map<U, F> {
    f: F,
    buf: Vec<Record<U>>,
    inner: Box<dyn Emit<U>>,
}

impl<U, F> Map<U, F> {
    pub(crate) fn new(f: F, inner: Box<dyn Emit<U>>) -> Self {
        Map { f, buf: Vec::new(), inner }
    }
}

impl<T, U, F> Emit<T> for Map<U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    F: FnMut(T) -> U + Send + 'static,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        let mut rest = batch.drain(..);
        while rest.len() > 0 {
            self.buf.extend(rest.by_ref().take(CHUNK).map(|r| Record { ts: r.ts, value: (self.f)(r.value) }));
            self.inner.data(&mut self.buf);
        }
    }
    forward_control!();
}

/// `filter`: keeps the records for which the predicate holds, in place.
pub(crate) struct Filter<T, F> {
    f: F,
    inner: Box<dyn Emit<T>>,
}

impl<T, F> Filter<T, F> {
    pub(crate) fn new(f: F, inner: Box<dyn Emit<T>>) -> Self {
        Filter { f, inner }
    }
}

impl<T, F> Emit<T> for Filter<T, F>
where
    T: Send + 'static,
    F: FnMut(&T) -> bool + Send + 'static,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        batch.retain(|r| (self.f)(&r.value));
        self.inner.data(batch);
    }
    forward_control!();
}

/// `flat_map`: zero or more outputs per input, each with the input's
/// timestamp.
pub(crate) struct FlatMap<U, F> {
    f: F,
    buf: Vec<Record<U>>,
    inner: Box<dyn Emit<U>>,
}

impl<U, F> FlatMap<U, F> {
    pub(crate) fn new(f: F, inner: Box<dyn Emit<U>>) -> Self {
        FlatMap { f, buf: Vec::new(), inner }
    }
}

impl<T, U, I, F> Emit<T> for FlatMap<U, F>
where
    T: Send + 'static,
    U: Send + 'static,
    I: IntoIterator<Item = U>,
    F: FnMut(T) -> I + Send + 'static,
{
    fn data(&mut self, batch: &mut Vec<Record<T>>) {
        for r in batch.drain(..) {
            let ts = r.ts;
            self.buf.extend((self.f)(r.value).into_iter().map(|value| Record { ts, value }));
        }
        self.inner.data(&mut self.buf);
    }
    forward_control!();
}
