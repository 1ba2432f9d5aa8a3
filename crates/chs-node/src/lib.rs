//! The chs orchestrator: where the archive builder, the torrent layer, the Waku layer and the
//! community manager meet.
//!
//! A [`Node`] owns one SQLite store, one torrent session and one Waku relay node, and runs:
//!
//! * per community it **controls**: an archive task (seed the existing torrent, catch up on
//!   missed windows, build one archive per interval, seed only the latest torrent) and live
//!   capture of the community's chat messages into the store;
//! * the **magnetlink dispatcher**: on [`Signal::HistoryArchivesSeeding`] of a controlled
//!   community, publish the signed magnetlink on the community's pubsub topic;
//! * per community it has **joined**: the member pipeline (verdict, debounce, index first, missing
//!   archives only, canonical import, seed).
//!
//! Everything that happens is a [`Signal`] on the node's bus ([`NodeHandle::signals`]).
//! The `chs` binary runs a node from a TOML file ([`NodeConfig::from_file`]) and the
//! [`demo`]. [`fuzz`] is the entry point of the `config` fuzz target.

mod capture;
pub mod clock;
pub mod config;
pub mod demo;
mod dispatch;
mod error;
mod fault;
pub mod fuzz;
mod member;
mod node;
mod owner;
pub mod signal;
// Wired into the node once the issue-16 chs-node refactor lands (see docs/chs-node.md).
#[allow(dead_code)]
mod waku_store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, DataDirLock, NodeConfig};
pub use error::NodeError;
pub use node::{CommunityStatus, DownloadPhase, DownloadView, Node, NodeHandle, SeedView, community_statuses};
pub use signal::{Signal, SignalBus};

/// Runs the migrations the node's tables need on `store`, so that [`community_statuses`] can read
/// a store the node has never opened. The node keeps no tables of its own any more (the pending
/// magnetlink lives in chs-community's), so this opens the community tables.
///
/// # Errors
/// Store errors.
pub fn migrate_store(store: &mut chs_store::Store) -> Result<(), NodeError> {
    chs_community::Communities::open(store)?;
    Ok(())
}

#[cfg(test)]
mod tests;
