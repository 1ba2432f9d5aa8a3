//! Waku node records (EIP-778 ENRs with 31/WAKU2-ENR fields): what a discovered peer tells us.
//!
//! Fields read: the secp256k1 key (→ libp2p peer id), `ip`/`tcp` (→ `/ip4/…/tcp/…`),
//! `multiaddrs` (2-byte big-endian length, then the multiaddr bytes, repeated), `waku2` (one
//! byte of capabilities: relay 1, store 2, filter 4, lightpush 8, sync 16), `rs` (cluster u16,
//! count u8, shards u16 each, big-endian) and `rsv` (cluster u16, then a 1024-bit vector).

use std::net::IpAddr;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::discovery::Enr;

/// The `waku2` relay capability bit.
pub const CAPABILITY_RELAY: u8 = 1;
/// The `waku2` store capability bit.
pub const CAPABILITY_STORE: u8 = 2;

/// Why an ENR is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrError {
    /// Not `enr:` + base64 RLP with a valid v4 signature.
    #[error("invalid ENR: {0}")]
    Invalid(String),
    /// The record's key is not a secp256k1 key.
    #[error("ENR key is not secp256k1")]
    NotSecp256k1,
    /// A Waku field does not follow 31/WAKU2-ENR.
    #[error("ENR field {field}: {reason}")]
    BadField {
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The Waku view of a node record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakuEnr {
    /// The node's libp2p peer id (from its secp256k1 key).
    pub peer_id: crate::PeerId,
    /// Dialable TCP multiaddrs, each ending in `/p2p/<peer id>`.
    pub multiaddrs: Vec<String>,
    /// The `waku2` capabilities, if present.
    pub capabilities: Option<u8>,
    /// The cluster of its shards (`rs` or `rsv`), if present.
    pub cluster_id: Option<u16>,
    /// Its shards (`rs` or `rsv`).
    pub shards: Vec<u16>,
    /// The record's sequence number.
    pub seq: u64,
    /// Its discv5 UDP endpoint, if it announces one.
    pub udp: Option<std::net::SocketAddr>,
    /// The record itself (`enr:…`).
    pub record: String,
}

impl WakuEnr {
    /// Parses and verifies `enr:…`.
    ///
    /// # Errors
    /// [`EnrError`].
    pub fn parse(text: &str) -> Result<WakuEnr, EnrError> {
        let enr: Enr = text.trim().parse().map_err(EnrError::Invalid)?;
        Self::from_enr(&enr)
    }

    pub(crate) fn from_enr(enr: &Enr) -> Result<WakuEnr, EnrError> {
        let peer = peer_id_of(enr)?;
        let mut multiaddrs = Vec::new();
        if let (Some(ip), Some(tcp)) = (enr.ip4(), enr.tcp4()) {
            multiaddrs
                .push(Multiaddr::empty().with(Protocol::Ip4(ip)).with(Protocol::Tcp(tcp)).with(Protocol::P2p(peer)));
        }
        if let Some(raw) = rlp_bytes(enr, "multiaddrs")? {
            for addr in parse_multiaddrs(&raw)? {
                let addr = if addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                    addr
                } else {
                    addr.with(Protocol::P2p(peer))
                };
                if !multiaddrs.contains(&addr) {
                    multiaddrs.push(addr);
                }
            }
        }
        let capabilities = match rlp_bytes(enr, "waku2")? {
            Some(raw) if raw.len() == 1 => Some(raw[0]),
            Some(raw) => return Err(bad("waku2", format!("{} bytes, expected 1", raw.len()))),
            None => None,
        };
        let (cluster_id, shards) = if let Some(raw) = rlp_bytes(enr, "rs")? {
            parse_rs(&raw)?
        } else if let Some(raw) = rlp_bytes(enr, "rsv")? {
            parse_rsv(&raw)?
        } else {
            (None, Vec::new())
        };
        let udp = match (enr.ip4(), enr.udp4()) {
            (Some(ip), Some(port)) => Some(std::net::SocketAddr::new(IpAddr::V4(ip), port)),
            _ => None,
        };
        Ok(WakuEnr {
            peer_id: crate::PeerId(peer),
            multiaddrs: multiaddrs.iter().map(ToString::to_string).collect(),
            capabilities,
            cluster_id,
            shards,
            seq: enr.seq(),
            udp,
            record: format!("enr:{}", enr.to_base64().trim_start_matches("enr:")),
        })
    }

    /// Whether the record names a shard of `cluster` in `shards` (a record without shard
    /// fields is accepted: the metadata exchange decides).
    #[must_use]
    pub fn serves(&self, cluster: u32, shards: &[u32]) -> bool {
        match self.cluster_id {
            None => true,
            Some(theirs) => {
                u32::from(theirs) == cluster
                    && (shards.is_empty() || self.shards.iter().any(|s| shards.contains(&u32::from(*s))))
            }
        }
    }

    pub(crate) fn dial_addrs(&self) -> Vec<Multiaddr> {
        self.multiaddrs.iter().filter_map(|a| a.parse().ok()).collect()
    }
}

fn bad(field: &'static str, reason: String) -> EnrError {
    EnrError::BadField { field, reason }
}

fn peer_id_of(enr: &Enr) -> Result<libp2p::PeerId, EnrError> {
    use ::enr::{CombinedPublicKey, EnrPublicKey as _};
    match enr.public_key() {
        CombinedPublicKey::Secp256k1(key) => {
            let compressed = key.encode();
            let public = libp2p::identity::secp256k1::PublicKey::try_from_bytes(compressed.as_ref())
                .map_err(|_| EnrError::NotSecp256k1)?;
            Ok(libp2p::identity::PublicKey::from(public).to_peer_id())
        }
        CombinedPublicKey::Ed25519(_) => Err(EnrError::NotSecp256k1),
    }
}

/// The payload of an RLP byte string stored under `key`.
fn rlp_bytes(enr: &Enr, key: &'static str) -> Result<Option<Vec<u8>>, EnrError> {
    let Some(raw) = enr.get_raw_rlp(key) else { return Ok(None) };
    let Some((&first, rest)) = raw.split_first() else { return Err(bad(key, "empty".to_owned())) };
    let payload = match first {
        0x00..=0x7f => return Ok(Some(vec![first])),
        0x80..=0xb7 => rest.get(..usize::from(first - 0x80)),
        0xb8..=0xbf => {
            let len_len = usize::from(first - 0xb7);
            let len = rest.get(..len_len).map(|bytes| bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)));
            len.and_then(|len| rest.get(len_len..len_len.checked_add(len)?))
        }
        _ => return Err(bad(key, "an RLP list, expected bytes".to_owned())),
    };
    payload.map(|p| Some(p.to_vec())).ok_or_else(|| bad(key, "truncated".to_owned()))
}

fn parse_multiaddrs(raw: &[u8]) -> Result<Vec<Multiaddr>, EnrError> {
    let mut addrs = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => return Err(bad("multiaddrs", "truncated length".to_owned())),
        };
        let bytes = tail.get(..len).ok_or_else(|| bad("multiaddrs", "truncated multiaddr".to_owned()))?;
        let addr = Multiaddr::try_from(bytes.to_vec()).map_err(|err| bad("multiaddrs", err.to_string()))?;
        addrs.push(addr);
        rest = &tail[len..];
    }
    Ok(addrs)
}

fn parse_rs(raw: &[u8]) -> Result<(Option<u16>, Vec<u16>), EnrError> {
    let [c0, c1, count, shards @ ..] = raw else { return Err(bad("rs", "shorter than 3 bytes".to_owned())) };
    if shards.len() != usize::from(*count) * 2 {
        return Err(bad("rs", format!("{count} shards announced, {} bytes follow", shards.len())));
    }
    let list = shards.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
    Ok((Some(u16::from_be_bytes([*c0, *c1])), list))
}

fn parse_rsv(raw: &[u8]) -> Result<(Option<u16>, Vec<u16>), EnrError> {
    let [c0, c1, bits @ ..] = raw else { return Err(bad("rsv", "shorter than 2 bytes".to_owned())) };
    if bits.len() != 128 {
        return Err(bad("rsv", format!("{} bytes of bit vector, expected 128", bits.len())));
    }
    // As go-waku's FromBitVector: shard 8 i + j is bit j (LSB first) of byte i.
    let mut shards = Vec::new();
    for shard in 0u16..1024 {
        if bits[usize::from(shard / 8)] & (1 << (shard % 8)) != 0 {
            shards.push(shard);
        }
    }
    Ok((Some(u16::from_be_bytes([*c0, *c1])), shards))
}
