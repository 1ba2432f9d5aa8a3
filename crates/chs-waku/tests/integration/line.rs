//! Five nodes in a line: a message published at one end reaches every other node exactly once.

use std::collections::HashMap;

use chs_waku::ContentFilter;

use crate::support::{TOPIC, first_addr, message, start, test_config, with_timeout};

const CONTENT_TOPIC: &str = "/chs/1/line/proto";
const MARKER: &[u8] = b"marker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_line_deliver_exactly_once() {
    with_timeout(async {
        let mut nodes = Vec::new();
        for _ in 0..5 {
            nodes.push(start(test_config()).await);
        }
        let mut receivers: Vec<_> = nodes
            .iter()
            .map(|node| node.messages(ContentFilter::new(TOPIC, [CONTENT_TOPIC])).expect("running"))
            .collect();
        // 0 - 1 - 2 - 3 - 4
        for idx in 0..4 {
            let next = first_addr(&nodes[idx + 1]).await;
            let peer = nodes[idx].dial(&next).await.expect("dial");
            assert_eq!(peer, nodes[idx + 1].peer_id());
        }
        for (idx, node) in nodes.iter().enumerate() {
            let neighbours = if idx == 0 || idx == 4 { 1 } else { 2 };
            node.wait_for_mesh_peers(TOPIC, neighbours).await.expect("mesh");
            assert_eq!(node.connected_peers().await.expect("running").len(), neighbours);
        }

        let payloads: Vec<Vec<u8>> = (0..3).map(|idx| format!("message {idx}").into_bytes()).collect();
        let mut ids = Vec::new();
        for payload in payloads.iter().map(Vec::as_slice).chain([MARKER]) {
            ids.push(nodes[0].publish(TOPIC, message(CONTENT_TOPIC, payload)).await.expect("publish"));
        }

        for (idx, receiver) in receivers.iter_mut().enumerate().skip(1) {
            let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
            // The marker was published last by the same node on the same path: once it is in,
            // everything before it has been validated and delivered.
            loop {
                let received = receiver.recv().await.expect("node running");
                assert_eq!(received.pubsub_topic, TOPIC);
                assert!(ids.contains(&received.message_id), "node {idx}: unknown id {}", received.message_id);
                let payload = received.message.payload.clone();
                *seen.entry(payload.clone()).or_default() += 1;
                if payload == MARKER {
                    break;
                }
            }
            for payload in &payloads {
                assert_eq!(seen.get(payload), Some(&1), "node {idx}: {payload:?} not delivered exactly once");
            }
            assert_eq!(seen.get(MARKER), Some(&1));
        }
        // Node 4 is two hops past node 2, so forwarding (not only the publisher's flood) worked.
        assert_eq!(nodes[4].stats().accepted, 4);
        // The publisher never receives its own messages.
        assert_eq!(nodes[0].stats().accepted, 0);
        for node in nodes {
            node.shutdown().await;
        }
    })
    .await;
}
