//! Checkpoints of the window core:
//! [`WindowCore::snapshot`](super::core::WindowCore::snapshot) and
//! [`WindowCore::restore`](super::core::WindowCore::restore), for a core
//! of any window kind ([`KindCore`]).
//!
//! A snapshot is one rmp-serde (MessagePack) value, an array of
//! `[header, watermark, late records, state]`:
//! - the header names the format and the configuration the state belongs to
//!   — window kind and size, options, and the layout the core chose for
//!   them (one state per window, panes, sessions, count windows) — and a
//!   core restores only a snapshot whose header equals its own, because the
//!   same bytes mean different windows under another configuration;
//! - the state is the layout's own: per window end (or pane end) the
//!   `(key, state)` entries of that instant; per key its sessions and wake-up
//!   time; per key its window being filled. Keyed state is always a list of
//!   entries, never a map: decoding a `HashMap` rehashes every key, and
//!   indexes derived from the entries (bucket index and slab,
//!   the session wake-up index) are rebuilt on restore instead of stored.
//!
//! What a snapshot holds is what decides the future output: accumulators,
//! early-firing counters and dirty flags, which sessions fired, how far
//! count windows are filled, and the watermark — which also says which time
//! windows fired on time and are only kept for allowed lateness. A core
//! restored from a snapshot therefore emits what the original would have,
//! with one exception: results of *different keys* released by one call
//! with the same window end (and the keys of one processing-time early
//! firing) come in hash-map order, which depends on the map's history and
//! so may differ after a restore. That order is unspecified anyway.

use std::fmt;
use std::hash::Hash;
use std::io::Cursor;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::core::KindCore;
use super::kind::WindowKind;
use super::layout::Layout;
use crate::message::Timestamp;
use crate::window::{Aggregate, Windows};

/// First field of every window-core snapshot.
const MAGIC: &str = "weir-window-core";

/// Version of the snapshot layout; bump it when the encoding changes.
///
/// 2: early-firing marks (a record count and a dirty flag) are stored with
/// each time-window state and pane only where early firing is configured,
/// as a nested value.
const FORMAT: u32 = 2;

/// What a snapshot was taken of; a core restores only an equal one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    /// [`MAGIC`].
    magic: String,
    /// [`FORMAT`].
    format: u32,
    /// The configured window kind.
    windows: Windows,
    /// The layout of the state.
    layout: Layout,
    /// [`crate::window::WindowOptions::allowed_lateness`].
    allowed_lateness: i64,
    /// [`crate::window::WindowOptions::early_firing_count`].
    early_firing_count: Option<u64>,
    /// [`crate::window::WindowOptions::early_firing_interval`].
    early_firing_interval: Option<Duration>,
}

impl Header {
    /// Why a snapshot with header `self` cannot be restored into a core
    /// whose own header is `core`, if it cannot.
    fn mismatch(&self, core: &Header) -> Option<String> {
        if self.magic != MAGIC {
            return Some(format!("it is not a window-core snapshot (it starts with {:?})", self.magic));
        }
        if self.format != FORMAT {
            return Some(format!("its format is version {}, this build reads version {FORMAT}", self.format));
        }
        if self.windows != core.windows {
            return Some(format!(
                "it holds {:?} windows in the {:?} layout, this core has {:?} windows in the {:?} layout",
                self.windows, self.layout, core.windows, core.layout
            ));
        }
        if self.allowed_lateness != core.allowed_lateness {
            return Some(format!(
                "it was taken with an allowed lateness of {} ms, this core has {} ms",
                self.allowed_lateness, core.allowed_lateness
            ));
        }
        if self.early_firing_count != core.early_firing_count {
            return Some(format!(
                "it was taken with early firing every {:?} records, this core has {:?}",
                self.early_firing_count, core.early_firing_count
            ));
        }
        if self.early_firing_interval != core.early_firing_interval {
            return Some(format!(
                "it was taken with early firing every {:?}, this core has {:?}",
                self.early_firing_interval, core.early_firing_interval
            ));
        }
        // The layout follows from the window kind and the options, checked
        // above, unless a core chose otherwise (tests compare layouts).
        if self.layout != core.layout {
            return Some(format!(
                "it holds {:?} windows in the {:?} layout, this core has {:?} windows in the {:?} layout",
                self.windows, self.layout, core.windows, core.layout
            ));
        }
        None
    }
}

/// A decoded snapshot: watermark, late records and state; or, when its
/// header does not match the core, why.
type Decoded<S> = Result<(Timestamp, u64, S), String>;

impl<K, T, A, W> KindCore<K, T, A, W>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
    W: WindowKind<K, T, A>,
{
    /// The core's state as rmp-serde bytes (see `WindowCore::snapshot`).
    pub(super) fn snapshot(&self) -> Vec<u8> {
        let bytes = rmp_serde::to_vec(&(self.header(), self.watermark, self.late_records, self.kind.snapshot()));
        // Writing into a `Vec` cannot fail, and every sequence has a known
        // length; only a key or accumulator type whose own `Serialize`
        // fails could, and that is a bug in that type.
        bytes.expect("window state serializes: keys and accumulators must not fail to serialize")
    }

    /// Replaces the state with a snapshot's (see `WindowCore::restore`); on
    /// error the core is unchanged.
    pub(super) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let expected = self.header();
        let mut de = rmp_serde::Deserializer::new(Cursor::new(bytes));
        let seed = SnapshotSeed::<W::Snapshot> { expected: &expected, _state: PhantomData };
        let decoded = seed.deserialize(&mut de).map_err(|e| format!("window snapshot does not decode: {e}"))?;
        let (watermark, late_records, state) =
            decoded.map_err(|e| format!("window snapshot does not fit this window manager: {e}"))?;
        let read = de.position();
        if read != bytes.len() as u64 {
            return Err(format!(
                "window snapshot does not decode: {} bytes follow its end at byte {read}",
                bytes.len() as u64 - read
            ));
        }
        // The header matched, so the state is in this core's layout.
        self.kind = self.kind.restored(state).map_err(|e| format!("window snapshot is inconsistent: {e}"))?;
        self.watermark = watermark;
        self.late_records = late_records;
        Ok(())
    }

    /// This core's configuration, as a snapshot header.
    fn header(&self) -> Header {
        Header {
            magic: MAGIC.to_owned(),
            format: FORMAT,
            windows: self.windows,
            layout: W::LAYOUT,
            allowed_lateness: self.options.allowed_lateness,
            early_firing_count: self.options.early_firing_count,
            early_firing_interval: self.options.early_firing_interval,
        }
    }
}

/// Decodes a snapshot for a core whose header is `expected`: reads the
/// header first, and the state only in the layout it names and only if it
/// matches (otherwise skips the rest and says why).
struct SnapshotSeed<'a, S> {
    /// The restoring core's header.
    expected: &'a Header,
    /// The state part decoded (the layout's own).
    _state: PhantomData<fn() -> S>,
}

impl<'de, St: DeserializeOwned> DeserializeSeed<'de> for SnapshotSeed<'_, St> {
    type Value = Decoded<St>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(4, self)
    }
}

impl<'de, St: DeserializeOwned> Visitor<'de> for SnapshotSeed<'_, St> {
    type Value = Decoded<St>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a window-core snapshot: [header, watermark, late records, state]")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let header: Header = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        if let Some(why) = header.mismatch(self.expected) {
            // The decoder wants the whole array read.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Err(why));
        }
        let watermark: Timestamp = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let late_records: u64 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
        // The header matched: the state is in the expected layout.
        let state: Option<St> = seq.next_element()?;
        let state = state.ok_or_else(|| de::Error::invalid_length(3, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(5, &self));
        }
        Ok(Ok((watermark, late_records, state)))
    }
}
