//! The store v3 client: pages through a store node's answer to a [`StoreQuery`], checks every
//! page against what was asked, and hands each message on once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chs_proto::Message as _;
use chs_proto::waku::store::{StoreQueryRequest, StoreQueryResponse};
use futures::AsyncWriteExt as _;
use libp2p::StreamProtocol;
use libp2p_stream::OpenStreamError;

use super::wire::{FrameError, read_frame, write_frame};
use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MessageHash, STORE_QUERY_PROTOCOL, StoreQuery, StoredMessage, status};
use crate::error::{DialError, NodeStopped};
use crate::node::WakuHandle;
use crate::validation::{Rejection, ValidationConfig, validate_message};

/// Limits of a [`StoreClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreClientConfig {
    /// Messages asked per page (clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub page_size: u64,
    /// `true`: oldest first.
    pub forward: bool,
    /// Dialing the store node.
    pub dial_timeout: Duration,
    /// One page: opening the stream, sending the request, reading the whole response. A peer
    /// that takes longer is stalling.
    pub page_timeout: Duration,
    /// Largest response frame read.
    pub max_response_size: usize,
    /// Most pages of one query (more is endless paging).
    pub max_pages: usize,
    /// Pages read at most, then the query ends without error (a bounded read, e.g. the newest
    /// messages with `forward: false`); `None`: read until the store node has no more.
    pub stop_after_pages: Option<usize>,
    /// Most messages of one query.
    pub max_messages: usize,
    /// Pages in a row that bring nothing new before the peer counts as paging endlessly.
    pub max_fruitless_pages: usize,
    /// Checks on each message (by default structural only: old messages are what a store holds).
    pub validation: ValidationConfig,
}

impl Default for StoreClientConfig {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            forward: true,
            dial_timeout: Duration::from_secs(10),
            page_timeout: Duration::from_secs(10),
            max_response_size: 32 * 1024 * 1024,
            max_pages: 10_000,
            stop_after_pages: None,
            max_messages: 1_000_000,
            max_fruitless_pages: 3,
            validation: ValidationConfig { max_age: None, ..ValidationConfig::default() },
        }
    }
}

/// How a store node broke the protocol (or lied) in its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreLie {
    /// The response is not a `StoreQueryResponse`.
    #[error("undecodable response: {0}")]
    Undecodable(String),
    /// The response frame is larger than we read.
    #[error("response of {size} bytes exceeds {max}")]
    OversizedResponse {
        /// Announced size.
        size: u64,
        /// Our limit.
        max: usize,
    },
    /// The response answers another request.
    #[error("response to request {got:?}, we sent {sent:?}")]
    RequestIdMismatch {
        /// Our request id.
        sent: String,
        /// Theirs.
        got: String,
    },
    /// The response has no status code.
    #[error("response without status code")]
    MissingStatusCode,
    /// More messages than the page size asked.
    #[error("page of {got} messages, asked at most {asked}")]
    OversizedPage {
        /// Messages in the page.
        got: usize,
        /// Our page size.
        asked: u64,
    },
    /// A message key is not 32 bytes.
    #[error("message hash of {len} bytes")]
    BadHashLength {
        /// Its length.
        len: usize,
    },
    /// The hash given is not the hash of the message given.
    #[error("message hash {claimed} does not match the message (hash {computed})")]
    HashMismatch {
        /// Hex of the hash the peer gave.
        claimed: String,
        /// Hex of the hash of the message.
        computed: String,
    },
    /// A key without the message we asked for.
    #[error("message {hash} without data")]
    MissingMessage {
        /// Hex of its hash.
        hash: String,
    },
    /// A message of another pubsub topic, content topic or time than asked.
    #[error(
        "message {hash} (pubsub topic {pubsub_topic:?}, content topic {content_topic:?}, timestamp {timestamp}) is outside the query"
    )]
    OutsideQuery {
        /// Hex of its hash.
        hash: String,
        /// Its pubsub topic.
        pubsub_topic: String,
        /// Its content topic.
        content_topic: String,
        /// Its timestamp (0 = none).
        timestamp: i64,
    },
    /// A message the relay would reject.
    #[error("message {hash} is invalid")]
    InvalidMessage {
        /// Hex of its hash.
        hash: String,
        /// Why.
        #[source]
        rejection: Rejection,
    },
    /// The cursor is not 32 bytes.
    #[error("cursor of {len} bytes")]
    BadCursor {
        /// Its length.
        len: usize,
    },
    /// The peer keeps returning cursors without new messages (or a cursor it returned before).
    #[error("endless paging: {pages} pages without a new message")]
    EndlessPaging {
        /// Fruitless pages in a row.
        pages: usize,
    },
    /// More pages than [`StoreClientConfig::max_pages`].
    #[error("more than {max} pages")]
    TooManyPages {
        /// The limit.
        max: usize,
    },
    /// More messages than [`StoreClientConfig::max_messages`].
    #[error("more than {max} messages")]
    TooManyMessages {
        /// The limit.
        max: usize,
    },
}

/// A store query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The query is invalid; nothing was sent.
    #[error("invalid store query: {0}")]
    InvalidQuery(String),
    /// The address names no peer id (`…/p2p/<id>` is needed to open a stream).
    #[error("store node address {addr} has no /p2p/<peer id>")]
    MissingPeerId {
        /// The address.
        addr: String,
    },
    /// Dialing the store node failed.
    #[error("dialing the store node")]
    Dial(#[from] DialError),
    /// The peer does not speak `/vac/waku/store-query/3.0.0`.
    #[error("{peer} does not serve {STORE_QUERY_PROTOCOL}")]
    Unsupported {
        /// The peer.
        peer: String,
    },
    /// The stream broke.
    #[error("store stream with {peer}: {reason}")]
    Stream {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The peer did not answer a page in time (stalling).
    #[error("{peer} did not answer page {page} within {after:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// The page (1-based).
        page: usize,
        /// The page timeout.
        after: Duration,
    },
    /// The peer refused the query (status code other than 200).
    #[error("{peer} refused the store query: {code} {desc}")]
    Refused {
        /// The peer.
        peer: String,
        /// The status code.
        code: u32,
        /// The status description.
        desc: String,
    },
    /// The peer broke the protocol or answered something else than asked.
    #[error("store node {peer} lied on page {page}")]
    Lying {
        /// The peer.
        peer: String,
        /// The page (1-based).
        page: usize,
        /// What it did.
        #[source]
        lie: StoreLie,
    },
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}

impl StoreError {
    /// Whether the peer misbehaved (lied, stalled, paged endlessly), as opposed to a refusal or
    /// a failure of the network or of our side.
    #[must_use]
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, StoreError::Lying { .. } | StoreError::Timeout { .. })
    }
}

/// What one query brought.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreOutcome {
    /// The messages, each once, in the order served.
    pub messages: Vec<StoredMessage>,
    /// Pages read.
    pub pages: usize,
    /// Messages served again (same hash) and skipped.
    pub duplicates: usize,
    /// Time from the dial to the last page.
    pub elapsed: Duration,
}

/// A store v3 client on a node.
#[derive(Debug, Clone)]
pub struct StoreClient {
    handle: WakuHandle,
    config: StoreClientConfig,
}

impl StoreClient {
    /// A client on the node of `handle`.
    #[must_use]
    pub fn new(handle: &WakuHandle, config: StoreClientConfig) -> Self {
        Self { handle: handle.clone(), config }
    }

    /// Every message of `query` that the store node at `peer` (a multiaddr ending in
    /// `/p2p/<peer id>`) holds, each once. Use [`StoreClient::query_with`] to keep the pages
    /// that arrived before an error.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn query(&self, peer: &str, query: &StoreQuery) -> Result<StoreOutcome, StoreError> {
        let mut messages = Vec::new();
        let mut outcome = self.query_with(peer, query, |page| messages.extend(page)).await?;
        outcome.messages = messages;
        Ok(outcome)
    }

    /// Like [`StoreClient::query`], but hands each checked page's new messages to `on_page` as it
    /// arrives; the returned outcome's `messages` is empty.
    ///
    /// # Errors
    /// [`StoreError`]; the pages handed on before it stay valid.
    pub async fn query_with(
        &self,
        peer: &str,
        query: &StoreQuery,
        mut on_page: impl FnMut(Vec<StoredMessage>),
    ) -> Result<StoreOutcome, StoreError> {
        query.validate().map_err(StoreError::InvalidQuery)?;
        let started = Instant::now();
        let peer_id = self.connect(peer).await?;
        let peer_name = peer_id.to_string();
        let page_size = self.config.page_size.clamp(1, MAX_PAGE_SIZE);
        let mut request = StoreQueryRequest {
            request_id: String::new(),
            include_data: true,
            pubsub_topic: Some(query.pubsub_topic.clone()),
            content_topics: query.content_topics.clone(),
            time_start: query.time_start,
            time_end: query.time_end,
            message_hashes: Vec::new(),
            pagination_cursor: None,
            pagination_forward: self.config.forward,
            pagination_limit: Some(page_size),
        };
        let mut seen: HashSet<MessageHash> = HashSet::new();
        let mut cursors: HashSet<Vec<u8>> = HashSet::new();
        let mut outcome = StoreOutcome::default();
        let mut fruitless = 0usize;
        loop {
            let page = outcome.pages + 1;
            if page > self.config.max_pages {
                return Err(lie(&peer_name, page, StoreLie::TooManyPages { max: self.config.max_pages }));
            }
            request.request_id = new_request_id();
            let response = tokio::time::timeout(self.config.page_timeout, self.exchange(peer_id, &request))
                .await
                .map_err(|_| {
                    tracing::warn!(peer = %peer_name, page, "store node stalled");
                    StoreError::Timeout { peer: peer_name.clone(), page, after: self.config.page_timeout }
                })?
                .map_err(|err| err.into_store_error(&peer_name, page))?;
            outcome.pages = page;
            let checked = check_response(
                query,
                &request,
                page_size,
                &self.config.validation,
                &response,
                &mut seen,
                &mut outcome.duplicates,
            )
            .map_err(|l| lie(&peer_name, page, l))?;
            let (fresh, cursor) = checked.map_err(|(code, desc)| {
                tracing::debug!(peer = %peer_name, code, %desc, "store query refused");
                StoreError::Refused { peer: peer_name.clone(), code, desc }
            })?;
            if seen.len() > self.config.max_messages {
                return Err(lie(&peer_name, page, StoreLie::TooManyMessages { max: self.config.max_messages }));
            }
            fruitless = if fresh.is_empty() { fruitless + 1 } else { 0 };
            if !fresh.is_empty() {
                on_page(fresh);
            }
            let Some(cursor) = cursor else { break };
            if self.config.stop_after_pages.is_some_and(|most| page >= most) {
                break;
            }
            if !cursors.insert(cursor.clone()) || fruitless >= self.config.max_fruitless_pages {
                return Err(lie(&peer_name, page, StoreLie::EndlessPaging { pages: fruitless.max(1) }));
            }
            request.pagination_cursor = Some(cursor);
        }
        outcome.elapsed = started.elapsed();
        tracing::debug!(peer = %peer_name, pages = outcome.pages, messages = seen.len(), duplicates = outcome.duplicates,
            elapsed = ?outcome.elapsed, "store query done");
        Ok(outcome)
    }

    /// Sends one raw `request` to the store node at `peer` and returns its response unchecked
    /// (beyond decoding and [`StoreClientConfig::max_response_size`]); for lookups by hash and
    /// for tests. An empty `request_id` is replaced by a fresh one.
    ///
    /// # Errors
    /// [`StoreError`] (dial, stream, timeout, undecodable or oversized response).
    pub async fn request(&self, peer: &str, mut request: StoreQueryRequest) -> Result<StoreQueryResponse, StoreError> {
        let peer_id = self.connect(peer).await?;
        let peer_name = peer_id.to_string();
        if request.request_id.is_empty() {
            request.request_id = new_request_id();
        }
        let bytes = tokio::time::timeout(self.config.page_timeout, self.exchange(peer_id, &request))
            .await
            .map_err(|_| StoreError::Timeout { peer: peer_name.clone(), page: 1, after: self.config.page_timeout })?
            .map_err(|err| err.into_store_error(&peer_name, 1))?;
        StoreQueryResponse::decode(bytes.as_slice())
            .map_err(|err| lie(&peer_name, 1, StoreLie::Undecodable(err.to_string())))
    }

    /// Dials `peer` (a multiaddr with `/p2p/<id>`) unless connected; returns its peer id.
    async fn connect(&self, peer: &str) -> Result<libp2p::PeerId, StoreError> {
        let peer_id = peer_id_of(peer)?;
        tokio::time::timeout(self.config.dial_timeout, self.handle.dial(peer))
            .await
            .map_err(|_| DialError::Failed { addr: peer.to_owned(), reason: "dial timed out".to_owned() })??;
        Ok(peer_id)
    }

    /// One stream: request out, response in.
    async fn exchange(&self, peer: libp2p::PeerId, request: &StoreQueryRequest) -> Result<Vec<u8>, ExchangeError> {
        let mut control = self.handle.streams().0.clone();
        let mut stream =
            control.open_stream(peer, StreamProtocol::new(STORE_QUERY_PROTOCOL)).await.map_err(|err| match err {
                OpenStreamError::UnsupportedProtocol(_) => ExchangeError::Unsupported,
                other => ExchangeError::Stream(other.to_string()),
            })?;
        write_frame(&mut stream, &request.encode_to_vec()).await.map_err(|e| ExchangeError::Stream(e.to_string()))?;
        let bytes = read_frame(&mut stream, self.config.max_response_size).await.map_err(|err| match err {
            FrameError::TooLarge { size, max } => ExchangeError::Lie(StoreLie::OversizedResponse { size, max }),
            FrameError::BadPrefix => ExchangeError::Lie(StoreLie::Undecodable("bad length prefix".to_owned())),
            FrameError::Io(err) => ExchangeError::Stream(err.to_string()),
        })?;
        let _ = stream.close().await;
        Ok(bytes)
    }
}

/// A checked response: its new messages and cursor, or the refusal (status code, description).
type Page = Result<(Vec<StoredMessage>, Option<Vec<u8>>), (u32, String)>;

/// Checks one response against the query and what was seen on earlier pages.
fn check_response(
    query: &StoreQuery,
    request: &StoreQueryRequest,
    page_size: u64,
    validation: &ValidationConfig,
    bytes: &[u8],
    seen: &mut HashSet<MessageHash>,
    duplicates: &mut usize,
) -> Result<Page, StoreLie> {
    let response = StoreQueryResponse::decode(bytes).map_err(|err| StoreLie::Undecodable(err.to_string()))?;
    if !response.request_id.is_empty() && response.request_id != request.request_id {
        return Err(StoreLie::RequestIdMismatch { sent: request.request_id.clone(), got: response.request_id });
    }
    let code = response.status_code.ok_or(StoreLie::MissingStatusCode)?;
    if code != status::OK {
        return Ok(Err((code, response.status_desc.unwrap_or_default())));
    }
    if response.messages.len() as u64 > page_size {
        return Err(StoreLie::OversizedPage { got: response.messages.len(), asked: page_size });
    }
    let mut fresh = Vec::new();
    for entry in response.messages {
        let claimed = entry.message_hash.unwrap_or_default();
        let claimed: MessageHash =
            claimed.as_slice().try_into().map_err(|_| StoreLie::BadHashLength { len: claimed.len() })?;
        let Some(message) = entry.message else {
            return Err(StoreLie::MissingMessage { hash: hex::encode(claimed) });
        };
        let pubsub_topic = entry.pubsub_topic.unwrap_or_default();
        let stored = StoredMessage::new(pubsub_topic, message);
        if stored.hash != claimed {
            return Err(StoreLie::HashMismatch { claimed: hex::encode(claimed), computed: hex::encode(stored.hash) });
        }
        if !query.matches(&stored.pubsub_topic, &stored.message) {
            return Err(StoreLie::OutsideQuery {
                hash: hex::encode(claimed),
                pubsub_topic: stored.pubsub_topic,
                content_topic: stored.message.content_topic,
                timestamp: stored.message.timestamp.unwrap_or(0),
            });
        }
        validate_message(&stored.message, crate::timestamp_now(), validation)
            .map_err(|rejection| StoreLie::InvalidMessage { hash: hex::encode(claimed), rejection })?;
        if seen.insert(stored.hash) {
            fresh.push(stored);
        } else {
            *duplicates += 1;
        }
    }
    let cursor = match response.pagination_cursor {
        Some(cursor) if cursor.is_empty() => None,
        Some(cursor) if cursor.len() != 32 => return Err(StoreLie::BadCursor { len: cursor.len() }),
        other => other,
    };
    Ok(Ok((fresh, cursor)))
}

enum ExchangeError {
    Unsupported,
    Stream(String),
    Lie(StoreLie),
}

impl ExchangeError {
    fn into_store_error(self, peer: &str, page: usize) -> StoreError {
        match self {
            ExchangeError::Unsupported => StoreError::Unsupported { peer: peer.to_owned() },
            ExchangeError::Stream(reason) => StoreError::Stream { peer: peer.to_owned(), reason },
            ExchangeError::Lie(l) => lie(peer, page, l),
        }
    }
}

fn lie(peer: &str, page: usize, lie: StoreLie) -> StoreError {
    tracing::warn!(%peer, page, %lie, "store node misbehaved");
    StoreError::Lying { peer: peer.to_owned(), page, lie }
}

fn peer_id_of(addr: &str) -> Result<libp2p::PeerId, StoreError> {
    let missing = || StoreError::MissingPeerId { addr: addr.to_owned() };
    let multiaddr: libp2p::Multiaddr = addr.parse().map_err(|_| missing())?;
    multiaddr
        .iter()
        .find_map(|protocol| match protocol {
            libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
            _ => None,
        })
        .ok_or_else(missing)
}

/// A fresh random request id (hex of 16 bytes, as go-waku).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!("{:?}{}", Instant::now(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use chs_proto::waku::store::WakuMessageKeyValue;

    use super::*;

    fn request() -> StoreQueryRequest {
        StoreQueryRequest { request_id: "abc".to_owned(), include_data: true, ..StoreQueryRequest::default() }
    }

    fn entry(index: i64) -> WakuMessageKeyValue {
        let message = chs_proto::waku::WakuMessage {
            payload: vec![1, 2, 3],
            content_topic: "/t/1/a/proto".to_owned(),
            timestamp: Some(1_000 + index),
            ..Default::default()
        };
        let stored = StoredMessage::new("/waku/2/rs/16/32", message);
        WakuMessageKeyValue {
            message_hash: Some(stored.hash.to_vec()),
            message: Some(stored.message),
            pubsub_topic: Some(stored.pubsub_topic),
        }
    }

    fn ok(messages: Vec<WakuMessageKeyValue>, cursor: Option<Vec<u8>>) -> StoreQueryResponse {
        StoreQueryResponse {
            request_id: "abc".to_owned(),
            status_code: Some(status::OK),
            status_desc: None,
            messages,
            pagination_cursor: cursor,
        }
    }

    fn check(response: &StoreQueryResponse, page_size: u64) -> Result<Page, StoreLie> {
        let query = StoreQuery::new("/waku/2/rs/16/32", ["/t/1/a/proto"]);
        let (mut seen, mut duplicates) = (HashSet::new(), 0);
        check_response(
            &query,
            &request(),
            page_size,
            &StoreClientConfig::default().validation,
            &response.encode_to_vec(),
            &mut seen,
            &mut duplicates,
        )
    }

    #[test]
    fn store_client_refuses_protocol_lies() {
        let honest = ok(vec![entry(1), entry(2)], Some(vec![0; 32]));
        assert!(matches!(check(&honest, 2), Ok(Ok((fresh, Some(_)))) if fresh.len() == 2));
        assert_eq!(check(&honest, 1), Err(StoreLie::OversizedPage { got: 2, asked: 1 }));
        let other = StoreQueryResponse { request_id: "xyz".to_owned(), ..honest.clone() };
        assert!(matches!(check(&other, 2), Err(StoreLie::RequestIdMismatch { .. })));
        let no_status = StoreQueryResponse { status_code: None, ..honest.clone() };
        assert_eq!(check(&no_status, 2), Err(StoreLie::MissingStatusCode));
        let short_cursor = StoreQueryResponse { pagination_cursor: Some(vec![1; 5]), ..honest.clone() };
        assert_eq!(check(&short_cursor, 2), Err(StoreLie::BadCursor { len: 5 }));
        let mut keys_only = honest.clone();
        keys_only.messages[0].message = None;
        assert!(matches!(check(&keys_only, 2), Err(StoreLie::MissingMessage { .. })));
        let mut short_hash = honest.clone();
        short_hash.messages[1].message_hash = Some(vec![1; 31]);
        assert_eq!(check(&short_hash, 2), Err(StoreLie::BadHashLength { len: 31 }));
        let mut empty_payload = honest.clone();
        let mut bad = entry(3);
        if let Some(message) = bad.message.as_mut() {
            message.payload.clear();
            bad.message_hash = Some(chs_proto::waku::message_hash("/waku/2/rs/16/32", message).to_vec());
        }
        empty_payload.messages.push(bad);
        assert!(matches!(check(&empty_payload, 3), Err(StoreLie::InvalidMessage { .. })));
    }

    #[test]
    fn store_client_skips_duplicates_within_a_page() {
        let query = StoreQuery::new("/waku/2/rs/16/32", ["/t/1/a/proto"]);
        let (mut seen, mut duplicates) = (HashSet::new(), 0);
        let response = ok(vec![entry(1), entry(1), entry(2)], None);
        let page = check_response(
            &query,
            &request(),
            3,
            &StoreClientConfig::default().validation,
            &response.encode_to_vec(),
            &mut seen,
            &mut duplicates,
        );
        assert!(matches!(page, Ok(Ok((fresh, None))) if fresh.len() == 2));
        assert_eq!(duplicates, 1);
    }
}
