//! Relay and metadata with status-go's own Waku node (`chspeer-waku`, go-waku as status-go
//! runs it: cluster 16, shard 32).

use chs_waku::{ContentFilter, NodeEvent};

use super::peer::{GoPeer, peers_bin};
use crate::support::{TOPIC, message, next_event, start, test_config, with_timeout};

const CONTENT_TOPIC: &str = "/chs/1/interop/proto";

/// go-waku asks chs for its metadata and keeps it only if it names cluster 16 and a shard;
/// then messages flow both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_go_node_relays_both_ways() {
    let Some(bin) = peers_bin("status_go_node_relays_both_ways") else { return };
    with_timeout(async {
        let node = start(test_config()).await;
        let mut received = node.messages(ContentFilter::new(TOPIC, [CONTENT_TOPIC])).expect("running");
        let mut events = node.events().expect("running");
        let mut go = GoPeer::waku(&bin, "status-go", &[]).await;

        let dialed = node.dial(&go.listen_addr()).await.expect("dial status-go");
        assert_eq!(dialed.to_string(), go.peer_id());
        let (cluster, shards) = next_event(&mut events, |event| match event {
            NodeEvent::MetadataReceived { peer_id, cluster_id, shards } if *peer_id == dialed => {
                Some((*cluster_id, shards.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!(cluster, Some(16));
        assert!(shards.contains(&32), "status-go's shards: {shards:?}");

        // Both relays see each other on the shard.
        node.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        go.send("waitpeers 1 20").await;
        go.expect("PEERS n=1").await;
        // What go-waku's metadata client reads from us.
        go.send(&format!("metadata {}", node.peer_id())).await;
        let metadata = go.expect("METADATA").await;
        assert!(metadata.contains("cluster=16 shards=[32]"), "{metadata}");

        // chs -> status-go.
        let to_go = message(CONTENT_TOPIC, b"hello from chs");
        node.publish(TOPIC, to_go).await.expect("publish to status-go");
        let recv = go.expect_with("RECV", &format!("payload={}", hex::encode(b"hello from chs"))).await;
        assert!(recv.contains(&format!("pubsub={TOPIC} contentTopic={CONTENT_TOPIC}")), "{recv}");

        // status-go -> chs.
        go.send(&format!("publish-relay {CONTENT_TOPIC} {} now", hex::encode(b"hello from status-go"))).await;
        go.expect("PUBLISHED").await;
        let got = received.recv().await.expect("message from status-go");
        assert_eq!(got.message.payload, b"hello from status-go");
        assert_eq!(got.propagation_source, dialed);

        assert_eq!(node.connected_peers().await.expect("running"), vec![dialed]);
        assert!(!go.seen.iter().any(|line| line.starts_with("DISCONNECTED")), "status-go dropped chs: {:?}", go.seen);
        assert_eq!(node.stats().peers_rejected, 0);
        go.quit().await;
        node.shutdown().await;
    })
    .await;
}

/// Keep-alive both ways: status-go dials chs, then for 60 s neither side drops the other; chs's
/// pings are answered and status-go's keep-alive pings chs (its debug log) without failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_go_connection_is_stable_for_60_seconds() {
    let Some(bin) = peers_bin("status_go_connection_is_stable_for_60_seconds") else { return };
    crate::support::init_tracing();
    let hold = std::time::Duration::from_secs(60);
    let run = async {
        let node = start(chs_waku::Config { ping_interval: std::time::Duration::from_secs(5), ..test_config() }).await;
        let mut events = node.events().expect("running");
        let logs = tempfile::tempdir().expect("tempdir");
        let log = logs.path().join("status-go.log");
        let mut go = GoPeer::waku_logging(&bin, "status-go", &["-loglevel", "debug"], &log).await;
        let our_addr = crate::support::first_addr(&node).await;
        go.send(&format!("dial {our_addr}")).await;
        go.expect("DIALED").await;
        let go_id = go.peer_id();
        node.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        next_event(&mut events, |event| match event {
            NodeEvent::MetadataReceived { peer_id, .. } if peer_id.to_string() == go_id => Some(()),
            _ => None,
        })
        .await;

        // For `hold`, nothing may drop: no disconnect event on our side, no DISCONNECTED line on theirs.
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                event = events.recv() => match event.expect("event stream open") {
                    NodeEvent::PeerDisconnected { peer_id } | NodeEvent::PeerRejected { peer_id, .. } => {
                        panic!("status-go dropped after {:?}: {peer_id}", hold - (deadline - tokio::time::Instant::now()));
                    }
                    _ => {}
                },
                line = go.next_line() => {
                    let line = line.expect("status-go still running");
                    assert!(!line.starts_with("DISCONNECTED"), "status-go dropped chs: {line}");
                }
            }
        }
        assert_eq!(node.connected_peers().await.expect("running").len(), 1);
        let stats = node.stats();
        // A ping at connection and every 5 s after.
        assert!(stats.pings_ok >= 10, "{stats:?}");
        assert_eq!((stats.pings_failed, stats.peers_unresponsive), (0, 0), "{stats:?}");
        go.quit().await;
        node.shutdown().await;
        // status-go's keep-alive pinged us and never failed.
        let log = std::fs::read_to_string(&log).expect("status-go log");
        let ours = node_id_lines(&log, &our_addr);
        assert!(ours.iter().any(|line| line.contains("pinging")), "status-go never pinged chs");
        assert!(!ours.iter().any(|line| line.contains("could not ping")), "{ours:?}");
    };
    tokio::time::timeout(hold + std::time::Duration::from_secs(60), run).await.expect("test timed out");
}

/// status-go's log lines that name the peer id at the end of `addr`.
fn node_id_lines<'a>(log: &'a str, addr: &str) -> Vec<&'a str> {
    let id = addr.rsplit('/').next().expect("a /p2p/ address");
    log.lines().filter(|line| line.contains(id)).collect()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the peer to take).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The peer manager redials a bootstrap peer that went away: status-go's node is stopped and
/// started again on the same port with the same key, and chs is back in its relay mesh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_go_node_restart_is_redialled() {
    let Some(bin) = peers_bin("status_go_node_restart_is_redialled") else { return };
    with_timeout(async {
        let key = hex::encode(rand::random::<[u8; 32]>());
        let port = free_port().to_string();
        let flags = ["-nodekey", key.as_str(), "-port", port.as_str()];
        let go = GoPeer::waku(&bin, "status-go", &flags).await;
        let go_addr = go.listen_addr();
        let node = start(chs_waku::Config {
            bootstrap_peers: vec![go_addr.clone()],
            reconnect_backoff: std::time::Duration::from_millis(200),
            ..test_config()
        })
        .await;
        let mut events = node.events().expect("running");
        let go_id: chs_waku::PeerId = go.peer_id().parse().expect("peer id");
        let metadata_from_go = |event: &NodeEvent| match event {
            NodeEvent::MetadataReceived { peer_id, .. } if *peer_id == go_id => Some(()),
            _ => None,
        };
        next_event(&mut events, metadata_from_go).await;
        node.wait_for_topic_peers(TOPIC, 1).await.expect("running");

        go.quit().await;
        next_event(&mut events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id } if *peer_id == go_id => Some(()),
            _ => None,
        })
        .await;

        let mut go = GoPeer::waku(&bin, "status-go again", &flags).await;
        assert_eq!(go.listen_addr(), go_addr);
        next_event(&mut events, metadata_from_go).await;
        go.send("waitpeers 1 20").await;
        go.expect("PEERS n=1").await;
        node.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        let peers = node.peers().await.expect("running");
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!(
            (peers[0].peer_id, peers[0].source, peers[0].connected),
            (go_id, chs_waku::PeerSource::Static, true)
        );
        assert!(peers[0].shards.contains(&32), "{peers:?}");
        assert!(node.stats().dials >= 2, "{:?}", node.stats());
        go.quit().await;
        node.shutdown().await;
    })
    .await;
}
