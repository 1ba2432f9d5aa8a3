//! Errors of the orchestrator.

use std::path::PathBuf;

/// What went wrong in the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A directory or file could not be used.
    #[error("{what} {path}")]
    Io {
        /// What the node was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The message store failed.
    #[error("message store")]
    Store(#[from] chs_store::StoreError),
    /// The community manager failed.
    #[error("community")]
    Community(#[from] chs_community::CommunityError),
    /// Building archives failed.
    #[error("archive build")]
    Build(#[from] chs_archive::BuildError),
    /// Reading archives failed.
    #[error("archive")]
    Read(#[from] chs_archive::ReadError),
    /// Another process (a second `chs node` on the same folder) holds the data folder's lock.
    #[error(
        "data folder {data_dir} is in use by another chs node ({}): it holds the lock {lock_file}",
        pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"))
    )]
    DataDirLocked {
        /// The data folder.
        data_dir: PathBuf,
        /// The lock file in it.
        lock_file: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The archive folder's lock could not be taken.
    #[error("archive folder lock")]
    Lock(#[from] chs_archive::LockError),
    /// Decoding an archive or index failed.
    #[error("archive decode")]
    Decode(#[from] chs_archive::DecodeError),
    /// The torrent layer failed.
    #[error("torrent")]
    Torrent(#[from] chs_torrent::Error),
    /// The Waku node could not start.
    #[error("waku")]
    WakuStart(#[from] chs_waku::StartError),
    /// The Waku node has stopped.
    #[error("waku node stopped")]
    WakuStopped,
    /// The downloaded torrent is not an archive torrent of this community.
    #[error("torrent {info_hash} rejected: {reason}")]
    HostileTorrent {
        /// The info hash.
        info_hash: String,
        /// Why.
        reason: String,
    },
    /// The archive folder is not one a finished build leaves (stray files, `data` not matching
    /// the index), so it is not seeded.
    #[error("archive folder {path} is unfinished: {reason}")]
    UnfinishedArchiveFolder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A community is not known to this node.
    #[error("community {0} is not known to this node")]
    UnknownCommunity(String),
    /// The operation needs the community's control node.
    #[error("community {0}: this node is not its control node")]
    NotControlNode(String),
    /// A re-announcement was asked for a community whose link this node has not announced (not
    /// its control node, or nothing seeded yet).
    #[error("community {0}: no magnetlink of it was announced by this node yet")]
    NothingAnnounced(String),
    /// A background task panicked or was cancelled by the runtime.
    #[error("background task failed")]
    Join(#[from] tokio::task::JoinError),
    /// Planning the archive windows failed (a clock outside the supported range).
    #[error("planning archive windows")]
    Plan(#[from] chs_archive::PlanError),
    /// Publishing on Waku failed.
    #[error("publishing the magnetlink")]
    Publish(#[source] chs_waku::PublishError),
    /// The operation needs the torrent session, which the configuration turns off.
    #[error("torrents are disabled in the configuration ([torrent] enabled = false)")]
    TorrentsDisabled,
    /// The Waku node refused to subscribe to a community's pubsub topic.
    #[error("subscribing to {topic}")]
    Subscribe {
        /// The pubsub topic.
        topic: String,
        /// The cause.
        source: chs_waku::SubscribeError,
    },
    /// The store v3 server could not start.
    #[error("store server")]
    StoreServe(#[from] chs_waku::store::ServeError),
    /// The node has stopped (its tasks are gone).
    #[error("the node has stopped")]
    Stopped,
    /// A distribution backend failed (publishing or fetching archives).
    #[error("distribution backend")]
    Backend(#[from] crate::backend::BackendError),
    /// An archive link no configured backend fetches.
    #[error("no configured backend fetches the link {link:?}")]
    NoBackendFor {
        /// The link.
        link: String,
    },
    /// The operation was cancelled (shutdown or a newer magnetlink).
    #[error("cancelled")]
    Cancelled,
}

impl NodeError {
    /// The message with every cause, `outer: inner: innermost` (what signals and logs carry).
    /// A cause whose text the previous one already ends with is not repeated.
    #[must_use]
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let more = cause.to_string();
            if !text.ends_with(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = cause.source();
        }
        text
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NodeError::Io { what, path: path.into(), source }
    }
}
