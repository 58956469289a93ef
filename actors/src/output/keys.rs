//! Keys a batch at a time.
//!
//! The key function of a keyed stream is type-erased, so that public types
//! (`KeyedStream<K, T>`, `WindowedStream<K, T>`) do not carry the closure's
//! type. The erasure costs one dynamic call per batch, not per record: the
//! loop that computes a batch's keys is compiled for the user's closure,
//! and the partitioning edges then read the keys from a reused buffer.

use crate::message::Record;

/// Computes the keys of a batch.
pub(crate) trait BatchKeys<K, T>: Send + 'static {
    /// Appends the key of every record of `batch` to `keys`, in order.
    fn keys(&mut self, batch: &[Record<T>], keys: &mut Vec<K>);
}

/// A key function as [`BatchKeys`].
struct KeyOf<F>(F);

impl<K, T, F> BatchKeys<K, T> for KeyOf<F>
where
    F: Fn(&T) -> K + Send + 'static,
{
    #[inline]
    fn keys(&mut self, batch: &[Record<T>], keys: &mut Vec<K>) {
        keys.extend(batch.iter().map(|r| (self.0)(&r.value)));
    }
}

/// Makes a key extractor for each upstream instance of a partitioning
/// edge (each gets its own clone of the key function).
pub(crate) type KeyMaker<K, T> = Box<dyn FnMut() -> Box<dyn BatchKeys<K, T>> + Send>;

/// The [`KeyMaker`] of key function `f`.
pub(crate) fn key_maker<K, T, F>(f: F) -> KeyMaker<K, T>
where
    K: 'static,
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
