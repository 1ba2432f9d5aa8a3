//! `cargo xtask bench idle`: one owner node holding N communities (default 1,000; generated
//! keys, each with two weeks of a little history, so each one builds and seeds its archive), real
//! SQLite, real Waku relay and BitTorrent on loopback, the system clock, in this process and
//! nothing else. Once
//! every community is seeded (or has reported that it has nothing to archive), the node is left
//! alone for a settle time and then measured for a window: CPU time of the whole process over
//! the window (user + system, from `/proc/self/stat`) as a share of one core, RSS at the end and
//! peak RSS. Goal (issue 22): under 1% CPU and under 500 MB. Last line: `BENCH_JSON {...}`.
//!
//! `cargo run --release -p chs-demo --example bench_idle [communities] [window_s] [settle_s]`
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chs_community::{Communities, CreateOptions};
use chs_demo::{CHANNELS, create_owner, generate_history};
use chs_node::{Config, Node, Signal, SignalBus, SystemClock};
use chs_store::Store;
use tokio::sync::broadcast::error::RecvError;

const HOUR_MS: u64 = 3_600_000;
const WEEK_MS: u64 = 7 * 24 * HOUR_MS;

/// `(user + system CPU seconds, RSS MB, peak RSS MB)` of this process.
fn usage() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15 (1-based).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let communities: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let window_s: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    // Long enough for librqbit's per-torrent samplers to back off to their idle pace (≈ 50 s).
    let settle_s: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let now = chs_node::clock::system_now_ms();
    let end = now - HOUR_MS;
    let owner_dir = dir.path().join("owner");
    let t = Instant::now();
    let first = create_owner(&owner_dir, "c0").unwrap();
    let mut ids = vec![first];
    {
        let mut store = Store::open(&owner_dir.join("chs.db")).unwrap();
        let c = Communities::open(&mut store).unwrap();
        for n in 1..communities {
            let options = CreateOptions {
                name: format!("c{n}"),
                pubsub_topic: None,
                channels: CHANNELS.iter().map(|c| (*c).to_owned()).collect(),
            };
            ids.push(c.create(&mut store, &options).unwrap().id);
        }
    }
    for (n, id) in ids.iter().enumerate() {
        generate_history(&owner_dir, id, end - 2 * WEEK_MS, end, 8, 2, n as u64).unwrap();
    }
    println!("setup: {communities} communities with history in {:.1} s", t.elapsed().as_secs_f64());

    let bus = SignalBus::default();
    let mut rx = bus.subscribe();
    let t = Instant::now();
    let owner = Node::start_with_bus(Config::local(&owner_dir), Arc::new(SystemClock), bus).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1_800);
    let mut settled: HashSet<String> = HashSet::new();
    let mut lagged = 0;
    while settled.len() < communities {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(
                Signal::HistoryArchivesSeeding { community_id, .. }
                | Signal::NoHistoryArchivesCreated { community_id, .. }
                | Signal::HistoryArchivesFailed { community_id, .. },
            )) => {
                settled.insert(community_id.to_string());
            }
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(n))) => {
                lagged += n;
                // Signals lost: the owner's status says what it seeds.
                let status = owner.handle().status().await.unwrap();
                settled.extend(status.iter().filter(|c| c.seeding.is_some()).map(|c| c.id.to_string()));
            }
            Ok(Err(RecvError::Closed)) => panic!("the owner's signal bus closed"),
            Err(_) => {
                eprintln!("bench_idle STUCK: {} of {communities} communities settled after 30 min", settled.len());
                std::process::exit(1);
            }
        }
    }
    let seeded = owner.handle().status().await.unwrap().iter().filter(|c| c.seeding.is_some()).count();
    let start_s = t.elapsed().as_secs_f64();
    println!(
        "owner: {communities} communities settled ({seeded} seeding) in {start_s:.1} s{}",
        if lagged > 0 { format!(" ({lagged} signals lost to lag)") } else { String::new() }
    );
    // The measurement: the node left alone (no member, no message), nothing else in the process.
    tokio::time::sleep(Duration::from_secs(settle_s)).await;
    let (cpu0, _, _) = usage();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(window_s)).await;
    let (cpu1, rss, peak) = usage();
    let secs = t.elapsed().as_secs_f64();
    let cpu_pct = (cpu1 - cpu0) / secs * 100.0;
    println!(
        "idle over {secs:.1} s (after {settle_s} s to settle): CPU {cpu_pct:.2}% of one core ({:.2} s), RSS {rss:.0} MB, peak RSS {peak:.0} MB   goal < 1% and < 500 MB",
        cpu1 - cpu0
    );
    println!(
        "BENCH_JSON {{\"bench\":\"idle\",\"communities\":{communities},\"seeding\":{seeded},\"settle_all_s\":{start_s:.1},\"window_s\":{secs:.1},\"cpu_pct\":{cpu_pct:.3},\"rss_mb\":{rss:.0},\"peak_rss_mb\":{peak:.0},\"goal_cpu_pct\":1.0,\"goal_rss_mb\":500}}"
    );
    owner.shutdown().await;
}
