//! Helpers shared by the integration tests.

use std::future::Future;
use std::time::Duration;

use chs_waku::{Config, NodeEvent, WakuMessage, WakuNode, timestamp_now};
use tokio::sync::broadcast;

/// Upper bound of every network test.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The topic the tests use (Status' default community shard).
pub(crate) const TOPIC: &str = chs_waku::DEFAULT_PUBSUB_TOPIC;

/// Logs go to the test output with `RUST_LOG=chs_waku=debug`.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Runs `body` under [`TEST_TIMEOUT`].
pub(crate) async fn with_timeout<T>(body: impl Future<Output = T>) -> T {
    init_tracing();
    tokio::time::timeout(TEST_TIMEOUT, body).await.expect("test timed out")
}

/// A loopback node with a fast heartbeat.
pub(crate) fn test_config() -> Config {
    Config { heartbeat_interval: Duration::from_millis(100), ..Config::default() }
}

pub(crate) async fn start(config: Config) -> WakuNode {
    WakuNode::start(config).await.expect("node starts")
}

pub(crate) async fn first_addr(node: &WakuNode) -> String {
    node.listen_addrs().await.expect("running").into_iter().next().expect("one listen address")
}

pub(crate) fn message(content_topic: &str, payload: &[u8]) -> WakuMessage {
    WakuMessage {
        payload: payload.to_vec(),
        content_topic: content_topic.to_owned(),
        version: Some(0),
        timestamp: Some(timestamp_now()),
        ..WakuMessage::default()
    }
}

/// The next event for which `pick` returns `Some`, skipping the others.
pub(crate) async fn next_event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    mut pick: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    loop {
        let event = events.recv().await.expect("event stream open");
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}
