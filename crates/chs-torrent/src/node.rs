//! One librqbit session per node: seeding the latest torrent of each key, and downloads.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use librqbit::api::TorrentIdOrHash;
use librqbit::dht::Id20;
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, ListenerMode, ListenerOptions, ManagedTorrent, Session,
    SessionOptions, SessionPersistenceConfig,
};
use tokio_util::sync::CancellationToken;

use crate::discovery::Discovery;
use crate::error::Error;
use crate::magnet::Magnet;
use crate::meta::{InfoHash, TorrentFileOptions, TorrentMeta};
use crate::swarm::SwarmStatus;
use crate::wire::{FetchJob, FetchStats, PeerSource, PieceStore, fetch_pieces};

/// Name of the file in the state directory that maps keys to info hashes.
const KEYS_FILE: &str = "chs-keys.tsv";
/// The multicast port of BEP 14 local service discovery (librqbit-lsd binds `[::]:6771`).
const LSD_PORT: u16 = 6771;
/// librqbit's JSON session persistence: folder in the state directory, and its file.
const SESSION_DIR: &str = "session";
const SESSION_FILE: &str = "session.json";
/// librqbit's DHT routing table, in the state directory.
const DHT_FILE: &str = "dht.json";
/// librqbit 9.1.0's message when `session.json` does not parse (patches/librqbit keeps it).
const CORRUPT_SESSION_FILE: &str = "error deserializing session database";

/// Configuration of a [`TorrentNode`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory for librqbit's session persistence and our key map.
    pub state_dir: PathBuf,
    /// TCP listen address for incoming peers; `None` means no listener (download-only node).
    /// Use port 0 for an ephemeral port and read [`TorrentNode::listen_addr`].
    pub listen_addr: Option<SocketAddr>,
    /// How peers are found and how this node is found (DHT, trackers, uTP, UPnP, peer hint).
    pub discovery: Discovery,
    /// Persist the session so that torrents come back after a restart.
    pub persistence: bool,
    /// With persistence, trust stored have-bitfields on restart instead of re-hashing all pieces.
    pub fastresume: bool,
}

impl Config {
    /// A loopback-only node for tests and local tools: listener on 127.0.0.1 with an ephemeral
    /// port, [`Discovery::none`] (no DHT, LSD or trackers), persistence on, full re-verification
    /// on restart.
    pub fn local(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            listen_addr: Some((Ipv4Addr::LOCALHOST, 0).into()),
            discovery: Discovery::none(),
            persistence: true,
            fastresume: false,
        }
    }
}

/// Timeouts, retries, peers and progress reporting of a download.
#[derive(Clone)]
pub struct DownloadOptions {
    /// Peers to contact in addition to the magnet's `x.pe` hints.
    pub peers: Vec<SocketAddr>,
    /// Time allowed for one attempt to fetch the metadata (status-go: 20 s).
    pub metadata_timeout: Duration,
    /// A file or range fetch fails when no progress is made for this long.
    pub stall_timeout: Duration,
    /// TCP connect timeout per peer.
    pub connect_timeout: Duration,
    /// Attempts per step (metadata) or per peer (ranges) before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubled after each failure.
    pub backoff: Duration,
    /// Cancels the download.
    pub cancel: CancellationToken,
    /// Receives progress events.
    pub progress: Option<ProgressFn>,
    /// Checks the torrent's metadata before anything is written or the key's previous torrent is
    /// unseeded; an `Err(reason)` ends the download with [`Error::Rejected`].
    pub validate: Option<ValidateFn>,
}

/// See [`DownloadOptions::validate`].
pub type ValidateFn = Arc<dyn Fn(&TorrentMeta) -> Result<(), String> + Send + Sync>;

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            metadata_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            cancel: CancellationToken::new(),
            progress: None,
            validate: None,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("peers", &self.peers)
            .field("metadata_timeout", &self.metadata_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// A progress callback; it runs on the download's task, so it must return quickly.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Which step of a download a [`Progress`] event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Whole files through librqbit (e.g. the `index`).
    Files,
    /// Chosen byte ranges through the piece fetcher.
    Ranges,
}

/// A progress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The step.
    pub phase: Phase,
    /// Verified bytes of this step so far.
    pub bytes_done: u64,
    /// Bytes this step needs.
    pub bytes_total: u64,
    /// Connected peers.
    pub peers: usize,
}

/// What a node is seeding for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedStatus {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Verified bytes on disk.
    pub have_bytes: u64,
    /// Size of the torrent.
    pub total_bytes: u64,
    /// Bytes uploaded in this session.
    pub uploaded_bytes: u64,
    /// Bytes downloaded (and verified) by librqbit in this session.
    pub downloaded_bytes: u64,
    /// Connected peers.
    pub peers: usize,
    /// Peers known for the torrent (from the DHT, trackers, PEX, incoming connections, hints),
    /// connected or not.
    pub known_peers: usize,
}

/// Transport of a [`ListeningSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What a [`ListeningSocket`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketPurpose {
    /// Incoming BitTorrent peers ([`Config::listen_addr`]).
    PeerListener,
    /// The mainline DHT ([`Discovery::dht`]).
    Dht,
    /// The UDP tracker client ([`Discovery::uses_trackers`]); it binds an ephemeral port on
    /// all addresses, which librqbit does not report, so the port is shown as 0.
    Trackers,
    /// Local service discovery, multicast ([`Discovery::lsd`]).
    Lsd,
    /// uTP peers, on the listen port ([`Discovery::utp`]).
    Utp,
}

/// A socket the node has bound and receives on, see [`TorrentNode::listening_sockets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListeningSocket {
    /// TCP or UDP.
    pub protocol: SocketProtocol,
    /// What it is for.
    pub purpose: SocketPurpose,
    /// The bound address (port 0: an ephemeral port the library does not report).
    pub addr: SocketAddr,
}

impl std::fmt::Display for ListeningSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            SocketProtocol::Tcp => "tcp",
            SocketProtocol::Udp => "udp",
        };
        let purpose = match self.purpose {
            SocketPurpose::PeerListener => "bittorrent peers",
            SocketPurpose::Dht => "dht",
            SocketPurpose::Trackers => "tracker client",
            SocketPurpose::Lsd => "local service discovery",
            SocketPurpose::Utp => "bittorrent peers (utp)",
        };
        if self.addr.port() == 0 {
            write!(f, "{proto} {} (ephemeral port) {purpose}", self.addr.ip())
        } else {
            write!(f, "{proto} {} {purpose}", self.addr)
        }
    }
}

/// Counters of the incoming-peer listener since the node started (see [`TorrentNode::listener_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Connections accepted for a handshake check.
    pub accepted: u64,
    /// Connections closed at once because their IP already had the maximum of pending
    /// handshakes ([`MAX_PENDING_HANDSHAKES_PER_IP`]).
    pub refused: u64,
    /// Handshake checks that failed: not a BitTorrent handshake (refused at the first wrong
    /// byte), no handshake within [`HANDSHAKE_TIMEOUT`], unknown torrent, or closed early.
    pub handshake_failed: u64,
    /// Connections handed over to a torrent after a good handshake.
    pub handed_over: u64,
}

/// Time an incoming connection has to send its 68-byte handshake before it is closed. librqbit
/// uses one read timeout for handshakes and for messages of established peers, so this is also
/// that: librqbit's default of 10 s, which this crate keeps.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on incoming connections waiting for their handshake, all IPs together; further
/// connections wait in the kernel's accept queue.
pub const MAX_PENDING_HANDSHAKES: usize = 256;
/// Bound on incoming connections waiting for their handshake from one IP; further connections
/// from it are accepted and closed at once.
pub const MAX_PENDING_HANDSHAKES_PER_IP: usize = 8;

/// The torrent seeded for a key, and the folder it is seeded from (unknown for key maps written
/// before folders were recorded).
#[derive(Debug, Clone)]
struct Seeded {
    info_hash: InfoHash,
    folder: Option<PathBuf>,
}

/// One BitTorrent node: a librqbit session plus the map of key → seeded torrent.
/// Cloning is cheap and gives another handle to the same node.
#[derive(Clone)]
pub struct TorrentNode {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    session: Arc<Session>,
    config: Config,
    keys: Mutex<HashMap<String, Seeded>>,
    peer_id: [u8; 20],
    /// Serialises adding and removing torrents: librqbit 9.1's JSON persistence hands out the
    /// id `max(stored ids) + 1` and stores the new torrent only after adding it, so two
    /// concurrent adds get the same id and the second gets `AlreadyManaged` with the *first*
    /// torrent's handle (its own torrent is never added).
    add_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TorrentNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentNode")
            .field("listen_addr", &self.listen_addr())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn id20(h: InfoHash) -> Id20 {
    Id20::new(h.0)
}

impl TorrentNode {
    /// Starts the session. With persistence, torrents of the previous run are re-added and their
    /// data re-verified (or spot-checked with `fastresume`), so nothing is downloaded again.
    pub async fn start(config: Config) -> Result<Self, Error> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| Error::io(&config.state_dir, e))?;
        let downloads = config.state_dir.join("downloads");
        let mut session_reset = false;
        let session = match Session::new_with_opts(downloads.clone(), session_options(&config)).await {
            Ok(session) => session,
            Err(e) if config.persistence && format!("{e:#}").contains(CORRUPT_SESSION_FILE) => {
                let file = config.state_dir.join(SESSION_DIR).join(SESSION_FILE);
                let aside = set_aside(&file)?;
                tracing::warn!(
                    file = %file.display(),
                    moved_to = %aside.display(),
                    error = %format!("{e:#}"),
                    "librqbit's session file is corrupt: set aside, starting with a fresh session and \
                     re-adding the seeded torrents from their folders"
                );
                session_reset = true;
                Session::new_with_opts(downloads, session_options(&config))
                    .await
                    .map_err(|e| Error::rqbit("starting session with a fresh session file", e))?
            }
            Err(e) => return Err(Error::rqbit("starting session", e)),
        };
        let keys = load_keys(&config.state_dir);
        let peer_id = make_peer_id(&config.state_dir);
        tracing::info!(listen = ?session.listen_addr(), n_keys = keys.len(), "torrent node started");
        let node = Self {
            inner: Arc::new(NodeInner {
                session,
                config,
                keys: Mutex::new(keys),
                peer_id,
                add_lock: tokio::sync::Mutex::new(()),
            }),
        };
        if session_reset {
            node.restore_seeds().await;
        }
        Ok(node)
    }

    /// After the session file was set aside: re-adds the torrent of every key from its folder
    /// (recorded in the key map) and librqbit's stored `.torrent` file, data re-verified. A key
    /// that cannot be restored is dropped with a warning; its next magnet link downloads it again.
    async fn restore_seeds(&self) {
        let entries: Vec<(String, Seeded)> = self.keys().iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        for (key, seeded) in entries {
            let info_hash = seeded.info_hash;
            let file = self.inner.config.state_dir.join(SESSION_DIR).join(format!("{}.torrent", info_hash.to_hex()));
            let restored = match (seeded.folder, std::fs::read(&file)) {
                (Some(folder), Ok(torrent)) => match self.add(info_hash, torrent, &folder, None, Vec::new()).await {
                    Ok(handle) => {
                        handle.wait_until_initialized().await.map_err(|e| Error::rqbit("verifying local data", e))
                    }
                    Err(e) => Err(e),
                },
                (None, _) => Err(Error::Librqbit { context: "restoring seed", message: "no folder recorded".into() }),
                (_, Err(e)) => Err(Error::io(&file, e)),
            };
            match restored {
                Ok(_) => tracing::info!(key, %info_hash, "seed restored after the session file was set aside"),
                Err(e) => {
                    tracing::warn!(key, %info_hash, error = %e, "could not restore the seed; it is dropped");
                    self.set_key(&key, None);
                }
            }
        }
    }

    /// The bound listen address (with the real port when configured with port 0).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.session.listen_addr()
    }

    /// Every socket the node has bound to receive on: the TCP peer listener, and the UDP sockets
    /// of the DHT, the tracker client and local service discovery when they are enabled.
    pub fn listening_sockets(&self) -> Vec<ListeningSocket> {
        let config = &self.inner.config;
        let mut out = Vec::new();
        if let Some(addr) = self.listen_addr() {
            out.push(ListeningSocket { protocol: SocketProtocol::Tcp, purpose: SocketPurpose::PeerListener, addr });
        }
        if let Some(dht) = self.inner.session.get_dht() {
            out.push(ListeningSocket {
                protocol: SocketProtocol::Udp,
                purpose: SocketPurpose::Dht,
                addr: dht.listen_addr(),
            });
        }
        if let Some(addr) = self.listen_addr().filter(|_| config.listen_addr.is_some() && config.discovery.utp) {
            out.push(ListeningSocket { protocol: SocketProtocol::Udp, purpose: SocketPurpose::Utp, addr });
        }
        if config.discovery.uses_trackers() {
            out.push(ListeningSocket {
                protocol: SocketProtocol::Udp,
                purpose: SocketPurpose::Trackers,
                addr: (Ipv6Addr::UNSPECIFIED, 0).into(),
            });
        }
        if config.discovery.lsd {
            out.push(ListeningSocket {
                protocol: SocketProtocol::Udp,
                purpose: SocketPurpose::Lsd,
                addr: (Ipv6Addr::UNSPECIFIED, LSD_PORT).into(),
            });
        }
        out
    }

    /// Counters of the incoming-peer listener (a port scan shows up in `refused` and
    /// `handshake_failed`).
    pub fn listener_stats(&self) -> ListenerStats {
        let c = self.inner.session.stats_snapshot().counters;
        ListenerStats {
            accepted: c.incoming_accepted,
            refused: c.incoming_refused,
            handshake_failed: c.incoming_handshake_failed,
            handed_over: c.incoming_handed_over,
        }
    }

    /// The `x.pe` peer hint this node gives: [`Discovery::announce_addr`] (port 0 replaced by
    /// the listen port), never an address derived from the listen address; `None` without one
    /// (as status-go, whose magnets carry no hint) or without a listener.
    pub fn peer_hint(&self) -> Option<SocketAddr> {
        let mut addr = self.inner.config.discovery.announce_addr?;
        let port = self.listen_addr()?.port();
        if addr.port() == 0 {
            addr.set_port(port);
        }
        Some(addr)
    }

    /// The configuration the node was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// An address peers on this machine can dial (an unspecified IP becomes loopback): for local
    /// tools and tests; magnets get [`TorrentNode::peer_hint`].
    pub fn local_peer_addr(&self) -> Option<SocketAddr> {
        self.listen_addr().map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(Ipv4Addr::LOCALHOST.into());
            }
            a
        })
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seeded>> {
        self.inner.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_key(&self, key: &str, value: Option<(InfoHash, &Path)>) {
        let mut keys = self.keys();
        match value {
            Some((info_hash, folder)) => {
                keys.insert(key.to_owned(), Seeded { info_hash, folder: Some(folder.to_owned()) })
            }
            None => keys.remove(key),
        };
        if let Err(e) = save_keys(&self.inner.config.state_dir, &keys) {
            tracing::warn!(error = %e, "could not save the key map");
        }
    }

    /// The torrent seeded for `key`, if any.
    pub fn seeded(&self, key: &str) -> Option<InfoHash> {
        self.keys().get(key).map(|s| s.info_hash)
    }

    /// Seeds `meta` from `folder` (which holds the torrent's files directly) as the torrent of
    /// `key`, replacing (unseeding, files kept) the previous one. Every piece is verified first;
    /// the call fails with [`Error::DataMismatch`] if the folder does not hold all the data.
    pub async fn seed(&self, key: &str, folder: &Path, meta: &TorrentMeta) -> Result<SeedStatus, Error> {
        check_key(key)?;
        let info_hash = meta.info_hash();
        if let Some(old) = self.seeded(key)
            && old != info_hash
        {
            self.unseed(key).await?;
        }
        let torrent = self.torrent_bytes(meta, &self.inner.config.discovery.trackers);
        let handle = self.add(info_hash, torrent, folder, None, Vec::new()).await?;
        handle.wait_until_initialized().await.map_err(|e| Error::rqbit("verifying local data", e))?;
        let (have, total) = have_and_total(&handle);
        if have != total {
            self.remove_for_good(info_hash).await?;
            return Err(Error::DataMismatch { folder: folder.to_owned(), info_hash: info_hash.to_hex(), have, total });
        }
        self.set_key(key, Some((info_hash, folder)));
        tracing::info!(key, %info_hash, "seeding");
        self.status(key).ok_or(Error::Shutdown)
    }

    /// Stops seeding the torrent of `key` (files are kept). Returns the torrent that was dropped.
    pub async fn unseed(&self, key: &str) -> Result<Option<InfoHash>, Error> {
        let Some(old) = self.seeded(key) else { return Ok(None) };
        self.remove_for_good(old).await?;
        self.set_key(key, None);
        tracing::info!(key, info_hash = %old, "unseeded");
        Ok(Some(old))
    }

    /// Seeding status of `key`.
    pub fn status(&self, key: &str) -> Option<SeedStatus> {
        let info_hash = self.seeded(key)?;
        let handle = self.inner.session.get(TorrentIdOrHash::Hash(id20(info_hash)))?;
        let stats = handle.stats();
        let peers = stats.live.as_ref().map_or(0, |l| l.snapshot.peer_stats.live as usize);
        let (have_bytes, total_bytes) = have_and_total(&handle);
        let known_peers = handle.live().map_or(0, |l| l.known_peer_addrs().len());
        Some(SeedStatus {
            info_hash,
            have_bytes,
            total_bytes,
            uploaded_bytes: stats.uploaded_bytes,
            downloaded_bytes: stats.live.as_ref().map_or(0, |l| l.snapshot.downloaded_and_checked_bytes),
            peers,
            known_peers,
        })
    }

    /// Peers by source and announce outcomes of the torrent seeded for `key`.
    pub fn swarm(&self, key: &str) -> Option<SwarmStatus> {
        let info_hash = self.seeded(key)?;
        let handle = self.inner.session.get(TorrentIdOrHash::Hash(id20(info_hash)))?;
        Some(self.swarm_of(&handle))
    }

    fn swarm_of(&self, handle: &ManagedTorrent) -> SwarmStatus {
        let session = &self.inner.session;
        let connected = handle.live().map(|l| l.connected_peer_addrs()).unwrap_or_default();
        let d = session.torrent_discovery(handle.info_hash());
        SwarmStatus::from_rqbit(&d, &connected, session.get_dht().is_some())
    }

    /// [`Self::remove`], and the torrent's peer sources and announce outcomes are forgotten.
    async fn remove_for_good(&self, info_hash: InfoHash) -> Result<(), Error> {
        self.remove(info_hash).await?;
        self.inner.session.forget_discovery(id20(info_hash));
        Ok(())
    }

    /// The `.torrent` bytes librqbit gets for `meta`, announcing to `trackers` (when the node
    /// uses trackers at all).
    fn torrent_bytes(&self, meta: &TorrentMeta, trackers: &[String]) -> Vec<u8> {
        let announce_list =
            if self.inner.config.discovery.uses_trackers() { Discovery::announce_list(trackers) } else { Vec::new() };
        meta.torrent_file_bytes(&TorrentFileOptions { announce_list, ..Default::default() })
    }

    async fn remove(&self, info_hash: InfoHash) -> Result<(), Error> {
        let _adding = self.inner.add_lock.lock().await;
        if self.inner.session.get(TorrentIdOrHash::Hash(id20(info_hash))).is_some() {
            self.inner
                .session
                .delete(TorrentIdOrHash::Hash(id20(info_hash)), false)
                .await
                .map_err(|e| Error::rqbit("removing torrent", e))?;
        }
        Ok(())
    }

    /// Adds the torrent `torrent` (whose info hash is `info_hash`); one add or remove at a time
    /// (see [`NodeInner::add_lock`]), and the handle returned is checked to be that torrent's.
    async fn add(
        &self,
        info_hash: InfoHash,
        torrent: Vec<u8>,
        folder: &Path,
        only_files: Option<Vec<usize>>,
        peers: Vec<SocketAddr>,
    ) -> Result<Arc<ManagedTorrent>, Error> {
        let opts = AddTorrentOptions {
            overwrite: true,
            output_folder: Some(folder.to_string_lossy().into_owned()),
            only_files,
            initial_peers: if peers.is_empty() { None } else { Some(peers) },
            ..Default::default()
        };
        let _adding = self.inner.add_lock.lock().await;
        let response = self
            .inner
            .session
            .add_torrent(AddTorrent::from_bytes(torrent), Some(opts))
            .await
            .map_err(|e| Error::rqbit("adding torrent", e))?;
        let handle =
            response.into_handle().ok_or(Error::Librqbit { context: "adding torrent", message: "list-only".into() })?;
        if handle.info_hash() != id20(info_hash) {
            return Err(Error::Librqbit {
                context: "adding torrent",
                message: format!(
                    "librqbit returned torrent {} (id {}) instead of {info_hash}",
                    handle.info_hash().as_string(),
                    handle.id()
                ),
            });
        }
        Ok(handle)
    }

    /// Starts downloading `magnet` for `key`, to end in `parent_dir/<torrent name>/`: the metadata
    /// is fetched (with timeout and retries), checked against the magnet's info hash and by
    /// [`DownloadOptions::validate`]. Nothing else is downloaded until asked on the [`Download`].
    ///
    /// The files are received in a staging folder, `parent_dir/.staging/<name>.<info hash>/`
    /// (same file system), pre-filled with a copy of the files of `parent_dir/<name>/` (cut to the
    /// new lengths, never grown), so that only new pieces are fetched. The key's previous torrent
    /// keeps seeding from `parent_dir/<name>/`, untouched, until [`Download::finish`] swaps the
    /// staging folder in; [`Download::discard`] (or a failed start) deletes it. A torrent that is
    /// the key's seeded one already is downloaded in place. A staging folder left by a crash is
    /// resumed if it is for the same torrent, deleted otherwise.
    pub async fn download(
        &self,
        key: &str,
        magnet: &Magnet,
        parent_dir: &Path,
        opts: DownloadOptions,
    ) -> Result<Download, Error> {
        check_key(key)?;
        let mut peers = opts.peers.clone();
        for p in &magnet.peers {
            if !peers.contains(p) {
                peers.push(*p);
            }
        }
        let trackers = self.inner.config.discovery.download_trackers(&magnet.trackers);
        let meta = self.fetch_metadata(magnet, &peers, &trackers, &opts).await?;
        if let Some(validate) = &opts.validate {
            validate(&meta).map_err(Error::Rejected)?;
        }
        let live = parent_dir.join(meta.name());
        let in_place = self.seeded(key) == Some(magnet.info_hash);
        let folder = if in_place { live.clone() } else { staging_folder(parent_dir, meta.name(), magnet.info_hash) };
        self.drop_stale(key, parent_dir, &live, magnet.info_hash).await?;
        let meta = Arc::new(meta);
        let staging = (!in_place).then(|| folder.clone());
        let started = self.start_download(key, magnet, &meta, &folder, &live, peers.clone(), &trackers, &opts).await;
        match started {
            Ok(handle) => Ok(Download {
                node: self.clone(),
                key: key.to_owned(),
                meta,
                receiving: folder,
                live,
                peers,
                trackers,
                banned: Arc::default(),
                use_discovered: true,
                opts,
                handle,
            }),
            Err(e) => {
                if let Some(staging) = staging {
                    self.remove(magnet.info_hash).await.ok();
                    remove_folder(staging).await;
                }
                Err(e)
            }
        }
    }

    /// Prepares `folder` (staging: copies of `live`'s files; both: no file longer than the
    /// torrent's) and adds the torrent with this download's peers, nothing selected yet.
    #[allow(clippy::too_many_arguments)] // one private step of `download`
    async fn start_download(
        &self,
        key: &str,
        magnet: &Magnet,
        meta: &Arc<TorrentMeta>,
        folder: &Path,
        live: &Path,
        peers: Vec<SocketAddr>,
        trackers: &[String],
        opts: &DownloadOptions,
    ) -> Result<Arc<ManagedTorrent>, Error> {
        let store = PieceStore::new(folder.to_owned(), Arc::clone(meta));
        let (folder2, live2, meta2) = (folder.to_owned(), live.to_owned(), Arc::clone(meta));
        tokio::task::spawn_blocking(move || {
            if folder2 != live2 {
                prefill_staging(&folder2, &live2, &meta2)?;
            }
            // Files are created empty and an older, longer file cut (librqbit does not truncate).
            store.prepare()
        })
        .await
        .map_err(|_| Error::Cancelled)??;
        let torrent = self.torrent_bytes(meta, trackers);
        // librqbit keeps the peers a torrent was added with (and re-dials only those on unpause),
        // so a torrent already in the session (seeded, or restored after a restart) is re-added
        // with this download's peers; its data on disk is re-verified, not downloaded again.
        let mut only_files = Vec::new();
        if let Some(existing) = self.inner.session.get(TorrentIdOrHash::Hash(id20(magnet.info_hash))) {
            only_files = existing.only_files().unwrap_or_else(|| (0..meta.files().len()).collect());
            self.remove(magnet.info_hash).await?;
        }
        let handle = self.add(magnet.info_hash, torrent, folder, Some(only_files), peers).await?;
        tokio::select! {
            r = handle.wait_until_initialized() => r.map_err(|e| Error::rqbit("checking local data", e))?,
            () = opts.cancel.cancelled() => return Err(Error::Cancelled),
        }
        tracing::debug!(key, info_hash = %magnet.info_hash, folder = %folder.display(), "download started");
        Ok(handle)
    }

    /// Removes what a crash or an abandoned download left: torrents of the session writing into
    /// `parent_dir/.staging/` (except `keep`'s), torrents writing into `live` that are neither
    /// the key's seeded one nor `keep` (a swap cut short), and staging folders of this name
    /// for other torrents.
    async fn drop_stale(&self, key: &str, parent_dir: &Path, live: &Path, keep: InfoHash) -> Result<(), Error> {
        let staging_root = parent_dir.join(STAGING_DIR);
        let seeded = self.seeded(key);
        let stale: Vec<InfoHash> = self.inner.session.with_torrents(|torrents| {
            torrents
                .filter_map(|(_, t)| {
                    let hash = InfoHash(t.info_hash().0);
                    let out = t.output_folder();
                    let stale =
                        hash != keep && (out.starts_with(&staging_root) || (out == live && Some(hash) != seeded));
                    stale.then_some(hash)
                })
                .collect()
        });
        for hash in stale {
            tracing::info!(key, info_hash = %hash, "dropping a stale download");
            self.remove(hash).await?;
        }
        let name = live.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let keep_folder = staging_folder(parent_dir, &name, keep);
        let (live2, root2, name2) = (live.to_owned(), staging_root.clone(), name.clone());
        tokio::task::spawn_blocking(move || restore_aside(&root2, &name2, &live2))
            .await
            .map_err(|_| Error::Cancelled)??;
        let Ok(entries) = std::fs::read_dir(&staging_root) else { return Ok(()) };
        for entry in entries.flatten() {
            let path = entry.path();
            let ours =
                entry.file_name().to_string_lossy().strip_prefix(&name).is_some_and(|rest| rest.starts_with('.'));
            if ours && path != keep_folder {
                tracing::info!(key, folder = %path.display(), "deleting a stale staging folder");
                remove_folder(path).await;
            }
        }
        Ok(())
    }

    async fn fetch_metadata(
        &self,
        magnet: &Magnet,
        peers: &[SocketAddr],
        trackers: &[String],
        opts: &DownloadOptions,
    ) -> Result<TorrentMeta, Error> {
        if let Some(h) = self.inner.session.get(TorrentIdOrHash::Hash(id20(magnet.info_hash))) {
            let bytes = h.with_metadata(|m| m.info_bytes.clone()).map_err(|e| Error::rqbit("metadata", e))?;
            return TorrentMeta::from_info_bytes(&bytes);
        }
        if peers.is_empty() && !self.inner.config.discovery.dht && trackers.is_empty() {
            return Err(Error::NoPeers);
        }
        let uri = Magnet { peers: Vec::new(), trackers: trackers.to_vec(), ..magnet.clone() }.to_string();
        let mut backoff = opts.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let add = self.inner.session.add_torrent(
                AddTorrent::from_url(uri.clone()),
                Some(AddTorrentOptions {
                    list_only: true,
                    initial_peers: if peers.is_empty() { None } else { Some(peers.to_vec()) },
                    ..Default::default()
                }),
            );
            let result = tokio::select! {
                r = tokio::time::timeout(opts.metadata_timeout, add) => r,
                () = opts.cancel.cancelled() => return Err(Error::Cancelled),
            };
            let err = match result {
                Ok(Ok(AddTorrentResponse::ListOnly(list))) => {
                    let meta = TorrentMeta::from_torrent_bytes(&list.torrent_bytes)?;
                    if meta.info_hash() != magnet.info_hash {
                        return Err(Error::InfoHashMismatch {
                            expected: magnet.info_hash.to_hex(),
                            actual: meta.info_hash().to_hex(),
                        });
                    }
                    return Ok(meta);
                }
                Ok(Ok(_)) => Error::Librqbit { context: "fetching metadata", message: "unexpected response".into() },
                Ok(Err(e)) => Error::rqbit("fetching metadata", e),
                Err(_) => Error::Timeout(opts.metadata_timeout, "torrent metadata"),
            };
            if attempt >= opts.max_attempts {
                return Err(err);
            }
            tracing::debug!(error = %err, attempt, "metadata fetch failed, retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = opts.cancel.cancelled() => return Err(Error::Cancelled),
            }
            backoff *= 2;
        }
    }

    /// Stops the session (all torrents; files are kept). Every clone of this node stops too.
    pub async fn shutdown(&self) {
        self.inner.session.stop().await;
    }
}

/// A download in progress, created by [`TorrentNode::download`].
pub struct Download {
    node: TorrentNode,
    key: String,
    meta: Arc<TorrentMeta>,
    /// Where the files are received: the staging folder, or `live` for an in-place download.
    receiving: PathBuf,
    /// `parent_dir/<name>`: where the files end.
    live: PathBuf,
    peers: Vec<SocketAddr>,
    /// The trackers this download announces to (kept when it is seeded after `finish`).
    trackers: Vec<String>,
    /// Peers that sent pieces failing their hash: never asked again for this torrent.
    banned: Arc<Mutex<HashSet<SocketAddr>>>,
    /// The range fetcher also dials the peers librqbit knows (off after [`Download::set_peers`]).
    use_discovered: bool,
    opts: DownloadOptions,
    handle: Arc<ManagedTorrent>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("key", &self.key)
            .field("meta", &self.meta)
            .field("receiving", &self.receiving)
            .field("live", &self.live)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The torrent's metainfo (from the swarm, verified against the magnet's info hash).
    pub fn meta(&self) -> &TorrentMeta {
        &self.meta
    }

    /// The folder the files end in after [`Download::finish`] (`parent_dir/<name>`).
    pub fn folder(&self) -> &Path {
        &self.live
    }

    /// The folder that receives the files until [`Download::finish`]: a staging folder, or
    /// [`Download::folder`] when the torrent was the key's seeded one already.
    pub fn receiving_folder(&self) -> &Path {
        &self.receiving
    }

    /// Replaces the peers that later [`Download::fetch_ranges`] calls contact: exactly these,
    /// the peers librqbit discovers are no longer added.
    pub fn set_peers(&mut self, peers: Vec<SocketAddr>) {
        self.peers = peers;
        self.use_discovered = false;
    }

    /// Every peer librqbit knows for this torrent (from the DHT, trackers, PEX, incoming
    /// connections, `x.pe` hints and configured peers), as a source the range fetcher polls.
    fn discovered_peers(&self) -> PeerSource {
        let handle = Arc::clone(&self.handle);
        Arc::new(move || handle.live().map(|l| l.known_peer_addrs()).unwrap_or_default())
    }

    /// Peers that sent bad pieces and are no longer asked for this torrent.
    pub fn banned_peers(&self) -> Vec<SocketAddr> {
        self.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect()
    }

    /// Peers by source and announce outcomes of this torrent so far.
    pub fn swarm(&self) -> SwarmStatus {
        self.node.swarm_of(&self.handle)
    }

    /// Peers librqbit is connected to for this torrent right now.
    pub fn live_peers(&self) -> usize {
        self.handle.stats().live.as_ref().map_or(0, |l| l.snapshot.peer_stats.live as usize)
    }

    fn progress(&self, phase: Phase, bytes_done: u64, bytes_total: u64, peers: usize) {
        if let Some(cb) = &self.opts.progress {
            cb(Progress { phase, bytes_done, bytes_total, peers });
        }
    }

    /// Downloads the `index` file and returns its bytes.
    pub async fn fetch_index(&self) -> Result<Vec<u8>, Error> {
        self.fetch_files(&["index"]).await?;
        let len = self.meta.file_index("index").map_or(0, |i| self.meta.files()[i].length);
        self.read_range("index", 0..len).await
    }

    /// Downloads whole files (by `/`-joined path) through librqbit, verifying every piece.
    ///
    /// Works around librqbit's "finished peer is never reconnected" (deps-and-peers.md §1.9):
    /// after a selection finished, librqbit drops the peers and never dials them again, so the
    /// torrent is paused and unpaused, which rebuilds the peer list from the initial peers.
    pub async fn fetch_files(&self, paths: &[&str]) -> Result<(), Error> {
        let mut selected: HashSet<usize> = self.handle.only_files().unwrap_or_default().into_iter().collect();
        for p in paths {
            selected.insert(self.meta.file_index(p).ok_or_else(|| Error::NoSuchFile((*p).to_owned()))?);
        }
        let was_finished = self.handle.stats().finished;
        self.node
            .inner
            .session
            .update_only_files(&self.handle, &selected)
            .await
            .map_err(|e| Error::rqbit("selecting files", e))?;
        if was_finished || self.handle.is_paused() {
            self.redial().await?;
        }
        let mut backoff = self.opts.backoff;
        let mut attempt = 1;
        loop {
            match self.wait_completed(Phase::Files).await {
                Err(e @ Error::Timeout(..)) if attempt < self.opts.max_attempts => {
                    tracing::debug!(error = %e, attempt, "file download stalled, re-dialing peers");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.opts.cancel.cancelled() => return Err(Error::Cancelled),
                    }
                    backoff *= 2;
                    attempt += 1;
                    self.redial().await?;
                }
                other => return other,
            }
        }
    }

    /// Pause + unpause: librqbit rebuilds the peer list from the initial peers (§1.9 workaround).
    async fn redial(&self) -> Result<(), Error> {
        let session = &self.node.inner.session;
        if !self.handle.is_paused() {
            session.pause(&self.handle).await.map_err(|e| Error::rqbit("pausing", e))?;
        }
        session.unpause(&self.handle).await.map_err(|e| Error::rqbit("unpausing", e))
    }

    /// Waits for librqbit to complete the selection, failing on stall, cancellation or error.
    async fn wait_completed(&self, phase: Phase) -> Result<(), Error> {
        let mut last_progress = (0u64, tokio::time::Instant::now());
        let mut ticker = tokio::time::interval(Duration::from_millis(200));
        let completed = self.handle.wait_until_completed();
        tokio::pin!(completed);
        loop {
            tokio::select! {
                r = &mut completed => {
                    r.map_err(|e| Error::rqbit("downloading files", e))?;
                    let s = self.handle.stats();
                    self.progress(phase, s.progress_bytes, s.total_bytes, 0);
                    return Ok(());
                }
                () = self.opts.cancel.cancelled() => return Err(Error::Cancelled),
                _ = ticker.tick() => {
                    let s = self.handle.stats();
                    if let Some(e) = s.error {
                        return Err(Error::Librqbit { context: "downloading files", message: e });
                    }
                    let peers = s.live.as_ref().map_or(0, |l| l.snapshot.peer_stats.live as usize);
                    self.progress(phase, s.progress_bytes, s.total_bytes, peers);
                    if s.progress_bytes != last_progress.0 {
                        last_progress = (s.progress_bytes, tokio::time::Instant::now());
                    } else if last_progress.1.elapsed() > self.opts.stall_timeout {
                        return Err(Error::Timeout(self.opts.stall_timeout, "file download progress"));
                    }
                }
            }
        }
    }

    /// Downloads only the pieces covering `ranges` of file `path` (e.g. the archives a member
    /// lacks in `data`), verifying each piece's SHA-1. Pieces already on disk and valid are not
    /// fetched again, so this resumes after a restart.
    pub async fn fetch_ranges(&self, path: &str, ranges: &[std::ops::Range<u64>]) -> Result<FetchStats, Error> {
        let file_idx = self.meta.file_index(path).ok_or_else(|| Error::NoSuchFile(path.to_owned()))?;
        let mut pieces = Vec::new();
        for r in ranges {
            pieces.extend(self.meta.pieces_for_file_range(file_idx, r.clone())?);
        }
        let progress = self.opts.progress.clone();
        let job = FetchJob {
            info_hash: self.meta.info_hash(),
            peer_id: self.node.inner.peer_id,
            store: Arc::new(PieceStore::new(self.receiving.clone(), Arc::clone(&self.meta))),
            peers: self.peers.clone(),
            discovered: self.use_discovered.then(|| self.discovered_peers()),
            banned: Arc::clone(&self.banned),
            connect_timeout: self.opts.connect_timeout,
            stall_timeout: self.opts.stall_timeout,
            max_attempts: self.opts.max_attempts,
            backoff: self.opts.backoff,
            cancel: self.opts.cancel.clone(),
            progress: Arc::new(move |bytes_done, bytes_total, peers| {
                if let Some(cb) = &progress {
                    cb(Progress { phase: Phase::Ranges, bytes_done, bytes_total, peers });
                }
            }),
        };
        fetch_pieces(job, pieces).await
    }

    /// Reads bytes `range` of file `path` from the receiving folder (after fetching them); bytes
    /// never received read as zeros.
    pub async fn read_range(&self, path: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>, Error> {
        let file_idx = self.meta.file_index(path).ok_or_else(|| Error::NoSuchFile(path.to_owned()))?;
        let file = &self.meta.files()[file_idx];
        if range.start > range.end || range.end > file.length {
            return Err(Error::RangeOutOfFile { start: range.start, end: range.end, file_len: file.length });
        }
        let full = self.receiving.join(file.path.join("/"));
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(&full).map_err(|e| Error::io(&full, e))?;
            let mut buf = vec![0u8; usize::try_from(range.end - range.start).unwrap_or(0)];
            // Files grow only by the pieces received: bytes past the end read as zeros, as the
            // holes of a sparse file do.
            let on_disk = f.metadata().map_err(|e| Error::io(&full, e))?.len();
            let readable = usize::try_from(on_disk.saturating_sub(range.start)).unwrap_or(usize::MAX).min(buf.len());
            f.read_exact_at(&mut buf[..readable], range.start).map_err(|e| Error::io(&full, e))?;
            Ok(buf)
        })
        .await
        .map_err(|_| Error::Cancelled)?
    }

    /// Ends the download and seeds what is on disk (all verified pieces, complete or not) as the
    /// torrent of the key, from `parent_dir/<name>`; the torrent is re-added so that librqbit
    /// re-verifies the pieces the range fetcher wrote.
    ///
    /// From a staging folder, its files are flushed to disk, then the folder and
    /// `parent_dir/<name>` are exchanged in one atomic `renameat2(RENAME_EXCHANGE)`: at every
    /// instant (and after a crash) `parent_dir/<name>` is either the old or the new complete
    /// folder. The previous torrent keeps serving (from its open files, now at the staging path)
    /// until the new one seeds; then it is unseeded and the old files are deleted.
    pub async fn finish(self) -> Result<SeedStatus, Error> {
        let info_hash = self.meta.info_hash();
        self.node.remove(info_hash).await?;
        if self.receiving != self.live {
            let (staging, live) = (self.receiving.clone(), self.live.clone());
            tokio::task::spawn_blocking(move || swap_in(&staging, &live)).await.map_err(|_| Error::Cancelled)??;
        }
        let torrent = self.node.torrent_bytes(&self.meta, &self.trackers);
        let handle = self.node.add(info_hash, torrent, &self.live, Some(Vec::new()), Vec::new()).await?;
        handle.wait_until_initialized().await.map_err(|e| Error::rqbit("verifying local data", e))?;
        let previous = self.node.seeded(&self.key);
        self.node.set_key(&self.key, Some((info_hash, &self.live)));
        if let Some(old) = previous.filter(|old| *old != info_hash) {
            self.node.remove_for_good(old).await?;
            tracing::info!(key = %self.key, info_hash = %old, "unseeded the previous torrent");
        }
        if self.receiving != self.live {
            remove_folder(self.receiving.clone()).await;
        }
        tracing::info!(key = %self.key, %info_hash, "seeding");
        self.node.status(&self.key).ok_or(Error::Shutdown)
    }

    /// Abandons the download: the torrent leaves the session and its staging folder is deleted
    /// (an in-place download keeps its verified pieces). The key's seeded torrent is untouched.
    pub async fn discard(self) -> Result<(), Error> {
        if self.receiving == self.live {
            return Ok(());
        }
        self.node.remove_for_good(self.meta.info_hash()).await?;
        remove_folder(self.receiving.clone()).await;
        Ok(())
    }
}

/// Folder, beside the live folders, that holds the downloads in progress.
pub const STAGING_DIR: &str = ".staging";

/// `parent_dir/.staging/<name>.<info hash>`.
fn staging_folder(parent_dir: &Path, name: &str, info_hash: InfoHash) -> PathBuf {
    parent_dir.join(STAGING_DIR).join(format!("{name}.{info_hash}"))
}

/// Copies each file of `live` that the torrent has into `staging` (if not there yet), cut to
/// the torrent's length: the pieces that did not change need no download. The copy goes through
/// a temporary name, so a crash leaves either no file or a whole copy. Blocking.
fn prefill_staging(staging: &Path, live: &Path, meta: &TorrentMeta) -> Result<(), Error> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
    for file in meta.files() {
        let relative: PathBuf = file.path.iter().collect();
        let (from, to) = (live.join(&relative), staging.join(&relative));
        if to.exists() || !from.is_file() {
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let tmp = to.with_extension("copy");
        // `std::fs::copy` uses copy_file_range (a reflink where the file system can): never a
        // hard link, the live file must stay as it is.
        std::fs::copy(&from, &tmp).map_err(|e| Error::io(&from, e))?;
        let f = std::fs::OpenOptions::new().write(true).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        if f.metadata().map_err(|e| Error::io(&tmp, e))?.len() > file.length {
            f.set_len(file.length).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &to).map_err(|e| Error::io(&to, e))?;
    }
    Ok(())
}

/// `staging` with `.aside` appended: where the old folder waits during a swap on a file system
/// without `RENAME_EXCHANGE`.
pub(crate) fn aside_folder(staging: &Path) -> PathBuf {
    let mut name = staging.as_os_str().to_owned();
    name.push(".aside");
    PathBuf::from(name)
}

/// Puts `staging` at `live` atomically; the old `live` (if any) ends at `staging`. Blocking.
///
/// On a file system without `renameat2(RENAME_EXCHANGE)` (e.g. NFS) the old folder is first
/// renamed aside: a crash between the two renames leaves no `live`, which the next download of
/// the name puts back ([`restore_aside`]).
pub(crate) fn swap_in(staging: &Path, live: &Path) -> Result<(), Error> {
    use rustix::io::Errno;
    sync_folder(staging)?;
    if live.exists() {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, staging, CWD, live, RenameFlags::EXCHANGE) {
            Ok(()) => {}
            Err(e) if [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP].contains(&e) => {
                tracing::warn!(folder = %live.display(), "no atomic folder exchange here: swapping with two renames");
                let aside = aside_folder(staging);
                std::fs::rename(live, &aside).map_err(|e| Error::io(live, e))?;
                std::fs::rename(staging, live).map_err(|e| Error::io(live, e))?;
                std::fs::rename(&aside, staging).map_err(|e| Error::io(staging, e))?;
            }
            Err(e) => return Err(Error::io(live, std::io::Error::from(e))),
        }
    } else {
        std::fs::rename(staging, live).map_err(|e| Error::io(live, e))?;
    }
    for dir in [live.parent(), staging.parent()].into_iter().flatten() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// After a crash inside a two-rename swap ([`swap_in`] without `RENAME_EXCHANGE`). If the staging
/// folder is still there, the crash came before it was moved to `live`: whatever is at `live`
/// (nothing, or empty files librqbit created for the old torrent at restart) is replaced by the
/// old folder left aside. Otherwise the new folder is at `live` and the old one is deleted. Blocking.
pub(crate) fn restore_aside(staging_root: &Path, name: &str, live: &Path) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(staging_root) else { return Ok(()) };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let ours = file_name.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'));
        if !(ours && file_name.ends_with(".aside")) {
            continue;
        }
        let aside = entry.path();
        let staging = staging_root.join(file_name.trim_end_matches(".aside"));
        if staging.exists() {
            tracing::warn!(folder = %live.display(), "putting back the folder a cut-short swap left aside");
            if live.exists() {
                std::fs::remove_dir_all(live).map_err(|e| Error::io(live, e))?;
            }
            std::fs::rename(&aside, live).map_err(|e| Error::io(live, e))?;
        } else {
            std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
        }
    }
    Ok(())
}

/// Flushes every file of `folder` and the folder itself. Blocking.
fn sync_folder(folder: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))?.flatten() {
        let path = entry.path();
        if path.is_file() {
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::io(&path, e))?;
        }
    }
    std::fs::File::open(folder).and_then(|d| d.sync_all()).map_err(|e| Error::io(folder, e))
}

/// Deletes `folder` and what is in it, logging a failure (a leftover is deleted by the next
/// download of the same name).
async fn remove_folder(folder: PathBuf) {
    let result = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&folder) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((folder, e)),
        _ => Ok(()),
    })
    .await;
    if let Ok(Err((folder, e))) = result {
        tracing::warn!(folder = %folder.display(), error = %e, "could not delete a staging folder");
    }
}

/// librqbit's session options for `config`.
fn session_options(config: &Config) -> SessionOptions {
    let discovery = &config.discovery;
    let listen = config.listen_addr.map(|addr| ListenerOptions {
        mode: if discovery.utp { ListenerMode::TcpAndUtp } else { ListenerMode::TcpOnly },
        listen_addr: addr,
        ipv4_only: addr.is_ipv4(),
        enable_upnp_port_forwarding: discovery.upnp,
        // The port announced to the DHT and trackers (and forwarded by UPnP): the announce
        // address's, else the listen port, also on loopback (patches/librqbit: 0 = bound port).
        announce_port: Some(discovery.announce_addr.map_or(0, |a| a.port())),
        max_pending_incoming_handshake_checks: MAX_PENDING_HANDSHAKES,
        max_pending_incoming_handshake_checks_per_ip: MAX_PENDING_HANDSHAKES_PER_IP,
        ..Default::default()
    });
    SessionOptions {
        dht: discovery.dht.then(|| librqbit::DhtSessionConfig {
            bootstrap_addrs: Some(discovery.bootstrap_nodes()),
            port: None,
            // The routing table is kept in the state dir (never librqbit's default, per user,
            // location), and only with persistence.
            persistence: config.persistence.then(|| librqbit::dht::DhtPersistenceConfig {
                dump_interval: None,
                config_filename: Some(config.state_dir.join(DHT_FILE)),
            }),
        }),
        ipv4_only: config.listen_addr.is_some_and(|a| a.is_ipv4()),
        disable_trackers: !discovery.uses_trackers(),
        disable_local_service_discovery: !discovery.lsd,
        listen,
        persistence: config
            .persistence
            .then(|| SessionPersistenceConfig::Json { folder: Some(config.state_dir.join(SESSION_DIR)) }),
        fastresume: config.fastresume && config.persistence,
        ..Default::default()
    }
}

/// Renames `file` to `<file>.corrupt-<unix seconds>` and returns the new path.
fn set_aside(file: &Path) -> Result<PathBuf, Error> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{secs}"));
    let aside = file.with_file_name(name);
    std::fs::rename(file, &aside).map_err(|e| Error::io(file, e))?;
    Ok(aside)
}

/// Verified bytes on disk and torrent size. librqbit's `progress_bytes`/`total_bytes` only count
/// selected files, and a partial seed selects none, so use the per-file counters.
fn have_and_total(handle: &ManagedTorrent) -> (u64, u64) {
    let stats = handle.stats();
    let total = handle.with_metadata(|m| m.info.lengths().total_length()).unwrap_or(stats.total_bytes);
    let have = if stats.file_progress.is_empty() { stats.progress_bytes } else { stats.file_progress.iter().sum() };
    (have, total)
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.contains(['\t', '\n', '\r']) {
        return Err(Error::InvalidKey(key.to_owned()));
    }
    Ok(())
}

fn load_keys(state_dir: &Path) -> HashMap<String, Seeded> {
    let Ok(text) = std::fs::read_to_string(state_dir.join(KEYS_FILE)) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let key = fields.next()?;
            let info_hash = fields.next()?.parse().ok()?;
            let folder = fields.next().filter(|f| !f.is_empty()).map(PathBuf::from);
            Some((key.to_owned(), Seeded { info_hash, folder }))
        })
        .collect()
}

/// One line per key: `key TAB info-hash [TAB folder]` (no folder for a path with a tab or newline).
fn save_keys(state_dir: &Path, keys: &HashMap<String, Seeded>) -> Result<(), Error> {
    let mut text = String::new();
    for (k, s) in keys {
        text.push_str(&format!("{k}\t{}", s.info_hash));
        if let Some(folder) = s.folder.as_ref().and_then(|f| f.to_str()).filter(|f| !f.contains(['\t', '\n', '\r'])) {
            text.push('\t');
            text.push_str(folder);
        }
        text.push('\n');
    }
    let tmp = state_dir.join(format!("{KEYS_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    let path = state_dir.join(KEYS_FILE);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// `-CH0001-` followed by 12 bytes derived from the state dir and the time.
fn make_peer_id(state_dir: &Path) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut h = Sha1::new();
    h.update(state_dir.to_string_lossy().as_bytes());
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let digest: [u8; 20] = h.finalize().into();
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-CH0001-");
    id[8..].copy_from_slice(&digest[..12]);
    id
}
