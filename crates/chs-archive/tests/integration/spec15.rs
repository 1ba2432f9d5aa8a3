//! status-go-archives.md §15: each item in this crate's area, reproduced (R) or fixed (F).

use chs_archive::format::{decode_archive, decode_index};
use chs_archive::{
    ArchiveProblem, BuildError, BuildOptions, Builder, DecodeError, MAX_ARCHIVE_SIZE, MemorySource, PIECE_LENGTH,
    PlanError, ReadError, Reader, archive_id,
};
use chs_proto::Message as _;
use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};
use chs_proto::protobuf::{WakuMessage, WakuMessageArchive};
use sha3::Digest as _;

use crate::common::*;

/// A message whose hand-encoded archive (one message, one topic, window [JAN1, JAN1+WEEK)) is
/// exactly `raw` bytes.
fn message_for_raw(raw: usize) -> WakuMessage {
    for (len, pad) in (raw.saturating_sub(200)..raw).flat_map(|len| (1..4).map(move |pad| (len, pad))) {
        let mut m = status_go_message(JAN1 + HOUR, TOPIC, 1);
        m.payload = vec![7; len];
        m.padding = vec![0; pad];
        if archive_bytes(JAN1, JAN1 + WEEK, &[TOPIC], std::slice::from_ref(&m)).len() == raw {
            return m;
        }
    }
    panic!("no payload length gives {raw}");
}

fn build_one(dir: &std::path::Path, m: WakuMessage) -> chs_archive::BuildReport {
    build(dir, &[m], &[TOPIC], JAN1, JAN1 + WEEK)
}

/// Item 1 (R): an encoding that is an exact multiple of P and larger than P gets a whole extra zero
/// piece; one of exactly P gets none.
#[test]
fn spec15_item1_padding_quirk_reproduced() {
    let dir = tempdir();
    let report = build_one(dir.path(), message_for_raw(204_800));
    let archive = &report.archives[0];
    assert_eq!((archive.size, archive.padding), (307_200, 102_400));
    assert_eq!(read(dir.path(), "data").len(), 307_200);

    let dir = tempdir();
    let report = build_one(dir.path(), message_for_raw(102_400));
    assert_eq!((report.archives[0].size, report.archives[0].padding), (102_400, 0));

    let dir = tempdir();
    let report = build_one(dir.path(), message_for_raw(102_401));
    assert_eq!((report.archives[0].size, report.archives[0].padding), (204_800, 102_399));
}

/// Item 2 (R): the id is Keccak-256 (not SHA3-256) of the encoded index metadata, `0x` + lowercase hex.
#[test]
fn spec15_item2_archive_id_is_keccak_of_metadata() {
    let dir = tempdir();
    let report = build(dir.path(), &[status_go_message(JAN1 + HOUR, TOPIC, 1)], &[TOPIC], JAN1, JAN1 + WEEK);
    let hand = index_metadata_bytes(JAN1, JAN1 + WEEK, &[TOPIC], 0, 102_400, 102_400 - 46);
    let keccak = format!("0x{}", hex::encode(sha3::Keccak256::digest(&hand)));
    let sha3_256 = format!("0x{}", hex::encode(sha3::Sha3_256::digest(&hand)));
    assert_eq!(report.archives[0].id, keccak);
    assert_ne!(report.archives[0].id, sha3_256);
}

/// Item 3 (F/compat): we write sorted keys; readers accept any order.
#[test]
fn spec15_item3_sorted_index_any_order_accepted() {
    let dir = tempdir();
    let messages: Vec<_> = (0..6).map(|i| status_go_message(JAN1 + i * WEEK + HOUR, TOPIC, i as u8)).collect();
    build(dir.path(), &messages, &[TOPIC], JAN1, JAN1 + 6 * WEEK);
    let index = read(dir.path(), "index");
    let decoded = decode_index(&index).expect("decode");
    assert_eq!(decoded.archives.len(), 6);
    // Re-compose the entries by hand in reverse key order: a status-go index with Go's map order.
    let mut reversed = Vec::new();
    for (key, value) in decoded.archives.iter().rev() {
        reversed.extend(index_entry(key, &value.encode_to_vec()));
    }
    assert_ne!(reversed, index);
    let keys_in_file_order = |bytes: &[u8]| {
        let mut keys = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let len = bytes[pos + 1] as usize; // entries are < 128 bytes here
            keys.push(String::from_utf8(bytes[pos + 4..pos + 4 + 66].to_vec()).expect("key"));
            pos += 2 + len;
        }
        keys
    };
    let written = keys_in_file_order(&index);
    let mut sorted = written.clone();
    sorted.sort();
    assert_eq!(written, sorted, "keys are written sorted");
    let a = Reader::from_bytes(&index, read(dir.path(), "data")).expect("sorted");
    let b = Reader::from_bytes(&reversed, read(dir.path(), "data")).expect("reversed");
    assert_eq!(a.entries(), b.entries());
    assert!(b.verify(PIECE_LENGTH).is_ok());
}

fn encrypted_protocol_message(installation_id: &str) -> Vec<u8> {
    let mut msg = ProtocolMessage { installation_id: installation_id.to_owned(), ..ProtocolMessage::default() };
    msg.encrypted_message.insert(
        "none".to_owned(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader { seq_no: 1, group_id: vec![2; 33], key_id: vec![3; 32], ..HrHeader::default() }),
            payload: vec![0xee; 48],
            ..EncryptedMessageProtocol::default()
        },
    );
    msg.encode_to_vec()
}

/// Issue 19 item 3: a wrapped index or archive names its hash-ratchet key, group and sequence
/// number (what a member records when it cannot open it); anything else names none.
#[test]
fn hash_ratchet_wrapping_is_described_without_the_key() {
    let bytes = encrypted_protocol_message("0b5f1b0c-3c1a-4a6e-9e55-2b8b6b1f6c3d");
    assert!(matches!(decode_index(&bytes), Err(DecodeError::Encrypted { .. })));
    let wrapping = chs_archive::hash_ratchet_wrapping(&bytes).expect("hash-ratchet wrapped");
    assert_eq!(wrapping.installation_id, "0b5f1b0c-3c1a-4a6e-9e55-2b8b6b1f6c3d");
    assert_eq!(wrapping.group_id, format!("0x{}", "02".repeat(33)));
    assert_eq!(wrapping.key_id, format!("0x{}", "03".repeat(32)));
    assert_eq!(wrapping.seq_no, 1);
    let text = wrapping.to_string();
    assert!(text.contains("hash-ratchet key 0x0303") && text.contains("seq 1"), "{text}");
    // A plaintext index, a public ProtocolMessage and garbage are not hash-ratchet wrapped.
    let dir = tempdir();
    build(dir.path(), &[status_go_message(JAN1 + HOUR, TOPIC, 1)], &[TOPIC], JAN1, JAN1 + WEEK);
    assert_eq!(chs_archive::hash_ratchet_wrapping(&read(dir.path(), "index")), None);
    let public = ProtocolMessage { public_message: vec![1, 2], ..ProtocolMessage::default() }.encode_to_vec();
    assert_eq!(chs_archive::hash_ratchet_wrapping(&public), None);
    assert_eq!(chs_archive::hash_ratchet_wrapping(&[0xff, 0xff]), None);
}

/// Item 4 (F/compat): an encrypted archive that status-go's parse-failure test takes for an empty
/// plaintext archive (silent data loss) is recognised as encrypted.
#[test]
fn spec15_item4_encrypted_archive_detected() {
    // No installation id: the bytes are only field 101, which a plaintext parse skips.
    let bytes = encrypted_protocol_message("");
    let status_go_view = WakuMessageArchive::decode(bytes.as_slice()).expect("status-go's parse succeeds");
    assert!(status_go_view.messages.is_empty(), "status-go would import 0 messages and mark the archive done");
    assert_eq!(decode_archive(&bytes), Err(DecodeError::Encrypted { installation_id: String::new() }));
    // A real UUID installation id: still recognised.
    let bytes = encrypted_protocol_message("0b5f1b0c-3c1a-4a6e-9e55-2b8b6b1f6c3d");
    assert!(
        matches!(decode_archive(&bytes), Err(DecodeError::Encrypted { installation_id }) if installation_id.len() == 36)
    );

    // Inside a directory: inspect marks it, extract and verify report a typed error naming the archive.
    let dir = tempdir();
    build(dir.path(), &[status_go_message(JAN1 + HOUR, TOPIC, 1)], &[TOPIC], JAN1, JAN1 + WEEK);
    let reader = Reader::open(dir.path()).expect("open");
    let entry = reader.entries()[0].clone();
    let mut data = read(dir.path(), "data");
    let mut meta = entry.metadata.clone();
    meta.padding = meta.size - bytes.len() as u64;
    data[..bytes.len()].copy_from_slice(&bytes);
    data[bytes.len()..meta.size as usize].fill(0);
    let id = archive_id(&meta);
    let index = index_entry(&id, &meta.encode_to_vec());
    let reader = Reader::from_bytes(&index, data).expect("reader");
    let err = reader.extract(&id).expect_err("encrypted");
    assert!(
        matches!(&err, ReadError::Archive { id: got, problem: ArchiveProblem::Decode(DecodeError::Encrypted { .. }) } if *got == id),
        "{err:?}"
    );
    assert!(reader.rows()[0].encrypted);
    assert!(reader.rows()[0].message_count.is_none());
    let report = reader.verify(PIECE_LENGTH);
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].id, id);
}

/// Item 4 (index side): an encrypted index is reported, by the reader and by the builder.
#[test]
fn spec15_item4_encrypted_index_detected() {
    let bytes = encrypted_protocol_message("0b5f1b0c-3c1a-4a6e-9e55-2b8b6b1f6c3d");
    assert!(matches!(decode_index(&bytes), Err(DecodeError::Encrypted { .. })));
    let dir = tempdir();
    std::fs::write(dir.path().join("index"), &bytes).expect("write");
    assert!(matches!(Reader::open(dir.path()), Err(ReadError::Index(DecodeError::Encrypted { .. }))));
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + WEEK);
    options.from = Some(JAN1);
    let source = MemorySource::new(vec![status_go_message(JAN1 + HOUR, TOPIC, 1)]);
    let err = Builder::new(dir.path(), options).run(&source).expect_err("encrypted index");
    assert!(matches!(err, BuildError::Index { source: DecodeError::Encrypted { .. }, .. }), "{err:?}");
    assert_eq!(read(dir.path(), "index"), bytes, "nothing was changed");
}

/// Item 5 (R): every offset and size is piece-aligned, whatever the archive sizes.
#[test]
fn spec15_item5_offsets_piece_aligned() {
    let dir = tempdir();
    let messages: Vec<_> = (0..40u32)
        .map(|i| message(JAN1 + u64::from(i) * DAY / 3, TOPIC, i, 1000 + 7919 * i as usize % 90_000))
        .collect();
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 14 * DAY);
    options.from = Some(JAN1);
    options.size_cap = 150_000;
    let report = Builder::new(dir.path(), options).run(&MemorySource::new(messages)).expect("build");
    assert!(report.archives.len() > 4);
    for archive in &report.archives {
        assert_eq!(archive.offset % PIECE_LENGTH, 0);
        assert_eq!(archive.size % PIECE_LENGTH, 0);
    }
    assert_eq!(read(dir.path(), "data").len() as u64 % PIECE_LENGTH, 0);
}

/// Item 7 (F): an oversized message is reported (hash, timestamp, size) and kept out; a window
/// whose only messages are oversized yields no archive (status-go writes an empty one).
#[test]
fn spec15_item7_oversized_reported_no_empty_archive() {
    let dir = tempdir();
    let mut big = status_go_message(JAN1 + HOUR, TOPIC, 9);
    big.payload = vec![1; 200];
    let mut big2 = big.clone();
    big2.timestamp = JAN1 + WEEK + HOUR;
    big2.hash = vec![10];
    let small = status_go_message(JAN1 + WEEK + 2 * HOUR, TOPIC, 11);
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 2 * WEEK);
    options.from = Some(JAN1);
    options.size_cap = 100;
    let report =
        Builder::new(dir.path(), options).run(&MemorySource::new(vec![big, big2, small.clone()])).expect("build");
    assert_eq!(report.oversized.len(), 2);
    assert_eq!(report.oversized[0].hash, "0x09");
    assert_eq!(report.oversized[0].timestamp, JAN1 + HOUR);
    assert_eq!(report.oversized[0].size, 201);
    assert_eq!(report.archives.len(), 1, "no empty archive for the first window");
    assert_eq!(report.archives[0].window.from, JAN1 + WEEK);
    let reader = Reader::open(dir.path()).expect("open");
    assert_eq!(reader.extract(&report.archives[0].id).expect("extract").messages, vec![small]);
}

/// §4.4 chunking at the real 30,000,000-byte cap: `>` is strict (a chunk may total exactly MAX), all
/// chunks of a window share metadata, and a message of MAX + 1 is oversized.
#[test]
fn spec_chunking_at_the_30mb_cap() {
    let payload = |n: usize| vec![0x5a; n];
    let mut msgs = Vec::new();
    // Window 1: 10,000,000 + 19,999,999 + 1 (sig) = exactly MAX in one chunk, then 2 more bytes.
    let mut a = status_go_message(JAN1 + 1, TOPIC, 1);
    a.payload = payload(10_000_000 - 1);
    let mut b = status_go_message(JAN1 + 2, TOPIC, 2);
    b.payload = payload(19_999_999);
    let c = status_go_message(JAN1 + 3, TOPIC, 3);
    let mut too_big = status_go_message(JAN1 + 4, TOPIC, 4);
    too_big.payload = payload(MAX_ARCHIVE_SIZE as usize); // + 1-byte sig = MAX + 1
    msgs.extend([a.clone(), b.clone(), c.clone(), too_big]);
    let dir = tempdir();
    let report = build(dir.path(), &msgs, &[TOPIC], JAN1, JAN1 + WEEK);
    assert_eq!(report.archives.iter().map(|a| a.messages).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(report.oversized.len(), 1);
    assert_eq!(report.oversized[0].size, MAX_ARCHIVE_SIZE + 1);
    let reader = Reader::open(dir.path()).expect("open");
    let first = reader.extract(&report.archives[0].id).expect("first");
    let second = reader.extract(&report.archives[1].id).expect("second");
    assert_eq!(first.messages, vec![a, b]);
    assert_eq!(second.messages, vec![c]);
    assert_eq!(first.metadata, second.metadata, "chunks share metadata");
    assert_eq!(report.archives[1].offset, report.archives[0].size);
    assert!(reader.verify(PIECE_LENGTH).is_ok());
}

/// Item 8 (F): the in-memory source applies the topic filter (status-go's in-memory path does not).
#[test]
fn spec15_item8_memory_source_filters_topics() {
    let dir = tempdir();
    let other = [9, 9, 9, 9];
    let mine = status_go_message(JAN1 + HOUR, TOPIC, 1);
    let theirs = status_go_message(JAN1 + 2 * HOUR, other, 2);
    let report = build(dir.path(), &[mine.clone(), theirs], &[TOPIC], JAN1, JAN1 + WEEK);
    let reader = Reader::open(dir.path()).expect("open");
    assert_eq!(reader.extract(&report.archives[0].id).expect("extract").messages, vec![mine]);
}

/// Item 9 (F): archives hold messages in `timestamp, topic` order whatever the source order.
#[test]
fn spec15_item9_ordered_query() {
    let dir = tempdir();
    let t2 = [0xff, 0, 0, 0];
    let msgs = vec![
        status_go_message(JAN1 + 30, TOPIC, 1),
        status_go_message(JAN1 + 10, t2, 2),
        status_go_message(JAN1 + 10, TOPIC, 3),
        status_go_message(JAN1 + 20, TOPIC, 4),
    ];
    let report = build(dir.path(), &msgs, &[t2, TOPIC], JAN1, JAN1 + WEEK);
    let got = Reader::open(dir.path()).expect("open").extract(&report.archives[0].id).expect("extract").messages;
    assert_eq!(got.iter().map(|m| m.hash[0]).collect::<Vec<_>>(), [3, 2, 4, 1]);
}

/// Item 26 (F): an interval of 0 is an error, not an endless loop.
#[test]
fn spec15_item26_zero_interval_is_an_error() {
    let dir = tempdir();
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + WEEK);
    options.from = Some(JAN1);
    options.interval = 0;
    let err = Builder::new(dir.path(), options).run(&MemorySource::default()).expect_err("interval 0");
    assert!(matches!(err, BuildError::InvalidOption(_)), "{err:?}");
    assert_eq!(chs_archive::windows(0, 10, 0).err(), Some(PlanError::ZeroInterval));
    assert_eq!(
        chs_archive::plan_catch_up(Some(1), None, 10, 0, chs_archive::CatchUpPolicy::default()),
        Err(PlanError::ZeroInterval)
    );
}

/// Item 27 (F): a short read of `data` is detected and named, not decoded from a partial buffer.
#[test]
fn spec15_item27_short_read_detected() {
    let dir = tempdir();
    let report = build(dir.path(), &[message(JAN1 + HOUR, TOPIC, 1, 5000)], &[TOPIC], JAN1, JAN1 + WEEK);
    let reader = Reader::open(dir.path()).expect("open");
    // The file shrinks after the reader looked at it.
    let file = std::fs::OpenOptions::new().write(true).open(dir.path().join("data")).expect("open data");
    file.set_len(1000).expect("truncate");
    let err = reader.extract(&report.archives[0].id).expect_err("short");
    assert!(matches!(err, ReadError::Archive { problem: ArchiveProblem::ShortRead { got: 1000, .. }, .. }), "{err:?}");
    // Reopened, the archive is out of bounds.
    let reader = Reader::open(dir.path()).expect("reopen");
    let err = reader.extract(&report.archives[0].id).expect_err("out of bounds");
    assert!(matches!(err, ReadError::Archive { problem: ArchiveProblem::OutOfBounds { data_len: 1000, .. }, .. }));
}
