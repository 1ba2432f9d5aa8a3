//! The node: one store, one community manager, one torrent session and one Waku node, and the
//! tasks that wire them (owner archive tasks, dispatcher, live capture, member pipelines).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chs_community::{Communities, Community, CommunityId};
use chs_status::ChatKeyCache;
use chs_store::Store;
use chs_torrent::TorrentNode;
use chs_waku::{WakuHandle, WakuNode};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{DataDirLock, NodeConfig};
use crate::error::NodeError;
use crate::signal::{Signal, SignalBus};
use crate::{capture, dispatch, member, owner};

/// A member download in progress, as shown by [`NodeHandle::status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadView {
    /// The magnet link being fetched.
    pub magnet_uri: String,
    /// What the download is doing (printed as `metadata`, `index`, `data`, `import`, `seed`).
    pub phase: DownloadPhase,
    /// Bytes of the current phase done.
    pub bytes_done: u64,
    /// Bytes of the current phase in all.
    pub bytes_total: u64,
}

/// The step a member download is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadPhase {
    /// Fetching the torrent's info dict from peers.
    Metadata,
    /// Fetching the `index` file.
    Index,
    /// Fetching the missing archives' byte ranges of `data`.
    Data,
    /// Importing the fetched archives.
    Import,
    /// Swapping the new folder in and seeding it.
    Seed,
}

impl std::fmt::Display for DownloadPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DownloadPhase::Metadata => "metadata",
            DownloadPhase::Index => "index",
            DownloadPhase::Data => "data",
            DownloadPhase::Import => "import",
            DownloadPhase::Seed => "seed",
        })
    }
}

/// What this node seeds for a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedView {
    /// Info hash, hex.
    pub info_hash: String,
    /// Bytes this node has of the torrent.
    pub have_bytes: u64,
    /// Size of the torrent.
    pub total_bytes: u64,
    /// Bytes uploaded to peers in this session.
    pub uploaded_bytes: u64,
    /// Connected peers.
    pub peers: usize,
}

/// One community's state, as `chs node status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityStatus {
    /// Community id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether this node holds the community key.
    pub control_node: bool,
    /// Whether this node has joined.
    pub joined: bool,
    /// Archives in the local archive folder.
    pub archives: usize,
    /// End of the last archive window built (control node), Unix seconds; 0 if none.
    pub last_archive_end: u64,
    /// Clock of the newest magnetlink (published or accepted), ms.
    pub magnetlink_clock: u64,
    /// Last magnet link fully fetched (member).
    pub last_magnetlink_uri: String,
    /// Magnet link accepted but not fully fetched yet (member).
    pub pending_magnetlink: Option<String>,
    /// What is seeded, if anything.
    pub seeding: Option<SeedView>,
    /// Download in progress (member).
    pub download: Option<DownloadView>,
    /// Archive ids recorded as downloaded.
    pub downloaded_archives: usize,
    /// Of those, imported.
    pub imported_archives: usize,
    /// Stored messages on the community's channel topics (for a member: the topics its
    /// archives list, minus refused ones).
    pub stored_messages: u64,
    /// Topics that imported archives named but that belong to another community of this node:
    /// refused at import (`0x` + 8 hex, sorted).
    pub refused_topics: Vec<String>,
    /// Messages refused with them, over all imported archives.
    pub refused_messages: u64,
}

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) bus: SignalBus,
    store: Arc<Mutex<Store>>,
    pub(crate) communities: Arc<Communities>,
    pub(crate) chat_keys: ChatKeyCache,
    pub(crate) torrent: Option<TorrentNode>,
    pub(crate) waku: WakuHandle,
    pub(crate) triggers: Mutex<HashMap<String, mpsc::Sender<()>>>,
    pub(crate) latest_magnet: Mutex<HashMap<String, String>>,
    /// Pubsub topic of each community with running tasks (filled at start; topics never change).
    pub(crate) pubsub_topics: Mutex<HashMap<String, String>>,
    pub(crate) downloads: Mutex<HashMap<String, DownloadView>>,
    /// Per community: cancels its tasks (leave), child of `cancel`.
    pub(crate) community_tasks: Mutex<HashMap<String, CancellationToken>>,
    pub(crate) cancel: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs `f` with the community manager and the store on the blocking pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce(&Communities, &mut Store) -> Result<T, NodeError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let communities = Arc::clone(&self.communities);
        tokio::task::spawn_blocking(move || {
            let mut store = lock(&store);
            f(&communities, &mut store)
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
    }

    pub(crate) fn archive_dir(&self, id: &CommunityId) -> PathBuf {
        self.config.archive_root().join(id.to_string())
    }

    pub(crate) fn torrent(&self) -> Result<&TorrentNode, NodeError> {
        self.torrent.as_ref().ok_or_else(|| NodeError::Task("torrents are disabled in the configuration".into()))
    }

    pub(crate) fn set_download(&self, id: &str, view: Option<DownloadView>) {
        let mut downloads = lock(&self.downloads);
        match view {
            Some(v) => downloads.insert(id.to_owned(), v),
            None => downloads.remove(id),
        };
    }
}

/// A running node. Dropping it without [`Node::shutdown`] stops its tasks abruptly (as a crash
/// would; nothing stored is lost).
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    waku: Option<WakuNode>,
    tasks: JoinSet<()>,
    /// Held until the node is dropped (after [`Node::shutdown`], or abruptly): no second node runs
    /// on the same data folder meanwhile.
    _data_dir_lock: DataDirLock,
}

/// A cheap, cloneable view of a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

impl Node {
    /// Opens the store, joins the configured communities, starts the torrent session and the
    /// Waku node, and spawns the tasks: for every community this node controls an archive task
    /// (seed existing archives, catch up, then one build per interval) and live capture; for
    /// every joined community a member pipeline; and the magnetlink dispatcher.
    ///
    /// Communities created or joined after the start are picked up at the next start.
    ///
    /// # Errors
    /// Bad configuration, unusable files, ports in use.
    pub async fn start(config: NodeConfig, clock: Arc<dyn Clock>) -> Result<Node, NodeError> {
        Node::start_with_bus(config, clock, SignalBus::default()).await
    }

    /// [`Node::start`] publishing on `bus`: subscribe to it first to see every signal, including
    /// those raised while the node starts (seeding existing archives, the catch-up build).
    ///
    /// # Errors
    /// As [`Node::start`].
    pub async fn start_with_bus(config: NodeConfig, clock: Arc<dyn Clock>, bus: SignalBus) -> Result<Node, NodeError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| NodeError::io("creating", &config.data_dir, e))?;
        // Before anything else touches the folder: a second node on it stops here.
        let data_dir_lock = DataDirLock::acquire(&config.data_dir)?;
        for dir in [config.archive_root(), config.torrent_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| NodeError::io("creating", &dir, e))?;
        }
        let db_path = config.db_path();
        let join: Vec<CommunityId> = config
            .communities
            .join
            .iter()
            .map(|id| CommunityId::parse(id).map_err(|e| NodeError::UnknownCommunity(format!("{id}: {e}"))))
            .collect::<Result<_, _>>()?;
        let (store, communities, list) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let mut store = Store::open(&db_path)?;
            let communities = Communities::open(&mut store)?;
            for id in &join {
                let joined = communities.get(&store, id).is_ok_and(|c| c.joined || c.is_control_node());
                if !joined {
                    communities.join(&mut store, id, None)?;
                }
            }
            let list = communities.list(&store)?;
            Ok((store, communities, list))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;

        let torrent = if config.torrent.enabled {
            let t = &config.torrent;
            let torrent_config = chs_torrent::NodeConfig {
                state_dir: config.data_dir.join("torrent-state"),
                listen_addr: Some(SocketAddr::new(t.listen_ip, t.port)),
                discovery: chs_torrent::Discovery {
                    dht: t.dht,
                    trackers: if t.trackers { chs_torrent::Discovery::status_go().trackers } else { Vec::new() },
                    magnet_trackers: t.trackers,
                    ..chs_torrent::Discovery::none()
                },
                persistence: true,
                fastresume: t.fastresume,
            };
            Some(TorrentNode::start(torrent_config).await?)
        } else {
            None
        };

        let mut pubsub_topics: Vec<String> = list.iter().map(|c| c.pubsub_topic.clone()).collect();
        pubsub_topics.sort();
        pubsub_topics.dedup();
        if pubsub_topics.is_empty() {
            pubsub_topics.push(chs_waku::DEFAULT_PUBSUB_TOPIC.to_owned());
        }
        let waku_config = chs_waku::Config {
            data_dir: Some(config.data_dir.join("waku")),
            listen_addrs: config.waku.listen.clone(),
            bootstrap_peers: config.waku.bootstrap.clone(),
            pubsub_topics,
            cluster_id: config.waku.cluster_id,
            heartbeat_interval: config.waku.heartbeat,
            ..chs_waku::Config::default()
        };
        let waku = match WakuNode::start(waku_config).await {
            Ok(w) => w,
            Err(e) => {
                if let Some(t) = &torrent {
                    t.shutdown().await;
                }
                return Err(e.into());
            }
        };

        let shared = Arc::new(Shared {
            config,
            clock,
            bus,
            store: Arc::new(Mutex::new(store)),
            communities: Arc::new(communities),
            chat_keys: ChatKeyCache::new(),
            torrent,
            waku: waku.handle(),
            triggers: Mutex::new(HashMap::new()),
            latest_magnet: Mutex::new(HashMap::new()),
            pubsub_topics: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            community_tasks: Mutex::new(HashMap::new()),
            cancel: CancellationToken::new(),
        });
        let mut tasks = JoinSet::new();
        // Subscribe before any owner task can publish a seeding signal.
        let dispatcher_rx = shared.bus.subscribe();
        let events = shared.waku.events().map_err(|_| NodeError::WakuStopped)?;
        tasks.spawn(dispatch::run(Arc::clone(&shared), dispatcher_rx, events));
        for community in list {
            spawn_community_tasks(&shared, &mut tasks, community)?;
        }
        Ok(Node { shared, waku: Some(waku), tasks, _data_dir_lock: data_dir_lock })
    }

    /// A handle for other tasks.
    #[must_use]
    pub fn handle(&self) -> NodeHandle {
        NodeHandle { shared: Arc::clone(&self.shared) }
    }

    /// Stops every task (cancelling downloads and builds at a safe point), the torrent session
    /// and the Waku node.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(t) = &self.shared.torrent {
            t.shutdown().await;
        }
        if let Some(w) = self.waku.take() {
            w.shutdown().await;
        }
    }
}

fn spawn_community_tasks(shared: &Arc<Shared>, tasks: &mut JoinSet<()>, community: Community) -> Result<(), NodeError> {
    let id = community.id;
    if !community.joined {
        return Ok(());
    }
    let token = shared.cancel.child_token();
    lock(&shared.community_tasks).insert(id.to_string(), token.clone());
    lock(&shared.pubsub_topics).insert(id.to_string(), community.pubsub_topic.clone());
    if community.is_control_node() {
        let (tx, rx) = mpsc::channel(4);
        lock(&shared.triggers).insert(id.to_string(), tx);
        let receiver = capture::receiver(shared, &community)?;
        tasks.spawn(capture::run(Arc::clone(shared), community.clone(), receiver, token.clone()));
        if shared.torrent.is_some() {
            tasks.spawn(owner::run(Arc::clone(shared), community, rx, token));
        }
    } else if shared.torrent.is_some() {
        let receiver = member::receiver(shared, &community)?;
        tasks.spawn(member::run(Arc::clone(shared), community, receiver, token));
    }
    Ok(())
}

/// Per-community state read from a node's store and archive folders (no seeding information):
/// what [`NodeHandle::status`] shows, also usable while the node is not running.
///
/// # Errors
/// Store errors.
pub fn community_statuses(
    communities: &Communities,
    store: &Store,
    archive_root: &std::path::Path,
    downloads: &HashMap<String, DownloadView>,
) -> Result<Vec<CommunityStatus>, NodeError> {
    let mut out = Vec::new();
    for c in communities.list(store)? {
        let info = communities.archive_info(store, &c.id)?;
        let records = communities.archive_records(store, &c.id)?;
        let mut topics = communities.channel_topics(store, &c.id)?;
        let dir = archive_root.join(c.id.to_string());
        let entries = chs_archive::Reader::open(&dir).map(|r| r.entries().to_vec()).unwrap_or_default();
        // A member learns the channel topics from the archives' metadata.
        topics.extend(entries.iter().flat_map(chs_archive::ArchiveEntry::topics));
        let mut refused_topics: Vec<String> = records.iter().flat_map(|r| r.refused_topics.iter().cloned()).collect();
        refused_topics.sort();
        refused_topics.dedup();
        topics.retain(|t| !refused_topics.contains(&format!("0x{}", hex::encode(t))));
        topics.sort_unstable();
        topics.dedup();
        let archives = entries.len();
        out.push(CommunityStatus {
            id: c.id.to_string(),
            name: c.name.clone(),
            control_node: c.is_control_node(),
            joined: c.joined,
            archives,
            last_archive_end: info.last_archive_end_date,
            magnetlink_clock: info.magnetlink_clock,
            last_magnetlink_uri: info.last_magnetlink_uri.clone(),
            pending_magnetlink: communities.pending_link(store, &c.id)?.map(|p| p.magnet_uri),
            seeding: None,
            download: downloads.get(&c.id.to_string()).cloned(),
            downloaded_archives: records.len(),
            imported_archives: records.iter().filter(|r| r.imported).count(),
            stored_messages: store.count_on_topics(&topics)?,
            refused_messages: records.iter().map(|r| r.refused_messages).sum(),
            refused_topics,
        });
    }
    Ok(out)
}

impl NodeHandle {
    /// A receiver of every signal from now on.
    #[must_use]
    pub fn signals(&self) -> broadcast::Receiver<Signal> {
        self.shared.bus.subscribe()
    }

    /// The node's clock.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    /// The Waku node (publish, dial, listen addresses).
    #[must_use]
    pub fn waku(&self) -> &WakuHandle {
        &self.shared.waku
    }

    /// The address peers reach this node's torrent session at, if torrents are enabled.
    #[must_use]
    pub fn torrent_addr(&self) -> Option<SocketAddr> {
        self.shared.torrent.as_ref().and_then(TorrentNode::local_peer_addr)
    }

    /// Every socket the node listens on, one line each (`tcp 127.0.0.1:4001 bittorrent peers`,
    /// `udp 0.0.0.0:6881 dht`, `waku /ip4/127.0.0.1/tcp/60000`): the torrent session's (only
    /// what the configuration asks for) and the Waku node's listen addresses.
    pub async fn listening_sockets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .shared
            .torrent
            .as_ref()
            .map(|t| t.listening_sockets().iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        out.extend(self.shared.waku.listen_addrs().await.unwrap_or_default().into_iter().map(|a| format!("waku {a}")));
        out
    }

    /// The torrent session's incoming-connection counters, if torrents are enabled.
    #[must_use]
    pub fn torrent_listener_stats(&self) -> Option<chs_torrent::ListenerStats> {
        self.shared.torrent.as_ref().map(TorrentNode::listener_stats)
    }

    /// The node's configuration.
    #[must_use]
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// Runs an archive cycle of `id` now (control node): plan at the clock's time, build what is
    /// due, seed and announce. The result arrives as signals.
    ///
    /// # Errors
    /// [`NodeError::NotControlNode`] if no archive task runs for `id`.
    pub async fn trigger_archive(&self, id: &CommunityId) -> Result<(), NodeError> {
        let tx = lock(&self.shared.triggers).get(&id.to_string()).cloned();
        let tx = tx.ok_or_else(|| NodeError::NotControlNode(id.to_string()))?;
        tx.send(()).await.map_err(|_| NodeError::Cancelled)
    }

    /// Leaves `id` (status-go's `LeaveCommunity` for history archives): stops its tasks (archive
    /// building, capture, or the member pipeline, cancelling a download at a safe point), unseeds
    /// its torrent (`HistoryArchivesUnseeded`) and marks it not joined in the store. Stored
    /// messages and archive files are kept. A control node keeps its key.
    ///
    /// # Errors
    /// Store or torrent errors; [`NodeError::UnknownCommunity`] if the node does not know `id`.
    pub async fn leave(&self, id: &CommunityId) -> Result<(), NodeError> {
        let key = id.to_string();
        if let Some(token) = lock(&self.shared.community_tasks).remove(&key) {
            token.cancel();
        }
        lock(&self.shared.triggers).remove(&key);
        lock(&self.shared.latest_magnet).remove(&key);
        let id2 = *id;
        self.shared.db(move |c, s| Ok(c.leave(s, &id2)?)).await?;
        if let Some(t) = &self.shared.torrent
            && t.unseed(&key).await?.is_some()
        {
            self.shared.bus.publish(Signal::HistoryArchivesUnseeded { community_id: key });
        }
        Ok(())
    }

    /// Runs `f` with the community manager and the store (on the blocking pool).
    ///
    /// # Errors
    /// What `f` returns, or [`NodeError::Task`].
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce(&Communities, &mut Store) -> Result<T, NodeError> + Send + 'static,
    {
        self.shared.db(f).await
    }

    /// Per-community state.
    ///
    /// # Errors
    /// Store errors.
    pub async fn status(&self) -> Result<Vec<CommunityStatus>, NodeError> {
        let root = self.shared.config.archive_root();
        let downloads = lock(&self.shared.downloads).clone();
        let mut list =
            self.shared.db(move |communities, store| community_statuses(communities, store, &root, &downloads)).await?;
        if let Some(t) = &self.shared.torrent {
            for s in &mut list {
                s.seeding = t.status(&s.id).map(|st| SeedView {
                    info_hash: st.info_hash.to_hex(),
                    have_bytes: st.have_bytes,
                    total_bytes: st.total_bytes,
                    uploaded_bytes: st.uploaded_bytes,
                    peers: st.peers,
                });
            }
        }
        Ok(list)
    }
}
