//! The node: starts the services (store, community manager, torrent session, Waku node) and the
//! supervisor, the one task that owns which communities have running tasks. See
//! `docs/ARCHITECTURE.md` ("chs-node") for each role's loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chs_community::{Communities, Community, CommunityId};
use chs_store::Store;
use chs_torrent::TorrentNode;
use chs_waku::{WakuHandle, WakuNode};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, DataDirLock};
use crate::dispatch::{self, Dispatcher};
use crate::error::NodeError;
use crate::member::ProgressView;
use crate::services::Services;
use crate::signal::{Signal, SignalBus};
use crate::status::{CommunityStatus, DownloadView, SeedView, SwarmView, community_statuses};
use crate::{capture, follow, member, owner, waku_store};

/// A running node. Dropping it without [`Node::shutdown`] stops its tasks abruptly (as a crash
/// would; nothing stored is lost).
#[derive(Debug)]
pub struct Node {
    handle: NodeHandle,
    waku: Option<WakuNode>,
    /// The store v3 server over the message store (`[waku.store] serve`); stops when dropped.
    _store_server: Option<Arc<chs_waku::store::StoreServer>>,
    /// Held until the node is dropped (after [`Node::shutdown`], or abruptly): no second node runs
    /// on the same data folder meanwhile.
    _data_dir_lock: DataDirLock,
}

/// A cheap, cloneable view of a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    services: Arc<Services>,
    commands: mpsc::Sender<Command>,
    /// The store server [`Node`] holds (its counters; it stops with the node, not with handles).
    store_server: Option<std::sync::Weak<chs_waku::store::StoreServer>>,
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// What [`NodeHandle`] asks the supervisor.
pub(crate) enum Command {
    /// Run an archive cycle of a controlled community now.
    Trigger(CommunityId, Reply<()>),
    /// Start the tasks of a community joined (or made) since the start.
    Join(CommunityId, Reply<()>),
    /// Stop a community's tasks, unseed it, mark it not joined.
    Leave(CommunityId, Reply<()>),
    /// Announce a controlled community's latest magnetlink again.
    Reannounce(CommunityId, Reply<String>),
    /// The member downloads in progress.
    Downloads(oneshot::Sender<HashMap<CommunityId, DownloadView>>),
    /// The community's description changed its channels or its shard info moved it (from its
    /// follow task): stop its tasks and start them again from the stored community.
    Restart(CommunityId),
}

/// The running tasks of one community.
struct Running {
    cancel: CancellationToken,
    /// The owner task's build trigger (control node with torrents on).
    trigger: Option<mpsc::Sender<()>>,
    /// The member task's download progress.
    download: Option<watch::Receiver<Option<DownloadView>>>,
}

/// The supervisor: owns the map of communities with running tasks; handles [`Command`]s.
struct Supervisor {
    services: Arc<Services>,
    dispatcher: Dispatcher,
    /// The one watcher of the owner tasks' archive folders.
    folder_watch: owner::FolderWatch,
    running: HashMap<CommunityId, Running>,
    /// Our own command queue, handed to the follow tasks (they ask for [`Command::Restart`]).
    commands: mpsc::Sender<Command>,
}

impl Node {
    /// Opens the store, joins the configured communities, starts the torrent session and the
    /// Waku node, and spawns the tasks: for every community this node controls an archive task
    /// (seed existing archives, catch up, then one build per interval) and live capture; for
    /// every joined community a member task; the magnetlink dispatcher; the supervisor.
    ///
    /// Communities joined or created later start with [`NodeHandle::join`].
    ///
    /// # Errors
    /// Bad configuration, unusable files, ports in use.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Node, NodeError> {
        Node::start_with_bus(config, clock, SignalBus::default()).await
    }

    /// [`Node::start`] publishing on `bus`: subscribe to it first to see every signal, including
    /// those raised while the node starts (seeding existing archives, the catch-up build).
    ///
    /// # Errors
    /// As [`Node::start`].
    pub async fn start_with_bus(config: Config, clock: Arc<dyn Clock>, bus: SignalBus) -> Result<Node, NodeError> {
        Node::start_with_backends(config, clock, bus, Vec::new()).await
    }

    /// [`Node::start_with_bus`] with distribution backends made outside the node: each of
    /// `backends` serves its [`BackendKind`](crate::backend::BackendKind) in place of the one the
    /// configuration would make (when `[archive] backends` names that kind; others are dropped).
    /// The owner and member tasks use whatever backends the node has only through
    /// [`DistributionBackend`](crate::backend::DistributionBackend).
    ///
    /// # Errors
    /// As [`Node::start`].
    pub async fn start_with_backends(
        config: Config,
        clock: Arc<dyn Clock>,
        bus: SignalBus,
        backends: Vec<Arc<dyn crate::backend::DistributionBackend>>,
    ) -> Result<Node, NodeError> {
        let given = backends;
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
        let record_clock = Arc::clone(&clock);
        let (store, communities, list) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
            let mut store = Store::open(&db_path)?;
            // Record times come from the node's clock too (a simulated month stamps its records).
            let communities = Communities::open(&mut store)?.with_clock(Arc::new(move || record_clock.now_ms()));
            for id in &join {
                let joined = communities.get(&store, id).is_ok_and(|c| c.joined || c.is_control_node());
                if !joined {
                    communities.join(&mut store, id, None)?;
                }
            }
            let list = communities.list(&store)?;
            Ok((store, communities, list))
        })
        .await??;

        let torrent = if config.torrent.enabled {
            let t = &config.torrent;
            let torrent_config = chs_torrent::Config {
                state_dir: config.data_dir.join("torrent-state"),
                listen_addr: Some(SocketAddr::new(t.listen_ip, t.port)),
                discovery: torrent_discovery(t),
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
        } else {
            // Public shard infos travel there (status-go subscribes to it too, messenger.go:1788).
            pubsub_topics.push(chs_status::description::NON_PROTECTED_PUBSUB_TOPIC.to_owned());
        }
        let waku_config = chs_waku::Config {
            data_dir: Some(config.data_dir.join("waku")),
            listen_addrs: config.waku.listen.clone(),
            bootstrap_peers: config.waku.bootstrap.clone(),
            pubsub_topics,
            cluster_id: config.waku.cluster_id,
            heartbeat_interval: config.waku.heartbeat,
            dns_discovery: config.waku.dns_discovery.clone(),
            nameserver: config.waku.nameserver,
            discv5: config.waku.discv5,
            discv5_port: config.waku.discv5_port,
            discv5_bootstrap: config.waku.discv5_bootstrap.clone(),
            peer_exchange: config.waku.peer_exchange,
            target_peers: config.waku.target_peers,
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

        let backends = match make_backends(&config, torrent.as_ref(), given) {
            Ok(backends) => backends,
            Err(e) => {
                if let Some(t) = &torrent {
                    t.shutdown().await;
                }
                return Err(e);
            }
        };
        communities.set_usable_links(crate::backend::usable_links(&config.archive.backends));
        let services =
            Arc::new(Services::new(config, clock, bus, store, communities, torrent, backends, waku.handle()));
        let store_server = waku_store::serve(&services)?.map(Arc::new);
        let (dispatcher, dispatch_rx) = dispatch::channel();
        let events = services.waku.events().map_err(|_| NodeError::WakuStopped)?;
        services.tasks.spawn(dispatch::run(Arc::clone(&services), dispatch_rx, events));
        let folder_watch = owner::FolderWatch::default();
        if !services.backends.is_empty() {
            services.tasks.spawn(folder_watch.clone().run(Arc::clone(&services)));
        }
        let (commands, commands_rx) = mpsc::channel(16);
        let mut supervisor = Supervisor {
            services: Arc::clone(&services),
            dispatcher,
            folder_watch,
            running: HashMap::new(),
            commands: commands.clone(),
        };
        for community in list {
            supervisor.start_community(community)?;
        }
        services.tasks.spawn(supervisor.run(commands_rx));
        Ok(Node {
            handle: NodeHandle { services, commands, store_server: store_server.as_ref().map(Arc::downgrade) },
            waku: Some(waku),
            _store_server: store_server,
            _data_dir_lock: data_dir_lock,
        })
    }

    /// A handle for other tasks.
    #[must_use]
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops every task and waits for each (a download or a build stops at its next safe point;
    /// what is stored stays), then the torrent session and the Waku node.
    pub async fn shutdown(mut self) {
        let services = &self.handle.services;
        services.cancel.cancel();
        services.tasks.close();
        services.tasks.wait().await;
        if let Some(t) = &services.torrent {
            t.shutdown().await;
        }
        if let Some(w) = self.waku.take() {
            w.shutdown().await;
        }
    }
}

impl Supervisor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let command = tokio::select! {
                biased;
                () = self.services.cancel.cancelled() => return,
                c = commands.recv() => match c {
                    Some(c) => c,
                    None => return,
                },
            };
            match command {
                Command::Trigger(id, reply) => {
                    let trigger = self.running.get(&id).and_then(|r| r.trigger.clone());
                    let result = match trigger {
                        Some(tx) => tx.send(()).await.map_err(|_| NodeError::Cancelled),
                        None => Err(NodeError::NotControlNode(id.to_string())),
                    };
                    let _ = reply.send(result);
                }
                Command::Join(id, reply) => {
                    let _ = reply.send(self.join(id).await);
                }
                Command::Reannounce(id, reply) => {
                    // The dispatcher answers the caller itself.
                    self.dispatcher.send(dispatch::Command::Reannounce { id, reply });
                }
                Command::Leave(id, reply) => {
                    let _ = reply.send(self.leave(id).await);
                }
                Command::Downloads(reply) => {
                    let downloads = self
                        .running
                        .iter()
                        .filter_map(|(id, r)| Some((*id, r.download.as_ref()?.borrow().clone()?)))
                        .collect();
                    let _ = reply.send(downloads);
                }
                Command::Restart(id) => {
                    if let Err(e) = self.restart(id).await {
                        tracing::error!(community_id = %id, error = %e.chain(), "restarting the community's tasks failed");
                    }
                }
            }
        }
    }

    /// Spawns the tasks of `community` (if joined): capture and the archive task on a control
    /// node, the member task otherwise.
    fn start_community(&mut self, community: Community) -> Result<(), NodeError> {
        let id = community.id;
        if !community.joined || self.running.contains_key(&id) {
            return Ok(());
        }
        let services = &self.services;
        let cancel = services.cancel.child_token();
        let mut running = Running { cancel: cancel.clone(), trigger: None, download: None };
        follow::protect(services, &community);
        let receivers = follow::receivers(services, &community)?;
        services.tasks.spawn(follow::run(Arc::clone(services), id, receivers, self.commands.clone(), cancel.clone()));
        if community.is_control_node() {
            let receiver = capture::receiver(services, &community)?;
            services.tasks.spawn(capture::run(Arc::clone(services), community.clone(), receiver, cancel.clone()));
            // Archives are built only when some backend distributes them.
            if !services.backends.is_empty() {
                let (tx, rx) = mpsc::channel(4);
                running.trigger = Some(tx);
                services.tasks.spawn(owner::run(
                    Arc::clone(services),
                    community,
                    rx,
                    self.dispatcher.clone(),
                    self.folder_watch.clone(),
                    cancel,
                ));
            }
        } else if !services.backends.is_empty() {
            let receiver = member::receiver(services, &community)?;
            // After the member's receiver exists: what the catch-up fetches reaches it.
            services.tasks.spawn(waku_store::member_catch_up(
                Arc::clone(services),
                community.clone(),
                self.commands.clone(),
                cancel.clone(),
            ));
            let (tx, rx) = watch::channel(None);
            let progress: ProgressView = Arc::new(tx);
            running.download = Some(rx);
            services.tasks.spawn(member::run(Arc::clone(services), community, receiver, progress, cancel));
        }
        self.running.insert(id, running);
        Ok(())
    }

    async fn join(&mut self, id: CommunityId) -> Result<(), NodeError> {
        if self.running.contains_key(&id) {
            return Ok(());
        }
        let community = self
            .services
            .db(move |c, s| {
                let community = c.get(s, &id)?;
                if !community.joined {
                    c.join(s, &id, None)?;
                }
                Ok(c.get(s, &id)?)
            })
            .await?;
        self.subscribe(&community.pubsub_topic).await?;
        self.subscribe(chs_status::description::NON_PROTECTED_PUBSUB_TOPIC).await?;
        self.start_community(community)
    }

    async fn subscribe(&self, topic: &str) -> Result<(), NodeError> {
        self.services
            .waku
            .subscribe(topic)
            .await
            .map(drop)
            .map_err(|e| NodeError::Subscribe { topic: topic.to_owned(), source: e })
    }

    /// Stops the community's tasks and starts them again from the stored community (new channels,
    /// new pubsub topic). The stopped tasks end at their next safe point; a download resumes from
    /// its saved link, a build is retried by the new owner task.
    async fn restart(&mut self, id: CommunityId) -> Result<(), NodeError> {
        let Some(running) = self.running.remove(&id) else { return Ok(()) };
        running.cancel.cancel();
        let community = self.services.db(move |c, s| Ok(c.get(s, &id)?)).await?;
        self.subscribe(&community.pubsub_topic).await?;
        tracing::info!(community_id = %id, pubsub_topic = %community.pubsub_topic, channels = community.chats.len(), "community tasks restarted");
        self.start_community(community)
    }

    async fn leave(&mut self, id: CommunityId) -> Result<(), NodeError> {
        if let Some(running) = self.running.remove(&id) {
            running.cancel.cancel();
        }
        self.dispatcher.send(dispatch::Command::Forget { id });
        self.services.db(move |c, s| Ok(c.leave(s, &id)?)).await?;
        if let Some(t) = &self.services.torrent
            && t.unseed(&id.to_string()).await?.is_some()
        {
            self.services.publish(Signal::HistoryArchivesUnseeded { community_id: id });
        }
        Ok(())
    }
}

impl NodeHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// A receiver of every signal from now on.
    #[must_use]
    pub fn signals(&self) -> broadcast::Receiver<Signal> {
        self.services.bus.subscribe()
    }

    /// The node's clock.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.services.clock)
    }

    /// The Waku node (publish, dial, listen addresses).
    #[must_use]
    pub fn waku(&self) -> &WakuHandle {
        &self.services.waku
    }

    /// The address peers reach this node's torrent session at, if torrents are enabled.
    #[must_use]
    pub fn torrent_addr(&self) -> Option<SocketAddr> {
        self.services.torrent.as_ref().and_then(TorrentNode::local_peer_addr)
    }

    /// Every socket the node listens on, one line each (`tcp 127.0.0.1:4001 bittorrent peers`,
    /// `udp 0.0.0.0:6881 dht`, `waku /ip4/127.0.0.1/tcp/60000`, `udp 0.0.0.0:9000 waku discv5`):
    /// the torrent session's (only what the configuration asks for) and the Waku node's.
    pub async fn listening_sockets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .services
            .torrent
            .as_ref()
            .map(|t| t.listening_sockets().iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        out.extend(
            self.services.waku.listen_addrs().await.unwrap_or_default().into_iter().map(|a| format!("waku {a}")),
        );
        if let Some(addr) = self.services.waku.discv5_addr() {
            out.push(format!("udp {addr} waku discv5"));
        }
        out
    }

    /// The store v3 server's counters (queries served and refused), if the node serves store
    /// (`[waku.store] serve`) and still runs.
    #[must_use]
    pub fn store_server_stats(&self) -> Option<chs_waku::store::StoreServerStats> {
        self.store_server.as_ref().and_then(std::sync::Weak::upgrade).map(|s| s.stats())
    }

    /// The torrent session's incoming-connection counters, if torrents are enabled.
    #[must_use]
    pub fn torrent_listener_stats(&self) -> Option<chs_torrent::ListenerStats> {
        self.services.torrent.as_ref().map(TorrentNode::listener_stats)
    }

    /// The node's configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.services.config
    }

    /// Runs an archive cycle of `id` now (control node): plan at the clock's time, build what is
    /// due, seed and announce. The result arrives as signals.
    ///
    /// # Errors
    /// [`NodeError::NotControlNode`] if no archive task runs for `id`.
    pub async fn trigger_archive(&self, id: &CommunityId) -> Result<(), NodeError> {
        self.ask(|reply| Command::Trigger(*id, reply)).await
    }

    /// Publishes the latest magnetlink of `id` again now, with the clock it was announced with
    /// (what the node also does when peers subscribe); returns the magnet link.
    ///
    /// # Errors
    /// [`NodeError::NothingAnnounced`] if this node has announced no link of `id` (not its
    /// control node, or nothing seeded yet).
    pub async fn reannounce(&self, id: &CommunityId) -> Result<String, NodeError> {
        self.ask(|reply| Command::Reannounce(*id, reply)).await
    }

    /// Starts the tasks of `id`, a community the store knows (created, imported or joined since
    /// the node started), joining it if it is not joined yet; subscribes the Waku node to its
    /// pubsub topic. Nothing happens if its tasks already run.
    ///
    /// # Errors
    /// [`NodeError::Community`] if the store does not know `id`; store and Waku errors.
    pub async fn join(&self, id: &CommunityId) -> Result<(), NodeError> {
        self.ask(|reply| Command::Join(*id, reply)).await
    }

    /// Leaves `id` (status-go's `LeaveCommunity` for history archives): stops its tasks (archive
    /// building, capture, or the member task, cancelling a download at a safe point), unseeds
    /// its torrent (`HistoryArchivesUnseeded`) and marks it not joined in the store. Stored
    /// messages and archive files are kept. A control node keeps its key.
    ///
    /// # Errors
    /// Store or torrent errors; [`NodeError::Community`] if the node does not know `id`.
    pub async fn leave(&self, id: &CommunityId) -> Result<(), NodeError> {
        self.ask(|reply| Command::Leave(*id, reply)).await
    }

    /// Stops the tasks of `id` and starts them again from the stored community (nothing if none
    /// run): a member resumes its pending link at once (what `chs community ratchet-key add`
    /// asks for when it made a kept, unopened history pending again). Asked, not awaited.
    ///
    /// # Errors
    /// [`NodeError::Stopped`] once the node has stopped.
    pub async fn restart(&self, id: &CommunityId) -> Result<(), NodeError> {
        self.commands.send(Command::Restart(*id)).await.map_err(|_| NodeError::Stopped)
    }

    /// Runs `f` with the community manager and the store (on the blocking pool).
    ///
    /// # Errors
    /// What `f` returns, or [`NodeError::Join`] if it panicked.
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce(&Communities, &mut Store) -> Result<T, NodeError> + Send + 'static,
    {
        self.services.db(f).await
    }

    /// Per-community state.
    ///
    /// # Errors
    /// Store errors; [`NodeError::Stopped`] once the node has stopped.
    pub async fn status(&self) -> Result<Vec<CommunityStatus>, NodeError> {
        let root = self.services.config.archive_root();
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Downloads(tx)).await.map_err(|_| NodeError::Stopped)?;
        let downloads = rx.await.map_err(|_| NodeError::Stopped)?;
        let mut list = self
            .services
            .db(move |communities, store| community_statuses(communities, store, &root, &downloads))
            .await?;
        if let Some(t) = &self.services.torrent {
            for s in &mut list {
                s.seeding = t.status(&s.id.to_string()).map(|st| SeedView {
                    info_hash: st.info_hash.to_hex(),
                    have_bytes: st.have_bytes,
                    total_bytes: st.total_bytes,
                    uploaded_bytes: st.uploaded_bytes,
                    downloaded_bytes: st.downloaded_bytes,
                    peers: st.peers,
                    known_peers: st.known_peers,
                    swarm: t.swarm(&s.id.to_string()).map(|sw| SwarmView::of(&sw)).unwrap_or_default(),
                });
            }
        }
        Ok(list)
    }
}

/// The backends of `[archive] backends`, in order: one of `given` of that kind if any, else
/// BitTorrent over the session (if torrents are enabled), Logos Storage over a client of
/// `[logos_storage] api`.
fn make_backends(
    config: &Config,
    torrent: Option<&TorrentNode>,
    given: Vec<Arc<dyn crate::backend::DistributionBackend>>,
) -> Result<Vec<Arc<dyn crate::backend::DistributionBackend>>, NodeError> {
    use crate::backend::{BackendKind, LogosBackend, LogosBackendConfig, TorrentBackend, TorrentBackendConfig};
    let mut backends: Vec<Arc<dyn crate::backend::DistributionBackend>> = Vec::new();
    for kind in &config.archive.backends {
        if let Some(backend) = given.iter().find(|b| b.kind() == *kind) {
            backends.push(Arc::clone(backend));
            continue;
        }
        match kind {
            BackendKind::Torrent => {
                if let Some(node) = torrent {
                    backends.push(Arc::new(TorrentBackend::new(
                        node.clone(),
                        TorrentBackendConfig {
                            piece_length: config.archive.piece_length,
                            torrent_dir: config.torrent_dir(),
                            archive_root: config.archive_root(),
                            peers: config.torrent.peers.clone(),
                            metadata_timeout: config.torrent.metadata_timeout,
                            stall_timeout: config.torrent.stall_timeout,
                        },
                    )));
                }
            }
            BackendKind::LogosStorage => {
                let client = chs_logos::LogosClient::new(chs_logos::ClientConfig {
                    api: config.logos_storage.api.clone(),
                    ..chs_logos::ClientConfig::default()
                })
                .map_err(|e| NodeError::Backend(e.into()))?;
                backends.push(Arc::new(LogosBackend::new(
                    client,
                    LogosBackendConfig { state_dir: config.data_dir.join("logos-state") },
                )));
            }
        }
    }
    Ok(backends)
}

/// The torrent node's discovery from `[torrent]`: the DHT (public routers unless
/// `dht_bootstrap`), `trackers` (also a downloaded magnet's `tr`, unless the list is empty),
/// uTP, UPnP, and `announce_addr` as the only peer hint.
pub(crate) fn torrent_discovery(t: &crate::config::TorrentSection) -> chs_torrent::Discovery {
    chs_torrent::Discovery {
        dht: t.dht,
        dht_bootstrap: t.dht_bootstrap.clone(),
        trackers: t.trackers.clone(),
        magnet_trackers: !t.trackers.is_empty(),
        lsd: false,
        utp: t.utp,
        upnp: t.upnp,
        announce_addr: t.announce_addr,
    }
}
