//! Names on disk: checkpoint directories and snapshot files.
//!
//! A checkpoint lives in `chk-<seq>` (zero-padded to ten digits so that a
//! directory listing sorts by age; parsing accepts any number of digits).
//! An actor's snapshot file is `snap-` followed by its name with every byte
//! outside `[A-Za-z0-9_.-]` percent-encoded (`window#0` → `snap-window%230`),
//! so a name can never escape the directory, clash with `_metadata` or a
//! temporary file, or be `.`/`..`. Percent-encoding is injective; a name too
//! long for a file system is shortened and suffixed with a hash of the full
//! name. The metadata records the file of every actor, so reading never has
//! to invert the mapping.

/// The metadata file; written last, its presence marks a complete checkpoint.
pub(crate) const METADATA_FILE: &str = "_metadata";
/// Prefix of temporary files, renamed into place once durable.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

const DIR_PREFIX: &str = "chk-";
const SNAPSHOT_PREFIX: &str = "snap-";
/// Longest encoded name kept whole; file systems allow 255 bytes and the
/// temporary prefix needs a few.
const MAX_ENCODED: usize = 200;

/// The directory name of checkpoint `seq`.
pub(crate) fn checkpoint_dir_name(seq: u64) -> String {
    format!("{DIR_PREFIX}{seq:010}")
}

/// The sequence number of a checkpoint directory, `None` for any other name.
pub(crate) fn parse_checkpoint_dir_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(DIR_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshot file name of `actor`: safe on every file system, and
/// distinct for distinct actor names (up to a 32-bit hash for names longer
/// than [`MAX_ENCODED`] once encoded).
pub(crate) fn snapshot_file_name(actor: &str) -> String {
    let mut encoded = String::with_capacity(SNAPSHOT_PREFIX.len() + actor.len());
    encoded.push_str(SNAPSHOT_PREFIX);
    for b in actor.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    if encoded.len() > MAX_ENCODED {
        // Every character is ASCII, so any byte index is a char boundary.
        encoded.truncate(MAX_ENCODED - 9);
        encoded.push_str(&format!("-{:08x}", crc32fast::hash(actor.as_bytes())));
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_sort_by_seq_and_parse_back() {
        assert_eq!(checkpoint_dir_name(7), "chk-0000000007");
        assert_eq!(parse_checkpoint_dir_name("chk-0000000007"), Some(7));
        assert_eq!(parse_checkpoint_dir_name(&checkpoint_dir_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_checkpoint_dir_name("chk-"), None);
        assert_eq!(parse_checkpoint_dir_name("chk-12a"), None);
        assert_eq!(parse_checkpoint_dir_name("chk-+1"), None);
        assert_eq!(parse_checkpoint_dir_name("other"), None);
    }

    #[test]
    fn unsafe_characters_are_percent_encoded() {
        assert_eq!(snapshot_file_name("window#0"), "snap-window%230");
        assert_eq!(snapshot_file_name("a/b\\c"), "snap-a%2Fb%5Cc");
        assert_eq!(snapshot_file_name(".."), "snap-..");
        assert_eq!(snapshot_file_name("%"), "snap-%25");
        assert_eq!(snapshot_file_name("é"), "snap-%C3%A9");
        assert_eq!(snapshot_file_name(""), "snap-");
    }

    #[test]
    fn distinct_names_map_to_distinct_files() {
        let names = ["a#1", "a%231", "a/1", "a_1", "a.1", "a-1"];
        let files: std::collections::HashSet<String> = names.iter().map(|n| snapshot_file_name(n)).collect();
        assert_eq!(files.len(), names.len());
    }

    #[test]
    fn long_names_are_shortened_with_a_hash() {
        let a = "x".repeat(500);
        let b = format!("{}y", "x".repeat(499));
        let (fa, fb) = (snapshot_file_name(&a), snapshot_file_name(&b));
        assert!(fa.len() <= MAX_ENCODED && fb.len() <= MAX_ENCODED);
        assert_ne!(fa, fb);
    }
}
