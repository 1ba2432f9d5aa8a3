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
use crate::topic::RelayShard;
use crate::validation::{Counters, Rejection, Stats, ValidationConfig, Verdict, validate_bytes, validate_message};

/// The gossipsub protocol id of 11/WAKU2-RELAY.
pub const RELAY_PROTOCOL: &str = "/vac/waku/relay/2.0.0";

/// gossipsub's frame limit: 1 MiB of message plus 64 KiB of protocol overhead (as nwaku).
pub const MAX_TRANSMIT_SIZE: usize = 1024 * 1024 + 64 * 1024;

/// How often pending [`WakuHandle::wait_for_mesh_peers`] calls are re-checked (mesh changes
/// happen in the heartbeat and raise no event).
const WAITER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// How long `start` waits for its listeners to report an address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay: gossipsub::Behaviour,
    metadata: request_response::Behaviour<MetadataCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
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
        for addr in bootstrap_addrs {
            if let Err(err) = swarm.dial(addr.clone()) {
                tracing::warn!(parent: &span, %addr, %err, "bootstrap dial failed");
            }
        }

        let capacity = config.channel_capacity.max(1);
        let (command_sender, commands) = mpsc::channel(capacity);
        let subscriptions: Subscriptions = Arc::new(std::sync::Mutex::new(Some(Vec::new())));
        let (event_sender, _) = broadcast::channel(capacity);
        let (shutdown_sender, shutdown) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let handle = WakuHandle {
            commands: command_sender,
            subscriptions: Arc::clone(&subscriptions),
            capacity,
            events: event_sender.downgrade(),
            counters: Arc::clone(&counters),
            local_peer_id: PeerId(local_peer_id),
            streams: crate::store::Streams(swarm.behaviour().streams.new_control()),
        };
        let event_loop = EventLoop {
            swarm,
            commands,
            subscriptions,
            events: event_sender,
            counters,
            validation: config.validation.clone(),
            cluster_id: config.cluster_id,
            configured_shards: config.shards.clone(),
            subscribed,
            pending_dials: HashMap::new(),
            waiters: Vec::new(),
            cluster_mismatch: HashMap::new(),
            rejected: HashSet::new(),
        };
        let task = tokio::spawn(tracing::Instrument::instrument(
            event_loop.run(shutdown, config.shutdown_linger),
            span.clone(),
        ));
        Ok(WakuNode { handle, shutdown: Some(shutdown_sender), task })
    }

    /// A cloneable handle for other tasks.
    #[must_use]
    pub fn handle(&self) -> WakuHandle {
        self.handle.clone()
    }

    /// Stops the node: lets the swarm run for `shutdown_linger` so queued messages leave,
    /// closes every connection and waits for the task to end.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Err(err) = (&mut self.task).await {
            tracing::error!(%err, "the Waku node task failed");
        }
    }
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
    let streams = libp2p_stream::Behaviour::new();
    let behaviour = Behaviour { relay, metadata, identify, ping: ping::Behaviour::default(), streams };
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

/// Listens on every address and returns once each listener reported an address (or failed).
async fn listen(swarm: &mut Swarm<Behaviour>, addrs: Vec<Multiaddr>) -> Result<(), StartError> {
    let mut pending = HashMap::new();
    for addr in addrs {
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
        let connection_id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(connection_id, (addr.to_string(), reply));
            }
            Err(err) => {
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
            }
            SwarmEvent::Behaviour(
                BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_) | BehaviourEvent::Streams(()),
            ) => {}
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(PeerId(peer_id)));
                }
                if num_established.get() == 1 {
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
                    self.emit(NodeEvent::PeerDisconnected { peer_id: PeerId(peer_id) });
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
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
                let (acceptance, delivered) = match validate_bytes(&message.data, timestamp_now(), &self.validation) {
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
