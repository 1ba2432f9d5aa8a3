//! The member pipeline of one community: magnetlink messages → community verdict → debounce
//! (only the newest link of a burst is acted on) → index → missing archives only → canonical
//! import → bookkeeping → seed. Failures are retried with backoff; an accepted link survives a
//! restart (`pending`), and already imported archives are never fetched or lost again.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chs_archive::format::{decode_archive, decode_index};
use chs_community::{ArchiveImport, Community, CommunityId, DecodeMode, PendingLink, Strategy, Verdict};
use chs_torrent::{DownloadOptions, Magnet, Phase, Progress, ProgressFn};
use chs_waku::{ContentFilter, MessageReceiver, ReceivedMessage};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::system_now_ms;
use crate::error::NodeError;
use crate::fault;
use crate::node::{DownloadPhase, DownloadView, Shared};
use crate::owner::backoff;
use crate::signal::Signal;

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

pub(crate) fn receiver(shared: &Shared, community: &Community) -> Result<MessageReceiver, NodeError> {
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
        let mut link = crate::node::lock(&self.link);
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
        crate::node::lock(&self.link).take().map(|(_, message)| message)
    }
}

/// The cheap stage: drains the community's receive queue in batches, checks each message on the
/// blocking pool without the database (topic, decryption, signature by the community key:
/// [`chs_community::Communities::check_magnetlink`]), drops what fails (counted; signals
/// aggregated past a budget) and replays of links already passed, and offers the newest valid
/// link to [`run`] through `latest` (one slot: an older link is stale for the verdict anyway).
async fn screen(
    shared: Arc<Shared>,
    id: CommunityId,
    mut rx: MessageReceiver,
    latest: Arc<Slot>,
    cancel: CancellationToken,
) {
    let mut seen: VecDeque<(u64, String)> = VecDeque::with_capacity(SEEN_LINKS);
    let mut drops = Drops::new(id);
    loop {
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < SCREEN_BATCH {
            match rx.try_recv() {
                Some(m) => batch.push(m),
                None => break,
            }
        }
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
    shared: &Arc<Shared>,
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

    fn rejected(&mut self, shared: &Shared, reason: String) {
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
    fn flush(&mut self, shared: &Shared) {
        if self.rejected > 0 || self.lost > 0 {
            tracing::info!(community_id = %self.id, rejected = self.rejected, lost = self.lost, last_reason = %self.last_reason, "magnetlink flood");
            shared.bus.publish(Signal::MagnetlinksDropped {
                community_id: self.id.to_string(),
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

struct Running {
    pending: PendingLink,
    attempt: u32,
    cancel: CancellationToken,
    handle: JoinHandle<Result<(), NodeError>>,
}

async fn join(running: &mut Option<Running>) -> Result<Result<(), NodeError>, tokio::task::JoinError> {
    match running {
        Some(r) => (&mut r.handle).await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn run(shared: Arc<Shared>, community: Community, rx: MessageReceiver, cancel: CancellationToken) {
    let id = community.id;
    let latest = Arc::new(Slot::default());
    let screening = cancel.child_token();
    let mut screen_task = tokio::spawn(screen(Arc::clone(&shared), id, rx, Arc::clone(&latest), screening.clone()));
    let _stop_screening = screening.drop_guard();
    let debounce = shared.config.member.debounce;
    let id2 = id;
    let mut pending: Option<(PendingLink, u32)> = match shared.db(move |c, s| Ok(c.pending_link(s, &id2)?)).await {
        Ok(p) => p.map(|p| (p, 0)),
        Err(e) => {
            tracing::error!(community_id = %id, error = %e.chain(), "cannot read the pending magnetlink");
            None
        }
    };
    // A link accepted before a restart is resumed at once.
    let mut deadline: Option<Instant> = pending.as_ref().map(|_| Instant::now());
    let mut running: Option<Running> = None;
    // Messages whose verdict could not be reached (database unavailable), with the number of
    // their next attempt, judged again at `verdict_retry_at`.
    let mut deferred: Vec<(ReceivedMessage, u32)> = Vec::new();
    let mut verdict_retry_at: Option<Instant> = None;
    loop {
        // Messages to judge after this wake-up: a new one, or the deferred ones.
        let mut to_judge: Vec<(ReceivedMessage, u32)> = Vec::new();
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let retry_wake = verdict_retry_at.unwrap_or(wake);
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                if let Some(r) = running.take() {
                    r.cancel.cancel();
                    let _ = r.handle.await;
                }
                return;
            }
            result = join(&mut running) => {
                let Some(r) = running.take() else { continue };
                let outcome = result.unwrap_or_else(|e| Err(NodeError::Task(e.to_string())));
                match outcome {
                    Ok(()) => {}
                    Err(NodeError::Cancelled) => {}
                    Err(e) => {
                        let attempt = r.attempt + 1;
                        let newer = pending.is_some();
                        let retry = !newer && attempt < shared.config.member.max_attempts;
                        let delay = if retry { backoff(shared.config.member.retry_backoff, attempt) } else { Duration::ZERO };
                        shared.bus.publish(Signal::HistoryArchiveDownloadFailed {
                            community_id: id.to_string(),
                            magnet_uri: r.pending.magnet_uri.clone(),
                            error: e.chain(),
                            attempt,
                            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        });
                        if retry {
                            pending = Some((r.pending, attempt));
                            deadline = Some(Instant::now() + delay);
                        }
                    }
                }
                shared.set_download(&id.to_string(), None);
            }
            () = tokio::time::sleep_until(retry_wake.into()), if verdict_retry_at.is_some() => {
                verdict_retry_at = None;
                to_judge = std::mem::take(&mut deferred);
            }
            () = latest.ready.notified() => {
                if let Some(message) = latest.take() {
                    to_judge.push((message, 1));
                }
            }
            _ = &mut screen_task => {
                // The cheap stage ended: the Waku node stopped.
                if let Some(r) = running.take() {
                    r.cancel.cancel();
                    let _ = r.handle.await;
                }
                return;
            }
            () = tokio::time::sleep_until(wake.into()), if deadline.is_some() && running.is_none() => {
                deadline = None;
                if let Some((p, attempt)) = pending.take() {
                    let download_cancel = cancel.child_token();
                    let handle = tokio::spawn(download(Arc::clone(&shared), id, p.clone(), download_cancel.clone()));
                    running = Some(Running { pending: p, attempt, cancel: download_cancel, handle });
                }
            }
        }
        for (message, attempt) in to_judge {
            let (clock, magnet_uri) = match verdict(&shared, message).await {
                Outcome::Accepted(clock, uri) => (clock, uri),
                Outcome::Rejected => continue,
                Outcome::Failed(message, error) => {
                    defer(&shared, &id, &mut deferred, &mut verdict_retry_at, *message, attempt, &error);
                    continue;
                }
            };
            let same_running = running.as_ref().is_some_and(|r| r.pending.magnet_uri == magnet_uri);
            let same_pending = pending.as_ref().is_some_and(|(p, _)| p.magnet_uri == magnet_uri);
            if same_running || same_pending {
                continue;
            }
            let p = PendingLink { magnet_uri, clock };
            let (id2, p2) = (id, p.clone());
            if let Err(e) = shared.db(move |c, s| Ok(c.save_pending_link(s, &id2, &p2, system_now_ms())?)).await {
                tracing::error!(community_id = %id, error = %e.chain(), "cannot record the pending magnetlink");
            }
            pending = Some((p, 0));
            deadline = Some(Instant::now() + debounce);
            if let Some(r) = &running {
                tracing::info!(community_id = %id, "newer magnetlink: cancelling the current download");
                r.cancel.cancel();
            }
        }
    }
}

/// Keeps a message whose verdict failed for a later attempt (`retry_backoff`, doubling, at most
/// 60 s apart), or gives up on it after `max_attempts` (the owner announces again when peers
/// subscribe or it restarts).
fn defer(
    shared: &Shared,
    id: &CommunityId,
    deferred: &mut Vec<(ReceivedMessage, u32)>,
    retry_at: &mut Option<Instant>,
    message: ReceivedMessage,
    attempt: u32,
    error: &str,
) {
    let retry = attempt < shared.config.member.max_attempts;
    let delay = backoff(shared.config.member.retry_backoff, attempt).min(Duration::from_secs(60));
    shared.bus.publish(Signal::MagnetlinkVerdictFailed {
        community_id: id.to_string(),
        error: error.to_owned(),
        attempt,
        retry_in_ms: if retry { u64::try_from(delay.as_millis()).unwrap_or(u64::MAX) } else { 0 },
    });
    if !retry {
        return;
    }
    if deferred.len() == MAX_DEFERRED {
        deferred.remove(0);
    }
    deferred.push((message, attempt + 1));
    let at = Instant::now() + delay;
    *retry_at = Some(retry_at.map_or(at, |t| t.min(at)));
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

/// Keep at most this many messages whose verdict failed (the newest win).
const MAX_DEFERRED: usize = 16;

/// The community manager's verdict.
async fn verdict(shared: &Arc<Shared>, message: ReceivedMessage) -> Outcome {
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
            shared.bus.publish(Signal::MagnetlinkAccepted {
                community_id: community_id.to_string(),
                clock,
                magnet_uri: magnet_uri.clone(),
            });
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

fn progress_fn(shared: &Arc<Shared>, key: &str, uri: &str) -> ProgressFn {
    let shared = Arc::clone(shared);
    let key = key.to_owned();
    let uri = uri.to_owned();
    Arc::new(move |p: Progress| {
        let phase = match p.phase {
            Phase::Files => DownloadPhase::Index,
            Phase::Ranges => DownloadPhase::Data,
        };
        let pause_at = shared.config.pause_at.as_deref();
        if (p.phase == Phase::Files && fault::is_at(pause_at, "index-fetch"))
            || (p.phase == Phase::Ranges
                && p.bytes_done > 0
                && p.bytes_done < p.bytes_total
                && fault::is_at(pause_at, "data"))
        {
            fault::pause_blocking(&shared.bus, pause_at.unwrap_or_default());
        }
        shared.set_download(
            &key,
            Some(DownloadView { magnet_uri: uri.clone(), phase, bytes_done: p.bytes_done, bytes_total: p.bytes_total }),
        );
    })
}

/// Only our own kind of torrent, checked from its metadata before anything is written: folder
/// named after the community, files exactly `data` and `index`, torrent and `index` sizes capped
/// (`member.max_torrent_bytes`, `member.max_index_bytes`), so a hostile index is never fetched
/// nor read into memory.
fn validator(key: String, max_bytes: u64, max_index_bytes: u64) -> chs_torrent::ValidateFn {
    Arc::new(move |meta: &chs_torrent::TorrentMeta| {
        if meta.name() != key {
            return Err(format!("torrent name {:?} is not the community id", meta.name()));
        }
        let paths: BTreeSet<String> = meta.files().iter().map(chs_torrent::FileEntry::display_path).collect();
        if paths != BTreeSet::from(["data".to_owned(), "index".to_owned()]) {
            return Err(format!("files {paths:?} are not exactly `data` and `index`"));
        }
        if meta.total_length() > max_bytes {
            return Err(format!("{} bytes exceed member.max_torrent_bytes = {max_bytes}", meta.total_length()));
        }
        let index_len = meta.file_index("index").map_or(0, |i| meta.files()[i].length);
        if index_len > max_index_bytes {
            return Err(format!("an index of {index_len} bytes exceeds member.max_index_bytes = {max_index_bytes}"));
        }
        Ok(())
    })
}

fn hostile(magnet: &Magnet, reason: impl Into<String>) -> NodeError {
    NodeError::HostileTorrent { info_hash: magnet.info_hash.to_hex(), reason: reason.into() }
}

/// One download of `p`: see the module docs.
async fn download(
    shared: Arc<Shared>,
    id: CommunityId,
    p: PendingLink,
    cancel: CancellationToken,
) -> Result<(), NodeError> {
    let started = Instant::now();
    let key = id.to_string();
    let magnet: Magnet = p.magnet_uri.parse().map_err(|e: chs_torrent::Error| NodeError::HostileTorrent {
        info_hash: String::new(),
        reason: format!("bad magnet link: {e}"),
    })?;
    let torrent = shared.torrent()?.clone();
    shared.bus.publish(Signal::DownloadingHistoryArchivesStarted {
        community_id: key.clone(),
        magnet_uri: p.magnet_uri.clone(),
    });
    let view =
        |phase: DownloadPhase| DownloadView { magnet_uri: p.magnet_uri.clone(), phase, bytes_done: 0, bytes_total: 0 };
    shared.set_download(&key, Some(view(DownloadPhase::Metadata)));
    let config = &shared.config;
    let options = DownloadOptions {
        peers: config.torrent.peers.clone(),
        metadata_timeout: config.torrent.metadata_timeout,
        stall_timeout: config.torrent.stall_timeout,
        cancel: cancel.clone(),
        progress: Some(progress_fn(&shared, &key, &p.magnet_uri)),
        validate: Some(validator(key.clone(), config.member.max_torrent_bytes, config.member.max_index_bytes)),
        ..DownloadOptions::default()
    };
    let download = match torrent.download(&key, &magnet, &config.archive_root(), options).await {
        Err(chs_torrent::Error::Rejected(reason)) => return Err(hostile(&magnet, reason)),
        other => other?,
    };
    // The files arrive in a staging folder; the seeded copy is untouched until `finish` swaps
    // it in. A failed attempt deletes the staging folder (a cancelled one keeps it to resume).
    let fetched = fetch_and_import(&shared, id, &p.magnet_uri, &download, &cancel).await;
    let (archives, messages, bytes_received) = match fetched {
        Ok(done) => done,
        Err(e) => {
            if !matches!(e, NodeError::Cancelled)
                && let Err(discard) = download.discard().await
            {
                tracing::warn!(community_id = %key, error = %discard, "could not discard the staging folder");
            }
            return Err(e);
        }
    };
    shared.set_download(&key, Some(view(DownloadPhase::Seed)));
    download.finish().await?;
    let (id2, uri) = (id, p.magnet_uri.clone());
    shared
        .db(move |c, s| {
            c.mark_magnetlink_fetched(s, &id2, &uri)?;
            Ok(c.clear_pending_link(s, &id2, &uri)?)
        })
        .await?;
    shared.bus.publish(Signal::DownloadingHistoryArchivesFinished {
        community_id: key,
        magnet_uri: p.magnet_uri,
        archives,
        messages,
        bytes_received,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(())
}

/// The index, the missing archives' ranges, their import: `(archives, messages, bytes received)`.
async fn fetch_and_import(
    shared: &Arc<Shared>,
    id: CommunityId,
    magnet_uri: &str,
    download: &chs_torrent::Download,
    cancel: &CancellationToken,
) -> Result<(usize, usize, u64), NodeError> {
    let key = id.to_string();
    let view =
        |phase: DownloadPhase| DownloadView { magnet_uri: magnet_uri.to_owned(), phase, bytes_done: 0, bytes_total: 0 };
    let max_archive_bytes = shared.config.member.max_archive_bytes;
    fault::point(shared, "metadata").await;
    let meta = download.meta().clone();
    let data_len = meta.file_index("data").map_or(0, |i| meta.files()[i].length);

    let index_bytes = download.fetch_index().await?;
    let index = decode_index(&index_bytes)?;
    let id2 = id;
    let index2 = index.clone();
    // What to fetch and import: every archive not imported yet, including those recorded as
    // downloaded by a run that died before importing them (a failed import is not retried here:
    // the same bytes would fail again; it stays recorded with its error).
    let missing = shared
        .db(move |c, s| {
            let done: BTreeSet<String> = c
                .archive_records(s, &id2)?
                .into_iter()
                .filter(|r| r.imported || r.import_failures > 0)
                .map(|r| r.archive_id)
                .collect();
            Ok(chs_community::missing_archives(&index2, &done, Strategy::All))
        })
        .await?;
    shared.bus.publish(Signal::HistoryArchiveIndexFetched {
        community_id: key.clone(),
        archives: index.archives.len(),
        missing: missing.len(),
    });
    let (good, bad): (Vec<_>, Vec<_>) = missing.into_iter().partition(|m| {
        m.size > 0
            && m.padding < m.size
            && m.size - m.padding <= max_archive_bytes
            && m.offset.checked_add(m.size).is_some_and(|end| end <= data_len)
    });
    for m in bad {
        // A bogus index entry is reported and skipped; it never stops the others.
        let error = if m.size.saturating_sub(m.padding) > max_archive_bytes {
            format!(
                "entry of {} bytes exceeds member.max_archive_bytes = {max_archive_bytes}",
                m.size.saturating_sub(m.padding)
            )
        } else {
            format!(
                "entry offset {} size {} padding {} does not fit `data` ({data_len} bytes)",
                m.offset, m.size, m.padding
            )
        };
        tracing::warn!(community_id = %key, archive_id = %m.archive_id, %error, "index entry refused");
        shared.bus.publish(Signal::HistoryArchiveImportFailed {
            community_id: key.clone(),
            archive_id: m.archive_id.clone(),
            error,
        });
    }
    let ranges: Vec<_> = good.iter().map(|m| m.offset..m.offset + m.size).collect();
    let mut bytes_received = 0;
    if !ranges.is_empty() {
        bytes_received = download.fetch_ranges("data", &ranges).await?.bytes_received;
    }
    let mut archives = 0;
    let mut messages = 0;
    for m in good {
        if cancel.is_cancelled() {
            return Err(NodeError::Cancelled);
        }
        shared.set_download(&key, Some(view(DownloadPhase::Import)));
        if archives == 0 {
            fault::point(shared, "import").await;
        }
        let bytes = download.read_range("data", m.offset..m.offset + m.size - m.padding).await?;
        let archive_id = m.archive_id.clone();
        let (id2, key2) = (id, key.clone());
        let imported = shared
            .db(move |c, s| {
                // The import records the archive as downloaded and imported in one transaction, so a
                // crash leaves it either imported or still missing (never recorded-but-lost).
                let result = decode_archive(&bytes).map_err(NodeError::from).and_then(|archive| {
                    let metadata = archive.metadata.unwrap_or_default();
                    if metadata.from != m.from || metadata.to != m.to {
                        return Err(NodeError::HostileTorrent {
                            info_hash: String::new(),
                            reason: format!(
                                "archive {archive_id} covers [{}, {}) but its index entry says [{}, {})",
                                metadata.from, metadata.to, m.from, m.to
                            ),
                        });
                    }
                    let import =
                        ArchiveImport { archive_id: &archive_id, metadata: &metadata, messages: &archive.messages };
                    Ok(c.import_archive_with(s, &id2, &import, DecodeMode::Deferred)?)
                });
                match result {
                    Ok(report) => Ok(Ok(report.messages)),
                    Err(e) => {
                        c.record_downloaded_archive(s, &id2, &archive_id, m.from, m.to)?;
                        c.record_import_failure(s, &id2, &archive_id, &e.chain())?;
                        Ok(Err((key2, archive_id, e.chain())))
                    }
                }
            })
            .await?;
        match imported {
            Ok(count) => {
                archives += 1;
                messages += count;
                shared.bus.publish(Signal::HistoryArchiveDownloaded {
                    community_id: key.clone(),
                    archive_id: m.archive_id.clone(),
                    from: m.from,
                    to: m.to,
                });
                shared.bus.publish(Signal::ImportingHistoryArchiveMessages {
                    community_id: key.clone(),
                    archive_id: m.archive_id,
                    messages: count,
                });
            }
            Err((community_id, archive_id, error)) => {
                shared.bus.publish(Signal::HistoryArchiveImportFailed { community_id, archive_id, error });
            }
        }
    }
    // Who wrote what: decoded now so that the history reads at once.
    let id2 = id;
    shared.db(move |c, s| Ok(c.decode_pending_history(s, &id2, usize::MAX)?)).await?;
    Ok((archives, messages, bytes_received))
}
