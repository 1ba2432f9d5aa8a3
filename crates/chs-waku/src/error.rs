//! Errors of the node API, one enum per operation.

use std::path::PathBuf;

use crate::validation::Rejection;

/// The node's task has stopped (after `shutdown`, or because it failed); no command can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Waku node has stopped")]
pub struct NodeStopped;

/// The node key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file (or creating the data dir) failed.
    #[error("node key I/O at {}", path.display())]
    Io {
        /// The file or dir concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold exactly 32 bytes. Delete it to get a new identity.
    #[error("node key file {} holds {len} bytes, expected 32", path.display())]
    BadLength {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The 32 bytes are not a valid secp256k1 secret (zero or above the curve order).
    #[error("node key file {} does not hold a valid secp256k1 secret", path.display())]
    InvalidSecret {
        /// The key file.
        path: PathBuf,
    },
}

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The node key could not be loaded or created.
    #[error("node key")]
    Key(#[from] KeyError),
    /// A listen or bootstrap address is not a multiaddr.
    #[error("invalid multiaddr {addr:?}")]
    InvalidAddress {
        /// The string given.
        addr: String,
        /// The parser's complaint.
        #[source]
        source: libp2p::multiaddr::Error,
    },
    /// The transport (TCP, noise, DNS) could not be built.
    #[error("building the transport: {0}")]
    Transport(String),
    /// The gossipsub configuration was refused (e.g. inconsistent mesh parameters).
    #[error("gossipsub configuration: {0}")]
    Gossipsub(String),
    /// Listening on an address failed.
    #[error("listening on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Subscribing to a configured pubsub topic failed.
    #[error("subscribing to {topic}: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// Publishing a message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// No connected peer is subscribed to the pubsub topic; dial one or wait for
    /// [`crate::WakuHandle::wait_for_topic_peers`], then retry.
    #[error("no peer is subscribed to {pubsub_topic}")]
    NoPeers {
        /// The pubsub topic.
        pubsub_topic: String,
    },
    /// The message would be rejected by the network's validation; fix it.
    #[error("invalid message")]
    Invalid(#[source] Rejection),
    /// The same bytes were published recently (same gossipsub message id); change the timestamp.
    #[error("duplicate: this message was already published")]
    Duplicate,
    /// gossipsub refused the size.
    #[error("message too large for gossipsub")]
    TooLarge,
    /// All peers' send queues are full; retry later.
    #[error("send queues of all {peers} peers are full")]
    QueuesFull {
        /// How many peers were tried.
        peers: usize,
    },
    /// Another gossipsub failure.
    #[error("gossipsub: {0}")]
    Other(String),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}

/// Dialing a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The string is not a multiaddr.
    #[error("invalid multiaddr {addr:?}: {reason}")]
    InvalidAddress {
        /// The string given.
        addr: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The connection could not be established.
    #[error("dialing {addr} failed: {reason}")]
    Failed {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}

/// Subscribing to a pubsub topic failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// gossipsub refused the subscription.
    #[error("subscribing to {topic}: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}
