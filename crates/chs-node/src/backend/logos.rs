//! The Logos Storage backend over `chs-logos`, as status-go's `archive/logosstorage/` (PR 7486):
//! each archive (no padding) is its own CID; the index
//! (`LogosStorageWakuMessageArchiveIndex`, ids as `chs_archive::logos`) is uploaded and its CID
//! is the link; the owner keeps every archive CID and removes the previous index CID. A member
//! fetches the index from the network (20 s, one retry), then the archives it lacks (async fetch,
//! presence polled, 20 s, one retry), and reads them from its local node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chs_archive::Reader;
use chs_archive::logos::{
    LogosStorageWakuMessageArchiveIndex, decode_logos_index, encode_logos_index, logos_archive_id, logos_entry,
};
use chs_community::CommunityId;
use chs_logos::{LogosClient, LogosError};
use chs_status::LinkKind;

use super::{
    BackendError, BackendKind, BackendStatus, DistributionBackend, Fetch, FetchOptions, Location, PublishOptions,
    Published, RemoteArchive, RemoteIndex,
};

/// What the Logos Storage backend needs besides the client.
#[derive(Debug, Clone)]
pub struct LogosBackendConfig {
    /// Where the last index CID of each community is kept (`<community>.logos-index`).
    pub state_dir: PathBuf,
}

/// The Logos Storage backend.
#[derive(Debug, Clone)]
pub struct LogosBackend {
    client: LogosClient,
    config: LogosBackendConfig,
}

impl LogosBackend {
    /// A backend over a client of the local node.
    #[must_use]
    pub fn new(client: LogosClient, config: LogosBackendConfig) -> Self {
        Self { client, config }
    }

    /// The client (for status and tests).
    #[must_use]
    pub fn client(&self) -> &LogosClient {
        &self.client
    }

    fn state_file(&self, community: &CommunityId) -> PathBuf {
        self.config.state_dir.join(format!("{community}.logos-index"))
    }

    fn last_link(&self, community: &CommunityId) -> Option<String> {
        let text = std::fs::read_to_string(self.state_file(community)).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    async fn save_link(&self, community: &CommunityId, cid: &str) -> Result<(), BackendError> {
        let path = self.state_file(community);
        let tmp = path.with_extension("logos-index.tmp");
        let state = |source| BackendError::State { path: path.clone(), source };
        tokio::fs::create_dir_all(&self.config.state_dir).await.map_err(state)?;
        tokio::fs::write(&tmp, cid.as_bytes()).await.map_err(state)?;
        tokio::fs::rename(&tmp, &path).await.map_err(state)?;
        Ok(())
    }

    /// The previous index, read from the local node only if it still holds the last link's CID
    /// (as status-go); empty otherwise.
    async fn previous_index(
        &self,
        last: Option<&str>,
        keys: &[chs_status::hash_ratchet::RatchetKey],
    ) -> Result<LogosStorageWakuMessageArchiveIndex, BackendError> {
        let Some(last) = last else { return Ok(LogosStorageWakuMessageArchiveIndex::default()) };
        if !self.client.exists(last).await? {
            tracing::warn!(cid = last, "the last Logos Storage index is gone from the local node: rebuilding it");
            return Ok(LogosStorageWakuMessageArchiveIndex::default());
        }
        let bytes = self.client.get_local(last).await?;
        // A wrapped previous index (this node's, with a key it holds) is opened to merge into.
        super::decode_index_with(keys, &bytes, decode_logos_index, &mut super::Wrapped::No)
    }
}

fn wrong_link(link: &str) -> BackendError {
    BackendError::WrongLink { backend: BackendKind::LogosStorage.as_str(), kind: chs_status::classify_link(link).ok() }
}

#[async_trait::async_trait]
impl DistributionBackend for LogosBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::LogosStorage
    }

    async fn publish(
        &self,
        community: &CommunityId,
        dir: &Path,
        options: PublishOptions,
    ) -> Result<Published, BackendError> {
        let d = dir.to_owned();
        let ratchet = options.ratchet;
        let keys = ratchet.as_ref().map(|r| r.keys.clone());
        // A wrapped folder (an encrypted community whose key is held) is opened with the keys;
        // its archives are read as written, wrapped, which is what status-go uploads.
        let archives = tokio::task::spawn_blocking(move || -> Result<_, BackendError> {
            let reader = match keys {
                Some(keys) => Reader::open_with(&d, &mut chs_community::ratchet::RatchetOpener(keys))?,
                None => Reader::open(&d)?,
            };
            let mut out = Vec::new();
            for entry in reader.entries() {
                let metadata = entry.metadata.metadata.clone().unwrap_or_default();
                out.push((metadata, reader.read_raw(&entry.id)?));
            }
            Ok(out)
        })
        .await??;
        let last = self.last_link(community);
        let keys = ratchet.as_ref().map_or(&[][..], |r| r.keys.as_slice());
        let mut index = self.previous_index(last.as_deref(), keys).await?;
        let windows: BTreeSet<(u64, u64)> =
            index.archives.values().filter_map(|e| e.metadata.as_ref()).map(|m| (m.from, m.to)).collect();
        let mut added = 0;
        for (metadata, bytes) in archives {
            if windows.contains(&(metadata.from, metadata.to)) {
                continue;
            }
            let cid = self.client.upload(bytes, true).await?;
            let (id, entry) = logos_entry(metadata, &cid);
            tracing::debug!(community_id = %community, archive_id = %id, %cid, "archive uploaded to Logos Storage");
            index.archives.insert(id, entry);
            added += 1;
        }
        if added == 0
            && let Some(last) = &last
            && self.client.exists(last).await?
        {
            return Ok(Published { link: last.clone(), changed: false, replaced: false });
        }
        let mut index_bytes = encode_logos_index(&index);
        if let Some(wrap) = ratchet.map(|r| r.wrap) {
            // status-go wraps the Logos Storage index of an encrypted community too.
            index_bytes = tokio::task::spawn_blocking(move || wrap(&index_bytes))
                .await?
                .map_err(|e| BackendError::Refused(format!("cannot wrap the index with the hash-ratchet key: {e}")))?;
        }
        let cid = self.client.upload(index_bytes, true).await?;
        if let Some(old) = last.as_deref().filter(|old| *old != cid) {
            match self.client.delete(old).await {
                Ok(()) | Err(LogosError::NotFound { .. }) => {}
                Err(error) => tracing::warn!(%error, cid = old, "cannot remove the previous index CID"),
            }
        }
        self.save_link(community, &cid).await?;
        tracing::info!(community_id = %community, %cid, added, archives = index.archives.len(), "Logos Storage index published");
        let changed = last.as_deref() != Some(cid.as_str());
        Ok(Published { link: cid, changed, replaced: false })
    }

    async fn open(
        &self,
        _community: &CommunityId,
        link: &str,
        options: FetchOptions,
    ) -> Result<Box<dyn Fetch>, BackendError> {
        if chs_status::classify_link(link).ok() != Some(LinkKind::Cid) {
            return Err(wrong_link(link));
        }
        Ok(Box::new(LogosFetch {
            client: self.client.clone(),
            link: link.to_owned(),
            options,
            cids: std::collections::BTreeMap::new(),
            wrapped: super::Wrapped::No,
        }))
    }

    async fn retain(&self, _community: &CommunityId, link: &str) -> Result<(), BackendError> {
        if chs_status::classify_link(link).ok() != Some(LinkKind::Cid) {
            return Err(wrong_link(link));
        }
        // status-go's member "seeding": TriggerDownload(indexCid) — the local node holds and serves it.
        self.client.fetch_from_network(link).await?;
        Ok(())
    }

    async fn remove(&self, community: &CommunityId) -> Result<(), BackendError> {
        if let Some(last) = self.last_link(community) {
            match self.client.delete(&last).await {
                Ok(()) | Err(LogosError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            let path = self.state_file(community);
            tokio::fs::remove_file(&path).await.map_err(|source| BackendError::State { path, source })?;
        }
        Ok(())
    }

    fn status(&self, community: &CommunityId) -> BackendStatus {
        BackendStatus { link: self.last_link(community), held: 0, peers: 0 }
    }
}

/// One fetch of a Logos Storage index and its archives.
#[derive(Debug)]
struct LogosFetch {
    client: LogosClient,
    link: String,
    options: FetchOptions,
    /// Archive id → CID, from the index.
    cids: std::collections::BTreeMap<String, String>,
    /// Whether the index was wrapped (opened with the keys held, or sealed: then its size).
    wrapped: super::Wrapped,
}

#[async_trait::async_trait]
impl Fetch for LogosFetch {
    async fn index(&mut self) -> Result<RemoteIndex, BackendError> {
        let bytes = tokio::select! {
            () = self.options.cancel.cancelled() => return Err(BackendError::Refused("cancelled".into())),
            bytes = self.client.fetch_index(&self.link) => bytes?,
        };
        let max = self.options.max_index_bytes;
        if max > 0 && bytes.len() as u64 > max {
            return Err(BackendError::Refused(format!("an index of {} bytes exceeds {max}", bytes.len())));
        }
        let index =
            super::decode_index_with(&self.options.ratchet_keys, &bytes, decode_logos_index, &mut self.wrapped)?;
        let mut remote = RemoteIndex::new();
        for (id, entry) in index.archives {
            // status-go never checks the key; a key that is not the entry's id would make the
            // member's "already have it" bookkeeping lie, so such an entry is refused.
            if logos_archive_id(&entry) != id || entry.cid.is_empty() {
                tracing::warn!(archive_id = %id, cid = %entry.cid, "Logos Storage index entry refused: id or CID wrong");
                continue;
            }
            self.cids.insert(id.clone(), entry.cid.clone());
            remote.insert(
                id,
                RemoteArchive { metadata: entry.metadata.unwrap_or_default(), location: Location::Cid(entry.cid) },
            );
        }
        Ok(remote)
    }

    async fn fetch(&mut self, ids: &[String]) -> Result<Option<u64>, BackendError> {
        let unknown: Vec<String> = ids.iter().filter(|id| !self.cids.contains_key(*id)).cloned().collect();
        if !unknown.is_empty() {
            return Err(BackendError::NotInIndex(unknown));
        }
        let cids: Vec<String> = ids.iter().filter_map(|id| self.cids.get(id).cloned()).collect();
        tokio::select! {
            () = self.options.cancel.cancelled() => return Err(BackendError::Refused("cancelled".into())),
            fetched = self.client.fetch_all_to_local(&cids) => fetched?,
        }
        // The node fetches asynchronously and does not say how much it received.
        Ok(None)
    }

    async fn read(&mut self, id: &str) -> Result<Vec<u8>, BackendError> {
        let cid = self.cids.get(id).ok_or_else(|| BackendError::NotInIndex(vec![id.to_owned()]))?;
        let bytes = self.client.get_local(cid).await?;
        let max = self.options.max_archive_bytes;
        if max > 0 && bytes.len() as u64 > max {
            return Err(BackendError::Refused(format!("archive {id} of {} bytes exceeds {max}", bytes.len())));
        }
        let bytes = bytes.to_vec();
        Ok(if self.wrapped == super::Wrapped::Opened {
            super::open_archive(&self.options.ratchet_keys, id, bytes)
        } else {
            bytes
        })
    }

    /// A sealed index hides its archives' CIDs: what can be kept is the index itself, which
    /// [`Fetch::finish`] keeps and serves (a member with the key reads the archives from it).
    async fn keep_sealed(&mut self) -> Result<(u64, u64), BackendError> {
        let super::Wrapped::Sealed(index_len) = self.wrapped else {
            return Err(BackendError::Refused("the index is not sealed".to_owned()));
        };
        Ok((index_len, index_len))
    }

    async fn finish(self: Box<Self>) -> Result<(), BackendError> {
        self.client.fetch_from_network(&self.link).await?;
        Ok(())
    }

    async fn discard(self: Box<Self>) -> Result<(), BackendError> {
        Ok(())
    }
}
