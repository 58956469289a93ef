//! Typed per-key state cells for a [`KeyedProcess`](super::KeyedProcess)'s
//! `State` struct: a value, a list, a map. Each is plain data with `serde`,
//! checkpointed with the rest of the key's state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One value, or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<T>(Option<T>);

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        ValueState(None)
    }
}

impl<T> ValueState<T> {
    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// Sets the value; returns the previous one.
    pub fn set(&mut self, value: T) -> Option<T> {
        self.0.replace(value)
    }

    /// Removes the value.
    pub fn clear(&mut self) -> Option<T> {
        self.0.take()
    }

    /// The value, set to `init()` first if unset.
    pub fn get_or_insert_with(&mut self, init: impl FnOnce() -> T) -> &mut T {
        self.0.get_or_insert_with(init)
    }
}

/// A list of values, in the order added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState<T>(Vec<T>);

impl<T> Default for ListState<T> {
    fn default() -> Self {
        ListState(Vec::new())
    }
}

impl<T> ListState<T> {
    /// Appends `value`.
    pub fn add(&mut self, value: T) {
        self.0.push(value);
    }

    /// The values.
    pub fn get(&self) -> &[T] {
        &self.0
    }

    /// Replaces the values.
    pub fn update(&mut self, values: Vec<T>) {
        self.0 = values;
    }

    /// Takes every value out.
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A map, iterated in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapState<K: Ord, V>(BTreeMap<K, V>);

impl<K: Ord, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState(BTreeMap::new())
    }
}

impl<K: Ord, V> MapState<K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key)
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.0.insert(key, value)
    }

    /// The value of `key`, inserted with `init()` first if absent.
    pub fn entry_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        self.0.entry(key).or_insert_with(init)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.0.remove(key)
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
