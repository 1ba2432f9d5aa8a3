//! BitTorrent layer of the Community History Service.
//!
//! It knows files, torrents and magnet links:
//! - [`TorrentMeta`] builds the BitTorrent v1 info dict of a folder exactly as status-go does
//!   (multi-file, files sorted by path, 100 KiB pieces, `name` = folder name), writes the
//!   `.torrent`, and gives the [`InfoHash`];
//! - [`Magnet`] prints and parses magnet links as anacrolix/torrent does, plus `x.pe` peer hints;
//! - [`TorrentNode`] wraps one librqbit session per node: seeding the latest torrent of each key,
//!   and downloads ([`Download`]) of the `index` file and of chosen byte ranges of other files.
//!
//! # Example: owner seeds, member fetches the index and one archive
//!
//! ```no_run
//! # async fn demo() -> Result<(), chs_torrent::Error> {
//! use chs_torrent::{DownloadOptions, Magnet, Config, TorrentMeta, TorrentNode, DEFAULT_PIECE_LENGTH};
//! use std::path::Path;
//!
//! let folder = Path::new("/data/archivedata/0x02…");          // holds `data` and `index`
//! let meta = TorrentMeta::from_dir(folder, DEFAULT_PIECE_LENGTH)?; // blocking: hash in spawn_blocking
//! let owner = TorrentNode::start(Config::local("/data/owner-torrent-state")).await?;
//! owner.seed(meta.name(), folder, &meta).await?;
//! let magnet = Magnet::for_meta(&meta, &[]).with_peer(owner.local_peer_addr().expect("listening"));
//!
//! let member = TorrentNode::start(Config::local("/data/member-torrent-state")).await?;
//! let download = member.download(meta.name(), &magnet, Path::new("/data/member"), DownloadOptions::default()).await?;
//! let index = download.fetch_index().await?;                   // parse it, pick missing archives
//! download.fetch_ranges("data", &[102_400..204_800]).await?;   // offset..offset+size of an archive
//! download.finish().await?;                                    // swapped in: the member now seeds what it has
//! # let _ = index; Ok(()) }
//! ```
//!
//! Dropping a pending download future cancels it (its peer tasks are aborted); the
//! [`DownloadOptions::cancel`] token does the same from elsewhere.
//!
//! This crate must NOT know about Waku, communities, archive protobufs or SQLite: a "key" is an
//! opaque string chosen by the caller (the community id), and byte ranges are plain numbers.
//! librqbit types do not appear in the public API.

#![warn(missing_docs)]

pub mod bencode;
pub mod folder;
/// The old name of [`folder`] (its CLI helpers moved to the `chs` binary).
#[doc(hidden)]
pub use folder as cli;
mod discovery;
mod error;
mod magnet;
mod meta;
mod node;
mod swarm;
mod wire;

pub use discovery::{Discovery, STATUS_DHT_ROUTERS};
pub use error::{Error, MetaError};
pub use magnet::Magnet;
pub use meta::{
    DEFAULT_PIECE_LENGTH, FileEntry, InfoHash, STATUS_ANNOUNCE_LIST, TorrentFileOptions, TorrentMeta, piece_count,
};

pub use node::{
    Config, Download, DownloadOptions, HANDSHAKE_TIMEOUT, ListenerStats, ListeningSocket, MAX_PENDING_HANDSHAKES,
    MAX_PENDING_HANDSHAKES_PER_IP, Phase, Progress, ProgressFn, STAGING_DIR, SeedStatus, SocketProtocol, SocketPurpose,
    TorrentNode, ValidateFn,
};
/// The old name of [`Config`].
#[doc(hidden)]
pub type NodeConfig = Config;
pub use swarm::{DhtAnnounceStatus, PeerOrigin, SwarmPeer, SwarmStatus, TrackerAnnounceStatus};
pub use wire::FetchStats;

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
