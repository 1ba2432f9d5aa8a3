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
use chs_status::description::{NON_PROTECTED_PUBSUB_TOPIC, shard_info_chat_id};
use chs_status::{ChatKeyRing, Topic};
use chs_store::{Store, WirePageQuery};
use chs_waku::store::{
    BackendError, BackendQuery, MAX_CONTENT_TOPICS, StoreBackend, StoreClient, StoreClientConfig, StoreError,
    StoreQuery, StoreServer, StoreServerConfig,
};
use chs_waku::{MessageId, NodeEvent, PeerId, ReceivedMessage, WakuMessage};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::Command;
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

/// Oldest first, every page (`newest_pages: None`), or newest first, at most `newest_pages`.
fn client(services: &Services, newest_pages: Option<usize>) -> StoreClient {
    let store = &services.config.waku.store;
    StoreClient::new(
        &services.waku,
        StoreClientConfig {
            page_size: store.page_size,
            forward: newest_pages.is_none(),
            stop_after_pages: newest_pages,
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
#[allow(clippy::too_many_arguments)] // one call per kind of catch-up, each naming every part
async fn catch_up_topics(
    services: &Services,
    client: &StoreClient,
    id: CommunityId,
    what: &'static str,
    pubsub_topic: &str,
    content_topics: &[String],
    start: i64,
    mut on_page: impl FnMut(&str, Vec<chs_waku::store::StoredMessage>),
) -> CatchUp {
    let peers = store_peers(services).await;
    let mut total = CatchUp::default();
    if peers.is_empty() {
        tracing::info!(community_id = %id, what, "store catch-up: no store node configured or connected");
    }
    for chunk in content_topics.chunks(MAX_CONTENT_TOPICS) {
        let query = StoreQuery::new(pubsub_topic, chunk.iter().cloned()).with_time_range(Some(start), None);
        let one = catch_up(client, &peers, &query, &mut on_page).await;
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
        failures: total.failures.clone(),
        peer: total.peer.clone(),
        store_nodes: peers.len(),
        answered: total.peer.is_some(),
        elapsed_ms: u64::try_from(total.elapsed.as_millis()).unwrap_or(u64::MAX),
    });
    total
}

/// The store nodes to ask, in order: `[waku.store] peers` when given, else the connected peers
/// that announced store v3 (on the real network: the fleet's store nodes found by discovery).
async fn store_peers(services: &Services) -> Vec<String> {
    let configured = &services.config.waku.store.peers;
    if !configured.is_empty() {
        return configured.clone();
    }
    discovered_store_peers(services).await
}

/// Connected peers that announced store v3, as dialable multiaddrs ending in `/p2p/<id>`.
async fn discovered_store_peers(services: &Services) -> Vec<String> {
    let peers = services.waku.peers().await.unwrap_or_default();
    peers
        .into_iter()
        .filter(|p| p.connected && p.store)
        .filter_map(|p| {
            let addr = p.addrs.first()?;
            Some(if addr.contains("/p2p/") { addr.clone() } else { format!("{addr}/p2p/{}", p.peer_id) })
        })
        .collect()
}

/// When a member catches up again.
#[derive(Debug, Default)]
struct CatchUpTrigger {
    /// Configured store nodes (empty: discovered ones are used).
    configured: HashSet<PeerId>,
    /// Configured store nodes that disconnected since the last catch-up.
    lost: HashSet<PeerId>,
    /// Discovered store nodes connected now.
    connected: HashSet<PeerId>,
}

impl CatchUpTrigger {
    /// Whether `event` calls for a new catch-up: a configured store node back after a
    /// disconnection, or (without configured ones) a store node connecting while none was.
    fn on_event(&mut self, event: &NodeEvent) -> bool {
        match event {
            NodeEvent::PeerDisconnected { peer_id } => {
                if self.configured.contains(peer_id) {
                    self.lost.insert(*peer_id);
                }
                self.connected.remove(peer_id);
                false
            }
            NodeEvent::PeerConnected { peer_id, .. } => self.lost.remove(peer_id),
            NodeEvent::StorePeerConnected { peer_id } if self.configured.is_empty() => {
                let first = self.connected.is_empty();
                self.connected.insert(*peer_id);
                first
            }
            _ => false,
        }
    }
}

/// A member's catch-up (status-go syncs a community's default filters, the `-magnetlinks` chat
/// among them, from store nodes), at start and whenever a store node comes back (a configured
/// one reconnects, or, with none configured, a discovered store node connects while none was
/// connected):
///
/// 1. the description and the public shard info ([`catch_up_follow`]): newest first, the newest
///    valid one applied with the rules of live ones; if the channels or the shard changed, the
///    supervisor restarts the community's tasks (this one too, which then catches up again on
///    the new pubsub topic) and nothing more is fetched here;
/// 2. the magnetlink chats since the last seen magnetlink clock. What comes back goes to the
///    node's own receivers (`WakuHandle::deliver_stored`), so the member task takes it exactly as
///    live traffic.
pub(crate) async fn member_catch_up(
    services: Arc<Services>,
    community: Community,
    supervisor: mpsc::Sender<Command>,
    cancel: CancellationToken,
) {
    let configured = &services.config.waku.store.peers;
    let Ok(mut events) = services.waku.events() else { return };
    let mut trigger =
        CatchUpTrigger { configured: configured.iter().filter_map(|p| peer_id_of(p)).collect(), ..Default::default() };
    // Discovered store nodes already connected count as connected.
    if configured.is_empty() {
        for addr in discovered_store_peers(&services).await {
            trigger.connected.extend(peer_id_of(&addr));
        }
    }
    let mut due = !configured.is_empty() || !trigger.connected.is_empty();
    loop {
        if due {
            if catch_up_follow(&services, &community, &cancel).await {
                // The supervisor cancels this task with the others and starts them again.
                let _ = supervisor.send(Command::Restart(community.id)).await;
                return;
            }
            catch_up_links(&services, &community, &cancel).await;
        }
        if cancel.is_cancelled() {
            return;
        }
        // Wait for a store node to come back.
        due = false;
        while !due {
            let event = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(event) => due = trigger.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Pages of descriptions (and of shard infos) read at most per catch-up, newest first: the
/// control node republishes its description often, and only the newest valid one matters.
const FOLLOW_PAGES: usize = 2;

/// The description and the public shard info from store nodes, newest first (at most
/// [`FOLLOW_PAGES`] pages of each): of what comes back, the valid one with the highest clock (the
/// newest by timestamp among equal clocks) and every refused one go through the same path as
/// live messages (`follow::description`, `follow::shard`: verification, clock rules, counters,
/// signals); older valid ones are left out, and so is the newest if the stored one is as new (a
/// shard info) or newer (a description): they could only be refused as stale. True if the
/// channels or the shard changed.
async fn catch_up_follow(services: &Arc<Services>, community: &Community, cancel: &CancellationToken) -> bool {
    let id = community.id;
    let newest = client(services, Some(FOLLOW_PAGES));
    let start = window(services, None);
    let description_topic = Topic::from_chat_id(&id.description_chat_id()).content_topic();
    let shard_topic = Topic::from_chat_id(&shard_info_chat_id(&id)).content_topic();
    let mut descriptions: Vec<(String, chs_waku::store::StoredMessage)> = Vec::new();
    let mut shards: Vec<(String, chs_waku::store::StoredMessage)> = Vec::new();
    let keep = |into: &mut Vec<_>, peer: &str, page: Vec<chs_waku::store::StoredMessage>| {
        into.extend(page.into_iter().map(|m| (peer.to_owned(), m)));
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => return false,
        () = async {
            catch_up_topics(services, &newest, id, "description", &community.pubsub_topic, &[description_topic],
                start, |peer, page| keep(&mut descriptions, peer, page)).await;
            catch_up_topics(services, &newest, id, "shard-info", NON_PROTECTED_PUBSUB_TOPIC, &[shard_topic],
                start, |peer, page| keep(&mut shards, peer, page)).await;
        } => {}
    }
    let mut changed = false;
    for message in worth_applying(services, id, descriptions, Followed::Description).await {
        changed |= crate::follow::description(services, id, message).await;
    }
    for message in worth_applying(services, id, shards, Followed::Shard).await {
        changed |= crate::follow::shard(services, id, message).await;
    }
    changed
}

/// What [`catch_up_follow`] fetched.
#[derive(Clone, Copy)]
enum Followed {
    Description,
    Shard,
}

/// Of `fetched`, the refused ones and the valid one with the highest (clock, timestamp) unless
/// the stored clock makes it stale, as received messages, the valid one last.
async fn worth_applying(
    services: &Arc<Services>,
    id: CommunityId,
    fetched: Vec<(String, chs_waku::store::StoredMessage)>,
    kind: Followed,
) -> Vec<ReceivedMessage> {
    if fetched.is_empty() {
        return Vec::new();
    }
    let picked = services
        .db(move |c, s| {
            let info = c.info(s, &id)?;
            let mut best: Option<((u64, i64), usize)> = None;
            let mut chosen = Vec::new();
            for (i, (_, stored)) in fetched.iter().enumerate() {
                let clock = match kind {
                    Followed::Description => c.check_description(s, &id, &stored.message)?.map(|d| d.clock),
                    Followed::Shard => c.check_shard_info(s, &id, &stored.message)?.map(|info| info.clock),
                };
                match clock {
                    Ok(clock) => {
                        let key = (clock, stored.message.timestamp.unwrap_or(0));
                        if best.is_none_or(|(b, _)| key > b) {
                            best = Some((key, i));
                        }
                    }
                    Err(_) => chosen.push(i),
                }
            }
            // What the clock rules would refuse as stale is left out (status-go: a description
            // with an older clock is refused, a shard info unless its clock is newer).
            let fresh = |clock: u64| match kind {
                Followed::Description => info.description.as_ref().is_none_or(|d| clock >= d.clock),
                Followed::Shard => info.shard_info.as_ref().is_none_or(|sh| clock > sh.clock),
            };
            chosen.extend(best.filter(|((clock, _), _)| fresh(*clock)).map(|(_, i)| i));
            Ok(chosen.into_iter().filter_map(|i| fetched.get(i).cloned()).collect::<Vec<_>>())
        })
        .await;
    let picked = match picked {
        Ok(picked) => picked,
        Err(e) => {
            tracing::error!(community_id = %id, error = %e.chain(), "checking what the store catch-up brought failed");
            return Vec::new();
        }
    };
    picked
        .into_iter()
        .filter_map(|(peer, stored)| {
            Some(ReceivedMessage {
                message_id: MessageId::of_message(&stored.message),
                pubsub_topic: stored.pubsub_topic,
                message: stored.message,
                propagation_source: peer_id_of(&peer)?,
            })
        })
        .collect()
}

/// One member catch-up of the magnetlink chats.
async fn catch_up_links(services: &Arc<Services>, community: &Community, cancel: &CancellationToken) {
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
    let window = window(services, since);
    let oldest_first = client(services, None);
    tokio::select! {
        biased;
        () = cancel.cancelled() => return,
        _ = catch_up_topics(services, &oldest_first, id, "magnetlinks", &community.pubsub_topic, &topics, window,
            |peer, page| fetched.push((peer.to_owned(), page))) => {}
    }
    for (peer, page) in fetched {
        if let Some(from) = peer_id_of(&peer) {
            services.waku.deliver_stored(page, from, services.config.waku.store.timeout).await;
        }
    }
}

/// An owner's fill before a build (status-go re-syncs each community's channels from store
/// before archiving, from the latest stored timestamp or now − 30 days): the channels' messages
/// are fetched and stored exactly as live capture stores them, before this returns.
pub(crate) async fn fill_channels(services: &Arc<Services>, id: CommunityId) -> Result<usize, NodeError> {
    if services.config.waku.store.peers.is_empty() && discovered_store_peers(services).await.is_empty() {
        tracing::info!(community_id = %id, "no store node configured or connected: no fill from store before the build");
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
        &client(services, None),
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

    /// Issue 21 (store metrics): a running node that serves store reports its server's counters
    /// through its handle (what `/metrics` exports); a node that does not serve reports none.
    #[tokio::test]
    async fn node_handle_reports_store_server_counters() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::local(dir.path().join("served"));
        config.waku.store.serve = true;
        let node = crate::Node::start(config, Arc::new(crate::SystemClock)).await.unwrap();
        let handle = node.handle();
        assert_eq!(handle.store_server_stats().map(|s| s.pages_served), Some(0));
        let addr = handle.waku().listen_addrs().await.unwrap().remove(0);
        let client_node = WakuNode::start(Config { listen_addrs: Vec::new(), ..Config::default() }).await.unwrap();
        let client = StoreClient::new(&client_node, StoreClientConfig::default());
        let outcome = catch_up(&client, &[addr], &StoreQuery::new(TOPIC, [CHAT]), |_, _| {}).await;
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        let stats = handle.store_server_stats().unwrap();
        assert_eq!((stats.requests, stats.pages_served, stats.messages_served), (1, 1, 0), "{stats:?}");
        node.shutdown().await;
        assert_eq!(handle.store_server_stats(), None, "the server stops with the node");

        let mut config = crate::Config::local(dir.path().join("plain"));
        config.waku.store.serve = false;
        let plain = crate::Node::start(config, Arc::new(crate::SystemClock)).await.unwrap();
        assert_eq!(plain.handle().store_server_stats(), None);
        plain.shutdown().await;
    }
}
