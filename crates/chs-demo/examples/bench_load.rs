//! `cargo xtask bench load`: (1) one owner node controlling N communities (default 100) builds
//! and seeds all their archives; (2) M members (default 50) download one community at once, the
//! second half also given the first half's torrent addresses so that members re-seed to each
//! other. Real Waku relay and BitTorrent over TCP on loopback, real SQLite files, all nodes in
//! this process. Prints completion ratio, times, the owner's upload bytes and peak RSS; the
//! baseline for (2) is the same run's time for a single member.
//!
//! Every wait has a deadline (`CHS_BENCH_DEADLINE_S` seconds per phase, default 300; node start,
//! status and shutdown calls have their own). When one passes, when every community not seeded
//! has had its archive cycle fail (the owner retries only when its clock moves, and the bench's
//! clock is frozen), or when every unfinished member has given up, the bench says on stderr which
//! communities or members are stuck and in what state, and exits with status 1 (after printing
//! the figures if the download round ran).
//! `CHS_BENCH_TRACE=1` prints every member signal as it happens.
//!
//! `cargo run --release -p chs-demo --example bench_load [communities] [members]`
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chs_community::{Communities, CommunityId, CreateOptions};
use chs_demo::{CHANNELS, create_owner, generate_history, join_member};
use chs_node::{Config, ManualClock, Node, Signal, SignalBus};
use chs_store::Store;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

const HOUR_MS: u64 = 3_600_000;
const WEEK_MS: u64 = 7 * 24 * HOUR_MS;
/// Bound on one node start, one status query or listen-address query.
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// Bound on shutting down a set of nodes (in parallel).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(120);
/// When every unfinished member has given up, how long to wait for one to start again (a member
/// that failed because a newer link arrived starts that one at once) before ending the round.
const GIVE_UP_GRACE: Duration = Duration::from_secs(10);
/// Stuck communities or members listed one by one in a report; the rest are counted.
const REPORT_LINES: usize = 20;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Deadline of each phase (owner seeding, each download round).
fn phase_deadline() -> Duration {
    let secs = std::env::var("CHS_BENCH_DEADLINE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    Duration::from_secs(secs)
}

/// Why the bench stopped before its end; printed on stderr, exit status 1.
struct Stuck(String);

/// `fut`, or [`Stuck`] naming `what` if it takes longer than `limit`.
async fn within<T>(limit: Duration, what: impl Into<String>, fut: impl Future<Output = T>) -> Result<T, Stuck> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Stuck(format!("{} did not return within {limit:?}", what.into())))
}

/// A signal shortened for a report line.
fn describe(s: &Signal) -> String {
    let text = match s {
        Signal::HistoryArchiveDownloadFailed { error, attempt, retry_in_ms, .. } => {
            format!("HistoryArchiveDownloadFailed attempt {attempt}, retry in {retry_in_ms} ms: {error}")
        }
        Signal::HistoryArchiveIndexFetched { archives, missing, .. } => {
            format!("HistoryArchiveIndexFetched ({archives} archives, {missing} missing)")
        }
        Signal::HistoryArchiveDownloaded { archive_id, .. } => format!("HistoryArchiveDownloaded {archive_id}"),
        Signal::ImportingHistoryArchiveMessages { archive_id, messages, .. } => {
            format!("ImportingHistoryArchiveMessages {archive_id} ({messages} messages)")
        }
        Signal::MagnetlinkAccepted { clock, .. } => format!("MagnetlinkAccepted clock {clock}"),
        Signal::DownloadingHistoryArchivesStarted { .. } => "DownloadingHistoryArchivesStarted".to_owned(),
        Signal::HistoryArchivesFailed { error, .. } => format!("HistoryArchivesFailed: {error}"),
        Signal::HistoryArchivesCreated { archive_ids, messages, .. } => {
            format!("HistoryArchivesCreated ({} archives, {messages} messages)", archive_ids.len())
        }
        other => format!("{other:?}"),
    };
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Shuts `nodes` down in parallel; names those that do not stop within [`SHUTDOWN_DEADLINE`].
async fn shutdown_all(nodes: Vec<(String, Node)>) -> Result<(), Stuck> {
    let count = nodes.len();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut left: Vec<String> = Vec::new();
    for (name, node) in nodes {
        left.push(name.clone());
        tasks.spawn(async move {
            node.shutdown().await;
            name
        });
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
    while !left.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(name))) => left.retain(|n| *n != name),
            Ok(Some(Err(e))) => return Err(Stuck(format!("a node shutdown task failed: {e}"))),
            Ok(None) => break,
            Err(_) => {
                return Err(Stuck(format!(
                    "{} of {count} nodes did not shut down within {SHUTDOWN_DEADLINE:?}: {}",
                    left.len(),
                    left.join(", ")
                )));
            }
        }
    }
    eprintln!("shutdown of {count} node(s): {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// What the bench knows of one member.
#[derive(Default)]
struct MemberState {
    finished: bool,
    /// Failed and not retried (`retry_in_ms == 0`): only a newer magnetlink would restart it.
    gave_up: bool,
    failures: u32,
    lagged: u64,
    /// Last signal (shortened) and when (seconds since the round started).
    last: Option<(f64, String)>,
    /// When (seconds into the round) the member's node had started, first accepted the link,
    /// first started downloading, first fetched the index, and finished.
    started: Option<f64>,
    accepted: Option<f64>,
    downloading: Option<f64>,
    indexed: Option<f64>,
    done: Option<f64>,
}

/// Process CPU seconds (user + system) so far, from `/proc/self/stat` (USER_HZ = 100).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `median / max` of the members' times of one step, in seconds ("-" when none reached it).
fn spread(times: impl Iterator<Item = Option<f64>>) -> String {
    let mut v: Vec<f64> = times.flatten().collect();
    if v.is_empty() {
        return "-".to_owned();
    }
    v.sort_by(f64::total_cmp);
    format!("{:.2} / {:.2} s", v[v.len() / 2], v[v.len() - 1])
}

enum MemberEvent {
    Signal(Box<Signal>),
    Lagged(u64),
}

/// The result of one download round.
struct Round {
    done: usize,
    secs: f64,
    nodes: Vec<(String, Node)>,
    /// The stuck report if not every member finished.
    stuck: Option<Stuck>,
    /// When each step was reached, `median / max` over the members, and the process's CPU.
    breakdown: String,
    /// CPU seconds the whole process (owner and members) used in the round.
    cpu: f64,
}

async fn download_round(
    owner_addr: &str,
    root: &std::path::Path,
    id: &CommunityId,
    clock: &ManualClock,
    members: usize,
) -> Result<Round, Stuck> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let half = members.div_ceil(2);
    let mut first_half_peers = Vec::new();
    let trace = std::env::var_os("CHS_BENCH_TRACE").is_some();
    let t = Instant::now();
    let cpu0 = cpu_secs();
    let deadline = tokio::time::Instant::now() + phase_deadline();
    // The members start at once (the first half, then the second half given the first half's
    // torrent addresses), as `members` people opening their app together would: started one
    // after the other, the last would start seconds after the first and the round would time
    // the start-up queue, not the delivery.
    let mut slots: Vec<Option<Node>> = (0..members).map(|_| None).collect();
    let mut started_at: Vec<Option<f64>> = vec![None; members];
    for part in [0..half, half..members] {
        let mut starting = tokio::task::JoinSet::new();
        for i in part {
            let dir = root.join(format!("member-{i}"));
            join_member(&dir, id).unwrap();
            let mut config = Config::local(&dir);
            config.waku.bootstrap = vec![owner_addr.to_owned()];
            config.torrent.stall_timeout = Duration::from_secs(30);
            if i >= half {
                config.torrent.peers.clone_from(&first_half_peers);
            }
            let bus = SignalBus::default();
            let mut rx = bus.subscribe();
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let event = match rx.recv().await {
                        Ok(s) => {
                            if trace {
                                eprintln!("{:>8.3}s member-{i}: {s:?}", t.elapsed().as_secs_f64());
                            }
                            MemberEvent::Signal(Box::new(s))
                        }
                        Err(RecvError::Lagged(n)) => MemberEvent::Lagged(n),
                        Err(RecvError::Closed) => return,
                    };
                    if tx.send((i, t.elapsed().as_secs_f64(), event)).is_err() {
                        return;
                    }
                }
            });
            let clock = clock.clone();
            starting.spawn(async move {
                let started = within(
                    CALL_DEADLINE,
                    format!("member-{i}: Node::start_with_bus"),
                    Node::start_with_bus(config, Arc::new(clock), bus),
                )
                .await;
                (i, started)
            });
        }
        while let Some(joined) = starting.join_next().await {
            let (i, started) = joined.map_err(|e| Stuck(format!("a member start task failed: {e}")))?;
            let node = started?.unwrap();
            started_at[i] = Some(t.elapsed().as_secs_f64());
            if i < half {
                first_half_peers.extend(node.handle().torrent_addr());
            }
            slots[i] = Some(node);
        }
    }
    let all_started = t.elapsed().as_secs_f64();
    let nodes: Vec<(String, Node)> =
        slots.into_iter().enumerate().map(|(i, n)| (format!("member-{i}"), n.expect("every member started"))).collect();
    drop(tx);
    let mut states: Vec<MemberState> =
        started_at.iter().map(|&started| MemberState { started, ..MemberState::default() }).collect();
    let mut ended = String::new();
    let mut all_gave_up_at: Option<tokio::time::Instant> = None;
    while !states.iter().all(|s| s.finished) {
        let until = if states.iter().any(|s| !s.finished && !s.gave_up) {
            all_gave_up_at = None;
            deadline
        } else {
            deadline.min(*all_gave_up_at.get_or_insert_with(|| tokio::time::Instant::now() + GIVE_UP_GRACE))
        };
        let (i, at, event) = match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                ended = "(their signal buses closed)".to_owned();
                break;
            }
            Err(_) if until < deadline => {
                ended = format!("and gave up (failed, not retried, nothing new for {GIVE_UP_GRACE:?})");
                break;
            }
            Err(_) => {
                ended = format!("within the deadline of {:?}", phase_deadline());
                break;
            }
        };
        let state = &mut states[i];
        match event {
            MemberEvent::Lagged(n) => state.lagged += n,
            MemberEvent::Signal(s) => {
                match &*s {
                    Signal::DownloadingHistoryArchivesFinished { .. } => {
                        state.finished = true;
                        state.gave_up = false;
                        state.done.get_or_insert(at);
                    }
                    Signal::MagnetlinkAccepted { .. } => {
                        state.accepted.get_or_insert(at);
                    }
                    Signal::HistoryArchiveIndexFetched { .. } => {
                        state.indexed.get_or_insert(at);
                    }
                    Signal::HistoryArchiveDownloadFailed { retry_in_ms, .. } => {
                        state.failures += 1;
                        state.gave_up = *retry_in_ms == 0;
                    }
                    Signal::DownloadingHistoryArchivesStarted { .. } => {
                        state.gave_up = false;
                        state.downloading.get_or_insert(at);
                    }
                    // Rejections of links already fetched (re-announcements) say nothing new.
                    Signal::MagnetlinkRejected { .. } => continue,
                    _ => {}
                }
                state.last = Some((at, describe(&s)));
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let done = states.iter().filter(|s| s.finished).count();
    let breakdown = format!(
        "nodes started {} (all {all_started:.2} s); link accepted {}; download started {}; index fetched {}; done {}; process CPU {cpu:.1} s over {secs:.1} s",
        spread(states.iter().map(|s| s.started)),
        spread(states.iter().map(|s| s.accepted)),
        spread(states.iter().map(|s| s.downloading)),
        spread(states.iter().map(|s| s.indexed)),
        spread(states.iter().map(|s| s.done)),
    );
    let stuck = if done < members {
        let left = members - done;
        let mut report = format!("{left} of {members} member(s) did not finish {ended} ({secs:.1} s into the round):");
        let unfinished = states.iter().zip(&nodes).enumerate().filter(|(_, (s, _))| !s.finished);
        for (n, (i, (state, (_, node)))) in unfinished.enumerate() {
            if n == REPORT_LINES {
                report.push_str(&format!("\n  … and {} more", left - REPORT_LINES));
            }
            if n >= REPORT_LINES {
                continue;
            }
            let (at, last) = state.last.clone().unwrap_or((0.0, "no signal at all".to_owned()));
            report.push_str(&format!(
                "\n  member-{i}{}: {} failure(s){}; last signal at {at:.1} s: {last}",
                if i < half { "" } else { " (given first-half peers)" },
                state.failures,
                if state.lagged > 0 { format!(", {} signal(s) lost to lag", state.lagged) } else { String::new() },
            ));
            match tokio::time::timeout(Duration::from_secs(5), node.handle().status()).await {
                Ok(Ok(list)) => {
                    for c in list.iter().filter(|c| c.id == *id) {
                        let download = c.download.as_ref().map_or("none".to_owned(), |d| {
                            format!("phase {} {}/{} bytes", d.phase, d.bytes_done, d.bytes_total)
                        });
                        report.push_str(&format!(
                            "\n      download: {download}; pending link: {}; seeding: {}; imported {} of {} archives",
                            if c.pending_magnetlink.is_some() { "yes" } else { "no" },
                            c.seeding
                                .as_ref()
                                .map_or("no".to_owned(), |s| format!("{}/{} bytes", s.have_bytes, s.total_bytes)),
                            c.imported_archives,
                            c.downloaded_archives,
                        ));
                    }
                }
                Ok(Err(e)) => report.push_str(&format!("\n      status failed: {e}")),
                Err(_) => report.push_str("\n      status did not answer within 5 s"),
            }
        }
        Some(Stuck(report))
    } else {
        None
    };
    Ok(Round { done, secs, nodes, stuck, breakdown, cpu })
}

/// Phase (1): starts the owner and waits until every community is seeded. Fails at once if a
/// build fails (the owner retries only when its clock moves, and the bench's clock is frozen).
async fn seed_all(
    owner_dir: &std::path::Path,
    clock: &ManualClock,
    ids: &[CommunityId],
    names: &HashMap<String, String>,
) -> Result<(Node, f64), Stuck> {
    let communities = ids.len();
    let bus = SignalBus::default();
    let mut rx = bus.subscribe();
    let t = Instant::now();
    let owner = within(
        CALL_DEADLINE,
        "owner: Node::start_with_bus",
        Node::start_with_bus(Config::local(owner_dir), Arc::new(clock.clone()), bus),
    )
    .await?
    .unwrap();
    let deadline = tokio::time::Instant::now() + phase_deadline();
    // Last signal (shortened) per community; seeded and failed ones.
    let mut last: HashMap<String, String> = HashMap::new();
    let mut seeded: HashSet<String> = HashSet::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    let text = |id: &CommunityId| id.to_string();
    let mut lagged = 0;
    let why = loop {
        if seeded.len() == communities {
            return Ok((owner, t.elapsed().as_secs_f64()));
        }
        if !failed.is_empty() && seeded.len() + failed.len() == communities {
            break "the owner reported failures (its frozen clock means no retry)".to_owned();
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(s)) => {
                let (id, failure) = match &s {
                    Signal::HistoryArchivesSeeding { community_id, .. } => {
                        seeded.insert(text(community_id));
                        failed.remove(&text(community_id));
                        (community_id, None)
                    }
                    Signal::HistoryArchivesFailed { community_id, error } => (community_id, Some(error.clone())),
                    Signal::NoHistoryArchivesCreated { community_id, .. } => {
                        (community_id, Some("no archive created".to_owned()))
                    }
                    Signal::HistoryArchivesCreated { community_id, .. }
                    | Signal::HistoryArchivesUnseeded { community_id } => (community_id, None),
                    _ => continue,
                };
                if let Some(error) = failure
                    && !seeded.contains(&text(id))
                {
                    failed.insert(text(id), error);
                }
                last.insert(text(id), describe(&s));
            }
            Ok(Err(RecvError::Lagged(n))) => lagged += n,
            Ok(Err(RecvError::Closed)) => break "the owner's signal bus closed".to_owned(),
            Err(_) => break format!("deadline of {:?} passed", phase_deadline()),
        }
    };
    // Seeding signals may have been lost to lag: the owner's status says what it really seeds.
    let status = within(CALL_DEADLINE, "owner: status", owner.handle().status()).await?;
    let seeding_now: HashSet<String> = status
        .as_ref()
        .map(|list| list.iter().filter(|c| c.seeding.is_some()).map(|c| c.id.to_string()).collect())
        .unwrap_or_default();
    let mut report = format!(
        "(1) owner: {} of {communities} communities seeded after {:.1} s, {} failed; stopped because {why}{}; not seeded:",
        seeded.len(),
        t.elapsed().as_secs_f64(),
        failed.len(),
        if lagged > 0 { format!(" ({lagged} signals lost to lag)") } else { String::new() },
    );
    let mut errors: HashMap<&str, usize> = HashMap::new();
    for (n, id) in ids.iter().map(ToString::to_string).filter(|id| !seeded.contains(id)).enumerate() {
        if let Some(e) = failed.get(&id) {
            *errors.entry(e.as_str()).or_default() += 1;
        }
        if n == REPORT_LINES {
            report.push_str(&format!("\n  … and {} more", communities - seeded.len() - REPORT_LINES));
        }
        if n >= REPORT_LINES {
            continue;
        }
        let name = names.get(&id).map_or("?", String::as_str);
        report.push_str(&format!(
            "\n  {name} {id}: {}{}",
            last.get(&id).map_or("no signal at all", String::as_str),
            if seeding_now.contains(&id) { " (but the owner's status says it is seeded)" } else { "" },
        ));
    }
    for (error, n) in errors {
        report.push_str(&format!("\n  {n} × {error}"));
    }
    let _ = shutdown_all(vec![("owner".to_owned(), owner)]).await;
    Err(Stuck(report))
}

async fn owner_upload(owner: &Node, big: &CommunityId) -> Result<(u64, u64), Stuck> {
    let status = within(CALL_DEADLINE, "owner: status", owner.handle().status()).await?.unwrap();
    let seeding = status.iter().find(|s| s.id == *big).and_then(|s| s.seeding.clone());
    Ok(seeding.map_or((0, 0), |s| (s.uploaded_bytes, s.total_bytes)))
}

async fn run(dir: &std::path::Path, communities: usize, members: usize) -> Result<(), Stuck> {
    let now = chs_node::clock::system_now_ms();
    let end = now - HOUR_MS;
    let clock = ManualClock::new(now);

    // (1) One owner, `communities` communities of 2 weeks each; the first one is larger.
    let owner_dir = dir.join("owner");
    let big = create_owner(&owner_dir, "big").unwrap();
    generate_history(&owner_dir, &big, end - 4 * WEEK_MS, end, 4 * 500, 12, 1).unwrap();
    let mut ids = vec![big];
    let mut names = HashMap::from([(big.to_string(), "big".to_owned())]);
    {
        let mut store = Store::open(&owner_dir.join("chs.db")).unwrap();
        let c = Communities::open(&mut store).unwrap();
        for n in 1..communities {
            let options = CreateOptions {
                name: format!("c{n}"),
                pubsub_topic: None,
                channels: CHANNELS.iter().map(|c| (*c).to_owned()).collect(),
            };
            let id = c.create(&mut store, &options).unwrap().id;
            names.insert(id.to_string(), options.name);
            ids.push(id);
        }
    }
    for (n, id) in ids.iter().enumerate().skip(1) {
        generate_history(&owner_dir, id, end - 2 * WEEK_MS, end, 40, 4, n as u64).unwrap();
    }
    let (owner, owner_secs) = seed_all(&owner_dir, &clock, &ids, &names).await?;
    println!(
        "(1) owner: {communities} communities built and seeded in {owner_secs:.2} s, peak RSS {:.0} MB",
        peak_rss_mb()
    );
    let mut owner_addrs =
        within(CALL_DEADLINE, "owner: Waku listen_addrs", owner.handle().waku().listen_addrs()).await?.unwrap();
    let owner_addr = owner_addrs.remove(0);

    // Baseline: one member alone. Before each round, the owner's last announcement is left to
    // age past its re-announce rate limit, so that both rounds start from the same state: the
    // members' subscriptions get one re-announcement after the coalescing window.
    tokio::time::sleep(chs_node::REANNOUNCE_MIN_GAP).await;
    let one = download_round(&owner_addr, &dir.join("single"), &big, &clock, 1).await?;
    shutdown_all(one.nodes).await?;
    if let Some(stuck) = one.stuck {
        return Err(Stuck(format!("baseline: {}", stuck.0)));
    }
    let (one_done, one_secs, one_breakdown, one_cpu) = (one.done, one.secs, one.breakdown, one.cpu);
    let (uploaded_before, _) = owner_upload(&owner, &big).await?;
    // (2) `members` members at once.
    tokio::time::sleep(chs_node::REANNOUNCE_MIN_GAP).await;
    let many = download_round(&owner_addr, &dir.join("many"), &big, &clock, members).await?;
    let (done, secs) = (many.done, many.secs);
    let (uploaded_after, torrent_bytes) = owner_upload(&owner, &big).await?;
    let uploaded = uploaded_after.saturating_sub(uploaded_before);
    let rss = peak_rss_mb();
    println!("    baseline: 1 member downloaded in {one_secs:.2} s ({one_done}/1)");
    println!("      (median / max into the round) {one_breakdown}");
    println!(
        "(2) {members} members at once: {done}/{members} completed in {secs:.2} s ({:.2}x the single member's time)",
        secs / one_secs
    );
    println!("      (median / max into the round) {}", many.breakdown);
    println!(
        "    owner uploaded {:.1} MB for {members} × {:.1} MB ({:.2} copies; members re-seed to each other)",
        uploaded as f64 / 1e6,
        torrent_bytes as f64 / 1e6,
        uploaded as f64 / torrent_bytes.max(1) as f64
    );
    println!("    peak RSS of the whole process ({} nodes): {rss:.0} MB", members + 2);
    // The round's floor on this machine: every node runs in this process, so the CPU the
    // members and the owner used, spread over every core, is the least wall time it can take.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu_floor = many.cpu / cores as f64;
    let to_floor = secs / cpu_floor.max(1e-9);
    println!(
        "    CPU: the round used {:.1} CPU-s ({cpu_floor:.1} s on {cores} cores = its floor here); {secs:.2} s is {to_floor:.2}x that floor; one member alone used {one_cpu:.2} CPU-s",
        many.cpu,
    );
    if let Some(l) = owner.handle().torrent_listener_stats() {
        println!(
            "    owner's BitTorrent listener: {} accepted, {} refused (per-IP bound), {} handshakes failed",
            l.accepted, l.refused, l.handshake_failed
        );
    }
    println!(
        "BENCH_JSON {{\"bench\":\"load\",\"communities\":{communities},\"owner_seed_all_s\":{owner_secs:.2},\"members\":{members},\"completed\":{done},\"completion_ratio\":{:.3},\"all_members_s\":{secs:.2},\"single_member_s\":{one_secs:.2},\"ratio\":{:.2},\"owner_upload_bytes\":{uploaded},\"torrent_bytes\":{torrent_bytes},\"peak_rss_mb\":{rss:.0},\"round_cpu_s\":{:.2},\"single_cpu_s\":{one_cpu:.2},\"cores\":{cores},\"cpu_floor_s\":{cpu_floor:.2},\"ratio_to_cpu_floor\":{to_floor:.2},\"goal_ratio\":5.0}}",
        done as f64 / members as f64,
        secs / one_secs,
        many.cpu,
    );
    let mut nodes = many.nodes;
    nodes.push(("owner".to_owned(), owner));
    let shutdown = shutdown_all(nodes).await;
    if let Some(stuck) = many.stuck {
        return Err(stuck);
    }
    shutdown
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let mut args = std::env::args().skip(1);
    let communities: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let members: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let result = run(dir.path(), communities, members).await;
    drop(dir);
    if let Err(Stuck(report)) = result {
        eprintln!("bench_load STUCK: {report}");
        // Nodes that did not stop may still hold runtime tasks: leave without waiting for them.
        std::process::exit(1);
    }
}
