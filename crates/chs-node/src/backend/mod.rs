//! The distribution-backend boundary: how a control node's archives reach members, whatever the
//! network. status-go's `ArchiveServiceBackend` (PR 7312) has one per node (torrent or Logos
//! Storage, chosen at build time); we may run both (see `docs/backends.md`).
//!
//! [`DistributionBackend`]: publish the archives of a community's folder → the link to announce;
//! open a link → a [`Fetch`] (the index, then only the chosen archives, then keep or discard);
//! retain / remove what the node serves; status. [`TorrentBackend`] is the BitTorrent
//! implementation over `chs-torrent`, [`LogosBackend`] the Logos Storage one over `chs-logos`.
//! The orchestrator needs only this trait; the backends know nothing of Waku.

mod logos;
mod torrent;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use chs_community::CommunityId;
use chs_proto::protobuf::WakuMessageArchiveMetadata;
use chs_status::LinkKind;
use serde::Serialize;

pub use logos::{LogosBackend, LogosBackendConfig};
pub use torrent::{TorrentBackend, TorrentBackendConfig};

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// BitTorrent (`chs-torrent`): links are magnet URIs.
    Torrent,
    /// Logos Storage (`chs-logos`): links are CIDs of a Logos Storage index.
    LogosStorage,
}

impl BackendKind {
    /// The link kind this backend produces and fetches.
    #[must_use]
    pub const fn link_kind(self) -> LinkKind {
        match self {
            Self::Torrent => LinkKind::Magnet,
            Self::LogosStorage => LinkKind::Cid,
        }
    }

    /// `torrent` or `logos-storage` (as in `[archive] backends`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Torrent => "torrent",
            Self::LogosStorage => "logos-storage",
        }
    }
}

/// What [`DistributionBackend::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The link to announce.
    pub link: String,
    /// Whether the link differs from the one published before (status-go publishes nothing when
    /// no archive is new).
    pub changed: bool,
    /// Whether something published before stopped being served (a torrent replaced by the new
    /// one: status-go's `HistoryArchivesUnseeded`). The Logos backend keeps every archive CID, so
    /// it never sets it.
    pub replaced: bool,
}

/// A named step of [`DistributionBackend::publish`] (`torrent-written`: the `.torrent` file is
/// written, nothing seeded yet), called synchronously on the blocking pool: the node's fault
/// injection pauses there.
pub type StepFn = std::sync::Arc<dyn Fn(&'static str) + Send + Sync>;

/// How a publication may be observed by the caller.
#[derive(Clone, Default)]
pub struct PublishOptions {
    /// Called at each named step, if set.
    pub step: Option<StepFn>,
    /// An encrypted community whose hash-ratchet key this node holds (its folder is wrapped):
    /// how to open the folder and wrap what the backend writes itself, as status-go does.
    pub ratchet: Option<PublishRatchet>,
}

/// Wraps one blob with the community's hash ratchet (one sequence number each call); blocking
/// (it reserves the number in the database): call it off the async runtime.
pub type WrapFn = std::sync::Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// [`PublishOptions::ratchet`]: the keys that open the wrapped folder, and the wrapping of a
/// backend's own index (the Logos Storage index; a torrent's `index` is in the folder already).
#[derive(Clone)]
pub struct PublishRatchet {
    /// Every hash-ratchet key held for the community.
    pub keys: Vec<chs_status::hash_ratchet::RatchetKey>,
    /// Wraps with the newest key.
    pub wrap: WrapFn,
}

impl std::fmt::Debug for PublishRatchet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishRatchet").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PublishOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishOptions")
            .field("step", &self.step.is_some())
            .field("ratchet_keys", &self.ratchet.as_ref().map(|r| r.keys.len()))
            .finish()
    }
}

/// Which part of a link a fetch is transferring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPhase {
    /// The index.
    Index,
    /// The chosen archives.
    Data,
}

/// How far a transfer is (backends that can tell: BitTorrent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchProgress {
    /// What is being transferred.
    pub phase: FetchPhase,
    /// Bytes of this phase on disk.
    pub bytes_done: u64,
    /// Bytes of this phase in all.
    pub bytes_total: u64,
}

/// Called with each [`FetchProgress`], synchronously (keep it short).
pub type ProgressFn = std::sync::Arc<dyn Fn(FetchProgress) + Send + Sync>;

/// Where an archive's bytes are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A byte range of the torrent's `data` file (`offset`, `size` with `padding`).
    Range {
        /// Byte offset in `data`.
        offset: u64,
        /// Bytes in `data`, padding included.
        size: u64,
        /// Zero bytes after the archive.
        padding: u64,
    },
    /// Its own Logos Storage CID (no padding).
    Cid(String),
}

/// One archive of a fetched index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteArchive {
    /// Window and topics, as the index says.
    pub metadata: WakuMessageArchiveMetadata,
    /// Where its bytes are.
    pub location: Location,
}

/// A fetched index: archive id → archive. The ids are the backend's own (torrent ids and Logos
/// ids of the same window differ: each hashes its own index entry).
pub type RemoteIndex = BTreeMap<String, RemoteArchive>;

/// One fetched archive: its id and its encoded `WakuMessageArchive` (no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedArchive {
    /// The archive id (index key).
    pub id: String,
    /// The encoded archive.
    pub bytes: Vec<u8>,
}

/// What a backend serves for a community.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackendStatus {
    /// The link served (magnet or index CID), if any.
    pub link: Option<String>,
    /// Archives (or bytes, for torrents) held.
    pub held: u64,
    /// Peers connected (torrent only; 0 if unknown).
    pub peers: usize,
}

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The link is not one this backend fetches.
    #[error("the {backend} backend cannot fetch this link (kind {kind:?})")]
    WrongLink {
        /// The backend.
        backend: &'static str,
        /// The link's kind (or `None` if it is neither).
        kind: Option<LinkKind>,
    },
    /// The archive folder cannot be read.
    #[error("archive folder")]
    Archive(#[from] chs_archive::ReadError),
    /// An index or archive does not decode.
    #[error("decoding")]
    Decode(#[from] chs_archive::DecodeError),
    /// The torrent layer failed.
    #[error("torrent")]
    Torrent(#[from] chs_torrent::Error),
    /// The Logos Storage node failed.
    #[error("Logos Storage")]
    Logos(#[from] chs_logos::LogosError),
    /// The backend's own state file.
    #[error("backend state {path}")]
    State {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Asked for archives the index does not list.
    #[error("archive(s) not in the index: {0:?}")]
    NotInIndex(Vec<String>),
    /// What a hostile or broken publisher sent (oversized, inconsistent).
    #[error("refused: {0}")]
    Refused(String),
    /// What a link names is not an archive folder of this community (a torrent's metadata:
    /// name, files, size), refused before anything of it is written.
    #[error("torrent {info_hash} rejected: {reason}")]
    Hostile {
        /// The info hash (empty if the link itself does not parse).
        info_hash: String,
        /// Why.
        reason: String,
    },

    /// The index is wrapped with the community's hash-ratchet key (status-go's encrypted
    /// communities, `manager_archive_file.go`): this node holds no such key.
    #[error("the index is sealed: {description}")]
    Sealed {
        /// What wraps it (key id, group, sequence), or the decode error.
        description: String,
    },

    /// A blocking task failed.
    #[error("blocking task")]
    Join(#[from] tokio::task::JoinError),
}

impl BackendError {
    /// [`BackendError::Sealed`] for an index `bytes` that decoding found wrapped (`error`): what
    /// wraps it if the wrapping reads, else the decode error.
    pub(crate) fn sealed(bytes: &[u8], error: &chs_archive::DecodeError) -> BackendError {
        let description = chs_archive::hash_ratchet_wrapping(bytes)
            .map_or_else(|| error.to_string(), |wrapping| format!("{wrapping}"));
        BackendError::Sealed { description }
    }
}

/// How a fetch may be bounded and observed by the caller.
#[derive(Clone, Default)]
pub struct FetchOptions {
    /// Largest index accepted, in bytes (0 = no limit).
    pub max_index_bytes: u64,
    /// Largest archive accepted, in bytes (0 = no limit).
    pub max_archive_bytes: u64,
    /// Largest whole link accepted, in bytes, where the backend knows it before fetching (a
    /// torrent's total length; 0 = no limit).
    pub max_total_bytes: u64,
    /// Cancels the fetch.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Progress of the transfers, if the caller wants it.
    pub progress: Option<ProgressFn>,
    /// The community's hash-ratchet keys held here: a wrapped index (status-go's encrypted
    /// communities) is opened with them, and then each archive read. Without a key that opens it,
    /// the index is [`BackendError::Sealed`].
    pub ratchet_keys: Vec<chs_status::hash_ratchet::RatchetKey>,
}

/// Where a fetch stands with the hash ratchet once its index is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Wrapped {
    /// A plain index (or none read yet).
    #[default]
    No,
    /// Wrapped and opened with the keys held: so is each archive ([`open_archive`]).
    Opened,
    /// Wrapped and no key held opens it: the index's size, for [`Fetch::keep_sealed`].
    Sealed(u64),
}

/// Decodes a fetched index with `decode`; a wrapped one (status-go's encrypted communities) is
/// opened with `keys` if one of them is its key, and `wrapped` says which it was. Without a key
/// that opens it: [`BackendError::Sealed`], saying what wraps it and why no key held opens it.
pub(crate) fn decode_index_with<T>(
    keys: &[chs_status::hash_ratchet::RatchetKey],
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, chs_archive::DecodeError>,
    wrapped: &mut Wrapped,
) -> Result<T, BackendError> {
    let error = match decode(bytes) {
        Err(error @ chs_archive::DecodeError::Encrypted { .. }) => error,
        other => return Ok(other?),
    };
    let sealed = BackendError::sealed(bytes, &error);
    if keys.is_empty() {
        *wrapped = Wrapped::Sealed(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        return Err(sealed);
    }
    match chs_status::hash_ratchet::unwrap(keys, bytes) {
        Ok(opened) => {
            *wrapped = Wrapped::Opened;
            Ok(decode(&opened.plaintext)?)
        }
        Err(why) => {
            *wrapped = Wrapped::Sealed(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
            let BackendError::Sealed { description } = sealed else { return Err(sealed) };
            Err(BackendError::Sealed {
                description: format!(
                    "{description}; none of the {} hash-ratchet keys held opens it: {why}",
                    keys.len()
                ),
            })
        }
    }
}

/// An archive of an index opened with [`decode_index_with`]: unwrapped with the same keys. Bytes that
/// do not open are given back as they are (their import then fails and is recorded with why,
/// without stopping the other archives).
pub(crate) fn open_archive(keys: &[chs_status::hash_ratchet::RatchetKey], id: &str, bytes: Vec<u8>) -> Vec<u8> {
    match chs_status::hash_ratchet::unwrap(keys, &bytes) {
        Ok(opened) => opened.plaintext,
        Err(error) => {
            tracing::warn!(archive_id = %id, %error, "archive of a wrapped index does not open");
            bytes
        }
    }
}

impl std::fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field("max_index_bytes", &self.max_index_bytes)
            .field("max_archive_bytes", &self.max_archive_bytes)
            .field("max_total_bytes", &self.max_total_bytes)
            .field("progress", &self.progress.is_some())
            .field("ratchet_keys", &self.ratchet_keys.len())
            .finish_non_exhaustive()
    }
}

/// A distribution backend: see the module docs.
#[async_trait::async_trait]
pub trait DistributionBackend: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Publishes what the archive folder `dir` of `community` holds (its `index` and `data`, as
    /// `chs-archive` builds them); returns the link to announce. The caller holds the folder's
    /// shared lock and has checked it is finished.
    async fn publish(
        &self,
        community: &CommunityId,
        dir: &Path,
        options: PublishOptions,
    ) -> Result<Published, BackendError>;

    /// Opens `link` for fetching: nothing but what is needed to read the index is fetched.
    async fn open(
        &self,
        community: &CommunityId,
        link: &str,
        options: FetchOptions,
    ) -> Result<Box<dyn Fetch>, BackendError>;

    /// Keeps serving what `link` names for `community` (a member's seeding after a fetch; an
    /// owner's start).
    async fn retain(&self, community: &CommunityId, link: &str) -> Result<(), BackendError>;

    /// Stops serving `community` (unseed; the Logos backend forgets its index CID).
    async fn remove(&self, community: &CommunityId) -> Result<(), BackendError>;

    /// What is served for `community`.
    fn status(&self, community: &CommunityId) -> BackendStatus;
}

/// One fetch of a link: the index first, then only the chosen archives.
#[async_trait::async_trait]
pub trait Fetch: Send + std::fmt::Debug {
    /// The link's index.
    async fn index(&mut self) -> Result<RemoteIndex, BackendError>;

    /// Whether the index entry `id` can be fetched at all (`Err(reason)`: it lies outside what
    /// the link holds, or exceeds [`FetchOptions::max_archive_bytes`]). The caller reports such
    /// an entry and skips it; it never stops the others.
    fn check(&self, id: &str) -> Result<(), String> {
        let _ = id;
        Ok(())
    }

    /// Fetches the archives `ids` of the index to local storage; returns the bytes received if
    /// the backend knows them (`None`: the caller counts the archives' sizes).
    async fn fetch(&mut self, ids: &[String]) -> Result<Option<u64>, BackendError>;

    /// The archive `id` (fetched by [`Fetch::fetch`]): its encoded bytes, without padding.
    async fn read(&mut self, id: &str) -> Result<Vec<u8>, BackendError>;

    /// [`Fetch::fetch`] then [`Fetch::read`] of each of `ids`, in the order of `ids`.
    async fn archives(&mut self, ids: &[String]) -> Result<Vec<FetchedArchive>, BackendError> {
        self.fetch(ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(FetchedArchive { id: id.clone(), bytes: self.read(id).await? });
        }
        Ok(out)
    }

    /// After [`Fetch::index`] answered [`BackendError::Sealed`]: fetch everything the link holds,
    /// to keep and serve it as it is. Returns `(bytes received, bytes kept)`. Backends that
    /// cannot keep a sealed history refuse.
    async fn keep_sealed(&mut self) -> Result<(u64, u64), BackendError> {
        Err(BackendError::Refused("this backend does not keep a sealed (hash-ratchet wrapped) history".to_owned()))
    }

    /// Done: keep what was fetched and serve it.
    async fn finish(self: Box<Self>) -> Result<(), BackendError>;

    /// Failed: drop what was fetched (a cancelled fetch may keep it to resume).
    async fn discard(self: Box<Self>) -> Result<(), BackendError>;
}

/// The backend among `backends` that fetches `link` (by form), if any: the first whose
/// [`BackendKind::link_kind`] is the link's.
#[must_use]
pub fn backend_for<'a>(
    backends: &'a [std::sync::Arc<dyn DistributionBackend>],
    link: &str,
) -> Option<&'a std::sync::Arc<dyn DistributionBackend>> {
    let kind = chs_status::classify_link(link).ok()?;
    backends.iter().find(|b| b.kind().link_kind() == kind)
}

/// The link kinds a node running `backends` can fetch (for the member rule).
#[must_use]
pub fn usable_links(backends: &[BackendKind]) -> chs_status::UsableLinks {
    chs_status::UsableLinks {
        magnet: backends.contains(&BackendKind::Torrent),
        cid: backends.contains(&BackendKind::LogosStorage),
    }
}
