//! How a [`crate::TorrentNode`] finds peers and is found: the DHT, trackers, uTP, UPnP, the
//! address put in magnets. Defaults are status-go's (anacrolix v1.41's default client config, see
//! `docs/chs-torrent.md`); [`Discovery::none`] and [`Discovery::only`] keep a node to what it is
//! given, so that tests and one-shot tools never contact a public router or tracker.

use std::net::SocketAddr;

use crate::meta::STATUS_ANNOUNCE_LIST;

/// The DHT routers status-go's client bootstraps from (anacrolix `dht/v2` `dht.go:105-112`).
pub const STATUS_DHT_ROUTERS: [&str; 8] = [
    "router.utorrent.com:6881",
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.aelitis.com:6881",
    "router.silotis.us:6881",
    "dht.libtorrent.org:25401",
    "dht.anacrolix.link:42069",
    "router.bittorrent.cloud:42069",
];

/// Peer discovery of a node. PEX (BEP 11) is always on for public torrents (librqbit has no
/// switch for it, and status-go's client has it on too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Join the mainline DHT: every seeded torrent is announced there, every download asks it.
    pub dht: bool,
    /// DHT bootstrap nodes (`host:port`); empty means [`STATUS_DHT_ROUTERS`].
    pub dht_bootstrap: Vec<String>,
    /// The announce list of every torrent this node seeds (one tier per URL, written into the
    /// `.torrent` and the magnet link as status-go does), also announced to by every download.
    /// Empty: none.
    pub trackers: Vec<String>,
    /// Downloads also announce to the `tr` trackers of their magnet link (status-go's client does).
    pub magnet_trackers: bool,
    /// BEP 14 local service discovery (multicast on the LAN); status-go's client has none.
    pub lsd: bool,
    /// Accept and dial uTP (BEP 29) on the listen port besides TCP, as status-go's client does.
    pub utp: bool,
    /// Ask the router to forward the listen port (UPnP); off by default for servers.
    pub upnp: bool,
    /// The address other peers can dial: the only `x.pe` peer hint this node gives, and its port
    /// is the one announced to the DHT and trackers. Port 0 means the listen port. `None`: no
    /// hint (status-go gives none) and the listen port is announced.
    pub announce_addr: Option<SocketAddr>,
}

impl Default for Discovery {
    fn default() -> Self {
        Self::status_go()
    }
}

impl Discovery {
    /// status-go's discovery: DHT with the public routers, its two trackers, magnet trackers,
    /// uTP; no LSD, no UPnP (a server's port is forwarded by its operator), no peer hint.
    pub fn status_go() -> Self {
        Self {
            dht: true,
            dht_bootstrap: Vec::new(),
            trackers: STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect(),
            magnet_trackers: true,
            lsd: false,
            utp: true,
            upnp: false,
            announce_addr: None,
        }
    }

    /// Nothing: no DHT, no tracker (not even a magnet's), no LSD, no uTP, no UPnP. Peers come
    /// only from `x.pe` hints, explicit peers and incoming connections.
    pub fn none() -> Self {
        Self {
            dht: false,
            dht_bootstrap: Vec::new(),
            trackers: Vec::new(),
            magnet_trackers: false,
            lsd: false,
            utp: false,
            upnp: false,
            announce_addr: None,
        }
    }

    /// Only the given trackers (replacing a magnet's) and, when `dht_bootstrap` is not empty, the
    /// DHT bootstrapped from those nodes only: what tests and one-shot tools use.
    pub fn only(trackers: Vec<String>, dht_bootstrap: Vec<String>) -> Self {
        Self { dht: !dht_bootstrap.is_empty(), dht_bootstrap, trackers, ..Self::none() }
    }

    /// The DHT bootstrap nodes in use.
    pub fn bootstrap_nodes(&self) -> Vec<String> {
        if self.dht_bootstrap.is_empty() {
            STATUS_DHT_ROUTERS.iter().map(|r| (*r).to_owned()).collect()
        } else {
            self.dht_bootstrap.clone()
        }
    }

    /// Whether the node talks to trackers at all.
    pub fn uses_trackers(&self) -> bool {
        !self.trackers.is_empty() || self.magnet_trackers
    }

    /// The trackers a download of a magnet with trackers `magnet_trackers` announces to.
    pub fn download_trackers(&self, magnet_trackers: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let from_magnet = if self.magnet_trackers { magnet_trackers } else { &[] };
        for t in from_magnet.iter().chain(&self.trackers) {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The `announce-list` of a torrent announced to `trackers`: one tier per URL, as status-go.
    pub fn announce_list(trackers: &[String]) -> Vec<Vec<String>> {
        trackers.iter().map(|t| vec![t.clone()]).collect()
    }
}
