//! The store v3 server: answers `/vac/waku/store-query/3.0.0` from a [`StoreBackend`] the caller
//! provides (this crate knows no database), with bounded pages, bounded requests, bounded
//! concurrency and a counted refusal for every bad request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chs_proto::Message as _;
use chs_proto::waku::store::{StoreQueryRequest, StoreQueryResponse, WakuMessageKeyValue};
use futures::{AsyncWriteExt as _, StreamExt as _};
use libp2p::StreamProtocol;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::wire::{read_frame, write_frame};
use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MessageHash, STORE_QUERY_PROTOCOL, StoreQuery, StoredMessage, status};
use crate::node::WakuHandle;

/// One page asked of a [`StoreBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendQuery {
    /// The content filter.
    pub criteria: StoreQuery,
    /// Start strictly after this message (in the query's direction); `None` = from the start.
    pub cursor: Option<MessageHash>,
    /// `true`: oldest first; `false`: newest first.
    pub forward: bool,
    /// Most messages to return.
    pub limit: usize,
}

/// Why a [`StoreBackend`] could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The cursor names no stored message (answered with 400).
    #[error("unknown cursor")]
    UnknownCursor,
    /// The storage failed (answered with 503).
    #[error("storage failed: {0}")]
    Failed(String),
}

/// The messages a [`StoreServer`] serves. Implemented by the caller (chs-node over its SQLite
/// message store, `chs waku listen --serve-store` over a [`super::MemoryStore`]). Calls run on
/// tokio's blocking pool, so an implementation may block.
pub trait StoreBackend: Send + Sync + 'static {
    /// Up to `query.limit` messages matching `query.criteria`, ordered by
    /// `(timestamp, hash)` in the query's direction, strictly after `query.cursor`.
    ///
    /// # Errors
    /// [`BackendError`].
    fn query(&self, query: &BackendQuery) -> Result<Vec<StoredMessage>, BackendError>;

    /// The stored messages among `hashes` (a lookup query). The default holds none.
    ///
    /// # Errors
    /// [`BackendError`].
    fn lookup(&self, hashes: &[MessageHash]) -> Result<Vec<StoredMessage>, BackendError> {
        let _ = hashes;
        Ok(Vec::new())
    }
}

/// Limits of a [`StoreServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreServerConfig {
    /// Page size when the request names none (or 0).
    pub default_page_size: u64,
    /// Largest page served; larger requests are clamped (as nwaku).
    pub max_page_size: u64,
    /// Largest request frame read; a larger one is refused.
    pub max_request_size: usize,
    /// A page is cut (and a cursor returned) before its encoding passes this many bytes.
    pub max_response_size: usize,
    /// How long a peer may take to send its request.
    pub request_timeout: Duration,
    /// Requests answered at once; more are answered 429.
    pub max_concurrent: usize,
}

impl Default for StoreServerConfig {
    fn default() -> Self {
        Self {
            default_page_size: DEFAULT_PAGE_SIZE,
            max_page_size: MAX_PAGE_SIZE,
            max_request_size: 64 * 1024,
            max_response_size: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_concurrent: 16,
        }
    }
}

/// Counters of a [`StoreServer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreServerStats {
    /// Streams opened to us.
    pub requests: u64,
    /// Pages answered with 200.
    pub pages_served: u64,
    /// Messages in those pages.
    pub messages_served: u64,
    /// Requests refused with 400 (undecodable, invalid, unknown cursor).
    pub bad_requests: u64,
    /// Requests refused with 429 (too many at once).
    pub busy: u64,
    /// Requests answered 503 (backend failure).
    pub backend_failures: u64,
    /// Streams dropped before a request was read: timeout, too large, broken.
    pub unread: u64,
}

#[derive(Debug, Default)]
struct ServerCounters {
    requests: AtomicU64,
    pages_served: AtomicU64,
    messages_served: AtomicU64,
    bad_requests: AtomicU64,
    busy: AtomicU64,
    backend_failures: AtomicU64,
    unread: AtomicU64,
}

impl ServerCounters {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StoreServerStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StoreServerStats {
            requests: get(&self.requests),
            pages_served: get(&self.pages_served),
            messages_served: get(&self.messages_served),
            bad_requests: get(&self.bad_requests),
            busy: get(&self.busy),
            backend_failures: get(&self.backend_failures),
            unread: get(&self.unread),
        }
    }
}

/// Starting a [`StoreServer`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    /// This node already serves the store protocol.
    #[error("this node already serves {STORE_QUERY_PROTOCOL}")]
    AlreadyServing,
}

/// A running store v3 server. Dropping it stops serving.
#[derive(Debug)]
pub struct StoreServer {
    task: JoinHandle<()>,
    counters: Arc<ServerCounters>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StoreServer {
    /// Serves `/vac/waku/store-query/3.0.0` on the node of `handle` from `backend`.
    ///
    /// # Errors
    /// [`ServeError::AlreadyServing`] if a server runs on this node already.
    pub fn start(
        handle: &WakuHandle,
        backend: Arc<dyn StoreBackend>,
        config: StoreServerConfig,
    ) -> Result<StoreServer, ServeError> {
        let mut control = handle.streams().0.clone();
        let mut incoming =
            control.accept(StreamProtocol::new(STORE_QUERY_PROTOCOL)).map_err(|_| ServeError::AlreadyServing)?;
        let counters = Arc::new(ServerCounters::default());
        let shared = Arc::clone(&counters);
        let permits = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        let config = Arc::new(config);
        let task = tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                ServerCounters::bump(&shared.requests, 1);
                let permit = Arc::clone(&permits).try_acquire_owned().ok();
                let (backend, config, counters) = (Arc::clone(&backend), Arc::clone(&config), Arc::clone(&shared));
                tokio::spawn(async move {
                    serve_stream(stream, peer, permit.is_some(), backend, &config, &counters).await;
                    drop(permit);
                });
            }
        });
        Ok(StoreServer { task, counters })
    }

    /// The server's counters.
    #[must_use]
    pub fn stats(&self) -> StoreServerStats {
        self.counters.snapshot()
    }
}

async fn serve_stream(
    mut stream: libp2p::Stream,
    peer: libp2p::PeerId,
    admitted: bool,
    backend: Arc<dyn StoreBackend>,
    config: &StoreServerConfig,
    counters: &ServerCounters,
) {
    let bytes =
        match tokio::time::timeout(config.request_timeout, read_frame(&mut stream, config.max_request_size)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => {
                ServerCounters::bump(&counters.unread, 1);
                tracing::debug!(%peer, %err, "store request not read");
                return;
            }
            Err(_) => {
                ServerCounters::bump(&counters.unread, 1);
                tracing::debug!(%peer, timeout = ?config.request_timeout, "store request not sent in time");
                return;
            }
        };
    let response = match StoreQueryRequest::decode(bytes.as_slice()) {
        Err(err) => refusal(counters, &peer, String::new(), status::BAD_REQUEST, format!("undecodable request: {err}")),
        Ok(request) if !admitted => {
            refusal(counters, &peer, request.request_id, status::TOO_MANY_REQUESTS, "too many requests".to_owned())
        }
        Ok(request) => answer(request, &peer, backend, config, counters).await,
    };
    let bytes = response.encode_to_vec();
    let write = async {
        write_frame(&mut stream, &bytes).await?;
        stream.close().await
    };
    match tokio::time::timeout(config.request_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%peer, %err, "store response not sent"),
        Err(_) => tracing::debug!(%peer, "store response not taken in time"),
    }
}

/// A counted, logged refusal.
fn refusal(
    counters: &ServerCounters,
    peer: &libp2p::PeerId,
    request_id: String,
    code: u32,
    desc: String,
) -> StoreQueryResponse {
    let counter = match code {
        status::TOO_MANY_REQUESTS => &counters.busy,
        status::SERVICE_UNAVAILABLE => &counters.backend_failures,
        _ => &counters.bad_requests,
    };
    ServerCounters::bump(counter, 1);
    tracing::debug!(%peer, code, %desc, "store request refused");
    StoreQueryResponse {
        request_id,
        status_code: Some(code),
        status_desc: Some(desc),
        messages: Vec::new(),
        pagination_cursor: None,
    }
}

fn hash_of(bytes: &[u8]) -> Option<MessageHash> {
    <MessageHash>::try_from(bytes).ok()
}

/// What a request asks, checked.
enum Asked {
    Filter(BackendQuery),
    Lookup(Vec<MessageHash>),
}

fn check_request(request: &StoreQueryRequest, config: &StoreServerConfig) -> Result<Asked, String> {
    if request.request_id.is_empty() {
        return Err("missing request id".to_owned());
    }
    let page = match request.pagination_limit {
        None | Some(0) => config.default_page_size,
        Some(limit) => limit.min(config.max_page_size),
    };
    let limit = usize::try_from(page.max(1)).unwrap_or(usize::MAX);
    if !request.message_hashes.is_empty() {
        if request.pubsub_topic.is_some() || !request.content_topics.is_empty() {
            return Err("message hashes cannot be combined with topics".to_owned());
        }
        if request.message_hashes.len() > limit {
            return Err(format!("{} message hashes exceed the page size {limit}", request.message_hashes.len()));
        }
        let hashes: Option<Vec<_>> = request.message_hashes.iter().map(|h| hash_of(h)).collect();
        return hashes.map(Asked::Lookup).ok_or_else(|| "a message hash is not 32 bytes".to_owned());
    }
    let criteria = StoreQuery {
        pubsub_topic: request.pubsub_topic.clone().unwrap_or_default(),
        content_topics: request.content_topics.clone(),
        time_start: request.time_start,
        time_end: request.time_end,
    };
    criteria.validate()?;
    let cursor = match &request.pagination_cursor {
        None => None,
        Some(bytes) => Some(hash_of(bytes).ok_or_else(|| format!("cursor of {} bytes, expected 32", bytes.len()))?),
    };
    Ok(Asked::Filter(BackendQuery { criteria, cursor, forward: request.pagination_forward, limit }))
}

async fn answer(
    request: StoreQueryRequest,
    peer: &libp2p::PeerId,
    backend: Arc<dyn StoreBackend>,
    config: &StoreServerConfig,
    counters: &ServerCounters,
) -> StoreQueryResponse {
    let request_id = request.request_id.clone();
    let asked = match check_request(&request, config) {
        Ok(asked) => asked,
        Err(desc) => return refusal(counters, peer, request_id, status::BAD_REQUEST, desc),
    };
    let (query, limit) = match &asked {
        Asked::Filter(query) => (Some(query.clone()), query.limit),
        Asked::Lookup(hashes) => (None, hashes.len()),
    };
    let found = tokio::task::spawn_blocking(move || match asked {
        // One more than the page tells whether another page follows.
        Asked::Filter(query) => backend.query(&BackendQuery { limit: query.limit.saturating_add(1), ..query }),
        Asked::Lookup(hashes) => backend.lookup(&hashes),
    })
    .await
    .unwrap_or_else(|err| Err(BackendError::Failed(format!("backend task: {err}"))));
    let mut found = match found {
        Ok(found) => found,
        Err(BackendError::UnknownCursor) => {
            return refusal(counters, peer, request_id, status::BAD_REQUEST, "unknown cursor".to_owned());
        }
        Err(err @ BackendError::Failed(_)) => {
            tracing::warn!(%peer, %err, "store backend failed");
            return refusal(counters, peer, request_id, status::SERVICE_UNAVAILABLE, "store unavailable".to_owned());
        }
    };
    let mut more = found.len() > limit;
    found.truncate(limit);
    // Cut the page before it grows past the response limit (at least one message goes out).
    let mut size = 0usize;
    let mut kept = 0usize;
    for message in &found {
        size = size.saturating_add(message.message.encoded_len() + message.pubsub_topic.len() + 48);
        if kept > 0 && size > config.max_response_size {
            more = true;
            break;
        }
        kept += 1;
    }
    found.truncate(kept);
    let cursor = if more && query.is_some() { found.last().map(|m| m.hash.to_vec()) } else { None };
    if query.as_ref().is_some_and(|q| !q.forward) {
        found.reverse();
    }
    let include_data = request.include_data;
    ServerCounters::bump(&counters.pages_served, 1);
    ServerCounters::bump(&counters.messages_served, found.len() as u64);
    tracing::debug!(%peer, messages = found.len(), more, "store page served");
    StoreQueryResponse {
        request_id,
        status_code: Some(status::OK),
        status_desc: Some("OK".to_owned()),
        messages: found
            .into_iter()
            .map(|m| WakuMessageKeyValue {
                message_hash: Some(m.hash.to_vec()),
                pubsub_topic: include_data.then_some(m.pubsub_topic),
                message: include_data.then_some(m.message),
            })
            .collect(),
        pagination_cursor: cursor,
    }
}
