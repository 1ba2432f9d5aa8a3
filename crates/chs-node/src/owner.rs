//! The control node's archive task for one community (status-go's `InitHistoryArchiveTasks`
//! and `StartHistoryArchiveTasksInterval`): publish the existing archives at start, catch up on
//! missed windows, then build once per interval; publish again when another process appended
//! archives to the folder (`chs archive build` on this node's database). Publishing goes through
//! the node's distribution backends ([`crate::backend::DistributionBackend`]) and nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chs_archive::{BuildOptions, Builder, CatchUpPolicy, FolderLock, INDEX_FILE, Reader, plan_catch_up};
use chs_community::{ArchiveWrapping, Community, CommunityId};
use chs_store::Store;
use tokio::sync::{Notify, mpsc};

use tokio_util::sync::CancellationToken;

use crate::backend::{PublishOptions, StepFn};
use crate::config::Policy;
use crate::dispatch::{Command, Dispatcher};
use crate::error::NodeError;
use crate::fault;
use crate::services::{Services, lock};
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

    /// The folder as last seeded (or left unfinished): what [`FolderWatch`] compares it with.
    pub(crate) fn seeded(&self) -> Fingerprint {
        self.seeded
    }

    /// The watch found the folder as `now_fp`.
    pub(crate) fn folder_seen(&self, now_fp: Fingerprint) -> OwnerAction {
        if needs_reseed(now_fp, self.seeded) { OwnerAction::Reseed } else { OwnerAction::Wait }
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

/// Whether a folder seen as `now_fp` differs from the one seeded as `seeded` (the one rule of
/// [`OwnerMachine::folder_seen`] and [`FolderWatch::scan`]).
fn needs_reseed(now_fp: Fingerprint, seeded: Fingerprint) -> bool {
    now_fp.is_some() && now_fp != seeded
}

/// One watcher of every owner task's archive folder (`[archive] watch_interval`): a single timer
/// for the node that stats each registered folder once per interval and wakes only the owner
/// tasks whose folder differs from what they last seeded. One timer per community cost an idle
/// owner of 1,000 communities 100 wake-ups a second (issue 22). The owner task still decides
/// ([`OwnerMachine::folder_seen`]); a folder it could not reseed (busy, failed) keeps differing,
/// so it is woken again on the next scan, as with its own timer.
#[derive(Debug, Clone, Default)]
pub(crate) struct FolderWatch {
    folders: Arc<Mutex<HashMap<CommunityId, Watched>>>,
}

/// One registered folder.
#[derive(Debug)]
struct Watched {
    dir: PathBuf,
    /// What its owner task last seeded ([`OwnerMachine::seeded`]).
    seeded: Fingerprint,
    changed: Arc<Notify>,
}

/// An owner task's registration with the [`FolderWatch`]; removed when dropped.
#[derive(Debug)]
pub(crate) struct WatchedFolder {
    watch: FolderWatch,
    id: CommunityId,
    changed: Arc<Notify>,
}

impl FolderWatch {
    /// Watches `dir` for the owner task of `id` (replacing an earlier registration of `id`).
    pub(crate) fn register(&self, id: CommunityId, dir: PathBuf) -> WatchedFolder {
        let changed = Arc::new(Notify::new());
        let watched = Watched { dir, seeded: None, changed: Arc::clone(&changed) };
        lock(&self.folders).insert(id, watched);
        WatchedFolder { watch: self.clone(), id, changed }
    }

    /// One pass: stats every registered folder and wakes the owners whose folder needs a reseed.
    /// Returns the communities woken.
    pub(crate) fn scan(&self) -> Vec<CommunityId> {
        let folders: Vec<(CommunityId, PathBuf, Fingerprint, Arc<Notify>)> =
            lock(&self.folders).iter().map(|(id, w)| (*id, w.dir.clone(), w.seeded, Arc::clone(&w.changed))).collect();
        let mut woken = Vec::new();
        for (id, dir, seeded, changed) in folders {
            if needs_reseed(fingerprint(&dir), seeded) {
                changed.notify_one();
                woken.push(id);
            }
        }
        woken
    }

    /// Scans every `interval` (on the blocking pool) until the node stops.
    pub(crate) async fn run(self, services: Arc<Services>) {
        let interval = services.config.archive.watch_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = services.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let watch = self.clone();
            if let Err(e) = services.blocking(move || Ok(watch.scan().len())).await {
                tracing::warn!(error = %e.chain(), "scanning the archive folders failed");
            }
        }
    }
}

impl WatchedFolder {
    /// The owner task seeded (or gave up on) the folder as `fp`: scans compare with it.
    fn set_seeded(&self, fp: Fingerprint) {
        if let Some(w) = lock(&self.watch.folders).get_mut(&self.id)
            && Arc::ptr_eq(&w.changed, &self.changed)
        {
            w.seeded = fp;
        }
    }

    /// Returns when a scan found the folder changed (at once if one did since the last call).
    async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Drop for WatchedFolder {
    fn drop(&mut self) {
        let mut folders = lock(&self.watch.folders);
        if folders.get(&self.id).is_some_and(|w| Arc::ptr_eq(&w.changed, &self.changed)) {
            folders.remove(&self.id);
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
    watch: FolderWatch,
    cancel: CancellationToken,
) {
    let id = community.id;
    let owner = Owner {
        services: Arc::clone(&services),
        id,
        pubsub_topic: community.pubsub_topic.clone(),
        dispatcher,
        warned_no_key: std::sync::atomic::AtomicBool::new(false),
    };
    let dir = services.archive_dir(&id);
    let mut machine = OwnerMachine::new(services.config.archive.retry_after_failure);
    // status-go seeds the existing torrent at start, which announces it again. A folder left by an
    // interrupted build is repaired first (as the next build would): its torrent would otherwise
    // carry bytes no index entry accounts for.
    if fingerprint(&dir).is_some() {
        let d = dir.clone();
        let piece_length = u64::from(services.config.archive.piece_length);
        let keys = owner.opening_keys().await;
        let repaired = services
            .blocking(move || {
                Ok(match keys {
                    // A wrapped index is opened with the keys held; one rebuilt from `data` would
                    // have to be wrapped again, which only a build does (it reserves the number).
                    Some(keys) => {
                        chs_archive::repair_wrapped(&d, piece_length, &mut chs_community::ratchet::RatchetOpener(keys))?
                    }
                    None => chs_archive::repair_with(&d, piece_length)?,
                })
            })
            .await;
        match repaired {
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
    let folder = watch.register(id, dir.clone());
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
        folder.set_seeded(machine.seeded());
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Stop,
            t = trigger.recv() => if t.is_some() { Event::Trigger } else { Event::Stop },
            () = services.clock.wait_until_ms(machine.next_run_at().saturating_mul(1000)) => Event::Due,
            () = folder.changed() => Event::WatchTick,
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
    /// Whether "encrypted community, no hash-ratchet key" was logged (once per task).
    warned_no_key: std::sync::atomic::AtomicBool,
}

impl Owner {
    /// The hash-ratchet keys held for the community (to open a wrapped folder), if any.
    async fn opening_keys(&self) -> Option<Vec<chs_status::hash_ratchet::RatchetKey>> {
        let id = self.id;
        match self.services.db(move |c, s| Ok(c.ratchet_key_material(s, &id)?)).await {
            Ok(keys) if !keys.is_empty() => Some(keys),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(community_id = %id, error = %e.chain(), "cannot read the hash-ratchet keys");
                None
            }
        }
    }

    /// How the next build writes (status-go: wrapped iff the community is encrypted, with the
    /// group's newest key); an encrypted community without a key is logged once.
    async fn wrapping(&self) -> Result<chs_community::ratchet::BuildWrapping, NodeError> {
        let id = self.id;
        let wrapping = self.services.db(move |c, s| Ok(c.build_wrapping(s, &id)?)).await?;
        if wrapping.wrapping == ArchiveWrapping::NoKey
            && !self.warned_no_key.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(community_id = %id, "encrypted community; no hash-ratchet key: archives written plain, which status-go reads \
                (`chs community ratchet-key add` gives one)");
        }
        Ok(wrapping)
    }

    /// What a backend needs to publish an encrypted community's wrapped folder and wrap its own
    /// index ([`PublishOptions::ratchet`]); `None` when the community is written plain.
    async fn publish_ratchet(&self) -> Result<Option<crate::backend::PublishRatchet>, NodeError> {
        let wrapping = Arc::new(self.wrapping().await?);
        if !matches!(wrapping.wrapping, ArchiveWrapping::Wrapped(_)) {
            return Ok(None);
        }
        let db_path = self.services.config.db_path();
        let keys = wrapping.keys().to_vec();
        let wrap: crate::backend::WrapFn = Arc::new(move |bytes: &[u8]| match wrapping.wrap_one(&db_path, bytes) {
            Ok(Some(wrapped)) => Ok(wrapped),
            Ok(None) => Err("the community is written plain".to_owned()),
            Err(e) => Err(e.to_string()),
        });
        Ok(Some(crate::backend::PublishRatchet { keys, wrap }))
    }

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
            let keys = self.opening_keys().await;
            let last_end = move || match keys {
                Some(keys) => Reader::open_with(&d, &mut chs_community::ratchet::RatchetOpener(keys))
                    .map(|r| r.entries().iter().map(chs_archive::ArchiveEntry::to).max()),
                None => chs_archive::last_archive_end(&d),
            };
            match shared.blocking(move || Ok(last_end())).await? {
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
        let started = std::time::Instant::now();
        let options = BuildOptions {
            from: Some(range.from),
            interval,
            piece_length: u64::from(shared.config.archive.piece_length),
            ..BuildOptions::new(topics, range.to)
        };
        let db_path = shared.config.db_path();
        let build_dir: PathBuf = dir.to_owned();
        let mut hook = fault::BuildPause::new(&shared.bus, shared.config.pause_at.as_deref(), shared.cancel.clone());
        let wrapping = self.wrapping().await?;
        let report = shared
            .blocking(move || {
                // A second connection: reading in WAL mode does not block the capture task's writes.
                let store = Store::open(&db_path)?;
                let build = |w: Option<&mut dyn chs_archive::Wrapper>| {
                    Builder::new(build_dir, options)
                        .hook(&mut hook)
                        .maybe_wrapper(w.map(|w| w as &mut dyn chs_archive::Wrapper))
                        .run(&store)
                };
                Ok(wrapping.run(&db_path, build)?.0)
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
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if report.archives.is_empty() {
            shared.bus.publish(Signal::NoHistoryArchivesCreated {
                community_id: *id,
                from: range.from,
                to: range.to,
                elapsed_ms,
            });
        } else {
            shared.bus.publish(Signal::HistoryArchivesCreated {
                community_id: *id,
                from: range.from,
                to: range.to,
                archive_ids: report.archives.iter().map(|a| a.id.clone()).collect(),
                messages: report.messages_archived,
                elapsed_ms,
            });
            match self.seed(dir, true, Wait::Yes).await? {
                Seeded::Done(fp) => return Ok((plan.next_run_at, Some(fp))),
                Seeded::Busy => {}
                Seeded::Unfinished(e) => return Err(e),
            }
        }
        Ok((plan.next_run_at, None))
    }

    /// Publishes the folder through every backend of `[archive] backends` (BitTorrent: makes the
    /// torrent, writes `<torrent_dir>/<id>.torrent`, seeds it in place of the previous one) and
    /// announces their links with `HistoryArchivesSeeding`. When no backend's link changed,
    /// nothing is announced unless `announce` (at start: status-go announces the existing torrent
    /// again). The folder is read under its shared lock ([`FolderLock`]) and checked first, so no
    /// backend ever publishes `data` a build has appended to and the `index` it has not rewritten
    /// yet, nor an `index.tmp`. A failing backend is logged and signalled and the others' links
    /// still go out; when every backend fails, the first error is returned.
    async fn seed(&self, dir: &Path, announce: bool, wait: Wait) -> Result<Seeded, NodeError> {
        let (shared, id) = (&self.services, self.id);
        let d = dir.to_owned();
        let keys = self.opening_keys().await;
        let locked = shared
            .blocking(move || {
                let lock = match wait {
                    Wait::Yes => FolderLock::shared(&d)?,
                    Wait::No => match FolderLock::try_shared(&d)? {
                        Some(lock) => lock,
                        None => return Ok(Err(Seeded::Busy)),
                    },
                };
                let reader = match keys {
                    Some(keys) => Reader::open_with(&d, &mut chs_community::ratchet::RatchetOpener(keys))?,
                    None => Reader::open(&d)?,
                };
                if let Some(reason) = reader.unfinished() {
                    return Ok(Err(Seeded::Unfinished(NodeError::UnfinishedArchiveFolder { path: d, reason })));
                }
                Ok(Ok(lock))
            })
            .await?;
        let _lock = match locked {
            Ok(lock) => lock,
            Err(not_seeded) => return Ok(not_seeded),
        };
        let (bus, pause_at) = (shared.bus.clone(), shared.config.pause_at.clone());
        let step: StepFn = Arc::new(move |point| {
            if fault::is_at(pause_at.as_deref(), point) {
                fault::pause_blocking(&bus, point);
            }
        });
        let ratchet = self.publish_ratchet().await?;
        let mut published = Vec::new();
        let mut first_error = None;
        for backend in &shared.backends {
            let options = PublishOptions { step: Some(Arc::clone(&step)), ratchet: ratchet.clone() };
            match backend.publish(&id, dir, options).await {
                Ok(p) => published.push(p),
                Err(e) => {
                    let e = NodeError::from(e);
                    tracing::warn!(community_id = %id, backend = backend.kind().as_str(), error = %e.chain(), "publishing archives failed");
                    if first_error.is_none() {
                        first_error = Some(e);
                    } else {
                        shared.publish(Signal::HistoryArchivesFailed { community_id: id, error: e.chain() });
                    }
                }
            }
        }
        if let Some(e) = first_error {
            if published.is_empty() {
                return Err(e);
            }
            shared.publish(Signal::HistoryArchivesFailed { community_id: id, error: e.chain() });
        }
        fault::point(shared, "seeded").await;
        let fp = fingerprint(dir);
        if published.iter().any(|p| p.replaced) {
            shared.bus.publish(Signal::HistoryArchivesUnseeded { community_id: id });
        }
        if published.is_empty() || (!announce && !published.iter().any(|p| p.changed)) {
            return Ok(Seeded::Done(fp));
        }
        let links: Vec<String> = published.into_iter().map(|p| p.link).collect();
        self.dispatcher.send(Command::Seeding { id, pubsub_topic: self.pubsub_topic.clone(), links: links.clone() });
        for magnet_uri in links {
            shared.bus.publish(Signal::HistoryArchivesSeeding { community_id: id, magnet_uri, control_node: true });
        }
        Ok(Seeded::Done(fp))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use chs_community::CommunityId;

    use super::{FolderWatch, OwnerAction, OwnerMachine, ReseedOutcome, WatchedFolder, fingerprint, lock};

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

    #[tokio::test]
    async fn one_folder_watch_wakes_only_owners_whose_folder_differs_from_what_they_seeded() {
        let root = tempfile::tempdir().unwrap();
        let write = |dir: &std::path::Path, data: &[u8]| {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(chs_archive::INDEX_FILE), b"index").unwrap();
            std::fs::write(dir.join(chs_archive::DATA_FILE), data).unwrap();
        };
        let ids: Vec<CommunityId> =
            (0..3).map(|_| CommunityId::from_secret_key(&chs_community::generate_key().unwrap())).collect();
        let dirs: Vec<_> = (0..3).map(|n| root.path().join(n.to_string())).collect();
        write(&dirs[0], b"a");
        write(&dirs[1], b"b");
        let watch = FolderWatch::default();
        let folders: Vec<WatchedFolder> = ids.iter().zip(&dirs).map(|(id, d)| watch.register(*id, d.clone())).collect();
        // Nothing seeded yet: the two folders that exist differ; the missing one does not.
        let mut woken = watch.scan();
        woken.sort_by_key(ToString::to_string);
        let mut expected = vec![ids[0], ids[1]];
        expected.sort_by_key(ToString::to_string);
        assert_eq!(woken, expected);
        // Woken once per scan, not once per tick of the owner: the wake-up is stored.
        assert!(tokio::time::timeout(Duration::ZERO, folders[0].changed()).await.is_ok(), "folder 0 woken");
        assert!(tokio::time::timeout(Duration::ZERO, folders[2].changed()).await.is_err(), "folder 2 not woken");
        folders[0].set_seeded(fingerprint(&dirs[0]));
        folders[1].set_seeded(fingerprint(&dirs[1]));
        assert_eq!(watch.scan(), Vec::<CommunityId>::new(), "both as seeded");
        // Someone else appends to folder 1: only its owner is woken, on every scan until it
        // has seeded the new content (a busy or failed reseed is retried on the next scan).
        write(&dirs[1], b"b and more");
        assert_eq!(watch.scan(), vec![ids[1]]);
        assert_eq!(watch.scan(), vec![ids[1]]);
        folders[1].set_seeded(fingerprint(&dirs[1]));
        assert_eq!(watch.scan(), Vec::<CommunityId>::new());
        // A restarted owner task registers again before the old registration is dropped: the
        // drop leaves the new one watched.
        let again = watch.register(ids[1], dirs[1].clone());
        drop(folders);
        assert_eq!(watch.scan(), vec![ids[1]], "only the new registration is left, nothing seeded yet");
        drop(again);
        assert!(lock(&watch.folders).is_empty());
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
