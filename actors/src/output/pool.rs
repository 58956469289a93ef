//! Batch buffer reuse on an edge.
//!
//! A sender fills a `Vec` of records and sends it; the receiver drains it.
//! Without reuse every batch is a fresh allocation, written while cold (a
//! page fault now and then, a cache miss per line) and freed on another
//! thread. A [`BatchPool`] belongs to a receiving actor: it hands its
//! drained buffers back to the pool, and the senders that feed it take
//! their next buffer from there. One lock per batch, never per record.
//!
//! Buffers go back to the sender that filled them (the receiver knows it by
//! the input index of the envelope), most recently drained first: a buffer
//! of a sender on the receiver's own thread stays in that core's cache, and
//! one from another thread returns to the core that wrote it. A pool shared
//! by all senders would make each sender write into lines another core held
//! last, a cache-coherence miss per line.

use std::sync::Mutex;

use crate::message::Record;

/// Buffers kept at most per sender: enough for a full mailbox, bounded so
/// that a burst does not keep memory forever.
const MAX_POOLED: usize = 32;

/// Empty batch buffers of one receiver, per sender (input index), for the
/// senders to fill again.
#[derive(Debug)]
pub(crate) struct BatchPool<T> {
    free: Mutex<Vec<Vec<Vec<Record<T>>>>>,
}

impl<T> Default for BatchPool<T> {
    fn default() -> Self {
        BatchPool { free: Mutex::new(Vec::new()) }
    }
}

impl<T> BatchPool<T> {
    /// An empty buffer with room for `capacity` records for the sender of
    /// input `input`: one it filled before if there is one large enough,
    /// else a new one.
    pub(crate) fn take(&self, input: usize, capacity: usize) -> Vec<Record<T>> {
        let reused = self.free.lock().ok().and_then(|mut free| free.get_mut(input).and_then(Vec::pop));
        match reused {
            Some(v) if v.capacity() >= capacity => v,
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Hands back a drained buffer that came from input `input` (emptied
    /// here if it is not).
    pub(crate) fn put(&self, input: usize, mut buffer: Vec<Record<T>>) {
        buffer.clear();
        if buffer.capacity() == 0 {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() <= input {
                free.resize_with(input + 1, Vec::new);
            }
            if free[input].len() < MAX_POOLED {
                free[input].push(buffer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returned_buffers_are_reused_empty_and_bounded() {
        let pool: BatchPool<u8> = BatchPool::default();
        let mut v = pool.take(1, 8);
        v.push(Record { ts: 1, value: 1 });
        let ptr = v.as_ptr();
        pool.put(1, v);
        // Another sender does not get it.
        let other = pool.take(0, 8);
        assert_ne!(other.as_ptr(), ptr);
        let again = pool.take(1, 8);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0));
        // Too small for the request: a new buffer.
        pool.put(1, again);
        assert!(pool.take(1, 64).capacity() >= 64);
        for _ in 0..MAX_POOLED + 10 {
            pool.put(0, Vec::with_capacity(4));
        }
        assert_eq!(pool.free.lock().map(|f| f[0].len()).unwrap_or(0), MAX_POOLED);
    }
}
