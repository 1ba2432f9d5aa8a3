//! 66/WAKU2-METADATA between our nodes: same cluster stays, other cluster or no common shard
//! is disconnected (as nwaku does).

use chs_waku::{Config, NodeEvent, PeerRejection, RelayShard};

use crate::support::{first_addr, next_event, start, test_config, with_timeout};

#[tokio::test]
async fn same_cluster_peers_exchange_metadata_and_stay() {
    with_timeout(async {
        let a = start(test_config()).await;
        let b = start(Config {
            pubsub_topics: vec![RelayShard::new(16, 32).pubsub_topic(), RelayShard::new(16, 64).pubsub_topic()],
            shards: vec![],
            ..test_config()
        })
        .await;
        let mut events = a.events().expect("running");
        a.dial(&first_addr(&b).await).await.expect("dial");
        let (peer, cluster_id, shards) = next_event(&mut events, |event| match event {
            NodeEvent::MetadataReceived { peer_id, cluster_id, shards } => {
                Some((*peer_id, *cluster_id, shards.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!((peer, cluster_id, shards), (b.peer_id(), Some(16), vec![32, 64]));
        // b also asked a; once a's relay subscription reached b, the connection is settled.
        b.wait_for_topic_peers(chs_waku::DEFAULT_PUBSUB_TOPIC, 1).await.expect("running");
        assert_eq!(a.connected_peers().await.expect("running"), vec![b.peer_id()]);
        assert_eq!(a.stats().peers_rejected, 0);
        assert_eq!(b.stats().peers_rejected, 0);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn peer_in_another_cluster_is_disconnected() {
    with_timeout(async {
        let ours = start(test_config()).await;
        let foreign = start(Config {
            cluster_id: 1,
            shards: vec![32],
            pubsub_topics: vec![RelayShard::new(1, 32).pubsub_topic()],
            ..test_config()
        })
        .await;
        let mut events = ours.events().expect("running");
        let mut foreign_events = foreign.events().expect("running");
        ours.dial(&first_addr(&foreign).await).await.expect("dial");
        let (peer, reason) = next_event(&mut events, |event| match event {
            NodeEvent::PeerRejected { peer_id, reason } => Some((*peer_id, reason.clone())),
            _ => None,
        })
        .await;
        assert_eq!(peer, foreign.peer_id());
        assert_eq!(reason, PeerRejection::OtherCluster { ours: 16, theirs: 1 });
        let gone = next_event(&mut events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id } => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(gone, foreign.peer_id());
        assert!(ours.connected_peers().await.expect("running").is_empty());
        assert_eq!(ours.stats().peers_rejected, 1);
        // The other side saw the disconnection as well.
        let gone = next_event(&mut foreign_events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id } => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(gone, ours.peer_id());
        ours.shutdown().await;
        foreign.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn peer_without_common_shard_is_disconnected() {
    with_timeout(async {
        let ours = start(test_config()).await;
        let elsewhere = start(Config {
            shards: vec![],
            pubsub_topics: vec![RelayShard::new(16, 64).pubsub_topic()],
            ..test_config()
        })
        .await;
        let mut events = ours.events().expect("running");
        ours.dial(&first_addr(&elsewhere).await).await.expect("dial");
        let reason = next_event(&mut events, |event| match event {
            NodeEvent::PeerRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert_eq!(reason, PeerRejection::NoCommonShard { ours: vec![32], theirs: vec![64] });
        ours.shutdown().await;
        elsewhere.shutdown().await;
    })
    .await;
}
