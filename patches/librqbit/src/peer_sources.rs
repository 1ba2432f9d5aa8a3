//! chs patch (whole file): where each peer of a torrent came from, and how its announces went.
//!
//! One [`TorrentDiscovery`] per info hash lives in the session (`Session::torrent_discovery`),
//! from the first peer stream made for the torrent (magnet resolution included) until
//! `Session::forget_discovery`: removing and re-adding the same torrent keeps it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;

/// Where a peer address was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerSource {
    /// A DHT `get_peers` lookup.
    Dht,
    /// A tracker's announce response.
    Tracker,
    /// A peer-exchange (ut_pex) message from a connected peer.
    Pex,
    /// The peer connected to us.
    Incoming,
    /// Given when the torrent was added (`AddTorrentOptions::initial_peers`: magnet `x.pe`
    /// hints, configured peers).
    Initial,
    /// Local service discovery.
    Lsd,
}

/// The outcome of the announces to one tracker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerAnnounce {
    /// Announces answered.
    pub ok: u64,
    /// Announces that failed.
    pub errors: u64,
    /// When the last announce ended (either way).
    pub last_announce: Option<SystemTime>,
    /// When the last announce succeeded.
    pub last_ok: Option<SystemTime>,
    /// Peers returned by the last successful announce.
    pub last_peers: usize,
    /// The last error (with its causes) and when; kept after a later success.
    pub last_error: Option<(SystemTime, String)>,
    /// Whether the last announce succeeded.
    pub last_was_ok: bool,
}

/// Peer sources and announce outcomes of one torrent.
#[derive(Debug, Default)]
pub struct TorrentDiscovery {
    peers: RwLock<HashMap<SocketAddr, Vec<PeerSource>>>,
    trackers: RwLock<BTreeMap<String, TrackerAnnounce>>,
    dht: Arc<dht::AnnounceStats>,
}

impl TorrentDiscovery {
    /// Records that `source` gave `addr`.
    pub fn record_peer(&self, addr: SocketAddr, source: PeerSource) {
        if self
            .peers
            .read()
            .get(&addr)
            .is_some_and(|s| s.contains(&source))
        {
            return;
        }
        let mut peers = self.peers.write();
        let sources = peers.entry(addr).or_default();
        if !sources.contains(&source) {
            sources.push(source);
            sources.sort_unstable();
        }
    }

    /// Records an announce to `tracker`: the peers it returned, or the error.
    pub fn record_announce(&self, tracker: &str, result: Result<usize, String>) {
        let now = SystemTime::now();
        let mut trackers = self.trackers.write();
        let t = trackers.entry(tracker.to_owned()).or_default();
        t.last_announce = Some(now);
        match result {
            Ok(peers) => {
                t.ok += 1;
                t.last_ok = Some(now);
                t.last_peers = peers;
                t.last_was_ok = true;
            }
            Err(e) => {
                t.errors += 1;
                t.last_error = Some((now, e));
                t.last_was_ok = false;
            }
        }
    }

    /// Every address learnt, with its sources (sorted).
    pub fn peers(&self) -> Vec<(SocketAddr, Vec<PeerSource>)> {
        let mut v: Vec<_> = self
            .peers
            .read()
            .iter()
            .map(|(a, s)| (*a, s.clone()))
            .collect();
        v.sort_unstable();
        v
    }

    /// Per tracker URL, the outcome of its announces.
    pub fn trackers(&self) -> Vec<(String, TrackerAnnounce)> {
        self.trackers
            .read()
            .iter()
            .map(|(u, t)| (u.clone(), t.clone()))
            .collect()
    }

    /// The DHT announces (`announce_peer`) of this torrent.
    pub fn dht_announces(&self) -> &dht::AnnounceStats {
        &self.dht
    }

    pub(crate) fn dht_stats(&self) -> Arc<dht::AnnounceStats> {
        self.dht.clone()
    }
}
