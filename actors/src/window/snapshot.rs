//! Checkpoints of the window core: [`WindowCore::snapshot`] and
//! [`WindowCore::restore`].
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
//!   entries, never a map: decoding a `HashMap` is about twice as slow (it
//!   rehashes), and indexes derived from the entries (bucket index and slab,
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

use super::count_windows::CountSnapshot;
use super::marks::{Dirty, Early, NoMarks};
use super::pane_windows::PaneSnapshot;
use super::session_windows::SessionSnapshot;
use super::time_windows::TimeSnapshot;
use super::{Kind, WindowCore};
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

/// How a core keeps its state, which follows from the configuration (a
/// sliding window uses panes unless early firing by count needs one state
/// per window, or the core was built without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Layout {
    /// One state per (key, window), by window end.
    Time,
    /// The same, each with its early-firing marks.
    TimeEarly,
    /// One state per (key, pane), by pane end.
    Panes,
    /// The same, each with its dirty flag.
    PanesEarly,
    /// Merging sessions per key.
    Session,
    /// One window being filled per key.
    Count,
}

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
    /// [`crate::window::WindowOptions::early_every_count`].
    early_every_count: Option<u64>,
    /// [`crate::window::WindowOptions::early_every_interval`].
    early_every_interval: Option<Duration>,
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
        if self.early_every_count != core.early_every_count {
            return Some(format!(
                "it was taken with early firing every {:?} records, this core has {:?}",
                self.early_every_count, core.early_every_count
            ));
        }
        if self.early_every_interval != core.early_every_interval {
            return Some(format!(
                "it was taken with early firing every {:?}, this core has {:?}",
                self.early_every_interval, core.early_every_interval
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

/// The state part of a snapshot, decoded, in the layout of its header.
enum KindState<K, Acc> {
    /// [`Layout::Time`].
    Time(TimeSnapshot<K, Acc, NoMarks>),
    /// [`Layout::TimeEarly`].
    TimeEarly(TimeSnapshot<K, Acc, Early>),
    /// [`Layout::Panes`].
    Panes(PaneSnapshot<K, Acc, NoMarks>),
    /// [`Layout::PanesEarly`].
    PanesEarly(PaneSnapshot<K, Acc, Dirty>),
    /// [`Layout::Session`].
    Session(SessionSnapshot<K, Acc>),
    /// [`Layout::Count`].
    Count(CountSnapshot<K, Acc>),
}

/// A decoded snapshot: watermark, late records and state; or, when its
/// header does not match the core, why.
type Decoded<K, Acc> = Result<(Timestamp, u64, KindState<K, Acc>), String>;

impl<K, T, A> WindowCore<K, T, A>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    A: Aggregate<T>,
{
    /// Everything needed to resume exactly: open windows, panes, sessions
    /// and count windows with their accumulators; their fired, dirty and
    /// early-count state; the state kept for allowed lateness; the firing
    /// schedule; the current watermark and the late-record counter. As
    /// rmp-serde bytes, headed by the configuration (see the module doc).
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let header = self.header();
        let (wm, late) = (self.watermark, self.late_records);
        let bytes = match &self.kind {
            Kind::Time(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
            Kind::TimeEarly(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
            Kind::Panes(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
            Kind::PanesEarly(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
            Kind::Session(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
            Kind::Count(w) => rmp_serde::to_vec(&(header, wm, late, w.snapshot())),
        };
        // Writing into a `Vec` cannot fail, and every sequence has a known
        // length; only a key or accumulator type whose own `Serialize`
        // fails could, and that is a bug in that type.
        bytes.expect("window state serializes: keys and accumulators must not fail to serialize")
    }

    /// Replaces this core's state with a snapshot taken by a core built with
    /// the same [`Windows`] and [`crate::window::WindowOptions`] (and the
    /// same layout). The error names what is wrong: bytes that do not decode
    /// (or do not end where the snapshot does), a snapshot of another window
    /// kind, layout or options, or state that breaks an invariant. On error
    /// the core is unchanged.
    pub(crate) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let expected = self.header();
        let mut de = rmp_serde::Deserializer::new(Cursor::new(bytes));
        let seed = SnapshotSeed { expected: &expected, _types: PhantomData };
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
        let kind = match (&self.kind, state) {
            (Kind::Time(w), KindState::Time(s)) => w.restored(s).map(Kind::Time),
            (Kind::TimeEarly(w), KindState::TimeEarly(s)) => w.restored(s).map(Kind::TimeEarly),
            (Kind::Panes(w), KindState::Panes(s)) => w.restored(s).map(Kind::Panes),
            (Kind::PanesEarly(w), KindState::PanesEarly(s)) => w.restored(s).map(Kind::PanesEarly),
            (Kind::Session(w), KindState::Session(s)) => w.restored(s).map(Kind::Session),
            (Kind::Count(w), KindState::Count(s)) => w.restored(s).map(Kind::Count),
            _ => Err("its state is not in the layout its header names".to_owned()),
        }
        .map_err(|e| format!("window snapshot is inconsistent: {e}"))?;
        self.kind = kind;
        self.watermark = watermark;
        self.late_records = late_records;
        Ok(())
    }

    /// This core's configuration, as a snapshot header.
    fn header(&self) -> Header {
        let layout = match self.kind {
            Kind::Time(_) => Layout::Time,
            Kind::TimeEarly(_) => Layout::TimeEarly,
            Kind::Panes(_) => Layout::Panes,
            Kind::PanesEarly(_) => Layout::PanesEarly,
            Kind::Session(_) => Layout::Session,
            Kind::Count(_) => Layout::Count,
        };
        Header {
            magic: MAGIC.to_owned(),
            format: FORMAT,
            windows: self.windows,
            layout,
            allowed_lateness: self.options.allowed_lateness,
            early_every_count: self.options.early_every_count,
            early_every_interval: self.options.early_every_interval,
        }
    }
}

/// Decodes a snapshot for a core whose header is `expected`: reads the
/// header first, and the state only in the layout it names and only if it
/// matches (otherwise skips the rest and says why).
struct SnapshotSeed<'a, K, Acc> {
    /// The restoring core's header.
    expected: &'a Header,
    /// The key and accumulator types decoded.
    _types: PhantomData<fn() -> (K, Acc)>,
}

impl<'de, K: DeserializeOwned, Acc: DeserializeOwned> DeserializeSeed<'de> for SnapshotSeed<'_, K, Acc> {
    type Value = Decoded<K, Acc>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(4, self)
    }
}

impl<'de, K: DeserializeOwned, Acc: DeserializeOwned> Visitor<'de> for SnapshotSeed<'_, K, Acc> {
    type Value = Decoded<K, Acc>;

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
        let state = match header.layout {
            Layout::Time => seq.next_element()?.map(KindState::Time),
            Layout::TimeEarly => seq.next_element()?.map(KindState::TimeEarly),
            Layout::Panes => seq.next_element()?.map(KindState::Panes),
            Layout::PanesEarly => seq.next_element()?.map(KindState::PanesEarly),
            Layout::Session => seq.next_element()?.map(KindState::Session),
            Layout::Count => seq.next_element()?.map(KindState::Count),
        };
        let state = state.ok_or_else(|| de::Error::invalid_length(3, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(5, &self));
        }
        Ok(Ok((watermark, late_records, state)))
    }
}
