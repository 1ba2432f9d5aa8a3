//! End-to-end tests of the orchestrator over real TCP on loopback (real Waku relay, real
//! BitTorrent, real SQLite files): issue 7 (c) forged magnetlinks, (d) owner back after 30 days.
//! (a) and (b) are `demo.rs`; (e) — a member killed with SIGKILL mid-download — is a process test
//! in `crates/chs/tests/node.rs`.

use std::sync::Arc;
use std::time::Duration;

use chs_demo::{generate_history, history_fingerprint, join_member, wait_for};
use chs_node::{ManualClock, Node, NodeConfig, Signal};
use chs_waku_payload::SecretKey;

mod support;
use support::{
    HOUR_MS, STEP, WEEK_MS, first_addr, forged_magnetlink, now_ms, owner_with_history, start, start_subscribed,
    waku_peer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_magnetlink_from_a_non_owner_key_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "forgery", end, 40, 3, 1);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], None).await;
    let mut signals = member.handle().signals();

    // The forger is a plain Waku node on the network, connected to the member.
    let forger_node = waku_peer(first_addr(&member).await).await;
    let forger = SecretKey::generate().expect("key");
    let bogus = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=evil";
    let far_future_clock = now_ms() + 10 * WEEK_MS;
    forger_node
        .publish(chs_waku::DEFAULT_PUBSUB_TOPIC, forged_magnetlink(&id, &forger, bogus, far_future_clock))
        .await
        .expect("forger publishes");
    let reason = wait_for(&mut signals, STEP, "the rejection", |s| match s {
        Signal::MagnetlinkRejected { reason } => Some(reason.clone()),
        Signal::MagnetlinkAccepted { .. } | Signal::DownloadingHistoryArchivesStarted { .. } => {
            panic!("forged magnetlink acted on: {s:?}")
        }
        _ => None,
    })
    .await
    .expect("rejected");
    assert!(reason.to_lowercase().contains("sign"), "reason names the signer: {reason}");

    // The forged clock did not poison the member's state: the real owner's link is accepted.
    let status = member.handle().status().await.expect("status");
    assert_eq!(status[0].magnetlink_clock, 0, "a forged clock must not be stored");
    let owner = start(&owner_dir, &clock, vec![first_addr(&member).await], None).await;
    let archives = wait_for(&mut signals, STEP, "the real download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, magnet_uri, .. } => {
            assert!(!magnet_uri.contains("evil"));
            Some(*archives)
        }
        _ => None,
    })
    .await
    .expect("downloaded");
    assert_eq!(archives, 2);
    forger_node.shutdown().await;
    owner.shutdown().await;
    member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owner_back_after_30_days_offline_builds_4_archives_and_members_fetch_only_those() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = now_ms();
    let clock = ManualClock::new(t0);
    let owner_dir = dir.path().join("owner");
    let end = t0 - HOUR_MS;
    let id = owner_with_history(&owner_dir, "offline", end, 40, 3, 2);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], None).await;
    let mut signals = member.handle().signals();
    let member_addr = first_addr(&member).await;

    let owner = start(&owner_dir, &clock, vec![member_addr.clone()], None).await;
    let first = wait_for(&mut signals, STEP, "the first download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        _ => None,
    })
    .await
    .expect("first round");
    assert_eq!(first, 2);
    owner.shutdown().await;

    // 30 days pass while the owner is down; the owner's store gets those days' messages
    // (imported, as status-go's Discord import does) before it comes back.
    generate_history(&owner_dir, &id, end, end + 30 * 24 * HOUR_MS, 80, 3, 3).expect("more history");
    clock.advance(Duration::from_millis(30 * 24 * HOUR_MS));
    let owner = start(&owner_dir, &clock, vec![member_addr], None).await;
    let (index_total, missing) = wait_for(&mut signals, STEP, "the index of the catch-up torrent", |s| match s {
        Signal::HistoryArchiveIndexFetched { archives, missing, .. } if *missing > 0 => Some((*archives, *missing)),
        _ => None,
    })
    .await
    .expect("index");
    assert_eq!((index_total, missing), (6, 4), "2 old + 4 new archives; only the 4 new ones are fetched");
    let second = wait_for(&mut signals, STEP, "the catch-up download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, .. } if *archives > 0 => Some(*archives),
        _ => None,
    })
    .await
    .expect("second round");
    assert_eq!(second, 4);

    let owner_rows = owner.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("owner rows");
    let member_rows = member.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("member rows");
    // The last 2 days of the 30 are not a whole week yet: not archived, so not on the member.
    let archived_until = (end + 28 * 24 * HOUR_MS) / 1000;
    let owner_archived: Vec<_> = owner_rows.iter().filter(|r| r.3 < archived_until).cloned().collect();
    assert_eq!(member_rows, owner_archived);
    assert!(owner_rows.len() > owner_archived.len(), "the partial week stays with the owner");
    owner.shutdown().await;
    member.shutdown().await;
}

/// The owner's archive-folder watch interval in the tests below.
const WATCH: Duration = Duration::from_millis(100);

/// Archives built by another process (`chs archive build` on the running node's database and
/// archive folder) are noticed, seeded and announced by the running owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archives_built_by_hand_on_a_running_owner_are_seeded_and_announced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "manual", end, 30, 2, 21);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], None).await;
    let mut member_signals = member.handle().signals();
    let mut config = NodeConfig::local(&owner_dir);
    config.waku.bootstrap = vec![first_addr(&member).await];
    config.archive.watch_interval = WATCH;
    let bus = chs_node::SignalBus::default();
    let mut signals = bus.subscribe();
    let owner = Node::start_with_bus(config, Arc::new(clock.clone()), bus).await.expect("owner");
    let first = wait_for(&mut signals, STEP, "the first seeding", |s| match s {
        Signal::HistoryArchivesSeeding { magnet_uri, .. } => Some(magnet_uri.clone()),
        _ => None,
    })
    .await
    .expect("seeded");
    wait_for(&mut member_signals, STEP, "the first download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("downloaded");

    // Imported messages of a later week, archived by hand into the node's folder. The build stays
    // between appending `data` and writing the new `index` for five of the owner's watch ticks:
    // the owner must not make a torrent of that half-built folder (it did before the folder lock:
    // members then fetched the old index and found nothing missing).
    generate_history(&owner_dir, &id, end, end + WEEK_MS, 12, 2, 22).expect("imported week");
    struct SlowIndex;
    impl chs_archive::StepHook for SlowIndex {
        fn before(&mut self, step: chs_archive::Step) -> std::io::Result<()> {
            if step == chs_archive::Step::WriteIndexTemp {
                std::thread::sleep(5 * WATCH);
            }
            Ok(())
        }
    }
    {
        let mut store = chs_store::Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = chs_community::Communities::open(&mut store).expect("communities");
        let topics = communities.channel_topics(&store, &id).expect("topics");
        let options = chs_archive::BuildOptions::new(topics, (end + WEEK_MS) / 1000);
        let report = chs_archive::Builder::new(owner_dir.join("archives").join(id.to_string()), options)
            .hook(&mut SlowIndex)
            .run(&store)
            .expect("manual build");
        assert_eq!(report.archives.len(), 1);
    }
    let second = wait_for(&mut signals, STEP, "the reseeding", |s| match s {
        Signal::HistoryArchivesSeeding { magnet_uri, .. } => Some(magnet_uri.clone()),
        _ => None,
    })
    .await
    .expect("reseeded");
    assert_ne!(first, second);
    let missing = wait_for(&mut member_signals, STEP, "the member's index", |s| match s {
        Signal::HistoryArchiveIndexFetched { missing, .. } => Some(*missing),
        _ => None,
    })
    .await
    .expect("announced and fetched");
    assert_eq!(missing, 1, "only the hand-built archive");
    owner.shutdown().await;
    member.shutdown().await;
}

/// Leaving stops the member pipeline and unseeds; the next archive is not fetched, and the node
/// does not resume the community after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaving_a_community_stops_its_tasks_and_unseeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "leave", end, 30, 2, 31);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], None).await;
    let mut signals = member.handle().signals();
    let owner = start(&owner_dir, &clock, vec![first_addr(&member).await], None).await;
    wait_for(&mut signals, STEP, "the download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("downloaded");
    assert!(member.handle().status().await.expect("status")[0].seeding.is_some());
    member.handle().leave(&id).await.expect("leave");
    wait_for(&mut signals, STEP, "the unseeding", |s| {
        matches!(s, Signal::HistoryArchivesUnseeded { .. }).then_some(())
    })
    .await
    .expect("unseeded");
    let status = member.handle().status().await.expect("status");
    assert!(!status[0].joined);
    assert!(status[0].seeding.is_none());
    assert_eq!(status[0].stored_messages, 30, "history is kept");

    // A new week: the owner announces it; the member that left does not act on it.
    generate_history(&owner_dir, &id, end, end + WEEK_MS, 10, 2, 32).expect("week");
    let mut owner_signals = owner.handle().signals();
    clock.advance(Duration::from_millis(WEEK_MS));
    owner.handle().trigger_archive(&id).await.expect("trigger");
    wait_for(&mut owner_signals, STEP, "the announcement", |s| {
        matches!(s, Signal::MagnetlinkPublished { .. }).then_some(())
    })
    .await
    .expect("published");
    member.shutdown().await;
    let member = start(&member_dir, &clock, vec![first_addr(&owner).await], None).await;
    let status = member.handle().status().await.expect("status");
    assert!(!status[0].joined);
    assert_eq!(status[0].imported_archives, 2, "the new week was not fetched");
    while let Ok(s) = signals.try_recv() {
        assert!(
            !matches!(s, Signal::MagnetlinkAccepted { .. } | Signal::DownloadingHistoryArchivesStarted { .. }),
            "{s:?}"
        );
    }
    owner.shutdown().await;
    member.shutdown().await;
}

/// spec §15 item 20: status-go's request-to-join path downloads the community's magnet link
/// without unseeding the old torrent or checking the clock and last fetched URI. Here a member
/// that joins late learns the link through the same verdict as any other (re-announced to new
/// subscribers), and the same torrent announced again after the owner restarts (a new port in
/// its peer hint, so a different URI: status-go would fetch it again) is refused as already
/// fetched: no second download.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spec15_item20_late_joiner_goes_through_the_same_magnetlink_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let end = now_ms() - HOUR_MS;
    let id = owner_with_history(&owner_dir, "late", end, 30, 2, 41);
    let bus = chs_node::SignalBus::default();
    let mut owner_signals = bus.subscribe();
    let owner = Node::start_with_bus(NodeConfig::local(&owner_dir), Arc::new(clock.clone()), bus).await.expect("owner");
    wait_for(&mut owner_signals, STEP, "seeding", |s| matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(()))
        .await
        .expect("seeded before anyone joined");

    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let (member, mut signals) = start_subscribed(&member_dir, &clock, vec![first_addr(&owner).await], None).await;
    let uri = wait_for(&mut signals, STEP, "the late download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { magnet_uri, .. } => Some(magnet_uri.clone()),
        _ => None,
    })
    .await
    .expect("late joiner downloads");
    owner.shutdown().await;

    // The owner comes back: it seeds the same torrent and announces it again.
    let owner = start(&owner_dir, &clock, vec![first_addr(&member).await], None).await;
    let reason = wait_for(&mut signals, STEP, "the repeated link", |s| match s {
        Signal::MagnetlinkRejected { reason } => Some(reason.clone()),
        Signal::DownloadingHistoryArchivesStarted { .. } => panic!("the fetched link was downloaded again"),
        _ => None,
    })
    .await
    .expect("rejected");
    assert!(reason.contains("already fetched") && reason.contains(&uri), "{reason}");
    owner.shutdown().await;
    member.shutdown().await;
}

/// Issue 20: a torrent-only member that fetched the owner's magnet is sent, correctly signed by
/// the community key on today's `-memberUpdate` chat with a far newer clock, an empty link (what a
/// torrent control node of today's status-go may broadcast) and a Logos Storage CID. Both are
/// refused with a reason and change nothing: no clock advance, no new pending link, no download,
/// no unseeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_empty_and_cid_change_nothing_on_a_torrent_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = owner_with_history(&owner_dir, "links", now_ms() - HOUR_MS, 40, 3, 3);
    // The community key, read before the owner node runs: links built with it pass every layer.
    let (community, identity) = {
        let mut store = chs_store::Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = chs_community::Communities::open(&mut store).expect("communities");
        let community = communities.get(&store, &id).expect("community");
        (community, SecretKey::generate().expect("identity"))
    };
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let member = start(&member_dir, &clock, vec![], None).await;
    let mut signals = member.handle().signals();
    let owner = start(&owner_dir, &clock, vec![first_addr(&member).await], None).await;
    wait_for(&mut signals, STEP, "the download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("downloaded");
    let before = member.handle().status().await.expect("status").remove(0);
    assert!(before.seeding.is_some() && before.magnetlink_clock > 0);

    let scratch = tempfile::tempdir().expect("scratch");
    let mut store = chs_store::Store::open(&scratch.path().join("chs.db")).expect("store");
    let builder = chs_community::Communities::open(&mut store).expect("communities");
    let cid = chs_logos_standin::cid_of(b"a Logos Storage index");
    let options = chs_community::MagnetlinkOptions {
        installation_id: "today".into(),
        channel: chs_status::MagnetlinkChannel::MemberUpdate,
        ..Default::default()
    };
    let peer = waku_peer(first_addr(&member).await).await;
    let newer = before.magnetlink_clock + 10 * WEEK_MS;
    // One at a time: the member acts on the newest valid link of a burst only.
    let mut reasons = Vec::new();
    for link in ["", cid.as_str()] {
        let message = builder.build_magnetlink(&community, &identity, link, newer, &options).expect("build");
        peer.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, message).await.expect("publish");
        let reason = wait_for(&mut signals, STEP, "the refusal", |s| match s {
            Signal::MagnetlinkRejected { reason } => Some(reason.clone()),
            Signal::MagnetlinkAccepted { .. }
            | Signal::DownloadingHistoryArchivesStarted { .. }
            | Signal::HistoryArchivesUnseeded { .. } => panic!("an unusable link was acted on: {s:?}"),
            _ => None,
        })
        .await
        .expect("refused");
        reasons.push(reason);
    }
    assert!(reasons.iter().any(|r| r.contains("empty")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("cid")), "{reasons:?}");
    let after = member.handle().status().await.expect("status").remove(0);
    assert_eq!(after.magnetlink_clock, before.magnetlink_clock, "no clock advance");
    assert_eq!(after.pending_magnetlink, None);
    assert_eq!(after.last_magnetlink_uri, before.last_magnetlink_uri);
    assert_eq!(after.seeding.map(|s| s.info_hash), before.seeding.map(|s| s.info_hash), "still seeding");
    peer.shutdown().await;
    owner.shutdown().await;
    member.shutdown().await;
}

/// Issue 20: an owner running both backends announces its magnet and its Logos Storage index CID
/// with one clock, each on `-magnetlinks` and `-memberUpdate` (four messages, one clock), so that
/// neither link makes the other stale for a member of the other backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_both_backends_one_clock_on_both_chats() {
    use chs_node::backend::BackendKind;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = owner_with_history(&owner_dir, "both", now_ms() - HOUR_MS, 40, 3, 4);
    // A plain Waku node listening on the community's link chats.
    let listener = chs_waku::WakuNode::start(chs_waku::Config {
        listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..chs_waku::Config::default()
    })
    .await
    .expect("listener");
    let topics = chs_status::ids::magnetlink_content_topics(&id).to_vec();
    let mut rx = listener
        .handle()
        .messages(chs_waku::ContentFilter::new(chs_waku::DEFAULT_PUBSUB_TOPIC.to_owned(), topics))
        .expect("receiver");
    let listener_addr = listener.handle().listen_addrs().await.expect("addrs").remove(0);
    let logos =
        chs_logos_standin::StandinNode::start(chs_logos_standin::StandinConfig::default()).await.expect("stand-in");
    let mut config = NodeConfig::local(&owner_dir);
    config.waku.bootstrap = vec![listener_addr];
    config.archive.backends = vec![BackendKind::Torrent, BackendKind::LogosStorage];
    config.logos_storage.api = logos.api();
    let (owner, _signals) = support::start_config(config, &clock).await;

    let cache = chs_status::ChatKeyCache::new();
    let ring = chs_status::ChatKeyRing::for_magnetlinks(&id, &cache);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let received = tokio::time::timeout(STEP, rx.recv()).await.expect("links in time").expect("listener running");
        let verdict = chs_status::parse_magnetlink(&received.message, &received.pubsub_topic, &id, &ring)
            .expect("a valid link of the community");
        seen.push((verdict.clock, verdict.link_kind().expect("kind"), verdict.chat_id));
    }
    let clocks: std::collections::BTreeSet<u64> = seen.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(clocks.len(), 1, "one clock for every link: {seen:?}");
    for kind in [chs_status::LinkKind::Magnet, chs_status::LinkKind::Cid] {
        for chat in [id.magnetlinks_chat_id(), id.member_update_chat_id()] {
            assert!(seen.iter().any(|(_, k, c)| *k == kind && *c == chat), "{kind} on {chat}: {seen:?}");
        }
    }
    owner.shutdown().await;
    listener.shutdown().await;
    logos.stop().await;
}
