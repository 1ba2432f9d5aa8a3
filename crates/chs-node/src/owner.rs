//! The control node's archive task for one community (status-go's `InitHistoryArchiveTasks`
//! and `StartHistoryArchiveTasksInterval`): seed the existing torrent at start, catch up on
//! missed windows, then build once per interval; reseed when another process appended archives
//! to the folder (`chs archive build` on this node's database).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chs_archive::{BuildOptions, Builder, CatchUpPolicy, FolderLock, INDEX_FILE, Reader, plan_catch_up};
use chs_community::{Community, CommunityId};
use chs_store::Store;
use chs_torrent::{Magnet, TorrentFileOptions, TorrentMeta};
use tokio::sync::mpsc;

use tokio_util::sync::CancellationToken;

use crate::backend::{BackendKind, Published};
use crate::config::Policy;
use crate::dispatch::{Command, Dispatcher};
use crate::error::NodeError;
use crate::fault;
use crate::services::Services;
use crate::signal::Signal;

/// What identifies the archive folder's content cheaply: (index length, index mtime, data length).
pub(crate) type Fingerprint = Option<(u64, SystemTime, u64)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let index = std::fs::metadata(dir.join(INDEX_FILE)).ok()?;
    let data = std::fs::metadata(dir.join(chs_archive::DATA_FILE)).ok()?;
    Some((index.len(), index.modified().ok()?, data.len()))
}

/// The owner's decisions, without I/O and without reading a clock: when to plan again, whether
/// a changed folder is worth reseeding. The task feeds it what happened and the time it is.
#[derive(Debug)]
pub(crate) struct OwnerMachine {
    /// Seconds to wait after a failed cycle.
    retry_after_failure: u64,
    /// When to run the next cycle (Unix seconds); 0 = at once.
    next_run_at: u64,
    /// The folder as last seeded (or last found unfinished: not retried until it changes).
    seeded: Fingerprint,
}

/// What the owner task does next, as [`OwnerMachine`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerAction {
    /// Plan, build what is due, seed it.
    RunCycle,
    /// Hash the changed folder and seed it.
    Reseed,
    /// Nothing until the next event.
    Wait,
}

/// The outcome of a reseed attempt, as the machine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReseedOutcome {
    /// Seeded; the folder's fingerprint after seeding.
    Seeded(Fingerprint),
    /// A build holds the folder: try again on the next tick.
    Busy,
    /// The folder is unfinished (a build died): leave it until it changes again.
    Unfinished,
    /// Failed (logged): try again on the next tick.
    Failed,
}

impl OwnerMachine {
    pub(crate) fn new(retry_after_failure: Duration) -> Self {
        OwnerMachine { retry_after_failure: retry_after_failure.as_secs().max(1), next_run_at: 0, seeded: None }
    }

    /// When the next cycle is due (Unix seconds).
    pub(crate) fn next_run_at(&self) -> u64 {
        self.next_run_at
    }

    /// The existing folder was seeded at start (or not, `None`).
    pub(crate) fn seeded_at_start(&mut self, fingerprint: Fingerprint) {
        self.seeded = fingerprint;
    }

    /// A cycle ended at `now`: `Ok(next_run_at)` from its plan, or a failure (retried later).
    pub(crate) fn cycle_done(&mut self, now: u64, result: Result<(u64, Option<Fingerprint>), ()>) {
        match result {
            Ok((next, seeded)) => {
                self.next_run_at = next;
                if let Some(fp) = seeded {
                    self.seeded = fp;
                }
            }
            Err(()) => self.next_run_at = now.saturating_add(self.retry_after_failure),
        }
    }

    /// The clock reached `now`, or someone asked for a build (`trigger`).
    pub(crate) fn wake(&self, now: u64, trigger: bool) -> OwnerAction {
        if trigger || now >= self.next_run_at { OwnerAction::RunCycle } else { OwnerAction::Wait }
    }

    /// The watch tick found the folder as `now_fp`.
    pub(crate) fn folder_seen(&self, now_fp: Fingerprint) -> OwnerAction {
        if now_fp.is_some() && now_fp != self.seeded { OwnerAction::Reseed } else { OwnerAction::Wait }
    }

    /// A reseed of the folder seen as `seen` ended with `outcome`.
    pub(crate) fn reseeded(&mut self, seen: Fingerprint, outcome: ReseedOutcome) {
        match outcome {
            ReseedOutcome::Seeded(fp) => self.seeded = fp,
            ReseedOutcome::Unfinished => self.seeded = seen,
            ReseedOutcome::Busy | ReseedOutcome::Failed => {}
        }
    }
}

/// What the owner task reacts to.
enum Event {
    Stop,
    Trigger,
    Due,
    WatchTick,
}

pub(crate) async fn run(
    services: Arc<Services>,
    community: Community,
    mut trigger: mpsc::Receiver<()>,
    dispatcher: Dispatcher,
    cancel: CancellationToken,
) {
    let id = community.id;
    let owner = Owner { services: Arc::clone(&services), id, pubsub_topic: community.pubsub_topic.clone(), dispatcher };
    let dir = services.archive_dir(&id);
    let mut machine = OwnerMachine::new(services.config.archive.retry_after_failure);
    // status-go seeds the existing torrent at start, which announces it again. A folder left by an
    // interrupted build is repaired first (as the next build would): its torrent would otherwise
    // carry bytes no index entry accounts for.
    if fingerprint(&dir).is_some() {
        let d = dir.clone();
        let piece_length = u64::from(services.config.archive.piece_length);
        match services.blocking(move || Ok(chs_archive::repair_with(&d, piece_length)?)).await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::warn!(community_id = %id, removed, "repaired the archive folder of an interrupted build")
            }
            Err(e) => tracing::warn!(community_id = %id, error = %e.chain(), "cannot repair the archive folder"),
        }
        match owner.seed(&dir, true, Wait::Yes).await {
            Ok(Seeded::Done(fp)) => machine.seeded_at_start(fp),
            Ok(Seeded::Busy) => {}
            Ok(Seeded::Unfinished(e)) | Err(e) => {
                tracing::warn!(community_id = %id, error = %e.chain(), "cannot seed existing archives");
            }
        }
    }
    let mut watch = tokio::time::interval(services.config.archive.watch_interval);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    watch.tick().await;
    let mut action = OwnerAction::RunCycle;
    loop {
        match action {
            OwnerAction::RunCycle => {
                let result = owner.cycle(&dir).await;
                let now = services.clock.now_secs();
                let result = result.map_err(|e| {
                    services.publish(Signal::HistoryArchivesFailed { community_id: id, error: e.chain() });
                });
                machine.cycle_done(now, result);
                tracing::debug!(community_id = %id, next_run_at = machine.next_run_at(), "archive task waiting");
            }
            OwnerAction::Reseed => {
                let seen = fingerprint(&dir);
                let outcome = match owner.seed(&dir, false, Wait::No).await {
                    Ok(Seeded::Done(fp)) => {
                        tracing::info!(community_id = %id, "archive folder changed: reseeded");
                        ReseedOutcome::Seeded(fp)
                    }
                    Ok(Seeded::Busy) => {
                        tracing::debug!(community_id = %id, "archive folder is being built: not yet");
                        ReseedOutcome::Busy
                    }
                    Ok(Seeded::Unfinished(e)) => {
                        tracing::warn!(community_id = %id, error = %e.chain(), "archive folder changed but is not seeded");
                        ReseedOutcome::Unfinished
                    }
                    Err(e) => {
                        tracing::warn!(community_id = %id, error = %e.chain(), "reseeding failed");
                        ReseedOutcome::Failed
                    }
                };
                machine.reseeded(seen, outcome);
            }
            OwnerAction::Wait => {}
        }
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Stop,
            t = trigger.recv() => if t.is_some() { Event::Trigger } else { Event::Stop },
            () = services.clock.wait_until_ms(machine.next_run_at().saturating_mul(1000)) => Event::Due,
            _ = watch.tick() => Event::WatchTick,
        };
        action = match event {
            Event::Stop => return,
            Event::Trigger => machine.wake(services.clock.now_secs(), true),
            Event::Due => machine.wake(services.clock.now_secs(), false),
            Event::WatchTick => machine.folder_seen(fingerprint(&dir)),
        };
    }
}

/// Whether [`Owner::seed`] waits for a build of the folder (by this node or another process) to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Yes,
    No,
}

/// What [`Owner::seed`] did.
enum Seeded {
    /// The folder's torrent is seeded (and announced if asked); the folder's fingerprint, taken
    /// after seeding (librqbit may touch the files).
    Done(Fingerprint),
    /// A build holds the folder (only with [`Wait::No`]).
    Busy,
    /// The folder is not one a finished build leaves ([`NodeError::UnfinishedArchiveFolder`]).
    Unfinished(NodeError),
}

/// One community's owner task: what its steps need.
struct Owner {
    services: Arc<Services>,
    id: CommunityId,
    pubsub_topic: String,
    dispatcher: Dispatcher,
}

impl Owner {
    /// One planning step: build what is due, seed it; returns when to plan again (Unix seconds) and
    /// the folder's fingerprint if it was seeded.
    async fn cycle(&self, dir: &Path) -> Result<(u64, Option<Fingerprint>), NodeError> {
        let (shared, id) = (&self.services, &self.id);
        // Before planning: what the channels had while this node was away, from store nodes.
        if let Err(e) = crate::waku_store::fill_channels(shared, *id).await {
            tracing::warn!(community_id = %id, error = %e.chain(), "filling the channels from store failed");
        }
        let id2 = *id;
        let generation = shared.config.archive.generation;
        let (topics, info, first) = shared
            .db(move |c, s| {
                let topics = c.archived_topics(s, &id2, generation)?;
                let info = c.archive_info(s, &id2)?;
                let first = s.first_timestamp_secs(&topics)?;
                Ok((topics, info, first))
            })
            .await?;
        let index_end = if fingerprint(dir).is_some() {
            let d = dir.to_owned();
            match shared.blocking(move || Ok(chs_archive::last_archive_end(&d))).await? {
                Ok(end) => end,
                Err(e) => {
                    tracing::warn!(community_id = %id, error = %e, "archive index unreadable; the builder repairs it");
                    None
                }
            }
        } else {
            None
        };
        let stored_end = Some(info.last_archive_end_date).filter(|t| *t > 0);
        let last = stored_end.max(index_end);
        let interval = shared.config.archive.interval.as_secs();
        let policy = match shared.config.archive.policy {
            Policy::WholeIntervals => CatchUpPolicy::WholeIntervals,
            Policy::UpToNow => CatchUpPolicy::UpToNow,
        };
        let now = shared.clock.now_secs();
        let plan = plan_catch_up(last, first, now, interval, policy)?;
        tracing::debug!(community_id = %id, ?plan, "archive plan");
        let Some(range) = plan.build_now else {
            return Ok((plan.next_run_at, None));
        };
        let options = BuildOptions {
            from: Some(range.from),
            interval,
            piece_length: u64::from(shared.config.archive.piece_length),
            ..BuildOptions::new(topics, range.to)
        };
        let db_path = shared.config.db_path();
        let build_dir: PathBuf = dir.to_owned();
        let mut hook = fault::BuildPause::new(&shared.bus, shared.config.pause_at.as_deref(), shared.cancel.clone());
        let report = shared
            .blocking(move || {
                // A second connection: reading in WAL mode does not block the capture task's writes.
                let store = Store::open(&db_path)?;
                Ok(Builder::new(build_dir, options).hook(&mut hook).run(&store)?)
            })
            .await?;
        if !report.oversized.is_empty() {
            tracing::warn!(community_id = %id, count = report.oversized.len(), "messages larger than the archive cap were not archived");
        }
        fault::point(shared, "built").await;
        let end = report.archived_until.max(range.to);
        let id2 = *id;
        shared.db(move |c, s| Ok(c.save_last_archive_end_date(s, &id2, end)?)).await?;
        fault::point(shared, "end-saved").await;
        if report.archives.is_empty() {
            shared.bus.publish(Signal::NoHistoryArchivesCreated { community_id: *id, from: range.from, to: range.to });
        } else {
            shared.bus.publish(Signal::HistoryArchivesCreated {
                community_id: *id,
                from: range.from,
                to: range.to,
                archive_ids: report.archives.iter().map(|a| a.id.clone()).collect(),
                messages: report.messages_archived,
            });
            match self.seed(dir, true, Wait::Yes).await? {
                Seeded::Done(fp) => return Ok((plan.next_run_at, Some(fp))),
                Seeded::Busy => {}
                Seeded::Unfinished(e) => return Err(e),
            }
        }
        Ok((plan.next_run_at, None))
    }

    /// Makes the torrent of the folder, writes `<torrent_dir>/<id>.torrent`, seeds it in place of the
    /// previous one and raises `HistoryArchivesSeeding` with the magnet link. When the folder's torrent
    /// is the one already seeded, nothing changes and the signal is raised only if `announce` (at
    /// start: status-go announces the existing torrent again). The folder is read under its shared
    /// lock ([`FolderLock`]) and checked first, so the torrent is never made of `data` a build has
    /// appended to and the `index` it has not rewritten yet, nor of an `index.tmp`.
    async fn seed(&self, dir: &Path, announce: bool, wait: Wait) -> Result<Seeded, NodeError> {
        let (shared, id) = (&self.services, &self.id);
        if !shared.runs(BackendKind::Torrent) {
            return self.publish_without_torrent(dir, announce, wait).await;
        }
        let torrent = shared.torrent()?;
        let piece_length = shared.config.archive.piece_length;
        let torrent_dir = shared.config.torrent_dir();
        let d = dir.to_owned();
        let locked = shared
            .blocking(move || {
                let lock = match wait {
                    Wait::Yes => FolderLock::shared(&d)?,
                    Wait::No => match FolderLock::try_shared(&d)? {
                        Some(lock) => lock,
                        None => return Ok(Err(Seeded::Busy)),
                    },
                };
                if let Some(reason) = Reader::open(&d)?.unfinished() {
                    return Ok(Err(Seeded::Unfinished(NodeError::UnfinishedArchiveFolder { path: d, reason })));
                }
                let meta = TorrentMeta::from_dir(&d, piece_length)?;
                meta.write_torrent_file(&torrent_dir, &TorrentFileOptions::default())?;
                Ok(Ok((meta, lock)))
            })
            .await?;
        let (meta, _lock) = match locked {
            Ok(locked) => locked,
            Err(not_seeded) => return Ok(not_seeded),
        };
        fault::point(shared, "torrent-written").await;
        let key = id.to_string();
        let previous = torrent.seeded(&key);
        let unchanged = previous == Some(meta.info_hash());
        if !unchanged {
            torrent.seed(&key, dir, &meta).await?;
        }
        fault::point(shared, "seeded").await;
        let fp = fingerprint(dir);
        if previous.is_some() && !unchanged {
            shared.bus.publish(Signal::HistoryArchivesUnseeded { community_id: *id });
        }
        if unchanged && !announce {
            return Ok(Seeded::Done(fp));
        }
        // The magnet names the trackers this node announces to (status-go's two by default) and
        // a peer hint only when an address others can dial is configured (status-go puts none).
        let trackers = &torrent.config().discovery.trackers;
        let mut magnet = Magnet::for_meta(&meta, trackers);
        if let Some(hint) = torrent.peer_hint() {
            magnet = magnet.with_peer(hint);
        }
        let magnet_uri = magnet.to_string();
        let mut links = vec![magnet_uri.clone()];
        links.extend(self.publish_others(dir).await.into_iter().map(|p| p.link));
        self.dispatcher.send(Command::Seeding { id: *id, pubsub_topic: self.pubsub_topic.clone(), links });
        shared.bus.publish(Signal::HistoryArchivesSeeding { community_id: *id, magnet_uri, control_node: true });
        Ok(Seeded::Done(fp))
    }

    /// [`Owner::seed`] on a node without BitTorrent: the folder, checked under its shared lock,
    /// is published through the other backends (Logos Storage) and their links announced.
    async fn publish_without_torrent(&self, dir: &Path, announce: bool, wait: Wait) -> Result<Seeded, NodeError> {
        let d = dir.to_owned();
        let locked = self
            .services
            .blocking(move || {
                let lock = match wait {
                    Wait::Yes => FolderLock::shared(&d)?,
                    Wait::No => match FolderLock::try_shared(&d)? {
                        Some(lock) => lock,
                        None => return Ok(Err(Seeded::Busy)),
                    },
                };
                if let Some(reason) = Reader::open(&d)?.unfinished() {
                    return Ok(Err(Seeded::Unfinished(NodeError::UnfinishedArchiveFolder { path: d, reason })));
                }
                Ok(Ok(lock))
            })
            .await?;
        let _lock = match locked {
            Ok(lock) => lock,
            Err(not_published) => return Ok(not_published),
        };
        let published = self.publish_others(dir).await;
        let fp = fingerprint(dir);
        let changed = published.iter().any(|p| p.changed);
        if published.is_empty() || (!changed && !announce) {
            return Ok(Seeded::Done(fp));
        }
        let links: Vec<String> = published.into_iter().map(|p| p.link).collect();
        for link in &links {
            self.services.bus.publish(Signal::HistoryArchivesSeeding {
                community_id: self.id,
                magnet_uri: link.clone(),
                control_node: true,
            });
        }
        self.dispatcher.send(Command::Seeding { id: self.id, pubsub_topic: self.pubsub_topic.clone(), links });
        Ok(Seeded::Done(fp))
    }

    /// Publishes the folder through every backend but BitTorrent; a failing backend is logged
    /// and signalled, and the others' links still go out.
    async fn publish_others(&self, dir: &Path) -> Vec<Published> {
        let mut out = Vec::new();
        for backend in self.services.other_backends() {
            match backend.publish(&self.id, dir).await {
                Ok(published) => out.push(published),
                Err(e) => {
                    let e = NodeError::from(e);
                    tracing::warn!(community_id = %self.id, backend = backend.kind().as_str(), error = %e.chain(), "publishing archives failed");
                    self.services.publish(Signal::HistoryArchivesFailed { community_id: self.id, error: e.chain() });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{OwnerAction, OwnerMachine, ReseedOutcome};

    const RETRY: Duration = Duration::from_secs(60);

    fn fp(n: u64) -> super::Fingerprint {
        Some((n, SystemTime::UNIX_EPOCH, n))
    }

    #[test]
    fn a_cycle_runs_when_due_or_triggered_and_a_failure_is_retried_later() {
        let mut m = OwnerMachine::new(RETRY);
        assert_eq!(m.wake(1_000, false), OwnerAction::RunCycle, "the first cycle runs at once");
        m.cycle_done(1_000, Ok((1_000 + 604_800, None)));
        assert_eq!(m.next_run_at(), 1_000 + 604_800);
        assert_eq!(m.wake(2_000, false), OwnerAction::Wait, "not due yet");
        assert_eq!(m.wake(2_000, true), OwnerAction::RunCycle, "a trigger runs it now");
        m.cycle_done(2_000, Err(()));
        assert_eq!(m.next_run_at(), 2_060, "retried after retry_after_failure");
        assert_eq!(m.wake(2_059, false), OwnerAction::Wait);
        assert_eq!(m.wake(2_060, false), OwnerAction::RunCycle);
    }

    #[test]
    fn a_changed_folder_is_reseeded_once_and_an_unfinished_one_waits_for_the_next_change() {
        let mut m = OwnerMachine::new(RETRY);
        assert_eq!(m.folder_seen(None), OwnerAction::Wait, "no folder yet");
        m.seeded_at_start(fp(1));
        assert_eq!(m.folder_seen(fp(1)), OwnerAction::Wait, "unchanged");
        assert_eq!(m.folder_seen(fp(2)), OwnerAction::Reseed);
        // A build holds the folder, or hashing failed: try again on the next tick.
        m.reseeded(fp(2), ReseedOutcome::Busy);
        assert_eq!(m.folder_seen(fp(2)), OwnerAction::Reseed);
        m.reseeded(fp(2), ReseedOutcome::Failed);
        assert_eq!(m.folder_seen(fp(2)), OwnerAction::Reseed);
        // Left unfinished by a build that died: not retried until it changes again.
        m.reseeded(fp(2), ReseedOutcome::Unfinished);
        assert_eq!(m.folder_seen(fp(2)), OwnerAction::Wait);
        assert_eq!(m.folder_seen(fp(3)), OwnerAction::Reseed);
        m.reseeded(fp(3), ReseedOutcome::Seeded(fp(4)));
        assert_eq!(m.folder_seen(fp(4)), OwnerAction::Wait, "the fingerprint after seeding counts");
        // A cycle that seeded records its folder too.
        m.cycle_done(5, Ok((10, Some(fp(5)))));
        assert_eq!(m.folder_seen(fp(5)), OwnerAction::Wait);
    }
}
