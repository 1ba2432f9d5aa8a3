//! The Status wire layer: messages on Waku exactly as status-go c72f491 writes and reads them.
//!
//! Start with [`magnetlink::build_magnetlink`] and [`magnetlink::parse_magnetlink`]: a
//! magnetlink is `CommunityMessageArchiveMagnetlink` → [`amm`] (type 43, signed by the
//! community key) → `ProtocolMessage.public_message` ([`envelope`], optional [`bundle`]) →
//! 26/WAKU2-PAYLOAD v1 (`chs_waku_payload`, signed by the sender's identity, AES-256-GCM with
//! the chat key) → `WakuMessage{version 1, "/waku/1/0x<topic>/rfc26", ns timestamp, meta empty,
//! ephemeral false}`. Chat ids, topics and keys are in [`ids`] and [`keys`]; what a control node
//! archives is [`archive::capture_for_archive`]; reading archived history is
//! [`history::decode_archived`] (many at once on all cores: [`parallel::map_ordered`]); the `chs status` commands are in the `chs` binary. Every rejection is a
//! [`RejectReason`], counted with [`RejectCounters`].
//!
//! The stateful member rule (joined, not control node, stored clock, last URI) is applied by the
//! community crate through the pure [`magnetlink::accept_magnetlink`].
//!
//! This crate does no I/O, has no runtime, reads no clock and knows nothing of SQLite,
//! networks, torrents or archive files: callers pass time, keys and state in.
//! Design notes and what status-go does where the spec is silent: `docs/status-wire.md`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

pub mod amm;
pub mod archive;
pub mod bundle;
pub mod description;
pub mod envelope;
pub mod fuzz;
pub mod hash_ratchet;
pub mod history;
pub mod ids;
pub mod keys;
pub mod layers;
pub mod link;
pub mod magnetlink;
pub mod parallel;
pub mod protected;
mod reject;
pub mod segment;
mod serde_hex;

pub use description::{Channel, Description, Shard, ShardInfo};
pub use ids::{CommunityId, DEFAULT_PUBSUB_TOPIC, MagnetlinkChannel, Topic};
pub use keys::{ChatKey, ChatKeyCache, ChatKeyRing};
pub use link::{Generation, LinkKind, UsableLinks, classify_link};
pub use magnetlink::{
    MagnetlinkParams, MagnetlinkState, MagnetlinkVerdict, accept_magnetlink, build_magnetlink, parse_magnetlink,
};
pub use reject::{RejectCounters, RejectKind, RejectReason};

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
