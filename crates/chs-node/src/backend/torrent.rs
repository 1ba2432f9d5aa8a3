//! The BitTorrent backend over `chs-torrent`: the folder (`data` + `index`) is one v1 torrent,
//! the link its magnet; a member fetches the index file, then only the chosen archives' pieces.
//! Both roles of the node reach BitTorrent only through it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chs_archive::format::decode_index;
use chs_community::CommunityId;
use chs_torrent::{DownloadOptions, Magnet, Phase, Progress, TorrentFileOptions, TorrentMeta, TorrentNode};

use super::{
    BackendError, BackendKind, BackendStatus, DistributionBackend, Fetch, FetchOptions, FetchPhase, FetchProgress,
    Location, PublishOptions, Published, RemoteArchive, RemoteIndex,
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

fn hostile(info_hash: String, reason: impl Into<String>) -> BackendError {
    BackendError::Hostile { info_hash, reason: reason.into() }
}

/// Only our own kind of torrent, checked from its metadata before anything is written: folder
/// named after the community, files exactly `data` and `index`, torrent and `index` sizes capped
/// (`member.max_torrent_bytes`, `member.max_index_bytes`; 0 = no cap), so a hostile index is
/// never fetched nor read into memory.
fn validator(key: String, max_bytes: u64, max_index_bytes: u64) -> chs_torrent::ValidateFn {
    Arc::new(move |meta: &TorrentMeta| {
        if meta.name() != key {
            return Err(format!("torrent name {:?} is not the community id", meta.name()));
        }
        let paths: BTreeSet<String> = meta.files().iter().map(chs_torrent::FileEntry::display_path).collect();
        if paths != BTreeSet::from([chs_archive::DATA_FILE.to_owned(), chs_archive::INDEX_FILE.to_owned()]) {
            return Err(format!("files {paths:?} are not exactly `data` and `index`"));
        }
        if max_bytes > 0 && meta.total_length() > max_bytes {
            return Err(format!("{} bytes exceed member.max_torrent_bytes = {max_bytes}", meta.total_length()));
        }
        let index_len = meta.file_index(chs_archive::INDEX_FILE).map_or(0, |i| meta.files()[i].length);
        if max_index_bytes > 0 && index_len > max_index_bytes {
            return Err(format!("an index of {index_len} bytes exceeds member.max_index_bytes = {max_index_bytes}"));
        }
        Ok(())
    })
}

#[async_trait::async_trait]
impl DistributionBackend for TorrentBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Torrent
    }

    /// Makes the torrent of the folder, writes `<torrent_dir>/<id>.torrent` and seeds it in place
    /// of the previous one (nothing changes when it is the one seeded). The magnet names the
    /// trackers the node announces to (status-go's two by default) and a peer hint only when an
    /// address others can dial is configured (status-go puts none).
    async fn publish(
        &self,
        community: &CommunityId,
        dir: &Path,
        options: PublishOptions,
    ) -> Result<Published, BackendError> {
        let (d, piece_length, torrent_dir) =
            (dir.to_owned(), self.config.piece_length, self.config.torrent_dir.clone());
        let meta = tokio::task::spawn_blocking(move || -> Result<TorrentMeta, BackendError> {
            let meta = TorrentMeta::from_dir(&d, piece_length)?;
            meta.write_torrent_file(&torrent_dir, &TorrentFileOptions::default())?;
            if let Some(step) = &options.step {
                step("torrent-written");
            }
            Ok(meta)
        })
        .await??;
        let key = community.to_string();
        let previous = self.node.seeded(&key);
        let changed = previous != Some(meta.info_hash());
        if changed {
            self.node.seed(&key, dir, &meta).await?;
        }
        let mut magnet = Magnet::for_meta(&meta, &self.node.config().discovery.trackers);
        if let Some(hint) = self.node.peer_hint() {
            magnet = magnet.with_peer(hint);
        }
        Ok(Published { link: magnet.to_string(), changed, replaced: previous.is_some() && changed })
    }

    async fn open(
        &self,
        community: &CommunityId,
        link: &str,
        options: FetchOptions,
    ) -> Result<Box<dyn Fetch>, BackendError> {
        if chs_status::classify_link(link).ok() != Some(chs_status::LinkKind::Magnet) {
            return Err(BackendError::WrongLink {
                backend: BackendKind::Torrent.as_str(),
                kind: chs_status::classify_link(link).ok(),
            });
        }
        let magnet: Magnet =
            link.parse().map_err(|e: chs_torrent::Error| hostile(String::new(), format!("bad magnet link: {e}")))?;
        let key = community.to_string();
        let progress = options.progress.clone().map(|report| -> chs_torrent::ProgressFn {
            Arc::new(move |p: Progress| {
                let phase = match p.phase {
                    Phase::Files => FetchPhase::Index,
                    Phase::Ranges => FetchPhase::Data,
                };
                report(FetchProgress { phase, bytes_done: p.bytes_done, bytes_total: p.bytes_total });
            })
        });
        let download_options = DownloadOptions {
            peers: self.config.peers.clone(),
            metadata_timeout: self.config.metadata_timeout,
            stall_timeout: self.config.stall_timeout,
            cancel: options.cancel.clone(),
            progress,
            validate: Some(validator(key.clone(), options.max_total_bytes, options.max_index_bytes)),
            ..DownloadOptions::default()
        };
        let download = match self.node.download(&key, &magnet, &self.config.archive_root, download_options).await {
            Err(chs_torrent::Error::Rejected(reason)) => return Err(hostile(magnet.info_hash.to_hex(), reason)),
            other => other?,
        };
        Ok(Box::new(TorrentFetch {
            download,
            index: RemoteIndex::new(),
            max_archive: options.max_archive_bytes,
            keys: options.ratchet_keys,
            wrapped: super::Wrapped::No,
        }))
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
    /// The community's hash-ratchet keys held here.
    keys: Vec<chs_status::hash_ratchet::RatchetKey>,
    /// Whether the index was wrapped (opened with `keys`, or sealed: then its size).
    wrapped: super::Wrapped,
}

impl TorrentFetch {
    fn data_len(&self) -> u64 {
        let meta = self.download.meta();
        meta.file_index(chs_archive::DATA_FILE).map_or(0, |i| meta.files()[i].length)
    }
}

#[async_trait::async_trait]
impl Fetch for TorrentFetch {
    async fn index(&mut self) -> Result<RemoteIndex, BackendError> {
        let bytes = self.download.fetch_index().await?;
        let index = super::decode_index_with(&self.keys, &bytes, decode_index, &mut self.wrapped)?;
        // Keys as the member's bookkeeping spells archive ids; a key that is none is skipped.
        self.index = index
            .archives
            .into_iter()
            .filter_map(|(key, m)| match chs_community::normalize_archive_id(&key) {
                Ok(id) => {
                    let location = Location::Range { offset: m.offset, size: m.size, padding: m.padding };
                    Some((id, RemoteArchive { metadata: m.metadata.unwrap_or_default(), location }))
                }
                Err(_) => {
                    tracing::warn!(archive_id = %key, "index key is not an archive id; skipped");
                    None
                }
            })
            .collect();
        Ok(self.index.clone())
    }

    fn check(&self, id: &str) -> Result<(), String> {
        let Some(&Location::Range { offset, size, padding }) = self.index.get(id).map(|a| &a.location) else {
            return Err(format!("archive {id} is not in the index"));
        };
        let max = if self.max_archive == 0 { u64::MAX } else { self.max_archive };
        chs_archive::check_entry(offset, size, padding, self.data_len(), max).map_err(|e| match e {
            chs_archive::EntryError::TooLarge { .. } => {
                format!("{e} (member.max_archive_bytes = {})", self.max_archive)
            }
            _ => e.to_string(),
        })
    }

    async fn fetch(&mut self, ids: &[String]) -> Result<Option<u64>, BackendError> {
        let mut ranges = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.index.get(id).map(|a| &a.location) {
                Some(&Location::Range { offset, size, .. }) => {
                    self.check(id).map_err(|reason| BackendError::Refused(format!("archive {id}: {reason}")))?;
                    ranges.push(offset..offset + size);
                }
                _ => unknown.push(id.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(BackendError::NotInIndex(unknown));
        }
        if ranges.is_empty() {
            return Ok(Some(0));
        }
        Ok(Some(self.download.fetch_ranges(chs_archive::DATA_FILE, &ranges).await?.bytes_received))
    }

    async fn read(&mut self, id: &str) -> Result<Vec<u8>, BackendError> {
        let Some(&Location::Range { offset, size, padding }) = self.index.get(id).map(|a| &a.location) else {
            return Err(BackendError::NotInIndex(vec![id.to_owned()]));
        };
        self.check(id).map_err(|reason| BackendError::Refused(format!("archive {id}: {reason}")))?;
        let bytes = self.download.read_range(chs_archive::DATA_FILE, offset..offset + size - padding).await?;
        Ok(if self.wrapped == super::Wrapped::Opened { super::open_archive(&self.keys, id, bytes) } else { bytes })
    }

    async fn keep_sealed(&mut self) -> Result<(u64, u64), BackendError> {
        let super::Wrapped::Sealed(index_len) = self.wrapped else {
            return Err(BackendError::Refused("the index is not sealed".to_owned()));
        };
        let data_len = self.data_len();
        let whole = 0..data_len;
        let received = if data_len > 0 {
            self.download.fetch_ranges(chs_archive::DATA_FILE, std::slice::from_ref(&whole)).await?.bytes_received
        } else {
            0
        };
        Ok((received, data_len.saturating_add(index_len)))
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
