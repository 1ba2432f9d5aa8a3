//! Security item 6: a damaged `index` is rebuilt from `data`, byte for byte as the builder wrote
//! it, and nothing of `data` is lost.

use chs_archive::{PIECE_LENGTH, Reader};

use crate::common::*;

/// Three weekly archives, one of them over several pieces (and one piece exactly full is covered
/// by the property tests of the padding rule).
fn folder() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let tmp = tempdir();
    let dir = tmp.path().join("c");
    let mut messages: Vec<_> = (0..40u32).map(|i| message(JAN1 + u64::from(i) * HOUR, TOPIC, i, 500)).collect();
    messages.extend((0..30u32).map(|i| message(JAN1 + WEEK + u64::from(i) * HOUR, TOPIC, 100 + i, 9_000)));
    messages.push(message(JAN1 + 2 * WEEK + HOUR, TOPIC, 999, 10));
    let report = build(&dir, &messages, &[TOPIC], JAN1, JAN1 + 3 * WEEK);
    assert_eq!(report.archives.len(), 3);
    let (index, data) = (read(&dir, "index"), read(&dir, "data"));
    (tmp, dir, index, data)
}

#[test]
fn damaged_owner_index_is_rebuilt_from_data() {
    let (_tmp, dir, index, data) = folder();
    // Bytes flipped all over the index (every 7th byte), then a truncated index, then garbage.
    let mut flipped = index.clone();
    for b in flipped.iter_mut().step_by(7) {
        *b ^= 0x5a;
    }
    for damaged in [flipped, index[..index.len() / 2].to_vec(), vec![0xff; 64]] {
        std::fs::write(dir.join("index"), &damaged).unwrap();
        assert_eq!(chs_archive::repair_with(&dir, PIECE_LENGTH).expect("repair"), 0);
        assert_eq!(read(&dir, "index"), index, "the rebuilt index is the builder's");
        assert_eq!(read(&dir, "data"), data, "data untouched");
        assert!(Reader::open(&dir).expect("open").verify(PIECE_LENGTH).is_ok());
    }
}

#[test]
fn index_entry_with_a_flipped_value_is_found_and_rebuilt() {
    let (_tmp, dir, index, data) = folder();
    // A flip that still decodes: one byte of an entry's `to` (a varint inside the metadata).
    let reader = Reader::open(&dir).expect("open");
    let to = reader.entries()[0].to();
    let needle = varint(to);
    let at = index.windows(needle.len()).position(|w| w == needle.as_slice()).expect("to in index");
    let mut flipped = index.clone();
    flipped[at] ^= 0x01;
    std::fs::write(dir.join("index"), &flipped).unwrap();
    assert!(chs_archive::format::decode_index(&flipped).is_ok(), "still decodes");
    chs_archive::repair_with(&dir, PIECE_LENGTH).expect("repair");
    assert_eq!(read(&dir, "index"), index);
    assert_eq!(read(&dir, "data"), data);
}

#[test]
fn damaged_index_over_unreadable_data_is_refused_and_nothing_changes() {
    let (_tmp, dir, _index, data) = folder();
    std::fs::write(dir.join("index"), [0xff; 64]).unwrap();
    let mut bad = data.clone();
    bad[0] = 0x77; // no archive starts at offset 0 any more
    std::fs::write(dir.join("data"), &bad).unwrap();
    let err = chs_archive::repair_with(&dir, PIECE_LENGTH).expect_err("cannot rebuild");
    let text = err.to_string();
    assert!(text.contains("index") && text.contains("move it aside"), "{text}");
    assert_eq!(read(&dir, "data"), bad, "nothing deleted");
    assert_eq!(read(&dir, "index"), vec![0xff; 64]);
}

/// The spec's vector folder (`../shared/spec/vectors`, copied into tests/data): its `index`,
/// damaged, is rebuilt from its `data` to exactly the vector's bytes.
#[test]
fn damaged_index_of_the_spec_vector_is_rebuilt_to_the_vector_bytes() {
    const VECTOR_DATA: &[u8] = include_bytes!("../data/archive-three-windows/data");
    const VECTOR_INDEX: &[u8] = include_bytes!("../data/archive-three-windows/index");
    let tmp = tempdir();
    let dir = tmp.path().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), VECTOR_DATA).unwrap();
    let mut damaged = VECTOR_INDEX.to_vec();
    damaged[VECTOR_INDEX.len() / 2] ^= 0x40;
    std::fs::write(dir.join("index"), &damaged).unwrap();
    chs_archive::repair_with(&dir, PIECE_LENGTH).expect("repair");
    assert_eq!(read(&dir, "index"), VECTOR_INDEX);
    assert_eq!(read(&dir, "data"), VECTOR_DATA);
}
