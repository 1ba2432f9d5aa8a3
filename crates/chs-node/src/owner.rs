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
use chs_torrent::{Magnet, STATUS_ANNOUNCE_LIST, TorrentFileOptions, TorrentMeta};
use tokio::sync::mpsc;

use crate::config::Policy;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::fault;
use crate::node::Shared;
use crate::signal::Signal;

/// What identifies the archive folder's content cheaply: (index length, index mtime, data length).
type Fingerprint = Option<(u64, SystemTime, u64)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let index = std::fs::metadata(dir.join(INDEX_FILE)).ok()?;
    let data = std::fs::metadata(dir.join(chs_archive::DATA_FILE)).ok()?;
    Some((index.len(), index.modified().ok()?, data.len()))
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    community: Community,
    mut trigger: mpsc::Receiver<()>,
    cancel: CancellationToken,
) {
    let id = community.id;
    let dir = shared.archive_dir(&id);
    let mut seeded: Fingerprint = None;
    // status-go seeds the existing torrent at start, which announces it again. A folder left by an
    // interrupted build is repaired first (as the next build would): its torrent would otherwise
    // carry bytes no index entry accounts for.
    if fingerprint(&dir).is_some() {
        let d = dir.clone();
        let piece_length = u64::from(shared.config.archive.piece_length);
        let repaired = tokio::task::spawn_blocking(move || chs_archive::repair_with(&d, piece_length))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))
            .and_then(|r| r.map_err(NodeError::from));
        match repaired {
            Ok(0) => {}
            Ok(removed) => {
                tracing::warn!(community_id = %id, removed, "repaired the archive folder of an interrupted build")
            }
            Err(e) => tracing::warn!(community_id = %id, error = %e.chain(), "cannot repair the archive folder"),
        }
        match seed(&shared, &id, &dir, true, Wait::Yes).await {
            Ok(Seeded::Done(fp)) => seeded = fp,
            Ok(Seeded::Busy) => {}
            Ok(Seeded::Unfinished(e)) | Err(e) => {
                tracing::warn!(community_id = %id, error = %e.chain(), "cannot seed existing archives");
            }
        }
    }
    let mut watch = tokio::time::interval(shared.config.archive.watch_interval);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    watch.tick().await;
    loop {
        let next = match cycle(&shared, &id, &dir, &mut seeded).await {
            Ok(next) => next,
            Err(e) => {
                shared.bus.publish(Signal::HistoryArchivesFailed { community_id: id.to_string(), error: e.chain() });
                shared.clock.now_secs().saturating_add(shared.config.archive.retry_after_failure.as_secs().max(1))
            }
        };
        tracing::debug!(community_id = %id, next_run_at = next, "archive task waiting");
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                t = trigger.recv() => {
                    if t.is_none() {
                        return;
                    }
                    break;
                }
                () = shared.clock.wait_until_ms(next.saturating_mul(1000)) => break,
                _ = watch.tick() => {
                    let now = fingerprint(&dir);
                    if now.is_some() && now != seeded {
                        // Another process's build holds the folder lock until its index is in
                        // place: try again on the next tick rather than hash a half-built folder.
                        match seed(&shared, &id, &dir, false, Wait::No).await {
                            Ok(Seeded::Done(fp)) => {
                                tracing::info!(community_id = %id, "archive folder changed: reseeded");
                                seeded = fp;
                            }
                            Ok(Seeded::Busy) => tracing::debug!(community_id = %id, "archive folder is being built: not yet"),
                            Ok(Seeded::Unfinished(e)) => {
                                // Left so by a build that died: kept as it is (the previous torrent
                                // stays seeded) until it changes again or the next build repairs it.
                                tracing::warn!(community_id = %id, error = %e.chain(), "archive folder changed but is not seeded");
                                seeded = now;
                            }
                            Err(e) => tracing::warn!(community_id = %id, error = %e.chain(), "reseeding failed"),
                        }
                    }
                }
            }
        }
    }
}

/// One planning step: build what is due, seed it; returns when to plan again (Unix seconds).
async fn cycle(shared: &Arc<Shared>, id: &CommunityId, dir: &Path, seeded: &mut Fingerprint) -> Result<u64, NodeError> {
    let id2 = *id;
    let (topics, info, first) = shared
        .db(move |c, s| {
            let topics = c.channel_topics(s, &id2)?;
            let info = c.archive_info(s, &id2)?;
            let first = s.first_timestamp_secs(&topics)?;
            Ok((topics, info, first))
        })
        .await?;
    let index_end = if fingerprint(dir).is_some() {
        let d = dir.to_owned();
        match tokio::task::spawn_blocking(move || chs_archive::last_archive_end(&d)).await {
            Ok(Ok(end)) => end,
            Ok(Err(e)) => {
                tracing::warn!(community_id = %id, error = %e, "archive index unreadable; the builder repairs it");
                None
            }
            Err(e) => return Err(NodeError::Task(e.to_string())),
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
    let plan = plan_catch_up(last, first, now, interval, policy).map_err(|e| NodeError::Task(e.to_string()))?;
    tracing::debug!(community_id = %id, ?plan, "archive plan");
    let Some(range) = plan.build_now else {
        return Ok(plan.next_run_at);
    };
    let options = BuildOptions {
        from: Some(range.from),
        interval,
        piece_length: u64::from(shared.config.archive.piece_length),
        ..BuildOptions::new(topics, range.to)
    };
    let db_path = shared.config.db_path();
    let build_dir: PathBuf = dir.to_owned();
    let mut hook = fault::BuildPause::new(&shared.bus, shared.config.pause_at.as_deref());
    let report = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
        // A second connection: reading in WAL mode does not block the capture task's writes.
        let store = Store::open(&db_path)?;
        Ok(Builder::new(build_dir, options).hook(&mut hook).run(&store)?)
    })
    .await
    .map_err(|e| NodeError::Task(e.to_string()))??;
    if !report.oversized.is_empty() {
        tracing::warn!(community_id = %id, count = report.oversized.len(), "messages larger than the archive cap were not archived");
    }
    fault::point(shared, "built").await;
    let end = report.archived_until.max(range.to);
    let id2 = *id;
    shared.db(move |c, s| Ok(c.save_last_archive_end_date(s, &id2, end)?)).await?;
    fault::point(shared, "end-saved").await;
    if report.archives.is_empty() {
        shared.bus.publish(Signal::NoHistoryArchivesCreated {
            community_id: id.to_string(),
            from: range.from,
            to: range.to,
        });
    } else {
        shared.bus.publish(Signal::HistoryArchivesCreated {
            community_id: id.to_string(),
            from: range.from,
            to: range.to,
            archive_ids: report.archives.iter().map(|a| a.id.clone()).collect(),
            messages: report.messages_archived,
        });
        match seed(shared, id, dir, true, Wait::Yes).await? {
            Seeded::Done(fp) => *seeded = fp,
            Seeded::Busy => {}
            Seeded::Unfinished(e) => return Err(e),
        }
    }
    Ok(plan.next_run_at)
}

/// Whether [`seed`] waits for a build of the folder (by this node or another process) to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Yes,
    No,
}

/// What [`seed`] did.
enum Seeded {
    /// The folder's torrent is seeded (and announced if asked); the folder's fingerprint, taken
    /// after seeding (librqbit may touch the files).
    Done(Fingerprint),
    /// A build holds the folder (only with [`Wait::No`]).
    Busy,
    /// The folder is not one a finished build leaves ([`NodeError::UnfinishedArchiveFolder`]).
    Unfinished(NodeError),
}

/// Makes the torrent of the folder, writes `<torrent_dir>/<id>.torrent`, seeds it in place of the
/// previous one and raises `HistoryArchivesSeeding` with the magnet link. When the folder's torrent
/// is the one already seeded, nothing changes and the signal is raised only if `announce` (at
/// start: status-go announces the existing torrent again). The folder is read under its shared
/// lock ([`FolderLock`]) and checked first, so the torrent is never made of `data` a build has
/// appended to and the `index` it has not rewritten yet, nor of an `index.tmp`.
async fn seed(
    shared: &Arc<Shared>,
    id: &CommunityId,
    dir: &Path,
    announce: bool,
    wait: Wait,
) -> Result<Seeded, NodeError> {
    let torrent = shared.torrent()?;
    let piece_length = shared.config.archive.piece_length;
    let torrent_dir = shared.config.torrent_dir();
    let d = dir.to_owned();
    let locked = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
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
    .await
    .map_err(|e| NodeError::Task(e.to_string()))??;
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
        shared.bus.publish(Signal::HistoryArchivesUnseeded { community_id: key.clone() });
    }
    if unchanged && !announce {
        return Ok(Seeded::Done(fp));
    }
    let trackers: Vec<String> = STATUS_ANNOUNCE_LIST.iter().map(|t| (*t).to_owned()).collect();
    let mut magnet = Magnet::for_meta(&meta, &trackers);
    if let Some(hint) = shared.config.torrent.announce_addr.or_else(|| torrent.local_peer_addr()) {
        magnet = magnet.with_peer(hint);
    }
    shared.bus.publish(Signal::HistoryArchivesSeeding {
        community_id: key,
        magnet_uri: magnet.to_string(),
        control_node: true,
    });
    Ok(Seeded::Done(fp))
}

/// How long to wait before retrying after `attempt` failures.
pub(crate) fn backoff(first: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
}
