//! The framing every checkpoint file carries, so that a torn, truncated or
//! bit-flipped file is recognised before its payload is decoded.
//!
//! ```text
//! offset  size  field
//!      0     8  magic: b"WEIRSNAP" (snapshot) or b"WEIRMETA" (metadata)
//!      8     4  format version, u32 little-endian (currently 1)
//!     12     4  crc32 (IEEE, crc32fast) of the payload, u32 little-endian
//!     16     8  payload length in bytes, u64 little-endian
//!     24     n  payload
//! ```
//!
//! A file is valid only if its magic and version are the expected ones, its
//! size is exactly header + length (a shorter file was truncated, a longer
//! one has trailing garbage) and the payload matches its checksum. The two
//! magics differ so that a snapshot copied over `_metadata` (or the reverse)
//! is rejected too.

/// Magic of a per-actor snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"WEIRSNAP";
/// Magic of a checkpoint's `_metadata` file.
pub(crate) const META_MAGIC: [u8; 8] = *b"WEIRMETA";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 24;

/// What a valid frame's header says about its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// crc32 of the payload.
    pub(crate) crc: u32,
    /// Payload length in bytes.
    pub(crate) len: u64,
}

/// Frames `payload` behind a header with `magic`; returns the whole file's
/// bytes and what its header records.
pub(crate) fn encode(magic: [u8; 8], payload: &[u8]) -> (Vec<u8>, FrameInfo) {
    let info = FrameInfo { crc: crc32fast::hash(payload), len: payload.len() as u64 };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&info.crc.to_le_bytes());
    out.extend_from_slice(&info.len.to_le_bytes());
    out.extend_from_slice(payload);
    (out, info)
}

/// Checks a whole file's bytes against the format and returns its payload
/// with what the header recorded; the error says what was wrong (the caller
/// adds the path).
pub(crate) fn decode(magic: [u8; 8], file: &[u8]) -> Result<(&[u8], FrameInfo), String> {
    if file.len() < HEADER_LEN {
        return Err(format!("truncated: {} bytes, shorter than the {HEADER_LEN}-byte header", file.len()));
    }
    let (header, payload) = file.split_at(HEADER_LEN);
    if header[..8] != magic {
        return Err(format!(
            "bad magic {:?}, expected {:?}",
            String::from_utf8_lossy(&header[..8]),
            String::from_utf8_lossy(&magic)
        ));
    }
    let version = u32::from_le_bytes(le_bytes(&header[8..12]));
    if version != VERSION {
        return Err(format!("unsupported format version {version}, this build reads version {VERSION}"));
    }
    let crc = u32::from_le_bytes(le_bytes(&header[12..16]));
    let len = u64::from_le_bytes(le_bytes(&header[16..24]));
    if payload.len() as u64 != len {
        let what = if (payload.len() as u64) < len { "truncated" } else { "trailing bytes" };
        return Err(format!("{what}: header says {len} payload bytes, file holds {}", payload.len()));
    }
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(format!("checksum mismatch: header says crc32 {crc:08x}, payload has {actual:08x}"));
    }
    Ok((payload, FrameInfo { crc, len }))
}

/// Copies a header field into a fixed-size array.
fn le_bytes<const N: usize>(field: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    // The callers slice fields of exactly N bytes out of a header whose
    // length was checked, so the lengths always agree.
    out.copy_from_slice(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_its_payload() {
        let (file, info) = encode(SNAPSHOT_MAGIC, b"hello");
        assert_eq!(file.len(), HEADER_LEN + 5);
        let (payload, read) = decode(SNAPSHOT_MAGIC, &file).expect("valid frame");
        assert_eq!(payload, b"hello");
        assert_eq!(read, info);
    }

    #[test]
    fn an_empty_payload_is_valid() {
        let (file, _) = encode(META_MAGIC, b"");
        assert_eq!(decode(META_MAGIC, &file).expect("valid frame").0, b"");
    }

    #[test]
    fn a_flipped_payload_byte_fails_the_checksum() {
        let (mut file, _) = encode(SNAPSHOT_MAGIC, b"hello");
        file[HEADER_LEN + 1] ^= 0x01;
        assert!(decode(SNAPSHOT_MAGIC, &file).unwrap_err().contains("checksum"));
    }

    #[test]
    fn truncation_and_trailing_bytes_are_rejected() {
        let (file, _) = encode(SNAPSHOT_MAGIC, b"hello");
        assert!(decode(SNAPSHOT_MAGIC, &file[..file.len() - 1]).unwrap_err().contains("truncated"));
        assert!(decode(SNAPSHOT_MAGIC, &file[..10]).unwrap_err().contains("truncated"));
        let mut longer = file.clone();
        longer.push(0);
        assert!(decode(SNAPSHOT_MAGIC, &longer).unwrap_err().contains("trailing"));
    }

    #[test]
    fn the_wrong_magic_or_version_is_rejected() {
        let (mut file, _) = encode(SNAPSHOT_MAGIC, b"hello");
        assert!(decode(META_MAGIC, &file).unwrap_err().contains("magic"));
        file[8] = 9;
        assert!(decode(SNAPSHOT_MAGIC, &file).unwrap_err().contains("version"));
    }
}
