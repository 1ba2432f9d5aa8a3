//! Unit tests of private helpers.

use crate::format::{count_top_level_field, unexpected_top_level_field};

#[test]
fn field_scanner_counts_and_flags() {
    // WakuMessageArchive{metadata{}, messages: [{timestamp 1}, {timestamp 2}]}.
    let bytes = [0x12, 0x00, 0x1a, 0x02, 0x10, 0x01, 0x1a, 0x02, 0x10, 0x02];
    assert_eq!(count_top_level_field(&bytes, 3), Some(2));
    assert_eq!(unexpected_top_level_field(&bytes, &[1, 2, 3]), None);
    // Field 101 (ProtocolMessage.encrypted_message) is flagged.
    let encrypted = [0xaa, 0x06, 0x00];
    assert_eq!(unexpected_top_level_field(&encrypted, &[1, 2, 3]), Some(101));
    // A length running past the end is unreadable.
    assert_eq!(count_top_level_field(&[0x1a, 0x05, 0x00], 3), None);
    // Field number 0 and group wire types are unreadable.
    assert_eq!(count_top_level_field(&[0x00, 0x00], 3), None);
    assert_eq!(count_top_level_field(&[0x1b], 3), None);
    // A 10-byte varint with too large a last byte is unreadable.
    assert_eq!(count_top_level_field(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 1), None);
}

#[test]
fn index_entries_are_checked_against_data_and_the_size_limit() {
    use crate::{EntryError, check_entry};
    assert_eq!(check_entry(0, 100, 10, 100, 1_000), Ok(()));
    assert_eq!(check_entry(50, 50, 0, 100, 1_000), Ok(()));
    for (offset, size, padding) in [(0, 0, 0), (0, 10, 10), (51, 50, 0), (u64::MAX, 2, 0)] {
        assert!(
            matches!(check_entry(offset, size, padding, 100, 1_000), Err(EntryError::OutOfBounds { .. })),
            "{offset} {size} {padding}"
        );
    }
    let err = check_entry(0, 2_000, 0, 10_000, 1_000).expect_err("too large");
    assert_eq!(err, EntryError::TooLarge { size: 2_000, max: 1_000 });
    assert!(err.to_string().contains("1000"), "{err}");
}
