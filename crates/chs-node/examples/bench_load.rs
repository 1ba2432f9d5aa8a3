//! `cargo xtask bench load`: (1) one owner node controlling N communities (default 100) builds
//! and seeds all their archives; (2) M members (default 50) download one community at once, the
//! second half also given the first half's torrent addresses so that members re-seed to each
//! other. Real Waku relay and BitTorrent over TCP on loopback, real SQLite files, all nodes in
//! this process. Prints completion ratio, times, the owner's upload bytes and peak RSS; the
//! baseline for (2) is the same run's time for a single member.
//!
//! `cargo run --release -p chs-node --example bench_load [communities] [members]`
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chs_community::{Communities, CreateOptions};
use chs_node::demo::{CHANNELS, create_owner, generate_history, join_member, wait_for};
use chs_node::{ManualClock, Node, NodeConfig, Signal, SignalBus};
use chs_store::Store;

const HOUR_MS: u64 = 3_600_000;
const WEEK_MS: u64 = 7 * 24 * HOUR_MS;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn download_round(
    owner_addr: &str,
    root: &std::path::Path,
    id: &chs_community::CommunityId,
    clock: &ManualClock,
    members: usize,
) -> (usize, f64, Vec<Node>) {
    let mut nodes = Vec::new();
    let mut receivers = Vec::new();
    let half = members.div_ceil(2);
    let mut first_half_peers = Vec::new();
    let t = Instant::now();
    for i in 0..members {
        let dir = root.join(format!("member-{i}"));
        join_member(&dir, id).unwrap();
        let mut config = NodeConfig::local(&dir);
        config.waku.bootstrap = vec![owner_addr.to_owned()];
        config.torrent.stall_timeout = Duration::from_secs(30);
        if i >= half {
            config.torrent.peers.clone_from(&first_half_peers);
        }
        let bus = SignalBus::default();
        receivers.push(bus.subscribe());
        if std::env::var_os("CHS_BENCH_TRACE").is_some() {
            let mut rx = bus.subscribe();
            tokio::spawn(async move {
                while let Ok(s) = rx.recv().await {
                    eprintln!("{:>8.3}s member-{i}: {s:?}", t.elapsed().as_secs_f64());
                }
            });
        }
        let node = Node::start_with_bus(config, Arc::new(clock.clone()), bus).await.unwrap();
        if i < half {
            first_half_peers.extend(node.handle().torrent_addr());
        }
        nodes.push(node);
    }
    let waits = receivers.into_iter().map(|mut rx| {
        tokio::spawn(async move {
            wait_for(&mut rx, Duration::from_secs(600), "download", |s| {
                matches!(s, Signal::DownloadingHistoryArchivesFinished { .. }).then_some(())
            })
            .await
            .is_ok()
        })
    });
    let mut done = 0;
    for w in waits.collect::<Vec<_>>() {
        if w.await.unwrap_or(false) {
            done += 1;
        }
    }
    (done, t.elapsed().as_secs_f64(), nodes)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let communities: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let members: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let now = chs_node::clock::system_now_ms();
    let end = now - HOUR_MS;
    let clock = ManualClock::new(now);

    // (1) One owner, `communities` communities of 2 weeks each; the first one is larger.
    let owner_dir = dir.path().join("owner");
    let big = create_owner(&owner_dir, "big").unwrap();
    generate_history(&owner_dir, &big, end - 4 * WEEK_MS, end, 4 * 500, 12, 1).unwrap();
    let mut ids = vec![big];
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
    for (n, id) in ids.iter().enumerate().skip(1) {
        generate_history(&owner_dir, id, end - 2 * WEEK_MS, end, 40, 4, n as u64).unwrap();
    }
    let bus = SignalBus::default();
    let mut rx = bus.subscribe();
    let t = Instant::now();
    let owner = Node::start_with_bus(NodeConfig::local(&owner_dir), Arc::new(clock.clone()), bus).await.unwrap();
    let mut seeded = 0;
    wait_for(&mut rx, Duration::from_secs(600), "seeding of every community", |s| {
        if matches!(s, Signal::HistoryArchivesSeeding { .. }) {
            seeded += 1;
        }
        (seeded == communities).then_some(())
    })
    .await
    .unwrap();
    let owner_secs = t.elapsed().as_secs_f64();
    println!(
        "(1) owner: {communities} communities built and seeded in {owner_secs:.2} s, peak RSS {:.0} MB",
        peak_rss_mb()
    );
    let owner_addr = owner.handle().waku().listen_addrs().await.unwrap().remove(0);

    // Baseline: one member alone.
    let (one_done, one_secs, one) = download_round(&owner_addr, &dir.path().join("single"), &big, &clock, 1).await;
    for n in one {
        n.shutdown().await;
    }
    let uploaded_before = owner
        .handle()
        .status()
        .await
        .unwrap()
        .iter()
        .find(|s| s.id == big.to_string())
        .and_then(|s| s.seeding.as_ref().map(|s| s.uploaded_bytes))
        .unwrap_or(0);
    // (2) `members` members at once.
    let (done, secs, nodes) = download_round(&owner_addr, &dir.path().join("many"), &big, &clock, members).await;
    let status = owner.handle().status().await.unwrap();
    let big_status = status.iter().find(|s| s.id == big.to_string()).unwrap();
    let uploaded = big_status.seeding.as_ref().map_or(0, |s| s.uploaded_bytes) - uploaded_before;
    let torrent_bytes = big_status.seeding.as_ref().map_or(0, |s| s.total_bytes);
    let rss = peak_rss_mb();
    println!("    baseline: 1 member downloaded in {one_secs:.2} s ({one_done}/1)");
    println!(
        "(2) {members} members at once: {done}/{members} completed in {secs:.2} s ({:.2}x the single member's time)",
        secs / one_secs
    );
    println!(
        "    owner uploaded {:.1} MB for {members} × {:.1} MB ({:.2} copies; members re-seed to each other)",
        uploaded as f64 / 1e6,
        torrent_bytes as f64 / 1e6,
        uploaded as f64 / torrent_bytes.max(1) as f64
    );
    println!("    peak RSS of the whole process ({} nodes): {rss:.0} MB", members + 2);
    println!(
        "BENCH_JSON {{\"bench\":\"load\",\"communities\":{communities},\"owner_seed_all_s\":{owner_secs:.2},\"members\":{members},\"completed\":{done},\"completion_ratio\":{:.3},\"all_members_s\":{secs:.2},\"single_member_s\":{one_secs:.2},\"ratio\":{:.2},\"owner_upload_bytes\":{uploaded},\"torrent_bytes\":{torrent_bytes},\"peak_rss_mb\":{rss:.0}}}",
        done as f64 / members as f64,
        secs / one_secs
    );
    for n in nodes {
        n.shutdown().await;
    }
    owner.shutdown().await;
}
