//! Issue 18, store v3 on the node, over real TCP on loopback: a history node (a chs-waku node
//! serving a memory store with `StoreServer`) holds what a node missed while it was offline.
//! A member that was offline while the owner announced gets the link from store on start and
//! downloads the archives; a member that was offline while the control node published a new
//! description and shard info follows them from store on start; an owner offline for a day
//! archives the messages it missed.

use std::sync::Arc;

use chs_demo::{chat_message, create_owner, join_member, wait_for};
use chs_node::config::Policy;
use chs_node::{ManualClock, NodeConfig, Signal};
use chs_status::description::{DescriptionParams, NON_PROTECTED_PUBSUB_TOPIC, build_description, build_shard_info};
use chs_status::{ChatKeyCache, Shard};
use chs_waku::store::{MemoryStore, StoreServer, StoreServerConfig, StoredMessage};
use chs_waku::{ContentFilter, WakuNode};
use chs_waku_payload::SecretKey;

mod support;
use support::{HOUR_MS, STEP, forged_description, now_ms, owner_with_history, start_config};

/// A history node: a Waku node serving `messages` over store v3, connected to nobody.
async fn history_node(messages: Vec<StoredMessage>) -> (WakuNode, StoreServer, String) {
    let store = Arc::new(MemoryStore::new(10_000));
    for message in messages {
        store.insert(message);
    }
    let node = WakuNode::start(chs_waku::Config::default()).await.expect("history node starts");
    let server = StoreServer::start(&node, store, StoreServerConfig::default()).expect("serves");
    let addr = node.listen_addrs().await.expect("addrs").remove(0);
    (node, server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_offline_while_the_owner_announced_gets_the_link_from_store_on_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let (owner, id, link) = announcing_owner(&dir.path().join("owner"), "store-member", 30, 18, &clock).await;
    // What a store node of the network kept: the owner's announcement, as relayed to a peer.
    let (_history, history_server, history_addr) = history_node(vec![link]).await;

    // The member was offline: it joins, and its only Waku contact is the history node.
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.waku.store.peers = vec![history_addr];
    let (member, mut signals) = start_config(config, &clock).await;
    let (messages, pages) = wait_for(&mut signals, STEP, "the catch-up", |s| match s {
        Signal::StoreCatchUp { what: "magnetlinks", messages, pages, failed_peers: 0, .. } => Some((*messages, *pages)),
        _ => None,
    })
    .await
    .expect("caught up");
    assert_eq!((messages, pages), (1, 1));
    let archives = wait_for(&mut signals, STEP, "the download", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
        _ => None,
    })
    .await
    .expect("the link from store is downloaded");
    assert!(archives >= 1);
    // One page each: the description, the shard info (none held) and the magnetlinks.
    assert_eq!(history_server.stats().pages_served, 3);
    member.shutdown().await;
    owner.shutdown().await;
}

/// `[waku.store] peers` left empty (the default): the store nodes are the connected peers that
/// announce store v3 (on the real network, the fleet's, found by discovery). The member's only
/// contact is a store node it bootstraps to; it catches up from it without being told it is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_without_configured_store_nodes_catches_up_from_a_connected_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let (owner, id, link) = announcing_owner(&dir.path().join("owner"), "store-discovered", 20, 21, &clock).await;
    let (_history, history_server, history_addr) = history_node(vec![link]).await;

    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    assert!(config.waku.store.peers.is_empty());
    config.waku.bootstrap = vec![history_addr];
    let (member, mut signals) = start_config(config, &clock).await;
    let messages = wait_for(&mut signals, STEP, "the catch-up", |s| match s {
        Signal::StoreCatchUp { what: "magnetlinks", messages, failed_peers: 0, .. } if *messages > 0 => Some(*messages),
        _ => None,
    })
    .await
    .expect("caught up from the connected store node");
    assert_eq!(messages, 1);
    wait_for(&mut signals, STEP, "the download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("the link from store is downloaded");
    assert!(history_server.stats().pages_served >= 1);
    let peers = member.handle().waku().peers().await.expect("running");
    assert!(peers.iter().any(|p| p.store && p.connected), "{peers:?}");
    member.shutdown().await;
    owner.shutdown().await;
}

/// Issue 19: the control node published a description adding a channel and a shard info moving
/// the community while the member was not running; a store node kept them, with a forged
/// description (higher clock, another key) and a replayed older description and shard info
/// (newest by timestamp). Started, the member catches up from the store node and follows the
/// newest valid ones: the new channel and the new shard; the forgeries and the replay change
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_started_after_a_description_and_shard_change_follows_them_from_store() {
    const NEW_SHARD: Shard = Shard { cluster: 16, index: 200 };
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    let clock = ManualClock::new(now);
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "store-description").expect("community");
    let (community_key, general) = {
        let mut store = chs_store::Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = chs_community::Communities::open(&mut store).expect("communities");
        let community = communities.get(&store, &id).expect("community");
        let uuid = community.chats[0].strip_prefix(&id.to_string()).expect("channel of the community").to_owned();
        (community.private_key().expect("control node").clone(), uuid)
    };
    let cache = ChatKeyCache::new();
    let identity = SecretKey::generate().expect("key");
    let ns = |ms_ago: u64| i64::try_from(now - ms_ago).expect("ms") * 1_000_000;
    let description = |clock: u64, channels: &[(String, String)], timestamp_ns: i64| {
        let params = DescriptionParams {
            community_key: &community_key,
            transport_key: &identity,
            clock,
            name: "store-description",
            channels,
            encrypted: false,
            archive_link_clock: 0,
            timestamp_ns,
            owner_token: None,
        };
        let message = build_description(&params, &cache).expect("description").waku_message;
        StoredMessage::new(chs_waku::DEFAULT_PUBSUB_TOPIC, message)
    };
    let news = "b0b0b0b0-0000-4000-8000-000000000000".to_owned();
    let one = [(general.clone(), "general".to_owned())];
    let two = [(general.clone(), "general".to_owned()), (news.clone(), "news".to_owned())];
    let forger = SecretKey::generate().expect("key");
    let shard_info = |key: &SecretKey, clock: u64, shard: Shard, timestamp_ns: i64| {
        let built = build_shard_info(key, &identity, clock, Some(shard), timestamp_ns, &cache).expect("shard info");
        StoredMessage::new(NON_PROTECTED_PUBSUB_TOPIC, built.waku_message)
    };
    let kept = vec![
        description(4, &one, ns(4 * HOUR_MS)),
        description(5, &two, ns(3 * HOUR_MS)),
        StoredMessage::new(
            chs_waku::DEFAULT_PUBSUB_TOPIC,
            forged_description(&cache, &id, &forger, 90, ns(2 * HOUR_MS)),
        ),
        // A replay of the older one, relayed again later.
        description(4, &one, ns(HOUR_MS)),
        shard_info(&community_key, 3, NEW_SHARD, ns(3 * HOUR_MS)),
        // An older shard info, relayed again later.
        shard_info(&community_key, 2, Shard { cluster: 16, index: 300 }, ns(HOUR_MS)),
    ];
    let (_history, history_server, history_addr) = history_node(kept).await;

    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.waku.store.peers = vec![history_addr];
    let (member, mut signals) = start_config(config, &clock).await;
    let mut caught_up = std::collections::BTreeMap::new();
    let mut applied = None;
    let moved_to = wait_for(&mut signals, STEP, "the catch-up of the description and the shard", |s| match s {
        Signal::StoreCatchUp { what, messages, failed_peers: 0, .. } => {
            caught_up.entry(*what).or_insert(*messages);
            None
        }
        Signal::CommunityDescriptionApplied { clock, added, .. } => {
            applied = Some((*clock, added.clone()));
            None
        }
        Signal::CommunityShardMoved { to, .. } => Some(to.clone()),
        _ => None,
    })
    .await
    .expect("the member moved to the new shard");
    assert_eq!(moved_to, NEW_SHARD.pubsub_topic());
    assert_eq!(caught_up.get("description"), Some(&4), "{caught_up:?}");
    assert_eq!(caught_up.get("shard-info"), Some(&2), "{caught_up:?}");
    let (applied_clock, mut added) = applied.expect("a description applied");
    added.sort();
    let mut want = vec![format!("{id}{general}"), format!("{id}{news}")];
    want.sort();
    assert_eq!((applied_clock, added), (5, want));
    // Restarted on the new shard, it catches up again there (nothing of the old shard).
    wait_for(&mut signals, STEP, "the catch-up on the new shard", |s| match s {
        Signal::StoreCatchUp { what: "magnetlinks", .. } => Some(()),
        Signal::CommunityShardMoved { .. } => panic!("moved again: {s:?}"),
        _ => None,
    })
    .await
    .expect("caught up after the restart");
    let (community, counts) =
        member.handle().with_store(move |c, s| Ok((c.get(s, &id)?, c.description_counts()))).await.expect("running");
    let mut chats = community.chats.clone();
    chats.sort();
    assert_eq!(chats.len(), 2, "{chats:?}");
    assert!(chats.contains(&format!("{id}{news}")), "{chats:?}");
    assert_eq!(community.pubsub_topic, NEW_SHARD.pubsub_topic());
    let refused: u64 = counts.rejected.values().sum();
    assert_eq!(refused, 1, "the forged description is refused and counted: {counts:?}");
    assert!(history_server.stats().pages_served >= 2);
    member.shutdown().await;
}

/// An owner of a community with `count` messages of the last hour, started and seeding, and its
/// magnetlink message as a peer of it received the announcement.
async fn announcing_owner(
    owner_dir: &std::path::Path,
    name: &str,
    count: usize,
    seed: u64,
    clock: &ManualClock,
) -> (chs_node::Node, chs_community::CommunityId, StoredMessage) {
    let id = owner_with_history(owner_dir, name, now_ms() - HOUR_MS, count, 2, seed);
    let (owner, mut owner_signals) = start_config(NodeConfig::local(owner_dir), clock).await;
    wait_for(&mut owner_signals, STEP, "seeding", |s| matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(()))
        .await
        .expect("owner seeds");
    let link = announced_link(&owner, &id).await;
    (owner, id, link)
}

/// The owner's magnetlink message as a peer of the owner receives it.
async fn announced_link(owner: &chs_node::Node, id: &chs_community::CommunityId) -> StoredMessage {
    let peer = WakuNode::start(chs_waku::Config::default()).await.expect("peer starts");
    let mut links = peer
        .messages(ContentFilter::new(chs_waku::DEFAULT_PUBSUB_TOPIC, chs_status::ids::magnetlink_content_topics(id)))
        .expect("receiver");
    let owner_addr = owner.handle().waku().listen_addrs().await.expect("addrs").remove(0);
    peer.dial(&owner_addr).await.expect("dial the owner");
    let link = tokio::time::timeout(STEP, links.recv()).await.expect("the owner announces").expect("open");
    peer.shutdown().await;
    StoredMessage::new(link.pubsub_topic.clone(), link.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_catches_up_again_when_its_store_node_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(now_ms());
    let (owner, id, link) = announcing_owner(&dir.path().join("owner"), "store-reconnect", 20, 20, &clock).await;

    // The store node first knows nothing.
    let key_dir = dir.path().join("history-key");
    let history_config = || chs_waku::Config { data_dir: Some(key_dir.clone()), ..chs_waku::Config::default() };
    let history = WakuNode::start(history_config()).await.expect("history node starts");
    let empty =
        StoreServer::start(&history, Arc::new(MemoryStore::new(10)), StoreServerConfig::default()).expect("serves");
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let mut config = NodeConfig::local(&member_dir);
    config.waku.store.peers = vec![history.listen_addrs().await.expect("addrs").remove(0)];
    let (member, mut signals) = start_config(config, &clock).await;
    let first = wait_for(&mut signals, STEP, "the first catch-up", |s| match s {
        Signal::StoreCatchUp { what: "magnetlinks", messages, .. } => Some(*messages),
        _ => None,
    })
    .await
    .expect("caught up");
    assert_eq!(first, 0);
    drop(empty);
    history.shutdown().await;

    // It comes back (same identity, another port) holding the link, and reconnects to the member.
    let history = WakuNode::start(history_config()).await.expect("history node restarts");
    let store = Arc::new(MemoryStore::new(10));
    store.insert(link);
    let _server = StoreServer::start(&history, store, StoreServerConfig::default()).expect("serves");
    history.dial(&member.handle().waku().listen_addrs().await.expect("addrs").remove(0)).await.expect("reconnects");
    let again = wait_for(&mut signals, STEP, "the catch-up after the reconnection", |s| match s {
        Signal::StoreCatchUp { what: "magnetlinks", messages, .. } => Some(*messages),
        _ => None,
    })
    .await
    .expect("caught up again");
    assert_eq!(again, 1);
    wait_for(&mut signals, STEP, "the download", |s| {
        matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
    })
    .await
    .expect("the link from store is downloaded");
    member.shutdown().await;
    owner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owner_offline_for_a_day_archives_the_messages_it_missed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    let clock = ManualClock::new(now);
    let owner_dir = dir.path().join("owner");
    // History up to a day ago, then the owner went offline.
    let id = owner_with_history(&owner_dir, "store-owner", now - 24 * HOUR_MS, 40, 2, 19);
    // What its channels had meanwhile, kept by a store node: 25 messages over the last day.
    let cache = ChatKeyCache::new();
    let author = SecretKey::generate().expect("key");
    let missed: Vec<StoredMessage> = (0..25u64)
        .map(|i| {
            let ts = now - 23 * HOUR_MS + i * HOUR_MS / 2;
            let message = chat_message(&id, &author, "general", &format!("missed {i}"), ts, &cache).expect("message");
            StoredMessage::new(chs_waku::DEFAULT_PUBSUB_TOPIC, message)
        })
        .collect();
    let (history, history_server, history_addr) = history_node(missed).await;

    let mut config = NodeConfig::local(&owner_dir);
    config.archive.policy = Policy::UpToNow;
    config.waku.store.peers = vec![history_addr];
    let (owner, mut signals) = start_config(config, &clock).await;
    let fetched = wait_for(&mut signals, STEP, "the fill", |s| match s {
        Signal::StoreCatchUp { what: "channels", messages, failed_peers: 0, .. } => Some(*messages),
        _ => None,
    })
    .await
    .expect("filled");
    assert_eq!(fetched, 25);
    let archived = wait_for(&mut signals, STEP, "the build", |s| match s {
        Signal::HistoryArchivesCreated { messages, .. } => Some(*messages),
        _ => None,
    })
    .await
    .expect("built");
    assert_eq!(archived, 40 + 25, "the archives hold the history and the 25 messages missed");
    assert!(history_server.stats().pages_served >= 1);
    owner.shutdown().await;
    // Started again, it asks only from its newest stored message on: nothing new, nothing twice.
    let mut config = NodeConfig::local(&owner_dir);
    config.waku.store.peers = vec![history.listen_addrs().await.expect("addrs").remove(0)];
    let (owner, mut signals) = start_config(config, &clock).await;
    let again = wait_for(&mut signals, STEP, "the second fill", |s| match s {
        Signal::StoreCatchUp { what: "channels", messages, .. } => Some(*messages),
        _ => None,
    })
    .await
    .expect("filled again");
    assert!(again <= 1, "only the newest stored second is asked again ({again})");
    owner.shutdown().await;
}
