//! `cargo xtask bench e2e`: owner → member delivery of one ~10 MB archive over loopback with
//! debounce 0 (real Waku relay and BitTorrent over TCP, real SQLite files), with the phase
//! breakdown taken from the nodes' signals. Baseline in the same run: the bare torrent transfer
//! of the same folder by a fresh `chs_torrent` node (metadata, index, all of `data`), no
//! orchestration. Goal (issue 22): delivery within 2× the bare transfer. Last line:
//! `BENCH_JSON {...}`. `RUST_LOG=chs_node=debug` prints the nodes' logs (the member's download
//! steps with their times) on stderr.
//!
//! `cargo run --release -p chs-demo --example bench_e2e [MB]`
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::single_range_in_vec_init
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chs_demo::{CHANNELS, chat_message, create_owner, join_member};
use chs_node::{Config, ManualClock, Node, Signal, SignalBus};
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::{ChatKeyCache, ChatKeyRing};
use chs_store::{Store, StoredMessage};
use chs_waku_payload::SecretKey;

type Log = Arc<Mutex<Vec<(Instant, &'static str, Signal)>>>;

fn record(log: &Log, who: &'static str, bus: &SignalBus) {
    let mut rx = bus.subscribe();
    let log = Arc::clone(log);
    tokio::spawn(async move {
        while let Ok(s) = rx.recv().await {
            log.lock().unwrap().push((Instant::now(), who, s));
        }
    });
}

fn at(log: &Log, who: &str, pick: impl Fn(&Signal) -> bool) -> Instant {
    log.lock().unwrap().iter().find(|(_, w, s)| *w == who && pick(s)).map(|(t, _, _)| *t).expect("signal seen")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let mb: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let now = chs_node::clock::system_now_ms();
    let owner_dir = dir.path().join("owner");
    let id = create_owner(&owner_dir, "bench").unwrap();

    // ~mb MB of 4 KB status chat messages in one week that ended an hour ago.
    let t = Instant::now();
    let text: String = "history archive benchmark ".repeat(160);
    let count = usize::try_from(mb * 1_000_000 / 4_400).unwrap();
    {
        let mut store = Store::open(&owner_dir.join("chs.db")).unwrap();
        let cache = ChatKeyCache::new();
        let ring = ChatKeyRing::for_channels(&id, CHANNELS, &cache);
        let author = SecretKey::generate().unwrap();
        let end = now - 3_600_000;
        let start = end - 7 * 86_400_000;
        let mut batch = Vec::new();
        for i in 0..count {
            let ts = start + (i as u64) * (end - start) / count as u64;
            let m = chat_message(&id, &author, CHANNELS[i % 2], &text, ts, &cache).unwrap();
            let a = capture_for_archive(&m, chs_waku::DEFAULT_PUBSUB_TOPIC, &ring, CapturePolicy::default()).unwrap();
            batch.push(StoredMessage::from_archive_message(chs_waku::DEFAULT_PUBSUB_TOPIC, &a, 0).unwrap());
        }
        store.insert_batch(&batch).unwrap();
    }
    println!("setup: {count} messages of ~4.4 KB generated in {:.1} s", t.elapsed().as_secs_f64());

    let clock = ManualClock::new(now);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).unwrap();
    let log: Log = Arc::default();
    let member_bus = SignalBus::default();
    record(&log, "member", &member_bus);
    let mut finished = member_bus.subscribe();
    let member = Node::start_with_bus(Config::local(&member_dir), Arc::new(clock.clone()), member_bus).await.unwrap();
    let member_addr = member.handle().waku().listen_addrs().await.unwrap().remove(0);

    let owner_bus = SignalBus::default();
    record(&log, "owner", &owner_bus);
    let mut config = Config::local(&owner_dir);
    config.waku.bootstrap = vec![member_addr];
    let t_start = Instant::now();
    let owner = Node::start_with_bus(config, Arc::new(clock.clone()), owner_bus).await.unwrap();
    let (archives, bytes) = chs_demo::wait_for(&mut finished, Duration::from_secs(300), "delivery", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { archives, bytes_received, .. } => {
            Some((*archives, *bytes_received))
        }
        _ => None,
    })
    .await
    .unwrap();
    let t_done = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await; // let the recorder tasks catch up (reporting only)
    let created = at(&log, "owner", |s| matches!(s, Signal::HistoryArchivesCreated { .. }));
    let seeding = at(&log, "owner", |s| matches!(s, Signal::HistoryArchivesSeeding { .. }));
    let accepted = at(&log, "member", |s| matches!(s, Signal::MagnetlinkAccepted { .. }));
    let started = at(&log, "member", |s| matches!(s, Signal::DownloadingHistoryArchivesStarted { .. }));
    let index = at(&log, "member", |s| matches!(s, Signal::HistoryArchiveIndexFetched { .. }));
    let imported = at(&log, "member", |s| matches!(s, Signal::ImportingHistoryArchiveMessages { .. }));
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
    let delivery = ms(seeding, t_done);

    // Baseline: the bare transfer of the same torrent by a fresh torrent node.
    let magnet: chs_torrent::Magnet = owner.handle().status().await.unwrap()[0]
        .seeding
        .as_ref()
        .map(|s| s.info_hash.clone())
        .and_then(|h| {
            log.lock().unwrap().iter().find_map(|(_, w, s)| match s {
                Signal::HistoryArchivesSeeding { magnet_uri, .. } if *w == "owner" && magnet_uri.contains(&h) => {
                    magnet_uri.parse().ok()
                }
                _ => None,
            })
        })
        .unwrap();
    let base_dir = dir.path().join("baseline");
    let node = chs_torrent::TorrentNode::start(chs_torrent::Config::local(base_dir.join("state"))).await.unwrap();
    let t = Instant::now();
    let dl = node.download("baseline", &magnet, &base_dir, chs_torrent::DownloadOptions::default()).await.unwrap();
    dl.fetch_index().await.unwrap();
    let data_len = dl.meta().files().iter().find(|f| f.display_path() == "data").unwrap().length;
    let whole = vec![0..data_len];
    dl.fetch_ranges("data", &whole).await.unwrap();
    let baseline = t.elapsed().as_secs_f64() * 1000.0;
    node.shutdown().await;

    println!("owner → member, {archives} archive(s), {:.1} MB received:", bytes as f64 / 1e6);
    println!("  build (plan + stream + encode + write) {:>8.1} ms", ms(t_start, created));
    println!("  torrent hash + seed                    {:>8.1} ms", ms(created, seeding));
    println!("  magnetlink publish → member accepts    {:>8.1} ms", ms(seeding, accepted));
    println!("  debounce (0) → download starts         {:>8.1} ms", ms(accepted, started));
    println!("  metadata + index                       {:>8.1} ms", ms(started, index));
    println!("  data pieces + canonical import         {:>8.1} ms", ms(index, imported));
    println!("  history decode + re-seed               {:>8.1} ms", ms(imported, t_done));
    println!("  delivery (seeding → member done)       {:>8.1} ms", delivery);
    println!("  baseline: bare torrent transfer        {:>8.1} ms", baseline);
    println!("  ratio delivery / baseline              {:>8.2}x   goal ≤ 2.0x", delivery / baseline);
    println!(
        "BENCH_JSON {{\"bench\":\"e2e\",\"mb\":{mb},\"bytes\":{bytes},\"delivery_ms\":{delivery:.1},\"baseline_ms\":{baseline:.1},\"ratio\":{:.3},\"build_ms\":{:.1},\"goal_ratio\":2.0}}",
        delivery / baseline,
        ms(t_start, created)
    );
    owner.shutdown().await;
    member.shutdown().await;
}
