//! The reader: listing, rows, extraction, and every verification failure as a typed problem.

use chs_archive::{ArchiveProblem, PIECE_LENGTH, ReadError, Reader, archive_id};
use chs_proto::Message as _;

use crate::common::*;

fn two_archives() -> (tempfile::TempDir, chs_archive::BuildReport) {
    let dir = tempdir();
    let msgs = vec![
        status_go_message(JAN1 + WEEK + HOUR, TOPIC, 3),
        status_go_message(JAN1 + HOUR, TOPIC, 1),
        status_go_message(JAN1 + 2 * HOUR, TOPIC, 2),
    ];
    let report = build(dir.path(), &msgs, &[TOPIC, [1, 2, 3, 4]], JAN1, JAN1 + 2 * WEEK);
    (dir, report)
}

#[test]
fn rows_for_inspect() {
    let (dir, report) = two_archives();
    let reader = Reader::open(dir.path()).expect("open");
    let rows = reader.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, report.archives[0].id);
    assert_eq!((rows[0].from, rows[0].to, rows[0].offset, rows[0].size), (JAN1, JAN1 + WEEK, 0, PIECE_LENGTH));
    assert_eq!(rows[0].message_count, Some(2));
    assert_eq!(rows[1].message_count, Some(1));
    assert_eq!(rows[0].topics, ["0xa4abdf64", "0x01020304"]);
    assert_eq!(rows[0].padding, report.archives[0].padding);
    let json = serde_json::to_value(&rows).expect("json");
    assert_eq!(json[1]["offset"], PIECE_LENGTH);
    assert_eq!(json[0]["message_count"], 2);
    assert_eq!(json[0]["encrypted"], false);
}

#[test]
fn entry_lookup_and_unknown_id() {
    let (dir, report) = two_archives();
    let reader = Reader::open(dir.path()).expect("open");
    let id = &report.archives[1].id;
    assert_eq!(reader.entry(&id.to_uppercase().replace("0X", "0x")).expect("case-insensitive").id, *id);
    assert_eq!(reader.entry(id.trim_start_matches("0x")).expect("without 0x").id, *id);
    let err = reader.extract("0x1234").expect_err("unknown");
    assert!(matches!(err, ReadError::UnknownArchive { ref id } if id == "0x1234"));
    assert!(err.to_string().contains("0x1234"));
}

#[test]
fn missing_directory_is_empty() {
    let dir = tempdir();
    let reader = Reader::open(&dir.path().join("nothing")).expect("open");
    assert!(reader.entries().is_empty());
    assert!(reader.verify(PIECE_LENGTH).is_ok());
    assert_eq!(chs_archive::last_archive_end(dir.path()).expect("end"), None);
}

fn problems(reader: &Reader) -> Vec<(String, ArchiveProblem)> {
    reader.verify(PIECE_LENGTH).violations.into_iter().map(|v| (v.id, v.kind.expect("typed"))).collect()
}

/// Rewrites the index with one entry changed (keeping or fixing its key).
fn with_entry(
    dir: &std::path::Path,
    fix_key: bool,
    change: impl Fn(&mut chs_proto::protobuf::WakuMessageArchiveIndexMetadata),
) -> (Reader, String) {
    let mut index = chs_archive::format::decode_index(&read(dir, "index")).expect("index");
    let (key, mut meta) = index.archives.pop_first().expect("entry");
    change(&mut meta);
    let key = if fix_key { archive_id(&meta) } else { key };
    index.archives.insert(key.clone(), meta);
    (Reader::from_bytes(&index.encode_to_vec(), read(dir, "data")).expect("reader"), key)
}

#[test]
fn verify_names_each_problem() {
    let (dir, _) = two_archives();
    let dir = dir.path();
    assert!(Reader::open(dir).expect("open").verify(PIECE_LENGTH).is_ok());

    let (reader, key) = with_entry(dir, false, |m| m.padding -= 1);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::IdMismatch { .. })), "{found:?}");

    let (reader, key) = with_entry(dir, true, |m| m.size = 3 * PIECE_LENGTH);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::OutOfBounds { .. })), "{found:?}");

    let (reader, key) = with_entry(dir, true, |m| m.offset += 1);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::Misaligned { .. })), "{found:?}");

    let (reader, key) = with_entry(dir, true, |m| m.padding = m.size + 1);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::PaddingExceedsSize { .. })));

    let (reader, key) = with_entry(dir, true, |m| m.offset = u64::MAX - 5);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::RangeOverflow { .. })));

    let (reader, key) = with_entry(dir, true, |m| m.offset = PIECE_LENGTH);
    let found = problems(&reader);
    assert!(found.iter().any(|(_, p)| matches!(p, ArchiveProblem::Overlap { .. })), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(id, p)| *id == key && matches!(p, ArchiveProblem::MetadataMismatch | ArchiveProblem::Decode(_)))
    );

    let (reader, key) = with_entry(dir, true, |m| m.padding -= 10);
    let found = problems(&reader);
    // The last 10 "content" bytes are zeros: the archive no longer decodes to the same thing.
    assert!(found.iter().any(|(id, _)| *id == key), "{found:?}");

    let (reader, key) = with_entry(dir, true, |m| m.metadata = None);
    let found = problems(&reader);
    assert!(found.iter().any(|(id, p)| *id == key && matches!(p, ArchiveProblem::MissingMetadata)));

    // Non-zero padding bytes.
    let mut data = read(dir, "data");
    data[PIECE_LENGTH as usize - 1] = 7;
    let reader = Reader::from_bytes(&read(dir, "index"), data).expect("reader");
    let found = problems(&reader);
    assert!(found.iter().any(|(_, p)| matches!(p, ArchiveProblem::PaddingNotZero { at } if *at == PIECE_LENGTH - 1)));

    // Garbage archive bytes.
    let mut data = read(dir, "data");
    data[0] = 0xff;
    data[1] = 0xff;
    let reader = Reader::from_bytes(&read(dir, "index"), data).expect("reader");
    let found = problems(&reader);
    assert!(found.iter().any(|(_, p)| matches!(p, ArchiveProblem::Decode(_))), "{found:?}");

    // Trailing bytes are counted (not an error: status-go may leave them after a crash).
    let mut data = read(dir, "data");
    data.extend([0u8; 10]);
    let report = Reader::from_bytes(&read(dir, "index"), data).expect("reader").verify(PIECE_LENGTH);
    assert_eq!(report.trailing_bytes, 10);
}

#[test]
fn garbage_index_is_a_typed_error() {
    for bytes in [&[0xff_u8][..], &[0x0a, 0x05, 0x01], &[0x12, 0x00], &[0x0a]] {
        assert!(matches!(Reader::from_bytes(bytes, Vec::new()), Err(ReadError::Index(_))), "{bytes:?}");
    }
    assert!(Reader::from_bytes(&[], Vec::new()).expect("empty index").entries().is_empty());
}
