//! Node configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::topic::{DEFAULT_COMMUNITY_SHARD, DEFAULT_PUBSUB_TOPIC, STATUS_CLUSTER_ID};
use crate::validation::ValidationConfig;

/// How a [`crate::WakuNode`] is set up. `Config::default()` is a Status node (cluster 16,
/// subscribed to `/waku/2/rs/16/32`) with an ephemeral key, listening on `127.0.0.1` on a
/// free port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the node key (`node_key`, 32 secret bytes) lives; created if absent. `None` gives
    /// a fresh key each start (tests).
    pub data_dir: Option<PathBuf>,
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/60000`.
    pub listen_addrs: Vec<String>,
    /// Multiaddrs dialed at start (`…/p2p/<peer id>` recommended). A failing dial is logged, not fatal.
    pub bootstrap_peers: Vec<String>,
    /// Pubsub topics subscribed at start.
    pub pubsub_topics: Vec<String>,
    /// Our cluster id, announced and checked with 66/WAKU2-METADATA.
    pub cluster_id: u32,
    /// Shards announced with 66/WAKU2-METADATA, in addition to those of the subscribed
    /// static-sharding topics of our cluster.
    pub shards: Vec<u32>,
    /// gossipsub heartbeat (1 s as in nwaku; tests may shorten it).
    pub heartbeat_interval: Duration,
    /// Limits for incoming messages.
    pub validation: ValidationConfig,
    /// Capacity of the command queue and of each message/event receiver.
    pub channel_capacity: usize,
    /// How long a connection without relay mesh traffic is kept.
    pub idle_connection_timeout: Duration,
    /// Timeout of a 66/WAKU2-METADATA request.
    pub metadata_timeout: Duration,
    /// On shutdown, how long the swarm keeps running (without taking commands) so that just
    /// published messages leave the send queues.
    pub shutdown_linger: Duration,
    /// How often each connected peer is pinged (`/ipfs/ping/1.0.0`); go-waku pings its relay
    /// peers every 5 s as status-go configures it, js-libp2p every 10 s.
    pub ping_interval: Duration,
    /// How long one ping may take (go-waku: 7 s).
    pub ping_timeout: Duration,
    /// Consecutive failed pings after which a peer is disconnected (go-waku: 2).
    pub max_ping_failures: u32,
    /// The peer manager dials known peers while fewer than this many are connected.
    pub target_peers: usize,
    /// Inbound connections beyond this many peers are closed at once (nwaku's `maxConnections`
    /// is 50).
    pub max_peers: usize,
    /// First delay before redialling a peer that dropped or failed to answer a dial; doubled on
    /// each further failure.
    pub reconnect_backoff: Duration,
    /// Longest redial delay.
    pub max_reconnect_backoff: Duration,
    /// EIP-1459 ENR trees (`enrtree://<key>@<domain>`) resolved at start and every hour;
    /// their nodes go to the peer manager. [`crate::dns::STATUS_PROD_ENRTREE`] is Status'
    /// fleet. Empty by default (a library default sends nothing off the machine).
    pub dns_discovery: Vec<String>,
    /// The nameserver DNS discovery asks (`IP:PORT`); `None`: the system's.
    pub nameserver: Option<SocketAddr>,
    /// Run discv5 (our ENR carries `waku2` = relay and `rs` = our cluster and shards).
    pub discv5: bool,
    /// discv5's UDP port, bound on the IP of the first listen address (0: any free port;
    /// status-go uses 9000).
    pub discv5_port: u16,
    /// ENRs (`enr:…`) discv5 starts from (the nodes of the DNS trees are added too).
    pub discv5_bootstrap: Vec<String>,
    /// How often discv5 looks for new nodes.
    pub discv5_interval: Duration,
    /// 34/WAKU2-PEER-EXCHANGE: serve peers from our discv5 table (needs `discv5`), and ask
    /// connected peers for more while we have fewer than `target_peers`.
    pub peer_exchange: bool,
    /// How often peer exchange asks a peer while below `target_peers` (status-go: 5 s).
    pub peer_exchange_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: None,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".to_owned()],
            bootstrap_peers: Vec::new(),
            pubsub_topics: vec![DEFAULT_PUBSUB_TOPIC.to_owned()],
            cluster_id: STATUS_CLUSTER_ID,
            shards: vec![DEFAULT_COMMUNITY_SHARD],
            heartbeat_interval: Duration::from_secs(1),
            validation: ValidationConfig::default(),
            channel_capacity: 1024,
            idle_connection_timeout: Duration::from_secs(120),
            metadata_timeout: Duration::from_secs(10),
            shutdown_linger: Duration::from_millis(250),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(7),
            max_ping_failures: 2,
            target_peers: 20,
            max_peers: 50,
            reconnect_backoff: Duration::from_secs(1),
            max_reconnect_backoff: Duration::from_secs(300),
            dns_discovery: Vec::new(),
            nameserver: None,
            discv5: false,
            discv5_port: 0,
            discv5_bootstrap: Vec::new(),
            discv5_interval: Duration::from_secs(30),
            peer_exchange: false,
            peer_exchange_interval: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// What status-go does on the real network: DNS discovery of Status' production fleet,
    /// discv5 on UDP 9000 bootstrapped from it, peer exchange; listening on all interfaces.
    #[must_use]
    pub fn status_prod() -> Self {
        Self {
            listen_addrs: vec!["/ip4/0.0.0.0/tcp/60000".to_owned()],
            dns_discovery: vec![crate::dns::STATUS_PROD_ENRTREE.to_owned()],
            discv5: true,
            discv5_port: 9000,
            peer_exchange: true,
            ..Self::default()
        }
    }
}
