//! Unit and property tests of the community manager (real SQLite files in temp dirs).

use std::collections::BTreeSet;

use chs_proto::protobuf::{
    WakuMessage as ArchivedMessage, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata,
    WakuMessageArchiveMetadata,
};
use chs_store::{Store, StoredMessage, Topic};
use proptest::prelude::{ProptestConfig, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;

use super::*;

const COMMUNITY_SK: &str = "c6cbd7d76bc5baca530c875663711b947efa6a86a900a9e8645ce32e5821484e";
const COMMUNITY_ID: &str = "0x03cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2";

fn open() -> (tempfile::TempDir, Store, Communities) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("chs.db")).unwrap();
    let communities = Communities::open(&mut store).unwrap();
    (dir, store, communities)
}

fn archive_id(n: u8) -> String {
    format!("0x{}", hex::encode([n; 32]))
}

fn archived(seed: u32, topic: Topic, ts: u64) -> ArchivedMessage {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&seed.to_be_bytes());
    hash[4..8].copy_from_slice(&topic);
    ArchivedMessage {
        sig: vec![4; 65],
        timestamp: ts,
        topic: topic.to_vec(),
        payload: seed.to_be_bytes().to_vec(),
        padding: vec![],
        hash: hash.to_vec(),
        third_party_id: String::new(),
    }
}

fn metadata(from: u64, to: u64, topics: &[Topic]) -> WakuMessageArchiveMetadata {
    WakuMessageArchiveMetadata { version: 1, from, to, content_topic: topics.iter().map(|t| t.to_vec()).collect() }
}

/// Every stored message as (payload, topic, timestamp secs), sorted. Messages are named by
/// their payload (the seed), not their hash: imported rows are keyed by the hash computed from
/// their fields, never by the hash the archive claims.
fn snapshot(store: &Store, topics: &[Topic]) -> BTreeSet<(Vec<u8>, Topic, u64)> {
    store
        .messages_in_range(topics, 0, u64::MAX / 2)
        .unwrap()
        .into_iter()
        .map(|m| (m.payload.clone(), m.topic, m.timestamp_secs()))
        .collect()
}

// ----- keys and communities -----

#[test]
fn community_id_parses_and_prints_status_go_form() {
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    assert_eq!(id.to_string(), COMMUNITY_ID);
    let upper = format!("0x{}", COMMUNITY_ID[2..].to_ascii_uppercase());
    assert_eq!(upper.parse::<CommunityId>().unwrap(), id);
    for bad in
        ["", "0x", "0x03", &COMMUNITY_ID[..60], "0x04cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2"]
    {
        assert!(bad.parse::<CommunityId>().is_err(), "{bad}");
    }
}

#[test]
fn private_key_hex_errors_name_the_problem() {
    let key = parse_private_key(COMMUNITY_SK).unwrap();
    assert_eq!(CommunityId::from_public_key(&key.public_key()).to_string(), COMMUNITY_ID);
    assert!(parse_private_key(&format!("0x{COMMUNITY_SK}")).is_ok());
    let err = parse_private_key("abcd").unwrap_err().to_string();
    assert!(err.contains("64 hex digits"), "{err}");
    let zero = "0".repeat(64);
    assert!(parse_private_key(&zero).unwrap_err().to_string().contains("scalar"));
    assert!(parse_private_key(&"zz".repeat(32)).unwrap_err().to_string().contains("not hex"));
}

#[test]
fn installation_id_is_a_v4_uuid() {
    let a = generate_installation_id().unwrap();
    let b = generate_installation_id().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
}

#[test]
fn create_stores_key_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chs.db");
    let created = {
        let mut store = Store::open(&path).unwrap();
        let communities = Communities::open(&mut store).unwrap();
        communities.create(&mut store, &CreateOptions { name: "demo".into(), ..Default::default() }).unwrap()
    };
    assert!(created.is_control_node());
    assert_eq!(created.chats.len(), 1);
    assert!(created.chats[0].starts_with(&created.id.to_string()));
    let mut store = Store::open(&path).unwrap();
    let communities = Communities::open(&mut store).unwrap();
    let loaded = communities.get(&store, &created.id).unwrap();
    assert_eq!(loaded.name, "demo");
    assert_eq!(loaded.pubsub_topic, DEFAULT_PUBSUB_TOPIC);
    assert_eq!(loaded.chats, created.chats);
    assert_eq!(
        loaded.private_key().unwrap().to_bytes(),
        created.private_key().unwrap().to_bytes(),
        "the private key is persisted"
    );
    assert_eq!(communities.list(&store).unwrap().len(), 1);
}

#[test]
fn info_lists_topics_and_serialises_without_key() {
    let (_dir, mut store, communities) = open();
    communities
        .import_key(
            &mut store,
            COMMUNITY_SK,
            &CreateOptions { name: "n".into(), channels: vec!["u1".into()], ..Default::default() },
        )
        .unwrap();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    let info = communities.info(&store, &id).unwrap();
    // Topics of the spec's vector (status-go-wire.md §4.2).
    assert_eq!(info.description_chat.topic, "0xd4740ba8");
    assert_eq!(info.magnetlinks_chat.content_topic, "/waku/1/0x1980b7cb/rfc26");
    assert_eq!(info.member_update_chat.topic, "0x8e636111");
    assert_eq!(info.channels[0].chat_id, format!("{COMMUNITY_ID}u1"));
    assert_eq!(
        communities.channel_topics(&store, &id).unwrap(),
        vec![*chs_status::Topic::from_chat_id(&format!("{COMMUNITY_ID}u1")).as_bytes()]
    );
    let json = serde_json::to_string(&info).unwrap();
    assert!(json.contains(COMMUNITY_ID) && json.contains("\"control_node\":true"), "{json}");
    assert!(!json.contains(COMMUNITY_SK), "the private key never leaves through info");
}

#[test]
fn import_key_upgrades_a_member_and_is_idempotent() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    let member = communities.join(&mut store, &id, None).unwrap();
    assert!(!member.is_control_node());
    assert!(member.joined);
    let owner = communities.import_key(&mut store, COMMUNITY_SK, &CreateOptions::default()).unwrap();
    assert_eq!(owner.id, id);
    assert!(owner.is_control_node());
    let again = communities.import_key(&mut store, COMMUNITY_SK, &CreateOptions::default()).unwrap();
    assert!(again.is_control_node());
    assert_eq!(communities.list(&store).unwrap().len(), 1);
}

#[test]
fn create_with_same_key_twice_is_rejected() {
    let (_dir, mut store, communities) = open();
    let key = parse_private_key(COMMUNITY_SK).unwrap();
    communities.create_with_key(&mut store, &key, &CreateOptions::default()).unwrap();
    let err = communities.create_with_key(&mut store, &key, &CreateOptions::default()).unwrap_err();
    assert!(matches!(err, CommunityError::AlreadyExists(_)), "{err}");
}

#[test]
fn unknown_community_is_a_typed_error() {
    let (_dir, store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    assert!(matches!(communities.get(&store, &id), Err(CommunityError::UnknownCommunity(_))));
}

#[test]
fn node_identity_is_created_once() {
    let (_dir, mut store, communities) = open();
    let (key_a, inst_a) = communities.node_identity(&mut store).unwrap();
    let (key_b, inst_b) = communities.node_identity(&mut store).unwrap();
    assert_eq!(key_a.to_bytes(), key_b.to_bytes());
    assert_eq!(inst_a, inst_b);
}

#[test]
fn join_then_leave_then_join() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, Some("/waku/2/rs/16/7")).unwrap();
    communities.leave(&mut store, &id).unwrap();
    assert!(!communities.get(&store, &id).unwrap().joined);
    let again = communities.join(&mut store, &id, None).unwrap();
    assert!(again.joined);
    assert_eq!(again.pubsub_topic, "/waku/2/rs/16/7");
    assert!(communities.add_channel(&mut store, &id, "abc").unwrap());
    assert!(!communities.add_channel(&mut store, &id, "abc").unwrap());
    assert_eq!(communities.get(&store, &id).unwrap().chats, vec![format!("{id}abc")]);
}

// ----- bookkeeping -----

#[test]
fn spec15_item11_end_date_save_keeps_clock_and_uri() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.set_magnetlink_clock(&mut store, &id, 1_729_728_000_000).unwrap();
    communities.mark_magnetlink_fetched(&mut store, &id, "magnet:?xt=urn:btih:aa").unwrap();
    // status-go: INSERT into a `PRIMARY KEY ON CONFLICT REPLACE` table resets clock and URI here.
    communities.save_last_archive_end_date(&mut store, &id, 1_700_000_000).unwrap();
    let info = communities.archive_info(&store, &id).unwrap();
    assert_eq!(
        info,
        ArchiveInfo {
            magnetlink_clock: 1_729_728_000_000,
            last_magnetlink_uri: "magnet:?xt=urn:btih:aa".into(),
            last_archive_end_date: 1_700_000_000,
        }
    );
}

#[test]
fn archive_info_without_row_is_zero_and_first_write_creates_it() {
    // status-go's UPDATEs store nothing when the row is missing (wire §3.10); ours create it.
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    assert_eq!(communities.archive_info(&store, &id).unwrap(), ArchiveInfo::default());
    communities.set_magnetlink_clock(&mut store, &id, 5).unwrap();
    assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 5);
}

#[test]
fn spec15_item25_archive_id_is_per_community() {
    let (_dir, mut store, communities) = open();
    let a: CommunityId = COMMUNITY_ID.parse().unwrap();
    let b = CommunityId::from_public_key(&generate_key().unwrap().public_key());
    let same = archive_id(7);
    assert!(communities.record_downloaded_archive(&mut store, &a, &same, 0, 10).unwrap());
    // status-go: `hash TEXT PRIMARY KEY` is global, so this INSERT fails and b never records it.
    assert!(communities.record_downloaded_archive(&mut store, &b, &same, 0, 10).unwrap());
    assert!(!communities.record_downloaded_archive(&mut store, &a, &same, 0, 10).unwrap());
    assert!(communities.downloaded_archive_ids(&store, &a).unwrap().contains(&same));
    assert!(communities.downloaded_archive_ids(&store, &b).unwrap().contains(&same));
}

fn index_of(entries: &[(u8, u64, u64)]) -> WakuMessageArchiveIndex {
    let mut index = WakuMessageArchiveIndex::default();
    for (n, (id, from, to)) in entries.iter().enumerate() {
        let n = u64::try_from(n).unwrap();
        index.archives.insert(
            archive_id(*id),
            WakuMessageArchiveIndexMetadata {
                version: 1,
                metadata: Some(metadata(*from, *to, &[[1, 2, 3, 4]])),
                offset: n * 102_400,
                size: 102_400,
                padding: 10,
            },
        );
    }
    index
}

#[test]
fn spec15_item18_missing_archives_compares_sets_not_counts() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    // We hold two archives (one of them no longer in the index); the index has two others + one we hold.
    communities.record_downloaded_archive(&mut store, &id, &archive_id(1), 0, 10).unwrap();
    communities.record_downloaded_archive(&mut store, &id, &archive_id(9), 90, 100).unwrap();
    let index = index_of(&[(1, 0, 10), (2, 10, 20)]);
    // status-go: len(existing) == len(index.archives) → "no new archives", archive 2 never fetched.
    let missing = communities.missing_archives(&store, &id, &index, Strategy::All).unwrap();
    assert_eq!(missing.iter().map(|m| m.archive_id.clone()).collect::<Vec<_>>(), vec![archive_id(2)]);
    assert_eq!((missing[0].offset, missing[0].size, missing[0].padding), (102_400, 102_400, 10));
}

#[test]
fn missing_archives_strategies_and_order() {
    let index = index_of(&[(5, 20, 30), (3, 0, 10), (4, 10, 20), (6, 20, 30)]);
    let have = BTreeSet::new();
    let ids =
        |strategy| missing_archives(&index, &have, strategy).into_iter().map(|m| m.archive_id).collect::<Vec<_>>();
    assert_eq!(ids(Strategy::All), vec![archive_id(3), archive_id(4), archive_id(5), archive_id(6)]);
    assert_eq!(ids(Strategy::Latest), vec![archive_id(5), archive_id(6)], "both chunks of the newest window");
    assert_eq!(ids(Strategy::TimeRange { from: 5, to: 15 }), vec![archive_id(3), archive_id(4)]);
    assert_eq!(ids(Strategy::TimeRange { from: 10, to: 20 }), vec![archive_id(4)], "[from, to) bounds");
    assert!(ids(Strategy::TimeRange { from: 30, to: 40 }).is_empty());
    let mut with_bad = index.clone();
    with_bad.archives.insert("nonsense".into(), WakuMessageArchiveIndexMetadata::default());
    assert_eq!(missing_archives(&with_bad, &have, Strategy::All).len(), 4, "bad keys are skipped");
}

proptest! {
    /// The missing archives are exactly the index's ids minus the ones held, whatever the counts.
    #[test]
    fn missing_archives_is_set_difference(
        index_ids in proptest::collection::btree_set(0u8..40, 0..20),
        held in proptest::collection::btree_set(0u8..40, 0..20),
    ) {
        let entries: Vec<(u8, u64, u64)> = index_ids.iter().map(|n| (*n, u64::from(*n) * 10, u64::from(*n) * 10 + 10)).collect();
        let index = index_of(&entries);
        let have: BTreeSet<String> = held.iter().map(|n| archive_id(*n)).collect();
        let missing: Vec<String> = missing_archives(&index, &have, crate::Strategy::All).into_iter().map(|m| m.archive_id).collect();
        let expected: Vec<String> = index_ids.difference(&held).map(|n| archive_id(*n)).collect();
        prop_assert_eq!(missing, expected);
    }
}

#[test]
fn schema_is_versioned_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chs.db");
    {
        let mut store = Store::open(&path).unwrap();
        Communities::open(&mut store).unwrap();
        // Opening again migrates nothing and keeps the data.
        let id: CommunityId = COMMUNITY_ID.parse().unwrap();
        Communities::open(&mut store).unwrap().join(&mut store, &id, None).unwrap();
        let version: i64 = store
            .connection()
            .query_row("SELECT version FROM chs_schema WHERE component = 'community'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(crate::schema::MIGRATIONS.len()).unwrap());
        store.connection().execute("UPDATE chs_schema SET version = 99 WHERE component = 'community'", []).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let err = Communities::open(&mut store).unwrap_err();
    assert!(matches!(err, CommunityError::Store(chs_store::StoreError::SchemaTooNew { found: 99, .. })), "{err:?}");
}

#[test]
fn archive_ids_are_normalised() {
    assert_eq!(normalize_archive_id(&archive_id(0xab).to_uppercase().replace("0X", "0x")).unwrap(), archive_id(0xab));
    assert!(normalize_archive_id("0x1234").is_err());
    assert!(normalize_archive_id(&format!("0x{}", "g".repeat(64))).is_err());
}

// ----- canonical import -----

const TOPIC_A: Topic = [0xa, 0xa, 0xa, 0xa];
const TOPIC_A2: Topic = [0xa, 0xa, 0xa, 0xb];
const TOPIC_OTHER: Topic = [0xb, 0xb, 0xb, 0xb];

#[test]
fn import_replaces_range_and_records_archive() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let live: Vec<StoredMessage> = [
        archived(1, TOPIC_A, 5),      // before the window: kept
        archived(2, TOPIC_A, 10),     // in the window, not in the archive: deleted
        archived(3, TOPIC_A, 19),     // in the window and in the archive: kept (re-inserted)
        archived(4, TOPIC_A, 20),     // at `to` (exclusive): kept
        archived(5, TOPIC_OTHER, 15), // other community's topic: kept
    ]
    .iter()
    .map(|m| StoredMessage::from_archive_message(DEFAULT_PUBSUB_TOPIC, m, 0).unwrap())
    .collect();
    store.insert_batch(&live).unwrap();
    let archive_msgs = vec![
        archived(3, TOPIC_A, 19),
        archived(6, TOPIC_A, 12),
        archived(6, TOPIC_A, 12),                                         // duplicate
        archived(7, TOPIC_A, 25),                                         // outside the window
        ArchivedMessage { hash: vec![1, 2], ..archived(8, TOPIC_A, 12) }, // malformed
    ];
    let meta = metadata(10, 20, &[TOPIC_A, TOPIC_A2]);
    let report = communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &archive_msgs },
        )
        .unwrap();
    assert_eq!((report.messages, report.deleted, report.inserted), (5, 2, 2));
    assert_eq!((report.duplicates, report.out_of_window, report.malformed), (1, 1, 1));
    let hashes: BTreeSet<u32> = snapshot(&store, &[TOPIC_A, TOPIC_OTHER])
        .into_iter()
        .map(|(h, _, _)| u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
        .collect();
    assert_eq!(hashes, BTreeSet::from([1, 3, 4, 5, 6]));
    let records = communities.archive_records(&store, &id).unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].imported);
    assert_eq!((records[0].from, records[0].to), (10, 20));
    assert!(communities.pending_imports(&store, &id).unwrap().is_empty());
}

/// Security item 1: an archive of community A that names community B's topics must not delete
/// or shadow B's messages (B is this node's own community with a not-yet-archived channel).
#[test]
fn cross_community_archive_cannot_delete_another_communitys_messages() {
    let (_dir, mut store, communities) = open();
    let owned = communities
        .create(&mut store, &CreateOptions { channels: vec!["general".into()], ..Default::default() })
        .unwrap();
    let b_topic: Topic = *chs_status::Topic::from_chat_id(&owned.chats[0]).as_bytes();
    // B's live, not yet archived messages (as capture stores them: the wire hash as key).
    let live: Vec<StoredMessage> = [archived(1, b_topic, 11), archived(2, b_topic, 12)]
        .iter()
        .map(|m| StoredMessage::from_archive_message(DEFAULT_PUBSUB_TOPIC, m, 0).unwrap())
        .collect();
    store.insert_batch(&live).unwrap();
    let b_before = snapshot(&store, &[b_topic]);
    // A hostile community A, joined by this node: its archive claims B's topic and its own, and
    // one message claims the hash of B's message 1 (so it would shadow it).
    let hostile: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &hostile, None).unwrap();
    let msgs = vec![
        archived(7, b_topic, 13),
        ArchivedMessage { hash: live[0].hash.to_vec(), ..archived(8, TOPIC_A, 14) },
        archived(9, TOPIC_A, 15),
    ];
    let meta = metadata(10, 20, &[b_topic, TOPIC_A]);
    let report = communities
        .import_archive(
            &mut store,
            &hostile,
            &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &msgs },
        )
        .unwrap();
    assert_eq!(snapshot(&store, &[b_topic]), b_before, "B's messages were touched");
    assert_eq!(report.refused_topics, vec![format!("0x{}", hex::encode(b_topic))]);
    assert_eq!((report.refused_messages, report.inserted, report.duplicates), (1, 2, 0));
    // The message claiming B's hash is stored under its own hash; B's row is unchanged.
    assert!(store.contains(&live[0].hash).unwrap());
    let a_rows = snapshot(&store, &[TOPIC_A]);
    assert_eq!(a_rows.len(), 2);
    // The refusal is recorded with the archive (what `chs node status` shows).
    let record = &communities.archive_records(&store, &hostile).unwrap()[0];
    assert_eq!((record.refused_topics.clone(), record.refused_messages), (report.refused_topics.clone(), 1));
    // A's topic is now learned by A: a second joined community cannot take it over.
    let other: CommunityId = CommunityId::from_secret_key(&generate_key().unwrap());
    communities.join(&mut store, &other, None).unwrap();
    let meta2 = metadata(10, 20, &[TOPIC_A]);
    let report2 = communities
        .import_archive(
            &mut store,
            &other,
            &ArchiveImport { archive_id: &archive_id(2), metadata: &meta2, messages: &[] },
        )
        .unwrap();
    assert_eq!((report2.deleted, report2.refused_topics.len()), (0, 1));
    assert_eq!(snapshot(&store, &[TOPIC_A]), a_rows, "A's imported history was deleted by another community");
}

/// The same rule when the two communities' topics differ only in pubsub topic: nothing of
/// another pubsub topic is deleted.
#[test]
fn import_never_deletes_messages_of_another_pubsub_topic() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let elsewhere = StoredMessage::from_archive_message("/waku/2/rs/16/64", &archived(1, TOPIC_A, 11), 0).unwrap();
    store.insert_batch(std::slice::from_ref(&elsewhere)).unwrap();
    let meta = metadata(10, 20, &[TOPIC_A]);
    let msgs = [archived(2, TOPIC_A, 12)];
    let report = communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &msgs },
        )
        .unwrap();
    assert_eq!((report.deleted, report.inserted), (0, 1));
    assert!(store.contains(&elsewhere.hash).unwrap());
}

#[test]
fn pending_link_is_kept_replaced_and_cleared_only_by_its_own_uri() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    assert_eq!(communities.pending_link(&store, &id).unwrap(), None);
    let old = PendingLink { magnet_uri: "magnet:?xt=urn:btih:aa".into(), clock: 1 };
    let new = PendingLink { magnet_uri: "magnet:?xt=urn:btih:bb".into(), clock: 2 };
    communities.save_pending_link(&store, &id, &old, 10).unwrap();
    communities.save_pending_link(&store, &id, &new, 11).unwrap();
    // A download of the old link that finishes late does not clear the newer one.
    communities.clear_pending_link(&store, &id, &old.magnet_uri).unwrap();
    assert_eq!(communities.pending_link(&store, &id).unwrap(), Some(new.clone()));
    communities.clear_pending_link(&store, &id, &new.magnet_uri).unwrap();
    assert_eq!(communities.pending_link(&store, &id).unwrap(), None);
}

#[test]
fn failed_import_rolls_back_to_the_old_set() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let meta = metadata(10, 20, &[TOPIC_A]);
    let old = [archived(1, TOPIC_A, 11), archived(2, TOPIC_A, 12)];
    communities
        .import_archive(&mut store, &id, &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &old })
        .unwrap();
    let before = snapshot(&store, &[TOPIC_A]);
    // Fail the transaction after the messages were replaced (at the history rows).
    store
        .connection()
        .execute_batch("CREATE TRIGGER fail BEFORE INSERT ON chs_history BEGIN SELECT RAISE(ABORT, 'injected'); END")
        .unwrap();
    let new = [archived(3, TOPIC_A, 13)];
    let err = communities
        .import_archive(&mut store, &id, &ArchiveImport { archive_id: &archive_id(2), metadata: &meta, messages: &new })
        .unwrap_err();
    assert!(matches!(err, CommunityError::Sqlite(_)), "{err}");
    assert_eq!(snapshot(&store, &[TOPIC_A]), before, "the old set, not a mix");
    let records = communities.archive_records(&store, &id).unwrap();
    assert_eq!(records.iter().filter(|r| r.imported).count(), 1);
    assert_eq!(communities.pending_imports(&store, &id).unwrap()[0].import_failures, 1);
}

#[test]
fn communities_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Communities>();
}

#[test]
fn spec15_item17_broken_archive_does_not_block_later_ones() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    communities.record_downloaded_archive(&mut store, &id, &archive_id(1), 0, 10).unwrap();
    communities.record_downloaded_archive(&mut store, &id, &archive_id(2), 10, 20).unwrap();
    // Archive 1 is broken (its window is empty); status-go retries ids[0] every 100 ms forever.
    let broken = metadata(10, 10, &[TOPIC_A]);
    let err = communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(1), metadata: &broken, messages: &[] },
        )
        .unwrap_err();
    assert!(matches!(err, CommunityError::EmptyRange { .. }), "{err}");
    let pending = communities.pending_imports(&store, &id).unwrap();
    assert_eq!(pending.iter().map(|r| r.archive_id.clone()).collect::<Vec<_>>(), vec![archive_id(2), archive_id(1)]);
    assert_eq!(pending[1].import_failures, 1);
    assert!(pending[1].last_error.as_deref().unwrap_or_default().contains("empty time range"));
    // The next archive imports fine.
    let good = metadata(10, 20, &[TOPIC_A]);
    let msgs = [archived(1, TOPIC_A, 11)];
    communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(2), metadata: &good, messages: &msgs },
        )
        .unwrap();
    let pending = communities.pending_imports(&store, &id).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].archive_id, archive_id(1));
    // An extraction failure reported by the caller is recorded the same way.
    communities.record_import_failure(&mut store, &id, &archive_id(1), "short read").unwrap();
    let pending = communities.pending_imports(&store, &id).unwrap();
    assert_eq!((pending[0].import_failures, pending[0].last_error.as_deref()), (2, Some("short read")));
}

#[test]
fn import_of_unknown_community_fails_and_changes_nothing() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    let meta = metadata(0, 10, &[TOPIC_A]);
    let msgs = [archived(1, TOPIC_A, 1)];
    let err = communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &msgs },
        )
        .unwrap_err();
    assert!(matches!(err, CommunityError::UnknownCommunity(_)));
    assert_eq!(store.count().unwrap(), 0);
}

#[derive(Debug, Clone)]
struct ImportCase {
    existing: Vec<(u32, u8, u64)>,
    from: u64,
    len: u64,
    archive: Vec<(u32, u8, u64)>,
}

fn topic_of(sel: u8) -> Topic {
    match sel % 3 {
        0 => TOPIC_A,
        1 => TOPIC_A2,
        _ => TOPIC_OTHER,
    }
}

fn import_case() -> impl proptest::strategy::Strategy<Value = ImportCase> {
    (
        proptest::collection::vec((0u32..200, 0u8..3, 0u64..100), 0..40),
        0u64..90,
        1u64..30,
        proptest::collection::vec((200u32..400, 0u8..2, 0u64..30), 0..40),
    )
        .prop_map(|(existing, from, len, archive)| ImportCase {
            existing,
            from,
            len,
            // One message per seed: a hash has one timestamp and topic.
            archive: archive
                .into_iter()
                .map(|(seed, t, off)| (seed, (t, from + off % len)))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .map(|(seed, (t, ts))| (seed, t, ts))
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Import replaces exactly `[from, to)` on the archive's topics (other topics and times are
    /// untouched), and importing the same archive again changes nothing.
    #[test]
    fn import_is_idempotent_and_replaces_exactly_the_range(case in import_case()) {
        let (_dir, mut store, communities) = open();
        let id: CommunityId = COMMUNITY_ID.parse().unwrap();
        communities.join(&mut store, &id, None).unwrap();
        let existing: Vec<StoredMessage> = case
            .existing
            .iter()
            .map(|(seed, t, ts)| StoredMessage::from_archive_message(DEFAULT_PUBSUB_TOPIC, &archived(*seed, topic_of(*t), *ts), 0).unwrap())
            .collect();
        store.insert_batch(&existing).unwrap();
        let all_topics = [TOPIC_A, TOPIC_A2, TOPIC_OTHER];
        let before = snapshot(&store, &all_topics);
        let to = case.from + case.len;
        let archive_topics = [TOPIC_A, TOPIC_A2];
        let msgs: Vec<ArchivedMessage> = case.archive.iter().map(|(seed, t, ts)| archived(*seed, topic_of(*t), *ts)).collect();
        let meta = metadata(case.from, to, &archive_topics);
        let import = ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &msgs };
        communities.import_archive(&mut store, &id, &import).unwrap();
        let after = snapshot(&store, &all_topics);
        let in_range = |(_, topic, ts): &(Vec<u8>, Topic, u64)| archive_topics.contains(topic) && *ts >= case.from && *ts < to;
        let expected: BTreeSet<_> = before
            .iter()
            .filter(|m| !in_range(m))
            .cloned()
            .chain(msgs.iter().map(|m| (m.payload.clone(), <Topic>::try_from(m.topic.as_slice()).unwrap(), m.timestamp)))
            .collect();
        prop_assert_eq!(&after, &expected);
        communities.import_archive(&mut store, &id, &import).unwrap();
        prop_assert_eq!(snapshot(&store, &all_topics), after);
    }
}

// ----- magnetlinks -----

mod magnetlinks {
    use chs_proto::ApplicationMetadataMessageType;
    use chs_proto::Message as _;
    use chs_proto::protobuf::CommunityMessageArchiveMagnetlink;
    use chs_proto::waku::WakuMessage;
    use chs_status::envelope::{EnvelopeParams, build_status_message};
    use chs_waku_payload::{NonceSource, Padding, SecretKey};

    use super::*;

    const VECTOR: &str = include_str!("../tests/data/magnetlink-e2e.json");

    struct Vector {
        identity_sk: String,
        magnet_uri: String,
        clock: u64,
        installation_id: String,
        waku_timestamp_ns: i64,
        nonce: [u8; 12],
        content_topic: String,
        waku_message: Vec<u8>,
        waku_message_hash: Vec<u8>,
    }

    fn vector() -> Vector {
        let v: serde_json::Value = serde_json::from_str(VECTOR).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        Vector {
            identity_sk: s("identity_sk"),
            magnet_uri: s("magnet_uri"),
            clock: v["clock"].as_u64().unwrap(),
            installation_id: s("installation_id"),
            waku_timestamp_ns: v["waku_timestamp_ns"].as_i64().unwrap(),
            nonce: hex::decode(s("nonce")).unwrap().try_into().unwrap(),
            content_topic: s("content_topic"),
            waku_message: hex::decode(s("waku_message")).unwrap(),
            waku_message_hash: hex::decode(s("waku_message_hash")).unwrap(),
        }
    }

    /// The vector's fixed padding: bytes 1, 2, 3, ... (247 of them).
    fn vector_options(v: &Vector) -> MagnetlinkOptions {
        MagnetlinkOptions {
            installation_id: v.installation_id.clone(),
            timestamp_ns: Some(v.waku_timestamp_ns),
            channel: MagnetlinkChannel::Magnetlinks,
            padding: Padding::Fixed((0..247u32).map(|i| u8::try_from((i + 1) % 256).unwrap()).collect()),
            nonce: NonceSource::Fixed(v.nonce),
        }
    }

    fn owner() -> (tempfile::TempDir, Store, Communities, Community) {
        let (dir, mut store, communities) = open();
        let owner = communities.import_key(&mut store, COMMUNITY_SK, &CreateOptions::default()).unwrap();
        (dir, store, communities, owner)
    }

    fn member() -> (tempfile::TempDir, Store, Communities, CommunityId) {
        let (dir, mut store, communities) = open();
        let id: CommunityId = COMMUNITY_ID.parse().unwrap();
        communities.join(&mut store, &id, None).unwrap();
        (dir, store, communities, id)
    }

    fn build(owner: &Community, communities: &Communities, uri: &str, clock: u64) -> WakuMessage {
        let identity = parse_private_key(&vector().identity_sk).unwrap();
        communities
            .build_magnetlink(
                owner,
                &identity,
                uri,
                clock,
                &MagnetlinkOptions { installation_id: "i".into(), ..Default::default() },
            )
            .unwrap()
    }

    /// A type-`message_type` message on the community's `-magnetlinks` chat, signed by `author`.
    fn forged(author: &SecretKey, message_type: ApplicationMetadataMessageType, payload: Vec<u8>) -> WakuMessage {
        let id: CommunityId = COMMUNITY_ID.parse().unwrap();
        let chat_key = chs_status::ChatKey::derive(&id.magnetlinks_chat_id());
        let identity = parse_private_key(&vector().identity_sk).unwrap();
        let params = EnvelopeParams {
            chat_key: &chat_key,
            transport_key: &identity,
            installation_id: "x",
            bundle: None,
            timestamp_ns: 1,
            padding: Padding::Random,
            nonce: NonceSource::Random,
        };
        build_status_message(payload, message_type, author, &params).unwrap().waku_message
    }

    fn magnetlink_payload(clock: u64, uri: &str) -> Vec<u8> {
        CommunityMessageArchiveMagnetlink { clock, magnet_uri: uri.into() }.encode_to_vec()
    }

    fn rejected(verdict: Verdict) -> RejectKind {
        match verdict {
            Verdict::Rejected(reason) => reason.kind(),
            Verdict::Accepted { .. } => panic!("expected a rejection, got {verdict:?}"),
        }
    }

    #[test]
    fn magnetlink_vector_golden_bytes() {
        let v = vector();
        let (_dir, _store, communities, owner) = owner();
        let identity = parse_private_key(&v.identity_sk).unwrap();
        let msg = communities.build_magnetlink(&owner, &identity, &v.magnet_uri, v.clock, &vector_options(&v)).unwrap();
        assert_eq!(msg.content_topic, v.content_topic);
        assert_eq!(hex::encode(msg.encode_to_vec()), hex::encode(&v.waku_message));
        assert_eq!(chs_proto::waku::message_hash(DEFAULT_PUBSUB_TOPIC, &msg).to_vec(), v.waku_message_hash);
    }

    #[test]
    fn member_accepts_vector_and_recovers_community_id() {
        let v = vector();
        let (_dir, mut store, communities, id) = member();
        let msg = WakuMessage::decode(v.waku_message.as_slice()).unwrap();
        let verdict = communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap();
        assert_eq!(verdict, Verdict::Accepted { community_id: id, clock: v.clock, magnet_uri: v.magnet_uri.clone() });
        assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, v.clock, "clock stored on accept");
        assert_eq!(communities.archive_info(&store, &id).unwrap().last_magnetlink_uri, "", "URI only once fetched");
        // status-go accepts the same URI again until it is fully fetched (it restarts the download).
        assert!(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap().is_accepted());
        communities.mark_magnetlink_fetched(&mut store, &id, &v.magnet_uri).unwrap();
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::AlreadyFetched
        );
        let counts = communities.rejection_counts();
        assert_eq!((counts.accepted, counts.rejected(RejectKind::AlreadyFetched)), (2, 1));
        let json =
            serde_json::to_value(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap())
                .unwrap();
        assert_eq!((json["verdict"].as_str(), json["reason"].as_str()), (Some("rejected"), Some("already_fetched")));
    }

    #[test]
    fn clock_rule_is_greater_or_equal() {
        let (_dir, _owner_store, owner_communities, owner) = owner();
        let (_mdir, mut store, communities, id) = member();
        let receive = |store: &mut Store, msg: &WakuMessage| {
            communities.receive_magnetlink(store, msg, DEFAULT_PUBSUB_TOPIC).unwrap()
        };
        assert!(receive(&mut store, &build(&owner, &owner_communities, "magnet:?a", 1000)).is_accepted());
        // Older clock: rejected.
        let verdict = receive(&mut store, &build(&owner, &owner_communities, "magnet:?b", 999));
        assert_eq!(verdict, Verdict::Rejected(RejectReason::StaleClock { clock: 999, stored: 1000 }));
        // Equal clock, other URI: accepted (status-go's `>=`).
        assert!(receive(&mut store, &build(&owner, &owner_communities, "magnet:?c", 1000)).is_accepted());
        // Equal clock, same URI once fetched: rejected by the URI rule.
        communities.mark_magnetlink_fetched(&mut store, &id, "magnet:?c").unwrap();
        let verdict = receive(&mut store, &build(&owner, &owner_communities, "magnet:?c", 1000));
        assert_eq!(rejected(verdict), RejectKind::AlreadyFetched);
        // Newer clock: accepted and stored.
        assert!(receive(&mut store, &build(&owner, &owner_communities, "magnet:?d", 2000)).is_accepted());
        assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 2000);
        // A description clock raises the stored clock; older magnetlinks are then ignored.
        assert_eq!(communities.raise_magnetlink_clock(&mut store, &id, 3000).unwrap(), 3000);
        assert_eq!(communities.raise_magnetlink_clock(&mut store, &id, 10).unwrap(), 3000);
        assert_eq!(
            rejected(receive(&mut store, &build(&owner, &owner_communities, "magnet:?e", 2500))),
            RejectKind::StaleClock
        );
        let counts = communities.rejection_counts();
        assert_eq!(
            (counts.accepted, counts.rejected(RejectKind::StaleClock), counts.rejected(RejectKind::AlreadyFetched)),
            (3, 2, 1)
        );
    }

    #[test]
    fn signed_by_another_key_is_rejected() {
        let (_dir, mut store, communities, _id) = member();
        let other = generate_key().unwrap();
        let msg = forged(
            &other,
            ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink,
            magnetlink_payload(5, "magnet:?x"),
        );
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::NotSignedByCommunity
        );
        // Another community's own, valid magnetlink on its own topic: not ours, unknown topic.
        let (_odir, mut ostore, ocommunities) = open();
        let other_owner = ocommunities.create_with_key(&mut ostore, &other, &CreateOptions::default()).unwrap();
        let msg = build(&other_owner, &ocommunities, "magnet:?y", 5);
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::UnknownTopic
        );
    }

    #[test]
    fn other_type_is_rejected() {
        let (_dir, mut store, communities, _id) = member();
        let key = parse_private_key(COMMUNITY_SK).unwrap();
        let msg = forged(&key, ApplicationMetadataMessageType::ChatMessage, magnetlink_payload(5, "magnet:?x"));
        let verdict = communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap();
        assert_eq!(rejected(verdict), RejectKind::WrongType);
    }

    #[test]
    fn truncated_messages_are_rejected() {
        let v = vector();
        let (_dir, mut store, communities, id) = member();
        let good = WakuMessage::decode(v.waku_message.as_slice()).unwrap();
        // Truncated wire payload: AES-GCM fails.
        let mut short = good.clone();
        short.payload.truncate(short.payload.len() - 20);
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &short, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::Undecryptable
        );
        let mut empty = good.clone();
        empty.payload.clear();
        assert!(!communities.receive_magnetlink(&mut store, &empty, DEFAULT_PUBSUB_TOPIC).unwrap().is_accepted());
        // Truncated inner magnetlink, correctly signed by the community key.
        let key = parse_private_key(COMMUNITY_SK).unwrap();
        let mut inner = magnetlink_payload(5, "magnet:?xt=urn:btih:abc");
        inner.truncate(inner.len() - 3);
        let msg = forged(&key, ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink, inner);
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::MalformedInner
        );
        assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 0, "nothing stored on rejection");
    }

    #[test]
    fn topic_pubsub_membership_and_control_node_rules() {
        let v = vector();
        let good = WakuMessage::decode(v.waku_message.as_slice()).unwrap();
        let (_dir, mut store, communities, id) = member();
        // Another shard: status-go's filter matches the pubsub topic exactly.
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &good, "/waku/2/rs/16/64").unwrap()),
            RejectKind::UnknownTopic
        );
        let mut bad_topic = good.clone();
        bad_topic.content_topic = "/waku/2/default-content/proto".into();
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &bad_topic, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::BadContentTopic
        );
        communities.leave(&mut store, &id).unwrap();
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &good, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::NotJoined
        );
        // The control node ignores its own echo.
        let (_odir, mut ostore, ocommunities, _owner) = owner();
        assert_eq!(
            rejected(ocommunities.receive_magnetlink(&mut ostore, &good, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::ControlNode
        );
    }

    #[test]
    fn member_cannot_build_and_member_update_channel_is_accepted() {
        let (_dir, mut store, communities, id) = member();
        let community = communities.get(&store, &id).unwrap();
        let identity = generate_key().unwrap();
        let err = communities
            .build_magnetlink(&community, &identity, "magnet:?a", 1, &MagnetlinkOptions::default())
            .unwrap_err();
        assert!(matches!(err, CommunityError::NotControlNode(_)));
        // Newer status-go sends on -memberUpdate; members listen on both.
        let (_odir, mut ostore, ocommunities, owner) = owner();
        let (identity, installation_id) = ocommunities.node_identity(&mut ostore).unwrap();
        let options =
            MagnetlinkOptions { installation_id, channel: MagnetlinkChannel::MemberUpdate, ..Default::default() };
        let msg = ocommunities.build_magnetlink(&owner, &identity, "magnet:?m", 7, &options).unwrap();
        assert_eq!(msg.content_topic, chs_status::Topic::from_chat_id(&id.member_update_chat_id()).content_topic());
        assert!(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap().is_accepted());
        let now = ocommunities.build_magnetlink_now(&mut ostore, &owner.id, "magnet:?n", 8).unwrap();
        assert!(communities.receive_magnetlink(&mut store, &now, DEFAULT_PUBSUB_TOPIC).unwrap().is_accepted());
    }

    /// A 2026-style link (today's status-go: `CommunityMessageArchiveLink` on `-memberUpdate`).
    fn build_2026(owner: &Community, communities: &Communities, link: &str, clock: u64) -> WakuMessage {
        let identity = parse_private_key(&vector().identity_sk).unwrap();
        let options = MagnetlinkOptions {
            installation_id: "i".into(),
            channel: Generation::Status2026.link_channel(),
            ..Default::default()
        };
        communities.build_magnetlink(owner, &identity, link, clock, &options).unwrap()
    }

    /// A Logos Storage manifest CID (CIDv1, codec 0xcd01, sha2-256 multihash), base58btc.
    fn logos_cid(seed: u8) -> String {
        let mut bytes = vec![0x01, 0x81, 0x9a, 0x03, 0x12, 0x20];
        bytes.extend_from_slice(&[seed; 32]);
        format!("z{}", bs58::encode(bytes).into_string())
    }

    #[test]
    fn links_empty_and_unusable_change_no_state() {
        let (_dir, _owner_store, owner_communities, owner) = owner();
        let (_mdir, mut store, communities, id) = member();
        // A member that fetched `magnet:?a` at clock 1000 and is downloading `magnet:?b`.
        assert!(
            communities
                .receive_magnetlink(
                    &mut store,
                    &build(&owner, &owner_communities, "magnet:?a", 1000),
                    DEFAULT_PUBSUB_TOPIC
                )
                .unwrap()
                .is_accepted()
        );
        communities.mark_magnetlink_fetched(&mut store, &id, "magnet:?a").unwrap();
        let pending = PendingLink { magnet_uri: "magnet:?b".into(), clock: 1000 };
        communities.save_pending_link(&store, &id, &pending, 1).unwrap();
        let before = (communities.archive_info(&store, &id).unwrap(), communities.pending_link(&store, &id).unwrap());

        let cid = logos_cid(7);
        for (link, expected) in [
            ("", RejectReason::EmptyLink),
            ("   ", RejectReason::EmptyLink),
            (cid.as_str(), RejectReason::UnusableLink { kind: LinkKind::Cid, link: cid.clone() }),
        ] {
            let msg = build_2026(&owner, &owner_communities, link, 2000);
            let verdict = communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap();
            assert_eq!(verdict, Verdict::Rejected(expected), "link {link:?}");
            let after =
                (communities.archive_info(&store, &id).unwrap(), communities.pending_link(&store, &id).unwrap());
            assert_eq!(after, before, "link {link:?}: no clock advance, no pending change");
        }
        let counts = communities.rejection_counts();
        assert_eq!((counts.rejected(RejectKind::EmptyLink), counts.rejected(RejectKind::UnusableLink)), (2, 1));
        let json = serde_json::to_value(Verdict::Rejected(RejectReason::EmptyLink)).unwrap();
        assert_eq!(json["reason"], "empty_link");

        // A 2026 magnet on -memberUpdate is accepted by the torrent member.
        let msg = build_2026(&owner, &owner_communities, "magnet:?c", 2000);
        assert!(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap().is_accepted());
        assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 2000);

        // A member running Logos Storage takes the CID, and then refuses magnets if it runs only that.
        communities.set_usable_links(UsableLinks::LOGOS_STORAGE);
        let msg = build_2026(&owner, &owner_communities, &cid, 3000);
        let verdict = communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap();
        assert_eq!(verdict, Verdict::Accepted { community_id: id, clock: 3000, magnet_uri: cid.clone() });
        let msg = build(&owner, &owner_communities, "magnet:?d", 4000);
        assert_eq!(
            rejected(communities.receive_magnetlink(&mut store, &msg, DEFAULT_PUBSUB_TOPIC).unwrap()),
            RejectKind::UnusableLink
        );
        assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 3000);
    }

    #[test]
    fn links_archived_topics_per_generation() {
        let (_dir, mut store, communities, owner) = owner();
        communities.add_channel(&mut store, &owner.id, "general").unwrap();
        let channels = communities.channel_topics(&store, &owner.id).unwrap();
        assert_eq!(communities.archived_topics(&store, &owner.id, Generation::Status2024).unwrap(), channels);
        let member_update = *chs_status::Topic::from_chat_id(&owner.id.member_update_chat_id()).as_bytes();
        let mut expected = channels.clone();
        expected.push(member_update);
        assert_eq!(communities.archived_topics(&store, &owner.id, Generation::Status2026).unwrap(), expected);
    }
}

// ----- history -----

mod history {
    use chs_status::history::{ChatMessageParams, build_chat_message};
    use chs_waku_payload::{NonceSource, Padding};

    use super::*;

    #[test]
    fn imported_chat_messages_read_back_in_time_order() {
        let (_dir, mut store, communities) = open();
        let key = parse_private_key(COMMUNITY_SK).unwrap();
        let owner = communities
            .create_with_key(
                &mut store,
                &key,
                &CreateOptions { channels: vec!["general".into()], ..Default::default() },
            )
            .unwrap();
        let id = owner.id;
        let alice = generate_key().unwrap();
        let cache = chs_status::ChatKeyCache::new();
        let ring = chs_status::ChatKeyRing::for_channels(&id, ["general"], &cache);
        // Two chat messages (given out of order) and one undecodable payload.
        let mut archived_msgs: Vec<ArchivedMessage> = [("second", 1_700_000_020u64), ("first", 1_700_000_010)]
            .iter()
            .map(|(text, secs)| {
                let params = ChatMessageParams {
                    author: &alice,
                    community: &id,
                    channel_uuid: "general",
                    text,
                    clock: secs * 1000,
                    timestamp_ms: secs * 1000,
                    display_name: "alice",
                    installation_id: "inst",
                    bundle: None,
                    timestamp_ns: i64::try_from(*secs).unwrap() * 1_000_000_000,
                    padding: Padding::Random,
                    nonce: NonceSource::Random,
                };
                let built = build_chat_message(&params, &cache).unwrap();
                chs_status::archive::capture_for_archive(
                    &built.waku_message,
                    DEFAULT_PUBSUB_TOPIC,
                    &ring,
                    Default::default(),
                )
                .unwrap()
            })
            .collect();
        let topic = <Topic>::try_from(archived_msgs[0].topic.as_slice()).unwrap();
        archived_msgs.push(archived(99, topic, 1_700_000_015));
        let meta = metadata(1_700_000_000, 1_700_000_100, &[topic]);
        let report = communities
            .import_archive(
                &mut store,
                &id,
                &ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &archived_msgs },
            )
            .unwrap();
        assert_eq!((report.inserted, report.decoded, report.undecodable, report.chat_messages), (3, 2, 1, 2));
        assert_eq!(store.count().unwrap(), 3, "the undecodable message is stored too");
        let history = communities.history(&mut store, &id).unwrap();
        let texts: Vec<_> = history.iter().map(|h| h.text.clone().unwrap()).collect();
        assert_eq!(texts, vec!["first", "second"]);
        let alice_hex = format!("0x{}", hex::encode(alice.public_key().to_uncompressed()));
        assert!(history.iter().all(|h| h.author == alice_hex && h.type_name == "CHAT_MESSAGE"));
        assert_eq!(history[0].chat_id, owner.chats[0]);
        assert_eq!((history[0].timestamp, history[0].sent_at_ms), (1_700_000_010, 1_700_000_010_000));
        let json = serde_json::to_value(&history[0]).unwrap();
        assert_eq!(json["text"], "first");
        // Re-import of a replacement archive without "second": its history row goes too.
        let fewer = vec![archived_msgs[1].clone()];
        communities
            .import_archive(
                &mut store,
                &id,
                &ArchiveImport { archive_id: &archive_id(2), metadata: &meta, messages: &fewer },
            )
            .unwrap();
        let texts: Vec<_> = communities.history(&mut store, &id).unwrap().into_iter().filter_map(|h| h.text).collect();
        assert_eq!(texts, vec!["first"]);
    }

    #[test]
    fn deferred_decoding_gives_the_same_history() {
        let (_dir, mut store, communities) = open();
        let key = parse_private_key(COMMUNITY_SK).unwrap();
        let owner = communities
            .create_with_key(&mut store, &key, &CreateOptions { channels: vec!["c".into()], ..Default::default() })
            .unwrap();
        let alice = generate_key().unwrap();
        let cache = chs_status::ChatKeyCache::new();
        let ring = chs_status::ChatKeyRing::for_channels(&owner.id, ["c"], &cache);
        let msgs: Vec<ArchivedMessage> = (0..30u64)
            .map(|n| {
                let text = format!("message {n}");
                let params = ChatMessageParams {
                    author: &alice,
                    community: &owner.id,
                    channel_uuid: "c",
                    text: &text,
                    clock: n,
                    timestamp_ms: 1000 * (100 + n / 3),
                    display_name: "",
                    installation_id: "inst",
                    bundle: None,
                    timestamp_ns: i64::try_from(100 + n / 3).unwrap() * 1_000_000_000,
                    padding: Padding::Random,
                    nonce: NonceSource::Random,
                };
                let built = build_chat_message(&params, &cache).unwrap();
                chs_status::archive::capture_for_archive(
                    &built.waku_message,
                    DEFAULT_PUBSUB_TOPIC,
                    &ring,
                    Default::default(),
                )
                .unwrap()
            })
            .collect();
        let topic = <Topic>::try_from(msgs[0].topic.as_slice()).unwrap();
        let mut with_junk = msgs.clone();
        with_junk.push(archived(7, topic, 105));
        let meta = metadata(100, 200, &[topic]);
        let import = ArchiveImport { archive_id: &archive_id(1), metadata: &meta, messages: &with_junk };
        let immediate = communities.import_archive(&mut store, &owner.id, &import).unwrap();
        assert_eq!((immediate.decoded, immediate.undecodable, immediate.pending_decode), (30, 1, 0));
        let expected = communities.history(&mut store, &owner.id).unwrap();
        assert_eq!(expected.len(), 30);
        let deferred = communities.import_archive_with(&mut store, &owner.id, &import, DecodeMode::Deferred).unwrap();
        assert_eq!((deferred.decoded, deferred.undecodable, deferred.pending_decode), (0, 0, 31));
        // Decode in two passes to exercise the cursor.
        let first = communities.decode_pending_history(&mut store, &owner.id, 20).unwrap();
        let second = communities.decode_pending_history(&mut store, &owner.id, 100).unwrap();
        assert_eq!(first.decoded + first.undecodable, 20);
        assert_eq!((first.decoded + second.decoded, first.undecodable + second.undecodable), (30, 1));
        assert_eq!(communities.decode_pending_history(&mut store, &owner.id, 100).unwrap(), DecodeReport::default());
        assert_eq!(communities.history(&mut store, &owner.id).unwrap(), expected);
        // A pending row whose message left the store decodes as undecodable, not as an error.
        communities.import_archive_with(&mut store, &owner.id, &import, DecodeMode::Deferred).unwrap();
        store.delete_older_than(&[topic], 103).unwrap();
        let report = communities.decode_pending_history(&mut store, &owner.id, usize::MAX).unwrap();
        assert_eq!((report.decoded, report.undecodable), (21, 10));
        assert_eq!(communities.history(&mut store, &owner.id).unwrap().len(), 21);
    }
}

/// Issue 16: record times come from the injected clock, not the wall clock.
#[test]
fn record_times_come_from_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("chs.db")).unwrap();
    let communities = Communities::open(&mut store).unwrap().with_clock(std::sync::Arc::new(|| 1_234_567));
    let community = communities.create(&mut store, &CreateOptions::default()).unwrap();
    assert_eq!(community.created_at_ms, 1_234_567);
    communities.record_downloaded_archive(&mut store, &community.id, &archive_id(1), 10, 20).unwrap();
    let at: i64 =
        store.connection().query_row("SELECT downloaded_at_ms FROM chs_archive_ids", [], |r| r.get(0)).unwrap();
    assert_eq!(at, 1_234_567);
}

/// Issue 19 item 3: a link whose index could not be opened is recorded (kept across a reopen of
/// the file), replaced by a newer record, and cleared.
#[test]
fn unopened_link_is_persisted_replaced_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chs.db");
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    let first = UnopenedLink {
        magnet_uri: "magnet:?xt=urn:btih:aa".into(),
        reason: "index wrapped with the hash-ratchet key 0x03".into(),
        bytes: 204_800,
        recorded_at_ms: 5,
    };
    {
        let mut store = Store::open(&path).unwrap();
        let communities = Communities::open(&mut store).unwrap();
        communities.join(&mut store, &id, None).unwrap();
        assert_eq!(communities.unopened_link(&store, &id).unwrap(), None);
        communities.record_unopened_link(&store, &id, &first).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let communities = Communities::open(&mut store).unwrap();
    assert_eq!(communities.unopened_link(&store, &id).unwrap(), Some(first.clone()));
    let second = UnopenedLink { magnet_uri: "magnet:?xt=urn:btih:bb".into(), recorded_at_ms: 6, ..first };
    communities.record_unopened_link(&store, &id, &second).unwrap();
    assert_eq!(communities.unopened_link(&store, &id).unwrap(), Some(second));
    communities.clear_unopened_link(&store, &id).unwrap();
    assert_eq!(communities.unopened_link(&store, &id).unwrap(), None);
}

/// Issue 19 item 3: an archive wrapped with the community's hash-ratchet key is not imported;
/// the recorded error says so and names the key (never an empty import).
#[test]
fn wrapped_fetched_archive_records_why_it_is_not_imported() {
    use chs_proto::Message as _;
    use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let mut wrapped = ProtocolMessage { installation_id: "owner".into(), ..ProtocolMessage::default() };
    wrapped.encrypted_message.insert(
        "none".into(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader {
                seq_no: 2,
                group_id: id.as_bytes().to_vec(),
                key_id: vec![0xab; 32],
                ..HrHeader::default()
            }),
            payload: vec![1; 40],
            ..EncryptedMessageProtocol::default()
        },
    );
    let entry =
        MissingArchive { archive_id: archive_id(7), from: 0, to: 10, offset: 0, size: 102_400, padding: 102_300 };
    let result = communities
        .import_fetched_archive(&mut store, &id, &entry, &wrapped.encode_to_vec(), DecodeMode::Immediate)
        .unwrap();
    assert!(matches!(result, Err(FetchedArchiveError::Wrapped(_))), "{result:?}");
    let records = communities.archive_records(&store, &id).unwrap();
    assert_eq!(records.len(), 1);
    assert!(!records[0].imported);
    let error = records[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("hash-ratchet key 0xabab") && error.contains("not imported"), "{error}");
}

/// Issue 19 item 3: hash-ratchet-encrypted messages and segments in an imported archive are
/// kept and counted as sealed (a Status client with the keys reads them), not lost silently.
#[test]
fn sealed_messages_counts_hash_ratchet_and_segments() {
    use chs_proto::Message as _;
    use chs_proto::encryption::{EncryptedMessageProtocol, ProtocolMessage};
    use chs_proto::protobuf::SegmentMessage;
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let signer = SecretKey::from_bytes(&[7; 32]).unwrap().public_key().to_uncompressed().to_vec();
    let mut hr = ProtocolMessage { installation_id: "owner".into(), ..ProtocolMessage::default() };
    hr.encrypted_message.insert(
        "none".into(),
        EncryptedMessageProtocol { payload: vec![9; 30], ..EncryptedMessageProtocol::default() },
    );
    let segment = SegmentMessage {
        entire_message_hash: vec![1; 32],
        index: 0,
        segments_count: 2,
        payload: vec![2; 20],
        ..SegmentMessage::default()
    };
    let payloads = [hr.encode_to_vec(), segment.encode_to_vec(), vec![0xff, 0xff, 0xff]];
    let messages: Vec<ArchivedMessage> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| ArchivedMessage {
            sig: signer.clone(),
            payload: payload.clone(),
            ..archived(u32::try_from(i).unwrap(), TOPIC_A, 5 + u64::try_from(i).unwrap())
        })
        .collect();
    let meta = metadata(0, 10, &[TOPIC_A]);
    let report = communities
        .import_archive(
            &mut store,
            &id,
            &ArchiveImport { archive_id: &archive_id(3), metadata: &meta, messages: &messages },
        )
        .unwrap();
    assert_eq!((report.inserted, report.undecodable), (3, 3), "{report:?}");
    assert_eq!(communities.sealed_messages(&store, &id).unwrap(), 2);
}

// ----- hash-ratchet keys (issue 19 item 3) -----

const RATCHET_KEY: [u8; 32] = [0x11; 32];
const RATCHET_TS: u64 = 1_733_356_800_123;

/// A key is stored once (id derived as status-go does), listed without its material, refused
/// when it is not 32 bytes, its timestamp is not Unix ms, or the community is unknown; the
/// newest key by timestamp is the one an encrypted owner wraps with, and only then.
#[test]
fn ratchet_keys_are_stored_listed_and_checked() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    assert!(matches!(
        communities.add_ratchet_key(&mut store, &id, RATCHET_TS, &RATCHET_KEY),
        Err(CommunityError::UnknownCommunity(_))
    ));
    communities.import_key(&mut store, COMMUNITY_SK, &CreateOptions::default()).unwrap();
    for (ts, key) in [(RATCHET_TS, &[1u8; 31][..]), (RATCHET_TS, &[1u8; 33][..]), (1_733_356_800, &RATCHET_KEY[..])] {
        let err = communities.add_ratchet_key(&mut store, &id, ts, key).unwrap_err();
        assert!(matches!(err, CommunityError::InvalidRatchetKey(_)), "{err}");
    }
    let added = communities.add_ratchet_key(&mut store, &id, RATCHET_TS, &RATCHET_KEY).unwrap();
    let expected_id = chs_status::hash_ratchet::key_id(id.as_bytes(), RATCHET_TS, &RATCHET_KEY);
    assert_eq!(added.key.key_id, format!("0x{}", hex::encode(expected_id)));
    assert!(added.new && added.reopened.is_none());
    assert!(!communities.add_ratchet_key(&mut store, &id, RATCHET_TS, &RATCHET_KEY).unwrap().new);
    let newer = communities.add_ratchet_key(&mut store, &id, RATCHET_TS + 10, &[0x22; 32]).unwrap();
    let listed = communities.ratchet_keys(&store, &id).unwrap();
    assert_eq!(listed.iter().map(|k| k.timestamp).collect::<Vec<_>>(), [RATCHET_TS + 10, RATCHET_TS]);
    let json = serde_json::to_string(&communities.info(&store, &id).unwrap()).unwrap();
    assert!(!json.contains(&hex::encode(RATCHET_KEY)) && !json.contains(&hex::encode([0x22u8; 32])), "{json}");

    // No description yet: plain, whatever the keys.
    assert_eq!(communities.archive_wrapping(&store, &id).unwrap(), ArchiveWrapping::Plain);
    store
        .connection()
        .execute(
            "INSERT INTO chs_community_description (community_id, clock, encrypted, received_at_ms) VALUES (?1, 1, 1, 0)",
            [id.to_string()],
        )
        .unwrap();
    match communities.archive_wrapping(&store, &id).unwrap() {
        ArchiveWrapping::Wrapped(key) => assert_eq!(format!("0x{}", hex::encode(key.key_id())), newer.key.key_id),
        other => panic!("{other:?}"),
    }
    store.connection().execute("DELETE FROM chs_ratchet_keys", []).unwrap();
    assert_eq!(communities.archive_wrapping(&store, &id).unwrap(), ArchiveWrapping::NoKey);
    let info = communities.info(&store, &id).unwrap();
    assert!(info.archive_wrapping.unwrap().contains("no hash-ratchet key"));
}

/// Every wrap reserves its sequence number in the database first: two wrappers (two builds, or
/// a restart with a new connection) never use the same number, and what they wrap opens with
/// the key at exactly that number.
#[test]
fn ratchet_wrapper_never_reuses_a_sequence_number_across_wrappers_and_reopens() {
    use chs_archive::Wrapper as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chs.db");
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    let mut seqs = Vec::new();
    for round in 0..2u8 {
        let mut store = Store::open(&path).unwrap();
        let communities = Communities::open(&mut store).unwrap();
        if round == 0 {
            communities.import_key(&mut store, COMMUNITY_SK, &CreateOptions::default()).unwrap();
            communities.add_ratchet_key(&mut store, &id, RATCHET_TS, &RATCHET_KEY).unwrap();
        }
        let keys = communities.ratchet_key_material(&store, &id).unwrap();
        let mut wrapper = RatchetWrapper::new(&store, id, keys[0].clone(), keys.clone(), "inst".into());
        for n in 0..2u8 {
            let wrapped = wrapper.wrap(&[round, n]).unwrap();
            let opened = chs_status::hash_ratchet::unwrap(&keys, &wrapped).unwrap();
            assert_eq!(opened.plaintext, [round, n]);
            seqs.push(opened.seq_no);
            assert_eq!(wrapper.unwrap(&wrapped).unwrap(), [round, n]);
        }
        assert_eq!(communities.ratchet_keys(&store, &id).unwrap()[0].last_seq_no, *seqs.last().unwrap());
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
}

/// A member that kept a link it could not open gets it pending again when a key is added (so
/// its node re-opens it), unless a newer link is pending already.
#[test]
fn adding_a_ratchet_key_makes_the_unopened_link_pending_again() {
    let (_dir, mut store, communities) = open();
    let id: CommunityId = COMMUNITY_ID.parse().unwrap();
    communities.join(&mut store, &id, None).unwrap();
    let link = UnopenedLink {
        magnet_uri: "magnet:?xt=urn:btih:aa".into(),
        reason: "sealed".into(),
        bytes: 1,
        recorded_at_ms: 5,
    };
    communities.record_unopened_link(&store, &id, &link).unwrap();
    let added = communities.add_ratchet_key(&mut store, &id, RATCHET_TS, &RATCHET_KEY).unwrap();
    assert_eq!(added.reopened.as_deref(), Some(link.magnet_uri.as_str()));
    assert_eq!(communities.pending_link(&store, &id).unwrap().unwrap().magnet_uri, link.magnet_uri);
    let newer = PendingLink { magnet_uri: "magnet:?xt=urn:btih:bb".into(), clock: 9 };
    communities.save_pending_link(&store, &id, &newer, 1).unwrap();
    let again = communities.add_ratchet_key(&mut store, &id, RATCHET_TS + 10, &RATCHET_KEY).unwrap();
    assert_eq!(again.reopened, None);
    assert_eq!(communities.pending_link(&store, &id).unwrap(), Some(newer));
}
