//! A Waku relay node on rust-libp2p that real Waku nodes (nwaku, go-waku, js-waku) accept.
//!
//! Start with [`WakuNode::start`] and a [`Config`]; then [`WakuHandle::subscribe`],
//! [`WakuHandle::messages`] (a receiver of accepted `(pubsub topic, WakuMessage)` filtered by
//! content topics), [`WakuHandle::publish`] and [`WakuHandle::dial`]; finish with
//! [`WakuNode::shutdown`].
//!
//! What it speaks:
//! - 11/WAKU2-RELAY: gossipsub v1.1 under `/vac/waku/relay/2.0.0`, StrictNoSign (anonymous),
//!   message id = SHA-256 of the WakuMessage bytes, 1 MiB + 64 KiB frames, nwaku's mesh
//!   parameters (D=6, Dlo=4, Dhi=8, Dlazy=6, 1 s heartbeat);
//! - 66/WAKU2-METADATA (`/vac/waku/metadata/1.0.0`), served and requested; peers of another
//!   cluster are disconnected, peers that do not speak it (js-waku) are tolerated;
//! - static sharding topics `/waku/2/rs/<cluster>/<shard>` ([`RelayShard`]);
//! - TCP + noise + yamux (+ DNS), identify, ping keep-alive (sent and answered; a peer that
//!   fails `max_ping_failures` pings in a row is dropped), secp256k1 node keys kept in the data dir;
//! - discovery: EIP-1459 DNS trees ([`dns`]), discv5 with our own ENR (`waku2`, `rs`; [`enr`]),
//!   34/WAKU2-PEER-EXCHANGE client and server; a peer manager (target peer count, bounded
//!   inbound connections, redial with exponential backoff, peers filtered by cluster and shard),
//!   see [`WakuHandle::peers`].
//!
//! Incoming messages are validated ([`validation`]) and reported to gossipsub as
//! Accept / Reject / Ignore, with a counter per reason ([`Stats`]).
//!
//! This crate knows WakuMessages and topics only: nothing of communities, torrents, archives,
//! SQLite or the 26/WAKU2-PAYLOAD encryption (that is `chs-waku-payload`). It has no filter,
//! lightpush or RLN: see `docs/chs-waku.md`, "Important discrepancies". libp2p types do not cross its API.
//!
//! [`store`]: 13/WAKU2-STORE v3 (`/vac/waku/store-query/3.0.0`), a checking client and a server
//! over a caller-provided backend.

mod config;
mod discovery;
pub mod dns;
pub mod enr;
mod error;
mod key;
mod message;
pub mod metadata;
mod node;
mod peer_exchange;
mod peers;
pub mod store;
pub mod topic;
pub mod validation;

pub use chs_proto::waku::WakuMessage;
pub use config::Config;
pub use error::{DialError, KeyError, NodeStopped, PublishError, StartError, SubscribeError};
pub use key::NODE_KEY_FILE;
pub use message::{
    ContentFilter, InvalidPeerId, MessageId, MessageReceiver, NodeEvent, PeerId, ReceivedMessage, timestamp_now,
};
pub use metadata::{METADATA_PROTOCOL, PeerMetadata, PeerRejection};
pub use node::{MAX_TRANSMIT_SIZE, RELAY_PROTOCOL, TopicPeers, WakuHandle, WakuNode};
pub use peer_exchange::PEER_EXCHANGE_PROTOCOL;
pub use peers::{PeerInfo, PeerSource};
pub use topic::{DEFAULT_COMMUNITY_SHARD, DEFAULT_PUBSUB_TOPIC, RelayShard, STATUS_CLUSTER_ID};
pub use validation::{Rejection, Stats, TopicValidator, ValidationConfig, Verdict};

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
