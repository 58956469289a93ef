//! Batch buffer reuse on an edge.
//!
//! A sender fills a `Vec` of records and sends it; the receiver drains it.
//! Without reuse every batch is a fresh allocation, written while cold (a
//! page fault now and then, a cache miss per line) and freed on another
//! thread. A [`BatchPool`] belongs to a receiving actor: it hands its
//! drained buffers back to the pool, and the senders that feed it take
//! their next buffer from there. One lock per batch, never per record.

use std::sync::Mutex;

use crate::message::Record;

/// Buffers kept at most: enough for a full mailbox, bounded so that a burst
/// does not keep memory forever.
const MAX_POOLED: usize = 32;

/// Empty batch buffers of one receiver, for its senders to fill again.
#[derive(Debug)]
pub(crate) struct BatchPool<T> {
    free: Mutex<Vec<Vec<Record<T>>>>,
}

impl<T> Default for BatchPool<T> {
    fn default() -> Self {
        BatchPool { free: Mutex::new(Vec::new()) }
    }
}

impl<T> BatchPool<T> {
    /// An empty buffer with room for `capacity` records: a returned one if
    /// there is one large enough, else a new one.
    pub(crate) fn take(&self, capacity: usize) -> Vec<Record<T>> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some(v) if v.capacity() >= capacity => v,
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Hands back a drained buffer (emptied here if it is not).
    pub(crate) fn put(&self, mut buffer: Vec<Record<T>>) {
        buffer.clear();
        if buffer.capacity() == 0 {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < MAX_POOLED {
                free.push(buffer);
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
        let mut v = pool.take(8);
        v.push(Record { ts: 1, value: 1 });
        let ptr = v.as_ptr();
        pool.put(v);
        let again = pool.take(8);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0));
        // Too small for the request: a new buffer.
        pool.put(again);
        assert!(pool.take(64).capacity() >= 64);
        for _ in 0..MAX_POOLED + 10 {
            pool.put(Vec::with_capacity(4));
        }
        assert_eq!(pool.free.lock().map(|f| f.len()).unwrap_or(0), MAX_POOLED);
    }
}
