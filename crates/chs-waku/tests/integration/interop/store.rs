//! Store v3 interop with go-waku's own v3 client as status-go runs it (`chspeer-waku`
//! `store-query`, `/vac/waku/store-query/3.0.0`, 20 messages a page): it queries our
//! [`StoreServer`] and must get exactly the stored messages of the asked topic and range, paged.
//! Runs when `CHS_PEERS_BIN` names the folder of `../shared/peers/bin`; otherwise prints
//! `skipped:` and returns.

use std::collections::BTreeSet;
use std::sync::Arc;

use chs_waku::WakuMessage;
use chs_waku::store::{MemoryStore, StoreServer, StoreServerConfig, StoredMessage};

use super::peer::{GoPeer, peers_bin};
use crate::support::{TOPIC, first_addr, start, test_config, with_timeout};

const CHAT: &str = "/waku/1/0x11223344/rfc26";
const OTHER: &str = "/waku/1/0x55667788/rfc26";

/// The value of `key=` in a chspeer line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} in {line}"))
}

fn stored(content_topic: &str, index: i64, base: i64) -> StoredMessage {
    let message = WakuMessage {
        payload: format!("history {index}").into_bytes(),
        content_topic: content_topic.to_owned(),
        version: Some(0),
        timestamp: Some(base + index * 1_000_000_000),
        ..WakuMessage::default()
    };
    StoredMessage::new(TOPIC, message)
}

#[tokio::test]
async fn go_waku_store_client_queries_our_store_server() {
    let Some(bin) = peers_bin("go_waku_store_client_queries_our_store_server") else { return };
    with_timeout(async {
        let mut go = GoPeer::waku(&bin, "go-waku", &[]).await;
        let base = chs_waku::timestamp_now() - 3_600 * 1_000_000_000;
        let store = Arc::new(MemoryStore::new(1_000));
        for index in 0..50 {
            store.insert(stored(CHAT, index, base));
            store.insert(stored(OTHER, index, base));
        }
        let node = start(test_config()).await;
        let server = StoreServer::start(&node, store, StoreServerConfig::default()).expect("serves");
        let addr = first_addr(&node).await;

        // Messages 3..=47 of CHAT: 45 messages, 3 pages of go-waku's 20.
        let (start_ns, end_ns) = (base + 3 * 1_000_000_000, base + 47 * 1_000_000_000);
        go.send(&format!("store-query {TOPIC} {CHAT} {start_ns} {end_ns} {addr}")).await;
        let mut got = BTreeSet::new();
        let done = loop {
            let line = loop {
                let line = go.next_line().await.expect("chspeer-waku runs");
                if line.starts_with("STORE") || line.starts_with("ERR") {
                    break line;
                }
            };
            assert!(!line.starts_with("ERR"), "go-waku: {line}");
            if line.starts_with("STORE_DONE") {
                break line;
            }
            assert_eq!(field(&line, "pubsub"), TOPIC);
            assert_eq!(field(&line, "contentTopic"), CHAT);
            assert!(got.insert(field(&line, "hash").to_owned()), "served twice: {line}");
        };
        let want: BTreeSet<String> =
            (3..=47).map(|i| format!("0x{}", hex::encode(stored(CHAT, i, base).hash))).collect();
        assert_eq!(got, want, "exactly the stored messages of the topic and range");
        assert_eq!(field(&done, "n"), "45");
        // go-waku's `Result` yields no messages before its first `Next`, so the harness counts
        // one page more than went over the wire: 3 pages of 20, 20 and 5.
        assert_eq!(field(&done, "pages"), "4");
        let stats = server.stats();
        assert_eq!((stats.pages_served, stats.messages_served, stats.bad_requests), (3, 45, 0));
        go.quit().await;
    })
    .await;
}
