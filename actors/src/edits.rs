//! Random edits of bytes, for property tests of decoders: what a torn
//! write, a flipped bit, a truncated copy or a stray insertion does to a
//! file or a snapshot.

use proptest::prelude::*;
use proptest::sample::Index;

/// One edit of a byte string.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// XOR one byte with a non-zero mask (always changes it).
    Flip(Index, u8),
    /// Cut the bytes at a position before their end.
    Truncate(Index),
    /// Insert one or more bytes.
    Insert(Index, Vec<u8>),
    /// Overwrite bytes from a position (within the end).
    Overwrite(Index, Vec<u8>),
}

/// Any edit; inserted and written bytes are a few, of any value.
pub(crate) fn edit() -> impl Strategy<Value = Edit> {
    let bytes = prop::collection::vec(any::<u8>(), 1..6);
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Edit::Flip(i, m)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => (any::<Index>(), bytes.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        2 => (any::<Index>(), bytes).prop_map(|(i, b)| Edit::Overwrite(i, b)),
    ]
}

/// An edit that always changes non-empty bytes (no overwrite, which may
/// write what was there).
pub(crate) fn changing_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Edit::Flip(i, m)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

impl Edit {
    /// Applies the edit (an edit of nothing only inserts).
    pub(crate) fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Edit::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
            Edit::Truncate(i) if len > 0 => bytes.truncate(i.index(len)),
            Edit::Insert(i, b) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Overwrite(i, b) if len > 0 => {
                let at = i.index(len);
                let end = (at + b.len()).min(len);
                bytes[at..end].copy_from_slice(&b[..end - at]);
            }
            Edit::Flip(..) | Edit::Truncate(_) | Edit::Overwrite(..) => {}
        }
    }
}

/// `bytes` with every edit of `edits` applied in turn.
pub(crate) fn edited(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        e.apply(&mut bytes);
    }
    bytes
}
