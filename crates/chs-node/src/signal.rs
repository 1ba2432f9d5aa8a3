//! The node's event bus: status-go's history-archive signals (`signal/events_community_archives.go`)
//! plus a few of ours, published by the owner tasks and the member pipeline, for observers only
//! (the status file, `chs node`'s output, the demo, tests): nothing in the node reads it back, so
//! an observer that falls behind loses signals without changing what the node does.

use chs_community::CommunityId;
use serde::Serialize;
use tokio::sync::broadcast;

/// Capacity of the bus; a subscriber that falls this far behind loses the oldest signals
/// (and is told so by `RecvError::Lagged`).
pub const BUS_CAPACITY: usize = 4096;

/// A signal. Community ids are `0x` + 66 hex; times are Unix seconds unless named `_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Signal {
    /// New archives were appended to the community's folder (control node).
    HistoryArchivesCreated {
        /// Community.
        community_id: CommunityId,
        /// Start of the range built.
        from: u64,
        /// End of the range built.
        to: u64,
        /// Ids of the new archives, oldest first.
        archive_ids: Vec<String>,
        /// Messages in them.
        messages: u64,
        /// Time the build took (reading the store, writing the archives), ms.
        elapsed_ms: u64,
    },
    /// A build found no message in its range (status-go: `NoHistoryArchivesCreated`).
    NoHistoryArchivesCreated {
        /// Community.
        community_id: CommunityId,
        /// Start of the range.
        from: u64,
        /// End of the range.
        to: u64,
        /// Time the build took, ms.
        elapsed_ms: u64,
    },
    /// Building archives failed; the task retries later.
    HistoryArchivesFailed {
        /// Community.
        community_id: CommunityId,
        /// The error.
        error: String,
    },
    /// The community's torrent is seeded (status-go: `HistoryArchivesSeeding`); on a control node
    /// the dispatcher publishes its magnetlink.
    HistoryArchivesSeeding {
        /// Community.
        community_id: CommunityId,
        /// The magnet link (with this node's peer hint).
        magnet_uri: String,
        /// Whether this node is the community's control node.
        control_node: bool,
    },
    /// The community's torrent is no longer seeded (status-go: `HistoryArchivesUnseeded`).
    HistoryArchivesUnseeded {
        /// Community.
        community_id: CommunityId,
    },
    /// The control node published a magnetlink message.
    MagnetlinkPublished {
        /// Community.
        community_id: CommunityId,
        /// Its clock (ms).
        clock: u64,
        /// The magnet link.
        magnet_uri: String,
    },
    /// A member accepted a magnetlink (signed by the community, newest, not fetched yet).
    MagnetlinkAccepted {
        /// Community.
        community_id: CommunityId,
        /// Its clock (ms).
        clock: u64,
        /// The magnet link.
        magnet_uri: String,
    },
    /// A member rejected a message on a magnetlink topic. Refusals by the cheap checks raise
    /// one each up to 256 a second per community; the rest are summed in
    /// [`Signal::MagnetlinksDropped`].
    MagnetlinkRejected {
        /// Why (the reason's display text).
        reason: String,
    },
    /// A member dropped magnetlink messages without a [`Signal::MagnetlinkRejected`] each (a
    /// flood must not flood the bus too): raised at most once a second while they arrive and
    /// once when the flood ends.
    MagnetlinksDropped {
        /// Community.
        community_id: CommunityId,
        /// Refused by the cheap checks (topic, size, decryption, signature) beyond the budget of
        /// individual `MagnetlinkRejected` signals; counted in the rejection counters too.
        rejected: u64,
        /// Lost unjudged because the member's receive queue was full.
        lost: u64,
        /// The last refusal's reason (empty if none).
        last_reason: String,
    },
    /// A member could not judge a magnetlink message because its database failed (e.g. locked
    /// by another process); the message is judged again after `retry_in_ms` (0: given up).
    MagnetlinkVerdictFailed {
        /// Community.
        community_id: CommunityId,
        /// The error.
        error: String,
        /// Attempt number (1-based).
        attempt: u32,
        /// Delay before the next attempt.
        retry_in_ms: u64,
    },
    /// A member started downloading (status-go: `DownloadingHistoryArchivesStarted`).
    DownloadingHistoryArchivesStarted {
        /// Community.
        community_id: CommunityId,
        /// The magnet link.
        magnet_uri: String,
    },
    /// The index was fetched and compared with what this member has.
    HistoryArchiveIndexFetched {
        /// Community.
        community_id: CommunityId,
        /// Archives in the index.
        archives: usize,
        /// Archives this member lacks (to be downloaded).
        missing: usize,
    },
    /// One archive was downloaded and verified (status-go: `HistoryArchiveDownloaded`).
    HistoryArchiveDownloaded {
        /// Community.
        community_id: CommunityId,
        /// Archive id.
        archive_id: String,
        /// Window start.
        from: u64,
        /// Window end.
        to: u64,
    },
    /// One archive's messages were imported as the canonical history of its window
    /// (status-go: `ImportingHistoryArchiveMessages`).
    ImportingHistoryArchiveMessages {
        /// Community.
        community_id: CommunityId,
        /// Archive id.
        archive_id: String,
        /// Messages in the archive.
        messages: usize,
    },
    /// An archive could not be imported (recorded; later archives are not blocked).
    HistoryArchiveImportFailed {
        /// Community.
        community_id: CommunityId,
        /// Archive id.
        archive_id: String,
        /// The error.
        error: String,
    },
    /// A member fetched a link whose `index` it cannot open (hash-ratchet wrapped: an encrypted
    /// community): the torrent is kept and seeded, nothing is imported, and the reason is
    /// recorded (shown by `chs node status`).
    HistoryArchivesNotImported {
        /// Community.
        community_id: CommunityId,
        /// The link.
        magnet_uri: String,
        /// Why nothing was imported.
        reason: String,
    },
    /// A member's download ended (status-go: `DownloadingHistoryArchivesFinished`).
    DownloadingHistoryArchivesFinished {
        /// Community.
        community_id: CommunityId,
        /// The magnet link.
        magnet_uri: String,
        /// Archives downloaded and imported.
        archives: usize,
        /// Messages imported.
        messages: usize,
        /// Payload bytes received from peers.
        bytes_received: u64,
        /// Time from the start of the download.
        elapsed_ms: u64,
    },
    /// A member's download failed; it is retried after `retry_in_ms` (0: not retried).
    HistoryArchiveDownloadFailed {
        /// Community.
        community_id: CommunityId,
        /// The magnet link.
        magnet_uri: String,
        /// The error.
        error: String,
        /// Attempt number (1-based).
        attempt: u32,
        /// Delay before the next attempt.
        retry_in_ms: u64,
    },
    /// The control node stored live messages of the community (one signal per batch written).
    MessagesCaptured {
        /// Community.
        community_id: CommunityId,
        /// Messages stored in this batch.
        messages: usize,
    },
    /// A catch-up from store nodes (13/WAKU2-STORE v3) ended: a member's description, shard info
    /// or magnetlink chats, or an owner's channels before a build.
    StoreCatchUp {
        /// Community.
        community_id: CommunityId,
        /// `description`, `shard-info`, `magnetlinks` (member) or `channels` (owner).
        what: &'static str,
        /// Messages fetched (each once).
        messages: usize,
        /// Pages read from the store node that answered.
        pages: usize,
        /// Store nodes that failed (lied, stalled, refused, unreachable); each is logged.
        failed_peers: usize,
        /// Why each failed (`<peer>: <reason>`).
        failures: Vec<String>,
        /// The store node that answered (multiaddr), if one did.
        peer: Option<String>,
        /// Store nodes asked for (configured, or connected ones announcing store v3): 0 means
        /// there was none to ask.
        store_nodes: usize,
        /// Whether a store node answered the whole query (false: every one failed, or none is
        /// configured).
        answered: bool,
        /// Time taken, ms.
        elapsed_ms: u64,
    },
    /// The community's signed description was applied (issue 19): its channel chats changed as
    /// listed (both empty if they did not).
    CommunityDescriptionApplied {
        /// Community.
        community_id: CommunityId,
        /// The description clock.
        clock: u64,
        /// Channel chat ids added.
        added: Vec<String>,
        /// Channel chat ids removed.
        removed: Vec<String>,
    },
    /// A description or shard info of the community was refused (forged, invalid, stale).
    CommunityDescriptionRejected {
        /// Community.
        community_id: CommunityId,
        /// Why.
        reason: String,
    },
    /// The community's public shard info moved it to another pubsub topic.
    CommunityShardMoved {
        /// Community.
        community_id: CommunityId,
        /// The previous pubsub topic.
        from: String,
        /// The new one.
        to: String,
    },
    /// Fault injection: the node reached [`NodeConfig::pause_at`](crate::NodeConfig::pause_at)
    /// and stops there (crash tests kill it now).
    FaultPaused {
        /// The point reached.
        point: String,
    },
}

impl Signal {
    /// The community the signal is about, if any.
    #[must_use]
    pub fn community_id(&self) -> Option<&CommunityId> {
        match self {
            Signal::MagnetlinkRejected { .. } | Signal::FaultPaused { .. } => None,
            Signal::HistoryArchivesCreated { community_id, .. }
            | Signal::NoHistoryArchivesCreated { community_id, .. }
            | Signal::HistoryArchivesFailed { community_id, .. }
            | Signal::HistoryArchivesSeeding { community_id, .. }
            | Signal::HistoryArchivesUnseeded { community_id }
            | Signal::MagnetlinkPublished { community_id, .. }
            | Signal::MagnetlinkAccepted { community_id, .. }
            | Signal::MagnetlinkVerdictFailed { community_id, .. }
            | Signal::MagnetlinksDropped { community_id, .. }
            | Signal::DownloadingHistoryArchivesStarted { community_id, .. }
            | Signal::HistoryArchiveIndexFetched { community_id, .. }
            | Signal::HistoryArchiveDownloaded { community_id, .. }
            | Signal::ImportingHistoryArchiveMessages { community_id, .. }
            | Signal::HistoryArchiveImportFailed { community_id, .. }
            | Signal::HistoryArchivesNotImported { community_id, .. }
            | Signal::DownloadingHistoryArchivesFinished { community_id, .. }
            | Signal::HistoryArchiveDownloadFailed { community_id, .. }
            | Signal::MessagesCaptured { community_id, .. }
            | Signal::StoreCatchUp { community_id, .. }
            | Signal::CommunityDescriptionApplied { community_id, .. }
            | Signal::CommunityDescriptionRejected { community_id, .. }
            | Signal::CommunityShardMoved { community_id, .. } => Some(community_id),
        }
    }
}

/// Publisher side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct SignalBus {
    tx: broadcast::Sender<Signal>,
}

impl Default for SignalBus {
    fn default() -> Self {
        SignalBus { tx: broadcast::Sender::new(BUS_CAPACITY) }
    }
}

impl SignalBus {
    /// Sends `signal` to every current subscriber (none is fine) and logs it.
    pub fn publish(&self, signal: Signal) {
        match &signal {
            Signal::MessagesCaptured { .. } => tracing::trace!(?signal, "signal"),
            Signal::MagnetlinkRejected { .. } => tracing::debug!(?signal, "signal"),
            _ => tracing::info!(?signal, "signal"),
        }
        let _ = self.tx.send(signal);
    }

    /// A receiver of every signal published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }
}
