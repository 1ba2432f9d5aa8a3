//! Whole-folder operations over a [`TorrentNode`]: make the torrent of an archive folder
//! ([`create`]), seed a folder and get its magnet ([`seed_dir`]), fetch everything a magnet
//! holds into a folder ([`fetch`]). `chs torrent create|seed|fetch` are thin wrappers of these.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::magnet::Magnet;
use crate::meta::{STATUS_ANNOUNCE_LIST, TorrentFileOptions, TorrentMeta};
use crate::node::{DownloadOptions, SeedStatus, TorrentNode};

/// A torrent made of a folder.
#[derive(Debug, Clone)]
pub struct Created {
    /// The info dict.
    pub meta: TorrentMeta,
    /// Where the `.torrent` was written, if a torrents dir was given.
    pub torrent_path: Option<PathBuf>,
    /// The magnet link exactly as status-go would publish it (its two default trackers).
    pub magnet: Magnet,
}

fn status_trackers() -> Vec<String> {
    STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect()
}

/// Hashes `dir` (off the async threads) into a torrent named after the folder and, if
/// `torrents_dir` is given, writes `<torrents_dir>/<name>.torrent` with status-go's announce list.
pub async fn create(dir: &Path, piece_length: u32, torrents_dir: Option<&Path>) -> Result<Created, Error> {
    let dir_owned = dir.to_owned();
    let meta = tokio::task::spawn_blocking(move || TorrentMeta::from_dir(&dir_owned, piece_length))
        .await
        .map_err(|_| Error::Cancelled)??;
    let torrent_path = match torrents_dir {
        Some(t) => Some(meta.write_torrent_file(t, &TorrentFileOptions::default())?),
        None => None,
    };
    let magnet = Magnet::for_meta(&meta, &status_trackers());
    Ok(Created { meta, torrent_path, magnet })
}

/// Creates the torrent of `dir` and seeds it under the key `<folder name>`, replacing what that
/// key seeded before (announced to the node's trackers and the DHT when it has them). Returns the
/// torrent, the seeding status and the magnet link: its `tr` are the node's trackers, and its
/// `x.pe` hint is the node's [`TorrentNode::peer_hint`] or, for a node with no other discovery
/// (no tracker, no DHT), its listen address unless that is unspecified.
pub async fn seed_dir(
    node: &TorrentNode,
    dir: &Path,
    piece_length: u32,
) -> Result<(Created, SeedStatus, Magnet), Error> {
    let created = create(dir, piece_length, None).await?;
    let status = node.seed(created.meta.name(), dir, &created.meta).await?;
    let discovery = &node.config().discovery;
    let mut magnet = Magnet::for_meta(&created.meta, &discovery.trackers);
    let hint = node.peer_hint().or_else(|| {
        let alone = !discovery.dht && discovery.trackers.is_empty();
        node.listen_addr().filter(|a| alone && !a.ip().is_unspecified())
    });
    if let Some(addr) = hint {
        magnet = magnet.with_peer(addr);
    }
    Ok((created, status, magnet))
}

/// What [`fetch`] did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The torrent (from the swarm, checked against the magnet's info hash).
    pub meta: TorrentMeta,
    /// `out_dir/<name>`, holding the files.
    pub folder: PathBuf,
    /// Length of the `index` file, if the torrent has one.
    pub index_len: Option<usize>,
    /// What this node now seeds from the folder.
    pub seeding: SeedStatus,
}

/// Downloads `magnet` into `out_dir/<name>`: the `index` file first (if the torrent has one),
/// then, unless `index_only`, every file. Afterwards the node seeds what it has, under the key
/// `dn` (or the info hash when the link has no `dn`).
pub async fn fetch(
    node: &TorrentNode,
    magnet: &Magnet,
    out_dir: &Path,
    opts: DownloadOptions,
    index_only: bool,
) -> Result<Fetched, Error> {
    let key = magnet.display_name.clone().unwrap_or_else(|| magnet.info_hash.to_hex());
    let download = node.download(&key, magnet, out_dir, opts).await?;
    let meta = download.meta().clone();
    let index_len = if meta.file_index("index").is_some() { Some(download.fetch_index().await?.len()) } else { None };
    if !index_only {
        let paths: Vec<String> = meta.files().iter().map(crate::meta::FileEntry::display_path).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        download.fetch_files(&paths).await?;
    }
    let folder = download.folder().to_owned();
    let seeding = download.finish().await?;
    Ok(Fetched { meta, folder, index_len, seeding })
}
