//! Store v3 on the node: the message store served to store clients
//! ([`MessageStoreBackend`], the `chs_waku::store::StoreBackend` over chs-store), and catching up
//! from store nodes ([`catch_up`]).
//!
//! A row can be served only if it still holds the message as it was relayed: its wire payload
//! (`raw_payload`, or `payload` when they are the same), content topic, version, meta and ns
//! timestamp, checked by recomputing the 14/WAKU2 hash. Rows rebuilt from archives (a member's
//! import) do not, and are never served.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chs_store::{Store, WirePageQuery};
use chs_waku::WakuMessage;
use chs_waku::store::{BackendError, BackendQuery, StoreBackend, StoreClient, StoreError, StoreQuery};

/// The relayed message a row holds, if it holds it whole (its hash recomputes to the row's key).
pub(crate) fn wire_message(row: &chs_store::StoredMessage) -> Option<WakuMessage> {
    let message = WakuMessage {
        payload: row.raw_payload.clone().unwrap_or_else(|| row.payload.clone()),
        content_topic: row.content_topic.clone(),
        version: Some(row.version),
        timestamp: Some(row.timestamp_ns),
        meta: (!row.meta.is_empty()).then(|| row.meta.clone()),
        rate_limit_proof: None,
        ephemeral: None,
    };
    (chs_proto::waku::message_hash(&row.pubsub_topic, &message) == row.hash).then_some(message)
}

/// Puts the relayed form of `message` into `row` (built from its archived form), so that the
/// row can be served by store v3 later.
pub(crate) fn keep_wire_fields(row: &mut chs_store::StoredMessage, message: &WakuMessage) {
    row.content_topic.clone_from(&message.content_topic);
    row.version = message.version.unwrap_or(0);
    row.timestamp_ns = message.timestamp.unwrap_or(row.timestamp_ns);
    row.meta = message.meta.clone().unwrap_or_default();
    row.raw_payload = (message.payload != row.payload).then(|| message.payload.clone());
}

/// The node's message store as a store v3 backend (its own SQLite connection).
#[derive(Debug)]
pub(crate) struct MessageStoreBackend {
    store: Mutex<Store>,
}

impl MessageStoreBackend {
    /// Opens a second connection to the node's database at `path`.
    pub(crate) fn open(path: &std::path::Path) -> Result<Self, chs_store::StoreError> {
        Ok(Self { store: Mutex::new(Store::open(path)?) })
    }

    fn to_served(row: &chs_store::StoredMessage) -> Option<chs_waku::store::StoredMessage> {
        let message = wire_message(row)?;
        Some(chs_waku::store::StoredMessage { hash: row.hash, pubsub_topic: row.pubsub_topic.clone(), message })
    }
}

impl StoreBackend for MessageStoreBackend {
    fn query(&self, query: &BackendQuery) -> Result<Vec<chs_waku::store::StoredMessage>, BackendError> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut served = Vec::new();
        let mut after = query.cursor;
        // Rows that cannot be served are skipped; read on until the page is full or the rows end.
        loop {
            let page = store
                .page_in_wire_order(&WirePageQuery {
                    pubsub_topic: &query.criteria.pubsub_topic,
                    content_topics: &query.criteria.content_topics,
                    start_ns: query.criteria.time_start,
                    end_ns: query.criteria.time_end,
                    after,
                    forward: query.forward,
                    limit: query.limit,
                })
                .map_err(|err| BackendError::Failed(err.to_string()))?
                .ok_or(BackendError::UnknownCursor)?;
            let more = page.len() == query.limit && query.limit > 0;
            after = page.last().map(|row| row.hash);
            served.extend(page.iter().filter_map(Self::to_served));
            if served.len() >= query.limit || !more {
                break;
            }
        }
        served.truncate(query.limit);
        Ok(served)
    }

    fn lookup(&self, hashes: &[[u8; 32]]) -> Result<Vec<chs_waku::store::StoredMessage>, BackendError> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = store.messages_by_hash(hashes).map_err(|err| BackendError::Failed(err.to_string()))?;
        Ok(rows.iter().filter_map(Self::to_served).collect())
    }
}

/// What one catch-up brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// Messages handed on (each once).
    pub(crate) messages: usize,
    /// Pages read from the store node that answered.
    pub(crate) pages: usize,
    /// The store node that answered the whole query, if one did.
    pub(crate) peer: Option<String>,
    /// One line per store node that failed (lied, stalled, refused, unreachable).
    pub(crate) failures: Vec<String>,
    /// Time taken.
    pub(crate) elapsed: Duration,
}

/// Asks the store nodes `peers` in turn for `query` until one answers it whole; every checked
/// page goes to `on_page` as it arrives, each message once across peers (the pages a failing
/// peer sent before failing were checked one by one and are kept).
pub(crate) async fn catch_up(
    client: &StoreClient,
    peers: &[String],
    query: &StoreQuery,
    mut on_page: impl FnMut(Vec<chs_waku::store::StoredMessage>),
) -> CatchUp {
    let started = std::time::Instant::now();
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut outcome = CatchUp::default();
    for peer in peers {
        let result = client
            .query_with(peer, query, |page| {
                let fresh: Vec<_> = page.into_iter().filter(|m| seen.insert(m.hash)).collect();
                outcome.messages += fresh.len();
                if !fresh.is_empty() {
                    on_page(fresh);
                }
            })
            .await;
        match result {
            Ok(done) => {
                outcome.pages = done.pages;
                outcome.peer = Some(peer.clone());
                break;
            }
            Err(err) => {
                let line = failure_line(peer, &err);
                tracing::warn!(%peer, error = %line, "store node failed; trying the next");
                outcome.failures.push(line);
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn failure_line(peer: &str, err: &StoreError) -> String {
    let mut line = format!("{peer}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chs_waku::store::{StoreClientConfig, StoreServer, StoreServerConfig};
    use chs_waku::{Config, WakuNode};

    use super::*;

    const TOPIC: &str = "/waku/2/rs/16/32";
    const CHAT: &str = "/waku/1/0x11223344/rfc26";

    /// A row as live capture keeps it: archived fields plus the relayed form.
    fn captured(index: i64) -> (chs_store::StoredMessage, WakuMessage) {
        let wire = WakuMessage {
            payload: format!("encrypted {index}").into_bytes(),
            content_topic: CHAT.to_owned(),
            version: Some(1),
            timestamp: Some(1_767_225_600_000_000_000 + index * 1_000_000_123),
            meta: (index % 2 == 0).then(|| vec![7; 4]),
            ..WakuMessage::default()
        };
        let mut row = chs_store::StoredMessage {
            hash: chs_proto::waku::message_hash(TOPIC, &wire),
            pubsub_topic: TOPIC.to_owned(),
            content_topic: String::new(),
            topic: [0x11, 0x22, 0x33, 0x44],
            timestamp_ns: 0,
            version: 1,
            meta: Vec::new(),
            raw_payload: None,
            payload: format!("decrypted {index}").into_bytes(),
            padding: Vec::new(),
            sig: Vec::new(),
            third_party_id: String::new(),
            received_at_ms: 0,
        };
        keep_wire_fields(&mut row, &wire);
        (row, wire)
    }

    #[tokio::test]
    async fn node_serves_captured_messages_from_its_message_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chs.db");
        let mut store = Store::open(&db).unwrap();
        let (rows, wires): (Vec<_>, Vec<_>) = (0..25).map(captured).unzip();
        store.insert_batch(&rows).unwrap();
        // A row rebuilt from an archive (no relayed form): never served.
        let mut imported = captured(100).0;
        imported.raw_payload = None;
        store.insert_batch(&[imported]).unwrap();
        drop(store);

        let server_node = WakuNode::start(Config::default()).await.unwrap();
        let backend = Arc::new(MessageStoreBackend::open(&db).unwrap());
        let server = StoreServer::start(&server_node, backend, StoreServerConfig::default()).unwrap();
        let addr = server_node.listen_addrs().await.unwrap().remove(0);
        let client_node = WakuNode::start(Config { listen_addrs: Vec::new(), ..Config::default() }).await.unwrap();
        let client =
            StoreClient::new(&client_node, StoreClientConfig { page_size: 10, ..StoreClientConfig::default() });

        let mut got = Vec::new();
        let dead = "/ip4/127.0.0.1/tcp/1/p2p/16Uiu2HAmS1fAjhe8S6YwQwN7yd2YeyChQXYYed7fv3xxudsGiKcD".to_owned();
        let outcome =
            catch_up(&client, &[dead, addr.clone()], &StoreQuery::new(TOPIC, [CHAT]), |page| got.extend(page)).await;
        assert_eq!(outcome.peer.as_deref(), Some(addr.as_str()));
        assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
        assert_eq!((outcome.messages, outcome.pages), (25, 3));
        let got_wires: Vec<_> = got.into_iter().map(|m| m.message).collect();
        assert_eq!(got_wires, wires, "the relayed messages, in order, the imported row left out");
        assert_eq!(server.stats().pages_served, 3);
    }
}
