//! The node: one task owns the libp2p `Swarm`; [`WakuHandle`]s talk to it over a bounded
//! command queue with a oneshot reply per command.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chs_proto::Message as _;
use chs_proto::waku::WakuMessage;
use futures::StreamExt as _;
use libp2p::gossipsub::{self, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::{DialError, NodeStopped, PublishError, StartError, SubscribeError};
use crate::key;
use crate::message::{
    self, ContentFilter, MessageId, MessageReceiver, NodeEvent, PeerId, ReceivedMessage, Subscription, Subscriptions,
    timestamp_now,
};
use crate::metadata::{METADATA_PROTOCOL, MetadataCodec, PeerMetadata, PeerRejection, check_peer_metadata};
use crate::peer_exchange::{MAX_PEERS_PER_EXCHANGE, PEER_EXCHANGE_PROTOCOL, PeerExchangeCodec};
use crate::peers::{PeerInfo, PeerLimits, PeerManager, PeerSource};
use crate::topic::RelayShard;
use crate::validation::{
    Counters, Rejection, Stats, TopicValidator, TopicValidators, ValidationConfig, Verdict, check_topic,
    validate_bytes, validate_message,
};

/// The gossipsub protocol id of 11/WAKU2-RELAY.
pub const RELAY_PROTOCOL: &str = "/vac/waku/relay/2.0.0";

/// gossipsub's frame limit: 1 MiB of message plus 64 KiB of protocol overhead (as nwaku).
pub const MAX_TRANSMIT_SIZE: usize = 1024 * 1024 + 64 * 1024;

/// How often pending [`WakuHandle::wait_for_mesh_peers`] calls are re-checked (mesh changes
/// happen in the heartbeat and raise no event).
const WAITER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// How long `start` waits for its listeners to report an address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the peer manager looks for peers to dial.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(500);

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay: gossipsub::Behaviour,
    metadata: request_response::Behaviour<MetadataCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    peer_exchange: request_response::Behaviour<PeerExchangeCodec>,
    /// Raw streams for the store protocol (`crate::store`), driven outside the event loop.
    streams: libp2p_stream::Behaviour,
}

/// Peers known on a pubsub topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicPeers {
    /// Connected peers subscribed to the topic.
    pub subscribed: usize,
    /// Of those, the peers in our gossipsub mesh for the topic.
    pub mesh: usize,
}

enum Command {
    Subscribe { topic: String, reply: oneshot::Sender<Result<bool, SubscribeError>> },
    Unsubscribe { topic: String, reply: oneshot::Sender<bool> },
    Publish { topic: String, message: Box<WakuMessage>, reply: oneshot::Sender<Result<MessageId, PublishError>> },
    Dial { addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, DialError>> },
    ConnectedPeers { reply: oneshot::Sender<Vec<PeerId>> },
    ListenAddrs { reply: oneshot::Sender<Vec<String>> },
    TopicPeers { topic: String, reply: oneshot::Sender<TopicPeers> },
    WaitForPeers { topic: String, min: usize, mesh: bool, reply: oneshot::Sender<()> },
    Peers { reply: oneshot::Sender<Vec<PeerInfo>> },
    AddPeers { peers: Vec<DiscoveredPeer>, reply: oneshot::Sender<usize> },
}

/// A dialable peer found by discovery, handed to the peer manager.
#[derive(Debug, Clone)]
pub(crate) struct DiscoveredPeer {
    pub(crate) peer_id: libp2p::PeerId,
    pub(crate) addrs: Vec<Multiaddr>,
    pub(crate) source: PeerSource,
    pub(crate) shards: Vec<u32>,
}

/// A cloneable handle to a running node. Every method is cancel-safe: dropping its future
/// before completion leaves the node consistent (the command may or may not have run).
#[derive(Debug, Clone)]
pub struct WakuHandle {
    commands: mpsc::Sender<Command>,
    subscriptions: Subscriptions,
    /// Default queue length of a [`MessageReceiver`].
    capacity: usize,
    events: broadcast::WeakSender<NodeEvent>,
    counters: Arc<Counters>,
    local_peer_id: PeerId,
    /// discv5's bound UDP address, once it runs.
    discv5_addr: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    /// Validators per pubsub topic (shared with the event loop).
    topic_validators: TopicValidators,
    streams: crate::store::Streams,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Subscribe { .. } => "Subscribe",
            Command::Unsubscribe { .. } => "Unsubscribe",
            Command::Publish { .. } => "Publish",
            Command::Dial { .. } => "Dial",
            Command::ConnectedPeers { .. } => "ConnectedPeers",
            Command::ListenAddrs { .. } => "ListenAddrs",
            Command::TopicPeers { .. } => "TopicPeers",
            Command::WaitForPeers { .. } => "WaitForPeers",
            Command::Peers { .. } => "Peers",
            Command::AddPeers { .. } => "AddPeers",
        };
        f.write_str(name)
    }
}

impl WakuHandle {
    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeStopped> {
        let (reply, response) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| NodeStopped)?;
        response.await.map_err(|_| NodeStopped)
    }

    /// Registers (`Some`) or removes (`None`) the validator of `pubsub_topic`: relayed messages
    /// on that topic that it refuses are rejected (gossipsub `Reject`, not delivered, counted as
    /// `topic_validator`), as go-waku's `RegisterTopicValidator` does. Takes effect for the next
    /// message; publishing is not checked (sign before [`WakuHandle::publish`]).
    pub fn set_topic_validator(&self, pubsub_topic: &str, validator: Option<TopicValidator>) {
        let mut guard = self.topic_validators.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match validator {
            Some(validator) => {
                guard.insert(pubsub_topic.to_owned(), validator);
            }
            None => {
                guard.remove(pubsub_topic);
            }
        }
    }

    /// Our peer id.
    #[must_use]
    pub fn peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Subscribes to a pubsub topic; `Ok(false)` if already subscribed.
    ///
    /// # Errors
    /// [`SubscribeError`].
    pub async fn subscribe(&self, pubsub_topic: &str) -> Result<bool, SubscribeError> {
        let topic = pubsub_topic.to_owned();
        self.request(|reply| Command::Subscribe { topic, reply }).await?
    }

    /// Unsubscribes from a pubsub topic; `Ok(false)` if not subscribed.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn unsubscribe(&self, pubsub_topic: &str) -> Result<bool, NodeStopped> {
        let topic = pubsub_topic.to_owned();
        self.request(|reply| Command::Unsubscribe { topic, reply }).await
    }

    /// Publishes `message` on `pubsub_topic` and returns its gossipsub message id.
    ///
    /// Our own receivers do not see our own messages (gossipsub does not loop them back).
    ///
    /// # Errors
    /// [`PublishError::NoPeers`] when no connected peer is subscribed to the topic,
    /// [`PublishError::Invalid`] for a message peers would reject, and the other variants.
    pub async fn publish(&self, pubsub_topic: &str, message: WakuMessage) -> Result<MessageId, PublishError> {
        let topic = pubsub_topic.to_owned();
        let message = Box::new(message);
        self.request(|reply| Command::Publish { topic, message, reply }).await?
    }

    /// Dials `multiaddr` (with or without `/p2p/<peer id>`) and returns the peer id once the
    /// connection is established (the 66/WAKU2-METADATA check runs afterwards).
    ///
    /// # Errors
    /// [`DialError`].
    pub async fn dial(&self, multiaddr: &str) -> Result<PeerId, DialError> {
        let addr: Multiaddr = multiaddr.parse().map_err(|err: libp2p::multiaddr::Error| DialError::InvalidAddress {
            addr: multiaddr.to_owned(),
            reason: err.to_string(),
        })?;
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// The peers we are connected to.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NodeStopped> {
        self.request(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Our listen addresses, each ending in `/p2p/<our peer id>`, ready to be dialed.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn listen_addrs(&self) -> Result<Vec<String>, NodeStopped> {
        self.request(|reply| Command::ListenAddrs { reply }).await
    }

    /// How many connected peers are subscribed to `pubsub_topic`, and how many are in our mesh.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn topic_peers(&self, pubsub_topic: &str) -> Result<TopicPeers, NodeStopped> {
        let topic = pubsub_topic.to_owned();
        self.request(|reply| Command::TopicPeers { topic, reply }).await
    }

    /// Resolves once at least `min` connected peers are subscribed to `pubsub_topic` (then
    /// [`WakuHandle::publish`] reaches them). Wrap it in a timeout.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn wait_for_topic_peers(&self, pubsub_topic: &str, min: usize) -> Result<(), NodeStopped> {
        let topic = pubsub_topic.to_owned();
        self.request(|reply| Command::WaitForPeers { topic, min, mesh: false, reply }).await
    }

    /// Resolves once our gossipsub mesh for `pubsub_topic` has at least `min` peers (then
    /// messages are also forwarded through us). Wrap it in a timeout.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn wait_for_mesh_peers(&self, pubsub_topic: &str, min: usize) -> Result<(), NodeStopped> {
        let topic = pubsub_topic.to_owned();
        self.request(|reply| Command::WaitForPeers { topic, min, mesh: true, reply }).await
    }

    /// Every peer the peer manager knows (connected or waiting for a redial), with where it
    /// came from and its shards.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeStopped> {
        self.request(|reply| Command::Peers { reply }).await
    }

    /// The UDP address discv5 is bound to, when it runs.
    #[must_use]
    pub fn discv5_addr(&self) -> Option<std::net::SocketAddr> {
        self.discv5_addr.get().copied()
    }

    /// Records discv5's bound address (once).
    pub(crate) fn set_discv5_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.discv5_addr.set(addr);
    }

    /// Hands discovered peers to the peer manager; returns how many were new.
    pub(crate) async fn add_peers(&self, peers: Vec<DiscoveredPeer>) -> Result<usize, NodeStopped> {
        self.request(|reply| Command::AddPeers { peers, reply }).await
    }

    /// A receiver of accepted messages matching `filter`, with a queue of the configured
    /// `channel_capacity` messages. Messages that arrived before this call are not replayed, so
    /// take the receiver before subscribing or dialing.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub fn messages(&self, filter: ContentFilter) -> Result<MessageReceiver, NodeStopped> {
        self.messages_with_capacity(filter, self.capacity)
    }

    /// [`WakuHandle::messages`] with a queue of `capacity` messages (at least 1) of its own.
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub fn messages_with_capacity(
        &self,
        filter: ContentFilter,
        capacity: usize,
    ) -> Result<MessageReceiver, NodeStopped> {
        let mut guard = message::lock(&self.subscriptions);
        let list = guard.as_mut().ok_or(NodeStopped)?;
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
        list.push(Subscription { filter, sender, lost: Arc::clone(&lost) });
        Ok(MessageReceiver { receiver, lost })
    }

    /// A receiver of [`NodeEvent`]s (bounded: a slow receiver gets `Lagged` and loses old events).
    ///
    /// # Errors
    /// [`NodeStopped`].
    pub fn events(&self) -> Result<broadcast::Receiver<NodeEvent>, NodeStopped> {
        Ok(self.events.upgrade().ok_or(NodeStopped)?.subscribe())
    }

    /// The node's counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// The stream control used by the store client and server.
    pub(crate) fn streams(&self) -> &crate::store::Streams {
        &self.streams
    }

    /// Hands `messages` fetched from the store node `from` to this node's own receivers whose
    /// filter matches, as if `from` had relayed them: nothing is published, and relay
    /// validation's age limit does not apply (the store client checked them). Waits up to `wait`
    /// for room in a full receiver queue. Returns the number of deliveries.
    pub async fn deliver_stored(
        &self,
        messages: Vec<crate::store::StoredMessage>,
        from: PeerId,
        wait: Duration,
    ) -> usize {
        let mut delivered = 0;
        for stored in messages {
            let received = ReceivedMessage {
                message_id: MessageId::of_message(&stored.message),
                pubsub_topic: stored.pubsub_topic,
                message: stored.message,
                propagation_source: from,
            };
            delivered += message::deliver_waiting(&self.subscriptions, &self.counters, Arc::new(received), wait).await;
        }
        delivered
    }
}

/// A running Waku relay node. It dereferences to its [`WakuHandle`]; call
/// [`WakuNode::shutdown`] to stop it (dropping it stops the task too, without waiting).
#[derive(Debug)]
pub struct WakuNode {
    handle: WakuHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    discovery: crate::discovery::Running,
}

impl Deref for WakuNode {
    type Target = WakuHandle;

    fn deref(&self) -> &WakuHandle {
        &self.handle
    }
}

impl WakuNode {
    /// Starts a node: loads or creates its key, listens (returns once every listen address is
    /// bound), subscribes to the configured topics and dials the bootstrap peers.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: Config) -> Result<WakuNode, StartError> {
        let keypair = match &config.data_dir {
            Some(dir) => key::load_or_create(dir).await?,
            None => key::ephemeral(),
        };
        let listen_addrs = parse_addrs(&config.listen_addrs)?;
        let secret = keypair.clone().try_into_secp256k1().ok().map(|pair| pair.secret().to_bytes().to_vec());
        let bootstrap_addrs = parse_addrs(&config.bootstrap_peers)?;
        let mut swarm = build_swarm(keypair, &config)?;
        let local_peer_id = *swarm.local_peer_id();
        let span = tracing::debug_span!("waku_node", peer_id = %local_peer_id);

        let mut subscribed = BTreeSet::new();
        for topic in &config.pubsub_topics {
            swarm
                .behaviour_mut()
                .relay
                .subscribe(&gossipsub::IdentTopic::new(topic.clone()))
                .map_err(|err| StartError::Subscribe { topic: topic.clone(), reason: err.to_string() })?;
            subscribed.insert(topic.clone());
        }
        tracing::Instrument::instrument(listen(&mut swarm, listen_addrs), span.clone()).await?;
        let mut peers = PeerManager::new(PeerLimits {
            target_peers: config.target_peers,
            max_peers: config.max_peers.max(1),
            backoff_initial: config.reconnect_backoff,
            backoff_max: config.max_reconnect_backoff.max(config.reconnect_backoff),
            max_ping_failures: config.max_ping_failures.max(1),
        });
        let now = std::time::Instant::now();
        for addr in bootstrap_addrs {
            match peer_of(&addr) {
                // Dialled (and redialled) by the peer manager.
                Some(peer) => {
                    peers.add(peer, vec![addr], PeerSource::Static, now);
                }
                None => {
                    tracing::warn!(parent: &span, %addr, "bootstrap address without /p2p/<peer id>: dialled once, never redialled");
                    if let Err(err) = swarm.dial(addr.clone()) {
                        tracing::warn!(parent: &span, %addr, %err, "bootstrap dial failed");
                    }
                }
            }
        }

        let capacity = config.channel_capacity.max(1);
        let px_cache: crate::discovery::PxCache = Arc::default();
        let (command_sender, commands) = mpsc::channel(capacity);
        let subscriptions: Subscriptions = Arc::new(std::sync::Mutex::new(Some(Vec::new())));
        let (event_sender, _) = broadcast::channel(capacity);
        let (shutdown_sender, shutdown) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let topic_validators = TopicValidators::default();
        let handle = WakuHandle {
            commands: command_sender,
            subscriptions: Arc::clone(&subscriptions),
            capacity,
            events: event_sender.downgrade(),
            counters: Arc::clone(&counters),
            local_peer_id: PeerId(local_peer_id),
            discv5_addr: Arc::default(),
            topic_validators: topic_validators.clone(),
            streams: crate::store::Streams(swarm.behaviour().streams.new_control()),
        };
        let event_loop = EventLoop {
            swarm,
            commands,
            subscriptions,
            events: event_sender,
            counters,
            topic_validators,
            validation: config.validation.clone(),
            cluster_id: config.cluster_id,
            configured_shards: config.shards.clone(),
            subscribed,
            pending_dials: HashMap::new(),
            waiters: Vec::new(),
            cluster_mismatch: HashMap::new(),
            rejected: HashSet::new(),
            peers,
            peer_exchange: config.peer_exchange.then(|| PxState {
                interval: config.peer_exchange_interval,
                last: None,
                capable: BTreeSet::new(),
                asked: 0,
                cache: Arc::clone(&px_cache),
                filter: crate::discovery::Filter { cluster_id: config.cluster_id, shards: metadata_shards(&config) },
            }),
        };
        let task = tokio::spawn(tracing::Instrument::instrument(
            event_loop.run(shutdown, config.shutdown_linger),
            span.clone(),
        ));
        let filter = crate::discovery::Filter { cluster_id: config.cluster_id, shards: metadata_shards(&config) };
        let bound = handle.listen_addrs().await.unwrap_or_default();
        let bound: Vec<Multiaddr> = bound.iter().filter_map(|a| a.parse().ok()).collect();
        let discovery = crate::discovery::start(&handle, &config, secret, &bound, filter, px_cache).await;
        Ok(WakuNode { handle, shutdown: Some(shutdown_sender), task, discovery })
    }

    /// Our ENR (`enr:…`) when discv5 runs.
    #[must_use]
    pub fn local_enr(&self) -> Option<&str> {
        self.discovery.local_enr.as_deref()
    }

    /// A cloneable handle for other tasks.
    #[must_use]
    pub fn handle(&self) -> WakuHandle {
        self.handle.clone()
    }

    /// Stops the node: lets the swarm run for `shutdown_linger` so queued messages leave,
    /// closes every connection and waits for the task to end.
    pub async fn shutdown(mut self) {
        drop(std::mem::take(&mut self.discovery));
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Err(err) = (&mut self.task).await {
            tracing::error!(%err, "the Waku node task failed");
        }
    }
}

/// The shards we announce at start: the configured ones and those of our subscribed
/// static-sharding topics of our cluster.
fn metadata_shards(config: &Config) -> Vec<u32> {
    let mut shards: BTreeSet<u32> = config.shards.iter().copied().collect();
    shards.extend(
        config
            .pubsub_topics
            .iter()
            .filter_map(|topic| RelayShard::from_pubsub_topic(topic))
            .filter(|shard| shard.cluster_id == config.cluster_id)
            .map(|shard| shard.shard),
    );
    shards.into_iter().collect()
}

/// The peer id at the end of a multiaddr (`…/p2p/<id>`).
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<libp2p::PeerId> {
    addr.iter().find_map(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, StartError> {
    addrs
        .iter()
        .map(|addr| addr.parse().map_err(|source| StartError::InvalidAddress { addr: addr.clone(), source }))
        .collect()
}

/// The gossipsub configuration of 11/WAKU2-RELAY with nwaku's mesh parameters.
fn relay_config(heartbeat_interval: Duration) -> Result<gossipsub::Config, StartError> {
    gossipsub::ConfigBuilder::default()
        .protocol_id(RELAY_PROTOCOL, gossipsub::Version::V1_1)
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(MessageId::of_bytes(&message.data).0.to_vec())
        })
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .heartbeat_interval(heartbeat_interval)
        .mesh_n(6)
        .mesh_n_low(4)
        .mesh_n_high(8)
        .gossip_lazy(6)
        .gossip_factor(0.25)
        .history_length(6)
        .history_gossip(3)
        .fanout_ttl(Duration::from_secs(60))
        .duplicate_cache_time(Duration::from_secs(120))
        .prune_backoff(Duration::from_secs(60))
        .flood_publish(true)
        .validate_messages()
        .build()
        .map_err(|err| StartError::Gossipsub(err.to_string()))
}

fn build_swarm(keypair: libp2p::identity::Keypair, config: &Config) -> Result<Swarm<Behaviour>, StartError> {
    let relay_config = relay_config(config.heartbeat_interval)?;
    let relay = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, relay_config)
        .map_err(|err| StartError::Gossipsub(err.to_owned()))?;
    let metadata = request_response::Behaviour::with_codec(
        MetadataCodec,
        [(StreamProtocol::new(METADATA_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(config.metadata_timeout),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new("/ipfs/id/1.0.0".to_owned(), keypair.public())
            .with_agent_version(format!("chs-waku/{}", env!("CARGO_PKG_VERSION"))),
    );
    let ping =
        ping::Behaviour::new(ping::Config::new().with_interval(config.ping_interval).with_timeout(config.ping_timeout));
    let peer_exchange = request_response::Behaviour::with_codec(
        PeerExchangeCodec,
        [(
            StreamProtocol::new(PEER_EXCHANGE_PROTOCOL),
            // We serve records only from a discv5 table.
            if config.peer_exchange && config.discv5 { ProtocolSupport::Full } else { ProtocolSupport::Outbound },
        )],
        request_response::Config::default().with_request_timeout(config.metadata_timeout),
    );
    let streams = libp2p_stream::Behaviour::new();
    let behaviour = Behaviour { relay, metadata, identify, ping, peer_exchange, streams };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|err| StartError::Transport(err.to_string()))?
        .with_dns()
        .map_err(|err| StartError::Transport(err.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|err| StartError::Transport(err.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

/// Fails when the TCP port of `addr` is already taken. libp2p's TCP transport sets `SO_REUSEPORT`
/// on every listening socket, so a second node on the same port (two daemons with the default
/// `/tcp/60000`) would bind it too and the kernel would split the incoming connections between
/// them. A plain bind (no `SO_REUSEPORT`) of the same address fails while any socket holds it, so
/// the clash is reported here instead. Port 0 (a free port) and non-IP addresses are not checked.
fn refuse_taken_port(addr: &Multiaddr) -> Result<(), StartError> {
    let mut ip = None;
    let mut port = None;
    for protocol in addr {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port.filter(|&p| p != 0)) else { return Ok(()) };
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_probe) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Err(StartError::Listen {
            addr: addr.to_string(),
            reason: format!("TCP port {port} is already in use by another process"),
        }),
        // Other bind errors (no such local address, permission) are libp2p's to report.
        Err(_) => Ok(()),
    }
}

/// Listens on every address and returns once each listener reported an address (or failed).
async fn listen(swarm: &mut Swarm<Behaviour>, addrs: Vec<Multiaddr>) -> Result<(), StartError> {
    let mut pending = HashMap::new();
    for addr in addrs {
        refuse_taken_port(&addr)?;
        let listener = swarm
            .listen_on(addr.clone())
            .map_err(|err| StartError::Listen { addr: addr.to_string(), reason: err.to_string() })?;
        pending.insert(listener, addr);
    }
    let wait = async {
        while !pending.is_empty() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    tracing::info!(%address, "listening");
                    pending.remove(&listener_id);
                }
                SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                    if let Some(addr) = pending.remove(&listener_id) {
                        let reason = match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(err) => err.to_string(),
                        };
                        return Err(StartError::Listen { addr: addr.to_string(), reason });
                    }
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    if let Some(addr) = pending.remove(&listener_id) {
                        return Err(StartError::Listen { addr: addr.to_string(), reason: error.to_string() });
                    }
                }
                other => tracing::trace!(?other, "event before start completed"),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(LISTEN_TIMEOUT, wait).await {
        Ok(result) => result,
        Err(_) => Err(StartError::Listen {
            addr: format!("{:?}", swarm.listeners().collect::<Vec<_>>()),
            reason: "no listen address reported in time".to_owned(),
        }),
    }
}

struct PeerWaiter {
    topic: TopicHash,
    min: usize,
    mesh: bool,
    reply: oneshot::Sender<()>,
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    subscriptions: Subscriptions,
    events: broadcast::Sender<NodeEvent>,
    counters: Arc<Counters>,
    topic_validators: TopicValidators,
    validation: ValidationConfig,
    cluster_id: u32,
    configured_shards: Vec<u32>,
    subscribed: BTreeSet<String>,
    pending_dials: HashMap<ConnectionId, (String, oneshot::Sender<Result<PeerId, DialError>>)>,
    waiters: Vec<PeerWaiter>,
    /// Peers whose metadata *request* named another cluster. They are rejected when our own
    /// request fails or the connection drops first (the other side may disconnect as soon as it
    /// has our answer).
    cluster_mismatch: HashMap<libp2p::PeerId, PeerRejection>,
    /// Peers being disconnected after a failed metadata check (rejected once only).
    rejected: HashSet<libp2p::PeerId>,
    /// Known peers, redials, limits.
    peers: PeerManager,
    /// 34/WAKU2-PEER-EXCHANGE client and server state, when enabled.
    peer_exchange: Option<PxState>,
}

/// Peer-exchange state of the event loop.
struct PxState {
    /// How often we ask while below `target_peers`.
    interval: Duration,
    last: Option<std::time::Instant>,
    /// Connected peers that announced the protocol (identify).
    capable: BTreeSet<libp2p::PeerId>,
    /// Requests sent (round robin over `capable`).
    asked: usize,
    /// What the server hands out (filled by the discv5 task).
    cache: crate::discovery::PxCache,
    filter: crate::discovery::Filter,
}

impl Drop for EventLoop {
    /// Ends every [`MessageReceiver`] (also when the task is aborted) and refuses new ones.
    fn drop(&mut self) {
        *message::lock(&self.subscriptions) = None;
    }
}

impl EventLoop {
    async fn run(mut self, mut shutdown: oneshot::Receiver<()>, linger: Duration) {
        let mut waiter_check = tokio::time::interval(WAITER_CHECK_INTERVAL);
        waiter_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Either an explicit shutdown or the WakuNode was dropped.
                _ = &mut shutdown => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                _ = waiter_check.tick(), if !self.waiters.is_empty() => self.check_waiters(),
                _ = maintenance.tick() => {
                    self.dial_due_peers();
                    self.ask_for_peers();
                }
            }
        }
        tracing::debug!(?linger, "shutting down");
        let drain = async {
            loop {
                let event = self.swarm.select_next_some().await;
                self.handle_swarm_event(event);
            }
        };
        let _ = tokio::time::timeout(linger, drain).await;
        let peers: Vec<_> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        tracing::debug!("stopped");
    }

    /// Dials the peers the peer manager says are due (bootstrap, discovered, reconnecting).
    fn dial_due_peers(&mut self) {
        for (peer, addrs) in self.peers.due_dials(std::time::Instant::now()) {
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
                .build();
            Counters::bump(&self.counters.dials);
            tracing::debug!(%peer, "dialling");
            if let Err(err) = self.swarm.dial(opts) {
                tracing::debug!(%peer, %err, "dial not started");
                Counters::bump(&self.counters.dials_failed);
                self.peers.dial_failed(&peer, std::time::Instant::now());
            }
        }
    }

    /// While below `target_peers`, asks a peer-exchange capable peer for records, every
    /// `peer_exchange_interval` (status-go asks every 5 s).
    fn ask_for_peers(&mut self) {
        let connected = self.peers.connected_count();
        let target = self.peers.target();
        let Some(px) = self.peer_exchange.as_mut() else { return };
        let now = std::time::Instant::now();
        if connected >= target || px.capable.is_empty() || px.last.is_some_and(|last| now - last < px.interval) {
            return;
        }
        let Some(peer) = px.capable.iter().nth(px.asked % px.capable.len()).copied() else { return };
        px.asked += 1;
        px.last = Some(now);
        let wanted =
            u64::try_from(target - connected).unwrap_or(MAX_PEERS_PER_EXCHANGE).clamp(1, MAX_PEERS_PER_EXCHANGE);
        tracing::debug!(%peer, wanted, "peer exchange request");
        self.swarm.behaviour_mut().peer_exchange.send_request(&peer, wanted);
    }

    fn handle_peer_exchange_event(&mut self, event: request_response::Event<u64, Vec<Vec<u8>>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let records: Vec<Vec<u8>> = self
                        .peer_exchange
                        .as_ref()
                        .and_then(|px| px.cache.lock().ok().map(|cache| cache.clone()))
                        .unwrap_or_default()
                        .into_iter()
                        .take(usize::try_from(request.min(MAX_PEERS_PER_EXCHANGE)).unwrap_or(0))
                        .collect();
                    tracing::debug!(%peer, asked = request, given = records.len(), "peer exchange request served");
                    Counters::bump(&self.counters.px_served);
                    let _ = self.swarm.behaviour_mut().peer_exchange.send_response(channel, records);
                }
                request_response::Message::Response { response, .. } => {
                    let Some(px) = self.peer_exchange.as_ref() else { return };
                    let mut enrs = Vec::new();
                    for rlp in &response {
                        match crate::enr::WakuEnr::parse(&crate::peer_exchange::rlp_to_enr_text(rlp)) {
                            Ok(enr) => enrs.push(enr),
                            Err(err) => {
                                Counters::bump(&self.counters.px_bad_records);
                                tracing::debug!(%peer, %err, "bad record in peer exchange response");
                            }
                        }
                    }
                    let found = crate::discovery::dialable(&enrs, PeerSource::PeerExchange, &px.filter);
                    tracing::debug!(%peer, records = response.len(), dialable = found.len(), "peer exchange response");
                    let now = std::time::Instant::now();
                    for peer in found {
                        if peer.peer_id != *self.swarm.local_peer_id()
                            && !self.peers.is_refused(&peer.peer_id)
                            && self.peers.add(peer.peer_id, peer.addrs, PeerSource::PeerExchange, now)
                        {
                            Counters::bump(&self.counters.px_peers);
                            self.peers.set_shards(&peer.peer_id, peer.shards);
                            self.emit(NodeEvent::PeerDiscovered {
                                peer_id: PeerId(peer.peer_id),
                                source: PeerSource::PeerExchange,
                            });
                        }
                    }
                    self.dial_due_peers();
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "peer exchange request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound peer exchange request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn handle_ping_event(&mut self, event: ping::Event) {
        let peer = event.peer;
        let ok = event.result.is_ok();
        match &event.result {
            Ok(rtt) => {
                tracing::trace!(%peer, ?rtt, "ping");
                Counters::bump(&self.counters.pings_ok);
                self.peers.healthy(&peer);
            }
            Err(err) => {
                tracing::debug!(%peer, %err, "ping failed");
                Counters::bump(&self.counters.pings_failed);
            }
        }
        if self.peers.ping_result(&peer, ok) {
            tracing::info!(%peer, "peer does not answer pings: disconnecting");
            Counters::bump(&self.counters.peers_unresponsive);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn emit(&self, event: NodeEvent) {
        // No receiver is fine.
        let _ = self.events.send(event);
    }

    fn our_metadata(&self) -> PeerMetadata {
        let mut shards: BTreeSet<u32> = self.configured_shards.iter().copied().collect();
        shards.extend(
            self.subscribed
                .iter()
                .filter_map(|topic| RelayShard::from_pubsub_topic(topic))
                .filter(|shard| shard.cluster_id == self.cluster_id)
                .map(|shard| shard.shard),
        );
        PeerMetadata { cluster_id: Some(self.cluster_id), shards: shards.into_iter().collect() }
    }

    fn topic_peers(&self, topic: &TopicHash) -> TopicPeers {
        let relay = &self.swarm.behaviour().relay;
        TopicPeers {
            subscribed: relay.all_peers().filter(|(_, topics)| topics.contains(&topic)).count(),
            mesh: relay.mesh_peers(topic).count(),
        }
    }

    fn check_waiters(&mut self) {
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            if waiter.reply.is_closed() {
                continue;
            }
            let peers = self.topic_peers(&waiter.topic);
            let count = if waiter.mesh { peers.mesh } else { peers.subscribed };
            if count >= waiter.min {
                let _ = waiter.reply.send(());
            } else {
                self.waiters.push(waiter);
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        tracing::trace!(?command, "command");
        match command {
            Command::Subscribe { topic, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .subscribe(&gossipsub::IdentTopic::new(topic.clone()))
                    .map_err(|err| SubscribeError::Refused { topic: topic.clone(), reason: err.to_string() });
                if result.is_ok() {
                    self.subscribed.insert(topic);
                }
                let _ = reply.send(result);
            }
            Command::Unsubscribe { topic, reply } => {
                let was = self.swarm.behaviour_mut().relay.unsubscribe(&gossipsub::IdentTopic::new(topic.clone()));
                self.subscribed.remove(&topic);
                let _ = reply.send(was);
            }
            Command::Publish { topic, message, reply } => {
                let _ = reply.send(self.publish(topic, &message));
            }
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().map(|p| PeerId(*p)).collect());
            }
            Command::ListenAddrs { reply } => {
                let local = *self.swarm.local_peer_id();
                let addrs = self.swarm.listeners().map(|addr| addr.clone().with(Protocol::P2p(local)).to_string());
                let _ = reply.send(addrs.collect());
            }
            Command::TopicPeers { topic, reply } => {
                let _ = reply.send(self.topic_peers(&TopicHash::from_raw(topic)));
            }
            Command::WaitForPeers { topic, min, mesh, reply } => {
                self.waiters.push(PeerWaiter { topic: TopicHash::from_raw(topic), min, mesh, reply });
                self.check_waiters();
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peers.infos());
            }
            Command::AddPeers { peers, reply } => {
                let now = std::time::Instant::now();
                let mut new = 0;
                for found in peers {
                    if found.peer_id == *self.swarm.local_peer_id() || self.peers.is_refused(&found.peer_id) {
                        continue;
                    }
                    if self.peers.add(found.peer_id, found.addrs, found.source, now) {
                        tracing::debug!(peer = %found.peer_id, source = %found.source, "peer discovered");
                        self.emit(NodeEvent::PeerDiscovered { peer_id: PeerId(found.peer_id), source: found.source });
                        new += 1;
                    }
                    self.peers.set_shards(&found.peer_id, found.shards);
                }
                let _ = reply.send(new);
                self.dial_due_peers();
            }
        }
    }

    fn publish(&mut self, topic: String, message: &WakuMessage) -> Result<MessageId, PublishError> {
        // Structural checks only: our own timestamp is the caller's business.
        let structural = ValidationConfig { max_future_skew: None, max_age: None, ..self.validation.clone() };
        validate_message(message, timestamp_now(), &structural).map_err(PublishError::Invalid)?;
        let bytes = message.encode_to_vec();
        if bytes.len() > structural.max_message_size {
            return Err(PublishError::Invalid(Rejection::Oversized {
                size: bytes.len(),
                max: structural.max_message_size,
            }));
        }
        let id = MessageId::of_bytes(&bytes);
        match self.swarm.behaviour_mut().relay.publish(TopicHash::from_raw(topic.clone()), bytes) {
            Ok(_) => {
                tracing::debug!(%topic, message_id = %id, "published");
                Ok(id)
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                Err(PublishError::NoPeers { pubsub_topic: topic })
            }
            Err(gossipsub::PublishError::Duplicate) => Err(PublishError::Duplicate),
            Err(gossipsub::PublishError::MessageTooLarge) => Err(PublishError::TooLarge),
            Err(gossipsub::PublishError::AllQueuesFull(peers)) => Err(PublishError::QueuesFull { peers }),
            Err(other) => Err(PublishError::Other(other.to_string())),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, DialError>>) {
        let peer = addr.iter().find_map(|protocol| match protocol {
            Protocol::P2p(peer) => Some(peer),
            _ => None,
        });
        if let Some(peer) = peer
            && self.swarm.is_connected(&peer)
        {
            let _ = reply.send(Ok(PeerId(peer)));
            return;
        }
        let opts = match peer {
            Some(peer) => DialOpts::peer_id(peer).addresses(vec![addr.clone()]).build(),
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        if let Some(peer) = peer {
            // An explicit dial is a static peer: redialled if it drops.
            self.peers.add(peer, vec![addr.clone()], PeerSource::Static, std::time::Instant::now());
            self.peers.dialing(&peer);
        }
        let connection_id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(connection_id, (addr.to_string(), reply));
            }
            Err(err) => {
                if let Some(peer) = peer {
                    self.peers.dial_failed(&peer, std::time::Instant::now());
                }
                let _ = reply.send(Err(DialError::Failed { addr: addr.to_string(), reason: err.to_string() }));
            }
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.handle_relay_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Metadata(event)) => self.handle_metadata_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                tracing::debug!(%peer_id, agent = %info.agent_version, protocols = ?info.protocols, "identified");
                let store = info.protocols.iter().any(|p| p.as_ref() == crate::store::STORE_QUERY_PROTOCOL);
                if self.peers.set_store(&peer_id, store) {
                    self.emit(NodeEvent::StorePeerConnected { peer_id: PeerId(peer_id) });
                }
                if let Some(px) = self.peer_exchange.as_mut()
                    && info.protocols.iter().any(|p| p.as_ref() == PEER_EXCHANGE_PROTOCOL)
                {
                    px.capable.insert(peer_id);
                    self.ask_for_peers();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::PeerExchange(event)) => self.handle_peer_exchange_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.handle_ping_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_) | BehaviourEvent::Streams(())) => {}
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(PeerId(peer_id)));
                }
                if num_established.get() == 1 {
                    let dialer_addr = endpoint.is_dialer().then(|| endpoint.get_remote_address().clone());
                    if !self.peers.connected(peer_id, dialer_addr, std::time::Instant::now()) {
                        tracing::debug!(%peer_id, "inbound connection refused: max_peers connected");
                        Counters::bump(&self.counters.inbound_refused);
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                        return;
                    }
                    let address = endpoint.get_remote_address().to_string();
                    tracing::debug!(%peer_id, %address, "peer connected");
                    let request = self.our_metadata();
                    self.swarm.behaviour_mut().metadata.send_request(&peer_id, request);
                    self.emit(NodeEvent::PeerConnected { peer_id: PeerId(peer_id), address });
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, cause, .. } => {
                if num_established == 0 {
                    tracing::debug!(%peer_id, ?cause, "peer disconnected");
                    if let Some(reason) = self.cluster_mismatch.remove(&peer_id) {
                        self.reject_peer(peer_id, reason);
                    }
                    self.rejected.remove(&peer_id);
                    self.peers.disconnected(&peer_id, std::time::Instant::now());
                    if let Some(px) = self.peer_exchange.as_mut() {
                        px.capable.remove(&peer_id);
                    }
                    self.emit(NodeEvent::PeerDisconnected { peer_id: PeerId(peer_id) });
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
                if let Some(peer) = peer_id {
                    Counters::bump(&self.counters.dials_failed);
                    self.peers.dial_failed(&peer, std::time::Instant::now());
                }
                if let Some((addr, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(DialError::Failed { addr, reason: error.to_string() }));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
            other => tracing::trace!(?other, "swarm event"),
        }
    }

    fn handle_relay_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                Counters::bump(&self.counters.received);
                let pubsub_topic = message.topic.into_string();
                let now = timestamp_now();
                let checked = validate_bytes(&message.data, now, &self.validation).and_then(|waku_message| {
                    check_topic(&self.topic_validators, &waku_message, &pubsub_topic, now).map(|()| waku_message)
                });
                let (acceptance, delivered) = match checked {
                    Ok(waku_message) => {
                        Counters::bump(&self.counters.accepted);
                        let id = <[u8; 32]>::try_from(message_id.0.as_slice())
                            .map_or_else(|_| MessageId::of_bytes(&message.data), MessageId);
                        let received = ReceivedMessage {
                            pubsub_topic,
                            message: waku_message,
                            message_id: id,
                            propagation_source: PeerId(propagation_source),
                        };
                        (gossipsub::MessageAcceptance::Accept, Some(received))
                    }
                    Err(rejection) => {
                        self.counters.count_rejection(&rejection);
                        tracing::debug!(
                            %propagation_source,
                            topic = %pubsub_topic,
                            %message_id,
                            reason = rejection.name(),
                            detail = %rejection,
                            "relay message not accepted"
                        );
                        let acceptance = match rejection.verdict() {
                            Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                        };
                        (acceptance, None)
                    }
                };
                self.swarm.behaviour_mut().relay.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
                if let Some(received) = delivered {
                    tracing::trace!(message_id = %received.message_id, "delivering");
                    // No receiver is fine; a full receiver loses this message rather than block us.
                    message::deliver(&self.subscriptions, &self.counters, &Arc::new(received));
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(%peer_id, %topic, "peer subscribed");
                self.emit(NodeEvent::PeerSubscribed { peer_id: PeerId(peer_id), pubsub_topic: topic.into_string() });
                self.check_waiters();
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                self.emit(NodeEvent::PeerUnsubscribed { peer_id: PeerId(peer_id), pubsub_topic: topic.into_string() });
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(%peer_id, "peer does not speak /vac/waku/relay/2.0.0");
            }
            gossipsub::Event::SlowPeer { peer_id, failed_messages } => {
                tracing::debug!(%peer_id, ?failed_messages, "slow relay peer");
            }
        }
    }

    fn reject_peer(&mut self, peer: libp2p::PeerId, reason: PeerRejection) {
        self.cluster_mismatch.remove(&peer);
        if !self.rejected.insert(peer) {
            return;
        }
        tracing::debug!(%peer, %reason, "disconnecting peer after metadata exchange");
        Counters::bump(&self.counters.peers_rejected);
        self.peers.refuse(peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.emit(NodeEvent::PeerRejected { peer_id: PeerId(peer), reason });
    }

    fn handle_metadata_event(&mut self, event: request_response::Event<PeerMetadata, PeerMetadata>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    tracing::debug!(%peer, ?request, "metadata request");
                    let response = self.our_metadata();
                    if self.swarm.behaviour_mut().metadata.send_response(channel, response).is_err() {
                        tracing::debug!(%peer, "metadata response not sent: connection gone");
                    }
                    // Remember a peer of another cluster; our own request decides (see `cluster_mismatch`).
                    if let Some(theirs) = request.cluster_id
                        && theirs != self.cluster_id
                    {
                        self.cluster_mismatch
                            .insert(peer, PeerRejection::OtherCluster { ours: self.cluster_id, theirs });
                    }
                }
                request_response::Message::Response { response, .. } => {
                    tracing::debug!(%peer, ?response, "metadata response");
                    self.emit(NodeEvent::MetadataReceived {
                        peer_id: PeerId(peer),
                        cluster_id: response.cluster_id,
                        shards: response.shards.clone(),
                    });
                    self.peers.set_shards(&peer, response.shards.clone());
                    let ours = self.our_metadata();
                    self.cluster_mismatch.remove(&peer);
                    if let Err(reason) = check_peer_metadata(self.cluster_id, &ours.shards, &response) {
                        self.reject_peer(peer, reason);
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                if matches!(error, request_response::OutboundFailure::UnsupportedProtocols) {
                    // js-waku relay nodes do not serve the metadata protocol: tolerated.
                    tracing::debug!(%peer, "peer does not speak /vac/waku/metadata/1.0.0");
                    Counters::bump(&self.counters.metadata_unsupported);
                    self.emit(NodeEvent::MetadataUnsupported { peer_id: PeerId(peer) });
                } else {
                    tracing::debug!(%peer, %error, "metadata request failed");
                }
                if let Some(reason) = self.cluster_mismatch.remove(&peer) {
                    self.reject_peer(peer, reason);
                }
            }
            request_response::Event::ResponseSent { .. } => {}
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound metadata request failed");
            }
        }
    }
}
