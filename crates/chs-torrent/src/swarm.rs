//! What a torrent's swarm looks like from this node: each peer with where it came from, and the
//! outcome of the announces to its trackers and to the DHT (issue 17 item 6). Read from the
//! librqbit patch's per-torrent records (`patches/librqbit/src/peer_sources.rs`), which survive
//! the torrent being removed and re-added (a download's `finish`) and are dropped when it is
//! unseeded or discarded.

use std::net::SocketAddr;
use std::time::SystemTime;

use librqbit::peer_sources::{PeerSource as RqSource, TorrentDiscovery};

/// Where a peer address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerOrigin {
    /// A DHT `get_peers` lookup.
    Dht,
    /// A tracker's announce response.
    Tracker,
    /// Peer exchange (ut_pex) from a connected peer.
    Pex,
    /// The peer connected to us (its address is then the remote end of that connection).
    Incoming,
    /// Given to the torrent: the magnet's `x.pe` hints and configured peers.
    Hint,
    /// Local service discovery (multicast on the LAN; off in chs).
    Lsd,
}

impl PeerOrigin {
    /// Every origin, in the order status output lists them.
    pub const ALL: [PeerOrigin; 6] = [
        PeerOrigin::Dht,
        PeerOrigin::Tracker,
        PeerOrigin::Pex,
        PeerOrigin::Incoming,
        PeerOrigin::Hint,
        PeerOrigin::Lsd,
    ];

    /// Lower-case name: `dht`, `tracker`, `pex`, `incoming`, `hint`, `lsd`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerOrigin::Dht => "dht",
            PeerOrigin::Tracker => "tracker",
            PeerOrigin::Pex => "pex",
            PeerOrigin::Incoming => "incoming",
            PeerOrigin::Hint => "hint",
            PeerOrigin::Lsd => "lsd",
        }
    }

    fn from_rqbit(s: RqSource) -> Self {
        match s {
            RqSource::Dht => PeerOrigin::Dht,
            RqSource::Tracker => PeerOrigin::Tracker,
            RqSource::Pex => PeerOrigin::Pex,
            RqSource::Incoming => PeerOrigin::Incoming,
            RqSource::Initial => PeerOrigin::Hint,
            RqSource::Lsd => PeerOrigin::Lsd,
        }
    }
}

impl std::fmt::Display for PeerOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One peer address the torrent learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmPeer {
    /// The address.
    pub addr: SocketAddr,
    /// Every source that gave it (sorted, no repeats).
    pub origins: Vec<PeerOrigin>,
    /// Whether librqbit is connected to it now.
    pub connected: bool,
}

/// The announces to one tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerAnnounceStatus {
    /// The tracker's announce URL.
    pub url: String,
    /// Announces answered.
    pub ok: u64,
    /// Announces that failed (unreachable, timeout, failure reason, unresolvable host).
    pub errors: u64,
    /// When the last announce ended, either way.
    pub last_announce: Option<SystemTime>,
    /// Whether the last announce succeeded.
    pub last_ok: bool,
    /// When an announce last succeeded.
    pub last_success: Option<SystemTime>,
    /// Peers the last successful announce returned.
    pub last_peers: usize,
    /// The last error (with its causes), kept after a later success.
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<SystemTime>,
}

/// The torrent's DHT announces (`announce_peer` to the closest nodes that gave a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhtAnnounceStatus {
    /// Announces sent.
    pub sent: u64,
    /// Of those, answered.
    pub acknowledged: u64,
    /// Of those, refused or unanswered.
    pub failed: u64,
}

/// Peers by source and announce outcomes of one torrent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SwarmStatus {
    /// Every peer address learnt, sorted by address.
    pub peers: Vec<SwarmPeer>,
    /// Per tracker, sorted by URL (empty when trackers are off).
    pub trackers: Vec<TrackerAnnounceStatus>,
    /// The DHT announces; `None` when the node's DHT is off.
    pub dht: Option<DhtAnnounceStatus>,
}

impl SwarmStatus {
    /// Peers that `origin` gave (a peer with several sources counts once for each).
    pub fn count(&self, origin: PeerOrigin) -> usize {
        self.peers.iter().filter(|p| p.origins.contains(&origin)).count()
    }

    /// Peers connected now.
    pub fn connected(&self) -> usize {
        self.peers.iter().filter(|p| p.connected).count()
    }

    /// Built from the patch's records; `connected` lists the addresses connected now.
    pub(crate) fn from_rqbit(d: &TorrentDiscovery, connected: &[SocketAddr], dht_on: bool) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let mut peers: Vec<SwarmPeer> = d
            .peers()
            .into_iter()
            .map(|(addr, sources)| {
                let mut origins: Vec<PeerOrigin> = sources.into_iter().map(PeerOrigin::from_rqbit).collect();
                origins.sort_unstable();
                origins.dedup();
                SwarmPeer { addr, origins, connected: connected.contains(&addr) }
            })
            .collect();
        // A connected peer librqbit found some other way (none known today) still shows.
        for addr in connected {
            if !peers.iter().any(|p| p.addr == *addr) {
                peers.push(SwarmPeer { addr: *addr, origins: Vec::new(), connected: true });
            }
        }
        peers.sort_by_key(|p| p.addr);
        let trackers = d
            .trackers()
            .into_iter()
            .map(|(url, t)| TrackerAnnounceStatus {
                url,
                ok: t.ok,
                errors: t.errors,
                last_announce: t.last_announce,
                last_ok: t.last_was_ok,
                last_success: t.last_ok,
                last_peers: t.last_peers,
                last_error_at: t.last_error.as_ref().map(|(at, _)| *at),
                last_error: t.last_error.map(|(_, e)| e),
            })
            .collect();
        let dht = dht_on.then(|| {
            let a = d.dht_announces();
            DhtAnnounceStatus {
                sent: a.sent.load(Relaxed),
                acknowledged: a.acknowledged.load(Relaxed),
                failed: a.failed.load(Relaxed),
            }
        });
        SwarmStatus { peers, trackers, dht }
    }
}
