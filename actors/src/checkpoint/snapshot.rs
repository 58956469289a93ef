//! [`Snapshot`]: serialized state, as operators, sources and sinks hand it
//! to a checkpoint and get it back on restore.
//!
//! A snapshot is MessagePack (rmp-serde) bytes of any `serde` type. The
//! owner encodes its state with [`Snapshot::encode`] and decodes it with
//! [`Snapshot::decode`]; a decode error names the type, so that a
//! checkpoint written by another version of an operator is refused with a
//! clear message rather than misread.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::SnapshotError;

/// Serialized state of an operator, a source position or a sink's
/// pre-commit state.
///
/// ```
/// use weir_actors::Snapshot;
///
/// let s = Snapshot::encode(&(7u64, "seven".to_string()))?;
/// let (n, word): (u64, String) = s.decode()?;
/// assert_eq!((n, word.as_str()), (7, "seven"));
/// assert!(s.decode::<Vec<f64>>().is_err());
/// # Ok::<(), weir_actors::SnapshotError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot(#[serde(with = "serde_bytes_compat")] Vec<u8>);

impl Snapshot {
    /// No state (what a stateless operator returns).
    pub fn empty() -> Self {
        Snapshot(Vec::new())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encodes `value`.
    pub fn encode<S: Serialize + ?Sized>(value: &S) -> Result<Self, SnapshotError> {
        rmp_serde::to_vec(value)
            .map(Snapshot)
            .map_err(|e| SnapshotError::Encode { what: std::any::type_name::<S>().to_string(), reason: e.to_string() })
    }

    /// Decodes the value [`Self::encode`] stored; the error names `S`.
    pub fn decode<S: DeserializeOwned>(&self) -> Result<S, SnapshotError> {
        rmp_serde::from_slice(&self.0)
            .map_err(|e| SnapshotError::Decode { what: std::any::type_name::<S>().to_string(), reason: e.to_string() })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps bytes read back from a checkpoint.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Snapshot(bytes)
    }

    /// The bytes, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Encodes the bytes as one MessagePack binary (not an array of numbers).
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}
