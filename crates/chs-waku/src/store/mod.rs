//! 13/WAKU2-STORE v3 (`/vac/waku/store-query/3.0.0`): a client that pages through a store
//! node's history and checks every answer ([`StoreClient`]), a server that answers from a
//! caller-provided [`StoreBackend`] ([`StoreServer`]), and a bounded in-memory backend
//! ([`MemoryStore`]).
//!
//! Wire: one length-prefixed `StoreQueryRequest` answered by one length-prefixed
//! `StoreQueryResponse` per stream (go-waku, nwaku). Messages are ordered by
//! `(timestamp, message hash)`; the cursor is the hash of the last message of the previous page
//! and is exclusive; time bounds are inclusive; a page of a backward query is returned oldest
//! first (as nwaku); the last page carries no cursor.

mod client;
mod memory;
mod server;
mod wire;

use std::cmp::Ordering;

use chs_proto::waku::WakuMessage;

pub use client::{StoreClient, StoreClientConfig, StoreError, StoreLie, StoreOutcome};
pub use memory::MemoryStore;
pub use server::{
    BackendError, BackendQuery, ServeError, StoreBackend, StoreServer, StoreServerConfig, StoreServerStats,
};

/// The protocol id of store v3.
pub const STORE_QUERY_PROTOCOL: &str = "/vac/waku/store-query/3.0.0";

/// Page size when a request names none (go-waku and nwaku: 20).
pub const DEFAULT_PAGE_SIZE: u64 = 20;

/// Largest page served or asked for (go-waku and nwaku: 100).
pub const MAX_PAGE_SIZE: u64 = 100;

/// Most content topics in one query (go-waku's `MaxContentTopics`).
pub const MAX_CONTENT_TOPICS: usize = 10;

/// Store v3 status codes (nwaku's `StatusCode`).
pub mod status {
    /// The page is in the response.
    pub const OK: u32 = 200;
    /// The request is invalid; `status_desc` says why.
    pub const BAD_REQUEST: u32 = 400;
    /// The server is busy or rate-limits us.
    pub const TOO_MANY_REQUESTS: u32 = 429;
    /// The server's storage failed.
    pub const SERVICE_UNAVAILABLE: u32 = 503;
}

/// A 14/WAKU2-MESSAGE deterministic hash, the key of a stored message.
pub type MessageHash = [u8; 32];

/// The stream control of the node, shared by the store client and server.
#[derive(Clone)]
pub(crate) struct Streams(pub(crate) libp2p_stream::Control);

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

/// What a content-filtered store query asks for: one pubsub topic, some content topics (none =
/// every content topic of the pubsub topic), and an inclusive time range in Unix nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreQuery {
    /// The pubsub topic, e.g. `/waku/2/rs/16/32`.
    pub pubsub_topic: String,
    /// Content topics (at most [`MAX_CONTENT_TOPICS`]); empty matches all.
    pub content_topics: Vec<String>,
    /// Earliest timestamp (inclusive), ns.
    pub time_start: Option<i64>,
    /// Latest timestamp (inclusive), ns.
    pub time_end: Option<i64>,
}

impl StoreQuery {
    /// A query for `content_topics` on `pubsub_topic` over all time.
    pub fn new(pubsub_topic: impl Into<String>, content_topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            pubsub_topic: pubsub_topic.into(),
            content_topics: content_topics.into_iter().map(Into::into).collect(),
            time_start: None,
            time_end: None,
        }
    }

    /// Restricts the query to `[start, end]` (ns, inclusive; `None` = open).
    #[must_use]
    pub fn with_time_range(mut self, start: Option<i64>, end: Option<i64>) -> Self {
        self.time_start = start;
        self.time_end = end;
        self
    }

    /// Whether `message`, relayed on `pubsub_topic`, is one this query asks for. A message
    /// without a timestamp counts as timestamp 0.
    #[must_use]
    pub fn matches(&self, pubsub_topic: &str, message: &WakuMessage) -> bool {
        let timestamp = message.timestamp.unwrap_or(0);
        pubsub_topic == self.pubsub_topic
            && (self.content_topics.is_empty() || self.content_topics.contains(&message.content_topic))
            && self.time_start.is_none_or(|start| timestamp >= start)
            && self.time_end.is_none_or(|end| timestamp <= end)
    }

    /// Checks what go-waku's `StoreQueryRequest.Validate` checks, plus a non-empty pubsub topic.
    ///
    /// # Errors
    /// A sentence saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.pubsub_topic.is_empty() {
            return Err("missing pubsub topic".to_owned());
        }
        if self.content_topics.len() > MAX_CONTENT_TOPICS {
            return Err(format!(
                "{} content topics exceed the maximum of {MAX_CONTENT_TOPICS}",
                self.content_topics.len()
            ));
        }
        if self.content_topics.iter().any(String::is_empty) {
            return Err("empty content topic".to_owned());
        }
        if let (Some(start), Some(end)) = (self.time_start, self.time_end)
            && start > end
        {
            return Err(format!("time range start {start} is after its end {end}"));
        }
        Ok(())
    }
}

/// A message as a store holds it: its hash, the pubsub topic it came on, the message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// `chs_proto::waku::message_hash(pubsub_topic, message)`.
    pub hash: MessageHash,
    /// The pubsub topic it was relayed on.
    pub pubsub_topic: String,
    /// The message.
    pub message: WakuMessage,
}

impl StoredMessage {
    /// Wraps `message` relayed on `pubsub_topic`, computing its hash.
    pub fn new(pubsub_topic: impl Into<String>, message: WakuMessage) -> Self {
        let pubsub_topic = pubsub_topic.into();
        let hash = chs_proto::waku::message_hash(&pubsub_topic, &message);
        Self { hash, pubsub_topic, message }
    }

    /// The message's timestamp (0 when absent), the first half of the store's order.
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.message.timestamp.unwrap_or(0)
    }

    /// The store order: by timestamp, then by hash.
    #[must_use]
    pub fn order(&self, other: &Self) -> Ordering {
        (self.timestamp(), self.hash).cmp(&(other.timestamp(), other.hash))
    }

    /// The JSON object `chs waku listen` prints for a relayed message (same keys; `from` is the
    /// store node that served it, `message_id` the relay message id of the same bytes).
    #[must_use]
    pub fn to_json(&self, from: &str) -> serde_json::Value {
        let message = &self.message;
        serde_json::json!({
            "pubsub_topic": self.pubsub_topic,
            "content_topic": message.content_topic,
            "payload_hex": hex::encode(&message.payload),
            "payload_utf8": std::str::from_utf8(&message.payload).ok(),
            "version": message.version,
            "timestamp": message.timestamp,
            "meta_hex": message.meta.as_ref().map(hex::encode),
            "ephemeral": message.ephemeral,
            "message_id": crate::MessageId::of_message(message).to_string(),
            "message_hash": hex::encode(self.hash),
            "from": from,
        })
    }
}
