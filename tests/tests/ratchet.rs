//! Issue 19 item 3: an encrypted community whose hash-ratchet key chs holds. The control node
//! wraps its archives and index exactly as status-go's `createHistoryArchiveTorrent` does
//! (`BuildHashRatchetMessage` with the community id as group, one sequence number each, never
//! reused across builds or restarts); a member with the key imports exactly the archived
//! messages; a member without it keeps and seeds the sealed history, says why, and imports it
//! from the kept files once the key is added. Real Waku relay, BitTorrent and SQLite on loopback.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chs_community::{Communities, CommunityId};
use chs_demo::{MessageRow, generate_history, history_fingerprint, join_member, wait_for};
use chs_node::{ManualClock, Node, NodeConfig, Signal};
use chs_status::ChatKeyCache;
use chs_status::description::{DescriptionParams, build_description};
use chs_status::hash_ratchet::{RatchetKey, unwrap};
use chs_store::{Store, StoredMessage};
use tokio::sync::broadcast;

mod support;
use support::{HOUR_MS, STEP, WEEK_MS, first_addr, now_ms, owner_with_history, start_subscribed};

const KEY: [u8; 32] = [0x5a; 32];
const KEY_TS: u64 = 1_733_356_800_123;

fn store_of(dir: &Path) -> (Store, Communities) {
    let mut store = Store::open(&dir.join("chs.db")).expect("store");
    let communities = Communities::open(&mut store).expect("communities");
    (store, communities)
}

/// The owner's community becomes encrypted through its own signed description (status-go's
/// `publishOrg` with a `BECOME_MEMBER` token permission), and the owner holds the key.
fn make_encrypted_with_key(dir: &Path, id: &CommunityId) {
    let (mut store, communities) = store_of(dir);
    let community = communities.get(&store, id).expect("community");
    let channels: Vec<(String, String)> = community
        .chats
        .iter()
        .map(|chat| (chat.strip_prefix(&id.to_string()).expect("chat of the community").to_owned(), "c".to_owned()))
        .collect();
    let key = community.private_key().expect("control node").clone();
    let params = DescriptionParams {
        community_key: &key,
        transport_key: &key,
        clock: 1,
        name: "gated",
        channels: &channels,
        encrypted: true,
        archive_link_clock: 0,
        timestamp_ns: i64::try_from(now_ms()).expect("ms") * 1_000_000,
        owner_token: None,
    };
    let message = build_description(&params, &ChatKeyCache::new()).expect("description").waku_message;
    communities.receive_description(&mut store, id, &message).expect("applied");
    assert!(communities.description(&store, id).expect("read").expect("stored").encrypted);
    communities.add_ratchet_key(&mut store, id, KEY_TS, &KEY).expect("key");
}

fn key_of(id: &CommunityId) -> RatchetKey {
    RatchetKey::new(id.as_bytes().to_vec(), KEY_TS, KEY.to_vec(), None).expect("key")
}

/// The owner's folder read with the key: the index's sequence number, each archive's
/// (by id), and every archived message as a [`MessageRow`]; also the largest `to`.
struct Opened {
    index_seq: u32,
    archive_seqs: Vec<(String, u32)>,
    rows: Vec<MessageRow>,
    archived_until: u64,
}

fn open_folder(dir: &Path, id: &CommunityId, pubsub_topic: &str) -> Opened {
    let folder = NodeConfig::local(dir).archive_root().join(id.to_string());
    let index_bytes = std::fs::read(folder.join("index")).expect("index");
    let data = std::fs::read(folder.join("data")).expect("data");
    let wrapping = chs_archive::hash_ratchet_wrapping(&index_bytes).expect("the index is hash-ratchet wrapped");
    assert!(chs_archive::format::decode_index(&index_bytes).is_err(), "not readable without the key: {wrapping}");
    let keys = [key_of(id)];
    let index = unwrap(&keys, &index_bytes).expect("the index opens with the key");
    let index_plain = chs_archive::format::decode_index(&index.plaintext).expect("index decodes");
    let mut archive_seqs = Vec::new();
    let mut rows = Vec::new();
    let mut archived_until = 0;
    for (archive_id, entry) in &index_plain.archives {
        let offset = usize::try_from(entry.offset).expect("offset");
        let end = offset + usize::try_from(entry.size - entry.padding).expect("size");
        let wrapped = &data[offset..end];
        assert!(chs_archive::format::decode_archive(wrapped).is_err(), "archive {archive_id} is wrapped");
        let opened = unwrap(&keys, wrapped).expect("the archive opens with the key");
        archive_seqs.push((archive_id.clone(), opened.seq_no));
        let archive = chs_archive::format::decode_archive(&opened.plaintext).expect("archive decodes");
        archived_until = archived_until.max(archive.metadata.as_ref().expect("metadata").to);
        for m in &archive.messages {
            let row = StoredMessage::from_untrusted_archive_message(pubsub_topic, m, 0).expect("archived message");
            rows.push((row.hash.to_vec(), row.payload.clone(), row.sig.clone(), row.timestamp_secs(), row.topic));
        }
    }
    rows.sort();
    Opened { index_seq: index.seq_no, archive_seqs, rows, archived_until }
}

async fn seeded(signals: &mut broadcast::Receiver<Signal>, what: &str) {
    wait_for(signals, STEP, what, |s| matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(()))
        .await
        .expect("seeded");
}

/// One more week of history, then a build of it (clock moved and the build asked for).
async fn next_week(owner: &Node, dir: &Path, id: &CommunityId, clock: &ManualClock, from_ms: u64, seed: u64) {
    let mut signals = owner.handle().signals();
    generate_history(dir, id, from_ms, from_ms + WEEK_MS, 10, 2, seed).expect("week");
    clock.advance(Duration::from_millis(WEEK_MS));
    owner.handle().trigger_archive(id).await.expect("trigger");
    wait_for(&mut signals, STEP, "the new archive", |s| {
        matches!(s, Signal::HistoryArchivesCreated { .. }).then_some(())
    })
    .await
    .expect("built");
    seeded(&mut signals, "the new torrent").await;
}

fn owner_rows_until(store_dir: &Path, id: &CommunityId, until: u64) -> Vec<MessageRow> {
    let (store, _) = store_of(store_dir);
    history_fingerprint(&store, id).expect("rows").into_iter().filter(|r| r.3 < until).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn encrypted_community_archives_are_wrapped_and_opened_with_the_hash_ratchet_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = now_ms();
    let clock = ManualClock::new(t0);
    let owner_dir = dir.path().join("owner");
    let end = t0 - HOUR_MS;
    let id = owner_with_history(&owner_dir, "gated", end, 40, 3, 41);
    make_encrypted_with_key(&owner_dir, &id);
    let pubsub_topic = store_of(&owner_dir).1.get(&store_of(&owner_dir).0, &id).expect("community").pubsub_topic;

    // (a) Three builds, the last after a restart: every archive and every index takes its own
    // sequence number, none used twice, and what they hold is exactly the captured history.
    let (owner, mut owner_signals) = start_subscribed(&owner_dir, &clock, vec![], None).await;
    seeded(&mut owner_signals, "the first torrent").await;
    let first = open_folder(&owner_dir, &id, &pubsub_topic);
    assert_eq!(first.archive_seqs.len(), 2);
    next_week(&owner, &owner_dir, &id, &clock, end, 42).await;
    let second = open_folder(&owner_dir, &id, &pubsub_topic);
    owner.shutdown().await;
    let (owner, mut owner_signals) = start_subscribed(&owner_dir, &clock, vec![], None).await;
    seeded(&mut owner_signals, "the existing torrent after the restart").await;
    next_week(&owner, &owner_dir, &id, &clock, end + WEEK_MS, 43).await;
    let third = open_folder(&owner_dir, &id, &pubsub_topic);
    assert_eq!(third.archive_seqs.len(), 4);
    for earlier in [&first, &second] {
        for archive in &earlier.archive_seqs {
            assert!(third.archive_seqs.contains(archive), "an archive is never rewritten: {archive:?}");
        }
    }
    let mut used: Vec<u32> = third.archive_seqs.iter().map(|(_, seq)| *seq).collect();
    used.extend([first.index_seq, second.index_seq, third.index_seq]);
    let distinct: BTreeSet<u32> = used.iter().copied().collect();
    assert_eq!(distinct.len(), used.len(), "a sequence number was used twice: {used:?}");
    assert!(used.iter().all(|&seq| seq > 0), "seq_no 0 would be a plaintext payload: {used:?}");
    let owner_rows = owner_rows_until(&owner_dir, &id, third.archived_until);
    assert_eq!(owner_rows.len(), 40 + 10 + 10);
    assert_eq!(third.rows, owner_rows, "the wrapped archives hold exactly the captured messages");
    let status = owner.handle().status().await.expect("status");
    assert_eq!(status[0].archives, 4, "the node reads its wrapped index with the key");
    assert!(status[0].archive_wrapping.as_deref().unwrap_or_default().contains("wrapped with hash-ratchet key"));

    // (b) A member holding the key and (c) one without it.
    let owner_addr = first_addr(&owner).await;
    let with_key = dir.path().join("with-key");
    let without_key = dir.path().join("without-key");
    for member in [&with_key, &without_key] {
        join_member(member, &id).expect("join");
    }
    {
        let (mut store, communities) = store_of(&with_key);
        communities.add_ratchet_key(&mut store, &id, KEY_TS, &KEY).expect("key");
    }
    let (member, mut signals) = start_subscribed(&with_key, &clock, vec![owner_addr.clone()], None).await;
    let (sealed, mut sealed_signals) = start_subscribed(&without_key, &clock, vec![owner_addr], None).await;
    let archives = wait_for(&mut signals, STEP, "the keyed member's download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        Signal::HistoryArchivesNotImported { reason, .. } => panic!("the member holds the key: {reason}"),
        _ => None,
    })
    .await
    .expect("downloaded");
    assert_eq!(archives, 4);
    let member_rows = member.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("rows");
    assert_eq!(member_rows, owner_rows, "the member imports exactly the archived messages");

    let reason = wait_for(&mut sealed_signals, STEP, "the sealed history", |s| match s {
        Signal::HistoryArchivesNotImported { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await
    .expect("not imported");
    assert!(reason.contains("hash-ratchet"), "{reason}");
    wait_for(&mut sealed_signals, STEP, "the kept download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("kept");
    let status = sealed.handle().status().await.expect("status");
    assert_eq!(status[0].imported_archives, 0);
    assert!(status[0].not_imported.as_ref().expect("says why").reason.contains("hash-ratchet"));
    assert!(status[0].seeding.is_some(), "the sealed history is seeded");

    // The key arrives (as `chs community ratchet-key add` writes it, then asks the running
    // node): the kept history is opened from the files on disk.
    let added = {
        let (mut store, communities) = store_of(&without_key);
        communities.add_ratchet_key(&mut store, &id, KEY_TS, &KEY).expect("key")
    };
    assert!(added.reopened.is_some(), "the kept link becomes pending again");
    sealed.handle().restart(&id).await.expect("restart");
    let (archives, bytes) = wait_for(&mut sealed_signals, STEP, "the re-opened history", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, bytes_received, .. } => {
            Some((*archives, *bytes_received))
        }
        Signal::HistoryArchivesNotImported { reason, .. } => panic!("the key was added: {reason}"),
        _ => None,
    })
    .await
    .expect("imported");
    assert_eq!((archives, bytes), (4, 0), "imported from the kept files, nothing downloaded again");
    let rows = sealed.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("rows");
    assert_eq!(rows, owner_rows);
    let status = sealed.handle().status().await.expect("status");
    assert!(status[0].not_imported.is_none(), "{:?}", status[0].not_imported);
    assert_eq!(status[0].ratchet_keys, 1);

    sealed.shutdown().await;
    member.shutdown().await;
    owner.shutdown().await;
}
