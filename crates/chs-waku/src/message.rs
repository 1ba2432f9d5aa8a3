//! What the node hands to its users: received messages, their ids, peer ids and events.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chs_proto::waku::WakuMessage;
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::metadata::PeerRejection;
use crate::validation::Counters;

/// The gossipsub message id of a relayed WakuMessage: SHA-256 of its protobuf bytes as sent
/// (what nwaku, go-waku and js-waku use). Not the 14/WAKU2 deterministic hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id of the encoded WakuMessage `bytes`.
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The id of `message` encoded the way this node encodes it (prost, field order).
    #[must_use]
    pub fn of_message(message: &WakuMessage) -> Self {
        Self::of_bytes(&chs_proto::Message::encode_to_vec(message))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// A libp2p peer id, in its usual base58 text form (`16Uiu2…` for secp256k1 keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) libp2p::PeerId);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

/// The error of parsing a [`PeerId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid peer id {text:?}")]
pub struct InvalidPeerId {
    /// The text given.
    pub text: String,
}

impl FromStr for PeerId {
    type Err = InvalidPeerId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(PeerId).map_err(|_| InvalidPeerId { text: text.to_owned() })
    }
}

/// The current Unix time in nanoseconds, for [`WakuMessage::timestamp`].
#[must_use]
pub fn timestamp_now() -> i64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// A WakuMessage received over relay and accepted by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The pubsub topic it arrived on.
    pub pubsub_topic: String,
    /// The message.
    pub message: WakuMessage,
    /// Its gossipsub message id (SHA-256 of the bytes received).
    pub message_id: MessageId,
    /// The peer that forwarded it to us (not necessarily its author: relay is anonymous).
    pub propagation_source: PeerId,
}

impl ReceivedMessage {
    /// The 14/WAKU2 deterministic message hash (`chs_proto::waku::message_hash`).
    #[must_use]
    pub fn message_hash(&self) -> [u8; 32] {
        chs_proto::waku::message_hash(&self.pubsub_topic, &self.message)
    }

    /// A JSON object for command-line output: `pubsub_topic`, `content_topic`, `payload_hex`,
    /// `payload_utf8` (null unless valid UTF-8), `version`, `timestamp` (ns), `meta_hex`,
    /// `ephemeral`, `message_id`, `message_hash` (hex) and `from`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let message = &self.message;
        serde_json::json!({
            "pubsub_topic": self.pubsub_topic,
            "content_topic": message.content_topic,
            "payload_hex": hex::encode(&message.payload),
            "payload_utf8": std::str::from_utf8(&message.payload).ok(),
            "version": message.version,
            "timestamp": message.timestamp,
            "meta_hex": message.meta.as_ref().map(hex::encode),
            "ephemeral": message.ephemeral,
            "message_id": self.message_id.to_string(),
            "message_hash": hex::encode(self.message_hash()),
            "from": self.propagation_source.to_string(),
        })
    }
}

/// Which received messages a [`MessageReceiver`] yields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentFilter {
    /// Only this pubsub topic; `None` for all subscribed topics.
    pub pubsub_topic: Option<String>,
    /// Only these content topics; empty for all.
    pub content_topics: Vec<String>,
    /// Only messages whose payload has at most this many bytes; `None` for any size.
    pub max_payload: Option<usize>,
}

impl ContentFilter {
    /// Every message on every subscribed topic.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Messages on `pubsub_topic` with one of `content_topics` (all content topics if empty).
    #[must_use]
    pub fn new(pubsub_topic: impl Into<String>, content_topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            pubsub_topic: Some(pubsub_topic.into()),
            content_topics: content_topics.into_iter().map(Into::into).collect(),
            max_payload: None,
        }
    }

    /// The same filter, also refusing payloads larger than `bytes` (they never enter the queue).
    #[must_use]
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Whether `message` passes the filter.
    #[must_use]
    pub fn matches(&self, message: &ReceivedMessage) -> bool {
        self.pubsub_topic.as_ref().is_none_or(|t| *t == message.pubsub_topic)
            && (self.content_topics.is_empty() || self.content_topics.contains(&message.message.content_topic))
            && self.max_payload.is_none_or(|max| message.message.payload.len() <= max)
    }
}

/// One receiver's queue as the node sees it: its filter (applied before queueing), its sender
/// and its loss counter.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) filter: ContentFilter,
    pub(crate) sender: mpsc::Sender<Arc<ReceivedMessage>>,
    pub(crate) lost: Arc<AtomicU64>,
}

/// The receivers' queues, shared by the handles (which add) and the event loop (which delivers);
/// `None` once the node has stopped (every sender dropped, so every receiver ends).
pub(crate) type Subscriptions = Arc<Mutex<Option<Vec<Subscription>>>>;

/// Locks `subscriptions` (a poisoned lock is still consistent: each step is one push or retain).
pub(crate) fn lock(subscriptions: &Subscriptions) -> std::sync::MutexGuard<'_, Option<Vec<Subscription>>> {
    subscriptions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands `message` to every live subscription whose filter it passes. A full queue loses this
/// message (the newest: what is queued is kept), counted on that receiver
/// ([`MessageReceiver::lost`]) and in [`crate::Stats::lagged_receivers`]. Closed queues are
/// forgotten. Never waits.
pub(crate) fn deliver(subscriptions: &Subscriptions, counters: &Counters, message: &Arc<ReceivedMessage>) {
    let mut guard = lock(subscriptions);
    let Some(list) = guard.as_mut() else { return };
    list.retain(|subscription| {
        if !subscription.filter.matches(message) {
            return !subscription.sender.is_closed();
        }
        match subscription.sender.try_send(Arc::clone(message)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let lost = subscription.lost.fetch_add(1, Ordering::Relaxed) + 1;
                counters.lagged_receivers.fetch_add(1, Ordering::Relaxed);
                // Logged at powers of two: a flood does not flood the log too.
                if lost.is_power_of_two() {
                    tracing::warn!(lost, filter = ?subscription.filter, "message receiver full; newest messages lost");
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

/// Hands `message` to every live subscription whose filter it passes, waiting up to `wait` for
/// room in each queue (for messages fetched from a store node, which must not be lost to a burst);
/// a queue still full after `wait` loses it, counted as in [`deliver`]. Returns how many
/// receivers got it.
pub(crate) async fn deliver_waiting(
    subscriptions: &Subscriptions,
    counters: &Counters,
    message: Arc<ReceivedMessage>,
    wait: std::time::Duration,
) -> usize {
    let targets: Vec<(mpsc::Sender<Arc<ReceivedMessage>>, Arc<AtomicU64>)> = match lock(subscriptions).as_ref() {
        Some(list) => list
            .iter()
            .filter(|s| s.filter.matches(&message))
            .map(|s| (s.sender.clone(), Arc::clone(&s.lost)))
            .collect(),
        None => return 0,
    };
    let mut reached = 0;
    for (sender, lost) in targets {
        match sender.send_timeout(Arc::clone(&message), wait).await {
            Ok(()) => reached += 1,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                lost.fetch_add(1, Ordering::Relaxed);
                counters.lagged_receivers.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(?wait, "message receiver full for a stored message; lost");
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {}
        }
    }
    reached
}

/// Receives accepted messages that match a [`ContentFilter`], from a queue of its own.
///
/// It is bounded: the filter is applied before queueing (so other traffic never takes its
/// room), and when the queue is full the node drops the newest message for this receiver,
/// counts it ([`MessageReceiver::lost`], [`crate::Stats::lagged_receivers`]) and logs it; the
/// node never waits for a slow receiver.
#[derive(Debug)]
pub struct MessageReceiver {
    pub(crate) receiver: mpsc::Receiver<Arc<ReceivedMessage>>,
    pub(crate) lost: Arc<AtomicU64>,
}

impl MessageReceiver {
    /// The next matching message; `None` once the node has stopped.
    ///
    /// Cancel-safe: dropping the future loses no message.
    pub async fn recv(&mut self) -> Option<ReceivedMessage> {
        self.receiver.recv().await.map(Self::unwrap)
    }

    /// The next queued message, if one is queued now (`None` if the queue is empty or the node
    /// has stopped).
    pub fn try_recv(&mut self) -> Option<ReceivedMessage> {
        self.receiver.try_recv().ok().map(Self::unwrap)
    }

    /// Whether no message is queued now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// How many matching messages this receiver lost because its queue was full.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn unwrap(message: Arc<ReceivedMessage>) -> ReceivedMessage {
        Arc::try_unwrap(message).unwrap_or_else(|shared| ReceivedMessage::clone(&shared))
    }
}

/// Something that happened to the node's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A first connection to a peer was established.
    PeerConnected {
        /// The peer.
        peer_id: PeerId,
        /// Its address on that connection.
        address: String,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: PeerId,
    },
    /// A peer subscribed to a pubsub topic.
    PeerSubscribed {
        /// The peer.
        peer_id: PeerId,
        /// The topic.
        pubsub_topic: String,
    },
    /// A peer unsubscribed from a pubsub topic.
    PeerUnsubscribed {
        /// The peer.
        peer_id: PeerId,
        /// The topic.
        pubsub_topic: String,
    },
    /// A peer answered our 66/WAKU2-METADATA request.
    MetadataReceived {
        /// The peer.
        peer_id: PeerId,
        /// Its cluster id.
        cluster_id: Option<u32>,
        /// Its shards.
        shards: Vec<u32>,
    },
    /// Discovery (or a peer that had only dialled us) gave the peer manager a dialable peer.
    PeerDiscovered {
        /// The peer.
        peer_id: PeerId,
        /// Where it was learnt.
        source: crate::PeerSource,
    },
    /// A peer does not speak 66/WAKU2-METADATA (js-waku); it stays connected.
    MetadataUnsupported {
        /// The peer.
        peer_id: PeerId,
    },
    /// A peer was disconnected because of its metadata.
    PeerRejected {
        /// The peer.
        peer_id: PeerId,
        /// Why.
        reason: PeerRejection,
    },
}
