//! The peer manager between our own nodes on 127.0.0.1: bounded inbound connections, and a
//! peer that went away is redialled when it is back (same key, same port).

use std::time::Duration;

use chs_waku::{Config, NodeEvent, PeerSource};

use crate::support::{TOPIC, first_addr, next_event, start, test_config, with_timeout};

#[tokio::test]
async fn inbound_connections_beyond_max_peers_are_closed() {
    with_timeout(async {
        let hub = start(Config { max_peers: 1, ..test_config() }).await;
        let hub_addr = first_addr(&hub).await;
        let first = start(test_config()).await;
        first.dial(&hub_addr).await.expect("dial");
        hub.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        let second = start(test_config()).await;
        let mut events = second.events().expect("running");
        second.dial(&hub_addr).await.expect("the TCP connection is made, then closed");
        next_event(&mut events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id } if *peer_id == hub.peer_id() => Some(()),
            _ => None,
        })
        .await;
        assert!(hub.stats().inbound_refused >= 1, "{:?}", hub.stats());
        assert_eq!(hub.connected_peers().await.expect("running"), vec![first.peer_id()]);
        for node in [hub, first, second] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn bootstrap_peer_that_restarts_is_redialled() {
    with_timeout(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let peer_config = Config {
            data_dir: Some(dir.path().to_owned()),
            listen_addrs: vec![format!("/ip4/127.0.0.1/tcp/{port}")],
            ..test_config()
        };
        let peer = start(peer_config.clone()).await;
        let node = start(Config {
            bootstrap_peers: vec![first_addr(&peer).await],
            reconnect_backoff: Duration::from_millis(100),
            ..test_config()
        })
        .await;
        let mut events = node.events().expect("running");
        node.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        let peer_id = peer.peer_id();
        peer.shutdown().await;
        next_event(&mut events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id: p } if *p == peer_id => Some(()),
            _ => None,
        })
        .await;
        let peer = start(peer_config).await;
        assert_eq!(peer.peer_id(), peer_id);
        next_event(&mut events, |event| match event {
            NodeEvent::PeerConnected { peer_id: p, .. } if *p == peer_id => Some(()),
            _ => None,
        })
        .await;
        let peers = node.peers().await.expect("running");
        assert_eq!((peers.len(), peers[0].source, peers[0].connected), (1, PeerSource::Static, true));
        peer.shutdown().await;
        node.shutdown().await;
    })
    .await;
}
