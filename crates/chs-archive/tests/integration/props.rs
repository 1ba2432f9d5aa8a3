//! Property tests: piece alignment, append-only, round trip, ids, and no panics on arbitrary bytes.

use chs_archive::{BuildOptions, Builder, MemorySource, PIECE_LENGTH, Reader, Topic, fuzz};
use chs_proto::Message as _;
use chs_proto::protobuf::{WakuMessage, WakuMessageArchive};
use proptest::prelude::*;
use sha3::Digest as _;

use crate::common::*;

const TOPICS: [Topic; 3] = [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]];

fn arb_message() -> impl Strategy<Value = WakuMessage> {
    (
        0..4 * WEEK,
        0..3usize,
        prop_oneof![Just(0usize), 1..200usize, 5_000..60_000usize],
        proptest::collection::vec(any::<u8>(), 0..3),
        any::<u32>(),
    )
        .prop_map(|(offset, topic, payload_len, padding, seed)| {
            let mut m = message(JAN1 + offset, TOPICS[topic], seed, payload_len);
            m.padding = padding;
            m
        })
}

fn arb_case() -> impl Strategy<Value = (Vec<WakuMessage>, u64, u64, u64)> {
    (
        proptest::collection::vec(arb_message(), 0..40),
        prop_oneof![Just(WEEK), DAY..3 * WEEK],
        prop_oneof![Just(chs_archive::MAX_ARCHIVE_SIZE), 100..150_000u64],
        0..5 * WEEK,
    )
        .prop_map(|(msgs, interval, cap, span)| (msgs, interval, cap, span))
}

/// The expected archive contents, computed independently of the builder: per window, the messages
/// on the selected topics in (timestamp, topic, input) order, without the oversized ones, split
/// at the cap.
fn expected(
    msgs: &[WakuMessage],
    topics: &[Topic],
    from: u64,
    to: u64,
    interval: u64,
    cap: u64,
) -> Vec<Vec<WakuMessage>> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + interval).min(to);
        let mut window: Vec<&WakuMessage> = msgs
            .iter()
            .filter(|m| m.timestamp >= start && m.timestamp < end && topics.iter().any(|t| t[..] == m.topic[..]))
            .collect();
        window.sort_by(|a, b| (a.timestamp, &a.topic).cmp(&(b.timestamp, &b.topic)));
        let mut chunk: Vec<WakuMessage> = Vec::new();
        let mut sum = 0;
        for m in window {
            let s = (m.payload.len() + m.sig.len()) as u64;
            if s > cap {
                continue;
            }
            if sum + s > cap && !chunk.is_empty() {
                out.push(std::mem::take(&mut chunk));
                sum = 0;
            }
            chunk.push(m.clone());
            sum += s;
        }
        if !chunk.is_empty() {
            out.push(chunk);
        }
        start = end;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn build_extract_round_trip((msgs, interval, cap, span) in arb_case()) {
        let dir = tempdir();
        let topics = [TOPICS[0], TOPICS[2]];
        let (from, to) = (JAN1 + DAY / 2, JAN1 + DAY / 2 + span);
        let mut options = BuildOptions::new(topics.to_vec(), to);
        options.from = Some(from);
        options.interval = interval;
        options.size_cap = cap;
        let report = Builder::new(dir.path(), options).run(&MemorySource::new(msgs.clone())).expect("build");
        let data = std::fs::read(dir.path().join("data")).unwrap_or_default();
        let reader = Reader::open(dir.path()).expect("open");
        // Every archive is a whole number of pieces, and they tile `data`.
        let mut end = 0;
        for archive in &report.archives {
            prop_assert_eq!(archive.offset, end);
            prop_assert_eq!(archive.size % PIECE_LENGTH, 0);
            prop_assert!(archive.padding <= archive.size);
            end += archive.size;
        }
        prop_assert_eq!(data.len() as u64, end);
        // Ids are Keccak-256 of the entries, and everything verifies.
        for entry in reader.entries() {
            let digest = sha3::Keccak256::digest(entry.metadata.encode_to_vec());
            prop_assert_eq!(&entry.id, &format!("0x{}", hex::encode(digest)));
        }
        let verify = reader.verify(PIECE_LENGTH);
        prop_assert!(verify.is_ok(), "{:?}", verify.violations);
        // extract(build(messages)) gives exactly the stored messages of each window, in order.
        let got: Vec<Vec<WakuMessage>> =
            report.archives.iter().map(|a| reader.extract(&a.id).expect("extract").messages).collect();
        prop_assert_eq!(got, expected(&msgs, &topics, from, to, interval, cap));
        // The streamed encoding equals prost's encoding of the whole archive struct.
        for archive in &report.archives {
            let raw = reader.read_raw(&archive.id).expect("raw");
            let decoded = WakuMessageArchive::decode(raw.as_slice()).expect("decode");
            prop_assert_eq!(decoded.encode_to_vec(), raw);
        }
    }

    #[test]
    fn appending_never_changes_earlier_bytes(
        (msgs, interval, cap, _span) in arb_case(),
        later in proptest::collection::vec(arb_message(), 0..10),
        split in 0..4 * WEEK,
    ) {
        let dir = tempdir();
        let topics = TOPICS.to_vec();
        let mut first = BuildOptions::new(topics.clone(), JAN1 + split);
        first.from = Some(JAN1);
        first.interval = interval;
        first.size_cap = cap;
        Builder::new(dir.path(), first.clone()).run(&MemorySource::new(msgs.clone())).expect("first");
        let before = std::fs::read(dir.path().join("data")).unwrap_or_default();
        let entries_before = Reader::open(dir.path()).expect("open").entries().to_vec();
        // More messages arrive (also inside already archived windows), and the next range is built.
        let mut all = msgs;
        all.extend(later);
        let mut second = first;
        second.to = JAN1 + 5 * WEEK;
        second.from = None;
        Builder::new(dir.path(), second).run(&MemorySource::new(all)).expect("second");
        let after = std::fs::read(dir.path().join("data")).unwrap_or_default();
        prop_assert!(after.len() >= before.len());
        prop_assert!(after[..before.len()] == before[..]);
        let reader = Reader::open(dir.path()).expect("reopen");
        for entry in &entries_before {
            prop_assert!(reader.entries().contains(entry));
        }
        prop_assert!(reader.verify(PIECE_LENGTH).is_ok());
    }

    #[test]
    fn padding_aligns_and_quirk_holds(raw in 1..10_000_000u64, piece in prop_oneof![Just(PIECE_LENGTH), 1..300_000u64]) {
        let (pad, size) = chs_archive::padding(raw, piece);
        prop_assert_eq!(size, raw + pad);
        prop_assert_eq!(size % piece, 0);
        if raw > piece && raw % piece == 0 {
            prop_assert_eq!(pad, piece);
        } else {
            prop_assert!(pad < piece);
        }
    }

    #[test]
    fn index_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::index(&bytes);
    }

    #[test]
    fn archive_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::archive(&bytes);
    }

    #[test]
    fn directory_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        fuzz::directory(&bytes);
    }

    /// Mutations of a real directory (more likely to reach deep paths than random bytes).
    #[test]
    fn mutated_directory_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let index = include_bytes!("../data/archive-three-windows/index");
        let mut bytes = vec![0u8; 2];
        bytes[..2].copy_from_slice(&(index.len() as u16).to_le_bytes());
        bytes.extend_from_slice(index);
        bytes.extend(archive_bytes(JAN1, JAN1 + WEEK, &[TOPIC], &[status_go_message(JAN1 + 1, TOPIC, 1)]));
        for (at, value) in flips {
            let i = at.index(bytes.len() - 2) + 2;
            bytes[i] = value;
        }
        fuzz::directory(&bytes);
        fuzz::index(&bytes[2..]);
    }
}
