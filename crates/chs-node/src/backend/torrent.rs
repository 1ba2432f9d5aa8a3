//! The BitTorrent backend over `chs-torrent`: the folder (`data` + `index`) is one v1 torrent,
//! the link its magnet; a member fetches the index file, then only the chosen archives' pieces.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chs_archive::format::decode_index;
use chs_community::CommunityId;
use chs_torrent::{DownloadOptions, Magnet, STATUS_ANNOUNCE_LIST, TorrentFileOptions, TorrentMeta, TorrentNode};

use super::{
    BackendError, BackendKind, BackendStatus, DistributionBackend, Fetch, FetchOptions, FetchedArchive, Location,
    Published, RemoteArchive, RemoteIndex,
};

/// What the torrent backend needs besides the torrent node.
#[derive(Debug, Clone)]
pub struct TorrentBackendConfig {
    /// Piece length of the torrents made (status-go: 100 KiB).
    pub piece_length: u32,
    /// Where `<community>.torrent` files are written.
    pub torrent_dir: PathBuf,
    /// Where fetched folders end (`<root>/<community>/`).
    pub archive_root: PathBuf,
    /// Peers tried besides the magnet's hints.
    pub peers: Vec<SocketAddr>,
    /// Address put in magnets as a peer hint, if any.
    pub announce_addr: Option<SocketAddr>,
    /// Metadata time-out (status-go: 20 s).
    pub metadata_timeout: Duration,
    /// Give up on a download that makes no progress for this long.
    pub stall_timeout: Duration,
}

/// The BitTorrent backend.
#[derive(Debug, Clone)]
pub struct TorrentBackend {
    node: TorrentNode,
    config: TorrentBackendConfig,
}

impl TorrentBackend {
    /// A backend over a running torrent node.
    #[must_use]
    pub fn new(node: TorrentNode, config: TorrentBackendConfig) -> Self {
        Self { node, config }
    }
}

#[async_trait::async_trait]
impl DistributionBackend for TorrentBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Torrent
    }

    async fn publish(&self, community: &CommunityId, dir: &Path) -> Result<Published, BackendError> {
        let (d, piece_length, torrent_dir) =
            (dir.to_owned(), self.config.piece_length, self.config.torrent_dir.clone());
        let meta = tokio::task::spawn_blocking(move || -> Result<TorrentMeta, BackendError> {
            let meta = TorrentMeta::from_dir(&d, piece_length)?;
            meta.write_torrent_file(&torrent_dir, &TorrentFileOptions::default())?;
            Ok(meta)
        })
        .await??;
        let key = community.to_string();
        let changed = self.node.seeded(&key) != Some(meta.info_hash());
        if changed {
            self.node.seed(&key, dir, &meta).await?;
        }
        let trackers: Vec<String> = STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect();
        let mut magnet = Magnet::for_meta(&meta, &trackers);
        if let Some(hint) = self.config.announce_addr.or_else(|| self.node.local_peer_addr()) {
            magnet = magnet.with_peer(hint);
        }
        Ok(Published { link: magnet.to_string(), changed })
    }

    async fn open(
        &self,
        community: &CommunityId,
        link: &str,
        options: FetchOptions,
    ) -> Result<Box<dyn Fetch>, BackendError> {
        let magnet: Magnet = link.parse().map_err(|_| BackendError::WrongLink {
            backend: BackendKind::Torrent.as_str(),
            kind: chs_status::classify_link(link).ok(),
        })?;
        let max_index = options.max_index_bytes;
        let validate = std::sync::Arc::new(move |meta: &TorrentMeta| {
            let index_len = meta.file_index(chs_archive::INDEX_FILE).map(|i| meta.files()[i].length);
            match index_len {
                None => Err("no index file".to_owned()),
                Some(len) if max_index > 0 && len > max_index => {
                    Err(format!("an index of {len} bytes exceeds {max_index}"))
                }
                Some(_) => Ok(()),
            }
        });
        let download_options = DownloadOptions {
            peers: self.config.peers.clone(),
            metadata_timeout: self.config.metadata_timeout,
            stall_timeout: self.config.stall_timeout,
            cancel: options.cancel.clone(),
            validate: Some(validate),
            ..DownloadOptions::default()
        };
        let download = match self
            .node
            .download(&community.to_string(), &magnet, &self.config.archive_root, download_options)
            .await
        {
            Err(chs_torrent::Error::Rejected(reason)) => return Err(BackendError::Refused(reason)),
            other => other?,
        };
        Ok(Box::new(TorrentFetch { download, index: RemoteIndex::new(), max_archive: options.max_archive_bytes }))
    }

    async fn retain(&self, community: &CommunityId, link: &str) -> Result<(), BackendError> {
        let magnet: Magnet = link.parse().map_err(|_| BackendError::WrongLink {
            backend: BackendKind::Torrent.as_str(),
            kind: chs_status::classify_link(link).ok(),
        })?;
        if self.node.seeded(&community.to_string()) == Some(magnet.info_hash) {
            return Ok(());
        }
        Err(BackendError::Refused(format!("{link} is not the torrent seeded for {community}")))
    }

    async fn remove(&self, community: &CommunityId) -> Result<(), BackendError> {
        self.node.unseed(&community.to_string()).await?;
        Ok(())
    }

    fn status(&self, community: &CommunityId) -> BackendStatus {
        self.node.status(&community.to_string()).map_or_else(BackendStatus::default, |s| BackendStatus {
            link: Some(s.info_hash.to_hex()),
            held: s.have_bytes,
            peers: s.peers,
        })
    }
}

/// A torrent download: the staging folder of `chs-torrent`.
#[derive(Debug)]
struct TorrentFetch {
    download: chs_torrent::Download,
    index: RemoteIndex,
    max_archive: u64,
}

#[async_trait::async_trait]
impl Fetch for TorrentFetch {
    async fn index(&mut self) -> Result<RemoteIndex, BackendError> {
        let bytes = self.download.fetch_index().await?;
        let index = decode_index(&bytes)?;
        self.index = index
            .archives
            .into_iter()
            .map(|(id, m)| {
                let location = Location::Range { offset: m.offset, size: m.size, padding: m.padding };
                (id, RemoteArchive { metadata: m.metadata.unwrap_or_default(), location })
            })
            .collect();
        Ok(self.index.clone())
    }

    async fn archives(&mut self, ids: &[String]) -> Result<Vec<FetchedArchive>, BackendError> {
        let meta = self.download.meta();
        let data_len = meta.file_index(chs_archive::DATA_FILE).map_or(0, |i| meta.files()[i].length);
        let mut ranges = Vec::new();
        let mut wanted = Vec::new();
        let mut unknown = Vec::new();
        for id in ids {
            match self.index.get(id).map(|a| &a.location) {
                Some(&Location::Range { offset, size, padding }) => {
                    let fits = size > 0
                        && padding < size
                        && (self.max_archive == 0 || size - padding <= self.max_archive)
                        && offset.checked_add(size).is_some_and(|end| end <= data_len);
                    if !fits {
                        return Err(BackendError::Refused(format!(
                            "archive {id}: offset {offset} size {size} padding {padding} does not fit `data` ({data_len} bytes)"
                        )));
                    }
                    ranges.push(offset..offset + size);
                    wanted.push((id.clone(), offset..offset + size - padding));
                }
                _ => unknown.push(id.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(BackendError::NotInIndex(unknown));
        }
        if !ranges.is_empty() {
            self.download.fetch_ranges(chs_archive::DATA_FILE, &ranges).await?;
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (id, range) in wanted {
            out.push(FetchedArchive { id, bytes: self.download.read_range(chs_archive::DATA_FILE, range).await? });
        }
        Ok(out)
    }

    async fn finish(self: Box<Self>) -> Result<(), BackendError> {
        self.download.finish().await?;
        Ok(())
    }

    async fn discard(self: Box<Self>) -> Result<(), BackendError> {
        self.download.discard().await?;
        Ok(())
    }
}
