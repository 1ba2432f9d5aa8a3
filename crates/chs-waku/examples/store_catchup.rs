//! Store catch-up figures: one chs-waku node serves 10,000 messages of 1 KB (three content
//! topics, one wanted) from a `MemoryStore` over loopback TCP; a second node pages through the
//! 5,000 it wants with the store v3 client, at go-waku's default page size (20) and at the
//! maximum (100). Prints messages, pages, duplicates and time for each run.
//!
//! Run: `cargo run --release -p chs-waku --example store_catchup`

// A benchmark binary reports on stdout.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use chs_waku::store::{
    MAX_PAGE_SIZE, MemoryStore, StoreClient, StoreClientConfig, StoreQuery, StoreServer, StoreServerConfig,
    StoredMessage,
};
use chs_waku::{Config, WakuMessage, WakuNode, timestamp_now};

const MESSAGES: i64 = 10_000;
const PAYLOAD_SIZE: usize = 1_024;
const WANTED: &str = "/waku/1/0x11223344/rfc26";
const OTHERS: [&str; 1] = ["/waku/1/0x55667788/rfc26"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store = Arc::new(MemoryStore::new(usize::try_from(MESSAGES)?));
    let start_ns = timestamp_now() - 3_600 * 1_000_000_000;
    for index in 0..MESSAGES {
        let content_topic = if index % 2 == 0 { WANTED } else { OTHERS[0] };
        let mut payload = vec![0u8; PAYLOAD_SIZE];
        payload[..8].copy_from_slice(&index.to_be_bytes());
        let message = WakuMessage {
            payload,
            content_topic: content_topic.to_owned(),
            version: Some(1),
            timestamp: Some(start_ns + index * 1_000_000),
            ..WakuMessage::default()
        };
        store.insert(StoredMessage::new(chs_waku::DEFAULT_PUBSUB_TOPIC, message));
    }
    let server_node = WakuNode::start(Config::default()).await?;
    let server = StoreServer::start(&server_node, store, StoreServerConfig::default())?;
    let addr = server_node.listen_addrs().await?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no address"))?;
    let query = StoreQuery::new(chs_waku::DEFAULT_PUBSUB_TOPIC, [WANTED]).with_time_range(Some(start_ns), None);
    for page_size in [chs_waku::store::DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE] {
        let client_node = WakuNode::start(Config { listen_addrs: Vec::new(), ..Config::default() }).await?;
        let client = StoreClient::new(&client_node, StoreClientConfig { page_size, ..StoreClientConfig::default() });
        let mut count = 0usize;
        let outcome = client.query_with(&addr, &query, |page| count += page.len()).await?;
        let ms = outcome.elapsed.as_secs_f64() * 1e3;
        println!(
            "page size {page_size:>3}: {count} messages of {PAYLOAD_SIZE} B in {} pages, {} duplicates, {ms:.0} ms ({:.0} messages/s, {:.2} ms/page)",
            outcome.pages,
            outcome.duplicates,
            count as f64 / outcome.elapsed.as_secs_f64(),
            ms / outcome.pages as f64,
        );
        client_node.shutdown().await;
    }
    let stats = server.stats();
    println!(
        "server: {} pages, {} messages served, {} refused",
        stats.pages_served,
        stats.messages_served,
        stats.bad_requests + stats.busy
    );
    server_node.shutdown().await;
    Ok(())
}
