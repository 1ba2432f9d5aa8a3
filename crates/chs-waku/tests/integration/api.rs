//! The node API: publish errors, dialing, keys, bootstrap, filters and shutdown.

use chs_waku::{
    Config, ContentFilter, DialError, NodeEvent, NodeStopped, PublishError, Rejection, StartError, WakuMessage,
    WakuNode,
};

use crate::support::{TOPIC, first_addr, message, next_event, start, test_config, with_timeout};

#[tokio::test]
async fn publish_without_subscribed_peers_is_a_typed_error() {
    with_timeout(async {
        let node = start(test_config()).await;
        let err = node.publish(TOPIC, message("/chs/1/t/proto", b"x")).await.expect_err("no peers");
        assert_eq!(err, PublishError::NoPeers { pubsub_topic: TOPIC.to_owned() });
        node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn publishing_an_invalid_message_is_refused_locally() {
    with_timeout(async {
        let node = start(test_config()).await;
        let no_topic = WakuMessage { content_topic: String::new(), ..message("x", b"x") };
        let err = node.publish(TOPIC, no_topic).await.expect_err("invalid");
        assert_eq!(err, PublishError::Invalid(Rejection::EmptyContentTopic));
        let big_meta = WakuMessage { meta: Some(vec![0; 65]), ..message("/chs/1/t/proto", b"x") };
        let err = node.publish(TOPIC, big_meta).await.expect_err("invalid");
        assert_eq!(err, PublishError::Invalid(Rejection::MetaTooLong { len: 65 }));
        node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn dial_errors_are_typed() {
    with_timeout(async {
        let node = start(test_config()).await;
        let err = node.dial("not a multiaddr").await.expect_err("invalid");
        assert!(matches!(err, DialError::InvalidAddress { ref addr, .. } if addr == "not a multiaddr"), "{err:?}");
        // A port nobody listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let addr = format!("/ip4/127.0.0.1/tcp/{port}");
        let err = node.dial(&addr).await.expect_err("refused");
        assert!(matches!(err, DialError::Failed { addr: ref failed, .. } if *failed == addr), "{err:?}");
        node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_listen_address_fails_start() {
    with_timeout(async {
        let config = Config { listen_addrs: vec!["/ip4/127.0.0.1/tcp/not-a-port".to_owned()], ..test_config() };
        let err = WakuNode::start(config).await.expect_err("invalid");
        assert!(matches!(err, StartError::InvalidAddress { .. }), "{err:?}");
    })
    .await;
}

/// Issue 21: libp2p sets `SO_REUSEPORT` on its listeners, so a second node on a taken port used to
/// bind it too (and get half of the incoming connections); now its start fails naming the port.
#[tokio::test]
async fn second_node_on_a_taken_port_fails_instead_of_sharing_it() {
    with_timeout(async {
        let first = start(test_config()).await;
        let taken = first_addr(&first).await;
        let port: u16 =
            taken.split("/tcp/").nth(1).and_then(|r| r.split('/').next()).expect("tcp port").parse().expect("port");
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let config = Config { listen_addrs: vec![listen.clone()], ..test_config() };
        let err = WakuNode::start(config).await.expect_err("the port is taken");
        assert!(
            matches!(&err, StartError::Listen { addr, reason } if *addr == listen && reason.contains("in use")),
            "{err:?}"
        );
        first.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn node_key_persists_across_restarts() {
    with_timeout(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config { data_dir: Some(dir.path().to_owned()), ..test_config() };
        let first = start(config.clone()).await;
        let peer_id = first.peer_id();
        first.shutdown().await;
        let second = start(config).await;
        assert_eq!(second.peer_id(), peer_id);
        assert!(peer_id.to_string().starts_with("16Uiu2"), "secp256k1 peer id expected, got {peer_id}");
        assert!(second.listen_addrs().await.expect("running")[0].ends_with(&format!("/p2p/{peer_id}")));
        second.shutdown().await;
        let other = start(test_config()).await;
        assert_ne!(other.peer_id(), peer_id);
        other.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bootstrap_peers_are_dialed_at_start() {
    with_timeout(async {
        let first = start(test_config()).await;
        let mut events = first.events().expect("running");
        let second = start(Config { bootstrap_peers: vec![first_addr(&first).await], ..test_config() }).await;
        let connected = next_event(&mut events, |event| match event {
            NodeEvent::PeerConnected { peer_id, .. } => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(connected, second.peer_id());
        let subscribed = next_event(&mut events, |event| match event {
            NodeEvent::PeerSubscribed { peer_id, pubsub_topic } if pubsub_topic == TOPIC => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(subscribed, second.peer_id());
        let second_id = second.peer_id();
        second.shutdown().await;
        let gone = next_event(&mut events, |event| match event {
            NodeEvent::PeerDisconnected { peer_id } => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(gone, second_id);
        first.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn receivers_filter_by_content_topic() {
    with_timeout(async {
        let publisher = start(test_config()).await;
        let subscriber = start(test_config()).await;
        let mut only_a = subscriber.messages(ContentFilter::new(TOPIC, ["/chs/1/a/proto"])).expect("running");
        let mut everything = subscriber.messages(ContentFilter::all()).expect("running");
        let mut other_topic =
            subscriber.messages(ContentFilter::new("/waku/2/rs/16/64", Vec::<String>::new())).expect("running");
        publisher.dial(&first_addr(&subscriber).await).await.expect("dial");
        publisher.wait_for_topic_peers(TOPIC, 1).await.expect("running");

        let b = publisher.publish(TOPIC, message("/chs/1/b/proto", b"for b")).await.expect("publish b");
        let a = publisher.publish(TOPIC, message("/chs/1/a/proto", b"for a")).await.expect("publish a");

        let first = everything.recv().await.expect("message");
        assert_eq!((first.message_id, first.message.content_topic.as_str()), (b, "/chs/1/b/proto"));
        let second = everything.recv().await.expect("message");
        assert_eq!(second.message_id, a);
        // The filtered receiver skipped b and yields a.
        let filtered = only_a.recv().await.expect("message");
        assert_eq!(filtered.message_id, a);
        assert_eq!(filtered.message.payload, b"for a");
        assert_eq!(filtered.propagation_source, publisher.peer_id());

        publisher.shutdown().await;
        subscriber.shutdown().await;
        // Nothing was published on the other topic; after shutdown the receivers end.
        assert_eq!(other_topic.recv().await, None);
        assert_eq!(only_a.recv().await, None);
    })
    .await;
}

/// Each receiver has its own queue, filled only by what passes its filter: unrelated traffic
/// never takes its room, and a full queue loses the newest message (counted), not the queued.
#[tokio::test]
async fn a_full_receiver_loses_only_its_newest_matching_messages() {
    with_timeout(async {
        let publisher = start(test_config()).await;
        let subscriber = start(test_config()).await;
        let small = ContentFilter::new(TOPIC, ["/chs/1/a/proto"]).with_max_payload(8);
        let mut only_a = subscriber.messages_with_capacity(small, 2).expect("running");
        let mut everything = subscriber.messages(ContentFilter::all()).expect("running");
        publisher.dial(&first_addr(&subscriber).await).await.expect("dial");
        publisher.wait_for_topic_peers(TOPIC, 1).await.expect("running");

        let mut sent_a = Vec::new();
        for n in 0..20u8 {
            publisher.publish(TOPIC, message("/chs/1/b/proto", &[n])).await.expect("publish b");
            if n % 5 == 0 {
                sent_a.push(publisher.publish(TOPIC, message("/chs/1/a/proto", &[n])).await.expect("publish a"));
            }
        }
        publisher.publish(TOPIC, message("/chs/1/a/proto", b"too large")).await.expect("publish large");
        // Everything arrived (the unbounded-enough receiver saw all 25).
        for _ in 0..25 {
            everything.recv().await.expect("message");
        }
        assert_eq!(only_a.recv().await.expect("first").message_id, sent_a[0]);
        assert_eq!(only_a.recv().await.expect("second").message_id, sent_a[1]);
        assert!(only_a.is_empty(), "the newest two were dropped, the oversized one filtered");
        assert_eq!(only_a.lost(), 2);
        assert_eq!(subscriber.stats().lagged_receivers, 2);
        publisher.shutdown().await;
        subscriber.shutdown().await;
        assert_eq!(only_a.recv().await, None);
    })
    .await;
}

#[tokio::test]
async fn message_published_just_before_shutdown_is_delivered() {
    // The `chs waku publish` flow: start, dial, wait for the peer's subscription, publish, stop.
    with_timeout(async {
        let listener = start(test_config()).await;
        let mut received = listener.messages(ContentFilter::all()).expect("running");
        let publisher = start(test_config()).await;
        publisher.dial(&first_addr(&listener).await).await.expect("dial");
        publisher.wait_for_topic_peers(TOPIC, 1).await.expect("running");
        let id = publisher.publish(TOPIC, message("/chs/1/cli/proto", b"one shot")).await.expect("publish");
        publisher.shutdown().await;
        let got = received.recv().await.expect("message");
        assert_eq!(got.message_id, id);
        assert_eq!(got.message.payload, b"one shot");
        let json = got.to_json();
        assert_eq!(json["payload_utf8"], "one shot");
        assert_eq!(json["content_topic"], "/chs/1/cli/proto");
        assert_eq!(json["message_id"], id.to_string());
        assert_eq!(json["message_hash"], hex::encode(chs_proto::waku::message_hash(TOPIC, &got.message)));
        listener.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_stopped_node_answers_node_stopped() {
    with_timeout(async {
        let node = start(test_config()).await;
        let handle = node.handle();
        let mut receiver = handle.messages(ContentFilter::all()).expect("running");
        node.shutdown().await;
        assert_eq!(handle.connected_peers().await, Err(NodeStopped));
        assert_eq!(handle.subscribe("/waku/2/rs/16/1").await, Err(chs_waku::SubscribeError::Stopped(NodeStopped)));
        assert_eq!(
            handle.publish(TOPIC, message("/chs/1/t/proto", b"x")).await,
            Err(PublishError::Stopped(NodeStopped))
        );
        assert!(handle.messages(ContentFilter::all()).is_err());
        assert_eq!(receiver.recv().await, None);
    })
    .await;
}
