//! Which window kind, with which early-firing marks, keeps the state of a
//! configuration: [`Layout`], decided once when a core is built.
//!
//! The configuration ([`Windows`] and [`WindowOptions`]) fixes the layout:
//! tumbling windows, and sliding windows whose size is not a multiple of
//! the slide, keep one state per window; other sliding windows keep one
//! per pane, unless early firing by count (exact per window) needs one per
//! window; sessions and count windows have layouts of their own. States
//! keep early-firing marks only where early firing is configured
//! ([`super::marks`]). A snapshot names its layout, and restores only into
//! a core of the same one (tests build sliding windows without panes on
//! purpose, and compare).

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::core::{Core, KindCore};
use super::count_windows::CountWindows;
use super::kind::WindowKind;
use super::marks::{Dirty, Early, NoMarks};
use super::pane_windows::PaneWindows;
use super::session_windows::SessionWindows;
use super::time_windows::TimeWindows;
use crate::window::{Aggregate, WindowOptions, Windows};

/// How a core keeps its state. The variant names are part of the snapshot
/// format (a header names its layout by them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Layout {
    /// One state per (key, window), by window end ([`TimeWindows`]).
    Time,
    /// The same, each with its early-firing marks.
    TimeEarly,
    /// One state per (key, pane), by pane end ([`PaneWindows`]).
    Panes,
    /// The same, each with its dirty flag.
    PanesEarly,
    /// Merging sessions per key ([`SessionWindows`]).
    Session,
    /// One window being filled per key ([`CountWindows`]).
    Count,
}

impl Layout {
    /// The layout of `windows` with `options`; `panes: false` keeps sliding
    /// windows one state per window even where panes would apply.
    pub(crate) fn of(windows: Windows, options: &WindowOptions, panes: bool) -> Layout {
        let early = options.early_firing_count.is_some_and(|n| n > 0);
        let marked = early || options.early_firing_interval.is_some();
        let time = if marked { Layout::TimeEarly } else { Layout::Time };
        match windows {
            Windows::Tumbling { .. } => time,
            Windows::Sliding { size, slide } => {
                let slide = slide.max(1);
                let size = size.max(slide);
                // Panes keep no per-window record counter, so early firing
                // by count needs one state per window.
                if panes && size % slide == 0 && size > slide && !early {
                    if marked {
                        Layout::PanesEarly
                    } else {
                        Layout::Panes
                    }
                } else {
                    time
                }
            }
            Windows::Session { .. } => Layout::Session,
            Windows::Count { .. } => Layout::Count,
        }
    }

    /// The length of the interval over which a combining edge may fold
    /// records for this layout of `windows` (see [`super::partial`]): a
    /// tumbling window, or a pane; `None` where the layout cannot merge
    /// partials or a window is not one interval.
    pub(crate) fn combined_interval(self, windows: Windows) -> Option<i64> {
        match (self, windows) {
            (Layout::Time | Layout::TimeEarly, Windows::Tumbling { size }) => Some(size),
            (Layout::Time | Layout::TimeEarly, Windows::Sliding { size, slide }) if size == slide => Some(slide),
            (Layout::Panes | Layout::PanesEarly, Windows::Sliding { slide, .. }) => Some(slide),
            _ => None,
        }
    }

    /// An empty core of `windows` with `options` in this layout, which is
    /// `Layout::of` them: the one place a window kind is chosen. `windows`
    /// has been validated; the clamps only keep an unvalidated
    /// configuration from dividing by zero.
    pub(super) fn core<K, T, A>(self, windows: Windows, options: WindowOptions, agg: A) -> Box<dyn Core<K, T, A> + Send>
    where
        K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
        T: 'static,
        A: Aggregate<T>,
    {
        let lateness = options.allowed_lateness.max(0);
        let early = options.early_firing_count.filter(|&n| n > 0);
        let (size, slide) = match windows {
            Windows::Tumbling { size } => (size.max(1), size.max(1)),
            Windows::Sliding { size, slide } => (size.max(slide.max(1)), slide.max(1)),
            Windows::Session { .. } | Windows::Count { .. } => (1, 1),
        };
        match (self, windows) {
            (Layout::Time, _) => {
                boxed(windows, options, agg, TimeWindows::<K, A::Acc, NoMarks>::new(size, slide, lateness, None))
            }
            (Layout::TimeEarly, _) => {
                boxed(windows, options, agg, TimeWindows::<K, A::Acc, Early>::new(size, slide, lateness, early))
            }
            (Layout::Panes, _) => {
                boxed(windows, options, agg, PaneWindows::<K, A::Acc, NoMarks>::new(size, slide, lateness))
            }
            (Layout::PanesEarly, _) => {
                boxed(windows, options, agg, PaneWindows::<K, A::Acc, Dirty>::new(size, slide, lateness))
            }
            (Layout::Session, Windows::Session { gap }) => {
                boxed(windows, options, agg, SessionWindows::new(gap.max(1), lateness, early))
            }
            (Layout::Count, Windows::Count { size }) => {
                boxed(windows, options, agg, CountWindows::new(size.max(1), early))
            }
            (layout, windows) => unreachable!("Layout::of never gives {windows:?} the {layout:?} layout"),
        }
    }
}

/// A core over `kind`, boxed behind the interface the window manager uses.
fn boxed<K, T, A, W>(windows: Windows, options: WindowOptions, agg: A, kind: W) -> Box<dyn Core<K, T, A> + Send>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    T: 'static,
    A: Aggregate<T>,
    W: WindowKind<K, T, A>,
{
    Box::new(KindCore::new(windows, options, agg, kind))
}
