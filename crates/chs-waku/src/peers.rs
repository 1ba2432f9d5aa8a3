//! The peer manager: which peers we know (and from where), whom to dial next, when to redial a
//! peer that dropped (exponential backoff), which peers to drop (metadata mismatch, dead on
//! ping), and how many connections we keep. Pure bookkeeping: the event loop in `node.rs`
//! feeds it swarm events and carries out its decisions, so it is tested without sockets.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

/// At most this many peers are remembered; discovered peers beyond it are not added (a flood of
/// records from discovery cannot grow the table without bound). Static peers always are.
pub(crate) const MAX_KNOWN_PEERS: usize = 1000;

/// Where we learnt of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerSource {
    /// Configured (`bootstrap_peers`) or dialled through [`crate::WakuHandle::dial`].
    Static,
    /// An EIP-1459 ENR tree (DNS discovery).
    Dns,
    /// discv5.
    Discv5,
    /// 34/WAKU2-PEER-EXCHANGE.
    PeerExchange,
    /// It dialled us.
    Inbound,
}

impl PeerSource {
    /// Its name in logs and JSON (`static`, `dns`, `discv5`, `peer-exchange`, `inbound`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PeerSource::Static => "static",
            PeerSource::Dns => "dns",
            PeerSource::Discv5 => "discv5",
            PeerSource::PeerExchange => "peer-exchange",
            PeerSource::Inbound => "inbound",
        }
    }
}

impl fmt::Display for PeerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the manager behaves (from [`crate::Config`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerLimits {
    /// Dial known peers while fewer than this many are connected.
    pub(crate) target_peers: usize,
    /// Refuse inbound connections beyond this many peers.
    pub(crate) max_peers: usize,
    /// First redial delay after a drop or a failed dial.
    pub(crate) backoff_initial: Duration,
    /// Longest redial delay.
    pub(crate) backoff_max: Duration,
    /// Consecutive failed pings after which a peer is dropped.
    pub(crate) max_ping_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; may be dialled from `next_dial` on.
    Idle {
        next_dial: Instant,
    },
    Dialing,
    Connected,
    /// Refused after its metadata or ENR (other cluster, no common shard): never dialled again.
    Refused,
}

#[derive(Debug, Clone)]
struct Known {
    addrs: Vec<Multiaddr>,
    source: PeerSource,
    state: State,
    /// Current redial delay (doubles on each failure up to the maximum).
    backoff: Duration,
    ping_failures: u32,
    shards: Vec<u32>,
    /// It announced store v3 (identify).
    store: bool,
}

/// One peer as reported by [`crate::WakuHandle::peers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: crate::PeerId,
    /// Where we learnt of it.
    pub source: PeerSource,
    /// Connected now.
    pub connected: bool,
    /// The shards it announced (metadata, or its ENR's `rs`).
    pub shards: Vec<u32>,
    /// Its addresses.
    pub addrs: Vec<String>,
    /// It serves 13/WAKU2-STORE v3 (announced in identify): a store node to catch up from.
    pub store: bool,
}

/// The peer manager's state.
#[derive(Debug)]
pub(crate) struct PeerManager {
    limits: PeerLimits,
    known: HashMap<PeerId, Known>,
}

impl PeerManager {
    pub(crate) fn new(limits: PeerLimits) -> Self {
        Self { limits, known: HashMap::new() }
    }

    /// Remembers a dialable peer (a new address of a known peer is added). Returns `true` if
    /// the peer is new, or was known only because it dialled us.
    pub(crate) fn add(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, source: PeerSource, now: Instant) -> bool {
        match self.known.get_mut(&peer) {
            Some(known) => {
                for addr in addrs {
                    if !known.addrs.contains(&addr) {
                        known.addrs.push(addr);
                    }
                }
                // A peer that dialled us and is now also discovered takes the better source
                // (and counts as learnt: it can be redialled now).
                if known.source == PeerSource::Inbound && source != PeerSource::Inbound {
                    known.source = source;
                    return true;
                }
                false
            }
            None => {
                if source != PeerSource::Static && self.known.len() >= MAX_KNOWN_PEERS {
                    tracing::debug!(%peer, %source, "peer table full: discovered peer not added");
                    return false;
                }
                self.known.insert(
                    peer,
                    Known {
                        addrs,
                        source,
                        state: State::Idle { next_dial: now },
                        backoff: self.limits.backoff_initial,
                        ping_failures: 0,
                        shards: Vec::new(),
                        store: false,
                    },
                );
                true
            }
        }
    }

    /// Peers to dial now: known, idle, due, not refused, with an address; as many as bring
    /// connected + dialing up to the target. Marks them dialing.
    pub(crate) fn due_dials(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let busy = self.known.values().filter(|k| matches!(k.state, State::Connected | State::Dialing)).count();
        let room = self.limits.target_peers.saturating_sub(busy);
        if room == 0 {
            return Vec::new();
        }
        let mut due: Vec<(PeerSource, Instant, PeerId)> = self
            .known
            .iter()
            .filter(|(_, k)| !k.addrs.is_empty())
            .filter_map(|(peer, k)| match k.state {
                State::Idle { next_dial } if next_dial <= now => Some((k.source, next_dial, *peer)),
                _ => None,
            })
            .collect();
        due.sort();
        due.truncate(room);
        due.into_iter()
            .filter_map(|(_, _, peer)| {
                let known = self.known.get_mut(&peer)?;
                known.state = State::Dialing;
                Some((peer, known.addrs.clone()))
            })
            .collect()
    }

    /// The target peer count.
    pub(crate) fn target(&self) -> usize {
        self.limits.target_peers
    }

    /// How many known peers are connected.
    pub(crate) fn connected_count(&self) -> usize {
        self.known.values().filter(|k| k.state == State::Connected).count()
    }

    /// A first connection to `peer` is up. Returns `false` if it should be refused because we
    /// are at `max_peers` (only inbound connections are refused).
    pub(crate) fn connected(&mut self, peer: PeerId, dialer_addr: Option<Multiaddr>, now: Instant) -> bool {
        let inbound = dialer_addr.is_none();
        if inbound && !self.known.contains_key(&peer) && self.connected_count() >= self.limits.max_peers {
            return false;
        }
        let known = self.known.entry(peer).or_insert_with(|| Known {
            addrs: Vec::new(),
            source: if inbound { PeerSource::Inbound } else { PeerSource::Static },
            state: State::Idle { next_dial: now },
            backoff: self.limits.backoff_initial,
            ping_failures: 0,
            shards: Vec::new(),
            store: false,
        });
        if let Some(addr) = dialer_addr
            && !known.addrs.contains(&addr)
        {
            known.addrs.push(addr);
        }
        if known.state != State::Refused {
            known.state = State::Connected;
        }
        known.ping_failures = 0;
        true
    }

    /// A dial of `peer` was started outside [`PeerManager::due_dials`].
    pub(crate) fn dialing(&mut self, peer: &PeerId) {
        if let Some(known) = self.known.get_mut(peer)
            && matches!(known.state, State::Idle { .. })
        {
            known.state = State::Dialing;
        }
    }

    /// The connection stayed up long enough to count as healthy: reset the backoff.
    pub(crate) fn healthy(&mut self, peer: &PeerId) {
        if let Some(known) = self.known.get_mut(peer) {
            known.backoff = self.limits.backoff_initial;
        }
    }

    /// The last connection to `peer` closed: redial after the backoff (peers that only dialled
    /// us, and have no address, are forgotten).
    pub(crate) fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        let Some(known) = self.known.get_mut(peer) else { return };
        known.store = false;
        if known.state == State::Refused {
            return;
        }
        if known.addrs.is_empty() {
            self.known.remove(peer);
            return;
        }
        known.state = State::Idle { next_dial: now + known.backoff };
        known.backoff = (known.backoff * 2).min(self.limits.backoff_max);
    }

    /// A dial of `peer` failed: try again after the backoff.
    pub(crate) fn dial_failed(&mut self, peer: &PeerId, now: Instant) {
        let Some(known) = self.known.get_mut(peer) else { return };
        if matches!(known.state, State::Dialing | State::Idle { .. }) {
            known.state = State::Idle { next_dial: now + known.backoff };
            known.backoff = (known.backoff * 2).min(self.limits.backoff_max);
        }
    }

    /// The peer's metadata (or ENR) excludes it: never dial it again.
    pub(crate) fn refuse(&mut self, peer: PeerId) {
        if let Some(known) = self.known.get_mut(&peer) {
            known.state = State::Refused;
        }
    }

    /// Whether `peer` was refused before (a discovered peer is then not re-added as new).
    pub(crate) fn is_refused(&self, peer: &PeerId) -> bool {
        self.known.get(peer).is_some_and(|k| k.state == State::Refused)
    }

    /// Records the shards a peer announced.
    pub(crate) fn set_shards(&mut self, peer: &PeerId, shards: Vec<u32>) {
        if let Some(known) = self.known.get_mut(peer) {
            known.shards = shards;
        }
    }

    /// Records whether a peer serves store v3; `true` if that is news (it did not before).
    pub(crate) fn set_store(&mut self, peer: &PeerId, store: bool) -> bool {
        let Some(known) = self.known.get_mut(peer) else { return false };
        let news = store && !known.store;
        known.store = store;
        news
    }

    /// A ping result; `true` when the peer has now failed too many pings in a row and must be
    /// disconnected.
    pub(crate) fn ping_result(&mut self, peer: &PeerId, ok: bool) -> bool {
        let Some(known) = self.known.get_mut(peer) else { return false };
        if ok {
            known.ping_failures = 0;
            return false;
        }
        known.ping_failures += 1;
        known.ping_failures >= self.limits.max_ping_failures
    }

    /// Every known peer (for status output).
    pub(crate) fn infos(&self) -> Vec<PeerInfo> {
        let mut infos: Vec<PeerInfo> = self
            .known
            .iter()
            .filter(|(_, k)| k.state != State::Refused)
            .map(|(peer, k)| PeerInfo {
                peer_id: crate::PeerId(*peer),
                source: k.source,
                connected: k.state == State::Connected,
                shards: k.shards.clone(),
                addrs: k.addrs.iter().map(ToString::to_string).collect(),
                store: k.store,
            })
            .collect();
        infos.sort_by_key(|info| (info.source, info.peer_id));
        infos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PeerLimits {
        PeerLimits {
            target_peers: 2,
            max_peers: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(4),
            max_ping_failures: 2,
        }
    }

    fn peer() -> PeerId {
        crate::key::ephemeral().public().to_peer_id()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("multiaddr")
    }

    #[test]
    fn dials_up_to_the_target_static_first() {
        let now = Instant::now();
        let mut pm = PeerManager::new(limits());
        let (a, b, c) = (peer(), peer(), peer());
        pm.add(a, vec![addr(1)], PeerSource::Discv5, now);
        pm.add(b, vec![addr(2)], PeerSource::Static, now);
        pm.add(c, vec![addr(3)], PeerSource::Dns, now);
        let first: Vec<PeerId> = pm.due_dials(now).into_iter().map(|(p, _)| p).collect();
        assert_eq!(first, vec![b, c]);
        // Two dialing: the target is reached, nothing more.
        assert!(pm.due_dials(now).is_empty());
        pm.dial_failed(&c, now);
        assert_eq!(pm.due_dials(now).into_iter().map(|(p, _)| p).collect::<Vec<_>>(), vec![a]);
    }

    #[test]
    fn redial_backoff_doubles_up_to_the_maximum_and_resets_when_healthy() {
        let now = Instant::now();
        let mut pm = PeerManager::new(limits());
        let a = peer();
        pm.add(a, vec![addr(1)], PeerSource::Static, now);
        assert_eq!(pm.due_dials(now).len(), 1);
        let mut at = now;
        for expected in [1, 2, 4, 4] {
            pm.dial_failed(&a, at);
            assert!(pm.due_dials(at + Duration::from_millis(expected * 1000 - 1)).is_empty());
            at += Duration::from_secs(expected);
            assert_eq!(pm.due_dials(at).len(), 1, "after {expected} s");
        }
        assert!(pm.connected(a, Some(addr(1)), at));
        pm.healthy(&a);
        pm.disconnected(&a, at);
        assert_eq!(pm.due_dials(at + Duration::from_secs(1)).len(), 1);
    }

    #[test]
    fn inbound_beyond_max_peers_is_refused_and_refused_peers_are_never_redialled() {
        let now = Instant::now();
        let mut pm = PeerManager::new(limits());
        for _ in 0..3 {
            assert!(pm.connected(peer(), None, now));
        }
        assert!(!pm.connected(peer(), None, now), "a fourth inbound peer");
        // Our own dial is always kept.
        let ours = peer();
        pm.add(ours, vec![addr(9)], PeerSource::Static, now);
        assert!(pm.connected(ours, Some(addr(9)), now));
        pm.refuse(ours);
        pm.disconnected(&ours, now);
        assert!(pm.is_refused(&ours));
        assert!(pm.due_dials(now + Duration::from_secs(600)).is_empty());
        // The three inbound peers are listed, the refused one is not.
        assert_eq!(pm.infos().len(), 3);
    }

    #[test]
    fn the_peer_table_is_bounded_for_discovered_peers() {
        let now = Instant::now();
        let mut pm = PeerManager::new(limits());
        for port in 0..u16::try_from(MAX_KNOWN_PEERS).expect("fits") {
            assert!(pm.add(peer(), vec![addr(port)], PeerSource::Discv5, now));
        }
        assert!(!pm.add(peer(), vec![addr(1)], PeerSource::PeerExchange, now));
        assert!(pm.add(peer(), vec![addr(1)], PeerSource::Static, now));
        assert_eq!(pm.infos().len(), MAX_KNOWN_PEERS + 1);
    }

    #[test]
    fn a_peer_failing_pings_in_a_row_is_dropped() {
        let now = Instant::now();
        let mut pm = PeerManager::new(limits());
        let a = peer();
        assert!(pm.connected(a, Some(addr(1)), now));
        assert!(!pm.ping_result(&a, false));
        assert!(!pm.ping_result(&a, true));
        assert!(!pm.ping_result(&a, false));
        assert!(pm.ping_result(&a, false));
    }
}
