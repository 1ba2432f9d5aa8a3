//! Interop with a real js-waku relay node (`interop/waku_peer.mjs`, @waku/sdk 0.0.27 on
//! libp2p 1.9, Node 20). Runs only when `CHS_JS_WAKU_DIR` points at the `interop/` folder
//! after `npm ci`; otherwise it prints "skipped" and returns.

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use chs_waku::{ContentFilter, NodeEvent, WakuMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::support::{TOPIC, next_event, start, test_config, with_timeout};

const CONTENT_TOPIC: &str = "/chs/1/interop/proto";

struct JsPeer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl JsPeer {
    async fn spawn(dir: &PathBuf) -> JsPeer {
        let mut child = Command::new("node")
            .arg("waku_peer.mjs")
            .arg(TOPIC)
            .arg(CONTENT_TOPIC)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        JsPeer { child, stdin, lines }
    }

    /// The next event named `name`; other events are skipped, "error" events fail the test.
    async fn next(&mut self, name: &str) -> Value {
        loop {
            let line = self.lines.next_line().await.expect("read js stdout").expect("js peer exited");
            tracing::info!(target: "js_waku", "{line}");
            let event: Value = serde_json::from_str(&line).expect("js peer prints JSON lines");
            assert_ne!(event["event"], "error", "js peer error: {event}");
            if event["event"] == name {
                return event;
            }
        }
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("write js stdin");
        self.stdin.flush().await.expect("flush js stdin");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_waku_relay_exchanges_messages_both_ways() {
    let Some(dir) = std::env::var_os("CHS_JS_WAKU_DIR").map(PathBuf::from) else {
        println!(
            "skipped: set CHS_JS_WAKU_DIR to crates/chs-waku/interop (after npm ci) to run the js-waku interop test"
        );
        return;
    };
    with_timeout(async {
        let node = start(test_config()).await;
        let mut received = node.messages(ContentFilter::new(TOPIC, [CONTENT_TOPIC])).expect("running");
        let mut events = node.events().expect("running");

        let mut js = JsPeer::spawn(&dir).await;
        let ready = js.next("ready").await;
        let js_peer_id = ready["peerId"].as_str().expect("peerId").to_owned();
        let js_addr = ready["addrs"][0].as_str().expect("an address").to_owned();

        let dialed = node.dial(&js_addr).await.expect("dial js-waku");
        assert_eq!(dialed.to_string(), js_peer_id);
        // js-waku has no 66/WAKU2-METADATA: tolerated, the peer stays.
        let unsupported = next_event(&mut events, |event| match event {
            NodeEvent::MetadataUnsupported { peer_id } => Some(*peer_id),
            _ => None,
        })
        .await;
        assert_eq!(unsupported, dialed);
        node.wait_for_topic_peers(TOPIC, 1).await.expect("js subscribed");
        let subscribed = js.next("peer-subscribed").await;
        assert_eq!(subscribed["peerId"], node.peer_id().to_string());

        // Rust -> js-waku.
        // A current timestamp with full nanosecond precision (ours validate the age).
        let timestamp_ns = chs_waku::timestamp_now();
        let to_js = WakuMessage {
            payload: b"hello from rust".to_vec(),
            content_topic: CONTENT_TOPIC.to_owned(),
            version: Some(0),
            timestamp: Some(timestamp_ns),
            ..WakuMessage::default()
        };
        let id = node.publish(TOPIC, to_js).await.expect("publish to js");
        let gossip = js.next("gossip").await;
        assert_eq!(gossip["topic"], TOPIC);
        assert_eq!(gossip["sha256Hex"], id.to_string());
        // @chainsafe/libp2p-gossipsub prints ids as unpadded base64.
        let js_msg_id = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(gossip["msgId"].as_str().expect("msgId").trim_end_matches('='))
            .expect("js-waku message ids are base64");
        assert_eq!(js_msg_id, id.0, "gossipsub message ids differ");
        let message = js.next("message").await;
        assert_eq!(message["pubsubTopic"], TOPIC);
        assert_eq!(message["contentTopic"], CONTENT_TOPIC);
        assert_eq!(message["payloadHex"], hex::encode(b"hello from rust"));
        assert_eq!(message["timestampNs"], timestamp_ns.to_string());

        // js-waku -> Rust (js-waku timestamps have millisecond precision).
        let timestamp_ms = chs_waku::timestamp_now() / 1_000_000;
        js.send(json!({
            "cmd": "publish",
            "contentTopic": CONTENT_TOPIC,
            "payloadHex": hex::encode(b"hello from js-waku"),
            "timestampMs": timestamp_ms,
        }))
        .await;
        let published = js.next("published").await;
        assert_eq!(published["failures"], json!([]));
        assert!(published["recipients"].as_u64().expect("count") >= 1, "{published}");
        let got = received.recv().await.expect("message from js");
        assert_eq!(got.pubsub_topic, TOPIC);
        assert_eq!(got.message.content_topic, CONTENT_TOPIC);
        assert_eq!(got.message.payload, b"hello from js-waku");
        assert_eq!(got.message.timestamp, Some(timestamp_ms * 1_000_000));
        assert_eq!(got.message_id.to_string(), published["sha256Hex"].as_str().expect("hex"));
        assert_eq!(got.propagation_source, dialed);

        assert_eq!(node.connected_peers().await.expect("running"), vec![dialed]);
        assert_eq!(node.stats().accepted, 1);
        js.send(json!({"cmd": "quit"})).await;
        let status = js.child.wait().await.expect("js exits");
        assert!(status.success(), "js peer exit status {status}");
        node.shutdown().await;
    })
    .await;
}

/// Keep-alive with js-libp2p: the js node pings chs over `/ipfs/ping/1.0.0` (what its
/// connection monitor does every 10 s) and gets each answer; chs's own pings to it succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_waku_pings_are_answered_and_ours_succeed() {
    let Some(dir) = std::env::var_os("CHS_JS_WAKU_DIR").map(PathBuf::from) else {
        println!("skipped: set CHS_JS_WAKU_DIR to crates/chs-waku/interop (after npm ci) to run the js-waku ping test");
        return;
    };
    with_timeout(async {
        let node =
            start(chs_waku::Config { ping_interval: std::time::Duration::from_millis(300), ..test_config() }).await;
        let mut js = JsPeer::spawn(&dir).await;
        let ready = js.next("ready").await;
        let js_addr = ready["addrs"][0].as_str().expect("an address").to_owned();
        node.dial(&js_addr).await.expect("dial js-waku");
        node.wait_for_topic_peers(TOPIC, 1).await.expect("js subscribed");
        for _ in 0..3 {
            js.send(json!({"cmd": "ping", "peerId": node.peer_id().to_string()})).await;
            let pong = js.next("pong").await;
            assert!(pong["rttMs"].as_f64().is_some(), "{pong}");
        }
        // Our pings (every 300 ms here) reach js-libp2p's ping service: a condition polled
        // until the test's deadline (pings raise no event).
        let mut check = tokio::time::interval(std::time::Duration::from_millis(100));
        while node.stats().pings_ok < 3 {
            check.tick().await;
        }
        assert_eq!(node.stats().pings_failed, 0);
        assert_eq!(node.connected_peers().await.expect("running").len(), 1);
        js.send(json!({"cmd": "quit"})).await;
        let _ = js.child.wait().await;
        node.shutdown().await;
    })
    .await;
}

mod discovery;
mod peer;
mod status_go;
mod store;
