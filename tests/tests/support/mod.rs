//! Helpers shared by the end-to-end test files: time, owners with history, node start, forged
//! magnetlinks, plain Waku peers.
#![allow(dead_code, clippy::expect_used)] // each test file uses a part; a panic is a test failure

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chs_community::CommunityId;
use chs_demo::{create_owner, generate_history};
use chs_node::{ManualClock, Node, NodeConfig, Signal, SignalBus};
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_status::ChatKeyCache;
use chs_status::envelope::{EnvelopeParams, build_status_message};
use chs_waku_payload::{NonceSource, Padding, SecretKey};
use tokio::sync::broadcast;

pub(crate) const HOUR_MS: u64 = 3_600_000;
pub(crate) const WEEK_MS: u64 = 7 * 24 * HOUR_MS;
pub(crate) const STEP: Duration = Duration::from_secs(60);

pub(crate) fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis())
        .expect("ms")
}

/// A control node's folder: the community `name` created in `owner_dir`, and `count` generated
/// chat messages (from `authors` authors, RNG `seed`) over the two weeks before `end_ms`.
pub(crate) fn owner_with_history(
    owner_dir: &Path,
    name: &str,
    end_ms: u64,
    count: usize,
    authors: usize,
    seed: u64,
) -> CommunityId {
    let id = create_owner(owner_dir, name).expect("community");
    generate_history(owner_dir, &id, end_ms - 2 * WEEK_MS, end_ms, count, authors, seed).expect("history");
    id
}

/// Starts a loopback node (`NodeConfig::local`) on `dir` with the test clock, dialing
/// `bootstrap`; with `max_attempts`, a member gives up on a magnetlink after that many failed
/// downloads (otherwise the configuration's default).
pub(crate) async fn start(dir: &Path, clock: &ManualClock, bootstrap: Vec<String>, max_attempts: Option<u32>) -> Node {
    start_subscribed(dir, clock, bootstrap, max_attempts).await.0
}

/// [`start`], with a receiver of the node's signals subscribed before it starts: use it when the
/// node may act while starting (a member dialing a peer that announces at once).
pub(crate) async fn start_subscribed(
    dir: &Path,
    clock: &ManualClock,
    bootstrap: Vec<String>,
    max_attempts: Option<u32>,
) -> (Node, broadcast::Receiver<Signal>) {
    let mut config = NodeConfig::local(dir);
    config.waku.bootstrap = bootstrap;
    if let Some(n) = max_attempts {
        config.member.max_attempts = n;
    }
    start_config(config, clock).await
}

/// Starts a node on `config` with a receiver of its signals subscribed before it starts, so that
/// none raised while it starts is missed.
pub(crate) async fn start_config(config: NodeConfig, clock: &ManualClock) -> (Node, broadcast::Receiver<Signal>) {
    let bus = SignalBus::default();
    let signals = bus.subscribe();
    (Node::start_with_bus(config, Arc::new(clock.clone()), bus).await.expect("node starts"), signals)
}

/// The node's first Waku listen address.
pub(crate) async fn first_addr(node: &Node) -> String {
    node.handle().waku().listen_addrs().await.expect("addrs").remove(0)
}

/// A magnetlink for the real community, on its real `-magnetlinks` topic and encrypted with its
/// real chat key, but signed by a key that is not the community's.
pub(crate) fn forged_magnetlink(
    id: &CommunityId,
    forger: &SecretKey,
    uri: &str,
    clock: u64,
) -> chs_proto::waku::WakuMessage {
    forged_magnetlink_with(&ChatKeyCache::new(), id, forger, uri, clock)
}

/// [`forged_magnetlink`] with the chat key taken from `cache` (many forgeries, one derivation).
pub(crate) fn forged_magnetlink_with(
    cache: &ChatKeyCache,
    id: &CommunityId,
    forger: &SecretKey,
    uri: &str,
    clock: u64,
) -> chs_proto::waku::WakuMessage {
    let chat_key = cache.chat_key(&id.magnetlinks_chat_id());
    let inner = chs_proto::protobuf::CommunityMessageArchiveMagnetlink { clock, magnet_uri: uri.to_owned() };
    let params = EnvelopeParams {
        chat_key: &chat_key,
        transport_key: forger,
        installation_id: "forger",
        bundle: None,
        timestamp_ns: i64::try_from(now_ms()).expect("ms") * 1_000_000,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    build_status_message(
        inner.encode_to_vec(),
        ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink,
        forger,
        &params,
    )
    .expect("forged message builds")
    .waku_message
}

/// A description of the real community `id` (its description chat, encrypted with its chat key,
/// a valid body at `clock`) signed by `forger`, not by the community key.
pub(crate) fn forged_description(
    cache: &ChatKeyCache,
    id: &CommunityId,
    forger: &SecretKey,
    clock: u64,
    timestamp_ns: i64,
) -> chs_proto::waku::WakuMessage {
    let proto = chs_proto::protobuf::CommunityDescription {
        clock,
        permissions: Some(chs_proto::protobuf::CommunityPermissions { access: 1, ..Default::default() }),
        id: id.to_string(),
        ..Default::default()
    };
    let amm = chs_status::amm::sign_amm(proto.encode_to_vec(), chs_status::description::DESCRIPTION_TYPE, forger);
    let chat_key = cache.chat_key(&id.description_chat_id());
    chs_status::description::build_bare(&amm, forger, forger, &chat_key, timestamp_ns)
        .expect("forged description builds")
        .waku_message
}

/// A plain Waku relay node (an attacker, a replayer) connected to `peer` and sure to reach it.
pub(crate) async fn waku_peer(peer: String) -> chs_waku::WakuNode {
    let node = chs_waku::WakuNode::start(chs_waku::Config {
        listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap_peers: vec![peer],
        ..chs_waku::Config::default()
    })
    .await
    .expect("waku peer starts");
    tokio::time::timeout(STEP, node.wait_for_topic_peers(chs_waku::DEFAULT_PUBSUB_TOPIC, 1))
        .await
        .expect("the peer subscribes")
        .expect("node running");
    node
}
