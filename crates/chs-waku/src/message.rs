//! What the node hands to its users: received messages, their ids, peer ids and events.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chs_proto::waku::WakuMessage;
use sha2::Digest as _;
use tokio::sync::broadcast;

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
        }
    }

    /// Whether `message` passes the filter.
    #[must_use]
    pub fn matches(&self, message: &ReceivedMessage) -> bool {
        self.pubsub_topic.as_ref().is_none_or(|t| *t == message.pubsub_topic)
            && (self.content_topics.is_empty() || self.content_topics.contains(&message.message.content_topic))
    }
}

/// Receives accepted messages that match a [`ContentFilter`].
///
/// It is bounded: a receiver that falls more than the node's `channel_capacity` messages behind
/// loses the oldest ones (counted in [`crate::Stats::lagged_receivers`] and logged); the node
/// never waits for a slow receiver.
#[derive(Debug)]
pub struct MessageReceiver {
    pub(crate) receiver: broadcast::Receiver<Arc<ReceivedMessage>>,
    pub(crate) filter: ContentFilter,
    pub(crate) counters: Arc<Counters>,
}

impl MessageReceiver {
    /// The next matching message; `None` once the node has stopped.
    ///
    /// Cancel-safe: dropping the future loses no message.
    pub async fn recv(&mut self) -> Option<ReceivedMessage> {
        loop {
            match self.receiver.recv().await {
                Ok(message) if self.filter.matches(&message) => return Some(ReceivedMessage::clone(&message)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "message receiver lagged behind; messages lost");
                    self.counters.lagged_receivers.fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
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
