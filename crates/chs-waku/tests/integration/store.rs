//! Store v3 (`/vac/waku/store-query/3.0.0`): our client against our server, two real nodes on
//! 127.0.0.1 TCP; lying and stalling servers are real nodes serving from a lying backend.

use std::sync::Arc;
use std::time::Duration;

use chs_waku::WakuMessage;
use chs_waku::store::{
    BackendError, BackendQuery, MemoryStore, StoreBackend, StoreClient, StoreClientConfig, StoreError, StoreLie,
    StoreQuery, StoreServer, StoreServerConfig, StoredMessage, status,
};

use crate::support::{TOPIC, first_addr, start, test_config, with_timeout};

const CHAT: &str = "/waku/1/0x11223344/rfc26";
const OTHER: &str = "/waku/1/0x55667788/rfc26";
/// 2026-01-01T00:00:00Z in ns: the base of the test timestamps.
const T0: i64 = 1_767_225_600_000_000_000;
const SECOND: i64 = 1_000_000_000;

fn stored(content_topic: &str, index: i64) -> StoredMessage {
    let message = WakuMessage {
        payload: format!("message {index} on {content_topic}").into_bytes(),
        content_topic: content_topic.to_owned(),
        version: Some(0),
        timestamp: Some(T0 + index * SECOND),
        ..WakuMessage::default()
    };
    StoredMessage::new(TOPIC, message)
}

/// A memory store with `chats` messages on [`CHAT`] (timestamps T0 + i s) and 7 on [`OTHER`].
fn filled_store(chats: i64) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new(10_000));
    for index in 0..chats {
        assert!(store.insert(stored(CHAT, index)));
    }
    for index in 0..7 {
        assert!(store.insert(stored(OTHER, index)));
    }
    // The same message twice is kept once.
    assert!(!store.insert(stored(CHAT, 0)));
    store
}

/// A server node serving `backend`, and its dialable address.
async fn server_node(
    backend: Arc<dyn StoreBackend>,
    config: StoreServerConfig,
) -> (chs_waku::WakuNode, StoreServer, String) {
    let node = start(test_config()).await;
    let server = StoreServer::start(&node, backend, config).expect("serves");
    let addr = first_addr(&node).await;
    (node, server, addr)
}

fn client_config(page_size: u64) -> StoreClientConfig {
    StoreClientConfig { page_size, page_timeout: Duration::from_secs(5), ..StoreClientConfig::default() }
}

#[tokio::test]
async fn store_client_pages_through_our_server() {
    with_timeout(async {
        let store = filled_store(45);
        let (_server_node, server, addr) = server_node(store, StoreServerConfig::default()).await;
        let client_node = start(test_config()).await;
        let client = StoreClient::new(&client_node, client_config(10));

        let outcome = client.query(&addr, &StoreQuery::new(TOPIC, [CHAT])).await.expect("query");
        let expected: Vec<_> = (0..45).map(|i| stored(CHAT, i)).collect();
        assert_eq!(outcome.messages, expected, "all 45, oldest first, nothing of the other topic");
        assert_eq!(outcome.pages, 5);
        assert_eq!(outcome.duplicates, 0);

        // Inclusive range [T0+10 s, T0+24 s]: 15 messages, in 2 pages of 10.
        let range = StoreQuery::new(TOPIC, [CHAT]).with_time_range(Some(T0 + 10 * SECOND), Some(T0 + 24 * SECOND));
        let outcome = client.query(&addr, &range).await.expect("range query");
        assert_eq!(outcome.messages, (10..25).map(|i| stored(CHAT, i)).collect::<Vec<_>>());
        assert_eq!(outcome.pages, 2);

        // Backward: newest page first, each page oldest first (as nwaku).
        let backward = StoreClient::new(&client_node, StoreClientConfig { forward: false, ..client_config(20) });
        let outcome = backward.query(&addr, &StoreQuery::new(TOPIC, [CHAT])).await.expect("backward query");
        let mut want: Vec<_> = (25..45).map(|i| stored(CHAT, i)).collect();
        want.extend((5..25).map(|i| stored(CHAT, i)));
        want.extend((0..5).map(|i| stored(CHAT, i)));
        assert_eq!(outcome.messages, want);
        assert_eq!(outcome.pages, 3);

        // A bounded newest-first read: the newest page only, and no error for the rest.
        let newest = StoreClient::new(
            &client_node,
            StoreClientConfig { forward: false, stop_after_pages: Some(1), ..client_config(20) },
        );
        let outcome = newest.query(&addr, &StoreQuery::new(TOPIC, [CHAT])).await.expect("bounded query");
        assert_eq!(outcome.messages, (25..45).map(|i| stored(CHAT, i)).collect::<Vec<_>>());
        assert_eq!(outcome.pages, 1);

        // No content topic: every message of the pubsub topic.
        let outcome = client.query(&addr, &StoreQuery::new(TOPIC, Vec::<String>::new())).await.expect("all");
        assert_eq!(outcome.messages.len(), 52);
        let stats = server.stats();
        assert_eq!(stats.pages_served, 5 + 2 + 3 + 1 + 6);
        assert_eq!(stats.bad_requests, 0);
    })
    .await;
}

#[tokio::test]
async fn store_server_clamps_pages_and_counts_refusals() {
    with_timeout(async {
        let store = filled_store(150);
        let config = StoreServerConfig { max_page_size: 30, ..StoreServerConfig::default() };
        let (_server_node, server, addr) = server_node(store, config).await;
        let client_node = start(test_config()).await;
        let client = StoreClient::new(&client_node, client_config(100));

        // Asked 100 a page, served 30: 5 pages, all 150.
        let outcome = client.query(&addr, &StoreQuery::new(TOPIC, [CHAT])).await.expect("query");
        assert_eq!(outcome.messages.len(), 150);
        assert_eq!(outcome.pages, 5);

        let base = chs_proto::waku::store::StoreQueryRequest {
            include_data: true,
            pubsub_topic: Some(TOPIC.to_owned()),
            content_topics: vec![CHAT.to_owned()],
            pagination_forward: true,
            ..Default::default()
        };
        let bad = [
            chs_proto::waku::store::StoreQueryRequest { pubsub_topic: None, ..base.clone() },
            chs_proto::waku::store::StoreQueryRequest { pagination_cursor: Some(vec![7; 32]), ..base.clone() },
            chs_proto::waku::store::StoreQueryRequest { pagination_cursor: Some(vec![7; 5]), ..base.clone() },
            chs_proto::waku::store::StoreQueryRequest { time_start: Some(T0 + 5), time_end: Some(T0), ..base.clone() },
            chs_proto::waku::store::StoreQueryRequest { content_topics: vec![CHAT.to_owned(); 11], ..base.clone() },
        ];
        for request in bad {
            let response = client.request(&addr, request.clone()).await.expect("answered");
            assert_eq!(response.status_code, Some(status::BAD_REQUEST), "{request:?} -> {response:?}");
            assert!(response.messages.is_empty());
        }
        assert_eq!(server.stats().bad_requests, 5);
    })
    .await;
}

/// A backend that answers whatever `lie` makes of the honest answer.
struct LyingBackend {
    honest: Arc<MemoryStore>,
    lie: Box<Lie>,
}

type Lie = dyn Fn(&BackendQuery, Vec<StoredMessage>) -> Result<Vec<StoredMessage>, BackendError> + Send + Sync;

impl StoreBackend for LyingBackend {
    fn query(&self, query: &BackendQuery) -> Result<Vec<StoredMessage>, BackendError> {
        (self.lie)(query, self.honest.query(query)?)
    }
}

async fn query_liar(
    lie: impl Fn(&BackendQuery, Vec<StoredMessage>) -> Result<Vec<StoredMessage>, BackendError> + Send + Sync + 'static,
    config: StoreClientConfig,
) -> (Result<chs_waku::store::StoreOutcome, StoreError>, Vec<StoredMessage>) {
    let backend = Arc::new(LyingBackend { honest: filled_store(30), lie: Box::new(lie) });
    let (_server_node, _server, addr) = server_node(backend, StoreServerConfig::default()).await;
    let client_node = start(test_config()).await;
    let client = StoreClient::new(&client_node, config);
    let query = StoreQuery::new(TOPIC, [CHAT]).with_time_range(Some(T0), Some(T0 + 29 * SECOND));
    let mut kept = Vec::new();
    let result = client.query_with(&addr, &query, |page| kept.extend(page)).await;
    (result, kept)
}

fn lie_of(result: &Result<chs_waku::store::StoreOutcome, StoreError>) -> StoreLie {
    match result {
        Err(StoreError::Lying { lie, .. }) => lie.clone(),
        other => panic!("expected a lie, got {other:?}"),
    }
}

#[tokio::test]
async fn store_client_refuses_messages_outside_the_query() {
    with_timeout(async {
        // Another content topic slipped into the second page.
        let (result, kept) = query_liar(
            |query, mut page| {
                if query.cursor.is_some() {
                    page.insert(1, stored(OTHER, 3));
                    page.truncate(query.limit);
                }
                Ok(page)
            },
            client_config(10),
        )
        .await;
        assert!(matches!(lie_of(&result), StoreLie::OutsideQuery { content_topic, .. } if content_topic == OTHER));
        assert!(kept == (0..10).map(|i| stored(CHAT, i)).collect::<Vec<_>>(), "the honest first page is kept");

        // A message after the asked range.
        let (result, _) = query_liar(
            |_, mut page| {
                page.insert(0, stored(CHAT, 31));
                page.truncate(10);
                Ok(page)
            },
            client_config(10),
        )
        .await;
        assert!(matches!(lie_of(&result), StoreLie::OutsideQuery { timestamp, .. } if timestamp == T0 + 31 * SECOND));
    })
    .await;
}

#[tokio::test]
async fn store_client_refuses_bad_hashes() {
    with_timeout(async {
        let (result, kept) = query_liar(
            |_, mut page| {
                if let Some(first) = page.first_mut() {
                    first.hash[0] ^= 1;
                }
                Ok(page)
            },
            client_config(10),
        )
        .await;
        assert!(matches!(lie_of(&result), StoreLie::HashMismatch { .. }), "{result:?}");
        assert!(kept.is_empty());
    })
    .await;
}

#[tokio::test]
async fn store_client_stops_endless_paging() {
    with_timeout(async {
        // The cursor is ignored: the first page again and again.
        let (result, kept) = query_liar(
            |query, _| {
                let honest = filled_store(30);
                honest.query(&BackendQuery { cursor: None, ..query.clone() })
            },
            client_config(10),
        )
        .await;
        assert!(matches!(lie_of(&result), StoreLie::EndlessPaging { .. }), "{result:?}");
        assert_eq!(kept.len(), 10, "the first page once, nothing stored twice");
    })
    .await;
}

#[tokio::test]
async fn store_client_refuses_oversized_responses() {
    with_timeout(async {
        let config = StoreClientConfig { max_response_size: 1000, ..client_config(100) };
        let (result, kept) = query_liar(|_, page| Ok(page), config).await;
        assert!(matches!(lie_of(&result), StoreLie::OversizedResponse { max: 1000, .. }), "{result:?}");
        assert!(kept.is_empty());
    })
    .await;
}

#[tokio::test]
async fn store_client_times_out_on_a_stalling_server() {
    with_timeout(async {
        let config = StoreClientConfig { page_timeout: Duration::from_millis(500), ..client_config(10) };
        // The second page waits for a signal that comes only after the client has given up.
        let (release, stall) = std::sync::mpsc::channel::<()>();
        let stall = std::sync::Mutex::new(stall);
        let (result, kept) = query_liar(
            move |query, page| {
                if query.cursor.is_some() {
                    let _ = stall.lock().map(|stall| stall.recv());
                }
                Ok(page)
            },
            config,
        )
        .await;
        drop(release);
        assert!(matches!(result, Err(StoreError::Timeout { page: 2, .. })), "{result:?}");
        assert_eq!(kept.len(), 10);
    })
    .await;
}

#[tokio::test]
async fn store_client_gets_unsupported_from_a_node_without_store() {
    with_timeout(async {
        let plain = start(test_config()).await;
        let addr = first_addr(&plain).await;
        let client_node = start(test_config()).await;
        let client = StoreClient::new(&client_node, client_config(10));
        let result = client.query(&addr, &StoreQuery::new(TOPIC, [CHAT])).await;
        assert!(matches!(result, Err(StoreError::Unsupported { .. })), "{result:?}");
    })
    .await;
}

#[tokio::test]
async fn stored_messages_reach_local_receivers_without_loss() {
    with_timeout(async {
        let store = filled_store(300);
        let (_server_node, _server, addr) = server_node(store, StoreServerConfig::default()).await;
        let client_node = start(test_config()).await;
        // A receiver with room for 8 messages only: store delivery waits for it instead of dropping.
        let mut rx = client_node.messages_with_capacity(chs_waku::ContentFilter::new(TOPIC, [CHAT]), 8).expect("rx");
        let client = StoreClient::new(&client_node, client_config(100));
        let outcome = client.query(&addr, &StoreQuery::new(TOPIC, Vec::<String>::new())).await.expect("query");
        assert_eq!(outcome.messages.len(), 307);
        let from: chs_waku::PeerId = addr.rsplit("/p2p/").next().expect("peer id").parse().expect("peer id");
        let handle = client_node.handle();
        let deliver =
            tokio::spawn(async move { handle.deliver_stored(outcome.messages, from, Duration::from_secs(10)).await });
        let mut got = Vec::new();
        while got.len() < 300 {
            let m = rx.recv().await.expect("receiver open");
            assert_eq!(m.propagation_source, from);
            got.push(m.message.clone());
        }
        assert_eq!(deliver.await.expect("task"), 300, "the 7 messages of the other topic reach no receiver");
        assert_eq!(got, (0..300).map(|i| stored(CHAT, i).message).collect::<Vec<_>>());
        assert_eq!(rx.lost(), 0);
    })
    .await;
}
