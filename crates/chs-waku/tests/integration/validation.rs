//! Incoming-message validation against a hand-built gossipsub peer (real rust-libp2p over TCP,
//! speaking `/vac/waku/relay/2.0.0`) that publishes bytes a correct Waku node never would.

use std::time::Duration;

use chs_proto::Message as _;
use chs_waku::{Config, ContentFilter, MessageId, Stats, ValidationConfig, WakuMessage, timestamp_now};
use futures::StreamExt as _;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, noise, tcp, yamux};
use tokio::sync::oneshot;

use crate::support::{TOPIC, first_addr, start, test_config, with_timeout};

const CONTENT_TOPIC: &str = "/chs/1/validation/proto";

fn raw_relay_swarm() -> libp2p::Swarm<gossipsub::Behaviour> {
    let config = gossipsub::ConfigBuilder::default()
        .protocol_id(chs_waku::RELAY_PROTOCOL, gossipsub::Version::V1_1)
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|m: &gossipsub::Message| gossipsub::MessageId::from(MessageId::of_bytes(&m.data).0.to_vec()))
        .max_transmit_size(chs_waku::MAX_TRANSMIT_SIZE)
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .expect("config");
    let behaviour = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).expect("behaviour");
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| behaviour)
        .expect("behaviour")
        .build()
}

fn good(payload: &[u8]) -> WakuMessage {
    WakuMessage {
        payload: payload.to_vec(),
        content_topic: CONTENT_TOPIC.to_owned(),
        version: Some(0),
        timestamp: Some(timestamp_now()),
        ..WakuMessage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dropped_and_counted() {
    with_timeout(async {
        let config = Config {
            validation: ValidationConfig {
                max_message_size: 2000,
                max_future_skew: Some(Duration::from_secs(60)),
                max_age: Some(Duration::from_secs(3600)),
            },
            ..test_config()
        };
        let node = start(config).await;
        let mut received = node.messages(ContentFilter::all()).expect("running");
        let target: Multiaddr = first_addr(&node).await.parse().expect("multiaddr");

        let hour_ns: i64 = 3_600_000_000_000;
        let bad: Vec<Vec<u8>> = vec![
            vec![0xff, 0xff, 0xff, 0xff],                                               // malformed
            WakuMessage { content_topic: String::new(), ..good(b"x") }.encode_to_vec(), // empty content topic
            WakuMessage { payload: Vec::new(), ..good(b"x") }.encode_to_vec(),          // empty payload
            WakuMessage { meta: Some(vec![1; 65]), ..good(b"x") }.encode_to_vec(),      // meta too long
            WakuMessage { timestamp: Some(-5), ..good(b"x") }.encode_to_vec(),          // negative timestamp
            WakuMessage { timestamp: Some(timestamp_now() + hour_ns), ..good(b"x") }.encode_to_vec(), // future
            WakuMessage { timestamp: Some(timestamp_now() - 2 * hour_ns), ..good(b"x") }.encode_to_vec(), // old
            good(&[7; 3000]).encode_to_vec(),                                           // oversized
        ];
        let marker = good(b"marker").encode_to_vec();
        let marker_id = MessageId::of_bytes(&marker);

        let (done_sender, mut done) = oneshot::channel::<()>();
        let peer = tokio::spawn(async move {
            let mut swarm = raw_relay_swarm();
            let topic = gossipsub::IdentTopic::new(TOPIC);
            swarm.behaviour_mut().subscribe(&topic).expect("subscribe");
            swarm.dial(target).expect("dial");
            // Wait until our node's subscription arrived, then send everything in order.
            loop {
                if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) = swarm.select_next_some().await {
                    break;
                }
            }
            for bytes in bad.into_iter().chain([marker]) {
                swarm.behaviour_mut().publish(topic.clone(), bytes).expect("raw publish");
            }
            loop {
                tokio::select! {
                    _ = &mut done => break,
                    _ = swarm.select_next_some() => {}
                }
            }
        });

        // The marker went out last on the same stream: when it is in, the rest was judged.
        let first = received.recv().await.expect("message");
        assert_eq!(first.message_id, marker_id, "only the marker may be delivered, got {:?}", first.message);
        let stats = node.stats();
        assert_eq!(
            stats,
            Stats {
                received: 9,
                accepted: 1,
                malformed: 1,
                oversized: 1,
                empty_content_topic: 1,
                empty_payload: 1,
                meta_too_long: 1,
                negative_timestamp: 1,
                timestamp_in_future: 1,
                timestamp_too_old: 1,
                ..stats
            }
        );
        assert_eq!(stats.not_accepted(), 8);
        done_sender.send(()).expect("peer task alive");
        peer.await.expect("peer task");
        node.shutdown().await;
    })
    .await;
}

/// Issue 19 item 2: a validator registered for a pubsub topic (a protected topic's `meta` check,
/// go-waku `RegisterTopicValidator`) drops what it refuses, counts it, and stops when removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_validator_drops_what_it_refuses_until_removed() {
    with_timeout(async {
        let publisher = start(test_config()).await;
        let subscriber = start(test_config()).await;
        let validator: chs_waku::TopicValidator =
            std::sync::Arc::new(|message: &WakuMessage, _topic: &str, _now: i64| {
                message.meta.as_deref() == Some(b"ok")
            });
        subscriber.handle().set_topic_validator(TOPIC, Some(validator));
        let mut received = subscriber.messages(ContentFilter::all()).expect("running");
        publisher.dial(&first_addr(&subscriber).await).await.expect("dial");
        publisher.wait_for_topic_peers(TOPIC, 1).await.expect("running");

        let refused = WakuMessage { meta: Some(b"no".to_vec()), ..good(b"refused") };
        publisher.publish(TOPIC, refused).await.expect("publish refused");
        let marker = WakuMessage { meta: Some(b"ok".to_vec()), ..good(b"marker") };
        let marker_id = publisher.publish(TOPIC, marker).await.expect("publish marker");
        let first = received.recv().await.expect("message");
        assert_eq!(first.message_id, marker_id, "the refused message must not be delivered: {:?}", first.message);
        let stats = subscriber.stats();
        assert_eq!((stats.topic_validator, stats.accepted), (1, 1));

        // Removed: the same message is accepted.
        subscriber.handle().set_topic_validator(TOPIC, None);
        let again_id = publisher
            .publish(TOPIC, WakuMessage { meta: Some(b"no".to_vec()), ..good(b"again") })
            .await
            .expect("publish");
        assert_eq!(received.recv().await.expect("message").message_id, again_id);
        publisher.shutdown().await;
        subscriber.shutdown().await;
    })
    .await;
}
