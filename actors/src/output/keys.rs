//! Keys a batch at a time.
//!
//! The key function of a keyed stream is type-erased, so that public types
//! (`KeyedStream<K, T>`, `WindowedStream<K, T>`) do not carry the closure's
//! type. The erasure costs one dynamic call per run of records, not per
//! record: the loops over the records — keying them, and partitioning them
//! into per-destination batches — are compiled for the user's closure.

use std::hash::Hash;
use std::vec::Drain;

use crate::message::Record;
use crate::output::edge::partition;

/// Keys the records of a batch.
pub(crate) trait BatchKeys<K, T>: Send + 'static {
    /// Appends the key of every record of `batch` to `keys`, in order.
    fn keys(&mut self, batch: &[Record<T>], keys: &mut Vec<K>);

    /// Moves every record of `batch` to `out`, each with its key.
    fn keyed_all(&mut self, batch: &mut Vec<Record<T>>, out: &mut Vec<Record<(K, T)>>);

    /// Moves up to `n` records from `records` to `out`, each with its key.
    fn keyed(&mut self, records: &mut Drain<'_, Record<T>>, n: usize, out: &mut Vec<Record<(K, T)>>);

    /// Moves up to `n` records from `records`, each with its key, to the
    /// buffer of its partition among `bufs` ([`partition`]).
    fn partition(&mut self, records: &mut Drain<'_, Record<T>>, n: usize, bufs: &mut [Vec<Record<(K, T)>>]);
}

/// A key function as [`BatchKeys`].
struct KeyOf<F>(F);

impl<K, T, F> BatchKeys<K, T> for KeyOf<F>
where
    K: Hash,
    F: Fn(&T) -> K + Send + 'static,
{
    #[inline]
    fn keys(&mut self, batch: &[Record<T>], keys: &mut Vec<K>) {
        keys.extend(batch.iter().map(|r| (self.0)(&r.value)));
    }

    #[inline]
    fn keyed_all(&mut self, batch: &mut Vec<Record<T>>, out: &mut Vec<Record<(K, T)>>) {
        // A whole drain is an exact-size iterator: `extend` writes without
        // a check per record.
        let key = &self.0;
        out.extend(batch.drain(..).map(|r| Record { ts: r.ts, value: (key(&r.value), r.value) }));
    }

    #[inline]
    fn keyed(&mut self, records: &mut Drain<'_, Record<T>>, n: usize, out: &mut Vec<Record<(K, T)>>) {
        // An exact-size iterator: `extend` writes without a check per record.
        let key = &self.0;
        out.extend(records.by_ref().take(n).map(|r| Record { ts: r.ts, value: (key(&r.value), r.value) }));
    }

    #[inline]
    fn partition(&mut self, records: &mut Drain<'_, Record<T>>, n: usize, bufs: &mut [Vec<Record<(K, T)>>]) {
        // The caller leaves room for `n` records in every buffer, so the
        // loop only hashes and appends.
        let p = bufs.len();
        for r in records.by_ref().take(n) {
            let key = (self.0)(&r.value);
            bufs[partition(&key, p)].push(Record { ts: r.ts, value: (key, r.value) });
        }
    }
}

/// Makes a key extractor for each upstream instance of a partitioning
/// edge (each gets its own clone of the key function).
pub(crate) type KeyMaker<K, T> = Box<dyn FnMut() -> Box<dyn BatchKeys<K, T>> + Send>;

/// The [`KeyMaker`] of key function `f`.
pub(crate) fn key_maker<K, T, F>(f: F) -> KeyMaker<K, T>
where
    K: Hash + 'static,
    T: 'static,
    F: Fn(&T) -> K + Clone + Send + 'static,
{
    Box::new(move || Box::new(KeyOf(f.clone())) as Box<dyn BatchKeys<K, T>>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_in_batch_order() {
        let mut make = key_maker(|v: &i64| v % 3);
        let mut keys = Vec::new();
        let batch: Vec<Record<i64>> = (0..7).map(|i| Record::new(i, i * 10 + 1)).collect();
        make().keys(&batch, &mut keys);
        assert_eq!(keys, vec![1, 2, 0, 1, 2, 0, 1]);
    }
}
