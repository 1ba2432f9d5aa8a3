//! Store v3 on the node: the message store served to store clients
//! ([`MessageStoreBackend`], the `chs_waku::store::StoreBackend` over chs-store), and catching up
//! from store nodes ([`catch_up`]).
//!
//! A row can be served only if it still holds the message as it was relayed: its wire payload
//! (`raw_payload`, or `payload` when they are the same), content topic, version, meta and ns
//! timestamp, checked by recomputing the 14/WAKU2 hash. Rows rebuilt from archives (a member's
//! import) do not, and are never served.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chs_community::{Community, CommunityId};
use chs_status::ChatKeyRing;
use chs_store::{Store, WirePageQuery};
use chs_waku::store::{
    BackendError, BackendQuery, MAX_CONTENT_TOPICS, StoreBackend, StoreClient, StoreClientConfig, StoreError,
    StoreQuery, StoreServer, StoreServerConfig,
};
use chs_waku::{MessageId, NodeEvent, PeerId, ReceivedMessage, WakuMessage};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::services::Services;
use crate::signal::Signal;

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

/// Reads of [`MessageStoreBackend::query`] per page at most.
const MAX_SCANS_PER_PAGE: usize = 8;

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
        // SQL leaves out rows rebuilt from archives; a row whose hash does not recompute (a bug,
        // a hand-edited database) is skipped, reading on until the page is full or the rows end,
        // at most a few pages' worth of rows per request.
        for _ in 0..MAX_SCANS_PER_PAGE {
            let page = store
                .page_in_wire_order(&WirePageQuery {
                    pubsub_topic: &query.criteria.pubsub_topic,
                    content_topics: &query.criteria.content_topics,
                    start_ns: query.criteria.time_start,
                    end_ns: query.criteria.time_end,
                    after,
                    forward: query.forward,
                    limit: query.limit,
                    relayed_only: true,
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
    mut on_page: impl FnMut(&str, Vec<chs_waku::store::StoredMessage>),
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
                    on_page(peer, fresh);
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

/// The peer id at the end of a store node's multiaddr.
fn peer_id_of(addr: &str) -> Option<PeerId> {
    addr.rsplit("/p2p/").next()?.parse().ok()
}

/// Starts the store v3 server over the message store, if `[waku.store] serve` is on.
pub(crate) fn serve(services: &Services) -> Result<Option<StoreServer>, NodeError> {
    if !services.config.waku.store.serve {
        return Ok(None);
    }
    let backend = Arc::new(MessageStoreBackend::open(&services.config.db_path())?);
    let server = StoreServer::start(&services.waku, backend, StoreServerConfig::default())?;
    tracing::info!("serving store v3 from the message store");
    Ok(Some(server))
}

fn client(services: &Services) -> StoreClient {
    let store = &services.config.waku.store;
    StoreClient::new(
        &services.waku,
        StoreClientConfig {
            page_size: store.page_size,
            dial_timeout: store.timeout,
            page_timeout: store.timeout,
            ..StoreClientConfig::default()
        },
    )
}

/// Where a catch-up starts (ns): `since_ns`, or without it now − lookback. It has no end: what
/// the store node holds up to its present (its clock, not ours, dates the newest messages).
fn window(services: &Services, since_ns: Option<i64>) -> i64 {
    let now_ns = i64::try_from(services.clock.now_ms()).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000);
    let lookback = i64::try_from(services.config.waku.store.lookback.as_nanos()).unwrap_or(i64::MAX);
    since_ns.unwrap_or_else(|| now_ns.saturating_sub(lookback))
}

/// Queries every chunk of at most [`MAX_CONTENT_TOPICS`] of `content_topics`, and publishes one
/// [`Signal::StoreCatchUp`] for all of them.
async fn catch_up_topics(
    services: &Services,
    id: CommunityId,
    what: &'static str,
    pubsub_topic: &str,
    content_topics: &[String],
    start: i64,
    mut on_page: impl FnMut(&str, Vec<chs_waku::store::StoredMessage>),
) -> CatchUp {
    let client = client(services);
    let peers = &services.config.waku.store.peers;
    let mut total = CatchUp::default();
    for chunk in content_topics.chunks(MAX_CONTENT_TOPICS) {
        let query = StoreQuery::new(pubsub_topic, chunk.iter().cloned()).with_time_range(Some(start), None);
        let one = catch_up(&client, peers, &query, &mut on_page).await;
        total.messages += one.messages;
        total.pages += one.pages;
        total.peer = total.peer.or(one.peer);
        total.failures.extend(one.failures);
        total.elapsed += one.elapsed;
    }
    tracing::info!(community_id = %id, what, messages = total.messages, pages = total.pages,
        elapsed_ms = total.elapsed.as_millis(), peer = ?total.peer, failures = ?total.failures, "store catch-up");
    services.publish(Signal::StoreCatchUp {
        community_id: id,
        what,
        messages: total.messages,
        pages: total.pages,
        failed_peers: total.failures.len(),
        elapsed_ms: u64::try_from(total.elapsed.as_millis()).unwrap_or(u64::MAX),
    });
    total
}

/// A member's catch-up (status-go syncs a community's default filters, the `-magnetlinks` chat
/// among them, from store nodes): the magnetlink chats since the last seen magnetlink clock, at
/// start and whenever a store node reconnects. What comes back goes to the node's own receivers
/// (`WakuHandle::deliver_stored`), so the member task takes it exactly as live traffic.
pub(crate) async fn member_catch_up(services: Arc<Services>, community: Community, cancel: CancellationToken) {
    let peers = &services.config.waku.store.peers;
    if peers.is_empty() {
        return;
    }
    let store_peers: HashSet<PeerId> = peers.iter().filter_map(|p| peer_id_of(p)).collect();
    let Ok(mut events) = services.waku.events() else { return };
    let mut lost: HashSet<PeerId> = HashSet::new();
    loop {
        let id = community.id;
        let since = match services.db(move |c, s| Ok(c.archive_info(s, &id)?.magnetlink_clock)).await {
            Ok(0) => None,
            Ok(clock_ms) => Some(i64::try_from(clock_ms).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000)),
            Err(e) => {
                tracing::warn!(community_id = %id, error = %e.chain(), "no magnetlink clock: catch-up skipped");
                return;
            }
        };
        let topics = chs_status::ids::magnetlink_content_topics(&community.id);
        let mut fetched: Vec<(String, Vec<chs_waku::store::StoredMessage>)> = Vec::new();
        let window = window(&services, since);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = catch_up_topics(&services, id, "magnetlinks", &community.pubsub_topic, &topics, window,
                |peer, page| fetched.push((peer.to_owned(), page))) => {}
        }
        for (peer, page) in fetched {
            if let Some(from) = peer_id_of(&peer) {
                services.waku.deliver_stored(page, from, services.config.waku.store.timeout).await;
            }
        }
        // Wait for a store node to come back after a disconnection.
        loop {
            let event = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(NodeEvent::PeerDisconnected { peer_id }) if store_peers.contains(&peer_id) => {
                    lost.insert(peer_id);
                }
                Ok(NodeEvent::PeerConnected { peer_id, .. }) if lost.remove(&peer_id) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// An owner's fill before a build (status-go re-syncs each community's channels from store
/// before archiving, from the latest stored timestamp or now − 30 days): the channels' messages
/// are fetched and stored exactly as live capture stores them, before this returns.
pub(crate) async fn fill_channels(services: &Arc<Services>, id: CommunityId) -> Result<usize, NodeError> {
    if services.config.waku.store.peers.is_empty() {
        return Ok(0);
    }
    let (community, last_secs) = services
        .db(move |c, s| {
            let community = c.get(s, &id)?;
            let topics = c.channel_topics(s, &id)?;
            Ok((community, s.last_timestamp_secs(&topics)?))
        })
        .await?;
    let chats = community.chats.clone();
    let s2 = Arc::clone(services);
    let ring = services
        .blocking(move || Ok(ChatKeyRing::from_chat_ids(chats.iter().map(String::as_str), &s2.chat_keys)))
        .await?;
    let content_topics: Vec<String> =
        community.chats.iter().map(|chat| chs_status::Topic::from_chat_id(chat).content_topic()).collect();
    let since =
        last_secs.map(|secs| i64::try_from(secs).unwrap_or(i64::MAX / 1_000_000_000).saturating_mul(1_000_000_000));
    let received = i64::try_from(services.clock.now_ms()).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    catch_up_topics(
        services,
        id,
        "channels",
        &community.pubsub_topic,
        &content_topics,
        window(services, since),
        |peer, page| {
            let Some(from) = peer_id_of(peer) else { return };
            for stored in page {
                let received_message = ReceivedMessage {
                    message_id: MessageId::of_message(&stored.message),
                    pubsub_topic: stored.pubsub_topic,
                    message: stored.message,
                    propagation_source: from,
                };
                rows.extend(crate::capture::to_row(&id, &received_message, &ring, received));
            }
        },
    )
    .await;
    if rows.is_empty() {
        return Ok(0);
    }
    let count = services.db(move |_, s| Ok(s.insert_batch(&rows)?)).await?;
    if count > 0 {
        services.publish(Signal::MessagesCaptured { community_id: id, messages: count });
    }
    Ok(count)
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
            catch_up(&client, &[dead, addr.clone()], &StoreQuery::new(TOPIC, [CHAT]), |_, page| got.extend(page)).await;
        assert_eq!(outcome.peer.as_deref(), Some(addr.as_str()));
        assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
        assert_eq!((outcome.messages, outcome.pages), (25, 3));
        let got_wires: Vec<_> = got.into_iter().map(|m| m.message).collect();
        assert_eq!(got_wires, wires, "the relayed messages, in order, the imported row left out");
        assert_eq!(server.stats().pages_served, 3);
    }
}
