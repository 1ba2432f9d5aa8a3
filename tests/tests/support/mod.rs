//! Helpers shared by the end-to-end test files: time, forged magnetlinks, plain Waku peers.
#![allow(dead_code, clippy::expect_used)] // each test file uses a part; a panic is a test failure

use std::time::Duration;

use chs_community::CommunityId;
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_status::ChatKeyCache;
use chs_status::envelope::{EnvelopeParams, build_status_message};
use chs_waku_payload::{NonceSource, Padding, SecretKey};

pub(crate) const HOUR_MS: u64 = 3_600_000;
pub(crate) const WEEK_MS: u64 = 7 * 24 * HOUR_MS;
pub(crate) const STEP: Duration = Duration::from_secs(60);

pub(crate) fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis())
        .expect("ms")
}

/// A magnetlink for the real community, on its real `-magnetlinks` topic and encrypted with its
/// real chat key, but signed by a key that is not the community's.
pub(crate) fn forged_magnetlink(
    id: &CommunityId,
    forger: &SecretKey,
    uri: &str,
    clock: u64,
) -> chs_proto::waku::WakuMessage {
    let cache = ChatKeyCache::new();
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
