//! Two-input operators and joins.
//!
//! Two streams are connected into one node whose input is
//! [`Either`]`<A, B>`: records of the first stream arrive as
//! `Either::Left`, of the second as `Either::Right`, on the node's own
//! inputs, so the actor shell aligns their barriers and takes the minimum
//! of their watermarks as for any actor. Connected keyed streams
//! (`KeyedStream::connect`) are partitioned by the same hash, so records
//! of both sides with one key meet at one instance, as `(key, side)`.
//!
//! On top of that: the keyed interval join ([`interval`]), and any
//! [`Operator`](crate::Operator) over `Either` (or `(K, Either)`) records
//! as a custom two-input operator.

pub(crate) mod interval;
#[cfg(test)]
mod proptests;

use serde::{Deserialize, Serialize};

/// A record of one of two connected streams: `Left` from the first,
/// `Right` from the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Either<A, B> {
    /// A record of the first stream.
    Left(A),
    /// A record of the second stream.
    Right(B),
}

impl<A, B> Either<A, B> {
    /// The first stream's record, if this is one.
    pub fn left(self) -> Option<A> {
        match self {
            Either::Left(a) => Some(a),
            Either::Right(_) => None,
        }
    }

    /// The second stream's record, if this is one.
    pub fn right(self) -> Option<B> {
        match self {
            Either::Left(_) => None,
            Either::Right(b) => Some(b),
        }
    }
}
