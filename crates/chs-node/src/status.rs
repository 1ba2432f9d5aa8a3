//! What the node shows of itself: per-community state ([`CommunityStatus`]), read from the
//! store and the archive folder, plus the live parts (download progress, seeding) the running
//! node adds.

use std::collections::{BTreeMap, HashMap};

use chs_community::{Communities, CommunityId};
use chs_store::Store;
use serde::Serialize;

use crate::error::NodeError;

/// A member download in progress, as shown by [`NodeHandle::status`](crate::NodeHandle::status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownloadView {
    /// The magnet link being fetched.
    pub magnet_uri: String,
    /// What the download is doing (printed as `metadata`, `index`, `data`, `import`, `seed`).
    pub phase: DownloadPhase,
    /// Bytes of the current phase done.
    pub bytes_done: u64,
    /// Bytes of the current phase in all.
    pub bytes_total: u64,
}

/// The step a member download is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadPhase {
    /// Fetching the torrent's info dict from peers.
    Metadata,
    /// Fetching the `index` file.
    Index,
    /// Fetching the missing archives' byte ranges of `data`.
    Data,
    /// Importing the fetched archives.
    Import,
    /// Swapping the new folder in and seeding it.
    Seed,
}

impl std::fmt::Display for DownloadPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DownloadPhase::Metadata => "metadata",
            DownloadPhase::Index => "index",
            DownloadPhase::Data => "data",
            DownloadPhase::Import => "import",
            DownloadPhase::Seed => "seed",
        })
    }
}

/// What this node seeds for a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedView {
    /// Info hash, hex.
    pub info_hash: String,
    /// Bytes this node has of the torrent.
    pub have_bytes: u64,
    /// Size of the torrent.
    pub total_bytes: u64,
    /// Bytes uploaded to peers in this session.
    pub uploaded_bytes: u64,
    /// Bytes downloaded through the torrent client in this session.
    pub downloaded_bytes: u64,
    /// Connected peers.
    pub peers: usize,
    /// Peers known for the torrent (DHT, trackers, PEX, incoming, hints), connected or not.
    pub known_peers: usize,
    /// Peers by source and announce results.
    pub swarm: SwarmView,
}

/// A seeded torrent's peers by source and its announce results (issue 17 item 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SwarmView {
    /// Distinct peer addresses per source: `dht`, `tracker`, `pex`, `incoming`, `hint` (the
    /// magnet's `x.pe` and configured peers), `lsd`; a peer given by several counts in each.
    pub peers_by_source: BTreeMap<String, usize>,
    /// Every peer address learnt, with its sources.
    pub peers: Vec<SwarmPeerView>,
    /// Per tracker, the outcome of its announces.
    pub trackers: Vec<TrackerView>,
    /// The DHT announces of the torrent; absent when the node's DHT is off.
    pub dht: Option<DhtAnnounceView>,
}

/// One peer address and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwarmPeerView {
    /// `ip:port`.
    pub addr: String,
    /// Its sources (see [`SwarmView::peers_by_source`]).
    pub sources: Vec<String>,
    /// Connected now.
    pub connected: bool,
}

/// The announces to one tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackerView {
    /// Announce URL.
    pub url: String,
    /// `ok` or `error`: how the last announce ended; `none` before the first one ends.
    pub last_result: String,
    /// When the last announce ended, Unix seconds.
    pub last_announce: Option<u64>,
    /// When an announce last succeeded, Unix seconds.
    pub last_success: Option<u64>,
    /// Peers the last successful announce returned.
    pub last_peers: usize,
    /// The last error message (kept after a later success).
    pub last_error: Option<String>,
    /// When it happened, Unix seconds.
    pub last_error_at: Option<u64>,
    /// Announces answered.
    pub ok: u64,
    /// Announces failed.
    pub errors: u64,
}

/// The torrent's DHT announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DhtAnnounceView {
    /// `announce_peer` requests sent.
    pub sent: u64,
    /// Answered.
    pub acknowledged: u64,
    /// Refused or unanswered.
    pub failed: u64,
    /// Peers the DHT gave (as in `peers_by_source`).
    pub peers_found: usize,
}

impl SwarmView {
    /// The view of a [`chs_torrent::SwarmStatus`].
    pub fn of(s: &chs_torrent::SwarmStatus) -> Self {
        let secs = |t: Option<std::time::SystemTime>| {
            t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs())
        };
        let peers_by_source = chs_torrent::PeerOrigin::ALL
            .iter()
            .map(|o| (o.as_str().to_owned(), s.count(*o)))
            .filter(|(_, n)| *n > 0)
            .collect();
        SwarmView {
            peers_by_source,
            peers: s
                .peers
                .iter()
                .map(|p| SwarmPeerView {
                    addr: p.addr.to_string(),
                    sources: p.origins.iter().map(|o| o.as_str().to_owned()).collect(),
                    connected: p.connected,
                })
                .collect(),
            trackers: s
                .trackers
                .iter()
                .map(|t| TrackerView {
                    url: t.url.clone(),
                    last_result: match (t.last_announce, t.last_ok) {
                        (None, _) => "none",
                        (Some(_), true) => "ok",
                        (Some(_), false) => "error",
                    }
                    .to_owned(),
                    last_announce: secs(t.last_announce),
                    last_success: secs(t.last_success),
                    last_peers: t.last_peers,
                    last_error: t.last_error.clone(),
                    last_error_at: secs(t.last_error_at),
                    ok: t.ok,
                    errors: t.errors,
                })
                .collect(),
            dht: s.dht.map(|d| DhtAnnounceView {
                sent: d.sent,
                acknowledged: d.acknowledged,
                failed: d.failed,
                peers_found: s.count(chs_torrent::PeerOrigin::Dht),
            }),
        }
    }
}

/// One community's state, as `chs node status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityStatus {
    /// Community id.
    pub id: CommunityId,
    /// Display name.
    pub name: String,
    /// Whether this node holds the community key.
    pub control_node: bool,
    /// Whether this node has joined.
    pub joined: bool,
    /// Archives in the local archive folder.
    pub archives: usize,
    /// End of the last archive window built (control node), Unix seconds; 0 if none.
    pub last_archive_end: u64,
    /// Clock of the newest magnetlink (published or accepted), ms.
    pub magnetlink_clock: u64,
    /// Last magnet link fully fetched (member).
    pub last_magnetlink_uri: String,
    /// Magnet link accepted but not fully fetched yet (member).
    pub pending_magnetlink: Option<String>,
    /// What is seeded, if anything.
    pub seeding: Option<SeedView>,
    /// Download in progress (member).
    pub download: Option<DownloadView>,
    /// Archive ids recorded as downloaded.
    pub downloaded_archives: usize,
    /// Of those, imported.
    pub imported_archives: usize,
    /// Stored messages on the community's channel topics (for a member: the topics its
    /// archives list, minus refused ones).
    pub stored_messages: u64,
    /// Topics that imported archives named but that belong to another community of this node:
    /// refused at import (`0x` + 8 hex, sorted).
    pub refused_topics: Vec<String>,
    /// Messages refused with them, over all imported archives.
    pub refused_messages: u64,
    /// A fetched link whose history this member keeps and seeds but could not import (its index
    /// is wrapped with the community's hash-ratchet key), and why.
    pub not_imported: Option<chs_community::UnopenedLink>,
    /// Downloaded archives whose import failed, with the last error (e.g. an archive wrapped
    /// with the community's hash-ratchet key).
    pub failed_imports: Vec<FailedImport>,
    /// Imported messages kept but not readable here: hash-ratchet encrypted (token-gated
    /// communities) or segments; a Status client with the keys reads them.
    pub sealed_messages: u64,
    /// Hash-ratchet keys held for the community (`chs community ratchet-key add`).
    pub ratchet_keys: usize,
    /// A control node of an encrypted community: how it writes its archives (wrapped with its
    /// newest hash-ratchet key, or plain because it holds none); `None` otherwise.
    pub archive_wrapping: Option<String>,
}

/// A downloaded archive that is not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedImport {
    /// The archive id.
    pub archive_id: String,
    /// The last import error.
    pub error: String,
}

/// Per-community state read from a node's store and archive folders (no seeding information):
/// what [`NodeHandle::status`](crate::NodeHandle::status) shows, also usable while the node is not running.
///
/// # Errors
/// Store errors.
pub fn community_statuses(
    communities: &Communities,
    store: &Store,
    archive_root: &std::path::Path,
    downloads: &HashMap<CommunityId, DownloadView>,
) -> Result<Vec<CommunityStatus>, NodeError> {
    let mut out = Vec::new();
    for c in communities.list(store)? {
        let info = communities.archive_info(store, &c.id)?;
        let records = communities.archive_records(store, &c.id)?;
        let mut topics = communities.channel_topics(store, &c.id)?;
        let dir = archive_root.join(c.id.to_string());
        // An encrypted community's wrapped index opens with the hash-ratchet keys held.
        let keys = communities.ratchet_key_material(store, &c.id)?;
        let ratchet_keys = keys.len();
        let reader = if keys.is_empty() {
            chs_archive::Reader::open(&dir)
        } else {
            chs_archive::Reader::open_with(&dir, &mut chs_community::ratchet::RatchetOpener(keys))
        };
        let entries = reader.map(|r| r.entries().to_vec()).unwrap_or_default();
        // A member learns the channel topics from the archives' metadata.
        topics.extend(entries.iter().flat_map(chs_archive::ArchiveEntry::topics));
        let mut refused_topics: Vec<String> = records.iter().flat_map(|r| r.refused_topics.iter().cloned()).collect();
        refused_topics.sort();
        refused_topics.dedup();
        topics.retain(|t| !refused_topics.contains(&format!("0x{}", hex::encode(t))));
        topics.sort_unstable();
        topics.dedup();
        let archives = entries.len();
        out.push(CommunityStatus {
            id: c.id,
            name: c.name.clone(),
            control_node: c.is_control_node(),
            joined: c.joined,
            archives,
            last_archive_end: info.last_archive_end_date,
            magnetlink_clock: info.magnetlink_clock,
            last_magnetlink_uri: info.last_magnetlink_uri.clone(),
            pending_magnetlink: communities.pending_link(store, &c.id)?.map(|p| p.magnet_uri),
            seeding: None,
            download: downloads.get(&c.id).cloned(),
            downloaded_archives: records.len(),
            imported_archives: records.iter().filter(|r| r.imported).count(),
            stored_messages: store.count_on_topics(&topics)?,
            refused_messages: records.iter().map(|r| r.refused_messages).sum(),
            refused_topics,
            not_imported: communities.unopened_link(store, &c.id)?,
            failed_imports: records
                .iter()
                .filter(|r| !r.imported)
                .filter_map(|r| Some(FailedImport { archive_id: r.archive_id.clone(), error: r.last_error.clone()? }))
                .collect(),
            sealed_messages: communities.sealed_messages(store, &c.id)?,
            ratchet_keys,
            archive_wrapping: if c.is_control_node() {
                communities.archive_wrapping(store, &c.id)?.note()
            } else {
                None
            },
        });
    }
    Ok(out)
}
