//! The member pipeline of one community: magnetlink messages → community verdict → debounce
//! (only the newest link of a burst is acted on) → index → missing archives only → canonical
//! import → bookkeeping → seed. Failures are retried with backoff; an accepted link survives a
//! restart (`pending`), and already imported archives are never fetched or lost again.

mod machine;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chs_community::{Community, CommunityId, DecodeMode, PendingLink, Verdict};
use chs_torrent::Magnet;
use chs_waku::{ContentFilter, MessageReceiver, ReceivedMessage};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::machine::{Action, Ended, Machine, Settings};
use crate::backend::{BackendError, Fetch, FetchOptions, FetchPhase, FetchProgress, ProgressFn};
use crate::error::NodeError;
use crate::fault;
use crate::services::{Services, lock, next_burst};
use crate::signal::Signal;
use crate::status::{DownloadPhase, DownloadView};

/// Where the member publishes its download's progress (read by `NodeHandle::status`).
pub(crate) type ProgressView = Arc<watch::Sender<Option<DownloadView>>>;

/// The largest magnetlink payload a member looks at. status-go's are well under 1 KiB (a
/// magnet URI with a few peer hints, padded to 256 bytes); larger ones never enter the queue.
pub(crate) const MAX_MAGNETLINK_PAYLOAD: usize = 8 * 1024;

/// The member's own receive queue, in messages (so at most 64 MiB of payload). Filled only by
/// this community's magnetlink topics, drained by [`screen`] at thousands of messages a second.
pub(crate) const MAGNETLINK_QUEUE: usize = 8 * 1024;

/// At most this many messages are checked per trip to the blocking pool.
const SCREEN_BATCH: usize = 512;

/// Individual [`Signal::MagnetlinkRejected`] signals per second from the cheap checks; beyond,
/// refusals are summed into one [`Signal::MagnetlinksDropped`].
const REJECTED_SIGNALS_PER_SECOND: u64 = 256;

/// Distinct valid links remembered to drop replays (valid traffic is what the owner signed).
const SEEN_LINKS: usize = 64;

pub(crate) fn receiver(shared: &Services, community: &Community) -> Result<MessageReceiver, NodeError> {
    let topics = chs_status::ids::magnetlink_content_topics(&community.id);
    let filter = ContentFilter::new(community.pubsub_topic.clone(), topics).with_max_payload(MAX_MAGNETLINK_PAYLOAD);
    shared.waku.messages_with_capacity(filter, MAGNETLINK_QUEUE).map_err(|_| NodeError::WakuStopped)
}

/// The validly signed link the cheap stage passed and [`run`] has not taken yet: one slot, so
/// the database stage never queues behind a flood.
#[derive(Default)]
struct Slot {
    link: std::sync::Mutex<Option<(u64, ReceivedMessage)>>,
    ready: Notify,
}

impl Slot {
    /// Puts a valid link in the slot unless the link waiting there is newer (then this one is
    /// stale for the verdict anyway, and only logged).
    fn offer(&self, clock: u64, uri: String, message: ReceivedMessage) {
        let mut link = lock(&self.link);
        if let Some((waiting, _)) = link.as_ref()
            && *waiting > clock
        {
            tracing::debug!(clock, %uri, waiting, "valid magnetlink superseded by a newer one waiting for its verdict");
            return;
        }
        *link = Some((clock, message));
        drop(link);
        self.ready.notify_one();
    }

    fn take(&self) -> Option<ReceivedMessage> {
        lock(&self.link).take().map(|(_, message)| message)
    }
}

/// The cheap stage: drains the community's receive queue in batches, checks each message on the
/// blocking pool without the database (topic, decryption, signature by the community key:
/// [`chs_community::Communities::check_magnetlink`]), drops what fails (counted; signals
/// aggregated past a budget) and replays of links already passed, and offers the newest valid
/// link to [`run`] through `latest` (one slot: an older link is stale for the verdict anyway).
async fn screen(
    shared: Arc<Services>,
    id: CommunityId,
    mut rx: MessageReceiver,
    latest: Arc<Slot>,
    cancel: CancellationToken,
) {
    let mut seen: VecDeque<(u64, String)> = VecDeque::with_capacity(SEEN_LINKS);
    let mut drops = Drops::new(id);
    while let Some(batch) = next_burst(&mut rx, &cancel, SCREEN_BATCH).await {
        let Some(checked) = check_batch(&shared, id, batch).await else {
            tracing::error!(community_id = %id, "magnetlink checks failed; the member stops listening");
            return;
        };
        for (message, outcome) in checked {
            match outcome {
                Err(reason) => drops.rejected(&shared, reason.to_string()),
                Ok((clock, uri)) => {
                    let key = (clock, uri);
                    if seen.contains(&key) {
                        continue;
                    }
                    if seen.len() == SEEN_LINKS {
                        seen.pop_front();
                    }
                    seen.push_back(key.clone());
                    latest.offer(key.0, key.1, message);
                }
            }
        }
        drops.lost(rx.lost());
        if rx.is_empty() {
            drops.flush(&shared);
        }
    }
}

/// [`chs_community::Communities::check_magnetlink`] on every message of `batch`, split over
/// the cores on the blocking pool (a forged signature costs two signature recoveries); `None` if
/// a check task panicked.
async fn check_batch(
    shared: &Arc<Services>,
    id: CommunityId,
    mut batch: Vec<ReceivedMessage>,
) -> Option<Vec<(ReceivedMessage, Result<(u64, String), chs_community::RejectReason>)>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = batch.len().div_ceil(cores).max(1);
    let mut tasks = Vec::with_capacity(cores);
    while !batch.is_empty() {
        let rest = batch.split_off(chunk.min(batch.len()));
        let part = std::mem::replace(&mut batch, rest);
        let shared = Arc::clone(shared);
        tasks.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|m| {
                    let outcome = shared.communities.check_magnetlink(&id, &m.message, &m.pubsub_topic);
                    (m, outcome)
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut checked = Vec::new();
    for task in tasks {
        checked.extend(task.await.ok()?);
    }
    Some(checked)
}

/// What the cheap stage dropped without a signal each, since the last [`Signal::MagnetlinksDropped`].
struct Drops {
    id: CommunityId,
    window: Instant,
    signalled: u64,
    rejected: u64,
    lost_total: u64,
    lost: u64,
    last_reason: String,
}

impl Drops {
    fn new(id: CommunityId) -> Self {
        Drops {
            id,
            window: Instant::now(),
            signalled: 0,
            rejected: 0,
            lost_total: 0,
            lost: 0,
            last_reason: String::new(),
        }
    }

    fn rejected(&mut self, shared: &Services, reason: String) {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.flush(shared);
        }
        if self.signalled < REJECTED_SIGNALS_PER_SECOND {
            self.signalled += 1;
            shared.bus.publish(Signal::MagnetlinkRejected { reason });
        } else {
            self.rejected += 1;
            self.last_reason = reason;
        }
    }

    /// Notes the receive queue's loss counter (`total` since it was made).
    fn lost(&mut self, total: u64) {
        if total > self.lost_total {
            tracing::warn!(community_id = %self.id, lost = total - self.lost_total, "magnetlink queue full: messages lost unjudged");
            self.lost += total - self.lost_total;
            self.lost_total = total;
        }
    }

    /// Publishes what was summed, if anything, and starts a new window.
    fn flush(&mut self, shared: &Services) {
        if self.rejected > 0 || self.lost > 0 {
            tracing::info!(community_id = %self.id, rejected = self.rejected, lost = self.lost, last_reason = %self.last_reason, "magnetlink flood");
            shared.bus.publish(Signal::MagnetlinksDropped {
                community_id: self.id,
                rejected: self.rejected,
                lost: self.lost,
                last_reason: std::mem::take(&mut self.last_reason),
            });
        }
        self.window = Instant::now();
        self.signalled = 0;
        self.rejected = 0;
        self.lost = 0;
    }
}

/// What the member task reacts to.
enum Event {
    Stop,
    /// A validly signed link from the cheap stage, for the verdict.
    Link(ReceivedMessage),
    /// The running download ended.
    Ended(Result<(), NodeError>),
    /// The machine's next wake-up time came.
    Wake,
    /// The cheap stage ended (the Waku node stopped).
    ScreenStopped,
}

/// A download task and its cancel token.
struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<Result<(), NodeError>>,
}

/// The member task of one community: see the module docs and [`machine`].
pub(crate) async fn run(
    services: Arc<Services>,
    community: Community,
    rx: MessageReceiver,
    progress: ProgressView,
    cancel: CancellationToken,
) {
    let id = community.id;
    let latest = Arc::new(Slot::default());
    let screening = cancel.child_token();
    let mut screen_task =
        services.tasks.spawn(screen(Arc::clone(&services), id, rx, Arc::clone(&latest), screening.clone()));
    let _stop_screening = screening.drop_guard();
    let member = &services.config.member;
    let mut machine: Machine<ReceivedMessage> = Machine::new(Settings {
        debounce: member.debounce,
        retry_backoff: member.retry_backoff,
        max_attempts: member.max_attempts,
    });
    match services.db(move |c, s| Ok(c.pending_link(s, &id)?)).await {
        // A link accepted before a restart is resumed at once.
        Ok(Some(p)) => machine.restored(Instant::now(), p),
        Ok(None) => {}
        Err(e) => tracing::error!(community_id = %id, error = %e.chain(), "cannot read the pending magnetlink"),
    }
    let mut running: Option<Running> = None;
    loop {
        let (actions, judge) = machine.poll(Instant::now());
        perform(&services, id, &progress, &mut running, &cancel, actions).await;
        for (message, attempt) in judge {
            judge_one(&services, id, &progress, &mut machine, &mut running, &cancel, message, attempt).await;
        }
        let wake = machine.next_wake();
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Stop,
            result = join(&mut running) => Event::Ended(result.unwrap_or_else(|e| Err(NodeError::Join(e)))),
            () = latest.ready.notified() => match latest.take() {
                Some(message) => Event::Link(message),
                None => continue,
            },
            _ = &mut screen_task => Event::ScreenStopped,
            () = sleep_until(wake), if wake.is_some() => Event::Wake,
        };
        match event {
            Event::Stop | Event::ScreenStopped => {
                let actions = machine.shutdown();
                perform(&services, id, &progress, &mut running, &cancel, actions).await;
                if let Some(r) = running.take() {
                    let _ = r.handle.await;
                }
                return;
            }
            Event::Ended(result) => {
                running = None;
                progress.send_replace(None);
                let ended = match result {
                    Ok(()) => Ended::Done,
                    Err(NodeError::Cancelled) => Ended::Cancelled,
                    Err(e) => Ended::Failed(e.chain()),
                };
                let actions = machine.download_ended(Instant::now(), ended);
                perform(&services, id, &progress, &mut running, &cancel, actions).await;
            }
            Event::Link(message) => {
                judge_one(&services, id, &progress, &mut machine, &mut running, &cancel, message, 1).await;
            }
            Event::Wake => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn join(running: &mut Option<Running>) -> Result<Result<(), NodeError>, tokio::task::JoinError> {
    match running {
        Some(r) => (&mut r.handle).await,
        None => std::future::pending().await,
    }
}

/// The verdict on one message (its `attempt`-th), fed to the machine.
#[allow(clippy::too_many_arguments)]
async fn judge_one(
    services: &Arc<Services>,
    id: CommunityId,
    progress: &ProgressView,
    machine: &mut Machine<ReceivedMessage>,
    running: &mut Option<Running>,
    cancel: &CancellationToken,
    message: ReceivedMessage,
    attempt: u32,
) {
    let actions = match verdict(services, message).await {
        Outcome::Accepted(clock, magnet_uri) => machine.accepted(Instant::now(), PendingLink { magnet_uri, clock }),
        Outcome::Rejected => return,
        Outcome::Failed(message, error) => machine.verdict_failed(Instant::now(), *message, attempt, error),
    };
    perform(services, id, progress, running, cancel, actions).await;
}

/// Carries out the machine's actions.
async fn perform(
    services: &Arc<Services>,
    id: CommunityId,
    progress: &ProgressView,
    running: &mut Option<Running>,
    cancel: &CancellationToken,
    actions: Vec<Action>,
) {
    let ms = |d: Option<Duration>| d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    for action in actions {
        match action {
            Action::SavePending(link) => {
                let now = services.clock.now_ms();
                if let Err(e) = services.db(move |c, s| Ok(c.save_pending_link(s, &id, &link, now)?)).await {
                    tracing::error!(community_id = %id, error = %e.chain(), "cannot record the pending magnetlink");
                }
            }
            Action::Start(link) => {
                let download_cancel = cancel.child_token();
                let handle = services.tasks.spawn(download(
                    Arc::clone(services),
                    id,
                    link,
                    Arc::clone(progress),
                    download_cancel.clone(),
                ));
                *running = Some(Running { cancel: download_cancel, handle });
            }
            Action::Cancel => {
                if let Some(r) = running {
                    tracing::info!(community_id = %id, "cancelling the current download");
                    r.cancel.cancel();
                }
            }
            Action::DownloadFailed { link, error, attempt, retry_in } => {
                services.publish(Signal::HistoryArchiveDownloadFailed {
                    community_id: id,
                    magnet_uri: link.magnet_uri,
                    error,
                    attempt,
                    retry_in_ms: ms(retry_in),
                });
            }
            Action::VerdictFailed { error, attempt, retry_in } => {
                services.publish(Signal::MagnetlinkVerdictFailed {
                    community_id: id,
                    error,
                    attempt,
                    retry_in_ms: ms(retry_in),
                });
            }
        }
    }
}

/// What became of a received magnetlink message.
enum Outcome {
    /// Accepted: (clock, magnet URI).
    Accepted(u64, String),
    /// Rejected by the rules (forged, stale, fetched already...).
    Rejected,
    /// No verdict: the database failed (e.g. locked by another process); try again later.
    Failed(Box<ReceivedMessage>, String),
}

/// The community manager's verdict.
async fn verdict(shared: &Arc<Services>, message: ReceivedMessage) -> Outcome {
    let kept = message.clone();
    let result = shared
        .db(move |c, s| {
            let verdict = c.receive_magnetlink(s, &message.message, &message.pubsub_topic)?;
            let last = match &verdict {
                Verdict::Accepted { community_id, .. } => Some(c.archive_info(s, community_id)?.last_magnetlink_uri),
                Verdict::Rejected(_) => None,
            };
            Ok((verdict, last))
        })
        .await;
    match result {
        Ok((Verdict::Accepted { magnet_uri, .. }, Some(last))) if same_torrent(&magnet_uri, &last) => {
            // status-go compares whole URIs, so a restarted owner (new port in `x.pe`) makes every
            // member fetch the same torrent again; the info hash is what identifies it.
            shared.bus.publish(Signal::MagnetlinkRejected {
                reason: format!("already fetched: same info hash as the last fetched link {last}"),
            });
            Outcome::Rejected
        }
        Ok((Verdict::Accepted { community_id, clock, magnet_uri }, _)) => {
            shared.bus.publish(Signal::MagnetlinkAccepted { community_id, clock, magnet_uri: magnet_uri.clone() });
            Outcome::Accepted(clock, magnet_uri)
        }
        Ok((Verdict::Rejected(reason), _)) => {
            shared.bus.publish(Signal::MagnetlinkRejected { reason: reason.to_string() });
            Outcome::Rejected
        }
        Err(e) => Outcome::Failed(Box::new(kept), e.chain()),
    }
}

/// Whether two magnet links name the same torrent (info hash), whatever their peer hints.
fn same_torrent(a: &str, b: &str) -> bool {
    match (a.parse::<Magnet>(), b.parse::<Magnet>()) {
        (Ok(a), Ok(b)) => a.info_hash == b.info_hash,
        _ => false,
    }
}

/// The download's progress, as the backend reports it, into the status view; the `index-fetch`
/// and `data` fault points pause here.
fn progress_fn(shared: &Arc<Services>, view: &ProgressView, uri: &str) -> ProgressFn {
    let shared = Arc::clone(shared);
    let view = Arc::clone(view);
    let uri = uri.to_owned();
    Arc::new(move |p: FetchProgress| {
        let phase = match p.phase {
            FetchPhase::Index => DownloadPhase::Index,
            FetchPhase::Data => DownloadPhase::Data,
        };
        let pause_at = shared.config.pause_at.as_deref();
        if (p.phase == FetchPhase::Index && fault::is_at(pause_at, "index-fetch"))
            || (p.phase == FetchPhase::Data
                && p.bytes_done > 0
                && p.bytes_done < p.bytes_total
                && fault::is_at(pause_at, "data"))
        {
            fault::pause_blocking(&shared.bus, pause_at.unwrap_or_default());
        }
        view.send_replace(Some(DownloadView {
            magnet_uri: uri.clone(),
            phase,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        }));
    })
}

/// One download of `p`, whatever the backend: the backend that fetches the link (by form) opens
/// it, then the index, the archives not imported yet, their import, and the backend keeps
/// serving the link. A failed attempt is discarded by the backend (a cancelled one is kept to
/// resume).
async fn download(
    shared: Arc<Services>,
    id: CommunityId,
    p: PendingLink,
    progress: ProgressView,
    cancel: CancellationToken,
) -> Result<(), NodeError> {
    let started = Instant::now();
    let backend = crate::backend::backend_for(&shared.backends, &p.magnet_uri)
        .cloned()
        .ok_or_else(|| NodeError::NoBackendFor { link: p.magnet_uri.clone() })?;
    shared
        .bus
        .publish(Signal::DownloadingHistoryArchivesStarted { community_id: id, magnet_uri: p.magnet_uri.clone() });
    let view =
        |phase: DownloadPhase| DownloadView { magnet_uri: p.magnet_uri.clone(), phase, bytes_done: 0, bytes_total: 0 };
    progress.send_replace(Some(view(DownloadPhase::Metadata)));
    let member = &shared.config.member;
    // An encrypted community's wrapped index and archives open with the keys held.
    let ratchet_keys = shared.db(move |c, s| Ok(c.ratchet_key_material(s, &id)?)).await?;
    let options = FetchOptions {
        max_index_bytes: member.max_index_bytes,
        max_archive_bytes: member.max_archive_bytes,
        max_total_bytes: member.max_torrent_bytes,
        cancel: cancel.clone(),
        progress: Some(progress_fn(&shared, &progress, &p.magnet_uri)),
        ratchet_keys,
    };
    let mut fetch = backend.open(&id, &p.magnet_uri, options).await?;
    tracing::debug!(community_id = %id, elapsed_ms = started.elapsed().as_millis(), "download: link opened");
    let fetched = fetch_and_import(&shared, id, &p.magnet_uri, fetch.as_mut(), &progress, &cancel).await;
    let (archives, messages, bytes_received) = match fetched {
        Ok(done) => done,
        Err(e) => {
            if !matches!(e, NodeError::Cancelled)
                && let Err(discard) = fetch.discard().await
            {
                tracing::warn!(community_id = %id, error = %discard, "could not discard the fetch");
            }
            return Err(e);
        }
    };
    tracing::debug!(community_id = %id, elapsed_ms = started.elapsed().as_millis(), "download: imported and decoded");
    progress.send_replace(Some(view(DownloadPhase::Seed)));
    fetch.finish().await?;
    tracing::debug!(community_id = %id, elapsed_ms = started.elapsed().as_millis(), "download: seeding");
    finished(&shared, id, p, (archives, messages, bytes_received), started).await
}

/// The bookkeeping of a completed download, whatever the backend: the link is recorded as
/// fetched and no longer pending, and `DownloadingHistoryArchivesFinished` is raised.
async fn finished(
    shared: &Services,
    id: CommunityId,
    p: PendingLink,
    (archives, messages, bytes_received): (usize, usize, u64),
    started: Instant,
) -> Result<(), NodeError> {
    let uri = p.magnet_uri.clone();
    shared
        .db(move |c, s| {
            c.mark_magnetlink_fetched(s, &id, &uri)?;
            Ok(c.clear_pending_link(s, &id, &uri)?)
        })
        .await?;
    shared.bus.publish(Signal::DownloadingHistoryArchivesFinished {
        community_id: id,
        magnet_uri: p.magnet_uri,
        archives,
        messages,
        bytes_received,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(())
}

/// The index, the archives not imported yet (a set comparison: by id, and by window — a node
/// running both backends imported the window under the other backend's id), oldest first, their
/// import: `(archives, messages, bytes received)`. An entry the backend cannot fetch is reported
/// and skipped; it never stops the others.
async fn fetch_and_import(
    shared: &Arc<Services>,
    id: CommunityId,
    magnet_uri: &str,
    fetch: &mut dyn Fetch,
    progress: &ProgressView,
    cancel: &CancellationToken,
) -> Result<(usize, usize, u64), NodeError> {
    let view =
        |phase: DownloadPhase| DownloadView { magnet_uri: magnet_uri.to_owned(), phase, bytes_done: 0, bytes_total: 0 };
    fault::point(shared, "metadata").await;
    let index = match fetch.index().await {
        Ok(index) => index,
        Err(BackendError::Sealed { description }) => {
            return keep_unopened(shared, id, magnet_uri, fetch, &description).await;
        }
        Err(error) => return Err(error.into()),
    };
    // A link that opens replaces the record of an earlier one that did not.
    shared.db(move |c, s| Ok(c.clear_unopened_link(s, &id)?)).await?;
    let (done, windows): (BTreeSet<String>, BTreeSet<(u64, u64)>) = shared
        .db(move |c, s| {
            let records = c.archive_records(s, &id)?;
            let done = records.iter().filter(|r| r.imported || r.import_failures > 0);
            let ids = done.clone().map(|r| r.archive_id.clone()).collect();
            let windows = done.filter(|r| r.imported).map(|r| (r.from, r.to)).collect();
            Ok((ids, windows))
        })
        .await?;
    let mut missing: Vec<(&String, (u64, u64))> = index
        .iter()
        .map(|(k, a)| (k, (a.metadata.from, a.metadata.to)))
        .filter(|(k, window)| !done.contains(*k) && !windows.contains(window))
        .collect();
    missing.sort_by(|a, b| (a.1.0, a.0).cmp(&(b.1.0, b.0)));
    shared.bus.publish(Signal::HistoryArchiveIndexFetched {
        community_id: id,
        archives: index.len(),
        missing: missing.len(),
    });
    let mut good = Vec::with_capacity(missing.len());
    for (archive_id, window) in missing {
        match fetch.check(archive_id) {
            Ok(()) => good.push((archive_id.clone(), window)),
            Err(error) => {
                tracing::warn!(community_id = %id, %archive_id, %error, "index entry refused");
                shared.bus.publish(Signal::HistoryArchiveImportFailed {
                    community_id: id,
                    archive_id: archive_id.clone(),
                    error,
                });
            }
        }
    }
    progress.send_replace(Some(view(DownloadPhase::Data)));
    let ids: Vec<String> = good.iter().map(|(archive_id, _)| archive_id.clone()).collect();
    let received = if ids.is_empty() { Some(0) } else { fetch.fetch(&ids).await? };
    tracing::debug!(community_id = %id, archives = ids.len(), "download: archives fetched");
    let (mut archives, mut messages, mut read_bytes) = (0, 0, 0u64);
    for (archive_id, window) in good {
        if cancel.is_cancelled() {
            return Err(NodeError::Cancelled);
        }
        progress.send_replace(Some(view(DownloadPhase::Import)));
        if archives == 0 {
            fault::point(shared, "import").await;
        }
        let bytes = fetch.read(&archive_id).await?;
        read_bytes += bytes.len() as u64;
        if let Some(count) = import_one(shared, id, &archive_id, window, bytes).await? {
            archives += 1;
            messages += count;
        }
    }
    tracing::debug!(community_id = %id, archives, "download: archives imported");
    // The imports above decode as they go; this decodes what an earlier deferred import (a
    // previous version, or `chs archive import`) left pending, so that the history reads at once.
    shared.db(move |c, s| Ok(c.decode_pending_history(s, &id, usize::MAX)?)).await?;
    Ok((archives, messages, received.unwrap_or(read_bytes)))
}

/// A link whose `index` is wrapped with the community's hash-ratchet key (status-go's encrypted
/// communities, `manager_archive_file.go`): this node holds no such key, so the backend fetches
/// everything (`Fetch::keep_sealed`), the caller finishes the download (kept and served as it
/// is), and why nothing was imported is recorded for `chs node status`. Returns
/// `(0, 0, bytes received)`.
async fn keep_unopened(
    shared: &Arc<Services>,
    id: CommunityId,
    magnet_uri: &str,
    fetch: &mut dyn Fetch,
    description: &str,
) -> Result<(usize, usize, u64), NodeError> {
    let (bytes_received, kept) = fetch.keep_sealed().await?;
    let reason = format!(
        "the index is {description}; this node holds no hash-ratchet key that opens it (a status-go encrypted \
         community; `chs community ratchet-key add` gives one): {kept} bytes kept and seeded, not imported"
    );
    let link = chs_community::UnopenedLink {
        magnet_uri: magnet_uri.to_owned(),
        reason: reason.clone(),
        bytes: kept,
        recorded_at_ms: shared.clock.now_ms(),
    };
    shared.db(move |c, s| Ok(c.record_unopened_link(s, &id, &link)?)).await?;
    shared.bus.publish(Signal::HistoryArchivesNotImported {
        community_id: id,
        magnet_uri: magnet_uri.to_owned(),
        reason,
    });
    Ok((0, 0, bytes_received))
}

/// Imports one fetched archive (its encoded bytes, no padding) whose index entry covers
/// `window`, with `Communities::import_fetched_archive`; signals the outcome. `Some(messages)`
/// if imported, `None` if it failed (recorded with its error).
async fn import_one(
    shared: &Arc<Services>,
    id: CommunityId,
    archive_id: &str,
    window: (u64, u64),
    bytes: Vec<u8>,
) -> Result<Option<usize>, NodeError> {
    let (from, to) = window;
    let size = bytes.len() as u64;
    let entry =
        chs_community::MissingArchive { archive_id: archive_id.to_owned(), from, to, offset: 0, size, padding: 0 };
    let entry2 = entry.clone();
    let imported = shared
        .db(move |c, s| Ok(c.import_fetched_archive(s, &id, &entry2, &bytes, DecodeMode::Immediate)?))
        .await?
        .map(|report| report.messages)
        .map_err(|e| chs_community::error_chain(&e));
    match imported {
        Ok(count) => {
            shared.bus.publish(Signal::HistoryArchiveDownloaded {
                community_id: id,
                archive_id: entry.archive_id.clone(),
                from,
                to,
            });
            shared.bus.publish(Signal::ImportingHistoryArchiveMessages {
                community_id: id,
                archive_id: entry.archive_id,
                messages: count,
            });
            Ok(Some(count))
        }
        Err(error) => {
            shared.bus.publish(Signal::HistoryArchiveImportFailed {
                community_id: id,
                archive_id: entry.archive_id,
                error,
            });
            Ok(None)
        }
    }
}
