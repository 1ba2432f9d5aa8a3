//! Golden bytes: composed by hand from the spec's field tags and arithmetic (status-go-archives.md
//! §4, §14; status-go-protobufs.md §10), and the copied `archive-three-windows` vector.

use chs_archive::{PIECE_LENGTH, Reader, archive_id, padding};
use chs_proto::Message as _;
use chs_proto::protobuf::{WakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata};

use crate::common::*;

const VECTOR_DATA: &[u8] = include_bytes!("../data/archive-three-windows/data");
const VECTOR_INDEX: &[u8] = include_bytes!("../data/archive-three-windows/index");

const ID1: &str = "0x8c5ae9514312474582828d04e79e5867ca95b1392f435b7b837d2e27838e0051";
const ID2: &str = "0xdf560cf9dcacdf30c36d4abd8cea1e21f74febaf32cde8e82462625c5c43a108";
const ID3: &str = "0x62bc48697aa6731e2d1c5859c96542a087d24513633bac870e5acd7adf02b8c4";

/// The four messages of §14: +1h (n=1), +2h (n=2), +8d (n=3), +14d (n=4), plus one after the end.
fn three_window_messages() -> Vec<chs_proto::protobuf::WakuMessage> {
    vec![
        status_go_message(JAN1 + HOUR, TOPIC, 1),
        status_go_message(JAN1 + 2 * HOUR, TOPIC, 2),
        status_go_message(JAN1 + 8 * DAY, TOPIC, 3),
        status_go_message(JAN1 + 14 * DAY, TOPIC, 4),
        // After endDate (Jan 21): excluded, as in `…_ShouldCreateArchive`.
        status_go_message(JAN1 + 20 * DAY + 1, TOPIC, 5).clone(),
    ]
}

#[test]
fn three_windows_match_hand_composed_bytes() {
    let dir = tempdir();
    let messages = three_window_messages();
    // End = Jan 21 excludes the message at Jan 21 + 1 s only if it lies at or after the end.
    let end = JAN1 + 20 * DAY;
    let report = build(dir.path(), &messages[..4], &[TOPIC], JAN1, end);

    // Archive bytes composed from the field tags; the raw sizes 72/46/46 and paddings are §14's.
    let a1 = archive_bytes(JAN1, JAN1 + WEEK, &[TOPIC], &messages[0..2]);
    let a2 = archive_bytes(JAN1 + WEEK, JAN1 + 2 * WEEK, &[TOPIC], &messages[2..3]);
    let a3 = archive_bytes(JAN1 + 2 * WEEK, end, &[TOPIC], &messages[3..4]);
    assert_eq!((a1.len(), a2.len(), a3.len()), (72, 46, 46));
    // §14 spells archive 1 out in hex.
    assert_eq!(
        a1,
        unhex(
            "12121080c2aff0051880b7d4f0052204a4abdf64 1a180a01011090deaff0051a04a4abdf642201012a0101320101 \
             1a180a010110a0faaff0051a04a4abdf642201012a0101320102"
        )
    );
    let mut expected_data = Vec::new();
    for archive in [&a1, &a2, &a3] {
        expected_data.extend_from_slice(archive);
        expected_data.resize(expected_data.len().next_multiple_of(102_400), 0);
    }
    assert_eq!(expected_data.len(), 307_200);
    assert_eq!(read(dir.path(), "data"), expected_data);

    // Index metadata (offset 0 omitted) and ids from §14.
    let m1 = index_metadata_bytes(JAN1, JAN1 + WEEK, &[TOPIC], 0, 102_400, 102_400 - 72);
    let m2 = index_metadata_bytes(JAN1 + WEEK, JAN1 + 2 * WEEK, &[TOPIC], 102_400, 102_400, 102_400 - 46);
    let m3 = index_metadata_bytes(JAN1 + 2 * WEEK, end, &[TOPIC], 204_800, 102_400, 102_400 - 46);
    assert_eq!(m1, unhex("12121080c2aff0051880b7d4f0052204a4abdf64 2080a006 28b89f06"));
    assert_eq!(m2, unhex("12121080b7d4f0051880acf9f0052204a4abdf64 1880a006 2080a006 28d29f06"));
    assert_eq!(m3, unhex("12121080acf9f0051880fe98f1052204a4abdf64 1880c00c 2080a006 28d29f06"));
    // Sorted keys: 0x62bc… < 0x8c5a… < 0xdf56….
    let mut expected_index = index_entry(ID3, &m3);
    expected_index.extend(index_entry(ID1, &m1));
    expected_index.extend(index_entry(ID2, &m2));
    assert_eq!(expected_index.len(), 308);
    assert_eq!(read(dir.path(), "index"), expected_index);

    let ids: Vec<&str> = report.archives.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [ID1, ID2, ID3]);
    assert_eq!(report.archives.iter().map(|a| a.messages).collect::<Vec<_>>(), [2, 1, 1]);
    assert_eq!(report.archived_until, end);
}

#[test]
fn three_windows_match_the_vector_files() {
    let dir = tempdir();
    let messages = three_window_messages();
    build(dir.path(), &messages, &[TOPIC], JAN1, 1_579_564_800);
    assert!(read(dir.path(), "data") == VECTOR_DATA, "data differs from the vector");
    assert_eq!(read(dir.path(), "index"), VECTOR_INDEX);
}

#[test]
fn vector_files_read_and_verify() {
    let reader = Reader::from_bytes(VECTOR_INDEX, VECTOR_DATA.to_vec()).expect("reader");
    let ids: Vec<&str> = reader.entries().iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [ID1, ID2, ID3], "sorted by from");
    let report = reader.verify(PIECE_LENGTH);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert_eq!(report.messages, 4);
    assert_eq!(reader.extract(ID1).expect("extract").messages.len(), 2);
    let pieces: Vec<_> = reader.entries().iter().map(|e| e.piece_range(PIECE_LENGTH).expect("range")).collect();
    assert_eq!(pieces, [0..1, 1..2, 2..3]);
}

/// status-go-protobufs.md §10: the two worked index-metadata encodings and their ids.
#[test]
fn protobufs_section10_archive_ids() {
    let meta = |offset, size, padding| WakuMessageArchiveIndexMetadata {
        version: 0,
        metadata: Some(WakuMessageArchiveMetadata {
            version: 0,
            from: 1_577_836_800,
            to: 1_578_441_600,
            content_topic: vec![vec![1, 2, 3, 4]],
        }),
        offset,
        size,
        padding,
    };
    let first = meta(0, 102_400, 102_000);
    assert_eq!(first.encode_to_vec(), unhex("12121080c2aff0051880b7d4f0052204010203042080a00628f09c06"));
    assert_eq!(archive_id(&first), "0xa0eb799e578a651c4ee89d7b1daf820d54b20374a68a3c535c222d7bca9d3c70");
    let second = meta(102_400, 204_800, 1000);
    assert_eq!(second.encode_to_vec(), unhex("12121080c2aff0051880b7d4f0052204010203041880a0062080c00c28e807"));
    assert_eq!(archive_id(&second), "0xf1d508b962335b0723f6097c847eb6a293c59cc5e71ff9d0c2fdd4a2a75443b0");
    // The index holding the first entry, as §10 spells it.
    let key = "0xa0eb799e578a651c4ee89d7b1daf820d54b20374a68a3c535c222d7bca9d3c70";
    let mut index = chs_proto::protobuf::WakuMessageArchiveIndex::default();
    index.archives.insert(key.to_owned(), first.clone());
    let mut expected = unhex("0a620a42");
    expected.extend_from_slice(key.as_bytes());
    expected.extend(unhex("121c"));
    expected.extend(first.encode_to_vec());
    assert_eq!(chs_archive::format::encode_index(&index), expected);
}

/// §14's append scenario (status-go's `…_ShouldAppendArchives`): two runs, one entry each.
#[test]
fn append_scenario_ids() {
    let dir = tempdir();
    let jan7 = 1_578_355_200;
    let messages = [status_go_message(JAN1 + HOUR, TOPIC, 1), status_go_message(jan7 + 2 * HOUR, TOPIC, 2)];
    let run1 = build(dir.path(), &messages, &[TOPIC], JAN1, jan7);
    assert_eq!(run1.archives.len(), 1);
    assert_eq!(run1.archives[0].id, "0xfcb55da137eab90c1691c9c9ccc14a1a4030b2205514cf2f6722ec62f5a069cb");
    assert_eq!(run1.archived_until, jan7);
    let meta = index_metadata_bytes(JAN1, jan7, &[TOPIC], 0, 102_400, 102_354);
    assert_eq!(meta, unhex("12121080c2aff005188094cff0052204a4abdf64 2080a006 28d29f06"));
    let data1 = read(dir.path(), "data");
    assert_eq!(data1.len(), 102_400);

    let run2 = build(dir.path(), &messages, &[TOPIC], jan7, 1_578_960_000);
    assert_eq!(run2.archives.len(), 1);
    assert_eq!(run2.archives[0].offset, 102_400);
    assert_eq!(run2.archives[0].id, "0x7c210f4e11a76df25f87bc233499d1f6d367afdbfca315a88536e41270cdd444");
    let data2 = read(dir.path(), "data");
    assert_eq!(data2.len(), 204_800);
    assert_eq!(&data2[..102_400], &data1[..], "earlier bytes unchanged");
    assert_eq!(Reader::open(dir.path()).expect("open").entries().len(), 2);
}

/// status-go's `TestCreateHistoryArchiveTorrent_WithoutMessages`: no `data`, no `index`.
#[test]
fn without_messages_no_files() {
    let dir = tempdir();
    let archive_dir = dir.path().join("0x02aa");
    let report = build(&archive_dir, &[], &[TOPIC], JAN1, JAN1 + 6 * DAY);
    assert!(report.archives.is_empty());
    assert_eq!(report.windows_empty, 1);
    assert!(archive_dir.is_dir(), "the directory is created, as status-go does");
    assert!(!archive_dir.join("data").exists());
    assert!(!archive_dir.join("index").exists());
}

/// The padding table of §4.7, including the quirk rows.
#[test]
fn padding_table() {
    let p = 102_400;
    for (raw, pad, size) in [
        (1, p - 1, p),
        (72, 102_328, p),
        (102_399, 1, p),
        (102_400, 0, p),
        (102_401, 102_399, 2 * p),
        (204_799, 1, 2 * p),
        (204_800, 102_400, 3 * p),
    ] {
        assert_eq!(padding(raw, p), (pad, size), "raw {raw}");
    }
}
