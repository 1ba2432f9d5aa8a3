//! The node's configuration: `chs node --config chs.toml`.
//!
//! The `[torrent]` table mirrors status-go's `TorrentConfig` (`enabled`, `port`, `data_dir`,
//! `torrent_dir`); the rest is ours. Every field has a default, so an empty file is a valid
//! configuration. Unknown keys are errors (a typo must not silently fall back to a default).
//!
//! ```toml
//! data_dir = "chs-data"          # SQLite file, archives, torrent and Waku state live here
//!
//! [torrent]
//! enabled = true
//! port = 9025                    # 0: an ephemeral port
//! listen_ip = "0.0.0.0"
//! # data_dir = "chs-data/archives"      # status-go's ArchiveDataDir
//! # torrent_dir = "chs-data/torrents"   # status-go's TorrentDir
//! # announce_addr = "203.0.113.7:9025"  # the address others dial: x.pe hint, announced port
//! dht = true                     # mainline DHT, as status-go
//! dht_bootstrap = []             # empty: status-go's public routers
//! trackers = ["udp://tracker.opentrackr.org:1337/announce", "udp://tracker.openbittorrent.com:6969/announce"]
//! utp = true                     # uTP beside TCP on the listen port, as status-go
//! upnp = false                   # ask the router to forward the port (status-go: on)
//!
//! [waku]
//! listen = ["/ip4/0.0.0.0/tcp/60000"]
//! bootstrap = []
//! cluster_id = 16
//! # The real network, as status-go: DNS discovery of the status.prod fleet (EIP-1459),
//! # discv5 (UDP) bootstrapped from it and from discv5_bootstrap, peer exchange.
//! dns_discovery = ["enrtree://AMOJVZX4V6EXP7NTJPMAYJYST2QP6AJXYW76IU6VGJS7UVSNDYZG4@boot.prod.status.nodes.status.im"]
//! # nameserver = "127.0.0.1:5353"   # default: the system's resolvers
//! discv5 = true
//! discv5_port = 9000
//! discv5_bootstrap = []              # extra "enr:…" records
//! peer_exchange = true
//! target_peers = 20
//!
//! [waku.store]                   # 13/WAKU2-STORE v3
//! serve = true                   # answer store queries from the message store
//! peers = []                     # store nodes asked for missed messages (multiaddrs with /p2p/)
//! page_size = 100
//! timeout = "10s"                # per page: a store node slower than this is stalling
//! lookback = "30d"               # how far back a first catch-up reaches (status-go: 30 days)
//!
//! [archive]
//! interval = "7d"
//! piece_length = 102400
//! policy = "whole-intervals"     # or "up-to-now" (status-go's exact rule)
//!
//! [member]
//! debounce = "20s"
//! retry_backoff = "5s"
//! max_attempts = 5
//! max_torrent_bytes = 4294967296 # 4 GiB: bigger torrents are refused from their metadata
//! max_index_bytes = 16777216     # 16 MiB: a bigger `index` is refused before it is fetched
//! max_archive_bytes = 268435456  # 256 MiB: a bigger archive is skipped, never read into memory
//!
//! [communities]
//! join = []                      # community ids to join as a member at start
//!
//! [api]                          # served by `chs node` (HTTP: status, metrics, status page)
//! enabled = true
//! listen = "127.0.0.1:8645"
//! # token_file = "chs-data/api.token"   # bearer token of the calls that change state
//! ```

use std::io::{Read as _, Seek as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML does not parse or has wrong types or unknown keys.
    #[error("invalid config{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// toml's message (it names the line and key).
        message: String,
    },
    /// A setting given by a flag or an environment variable does not fit.
    #[error("invalid setting from {origin}: {message}")]
    Override {
        /// The flag or environment variable.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config value `{key}`: {message}")]
    Value {
        /// The key, e.g. `archive.interval`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// One setting given outside the file: `torrent.port` = `9026`, from `origin` (the flag or the
/// environment variable, named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The setting's dotted name, e.g. `torrent.port`.
    pub key: String,
    /// Its value as written (TOML, or a bare string).
    pub value: String,
    /// Where it came from, e.g. `--set torrent.port=9026` or `CHS_TORRENT_PORT`.
    pub origin: String,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Root of the node's files: `chs.db`, `archives/`, `torrents/`, `torrent-state/`, `waku/`.
    pub data_dir: PathBuf,
    /// BitTorrent.
    pub torrent: TorrentSection,
    /// Waku relay.
    pub waku: WakuSection,
    /// Archive creation (control nodes).
    pub archive: ArchiveSection,
    /// Magnetlink handling (members).
    pub member: MemberSection,
    /// Communities to join at start.
    pub communities: CommunitiesSection,
    /// The Logos Storage node (used when `archive.backends` names `logos-storage`).
    pub logos_storage: LogosStorageSection,
    /// The HTTP API (served by the `chs` binary, not by this crate).
    pub api: ApiSection,
    /// Fault injection for crash tests, never read from TOML (`chs node` takes it from the
    /// `CHS_PAUSE_AT` environment variable): on reaching this point the node raises
    /// [`Signal::FaultPaused`](crate::Signal::FaultPaused) and stops there for good, so that a
    /// test can kill the process at exactly that step. Points of a control node, in order:
    /// `build:<n>` (before the archive builder's `n`-th I/O step, from 0, in each build), `built`
    /// (archives written, end date not saved), `end-saved` (end date saved, no torrent made),
    /// `torrent-written` (`.torrent` written, not seeded), `seeded` (seeded, signal not raised),
    /// `published` (magnetlink published on Waku). Points of a member: `metadata` (metadata
    /// fetched and validated, index not requested), `index-fetch` (the index download is running),
    /// `data` (the data download is running, some of its bytes on disk), `import` (before the
    /// first archive's import transaction).
    #[serde(skip)]
    pub pause_at: Option<String>,
}

/// `[torrent]`: status-go's `TorrentConfig` plus peer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TorrentSection {
    /// Archives are built, seeded and downloaded only when enabled (status-go: `Enabled`).
    pub enabled: bool,
    /// Listen port (status-go: `Port`, default 9025); 0 picks a free port.
    pub port: u16,
    /// Listen address.
    pub listen_ip: IpAddr,
    /// Archive folders, one per community (status-go: `DataDir`); default `<data_dir>/archives`.
    pub data_dir: Option<PathBuf>,
    /// `.torrent` files (status-go: `TorrentDir`); default `<data_dir>/torrents`.
    pub torrent_dir: Option<PathBuf>,
    /// The address other peers can dial: the only `x.pe` peer hint put in our magnet links, and
    /// its port is the one announced to the DHT and trackers (port 0: the listen port). Default
    /// none: no hint (as status-go), the listen port is announced.
    pub announce_addr: Option<SocketAddr>,
    /// Extra peers tried for every download.
    pub peers: Vec<SocketAddr>,
    /// Mainline DHT: every seeded torrent is announced, every download asks it (status-go: on).
    pub dht: bool,
    /// DHT bootstrap nodes, `host:port`; empty: the public routers status-go's client uses.
    pub dht_bootstrap: Vec<String>,
    /// Trackers: the announce list of our torrents (`.torrent` and magnet), announced to when
    /// seeding and downloading, plus a downloaded magnet's own `tr`. Default status-go's two;
    /// empty: no tracker at all. `true`/`false` (older files) mean status-go's two / none.
    #[serde(deserialize_with = "trackers_list")]
    pub trackers: Vec<String>,
    /// uTP (BEP 29) beside TCP on the listen port, in and out (status-go: on).
    pub utp: bool,
    /// UPnP port forwarding of the listen port (status-go: on; off here: a server's port is
    /// forwarded by its operator).
    pub upnp: bool,
    /// Trust stored piece bitfields on restart instead of re-hashing.
    pub fastresume: bool,
    /// Time allowed to fetch a torrent's metadata, per attempt.
    #[serde(with = "duration_text")]
    pub metadata_timeout: Duration,
    /// A fetch fails when no byte arrives for this long.
    #[serde(with = "duration_text")]
    pub stall_timeout: Duration,
}

/// `[waku]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WakuSection {
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// Multiaddrs (`…/p2p/<peer id>`) dialed at start.
    pub bootstrap: Vec<String>,
    /// Cluster id (Status: 16).
    pub cluster_id: u32,
    /// gossipsub heartbeat.
    #[serde(with = "duration_text")]
    pub heartbeat: Duration,
    /// EIP-1459 ENR trees to discover peers from (default: Status' production fleet).
    pub dns_discovery: Vec<String>,
    /// The nameserver (`IP:PORT`) for DNS discovery; absent: the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nameserver: Option<std::net::SocketAddr>,
    /// Run discv5 (UDP `discv5_port`, on the IP of the first listen address).
    pub discv5: bool,
    /// discv5's UDP port (status-go: 9000; 0: any).
    pub discv5_port: u16,
    /// Extra discv5 bootstrap records (`enr:…`); the DNS-discovered nodes are added too.
    pub discv5_bootstrap: Vec<String>,
    /// 34/WAKU2-PEER-EXCHANGE client (and server, with discv5).
    pub peer_exchange: bool,
    /// The peer manager dials discovered peers while fewer than this many are connected.
    pub target_peers: usize,
    /// `[waku.store]`: store v3 served and used.
    pub store: WakuStoreSection,
}

/// `[waku.store]`: 13/WAKU2-STORE v3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WakuStoreSection {
    /// Serve `/vac/waku/store-query/3.0.0` from the message store (what live capture kept of the
    /// communities this node controls), so that a community can run its own history node.
    pub serve: bool,
    /// Store nodes (multiaddrs with `/p2p/<peer id>`) asked, in order, for what this node missed:
    /// a member's magnetlink chats at start and after a store node reconnects, an owner's
    /// channels before each build. Empty: no catch-up.
    pub peers: Vec<String>,
    /// Messages asked per page (1..=100).
    pub page_size: u64,
    /// Time a store node may take per page.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// How far back a catch-up reaches when nothing is stored yet (status-go: 30 days).
    #[serde(with = "duration_text")]
    pub lookback: Duration,
}

impl Default for WakuStoreSection {
    fn default() -> Self {
        WakuStoreSection {
            serve: true,
            peers: Vec::new(),
            page_size: chs_waku::store::MAX_PAGE_SIZE,
            timeout: Duration::from_secs(10),
            lookback: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// How the control node catches up after time offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Whole intervals only (30 days offline → 4 archives).
    #[default]
    WholeIntervals,
    /// status-go's rule: build up to now at once.
    UpToNow,
}

/// `[archive]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSection {
    /// Archive window (status-go: 7 days).
    #[serde(with = "duration_text")]
    pub interval: Duration,
    /// Torrent piece length; archives are padded to it.
    pub piece_length: u32,
    /// Catch-up policy.
    pub policy: Policy,
    /// How often the archive folder is checked for archives built by another process
    /// (`chs archive build` on this node's database): new ones are seeded and announced.
    #[serde(with = "duration_text")]
    pub watch_interval: Duration,
    /// After a failed build (e.g. disk full), plan again this much later.
    #[serde(with = "duration_text")]
    pub retry_after_failure: Duration,
    /// Distribution backends: `["torrent"]` (default), `["logos-storage"]` or both. A member
    /// takes the links its backends fetch and refuses the others without changing any state;
    /// an owner publishes through each and announces every link with one clock
    /// (`docs/backends.md`).
    pub backends: Vec<crate::backend::BackendKind>,
    /// Which status-go's archive content to follow: `"2024"` (channels only, the default) or
    /// `"2026"` (channels and `-memberUpdate`, as today's status-go).
    pub generation: chs_status::Generation,
    /// Chats each link is sent on: `magnetlinks` (status-go 2024) and/or `member-update`
    /// (today's status-go); both by default, so that members of either generation read it.
    pub link_channels: Vec<LinkChannel>,
}

/// A chat archive links are sent on (`[archive] link_channels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkChannel {
    /// `<id>-magnetlinks` (status-go c72f491).
    Magnetlinks,
    /// `<id>-memberUpdate` (today's status-go, `UniversalChatID`).
    MemberUpdate,
}

impl LinkChannel {
    /// The wire layer's name for it.
    #[must_use]
    pub const fn channel(self) -> chs_status::MagnetlinkChannel {
        match self {
            Self::Magnetlinks => chs_status::MagnetlinkChannel::Magnetlinks,
            Self::MemberUpdate => chs_status::MagnetlinkChannel::MemberUpdate,
        }
    }
}

/// `[logos_storage]`: the local Logos Storage node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogosStorageSection {
    /// The node's API: base URL with base path (`/api/storage/v1`; `/api/codex/v1` for older
    /// releases).
    pub api: String,
}

impl Default for LogosStorageSection {
    fn default() -> Self {
        LogosStorageSection { api: chs_logos::DEFAULT_API.to_owned() }
    }
}

/// `[member]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberSection {
    /// Wait this long after the last accepted magnetlink of a community before downloading
    /// (RFC: 20 s), so that only the newest of a burst is fetched.
    #[serde(with = "duration_text")]
    pub debounce: Duration,
    /// First retry delay after a failed download; doubled after each failure.
    #[serde(with = "duration_text")]
    pub retry_backoff: Duration,
    /// Attempts per magnetlink before waiting for a newer one.
    pub max_attempts: u32,
    /// Largest torrent (sum of its files) a member accepts to download; checked from the
    /// metadata, before anything is fetched. A download needs up to this much free disk twice
    /// over (the seeded copy stays whole while the new one is staged).
    pub max_torrent_bytes: u64,
    /// Largest `index` a member accepts; checked from the metadata, before the index is fetched
    /// or read into memory. An entry is ~100 bytes plus 4 per channel topic, one per archive.
    pub max_index_bytes: u64,
    /// Largest archive (index entry size without padding) a member reads into memory to import;
    /// a bigger entry is reported as a failed import and skipped.
    pub max_archive_bytes: u64,
}

/// `[api]`: the node's HTTP API, status page and metrics (`chs node` serves them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Serve the API at all.
    pub enabled: bool,
    /// Where (loopback by default: the read-only calls need no token).
    pub listen: SocketAddr,
    /// File holding the bearer token of the calls that change state; default
    /// `<data_dir>/api.token`, created (mode 0600, random) at the first start if absent.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { enabled: true, listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8645), token_file: None }
    }
}

/// `[communities]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CommunitiesSection {
    /// Community ids (`0x` + 66 hex) this node joins as a member at start.
    pub join: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("chs-data"),
            torrent: TorrentSection::default(),
            waku: WakuSection::default(),
            archive: ArchiveSection::default(),
            member: MemberSection::default(),
            communities: CommunitiesSection::default(),
            logos_storage: LogosStorageSection::default(),
            api: ApiSection::default(),
            pause_at: None,
        }
    }
}

impl Default for TorrentSection {
    fn default() -> Self {
        TorrentSection {
            enabled: true,
            port: 9025,
            listen_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            data_dir: None,
            torrent_dir: None,
            announce_addr: None,
            peers: Vec::new(),
            dht: true,
            dht_bootstrap: Vec::new(),
            trackers: chs_torrent::STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect(),
            utp: true,
            upnp: false,
            fastresume: false,
            metadata_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for WakuSection {
    fn default() -> Self {
        WakuSection {
            listen: vec!["/ip4/0.0.0.0/tcp/60000".to_owned()],
            bootstrap: Vec::new(),
            cluster_id: chs_waku::STATUS_CLUSTER_ID,
            heartbeat: Duration::from_secs(1),
            dns_discovery: vec![chs_waku::dns::STATUS_PROD_ENRTREE.to_owned()],
            nameserver: None,
            discv5: true,
            discv5_port: 9000,
            discv5_bootstrap: Vec::new(),
            peer_exchange: true,
            target_peers: chs_waku::Config::default().target_peers,
            store: WakuStoreSection::default(),
        }
    }
}

impl Default for ArchiveSection {
    fn default() -> Self {
        ArchiveSection {
            interval: Duration::from_secs(chs_archive::DEFAULT_INTERVAL_SECS),
            piece_length: chs_torrent::DEFAULT_PIECE_LENGTH,
            policy: Policy::WholeIntervals,
            watch_interval: Duration::from_secs(10),
            retry_after_failure: Duration::from_secs(60),
            backends: vec![crate::backend::BackendKind::Torrent],
            generation: chs_status::Generation::Status2024,
            link_channels: vec![LinkChannel::Magnetlinks, LinkChannel::MemberUpdate],
        }
    }
}

impl Default for MemberSection {
    fn default() -> Self {
        MemberSection {
            debounce: Duration::from_secs(20),
            retry_backoff: Duration::from_secs(5),
            max_attempts: 5,
            max_torrent_bytes: 4 << 30,
            max_index_bytes: 16 << 20,
            max_archive_bytes: 256 << 20,
        }
    }
}

impl Config {
    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the line and key, or [`ConfigError::Value`].
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: None, message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file; relative paths in it are taken relative to the
    /// file's folder.
    ///
    /// # Errors
    /// As [`Config::from_toml_str`], plus [`ConfigError::Read`].
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Config::from_file_with_overrides(path, &[])
    }

    /// As [`Config::from_file`], then each of `overrides` (from command-line flags and `CHS_*`
    /// environment variables, in order: a later one wins) set over the file's value. An
    /// override's value is read as a TOML value (`9026`, `true`, `["/ip4/0.0.0.0/tcp/60000"]`),
    /// else as a string; its relative paths are taken as they are (relative to the working
    /// folder), not relative to the file.
    ///
    /// # Errors
    /// As [`Config::from_file`], plus [`ConfigError::Override`] naming where the bad value
    /// came from.
    pub fn from_file_with_overrides(path: &Path, overrides: &[Override]) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config = Config::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: Some(path.to_owned()), message },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.data_dir);
        if let Some(p) = config.torrent.data_dir.as_mut() {
            rebase(p);
        }
        if let Some(p) = config.torrent.torrent_dir.as_mut() {
            rebase(p);
        }
        if let Some(p) = config.api.token_file.as_mut() {
            rebase(p);
        }
        config.apply_overrides(overrides)
    }

    /// `self` with `overrides` set over it (see [`Config::from_file_with_overrides`]).
    ///
    /// # Errors
    /// [`ConfigError::Override`] naming the override that does not fit, or
    /// [`ConfigError::Value`] when the result is out of range.
    pub fn apply_overrides(self, overrides: &[Override]) -> Result<Config, ConfigError> {
        if overrides.is_empty() {
            return Ok(self);
        }
        let bad = |o: &Override, message: String| ConfigError::Override { origin: o.origin.clone(), message };
        let mut table =
            toml::Table::try_from(&self).map_err(|e| ConfigError::Parse { path: None, message: e.to_string() })?;
        let mut config = self;
        for o in overrides {
            let mut parts: Vec<&str> = o.key.split('.').collect();
            let Some(last) = parts.pop().filter(|l| !l.is_empty()) else {
                return Err(bad(o, format!("`{}` is not a setting name", o.key)));
            };
            let mut node = &mut table;
            for part in parts {
                node = node
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| bad(o, format!("`{part}` is a value, not a [section]")))?;
            }
            let value = format!("v = {}", o.value)
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(o.value.clone()));
            node.insert(last.to_owned(), value);
            config = table.clone().try_into().map_err(|e: toml::de::Error| bad(o, e.message().to_owned()))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks value ranges.
    ///
    /// # Errors
    /// [`ConfigError::Value`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.archive.interval.as_secs() == 0 {
            return Err(ConfigError::Value { key: "archive.interval", message: "must be at least 1s".into() });
        }
        if !(16 * 1024..=16 * 1024 * 1024).contains(&self.archive.piece_length) {
            return Err(ConfigError::Value {
                key: "archive.piece_length",
                message: format!("{} is outside 16 KiB ..= 16 MiB", self.archive.piece_length),
            });
        }
        for (key, value) in [
            ("member.max_torrent_bytes", self.member.max_torrent_bytes),
            ("member.max_index_bytes", self.member.max_index_bytes),
            ("member.max_archive_bytes", self.member.max_archive_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Value { key, message: "must be more than 0".into() });
            }
        }
        if self.member.max_attempts == 0 {
            return Err(ConfigError::Value { key: "member.max_attempts", message: "must be at least 1".into() });
        }
        for t in &self.torrent.trackers {
            if !["udp://", "http://", "https://"].iter().any(|s| t.starts_with(s)) {
                return Err(ConfigError::Value {
                    key: "torrent.trackers",
                    message: format!("{t}: not a udp://, http:// or https:// tracker URL"),
                });
            }
        }
        for n in &self.torrent.dht_bootstrap {
            if !n.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) {
                return Err(ConfigError::Value {
                    key: "torrent.dht_bootstrap",
                    message: format!("{n}: not host:port"),
                });
            }
        }
        if self.torrent.announce_addr.is_some_and(|a| a.ip().is_unspecified()) {
            return Err(ConfigError::Value {
                key: "torrent.announce_addr",
                message: "an unspecified address cannot be dialled".into(),
            });
        }
        if self.waku.heartbeat.is_zero() {
            return Err(ConfigError::Value { key: "waku.heartbeat", message: "must be more than 0".into() });
        }
        if !(1..=chs_waku::store::MAX_PAGE_SIZE).contains(&self.waku.store.page_size) {
            return Err(ConfigError::Value { key: "waku.store.page_size", message: "must be 1 to 100".into() });
        }
        if self.waku.store.timeout.is_zero() {
            return Err(ConfigError::Value { key: "waku.store.timeout", message: "must be more than 0".into() });
        }
        if self.archive.retry_after_failure.is_zero() {
            return Err(ConfigError::Value {
                key: "archive.retry_after_failure",
                message: "must be more than 0".into(),
            });
        }
        if self.archive.watch_interval.is_zero() {
            return Err(ConfigError::Value { key: "archive.watch_interval", message: "must be more than 0".into() });
        }
        let backends = &self.archive.backends;
        if backends.is_empty() || (1..backends.len()).any(|i| backends[..i].contains(&backends[i])) {
            return Err(ConfigError::Value {
                key: "archive.backends",
                message: "must name torrent and/or logos-storage, each once".into(),
            });
        }
        if self.archive.link_channels.is_empty() {
            return Err(ConfigError::Value { key: "archive.link_channels", message: "must name a chat".into() });
        }
        if backends.contains(&crate::backend::BackendKind::LogosStorage) {
            chs_logos::LogosClient::new(chs_logos::ClientConfig {
                api: self.logos_storage.api.clone(),
                ..Default::default()
            })
            .map_err(|e| ConfigError::Value { key: "logos_storage.api", message: e.to_string() })?;
        }
        for id in &self.communities.join {
            chs_status::CommunityId::parse(id)
                .map_err(|e| ConfigError::Value { key: "communities.join", message: format!("{id}: {e}") })?;
        }
        Ok(())
    }

    /// The SQLite file.
    #[must_use]
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("chs.db")
    }

    /// The folder holding one archive folder per community.
    #[must_use]
    pub fn archive_root(&self) -> PathBuf {
        self.torrent.data_dir.clone().unwrap_or_else(|| self.data_dir.join("archives"))
    }

    /// The API's bearer token file.
    #[must_use]
    pub fn api_token_file(&self) -> PathBuf {
        self.api.token_file.clone().unwrap_or_else(|| self.data_dir.join("api.token"))
    }

    /// The folder of `.torrent` files.
    #[must_use]
    pub fn torrent_dir(&self) -> PathBuf {
        self.torrent.torrent_dir.clone().unwrap_or_else(|| self.data_dir.join("torrents"))
    }

    /// A configuration for loopback tests and the demo: ephemeral ports on 127.0.0.1, no
    /// debounce, short heartbeat and retry delays.
    #[must_use]
    pub fn local(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            torrent: TorrentSection {
                port: 0,
                listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                // Loopback only: no DHT, tracker, uTP or UPnP; the peer hint is the loopback
                // listen address (port 0 = the port the session listens on).
                announce_addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
                dht: false,
                trackers: Vec::new(),
                utp: false,
                upnp: false,
                metadata_timeout: Duration::from_secs(10),
                stall_timeout: Duration::from_secs(10),
                ..TorrentSection::default()
            },
            waku: WakuSection {
                listen: vec!["/ip4/127.0.0.1/tcp/0".to_owned()],
                heartbeat: Duration::from_millis(200),
                // Nothing leaves the machine: only the peers a test names.
                dns_discovery: Vec::new(),
                discv5: false,
                discv5_port: 0,
                peer_exchange: false,
                ..WakuSection::default()
            },
            archive: ArchiveSection::default(),
            member: MemberSection {
                debounce: Duration::ZERO,
                retry_backoff: Duration::from_millis(200),
                ..MemberSection::default()
            },
            communities: CommunitiesSection::default(),
            logos_storage: LogosStorageSection::default(),
            api: ApiSection { listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), ..ApiSection::default() },
            pause_at: None,
        }
    }
}

/// Parses `0`, `250ms`, `20s`, `5m`, `2h`, `7d`, `1w`.
///
/// # Errors
/// A message naming the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 250ms, 20s, 5m, 2h, 7d"))?;
    let ms = match unit.trim() {
        "" if n == 0 => 0,
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" | "min" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        "w" => n.saturating_mul(7 * 86_400_000),
        _ => return Err(format!("`{text}`: unknown unit (use ms, s, m, h, d or w)")),
    };
    Ok(Duration::from_millis(ms))
}

/// Prints a duration the way [`parse_duration`] reads it.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("w", 604_800_000u128), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

mod duration_text {
    use super::{Deserialize, Deserializer, Duration, Serializer, format_duration, parse_duration};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// The exclusive lock of a node's data folder, held while the node runs: two nodes on one folder
/// would both build, seed and import into the same files. An OS file lock (`flock` on Unix) on
/// [`DataDirLock::FILE`] in the folder, holding the holder's pid (for the message the second node
/// prints); the kernel drops it when the holder exits, even by SIGKILL, so a crash never leaves the
/// folder locked. One-shot commands (`chs community …`, `chs archive …`) do not take it: they share
/// the database through SQLite's own locking.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    /// The lock file's name inside the data folder.
    pub const FILE: &'static str = "node.lock";

    /// Takes the lock of `data_dir` (which must exist) without waiting.
    ///
    /// # Errors
    /// [`crate::NodeError::DataDirLocked`] when another process holds it (naming its pid), or
    /// [`crate::NodeError::Io`] when the lock file cannot be opened, locked or written.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, crate::NodeError> {
        // Without `.` components (a config's `data_dir = "."`), for the messages.
        let data_dir: PathBuf = data_dir.components().collect();
        let path = data_dir.join(DataDirLock::FILE);
        let io = |what, e| crate::NodeError::io(what, &path, e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("opening the lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(crate::NodeError::DataDirLocked { data_dir, lock_file: path, pid });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", e)),
        }
        file.set_len(0).map_err(|e| io("writing the pid into", e))?;
        file.rewind().map_err(|e| io("writing the pid into", e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| io("writing the pid into", e))?;
        file.flush().map_err(|e| io("writing the pid into", e))?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `torrent.trackers`: a list of URLs, or (files written before it was a list) `true` for
/// status-go's two and `false` for none.
fn trackers_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Trackers {
        Switch(bool),
        List(Vec<String>),
    }
    Ok(match Trackers::deserialize(d)? {
        Trackers::Switch(true) => chs_torrent::STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect(),
        Trackers::Switch(false) => Vec::new(),
        Trackers::List(list) => list,
    })
}
