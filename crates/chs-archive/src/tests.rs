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
