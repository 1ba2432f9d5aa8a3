//! Hostile inputs over the real network (issue 8 §3, part) and status-go's member-side bugs
//! (archives spec §15) that the orchestrator fixes.

use std::sync::Arc;
use std::time::Duration;

use chs_community::{Communities, CommunityId};
use chs_demo::{create_owner, generate_history, join_member, wait_for};
use chs_node::{ManualClock, Node, NodeConfig, Signal};
use chs_store::Store;
use chs_torrent::{Magnet, TorrentMeta, TorrentNode};

mod support;
use support::{
    HOUR_MS, STEP, WEEK_MS, first_addr, forged_magnetlink, now_ms, owner_with_history, start, start_config,
    start_subscribed, waku_peer,
};

/// Publishes a magnetlink for `uri`, correctly signed with the community key held in
/// `<owner_dir>/chs.db`, from a plain Waku node connected to `member_addr`.
async fn publish_signed_magnetlink(owner_dir: &std::path::Path, id: &CommunityId, uri: &str, member_addr: String) {
    let message = {
        let mut store = Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = Communities::open(&mut store).expect("communities");
        communities.build_magnetlink_now(&mut store, id, uri, now_ms()).expect("magnetlink")
    };
    let node = waku_peer(member_addr).await;
    node.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, message).await.expect("publish");
    node.shutdown().await;
}

/// A signed magnetlink (so, from the owner's key: a compromised or buggy control node) pointing
/// at a torrent that is not an archive torrent of this community is refused before any of it is
/// downloaded into the member's archive folder, and nothing is imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_torrents_behind_signed_magnetlinks_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "hostile").expect("community");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.member.max_attempts = 1;
    config.member.max_torrent_bytes = 1_000_000;
    let member = Node::start(config, Arc::new(clock.clone())).await.expect("member");
    let member_addr = first_addr(&member).await;
    let mut signals = member.handle().signals();

    // Seeder of hostile torrents: (1) a folder with a different name, (2) the community's name
    // but an extra file, (3) the right name and files, but bigger than `max_torrent_bytes`.
    let seeder = TorrentNode::start(chs_torrent::Config::local(dir.path().join("seeder-state"))).await.expect("seeder");
    let cases = [
        ("other-name".to_owned(), vec!["data", "index"], 200_000, "not the community id"),
        (id.to_string(), vec!["data", "index", "evil.sh"], 200_000, "not exactly"),
        (id.to_string(), vec!["data", "index"], 600_000, "exceed member.max_torrent_bytes = 1000000"),
    ];
    for (round, (name, files, size, expect)) in cases.iter().enumerate() {
        let folder = dir.path().join(format!("hostile-{round}")).join(name);
        std::fs::create_dir_all(&folder).expect("folder");
        for f in files {
            std::fs::write(folder.join(f), vec![b'x'; *size]).expect("file");
        }
        let meta = TorrentMeta::from_dir(&folder, 102_400).expect("meta");
        seeder.seed(&format!("hostile-{round}"), &folder, &meta).await.expect("seed");
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(seeder.local_peer_addr().expect("addr"));
        publish_signed_magnetlink(&owner_dir, &id, &magnet.to_string(), member_addr.clone()).await;
        let error = refusal(&mut signals, "hostile torrent").await;
        assert!(error.contains(expect), "round {round}: {error}");
    }
    // (4) Path traversal: an info dict whose file climbs out of the folder (`../../evil`), served
    // by a peer that speaks only the metadata extension (our seeder cannot even make such a torrent).
    let traversal = traversal_info(&id.to_string());
    let (peer, info_hash) = metadata_only_peer(traversal);
    let magnet = format!("magnet:?xt=urn:btih:{info_hash}&dn={id}&x.pe={peer}");
    publish_signed_magnetlink(&owner_dir, &id, &magnet, member_addr.clone()).await;
    let error = refusal(&mut signals, "traversal torrent").await;
    // Refused while fetching the metadata (librqbit's check; `TorrentMeta` refuses it too).
    assert!(error.contains("metadata") && error.contains("\"..\""), "names the bad path: {error}");
    assert_eq!(files_named(dir.path(), "evil"), Vec::<std::path::PathBuf>::new(), "nothing written by the traversal");

    let status = member.handle().status().await.expect("status");
    assert_eq!(status[0].imported_archives, 0);
    assert_eq!(status[0].stored_messages, 0);
    assert!(!member_dir.join("archives/other-name").exists(), "nothing written outside the community folder");
    seeder.shutdown().await;
    member.shutdown().await;
}

/// The error of the member's refused download of `what`; panics if anything of it is imported.
async fn refusal(signals: &mut tokio::sync::broadcast::Receiver<Signal>, what: &str) -> String {
    wait_for(signals, STEP, &format!("the refusal of the {what}"), |s| match s {
        Signal::HistoryArchiveDownloadFailed { error, .. } => Some(error.clone()),
        Signal::ImportingHistoryArchiveMessages { .. } | Signal::DownloadingHistoryArchivesFinished { .. } => {
            panic!("{what} imported: {s:?}")
        }
        _ => None,
    })
    .await
    .expect("refused")
}

/// An info dict named `name` with a file at `../../evil` (and `data`, `index`), 1 piece.
fn traversal_info(name: &str) -> Vec<u8> {
    use chs_torrent::bencode::Value;
    let file = |path: &[&str]| {
        Value::Dict(
            [
                (b"length".to_vec(), Value::Int(10)),
                (b"path".to_vec(), Value::List(path.iter().map(|p| Value::bytes(p.as_bytes())).collect())),
            ]
            .into(),
        )
    };
    Value::Dict(
        [
            (b"files".to_vec(), Value::List(vec![file(&["..", "..", "evil"]), file(&["data"]), file(&["index"])])),
            (b"name".to_vec(), Value::bytes(name.as_bytes())),
            (b"piece length".to_vec(), Value::Int(102_400)),
            (b"pieces".to_vec(), Value::bytes(vec![0u8; 20])),
        ]
        .into(),
    )
    .encode()
}

/// Every file called `name` under `dir`.
fn files_named(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if entry.file_name() == name {
            found.push(path);
        }
    }
    found
}

/// A BitTorrent peer on loopback that serves nothing but `info` over the metadata extension
/// (BEP 10 handshake + BEP 9 `ut_metadata`), whatever it contains; returns its address and the
/// info hash (hex).
fn metadata_only_peer(info: Vec<u8>) -> (std::net::SocketAddr, String) {
    use sha1::Digest as _;
    let hash: [u8; 20] = sha1::Sha1::digest(&info).into();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let info = info.clone();
            std::thread::spawn(move || serve_metadata(stream, &info, hash));
        }
    });
    (addr, hash.iter().map(|b| format!("{b:02x}")).collect())
}

fn serve_metadata(mut s: std::net::TcpStream, info: &[u8], hash: [u8; 20]) -> std::io::Result<()> {
    use chs_torrent::bencode::Value;
    use std::io::{Read as _, Write as _};
    const OUR_UT_METADATA: i64 = 3;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut theirs = [0u8; 68];
    s.read_exact(&mut theirs)?;
    let mut hello = vec![19];
    hello.extend_from_slice(b"BitTorrent protocol");
    hello.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]); // extension protocol
    hello.extend_from_slice(&hash);
    hello.extend_from_slice(b"-ZZ0001-metadataonly");
    s.write_all(&hello)?;
    let send = |s: &mut std::net::TcpStream, body: &[u8]| -> std::io::Result<()> {
        s.write_all(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes())?;
        s.write_all(body)
    };
    let handshake = Value::Dict(
        [
            (b"m".to_vec(), Value::Dict([(b"ut_metadata".to_vec(), Value::Int(OUR_UT_METADATA))].into())),
            (b"metadata_size".to_vec(), Value::Int(i64::try_from(info.len()).unwrap_or(i64::MAX))),
        ]
        .into(),
    );
    send(&mut s, &[&[20u8, 0][..], &handshake.encode()].concat())?;
    let mut their_ut_metadata = None;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body)?;
        match body.as_slice() {
            [20, 0, rest @ ..] => {
                let v = Value::decode(rest).ok();
                their_ut_metadata = v
                    .as_ref()
                    .and_then(|v| v.as_dict())
                    .and_then(|d| d.get(&b"m"[..]))
                    .and_then(Value::as_dict)
                    .and_then(|m| m.get(&b"ut_metadata"[..]))
                    .and_then(Value::as_int);
            }
            [20, id, rest @ ..] if i64::from(*id) == OUR_UT_METADATA => {
                let (request, _) = Value::decode_prefix(rest).map_err(std::io::Error::other)?;
                let piece = request.as_dict().and_then(|d| d.get(&b"piece"[..])).and_then(Value::as_int).unwrap_or(0);
                let start = usize::try_from(piece).unwrap_or(usize::MAX).saturating_mul(16_384).min(info.len());
                let chunk = &info[start..(start + 16_384).min(info.len())];
                let header = Value::Dict(
                    [
                        (b"msg_type".to_vec(), Value::Int(1)),
                        (b"piece".to_vec(), Value::Int(piece)),
                        (b"total_size".to_vec(), Value::Int(i64::try_from(info.len()).unwrap_or(i64::MAX))),
                    ]
                    .into(),
                );
                let id = u8::try_from(their_ut_metadata.unwrap_or(OUR_UT_METADATA)).unwrap_or(1);
                send(&mut s, &[&[20u8, id][..], &header.encode(), chunk].concat())?;
            }
            _ => {} // keep-alives, bitfield, interested...: ignored
        }
    }
}

/// spec §15 item 28: status-go members seed only in the session in which they downloaded; ours
/// seed the downloaded archives again after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spec15_item28_member_seeds_again_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "reseed", end, 30, 2, 5);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], Some(1)).await;
    let mut signals = member.handle().signals();
    let member_addr = first_addr(&member).await;
    let owner = start(&owner_dir, &clock, vec![member_addr], Some(1)).await;
    wait_for(&mut signals, STEP, "the download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("downloaded");
    let before = member.handle().status().await.expect("status")[0].seeding.clone().expect("seeding after download");
    owner.shutdown().await;
    member.shutdown().await;

    let member = start(&member_dir, &clock, vec![], Some(1)).await;
    let after = member.handle().status().await.expect("status")[0].seeding.clone().expect("seeding after restart");
    assert_eq!(after.info_hash, before.info_hash);
    assert_eq!(after.have_bytes, after.total_bytes, "every piece re-verified and served");
    member.shutdown().await;
}

/// A peer that accepts TCP connections and never says a word.
fn silent_peer() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

/// spec §15 item 19: status-go has no timeout on the index or piece download, and its shutdown
/// waits on download tasks without cancelling them. A silent peer here ends the attempt with a
/// timeout (a failure signal), and a shutdown during a stuck download returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spec15_item19_stuck_downloads_time_out_and_shutdown_cancels_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "stuck").expect("community");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.member.max_attempts = 2;
    config.torrent.metadata_timeout = Duration::from_secs(1);
    let member = Node::start(config, Arc::new(clock.clone())).await.expect("member");
    let member_addr = first_addr(&member).await;
    let mut signals = member.handle().signals();
    let magnet = format!("magnet:?xt=urn:btih:{}&dn={id}&x.pe={}", "ab".repeat(20), silent_peer());
    publish_signed_magnetlink(&owner_dir, &id, &magnet, member_addr).await;
    let (error, retry_in_ms) = wait_for(&mut signals, STEP, "the timeout", |s| match s {
        Signal::HistoryArchiveDownloadFailed { error, retry_in_ms, .. } => Some((error.clone(), *retry_in_ms)),
        _ => None,
    })
    .await
    .expect("the stuck attempt fails instead of hanging");
    assert!(error.contains("timed out"), "{error}");
    assert!(retry_in_ms > 0, "retried with backoff");
    // The retry is stuck on the silent peer again: shutting down must not wait for it.
    wait_for(&mut signals, STEP, "the retry", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesStarted { .. }).then_some(())
    })
    .await
    .expect("retry starts");
    tokio::time::timeout(Duration::from_secs(10), member.shutdown())
        .await
        .expect("shutdown cancels the stuck download instead of waiting for it");
}

/// spec §15 item 22: status-go's `CreateAndSeed` unseeds before creating, so a failed creation
/// leaves the community unseeded until the next run. Here a build that fails (its `index.tmp`
/// cannot be written) leaves the previous torrent seeded, and the next build repairs the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spec15_item22_failed_build_keeps_the_previous_torrent_seeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = now_ms();
    let clock = ManualClock::new(t0);
    let owner_dir = dir.path().join("owner");
    let end = t0 - HOUR_MS;
    let id = owner_with_history(&owner_dir, "failing build", end, 30, 2, 8);
    let mut config = NodeConfig::local(&owner_dir);
    config.archive.watch_interval = Duration::from_secs(3600);
    let bus = chs_node::SignalBus::default();
    let mut signals = bus.subscribe();
    let owner = Node::start_with_bus(config, Arc::new(clock.clone()), bus).await.expect("owner");
    wait_for(&mut signals, STEP, "the first seeding", |s| {
        matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(())
    })
    .await
    .expect("seeded");
    let first = owner.handle().status().await.expect("status")[0].seeding.clone().expect("seeding").info_hash;

    generate_history(&owner_dir, &id, end, end + WEEK_MS, 10, 2, 9).expect("next week");
    let blocker = owner_dir.join("archives").join(id.to_string()).join(chs_archive::INDEX_TEMP_FILE);
    std::fs::create_dir_all(blocker.join("x")).expect("blocker");
    clock.advance(Duration::from_millis(WEEK_MS));
    owner.handle().trigger_archive(&id).await.expect("trigger");
    let error = wait_for(&mut signals, STEP, "the failure", |s| match s {
        Signal::HistoryArchivesFailed { error, .. } => Some(error.clone()),
        Signal::HistoryArchivesSeeding { .. } => panic!("seeded despite the failure: {s:?}"),
        _ => None,
    })
    .await
    .expect("build fails");
    let still = owner.handle().status().await.expect("status")[0].seeding.clone();
    assert_eq!(still.map(|s| s.info_hash), Some(first.clone()), "the previous torrent stays seeded ({error})");

    std::fs::remove_dir_all(&blocker).expect("unblock");
    owner.handle().trigger_archive(&id).await.expect("trigger");
    wait_for(&mut signals, STEP, "the reseeding", |s| matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(()))
        .await
        .expect("seeded again");
    let status = owner.handle().status().await.expect("status");
    assert_eq!(status[0].archives, 3);
    assert_ne!(status[0].seeding.as_ref().map(|s| s.info_hash.clone()), Some(first));
    let reader = chs_archive::Reader::open(&owner_dir.join("archives").join(id.to_string())).expect("reader");
    assert!(reader.verify(102_400).is_ok(), "the repaired folder verifies");
    owner.shutdown().await;
}

/// A forged magnetlink (right topic and chat key, wrong signer), with a fresh clock each time.
fn forged(id: &CommunityId, n: u64) -> chs_proto::waku::WakuMessage {
    let forger = chs_waku_payload::SecretKey::generate().expect("key");
    let uri = format!("magnet:?xt=urn:btih:{}&dn=flood{n}", "cd".repeat(20));
    forged_magnetlink(id, &forger, &uri, now_ms() + n)
}

/// A flood of forged magnetlinks is rejected one by one without stopping the member; a signed
/// link to a torrent whose index has an entry beyond `data` imports the good archives and
/// reports the bogus one; a replayed older clock is refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_bogus_index_offsets_and_replayed_clocks_are_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "bogus", end, 30, 2, 11);

    // The owner's archives, built in a folder of our own, plus one bogus index entry.
    let folder = dir.path().join("crafted").join(id.to_string());
    {
        let mut store = Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = Communities::open(&mut store).expect("communities");
        let topics = communities.channel_topics(&store, &id).expect("topics");
        let options = chs_archive::BuildOptions {
            from: Some((end - 2 * WEEK_MS) / 1000),
            ..chs_archive::BuildOptions::new(topics.clone(), end / 1000)
        };
        let report = chs_archive::Builder::new(&folder, options).run(&store).expect("build");
        assert_eq!(report.archives.len(), 2);
        let index_path = folder.join(chs_archive::INDEX_FILE);
        let mut index = chs_archive::format::decode_index(&std::fs::read(&index_path).expect("index")).expect("decode");
        let bogus = chs_proto::protobuf::WakuMessageArchiveIndexMetadata {
            version: 0,
            metadata: Some(chs_archive::format::archive_metadata(end / 1000, end / 1000 + 604_800, &topics)),
            offset: 1 << 40,
            size: 102_400,
            padding: 0,
        };
        index.archives.insert(chs_archive::archive_id(&bogus), bogus);
        std::fs::write(&index_path, chs_archive::format::encode_index(&index)).expect("write index");
    }
    let seeder = TorrentNode::start(chs_torrent::Config::local(dir.path().join("seeder"))).await.expect("seeder");
    let meta = TorrentMeta::from_dir(&folder, 102_400).expect("meta");
    seeder.seed("crafted", &folder, &meta).await.expect("seed");
    let magnet = Magnet::for_meta(&meta, &[]).with_peer(seeder.local_peer_addr().expect("addr")).to_string();

    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], Some(1)).await;
    let member_addr = first_addr(&member).await;
    let mut signals = member.handle().signals();

    // Flood.
    let flooder = waku_peer(member_addr.clone()).await;
    const FLOOD: u64 = 200;
    for n in 0..FLOOD {
        flooder.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, forged(&id, n)).await.expect("publish");
    }
    let mut rejected = 0;
    wait_for(&mut signals, STEP, "every forged link rejected", |s| {
        match s {
            Signal::MagnetlinkRejected { .. } => rejected += 1,
            Signal::MagnetlinkAccepted { .. } => panic!("forged link accepted: {s:?}"),
            _ => {}
        }
        (rejected == FLOOD).then_some(())
    })
    .await
    .expect("flood rejected");
    flooder.shutdown().await;

    // The real (signed) link to the crafted torrent.
    publish_signed_magnetlink(&owner_dir, &id, &magnet, member_addr.clone()).await;
    let mut bogus_reported = false;
    let archives = wait_for(&mut signals, STEP, "the download", |s| match s {
        Signal::HistoryArchiveImportFailed { error, .. } => {
            assert!(error.contains("does not fit"), "{error}");
            bogus_reported = true;
            None
        }
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        _ => None,
    })
    .await
    .expect("finished");
    assert!(bogus_reported, "the bogus entry is reported");
    assert_eq!(archives, 2, "the two good archives are imported");
    let status = member.handle().status().await.expect("status");
    assert_eq!(status[0].stored_messages, 30);

    // Replay: a correctly signed link with an older clock is refused.
    let stale = {
        let mut store = Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = Communities::open(&mut store).expect("communities");
        communities
            .build_magnetlink_now(&mut store, &id, "magnet:?xt=urn:btih:ef01ef01ef01ef01ef01ef01ef01ef01ef01ef01", 1)
            .expect("link")
    };
    let replayer = waku_peer(member_addr).await;
    replayer.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, stale).await.expect("publish");
    let reason = wait_for(&mut signals, STEP, "the replay rejection", |s| match s {
        Signal::MagnetlinkRejected { reason } => Some(reason.clone()),
        Signal::MagnetlinkAccepted { .. } => panic!("replayed clock accepted"),
        _ => None,
    })
    .await
    .expect("rejected");
    assert!(reason.contains("older"), "{reason}");
    replayer.shutdown().await;
    seeder.shutdown().await;
    member.shutdown().await;
}

/// The member's SQLite file is locked by another connection (another program) while it
/// downloads: the import fails after the busy timeout, nothing is half-written, the download is
/// retried with backoff, and once the lock is gone everything is imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locked_database_during_import_is_retried_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "locked", end, 30, 2, 12);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    // Long enough for the test to take the lock between the accept and the download.
    config.member.debounce = Duration::from_secs(2);
    let member = Node::start(config, Arc::new(clock.clone())).await.expect("member");
    let member_addr = first_addr(&member).await;
    let mut signals = member.handle().signals();
    let owner = start(&owner_dir, &clock, vec![member_addr], Some(1)).await;
    wait_for(&mut signals, STEP, "the accept", |s| matches!(s, Signal::MagnetlinkAccepted { .. }).then_some(()))
        .await
        .expect("accepted");
    let locker = rusqlite::Connection::open(member_dir.join("chs.db")).expect("open");
    locker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let error = wait_for(&mut signals, STEP, "the failure", |s| match s {
        Signal::HistoryArchiveDownloadFailed { error, .. } => Some(error.clone()),
        Signal::DownloadingHistoryArchivesFinished { .. } => panic!("finished while the database was locked"),
        _ => None,
    })
    .await
    .expect("fails while locked");
    assert!(error.contains("locked") || error.contains("busy"), "{error}");
    locker.execute_batch("ROLLBACK").expect("unlock");
    drop(locker);
    let archives = wait_for(&mut signals, STEP, "the retry", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        _ => None,
    })
    .await
    .expect("retried");
    assert_eq!(archives, 2);
    let status = member.handle().status().await.expect("status");
    assert_eq!((status[0].imported_archives, status[0].stored_messages), (2, 30));
    owner.shutdown().await;
    member.shutdown().await;
}

/// A seeder serving a corrupted piece, then vanishing: the member drops it (SHA-1 per piece),
/// fetches from another member that re-seeds, and imports exactly the owner's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupted_and_vanishing_seeder_member_completes_from_another_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "corrupt", end, 400, 4, 51);
    let a_dir = dir.path().join("member-a");
    join_member(&a_dir, &id).expect("join");
    let a = start(&a_dir, &clock, vec![], Some(1)).await;
    let mut a_signals = a.handle().signals();
    let owner = start(&owner_dir, &clock, vec![first_addr(&a).await], Some(1)).await;
    wait_for(&mut a_signals, STEP, "member A's download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("A downloaded");
    let owner_rows = {
        let store = Store::open(&owner_dir.join("chs.db")).expect("store");
        chs_demo::history_fingerprint(&store, &id).expect("rows")
    };

    // Corrupt one byte inside the first archive of the owner's seeded `data`.
    let data = owner_dir.join("archives").join(id.to_string()).join(chs_archive::DATA_FILE);
    let mut bytes = std::fs::read(&data).expect("data");
    bytes[100] ^= 0xff;
    std::fs::write(&data, &bytes).expect("corrupt");

    // Member B knows A as a peer; the owner's link names the owner.
    let b_dir = dir.path().join("member-b");
    join_member(&b_dir, &id).expect("join");
    let mut config = NodeConfig::local(&b_dir);
    config.torrent.peers = a.handle().torrent_addr().into_iter().collect();
    config.waku.bootstrap = vec![first_addr(&owner).await];
    let (b, mut b_signals) = start_config(config, &clock).await;
    wait_for(&mut b_signals, STEP, "B's start", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesStarted { .. }).then_some(())
    })
    .await
    .expect("B starts");
    owner.shutdown().await; // the (corrupt) seeder vanishes mid-transfer
    wait_for(&mut b_signals, STEP, "B's download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("B completes from A");
    let b_rows = b.handle().with_store(move |_, s| chs_demo::history_fingerprint(s, &id)).await.expect("rows");
    assert_eq!(b_rows, owner_rows, "verified pieces only: B's history is the owner's");
    a.shutdown().await;
    b.shutdown().await;
}

/// An info dict for a torrent named `name` with files `data` (`data_len` bytes) and `index`
/// (`index_len` bytes), whose piece hashes are made up: no peer can ever serve a piece of it.
fn declared_info(name: &str, data_len: u64, index_len: u64, piece_length: u64) -> Vec<u8> {
    use chs_torrent::bencode::Value;
    let file = |path: &str, length: u64| {
        Value::Dict(
            [
                (b"length".to_vec(), Value::Int(i64::try_from(length).expect("length"))),
                (b"path".to_vec(), Value::List(vec![Value::bytes(path.as_bytes())])),
            ]
            .into(),
        )
    };
    let n_pieces = (data_len + index_len).div_ceil(piece_length);
    Value::Dict(
        [
            (b"files".to_vec(), Value::List(vec![file("data", data_len), file("index", index_len)])),
            (b"name".to_vec(), Value::bytes(name.as_bytes())),
            (b"piece length".to_vec(), Value::Int(i64::try_from(piece_length).expect("piece length"))),
            (b"pieces".to_vec(), Value::bytes(vec![7u8; usize::try_from(n_pieces * 20).expect("pieces")])),
        ]
        .into(),
    )
    .encode()
}

/// What a member's seeded copy looks like from outside: its `data` and `index` bytes, the torrent
/// it seeds and the archives its status reports.
#[derive(Debug, PartialEq, Eq)]
struct SeededCopy {
    data: Vec<u8>,
    index: Vec<u8>,
    seeding: Option<String>,
    archives: usize,
}

async fn seeded_copy(member: &Node, folder: &std::path::Path) -> SeededCopy {
    let status = member.handle().status().await.expect("status");
    SeededCopy {
        data: std::fs::read(folder.join(chs_archive::DATA_FILE)).expect("data"),
        index: std::fs::read(folder.join(chs_archive::INDEX_FILE)).expect("index"),
        seeding: status[0].seeding.as_ref().map(|s| s.info_hash.clone()),
        archives: status[0].archives,
    }
}

/// A member that imported the owner's torrent and seeds it (returned: the owner's folder and
/// community, the member, its signals, its Waku address, its archive folder, the old magnet).
struct SeedingMember {
    _dir: tempfile::TempDir,
    owner_dir: std::path::PathBuf,
    id: CommunityId,
    member: Node,
    signals: tokio::sync::broadcast::Receiver<Signal>,
    member_addr: String,
    folder: std::path::PathBuf,
    old_magnet: String,
}

async fn seeding_member(name: &str, max_torrent_bytes: u64) -> SeedingMember {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, name, end, 60, 3, 44);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.member.max_attempts = 1;
    config.member.max_torrent_bytes = max_torrent_bytes;
    config.torrent.stall_timeout = Duration::from_secs(2);
    config.torrent.metadata_timeout = Duration::from_secs(5);
    let (member, mut signals) = start_config(config, &clock).await;
    let member_addr = first_addr(&member).await;
    let owner = start(&owner_dir, &clock, vec![member_addr.clone()], Some(1)).await;
    let old_magnet = wait_for(&mut signals, STEP, "the first download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { magnet_uri, .. } => Some(magnet_uri.clone()),
        _ => None,
    })
    .await
    .expect("downloaded");
    owner.shutdown().await;
    let folder = member_dir.join("archives").join(id.to_string());
    SeedingMember { _dir: dir, owner_dir, id, member, signals, member_addr, folder, old_magnet }
}

/// The error of the member's failed download; panics if it finishes instead.
async fn download_failure(signals: &mut tokio::sync::broadcast::Receiver<Signal>, what: &str) -> String {
    wait_for(signals, STEP, what, |s| match s {
        Signal::HistoryArchiveDownloadFailed { error, .. } => Some(error.clone()),
        Signal::DownloadingHistoryArchivesFinished { .. } => panic!("{what}: finished: {s:?}"),
        _ => None,
    })
    .await
    .expect("the download fails")
}

/// Fetches the whole torrent of `magnet` from `peer` with a fresh torrent node (a new member).
async fn fetch_whole_torrent(dir: &std::path::Path, magnet: &str, peer: std::net::SocketAddr) -> Vec<u8> {
    let node = TorrentNode::start(chs_torrent::Config::local(dir.join("newcomer-state"))).await.expect("node");
    let magnet: Magnet = magnet.parse().expect("magnet");
    let options = chs_torrent::DownloadOptions {
        peers: vec![peer],
        stall_timeout: Duration::from_secs(10),
        ..chs_torrent::DownloadOptions::default()
    };
    let download = node.download("newcomer", &magnet, &dir.join("newcomer"), options).await.expect("metadata");
    download.fetch_index().await.expect("index");
    let data_len = download.meta().file_index("data").map(|i| download.meta().files()[i].length).expect("data");
    download.fetch_ranges("data", std::slice::from_ref(&(0..data_len))).await.expect("data served");
    let data = download.read_range("data", 0..data_len).await.expect("read");
    node.shutdown().await;
    data
}

/// Issue item 4: a correctly signed newer link whose seeder serves the metadata and then nothing
/// fails after the stall timeout without touching the member's seeded copy: `data` and `index`
/// byte-identical, no file grown, the old torrent still seeded and served to a new member.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item4_vanishing_seeder_leaves_the_seeded_copy_intact() {
    let mut m = seeding_member("vanishing", 1 << 30).await;
    let before = seeded_copy(&m.member, &m.folder).await;
    assert!(before.archives > 0 && before.seeding.is_some(), "{:?} {:?}", before.archives, before.seeding);

    let data_len = u64::try_from(before.data.len()).expect("len") + 4 * 102_400;
    let (peer, info_hash) = metadata_only_peer(declared_info(&m.id.to_string(), data_len, 5_000, 102_400));
    let magnet = format!("magnet:?xt=urn:btih:{info_hash}&dn={}&x.pe={peer}", m.id);
    publish_signed_magnetlink(&m.owner_dir, &m.id, &magnet, m.member_addr.clone()).await;
    let error = download_failure(&mut m.signals, "the download from the vanishing seeder").await;
    assert!(error.contains("timed out") || error.contains("stall"), "{error}");

    let after = seeded_copy(&m.member, &m.folder).await;
    assert_eq!(after.seeding, before.seeding, "the old torrent is still seeded");
    assert_eq!(after.archives, before.archives, "the status still counts the old archives");
    assert!(after.data == before.data && after.index == before.index, "data and index are byte-identical");
    assert_eq!(files_named(m.folder.parent().expect("root"), "data").len(), 1, "no staging copy left behind");
    let peer = m.member.handle().torrent_addr().expect("member torrent address");
    let served = fetch_whole_torrent(m._dir.path(), &m.old_magnet, peer).await;
    assert!(served == before.data, "a new member fetches the old torrent from this member");
    m.member.shutdown().await;
}

/// Issue item 4: a signed link declaring a 60 GB `data` (under a cap raised to 64 GiB) whose
/// seeder serves nothing but the metadata: no file grows, the seeded copy is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item4_sixty_gb_declaration_grows_no_file() {
    let mut m = seeding_member("sixty", 64 << 30).await;
    let before = seeded_copy(&m.member, &m.folder).await;
    let (peer, info_hash) = metadata_only_peer(declared_info(&m.id.to_string(), 60_000_000_000, 5_000, 16 << 20));
    let magnet = format!("magnet:?xt=urn:btih:{info_hash}&dn={}&x.pe={peer}", m.id);
    publish_signed_magnetlink(&m.owner_dir, &m.id, &magnet, m.member_addr.clone()).await;
    let error = download_failure(&mut m.signals, "the 60 GB download").await;
    let after = seeded_copy(&m.member, &m.folder).await;
    assert_eq!(after, before, "the seeded copy is untouched ({error})");
    let root = m.folder.parent().expect("root").to_owned();
    let mut largest = 0;
    for path in files_named(&root, "data").into_iter().chain(files_named(&root, "index")) {
        largest = largest.max(std::fs::metadata(&path).expect("metadata").len());
    }
    assert!(largest < 1 << 30, "no file under the archive root was grown to the declared size: {largest} bytes");
    m.member.shutdown().await;
}

/// Issue item 4: a signed link whose `index` is larger than `member.max_index_bytes` (default
/// 16 MiB) is refused from its metadata, before any of the index is fetched or read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item4_index_over_the_cap_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "big index").expect("community");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.member.max_attempts = 1;
    config.torrent.stall_timeout = Duration::from_secs(2);
    let (member, mut signals) = start_config(config, &clock).await;
    let member_addr = first_addr(&member).await;
    let (peer, info_hash) = metadata_only_peer(declared_info(&id.to_string(), 1 << 20, 64 << 20, 1 << 20));
    let magnet = format!("magnet:?xt=urn:btih:{info_hash}&dn={id}&x.pe={peer}");
    publish_signed_magnetlink(&owner_dir, &id, &magnet, member_addr).await;
    let error = download_failure(&mut signals, "the oversized index").await;
    assert!(error.contains("max_index_bytes"), "refused for its index size: {error}");
    assert_eq!(files_named(&member_dir.join("archives"), "index"), Vec::<std::path::PathBuf>::new(), "nothing written");
    member.shutdown().await;
}

/// Issue item 4: an index entry larger than `member.max_archive_bytes` is reported and skipped,
/// never read into memory; the download itself completes (and seeds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item4_archive_over_the_cap_is_skipped_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = owner_with_history(&owner_dir, "big archive", now_ms() - HOUR_MS, 60, 3, 45);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.member.max_archive_bytes = 1_000;
    let (member, mut signals) = start_config(config, &clock).await;
    let owner = start(&owner_dir, &clock, vec![first_addr(&member).await], Some(1)).await;
    let mut refused = 0;
    let archives = wait_for(&mut signals, STEP, "the download", |s| match s {
        Signal::HistoryArchiveImportFailed { error, .. } => {
            assert!(error.contains("max_archive_bytes = 1000"), "{error}");
            refused += 1;
            None
        }
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        _ => None,
    })
    .await
    .expect("finished");
    assert_eq!((archives, refused), (0, 2), "both archives are over the cap");
    assert_eq!(member.handle().status().await.expect("status")[0].stored_messages, 0);
    owner.shutdown().await;
    member.shutdown().await;
}

/// Issue item 3: thousands of bit-flipped copies of a real magnetlink (no key needed) published
/// in a burst must not bury the genuine, correctly signed link sent in their middle. Ten trials
/// against one member (a fresh clock each), each waiting for the genuine link's acceptance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn magnetlink_flood_does_not_bury_the_genuine_link() {
    const TRIALS: u64 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "flooded").expect("community");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let (member, mut signals) = start_subscribed(&member_dir, &clock, vec![], None).await;
    let flooder = waku_peer(first_addr(&member).await).await;
    let (mut store, base) = {
        let mut store = Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = Communities::open(&mut store).expect("communities");
        (store, communities)
    };
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for trial in 0..TRIALS {
        let count = 6_000 + trial * 200;
        let clock_ms = now_ms() + trial;
        let uri = format!("magnet:?xt=urn:btih:{:040x}&dn=trial{trial}", trial + 1);
        let genuine = base.build_magnetlink_now(&mut store, &id, &uri, clock_ms).expect("magnetlink");
        let bits = genuine.payload.len() * 8;
        let trial_start = std::time::Instant::now();
        let mut genuine_sent = trial_start;
        for n in 0..count {
            if n == count / 2 {
                flooder.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, genuine.clone()).await.expect("publish genuine");
                genuine_sent = std::time::Instant::now();
            }
            // One payload bit flipped (decryption fails) and a distinct timestamp (distinct id).
            let mut copy = genuine.clone();
            let bit = usize::try_from(n).expect("n") * 7919 % bits;
            copy.payload[bit / 8] ^= 1 << (bit % 8);
            copy.timestamp = copy.timestamp.map(|t| t + i64::try_from(n).expect("n") + 1);
            flooder.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, copy).await.expect("publish copy");
        }
        let flooded = trial_start.elapsed();
        let accepted = wait_for(&mut signals, Duration::from_secs(20), "the genuine link accepted", |s| match s {
            Signal::MagnetlinkAccepted { clock, magnet_uri, .. } if *clock == clock_ms && *magnet_uri == uri => {
                Some(())
            }
            Signal::MagnetlinkAccepted { magnet_uri, .. } if *magnet_uri != uri && magnet_uri.contains("dn=trial") => {
                panic!("a link other than this trial's was accepted: {s:?}")
            }
            _ => None,
        })
        .await;
        eprintln!(
            "trial {trial}: {count} copies published in {flooded:?} ({:.0}/s), genuine {} {:?} after it was sent; \
             member queue losses so far: {}",
            count as f64 / flooded.as_secs_f64(),
            if accepted.is_ok() { "accepted" } else { "NOT accepted" },
            genuine_sent.elapsed(),
            member.handle().waku().stats().lagged_receivers,
        );
        if accepted.is_err() {
            failed.push(trial);
        }
    }
    eprintln!("{TRIALS} trials in {:?}", started.elapsed());
    flooder.shutdown().await;
    member.shutdown().await;
    assert!(failed.is_empty(), "genuine link buried in {} of {TRIALS} trials: {failed:?}", failed.len());
}

/// Issue item 3, the costlier flood: thousands of magnetlinks that decrypt (the chat key is
/// public) but are signed by another key, so each costs the member its signature checks, with
/// the genuine link in the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn magnetlink_forgery_flood_does_not_bury_the_genuine_link() {
    const FLOOD: usize = 6_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "forged").expect("community");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let (member, mut signals) = start_subscribed(&member_dir, &clock, vec![], None).await;
    let flooder = waku_peer(first_addr(&member).await).await;
    let uri = "magnet:?xt=urn:btih:00000000000000000000000000000000000000aa&dn=genuine";
    let clock_ms = now_ms();
    let genuine = {
        let mut store = Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = Communities::open(&mut store).expect("communities");
        communities.build_magnetlink_now(&mut store, &id, uri, clock_ms).expect("magnetlink")
    };
    let forger = chs_waku_payload::SecretKey::generate().expect("key");
    let forgeries: Vec<_> = tokio::task::spawn_blocking(move || {
        let cache = chs_status::ChatKeyCache::new();
        (0..FLOOD)
            .map(|n| {
                let uri = format!("magnet:?xt=urn:btih:{}&dn=forged{n}", "cd".repeat(20));
                support::forged_magnetlink_with(&cache, &id, &forger, &uri, clock_ms + 1 + n as u64)
            })
            .collect()
    })
    .await
    .expect("forgeries");
    let start = std::time::Instant::now();
    let mut genuine_sent = start;
    for (n, forged) in forgeries.into_iter().enumerate() {
        if n == FLOOD / 2 {
            flooder.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, genuine.clone()).await.expect("publish genuine");
            genuine_sent = std::time::Instant::now();
        }
        flooder.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, forged).await.expect("publish forged");
    }
    let flooded = start.elapsed();
    let accepted = wait_for(&mut signals, Duration::from_secs(30), "the genuine link accepted", |s| match s {
        Signal::MagnetlinkAccepted { clock, .. } if *clock == clock_ms => Some(()),
        Signal::MagnetlinkAccepted { .. } => panic!("a forged link was accepted: {s:?}"),
        _ => None,
    })
    .await;
    eprintln!(
        "{FLOOD} forgeries published in {flooded:?} ({:.0}/s); genuine accepted: {} {:?} after it was sent; \
         member queue losses: {}",
        FLOOD as f64 / flooded.as_secs_f64(),
        accepted.is_ok(),
        genuine_sent.elapsed(),
        member.handle().waku().stats().lagged_receivers,
    );
    flooder.shutdown().await;
    member.shutdown().await;
    accepted.expect("the genuine link is accepted");
}
