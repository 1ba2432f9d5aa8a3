//! Discovery of status-go's Waku node: from an EIP-1459 tree signed by go-ethereum's dnsdisc
//! and served on a loopback nameserver, through discv5, and through peer exchange.

use std::time::{Duration, Instant};

use chs_waku::{Config, NodeEvent, PeerSource};

use super::peer::{GoPeer, peers_bin};
use super::status_go::free_port;
use crate::support::{TOPIC, next_event, start, test_config, with_timeout};

/// status-go's node, started, with its current ENR (re-read once its shards are in it).
async fn status_go_with_enr(bin: &std::path::Path, flags: &[&str]) -> (GoPeer, String) {
    let mut go = GoPeer::waku(bin, "status-go", flags).await;
    go.send("enr").await;
    let enr = go.expect("ENR ").await.trim_start_matches("ENR ").to_owned();
    (go, enr)
}

/// chspeer-enrtree serving a tree of `enrs` for `nodes.example` on 127.0.0.1: (its URL, its
/// `IP:PORT`, the process).
async fn serve_tree(bin: &std::path::Path, extra: &[&str], enrs: &[&str]) -> (String, String, GoPeer) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args: Vec<String> =
        vec!["serve".into(), "-listen".into(), listen.clone(), "-domain".into(), "nodes.example".into()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(enrs.iter().map(|s| (*s).to_owned()));
    let mut tree = GoPeer::spawn(bin, "chspeer-enrtree", "enrtree", &args, None);
    let url = tree.expect("URL ").await.trim_start_matches("URL ").to_owned();
    tree.expect("SERVING").await;
    (url, listen, tree)
}

/// Waits until the peer manager knows `go`'s node as learnt from `source`.
async fn until_discovered(node: &chs_waku::WakuNode, go: &GoPeer, source: PeerSource) {
    let go_id: chs_waku::PeerId = go.peer_id().parse().expect("peer id");
    let mut events = node.events().expect("running");
    let known = node.peers().await.expect("running");
    if known.iter().any(|p| p.peer_id == go_id && p.source == source) {
        return;
    }
    next_event(&mut events, |event| match event {
        NodeEvent::PeerDiscovered { peer_id, source: s } if *peer_id == go_id && *s == source => Some(()),
        _ => None,
    })
    .await;
}

/// Waits until status-go's node (`go`) is connected with its metadata checked; returns the
/// time since `started`.
async fn until_connected(node: &chs_waku::WakuNode, go: &GoPeer, started: Instant) -> Duration {
    let go_id: chs_waku::PeerId = go.peer_id().parse().expect("peer id");
    let mut events = node.events().expect("running");
    if !node.connected_peers().await.expect("running").contains(&go_id) {
        next_event(&mut events, |event| match event {
            NodeEvent::PeerConnected { peer_id, .. } if *peer_id == go_id => Some(()),
            _ => None,
        })
        .await;
    }
    let elapsed = started.elapsed();
    node.wait_for_topic_peers(TOPIC, 1).await.expect("running");
    elapsed
}

/// EIP-1459: go-ethereum's dnsdisc signs a tree naming status-go's node; chs, given only the
/// URL and the nameserver, verifies it, finds the node and connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_discovery_finds_status_go_node() {
    let Some(bin) = peers_bin("dns_discovery_finds_status_go_node") else { return };
    with_timeout(async {
        let (go, enr) = status_go_with_enr(&bin, &[]).await;
        let (url, nameserver, tree) = serve_tree(&bin, &[], &[&enr]).await;
        let started = Instant::now();
        let node = start(Config {
            dns_discovery: vec![url],
            nameserver: Some(nameserver.parse().expect("IP:PORT")),
            ..test_config()
        })
        .await;
        let elapsed = until_connected(&node, &go, started).await;
        println!("figure: DNS discovery, start to first peer: {} ms", elapsed.as_millis());
        let peers = node.peers().await.expect("running");
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!((peers[0].source, peers[0].connected), (PeerSource::Dns, true));
        drop(tree);
        go.quit().await;
        node.shutdown().await;
    })
    .await;
}

/// A tree whose root is not signed by the URL's key is refused: nothing is dialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_discovery_refuses_a_tree_signed_by_another_key() {
    let Some(bin) = peers_bin("dns_discovery_refuses_a_tree_signed_by_another_key") else { return };
    with_timeout(async {
        let (go, enr) = status_go_with_enr(&bin, &[]).await;
        // The URL of a tree signed with key A, the records of the same tree signed with key B.
        let (url, _, honest) = serve_tree(&bin, &["-key", &"11".repeat(32)], &[&enr]).await;
        drop(honest);
        let (own_url, nameserver, mut forged) = serve_tree(&bin, &["-key", &"22".repeat(32)], &[&enr]).await;
        let resolver = chs_waku::dns::DnsDiscovery::new(Some(nameserver.parse().expect("IP:PORT"))).expect("resolver");
        let err = resolver.resolve(&url).await.expect_err("forged root");
        assert!(matches!(err, chs_waku::dns::DnsDiscoveryError::BadSignature { .. }), "{err}");
        // The root was asked for, nothing below it.
        let query = forged.expect("QUERY").await;
        assert!(query.starts_with("QUERY name=nodes.example"), "{query}");
        // With its own key's URL the same server's tree is read.
        let found = resolver.resolve(&own_url).await.expect("the server's own tree");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].peer_id.to_string(), go.peer_id());
        go.quit().await;
    })
    .await;
}

/// discv5: chs knows only status-go node A's ENR; node B registered with A's discv5 only. chs
/// finds B through discv5 queries to A and connects to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv5_finds_status_go_node_through_another() {
    let Some(bin) = peers_bin("discv5_finds_status_go_node_through_another") else { return };
    with_timeout(async {
        let (a, a_enr) = status_go_with_enr(&bin, &["-discv5"]).await;
        let mut b = GoPeer::waku(&bin, "status-go B", &["-discv5", "-bootnodes", &a_enr]).await;
        b.send("enr").await;
        b.expect("ENR ").await;
        let b_id: chs_waku::PeerId = b.peer_id().parse().expect("peer id");
        let started = Instant::now();
        let node = start(Config {
            discv5: true,
            discv5_bootstrap: vec![a_enr],
            discv5_interval: Duration::from_millis(500),
            ..test_config()
        })
        .await;
        let ours = node.local_enr().expect("discv5 runs").to_owned();
        let ours = chs_waku::enr::WakuEnr::parse(&ours).expect("our ENR parses");
        assert_eq!((ours.peer_id, ours.capabilities, ours.cluster_id), (node.peer_id(), Some(1), Some(16)));
        assert_eq!(ours.shards, vec![32]);
        // The socket is known (listed by `chs node status`) and is the one in our ENR.
        assert_eq!(node.discv5_addr(), ours.udp);
        let elapsed = until_connected(&node, &b, started).await;
        println!("figure: discv5, start to first peer found through another node: {} ms", elapsed.as_millis());
        // B may have found us through A and dialled first: what matters is that our discv5 found it.
        until_discovered(&node, &b, PeerSource::Discv5).await;
        let peers = node.peers().await.expect("running");
        let found = peers.iter().find(|p| p.peer_id == b_id).expect("B known");
        assert_eq!(found.source, PeerSource::Discv5, "{peers:?}");
        b.quit().await;
        a.quit().await;
        node.shutdown().await;
    })
    .await;
}

/// 34/WAKU2-PEER-EXCHANGE client: chs knows only status-go node A (a peer-exchange server over
/// its discv5 table, as `-peer-exchange`); A's table holds B. chs asks A and connects to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_client_gets_status_go_node_from_another() {
    let Some(bin) = peers_bin("peer_exchange_client_gets_status_go_node_from_another") else { return };
    with_timeout(async {
        let (a, a_enr) = status_go_with_enr(&bin, &["-discv5", "-peer-exchange"]).await;
        let b = GoPeer::waku(&bin, "status-go B", &["-discv5", "-bootnodes", &a_enr]).await;
        let b_id: chs_waku::PeerId = b.peer_id().parse().expect("peer id");
        let started = Instant::now();
        let node = start(Config {
            bootstrap_peers: vec![a.listen_addr()],
            peer_exchange: true,
            peer_exchange_interval: Duration::from_millis(500),
            target_peers: 5,
            ..test_config()
        })
        .await;
        let elapsed = until_connected(&node, &b, started).await;
        println!("figure: peer exchange, start to a peer learnt from another: {} ms", elapsed.as_millis());
        until_discovered(&node, &b, PeerSource::PeerExchange).await;
        let peers = node.peers().await.expect("running");
        let found = peers.iter().find(|p| p.peer_id == b_id).expect("B known");
        assert_eq!(found.source, PeerSource::PeerExchange, "{peers:?}");
        assert!(node.stats().px_peers >= 1);
        b.quit().await;
        a.quit().await;
        node.shutdown().await;
    })
    .await;
}

/// 34/WAKU2-PEER-EXCHANGE server: chs runs discv5 (bootstrapped from status-go node B) and
/// serves peer exchange; status-go node C asks chs and connects to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_server_gives_status_go_a_node_from_our_discv5_table() {
    let Some(bin) = peers_bin("peer_exchange_server_gives_status_go_a_node_from_our_discv5_table") else { return };
    with_timeout(async {
        let (b, b_enr) = status_go_with_enr(&bin, &["-discv5"]).await;
        let b_id = b.peer_id();
        let node = start(Config {
            discv5: true,
            discv5_bootstrap: vec![b_enr],
            discv5_interval: Duration::from_millis(500),
            peer_exchange: true,
            ..test_config()
        })
        .await;
        // Our discv5 round that hands B to the peer manager has filled the exchange cache.
        let b_peer: chs_waku::PeerId = b_id.parse().expect("peer id");
        until_connected(&node, &b, Instant::now()).await;
        assert!(node.peers().await.expect("running").iter().any(|p| p.peer_id == b_peer));

        let mut c = GoPeer::waku(&bin, "status-go C", &[]).await;
        let ours = crate::support::first_addr(&node).await;
        c.send(&format!("px {ours} 5")).await;
        let px = c.expect("PX").await;
        assert!(px.starts_with("PX ok"), "{px}");
        c.expect_with("CONNECTED", &b_id).await;
        assert!(node.stats().px_served >= 1);
        c.quit().await;
        b.quit().await;
        node.shutdown().await;
    })
    .await;
}
