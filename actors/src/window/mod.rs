//! Event-time windows: which window a record belongs to, when a window
//! fires, and what a firing emits.
//!
//! A window is a half-open interval of event time `[start, end)`. It fires
//! (emits a [`WindowResult`]) when the watermark reaches its end: the
//! watermark `t` promises that no record with timestamp `< t` follows, so
//! nothing more can fall into `[start, end)` once `t >= end`. A session
//! window fires only once the watermark has *passed* its end, because a
//! record at exactly `end` still joins it (sessions that touch merge).
//!
//! Kinds ([`Windows`]): tumbling, sliding, session (per key, merging) and
//! count windows. Options ([`WindowOptions`]): allowed lateness (a late record
//! within it updates its window, which fires again with
//! [`Timing::Late`]), and early firings, by count or by a processing-time
//! interval ([`Timing::Early`]). A record whose windows have all closed for
//! good goes to the late-data output and is counted; it is never dropped
//! silently.
//!
//! The functional core that does this (`WindowCore`, in `core.rs`) is a plain
//! struct, tested without actix; the window-manager actor only feeds it.

// The files of this folder:
// - `core.rs`: the core the window manager owns, generic inside over one
//   window kind; `kind.rs`: what a window kind provides to it;
//   `layout.rs`: which kind a configuration gets; `snapshot.rs`: its
//   checkpoints;
// - the kinds: `time_windows.rs` (a state per window), `pane_windows.rs`
//   (sliding windows from panes), `session_windows.rs` (with `session.rs`,
//   one key's sessions, and `wakeups.rs`, when to look at which key),
//   `count_windows.rs`;
// - what they share: `buckets.rs` (per-key state grouped by an instant),
//   `span.rs` (the interval of the previous record), `marks.rs`
//   (early-firing bookkeeping);
// - `partial/`: pre-aggregation before the shuffle, the partials and the
//   combining edge that builds them;
// - `aggregate.rs`: the `Aggregate` trait and the built-in aggregates;
// - `tests/`: the core's tests (hand-made streams, early firing,
//   checkpoints, property tests against brute-force models).

mod aggregate;
mod buckets;
pub(crate) mod core;
mod count_windows;
mod kind;
mod layout;
mod marks;
mod pane_windows;
pub(crate) mod partial;
mod session;
mod session_windows;
mod snapshot;
mod span;
mod time_windows;
mod wakeups;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::message::Timestamp;

pub use aggregate::{Aggregate, Average, Collect, Count, Max, Min, Sum};

/// A window `[start, end)` of event time. For count windows `start` and
/// `end` are positions in the key's sequence of records, not times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First instant in the window (inclusive).
    pub start: Timestamp,
    /// First instant after the window (exclusive).
    pub end: Timestamp,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Window { start, end }
    }
}

/// Why a window fired (Beam's pane timing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Timing {
    /// Before the watermark reached the window's end (an early firing by
    /// count or by processing time). A later firing supersedes it.
    Early,
    /// The watermark reached the window's end: the regular result.
    OnTime,
    /// An update: a late record within the allowed lateness changed a window
    /// that had already fired. Supersedes the earlier result.
    Late,
}

/// One firing of one window of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, R> {
    /// The key.
    pub key: K,
    /// The window.
    pub window: Window,
    /// The aggregate (or process-function) result.
    pub value: R,
    /// Early, on time, or an update after a late record.
    pub timing: Timing,
}

impl<K, R> WindowResult<K, R> {
    /// Whether this firing replaces an earlier one of the same window.
    pub fn is_update(&self) -> bool {
        self.timing == Timing::Late
    }
}

/// The kind of window, with its size. Build one with [`Windows::tumbling`],
/// [`Windows::sliding`], [`Windows::session`] or [`Windows::count`];
/// parameters are checked when the topology is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Windows {
    /// Fixed-size, non-overlapping windows: `start = floor(ts / size) * size`.
    Tumbling {
        /// Window length, ms.
        size: i64,
    },
    /// Fixed-size windows starting every `slide` ms; a record belongs to
    /// `size / slide` windows (rounded up).
    Sliding {
        /// Window length, ms.
        size: i64,
        /// Distance between window starts, ms.
        slide: i64,
    },
    /// Per-key activity sessions: a record at `t` opens `[t, t + gap)`;
    /// windows of one key that overlap or touch merge.
    Session {
        /// Inactivity gap, ms.
        gap: i64,
    },
    /// Per-key windows of `size` records each, fired when full (and, partly
    /// filled, at end of input so that no record is lost).
    Count {
        /// Records per window.
        size: u64,
    },
}

impl Windows {
    /// Tumbling windows of `size` ms.
    pub fn tumbling(size: i64) -> Self {
        Windows::Tumbling { size }
    }
    /// Sliding windows of `size` ms every `slide` ms.
    pub fn sliding(size: i64, slide: i64) -> Self {
        Windows::Sliding { size, slide }
    }
    /// Session windows with an inactivity gap of `gap` ms.
    pub fn session(gap: i64) -> Self {
        Windows::Session { gap }
    }
    /// Count windows of `size` records per key.
    pub fn count(size: u64) -> Self {
        Windows::Count { size }
    }

    /// Checks the parameters; the error names the offending one.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Windows::Tumbling { size } if size <= 0 => Err(("window size", format!("{size} (must be > 0)"))),
            Windows::Sliding { size, .. } if size <= 0 => Err(("window size", format!("{size} (must be > 0)"))),
            Windows::Sliding { size, slide } if slide <= 0 || slide > size => {
                Err(("window slide", format!("{slide} (must be > 0 and <= the size {size})")))
            }
            Windows::Session { gap } if gap <= 0 => Err(("session gap", format!("{gap} (must be > 0)"))),
            Windows::Count { size: 0 } => Err(("count window size", "0 (must be > 0)".into())),
            _ => Ok(()),
        }
    }
}

/// Options of a window manager beyond the window kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowOptions {
    /// How long (event time, ms) a window is kept after it fired, so that a
    /// late record can still update it. `0`: a record behind the watermark
    /// whose windows have all fired is late output.
    pub allowed_lateness: i64,
    /// Fire a window early every this many records added to it since its
    /// last firing.
    pub early_firing_count: Option<u64>,
    /// Fire every window that changed since its last firing, every this much
    /// processing time.
    pub early_firing_interval: Option<Duration>,
}
