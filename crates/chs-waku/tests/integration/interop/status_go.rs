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
