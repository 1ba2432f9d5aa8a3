//! What every task of the node uses and nobody steers: the configuration, the clock, the store,
//! the community manager, the two network handles, the signal bus (observation only) and the
//! task tracker. It holds no control state: each task owns its own (see `docs/ARCHITECTURE.md`,
//! "chs-node"), and tasks steer each other only through the private channels they are given.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use chs_community::{Communities, CommunityId};
use chs_status::ChatKeyCache;
use chs_store::Store;
use chs_torrent::TorrentNode;
use chs_waku::{MessageReceiver, ReceivedMessage, WakuHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::DistributionBackend;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::NodeError;
use crate::signal::{Signal, SignalBus};

pub(crate) struct Services {
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    /// Observation only: nothing in the node reads it back.
    pub(crate) bus: SignalBus,
    store: Arc<Mutex<Store>>,
    pub(crate) communities: Arc<Communities>,
    pub(crate) chat_keys: ChatKeyCache,
    pub(crate) torrent: Option<TorrentNode>,
    /// The distribution backends of `[archive] backends`, in configuration order: the only way
    /// the owner and member tasks publish and fetch archives.
    pub(crate) backends: Vec<Arc<dyn DistributionBackend>>,
    pub(crate) waku: WakuHandle,
    /// Every task the node spawns (awaited by `Node::shutdown`).
    pub(crate) tasks: TaskTracker,
    /// Cancelled by `Node::shutdown`; every task's token is a child of it.
    pub(crate) cancel: CancellationToken,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Services {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        bus: SignalBus,
        store: Store,
        communities: Communities,
        torrent: Option<TorrentNode>,
        backends: Vec<Arc<dyn DistributionBackend>>,
        waku: WakuHandle,
    ) -> Self {
        Services {
            config,
            clock,
            bus,
            store: Arc::new(Mutex::new(store)),
            communities: Arc::new(communities),
            chat_keys: ChatKeyCache::new(),
            torrent,
            backends,
            waku,
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Runs `f` with the community manager and the store on the blocking pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce(&Communities, &mut Store) -> Result<T, NodeError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let communities = Arc::clone(&self.communities);
        self.tasks
            .spawn_blocking(move || {
                let mut store = lock(&store);
                f(&communities, &mut store)
            })
            .await?
    }

    /// Runs `f` on the blocking pool (file I/O, hashing), tracked like every task.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, NodeError> + Send + 'static,
    {
        self.tasks.spawn_blocking(f).await?
    }

    pub(crate) fn archive_dir(&self, id: &CommunityId) -> PathBuf {
        self.config.archive_root().join(id.to_string())
    }

    /// The chat ids whose messages this node archives for `community`: its channels, plus
    /// `-memberUpdate` for `[archive] generation = "2026"`.
    pub(crate) fn archived_chats(&self, community: &chs_community::Community) -> Vec<String> {
        let mut chats = community.chats.clone();
        chats.extend(self.config.archive.generation.extra_archived_chat_id(&community.id));
        chats
    }

    pub(crate) fn publish(&self, signal: Signal) {
        self.bus.publish(signal);
    }
}

/// Waits for a message on `rx`, then takes what else is queued, up to `max` in all: one burst.
/// `None` once `cancel` fires or the receiver closes.
pub(crate) async fn next_burst(
    rx: &mut MessageReceiver,
    cancel: &CancellationToken,
    max: usize,
) -> Option<Vec<ReceivedMessage>> {
    let first = tokio::select! {
        biased;
        () = cancel.cancelled() => return None,
        m = rx.recv() => m?,
    };
    let mut burst = vec![first];
    while burst.len() < max {
        match rx.try_recv() {
            Some(m) => burst.push(m),
            None => break,
        }
    }
    Some(burst)
}
