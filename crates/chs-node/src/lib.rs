//! The chs orchestrator: where the archive builder, the torrent layer, the Waku layer and the
//! community manager meet.
//!
//! A [`Node`] owns one SQLite store, one torrent session and one Waku relay node, and runs one
//! task per role, each owning its state and handling one closed set of events in one place:
//!
//! * per community it **controls**: the owner task (seed the existing torrent, catch up on
//!   missed windows, build one archive per interval, seed only the latest torrent; decisions in
//!   `owner::OwnerMachine`) and live capture (bursts written in one transaction);
//! * the **dispatcher**: publishes each controlled community's signed magnetlink when its owner
//!   task seeds (private channel, not the signal bus) and re-sends it, same clock, rate-limited,
//!   when peers subscribe;
//! * per community it has **joined**: the member task (verdict, debounce, index first, missing
//!   archives only, canonical import, seed; decisions in `member::machine`);
//! * the **supervisor**: which communities have running tasks; [`NodeHandle`]'s join, leave,
//!   trigger and status go through it.
//!
//! Everything that happens is a [`Signal`] on the node's bus ([`NodeHandle::signals`]), for
//! observers only: nothing in the node reads it back.
//! The `chs` binary runs a node from a TOML file ([`Config::from_file`]). [`fuzz`] is the entry
//! point of the `config` fuzz target.

pub mod backend;
mod capture;
pub mod clock;
pub mod config;
mod dispatch;
mod error;
mod fault;
mod follow;
pub mod fuzz;
mod member;
mod node;
mod owner;
mod services;
pub mod signal;
mod status;
mod waku_store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError, DataDirLock, LinkChannel, LogosStorageSection};
pub use dispatch::REANNOUNCE_MIN_GAP;
pub use error::NodeError;
pub use node::{Node, NodeHandle};
pub use signal::{Signal, SignalBus};
pub use status::{
    CommunityStatus, DhtAnnounceView, DownloadPhase, DownloadView, FailedImport, SeedView, SwarmPeerView, SwarmView,
    TrackerView, community_statuses,
};

/// The old name of [`Config`].
#[doc(hidden)]
pub type NodeConfig = Config;

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

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
