//! Discovery tasks that feed the peer manager: EIP-1459 DNS trees ([`crate::dns`]) and discv5
//! (sigp's `discv5`, with our own ENR carrying `waku2` and `rs`). Each runs as its own task
//! next to the swarm task and hands what it finds to the node through
//! [`crate::WakuHandle`]; records of another cluster or without a common shard are dropped
//! here, before any dial.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enr::{CombinedKey, NodeId};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dns::DnsDiscovery;
use crate::enr::{CAPABILITY_RELAY, WakuEnr};
use crate::node::{DiscoveredPeer, WakuHandle};
use crate::peers::PeerSource;

/// A node record as discv5 and DNS discovery carry it.
pub(crate) type Enr = discv5::Enr;

/// The RLP records our peer-exchange server hands out (filled from the discv5 table).
pub(crate) type PxCache = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Waku's discv5 network is separate from Ethereum's: its packets carry the protocol id
/// `d5waku` instead of `discv5` (nwaku, go-waku).
const WAKU_DISCV5_PROTOCOL_ID: &[u8; 6] = b"d5waku";

/// First retry delay of a failed DNS resolution (doubled up to [`DNS_RETRY_MAX`]).
const DNS_RETRY_FIRST: Duration = Duration::from_secs(5);
const DNS_RETRY_MAX: Duration = Duration::from_secs(600);
/// A resolved tree is read again after this long.
const DNS_REFRESH: Duration = Duration::from_secs(3600);

/// What the discovery tasks need to know of the node.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) cluster_id: u32,
    pub(crate) shards: Vec<u32>,
}

/// The `enrs` that serve our cluster and shards, as peers to dial.
pub(crate) fn dialable(enrs: &[WakuEnr], source: PeerSource, filter: &Filter) -> Vec<DiscoveredPeer> {
    enrs.iter()
        .filter(|enr| {
            let keep = enr.serves(filter.cluster_id, &filter.shards);
            if !keep {
                tracing::debug!(peer = %enr.peer_id, cluster = ?enr.cluster_id, shards = ?enr.shards, %source, "discovered peer on other shards: not dialled");
            }
            keep
        })
        .filter_map(|enr| {
            let addrs = enr.dial_addrs();
            (!addrs.is_empty()).then(|| DiscoveredPeer {
                peer_id: enr.peer_id.0,
                addrs,
                source,
                shards: enr.shards.iter().map(|s| u32::from(*s)).collect(),
            })
        })
        .collect()
}

/// Hands `enrs` that serve our cluster and shards to the peer manager.
async fn hand_over(handle: &WakuHandle, enrs: &[WakuEnr], source: PeerSource, filter: &Filter) -> usize {
    let peers = dialable(enrs, source, filter);
    if peers.is_empty() {
        return 0;
    }
    handle.add_peers(peers).await.unwrap_or(0)
}

/// Resolves each tree, hands its nodes over (and their records to discv5, as status-go does),
/// retries failures with backoff and refreshes every hour.
pub(crate) fn spawn_dns(
    handle: WakuHandle,
    urls: Vec<String>,
    nameserver: Option<SocketAddr>,
    filter: Filter,
    to_discv5: Option<mpsc::Sender<Enr>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match DnsDiscovery::new(nameserver) {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(%err, "DNS discovery disabled");
                return;
            }
        };
        let mut tasks = Vec::new();
        for url in urls {
            let client = client.clone();
            let handle = handle.clone();
            let filter = filter.clone();
            let to_discv5 = to_discv5.clone();
            tasks.push(tokio::spawn(async move {
                let mut retry = DNS_RETRY_FIRST;
                loop {
                    let wait = match client.resolve(&url).await {
                        Ok(enrs) => {
                            let new = hand_over(&handle, &enrs, PeerSource::Dns, &filter).await;
                            tracing::info!(%url, nodes = enrs.len(), new, "DNS discovery");
                            if let Some(to_discv5) = &to_discv5 {
                                for enr in &enrs {
                                    if let Ok(record) = enr.record.parse::<Enr>() {
                                        let _ = to_discv5.send(record).await;
                                    }
                                }
                            }
                            retry = DNS_RETRY_FIRST;
                            DNS_REFRESH
                        }
                        Err(err) => {
                            tracing::warn!(%url, %err, ?retry, "DNS discovery failed");
                            let wait = retry;
                            retry = (retry * 2).min(DNS_RETRY_MAX);
                            wait
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    })
}

/// discv5 settings.
#[derive(Debug, Clone)]
pub(crate) struct Discv5Settings {
    /// UDP address to bind (port 0: any).
    pub(crate) listen: SocketAddr,
    /// Our TCP (libp2p) listen address announced in our ENR.
    pub(crate) tcp: Option<(Ipv4Addr, u16)>,
    pub(crate) bootstrap: Vec<String>,
    pub(crate) interval: Duration,
}

/// Our ENR and discv5 service, started. Returns the running service, its local ENR text and
/// the task feeding the peer manager.
pub(crate) async fn start_discv5(
    handle: WakuHandle,
    secret: &mut [u8],
    settings: Discv5Settings,
    filter: Filter,
    mut from_dns: mpsc::Receiver<Enr>,
    px_cache: PxCache,
) -> Result<(Arc<discv5::Discv5>, String, JoinHandle<()>), String> {
    let key = CombinedKey::secp256k1_from_bytes(secret).map_err(|err| format!("node key: {err}"))?;
    let mut builder = enr::Enr::builder();
    let ip = match (settings.listen, settings.tcp) {
        (SocketAddr::V4(udp), _) if !udp.ip().is_unspecified() => Some(*udp.ip()),
        (_, Some((ip, _))) if !ip.is_unspecified() => Some(ip),
        _ => None,
    };
    if let Some(ip) = ip {
        builder.ip4(ip);
    }
    if let Some((_, tcp)) = settings.tcp {
        builder.tcp4(tcp);
    }
    builder.add_value_rlp("waku2", rlp_bytes(&[CAPABILITY_RELAY]));
    if let Some(rs) = rs_field(filter.cluster_id, &filter.shards) {
        builder.add_value_rlp("rs", rlp_bytes(&rs));
    }
    // Bound here so that port 0 gives a port we can put in our ENR.
    let socket = tokio::net::UdpSocket::bind(settings.listen)
        .await
        .map_err(|err| format!("discv5 UDP {}: {err}", settings.listen))?;
    let bound = socket.local_addr().map_err(|err| err.to_string())?;
    handle.set_discv5_addr(bound);
    let port = bound.port();
    builder.udp4(port);
    let local = builder.build(&key).map_err(|err| format!("our ENR: {err:?}"))?;
    let config =
        discv5::ConfigBuilder::new(discv5::ListenConfig::FromSockets { ipv4: Some(Arc::new(socket)), ipv6: None })
            .protocol_identity(discv5::ProtocolIdentity {
                protocol_id: *WAKU_DISCV5_PROTOCOL_ID,
                protocol_version: 1u16.to_be_bytes(),
            })
            .build();
    let mut service = discv5::Discv5::new(local, key, config)?;
    service.start().await.map_err(|err| format!("discv5 start: {err:?}"))?;
    let local_text = service.local_enr().to_base64();
    tracing::info!(enr = %local_text, udp = port, "discv5 started");
    for text in &settings.bootstrap {
        match text.trim().parse::<Enr>() {
            Ok(enr) => {
                if let Err(err) = service.add_enr(enr) {
                    tracing::warn!(%err, "discv5 bootstrap ENR refused");
                }
            }
            Err(err) => tracing::warn!(%err, enr = %text, "invalid discv5 bootstrap ENR"),
        }
    }
    let service = Arc::new(service);
    let discv5 = Arc::clone(&service);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(enr) = from_dns.recv() => {
                    let _ = discv5.add_enr(enr);
                    continue;
                }
            }
            let found = match discv5.find_node(NodeId::random()).await {
                Ok(found) => found,
                Err(err) => {
                    tracing::debug!(%err, "discv5 query failed");
                    Vec::new()
                }
            };
            let table = discv5.table_entries_enr();
            // What our peer-exchange server hands out: Waku relay nodes of our table.
            let records: Vec<Vec<u8>> = table
                .iter()
                .filter(|record| {
                    WakuEnr::from_enr(record).is_ok_and(|enr| {
                        enr.capabilities.is_some_and(|c| c & CAPABILITY_RELAY != 0) && !enr.multiaddrs.is_empty()
                    })
                })
                .filter_map(|record| crate::peer_exchange::enr_text_to_rlp(&record.to_base64()))
                .collect();
            if let Ok(mut cache) = px_cache.lock() {
                *cache = records;
            }
            let mut enrs: Vec<WakuEnr> = Vec::new();
            for record in found.iter().chain(table.iter()) {
                match WakuEnr::from_enr(record) {
                    Ok(enr) if !enrs.iter().any(|e| e.peer_id == enr.peer_id) => enrs.push(enr),
                    Ok(_) => {}
                    Err(err) => tracing::debug!(%err, "unusable ENR from discv5"),
                }
            }
            let new = hand_over(&handle, &enrs, PeerSource::Discv5, &filter).await;
            if new > 0 {
                tracing::info!(new, records = enrs.len(), "discv5 discovery");
            }
        }
    });
    Ok((service, local_text, task))
}

/// `rs`: cluster u16, count u8, shards u16, all big-endian (31/WAKU2-ENR).
fn rs_field(cluster: u32, shards: &[u32]) -> Option<Vec<u8>> {
    let cluster = u16::try_from(cluster).ok()?;
    let shards: Vec<u16> = shards.iter().filter_map(|s| u16::try_from(*s).ok()).collect();
    let count = u8::try_from(shards.len()).ok()?;
    let mut out = cluster.to_be_bytes().to_vec();
    out.push(count);
    for shard in shards {
        out.extend_from_slice(&shard.to_be_bytes());
    }
    Some(out)
}

/// The RLP encoding of a byte string.
fn rlp_bytes(data: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(data.len() + 9);
    match data {
        [single] if *single < 0x80 => out.push(*single),
        _ if data.len() <= 55 => {
            // Fits: at most 55.
            #[allow(clippy::cast_possible_truncation)]
            out.push(0x80 + data.len() as u8);
            out.extend_from_slice(data);
        }
        _ => {
            let len = data.len().to_be_bytes();
            let skip = len.iter().take_while(|b| **b == 0).count();
            // At most 8 length bytes.
            #[allow(clippy::cast_possible_truncation)]
            out.push(0xb7 + (len.len() - skip) as u8);
            out.extend_from_slice(&len[skip..]);
            out.extend_from_slice(data);
        }
    }
    out.into()
}

/// The first IPv4 TCP listen address (for our ENR).
pub(crate) fn tcp_of(addrs: &[Multiaddr]) -> Option<(Ipv4Addr, u16)> {
    addrs.iter().find_map(|addr| {
        let mut ip = None;
        let mut port = None;
        for protocol in addr {
            match protocol {
                Protocol::Ip4(v) => ip = Some(v),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        Some((ip?, port?))
    })
}

/// The discovery tasks of a node; dropping it stops them (and discv5).
#[derive(Default)]
pub(crate) struct Running {
    tasks: Vec<JoinHandle<()>>,
    discv5: Option<Arc<discv5::Discv5>>,
    /// Our ENR when discv5 runs.
    pub(crate) local_enr: Option<String>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("tasks", &self.tasks.len())
            .field("discv5", &self.discv5.is_some())
            .field("local_enr", &self.local_enr)
            .finish()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.discv5.take();
    }
}

/// Starts what `config` asks for: DNS discovery, discv5.
pub(crate) async fn start(
    handle: &WakuHandle,
    config: &crate::Config,
    secret: Option<Vec<u8>>,
    listen: &[Multiaddr],
    filter: Filter,
    px_cache: PxCache,
) -> Running {
    let mut running = Running::default();
    let (to_discv5, from_dns) = mpsc::channel(256);
    if config.discv5 {
        let ip = tcp_of(listen).map_or(Ipv4Addr::LOCALHOST, |(ip, _)| ip);
        let settings = Discv5Settings {
            listen: SocketAddr::from((ip, config.discv5_port)),
            tcp: tcp_of(listen),
            bootstrap: config.discv5_bootstrap.clone(),
            interval: config.discv5_interval,
        };
        match secret {
            Some(mut secret) => {
                match start_discv5(handle.clone(), &mut secret, settings, filter.clone(), from_dns, px_cache).await {
                    Ok((service, enr, task)) => {
                        running.discv5 = Some(service);
                        running.local_enr = Some(enr);
                        running.tasks.push(task);
                    }
                    Err(err) => tracing::warn!(%err, "discv5 not started"),
                }
            }
            None => tracing::warn!("discv5 needs a secp256k1 node key: not started"),
        }
    }
    if !config.dns_discovery.is_empty() {
        let to_discv5 = running.discv5.is_some().then_some(to_discv5);
        running.tasks.push(spawn_dns(
            handle.clone(),
            config.dns_discovery.clone(),
            config.nameserver,
            filter,
            to_discv5,
        ));
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enr::EnrError;

    fn record(fields: &[(&str, &[u8])]) -> String {
        let key = CombinedKey::generate_secp256k1();
        let mut builder = enr::Enr::builder();
        builder.ip4(Ipv4Addr::LOCALHOST).tcp4(60000);
        for (name, value) in fields {
            builder.add_value_rlp(name, rlp_bytes(value));
        }
        builder.build(&key).expect("record").to_base64()
    }

    #[test]
    fn waku_fields_of_a_record_are_read() {
        let rs = rs_field(16, &[32, 64]).expect("rs");
        let text = record(&[("waku2", &[CAPABILITY_RELAY]), ("rs", &rs)]);
        let enr = WakuEnr::parse(&text).expect("valid");
        assert_eq!((enr.capabilities, enr.cluster_id, enr.shards.clone()), (Some(1), Some(16), vec![32, 64]));
        assert_eq!(enr.multiaddrs.len(), 1);
        assert!(enr.multiaddrs[0].starts_with("/ip4/127.0.0.1/tcp/60000/p2p/16Uiu2"), "{:?}", enr.multiaddrs);
        assert!(enr.serves(16, &[64]) && !enr.serves(16, &[1]) && !enr.serves(1, &[32]));
        // rsv: a 1024-bit vector, shard 8 i + j is bit j of byte i.
        let mut rsv = vec![0, 16];
        rsv.extend([0u8; 128]);
        rsv[2 + 4] = 1; // shard 32
        let enr = WakuEnr::parse(&record(&[("rsv", &rsv)])).expect("valid");
        assert_eq!((enr.cluster_id, enr.shards), (Some(16), vec![32]));
    }

    #[test]
    fn hostile_records_are_typed_errors() {
        for (name, value) in [
            ("rs", &[0u8, 16, 2, 0, 32][..]),
            ("rs", &[0u8, 16][..]),
            ("rsv", &[0u8, 16, 1, 2][..]),
            ("waku2", &[1u8, 2][..]),
            ("multiaddrs", &[0u8, 9, 1][..]),
            ("multiaddrs", &[0u8, 2, 0xff, 0xff][..]),
        ] {
            let err = WakuEnr::parse(&record(&[(name, value)])).expect_err(name);
            assert!(matches!(err, EnrError::BadField { .. }), "{name}: {err}");
        }
        assert!(matches!(WakuEnr::parse("enr:not-base64!"), Err(EnrError::Invalid(_))));
        // A record whose signature does not match its content.
        let good = record(&[]);
        let mut bytes = crate::peer_exchange::enr_text_to_rlp(&good).expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let forged = crate::peer_exchange::rlp_to_enr_text(&bytes);
        assert!(WakuEnr::parse(&forged).is_err());
    }
}
