//! Store tests on real SQLite files.

use std::ops::ControlFlow;

use super::*;

pub(crate) fn msg(n: u32, topic: Topic, ts_secs: i64) -> StoredMessage {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&n.to_be_bytes());
    hash[4..8].copy_from_slice(&topic);
    StoredMessage {
        hash,
        pubsub_topic: "/waku/2/rs/16/32".into(),
        content_topic: format!("/waku/1/0x{}/rfc26", hex::encode(topic)),
        topic,
        timestamp_ns: ts_secs * 1_000_000_000 + i64::from(n % 1000),
        version: 1,
        meta: Vec::new(),
        raw_payload: None,
        payload: n.to_le_bytes().repeat(8),
        padding: vec![1, 2, 3],
        sig: [vec![4u8], vec![7; 64]].concat(),
        third_party_id: String::new(),
        received_at_ms: 5,
    }
}

const A: Topic = [1, 2, 3, 4];
const B: Topic = [5, 6, 7, 8];

fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chs.db")).unwrap();
    (dir, store)
}

#[test]
fn insert_ignores_duplicates_and_reopens() {
    let (dir, mut store) = open_temp();
    let batch: Vec<_> = (0..10).map(|n| msg(n, A, 100 + i64::from(n))).collect();
    assert_eq!(store.insert_batch(&batch).unwrap(), 10);
    assert_eq!(store.insert_batch(&batch[5..]).unwrap(), 0);
    assert_eq!(store.insert_batch(&[msg(10, A, 1)]).unwrap(), 1);
    drop(store);
    let store = Store::open(&dir.path().join("chs.db")).unwrap();
    assert_eq!(store.count().unwrap(), 11);
    let back = store.messages_in_range(&[A], 0, u64::MAX).unwrap();
    assert_eq!(back[0], msg(10, A, 1));
    assert_eq!(&back[1..], &batch[..]);
}

#[test]
fn range_is_half_open_filtered_and_ordered() {
    let (_dir, mut store) = open_temp();
    // Inserted out of order, on two topics; same-second ties are broken by topic, then insertion.
    let rows = vec![msg(1, B, 200), msg(2, A, 200), msg(3, A, 100), msg(4, A, 300), msg(5, A, 199), msg(6, B, 100)];
    store.insert_batch(&rows).unwrap();
    let got: Vec<u32> = store
        .messages_in_range(&[A, B], 100, 300)
        .unwrap()
        .iter()
        .map(|m| u32::from_be_bytes([m.hash[0], m.hash[1], m.hash[2], m.hash[3]]))
        .collect();
    assert_eq!(got, vec![3, 6, 5, 2, 1]);
    assert_eq!(store.messages_in_range(&[A], 100, 300).unwrap().len(), 3);
    assert!(store.messages_in_range(&[], 0, u64::MAX).unwrap().is_empty());
    assert_eq!(store.first_timestamp_secs(&[A]).unwrap(), Some(100));
    assert_eq!(store.last_timestamp_secs(&[B]).unwrap(), Some(200));
    assert_eq!(store.last_timestamp_secs(&[[9, 9, 9, 9]]).unwrap(), None);
    assert_eq!(store.last_timestamp_secs(&[]).unwrap(), None);
}

#[test]
fn scan_stops_early_and_reports_callback_errors() {
    let (_dir, mut store) = open_temp();
    store.insert_batch(&(0..20).map(|n| msg(n, A, i64::from(n))).collect::<Vec<_>>()).unwrap();
    let mut seen = 0;
    store
        .for_each_in_range(&[A], 0, 100, |_| {
            seen += 1;
            Ok::<_, ()>(if seen == 5 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        })
        .unwrap();
    assert_eq!(seen, 5);
    let err = store.for_each_in_range(&[A], 0, 100, |_| Err::<ControlFlow<()>, _>("boom")).unwrap_err();
    assert!(matches!(err, ScanError::Callback("boom")));
}

#[test]
fn replace_range_is_exact_and_atomic() {
    let (_dir, mut store) = open_temp();
    store.insert_batch(&[msg(1, A, 50), msg(2, A, 100), msg(3, A, 150), msg(4, B, 120), msg(5, A, 200)]).unwrap();
    let new = vec![msg(10, A, 100), msg(11, A, 199)];
    let stats = store.replace_range(PS, &[A], 100, 200, &new).unwrap();
    assert_eq!(stats, ReplaceStats { deleted: 2, inserted: 2 });
    let all: Vec<_> = store.messages_in_range(&[A, B], 0, 1000).unwrap();
    let ids: Vec<u8> = all.iter().map(|m| m.hash[3]).collect();
    assert_eq!(ids, vec![1, 10, 4, 11, 5]);
    // A message outside the range is refused and nothing changes.
    let err = store.replace_range(PS, &[A], 100, 200, &[msg(12, A, 250)]).unwrap_err();
    assert!(matches!(err, StoreError::InvalidMessage(_)), "{err}");
    assert_eq!(store.count().unwrap(), 5);
    // Idempotent.
    store.replace_range(PS, &[A], 100, 200, &new).unwrap();
    assert_eq!(store.messages_in_range(&[A, B], 0, 1000).unwrap(), all);
}

const PS: &str = "/waku/2/rs/16/32";

#[test]
fn replace_range_never_touches_another_pubsub_topic() {
    let (_dir, mut store) = open_temp();
    let mut other = msg(1, A, 150);
    other.pubsub_topic = "/waku/2/rs/16/64".into();
    store.insert_batch(&[other.clone(), msg(2, A, 150)]).unwrap();
    let stats = store.replace_range(PS, &[A], 100, 200, &[msg(3, A, 160)]).unwrap();
    assert_eq!(stats, ReplaceStats { deleted: 1, inserted: 1 });
    assert!(store.contains(&other.hash).unwrap(), "the other pubsub topic's message was deleted");
    // A message of another pubsub topic is refused and nothing changes.
    let mut foreign = msg(4, A, 170);
    foreign.pubsub_topic = "/waku/2/rs/16/64".into();
    let err = store.replace_range(PS, &[A], 100, 200, &[foreign]).unwrap_err();
    assert!(matches!(err, StoreError::InvalidMessage(_)), "{err}");
    assert_eq!(store.count().unwrap(), 2);
}

#[test]
fn retention_deletes_only_old_rows_of_the_topics() {
    let (_dir, mut store) = open_temp();
    store.insert_batch(&[msg(1, A, 50), msg(2, A, 150), msg(3, B, 50)]).unwrap();
    assert_eq!(store.delete_older_than(&[A], 100).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 2);
}

#[test]
fn archive_message_roundtrip() {
    let m = msg(7, A, 1_577_840_400);
    let archived = m.to_archive_message();
    assert_eq!(archived.timestamp, 1_577_840_400);
    assert_eq!(archived.topic, A.to_vec());
    let back = StoredMessage::from_archive_message("/waku/2/rs/16/32", &archived, 5).unwrap();
    assert_eq!(back.to_archive_message(), archived);
    let mut bad = archived.clone();
    bad.hash.pop();
    assert!(StoredMessage::from_archive_message("p", &bad, 0).is_err());
}

#[test]
fn topics_from_content_topics() {
    assert_eq!(topic_from_content_topic("/waku/1/0x1980b7cb/rfc26"), [0x19, 0x80, 0xb7, 0xcb]);
    // Not the rfc26 form: Keccak-256 of the string, stable.
    let t = topic_from_content_topic("/toy-chat/2/huilong/proto");
    assert_eq!(t, topic_from_content_topic("/toy-chat/2/huilong/proto"));
    assert_ne!(topic_from_content_topic("/waku/1/0x1980b7cz/rfc26"), [0x19, 0x80, 0xb7, 0xcb]);
}

#[test]
fn corrupt_and_foreign_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not sqlite at all, just some text that is long enough to matter........").unwrap();
    let before = std::fs::read(&junk).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), before);

    let foreign = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts VALUES (1, 'x');",
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&foreign).unwrap_err();
    assert!(matches!(err, StoreError::ForeignDatabase { ref tables, .. } if tables == &["accounts"]), "{err}");
}

#[test]
fn newer_schema_is_refused() {
    let (dir, store) = open_temp();
    store.connection().execute("UPDATE chs_schema SET version = 99 WHERE component = 'store'", []).unwrap();
    drop(store);
    let err = Store::open(&dir.path().join("chs.db")).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

#[test]
fn other_components_migrate_in_the_same_file() {
    let (_dir, mut store) = open_temp();
    let steps = ["CREATE TABLE extra (x INTEGER)", "ALTER TABLE extra ADD COLUMN y TEXT"];
    migrate(store.connection_mut(), "extra", &steps[..1]).unwrap();
    migrate(store.connection_mut(), "extra", &steps).unwrap();
    migrate(store.connection_mut(), "extra", &steps).unwrap();
    store.connection().execute("INSERT INTO extra (x, y) VALUES (1, 'a')", []).unwrap();
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn scan_returns_exactly_the_range_in_order(stamps in proptest::collection::vec((0i64..50, any::<bool>()), 0..60), from in 0u64..50, len in 0u64..50) {
            let (_dir, mut store) = open_temp();
            let rows: Vec<_> = stamps.iter().enumerate().map(|(i, (ts, b))| msg(u32::try_from(i).unwrap(), if *b { B } else { A }, *ts)).collect();
            store.insert_batch(&rows).unwrap();
            let got = store.messages_in_range(&[A, B], from, from + len).unwrap();
            let mut want: Vec<_> = rows.iter().enumerate().filter(|(_, m)| (from..from + len).contains(&m.timestamp_secs())).collect();
            want.sort_by_key(|(i, m)| (m.timestamp_secs(), m.topic, *i));
            let want: Vec<_> = want.into_iter().map(|(_, m)| m.clone()).collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn archived_scan_equals_the_full_scan_mapped_and_counts_by_topic() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let topics = [[1u8, 2, 3, 4], [9u8, 9, 9, 9]];
    let msgs: Vec<StoredMessage> = (0..50u64)
        .map(|i| {
            let archived = chs_proto::protobuf::WakuMessage {
                sig: vec![4; 65],
                timestamp: 1_700_000_000 + i * 37,
                topic: topics[(i % 2) as usize].to_vec(),
                payload: vec![i as u8; 10 + i as usize],
                padding: vec![0; (i % 3) as usize],
                hash: {
                    let mut h = [0u8; 32];
                    h[..8].copy_from_slice(&i.to_be_bytes());
                    h.to_vec()
                },
                third_party_id: if i % 5 == 0 { format!("tp{i}") } else { String::new() },
            };
            StoredMessage::from_archive_message("/waku/2/rs/16/32", &archived, 0).unwrap()
        })
        .collect();
    store.insert_batch(&msgs).unwrap();
    let (from, to) = (1_700_000_100, 1_700_001_500);
    let mut full = Vec::new();
    store
        .for_each_in_range(&topics, from, to, |m| {
            full.push(m.to_archive_message());
            Ok::<_, std::convert::Infallible>(std::ops::ControlFlow::Continue(()))
        })
        .unwrap();
    let mut lean = Vec::new();
    store
        .for_each_archived_in_range(&topics, from, to, |m| {
            lean.push(m);
            Ok::<_, std::convert::Infallible>(std::ops::ControlFlow::Continue(()))
        })
        .unwrap();
    assert!(!full.is_empty());
    assert_eq!(lean, full);
    assert_eq!(store.count_on_topics(&topics[..1]).unwrap(), 25);
    assert_eq!(store.count_on_topics(&topics).unwrap(), 50);
    assert_eq!(store.count_on_topics(&[]).unwrap(), 0);
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Issue item 5: the store file, its `-wal` and its `-shm` are 0600 from creation (whatever the
/// umask: SQLite alone creates them 0644 under the usual 022), and a looser existing file is fixed.
#[cfg(unix)]
#[test]
fn private_keys_readable_by_others_store_files_are_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let mut store = Store::open(&db).unwrap();
    store.insert_batch(&[msg(1, A, 100)]).unwrap();
    let files = private_files::files(&db);
    let (wal, shm) = (&files[1], &files[2]);
    assert!(wal.exists() && shm.exists(), "WAL mode: the -wal and -shm files exist while the store is open");
    for f in [&db, wal, shm] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    drop(store);

    // An existing database (and a leftover -wal) readable by others is set to 0600.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(wal, b"").unwrap();
    std::fs::set_permissions(wal, std::fs::Permissions::from_mode(0o664)).unwrap();
    let store = Store::open(&db).unwrap();
    for f in [&db, wal, shm] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn opening_in_a_missing_folder_is_a_create_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&dir.path().join("nope").join("chs.db")).unwrap_err();
    assert!(matches!(err, StoreError::Create { .. }), "{err:?}");
}

#[test]
fn pages_in_wire_order_follow_timestamp_then_hash() {
    let (_dir, mut store) = open_temp();
    // Two messages share each second; msg() spreads timestamp_ns by n % 1000.
    let batch: Vec<_> = (0..20).map(|n| msg(n, if n % 3 == 0 { B } else { A }, 100 + i64::from(n / 2))).collect();
    store.insert_batch(&batch).unwrap();
    let a_topic = vec![format!("/waku/1/0x{}/rfc26", hex::encode(A))];
    let mut want: Vec<_> = batch.iter().filter(|m| m.topic == A).cloned().collect();
    want.sort_by_key(|m| (m.timestamp_ns, m.hash));
    let mut query = crate::WirePageQuery {
        pubsub_topic: "/waku/2/rs/16/32",
        content_topics: &a_topic,
        start_ns: None,
        end_ns: None,
        after: None,
        forward: true,
        limit: 5,
        relayed_only: false,
    };
    let mut got = Vec::new();
    loop {
        let page = store.page_in_wire_order(&query).unwrap().unwrap();
        let Some(last) = page.last() else { break };
        query.after = Some(last.hash);
        got.extend(page);
    }
    assert_eq!(got, want);
    // Backward from the end, and an inclusive range.
    query.after = None;
    query.forward = false;
    query.limit = 100;
    let mut back = store.page_in_wire_order(&query).unwrap().unwrap();
    back.reverse();
    assert_eq!(back, want);
    query.forward = true;
    query.start_ns = Some(want[2].timestamp_ns);
    query.end_ns = Some(want[4].timestamp_ns);
    assert_eq!(store.page_in_wire_order(&query).unwrap().unwrap(), want[2..=4].to_vec());
    // Other pubsub topic: nothing; unknown cursor: None.
    assert_eq!(
        store.page_in_wire_order(&crate::WirePageQuery { pubsub_topic: "/x", ..query.clone() }).unwrap(),
        Some(vec![])
    );
    assert_eq!(store.page_in_wire_order(&crate::WirePageQuery { after: Some([9; 32]), ..query }).unwrap(), None);
    assert_eq!(store.messages_by_hash(&[want[1].hash, [9; 32]]).unwrap(), vec![want[1].clone()]);
    // msg() rows are version 1 without a relayed payload: none is relayed-only.
    let relayed = crate::WirePageQuery { relayed_only: true, start_ns: None, end_ns: None, ..query };
    assert_eq!(store.page_in_wire_order(&relayed).unwrap(), Some(vec![]));
}
