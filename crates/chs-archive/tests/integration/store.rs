//! The builder over the real SQLite message store gives the same bytes as over memory.

use chs_archive::{BuildOptions, Builder, MemorySource, MessageSource, PIECE_LENGTH, Reader};
use chs_store::{Store, StoredMessage};

use crate::common::*;

fn stored(messages: &[chs_proto::protobuf::WakuMessage]) -> Vec<StoredMessage> {
    messages
        .iter()
        .map(|m| StoredMessage::from_archive_message("/waku/2/rs/16/32", m, 1).expect("stored message"))
        .collect()
}

#[test]
fn store_and_memory_sources_build_identical_directories() {
    let other = [7, 7, 7, 7];
    let msgs: Vec<_> = (0..60u32)
        .map(|i| {
            let topic = if i % 4 == 0 { other } else { TOPIC };
            // Ties in timestamp on purpose (i / 2).
            message(JAN1 + u64::from(i / 2) * 9 * HOUR, topic, i, 100 + (i as usize * 977) % 3000)
        })
        .collect();
    let db = tempdir();
    let mut store = Store::open(&db.path().join("store.db")).expect("store");
    store.insert_batch(&stored(&msgs)).expect("insert");
    let to = JAN1 + 3 * WEEK;
    let mut options = BuildOptions::new(vec![TOPIC], to);
    options.size_cap = 20_000;

    let from_store = tempdir();
    let report = Builder::new(from_store.path(), options.clone()).run(&store).expect("store build");
    assert!(report.archives.len() >= 3, "{report:?}");
    // `from: None` and no index: the build starts at the oldest message on the topic.
    assert_eq!(report.range.expect("range").from, JAN1);
    let from_memory = tempdir();
    let memory = MemorySource::new(store_roundtrip(&msgs));
    Builder::new(from_memory.path(), options).run(&memory).expect("memory build");
    assert!(read(from_store.path(), "data") == read(from_memory.path(), "data"));
    assert_eq!(read(from_store.path(), "index"), read(from_memory.path(), "index"));
    let reader = Reader::open(from_store.path()).expect("open");
    assert!(reader.verify(PIECE_LENGTH).is_ok());
    let archived: usize = report.archives.iter().map(|a| reader.extract(&a.id).expect("extract").messages.len()).sum();
    assert_eq!(archived, msgs.iter().filter(|m| m.topic == TOPIC).count());
}

/// The messages as the store gives them back (`to_archive_message`).
fn store_roundtrip(msgs: &[chs_proto::protobuf::WakuMessage]) -> Vec<chs_proto::protobuf::WakuMessage> {
    stored(msgs).iter().map(StoredMessage::to_archive_message).collect()
}

#[test]
fn store_source_scans_in_order_with_topic_filter() {
    let db = tempdir();
    let mut store = Store::open(&db.path().join("store.db")).expect("store");
    let msgs = vec![
        message(JAN1 + 50, TOPIC, 1, 10),
        message(JAN1 + 10, [9, 9, 9, 9], 2, 10),
        message(JAN1 + 20, TOPIC, 3, 10),
    ];
    store.insert_batch(&stored(&msgs)).expect("insert");
    let mut seen = Vec::new();
    MessageSource::for_each_in_range(&store, &[TOPIC], JAN1, JAN1 + 100, &mut |m| {
        seen.push(m.timestamp);
        Ok::<(), std::convert::Infallible>(())
    })
    .expect("scan");
    assert_eq!(seen, [JAN1 + 20, JAN1 + 50]);
    assert_eq!(MessageSource::first_timestamp_secs(&store, &[TOPIC]).expect("first"), Some(JAN1 + 20));
    assert_eq!(MessageSource::first_timestamp_secs(&store, &[[5, 5, 5, 5]]).expect("first"), None);
}
