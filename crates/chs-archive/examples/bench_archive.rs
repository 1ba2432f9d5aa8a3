//! Archive build benchmark: N stored messages of ~300 bytes over 10 weeks in a real SQLite store →
//! archives, against a same-run floor (a full `SELECT` scan of the same rows + SHA-1 of the
//! resulting `data`), with the peak RSS of the building process.
//!
//! Run: `cargo run --release -p chs-archive --example bench_archive [N ...]` (default 250000 1000000).
//! Each N runs in two child processes: one fills the store, one measures (so `VmHWM` is the build's
//! own peak). Each figure is the best of 3 runs. The last line is `BENCH_JSON {...}` for `cargo xtask bench`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::cast_precision_loss, clippy::unwrap_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chs_archive::{BuildOptions, Builder, DATA_FILE};
use chs_proto::protobuf::WakuMessage;
use chs_store::{Store, StoredMessage};
use sha1::Digest as _;

const TOPIC: [u8; 4] = [0xa4, 0xab, 0xdf, 0x64];
const START: u64 = 1_700_000_000;
const WEEKS: u64 = 10;
const SPAN: u64 = WEEKS * 7 * 86_400;
const PAYLOAD: usize = 300;
/// Repetitions per figure (the best is kept).
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--fill") => fill(Path::new(&args[1]), args[2].parse()?),
        Some("--measure") => measure(Path::new(&args[1]), args[2].parse()?),
        _ => parent(&args),
    }
}

fn parent(args: &[String]) -> anyhow::Result<()> {
    let sizes: Vec<u64> = if args.is_empty() {
        vec![250_000, 1_000_000]
    } else {
        args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?
    };
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for n in sizes {
        let tmp = tempfile::Builder::new().prefix("chs-bench-archive-").tempdir()?;
        let status = Command::new(&exe).args(["--fill", &tmp.path().display().to_string(), &n.to_string()]).status()?;
        anyhow::ensure!(status.success(), "fill failed for {n}");
        let out = Command::new(&exe).args(["--measure", &tmp.path().display().to_string(), &n.to_string()]).output()?;
        anyhow::ensure!(out.status.success(), "measure failed for {n}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout)?;
        let line =
            stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or_else(|| anyhow::anyhow!("no result"))?;
        let value: serde_json::Value = serde_json::from_str(line)?;
        println!(
            "n={n:>9}  build {:>7.2} s  floor {:>7.2} s (select {:.2} s + sha1 {:.2} s)  ratio {:.2}x  peak RSS {:.1} MB  \
             archives {}  data {:.1} MB  (store row scan alone {:.2} s, fsync of data {:.2} s)",
            value["build_s"].as_f64().unwrap_or(0.0),
            value["floor_s"].as_f64().unwrap_or(0.0),
            value["select_s"].as_f64().unwrap_or(0.0),
            value["sha1_s"].as_f64().unwrap_or(0.0),
            value["ratio"].as_f64().unwrap_or(0.0),
            value["peak_rss_mb"].as_f64().unwrap_or(0.0),
            value["archives"],
            value["data_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            value["store_scan_s"].as_f64().unwrap_or(0.0),
            value["fsync_s"].as_f64().unwrap_or(0.0),
        );
        results.push(value);
    }
    println!("goal: ratio <= 1.5x, peak RSS < 256 MB and flat in N");
    println!("BENCH_JSON {}", serde_json::json!({ "bench": "archive", "runs": results }));
    Ok(())
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("store.db")
}

/// Fills the store with `n` messages of ~300 bytes spread evenly over 10 weeks.
fn fill(dir: &Path, n: u64) -> anyhow::Result<()> {
    let mut store = Store::open(&db_path(dir))?;
    let mut batch = Vec::with_capacity(10_000);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..n {
        let mut payload = vec![0u8; PAYLOAD];
        for chunk in payload.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.to_le_bytes());
        hash[8..16].copy_from_slice(&state.to_le_bytes());
        let mut sig = vec![0x04];
        sig.extend_from_slice(&[0x5a; 64]);
        let archived = WakuMessage {
            sig,
            timestamp: START + i * SPAN / n,
            topic: TOPIC.to_vec(),
            payload,
            padding: vec![0; 4],
            hash: hash.to_vec(),
            third_party_id: String::new(),
        };
        batch.push(StoredMessage::from_archive_message("/waku/2/rs/16/32", &archived, 0)?);
        if batch.len() == batch.capacity() {
            store.insert_batch(&batch)?;
            batch.clear();
        }
    }
    store.insert_batch(&batch)?;
    Ok(())
}

/// A full `SELECT` of the same rows (every column read, nothing copied).
fn select_scan(store: &Store) -> anyhow::Result<u64> {
    let mut stmt = store.connection().prepare(
        "SELECT hash, pubsub_topic, content_topic, topic, timestamp, timestamp_ns, version, meta, raw_payload, \
         payload, padding, sig, third_party_id, received_at FROM messages ORDER BY timestamp, topic, rowid",
    )?;
    let mut rows = stmt.query([])?;
    let mut bytes = 0u64;
    while let Some(row) = rows.next()? {
        for col in 0..14 {
            bytes += match row.get_ref(col)? {
                rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => b.len() as u64,
                _ => 1,
            };
        }
    }
    Ok(bytes)
}

fn sha1_file(path: &Path) -> anyhow::Result<[u8; 20]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha1::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Measures the time spent in the durable commits (fsync of `data` up to the index rename).
#[derive(Default)]
struct SyncTimer {
    started: Option<Instant>,
    total: f64,
}

impl chs_archive::StepHook for SyncTimer {
    fn before(&mut self, step: chs_archive::Step) -> std::io::Result<()> {
        match step {
            chs_archive::Step::SyncData => self.started = Some(Instant::now()),
            chs_archive::Step::WriteIndexTemp => {
                if let Some(t) = self.started.take() {
                    self.total += t.elapsed().as_secs_f64();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

fn measure(dir: &Path, n: u64) -> anyhow::Result<()> {
    let store = Store::open(&db_path(dir))?;
    anyhow::ensure!(store.count()? == n, "store holds {} rows, expected {n}", store.count()?);
    // Warm the page cache so that both measurements read from memory. Every figure is the best of
    // `RUNS` (the machine is shared), each build into a fresh directory.
    select_scan(&store)?;
    let mut select_s = f64::MAX;
    let mut scanned = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        scanned = select_scan(&store)?;
        select_s = select_s.min(t.elapsed().as_secs_f64());
    }

    // For reference: the store's own streaming scan (row → StoredMessage) of the same rows.
    let t = Instant::now();
    let mut rows = 0u64;
    store.for_each_in_range(&[TOPIC], START, START + SPAN, |_| {
        rows += 1;
        Ok::<_, std::convert::Infallible>(std::ops::ControlFlow::Continue(()))
    })?;
    let store_scan_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(rows == n);

    let mut build_s = f64::MAX;
    let mut sha1_s = f64::MAX;
    let mut fsync_s = f64::MAX;
    let mut ticks = 0u64;
    let mut report = None;
    let mut digest = [0u8; 20];
    for run in 0..RUNS {
        let archive_dir = dir.join(format!("archive-{run}"));
        let t = Instant::now();
        let mut progress = |_: &chs_archive::Progress| ticks += 1;
        let mut timer = SyncTimer::default();
        let built = Builder::new(
            &archive_dir,
            BuildOptions { from: Some(START), ..BuildOptions::new(vec![TOPIC], START + SPAN) },
        )
        .progress(&mut progress)
        .hook(&mut timer)
        .run(&store)?;
        build_s = build_s.min(t.elapsed().as_secs_f64());
        fsync_s = fsync_s.min(timer.total);
        anyhow::ensure!(built.messages_archived == n, "archived {} of {n}", built.messages_archived);
        let t = Instant::now();
        digest = sha1_file(&archive_dir.join(DATA_FILE))?;
        sha1_s = sha1_s.min(t.elapsed().as_secs_f64());
        report = Some(built);
        std::fs::remove_dir_all(&archive_dir)?;
    }
    let report = report.ok_or_else(|| anyhow::anyhow!("no run"))?;
    let floor_s = select_s + sha1_s;
    let result = serde_json::json!({
        "n": n,
        "build_s": build_s,
        "select_s": select_s,
        "sha1_s": sha1_s,
        "store_scan_s": store_scan_s,
        "fsync_s": fsync_s,
        "runs": RUNS,
        "floor_s": floor_s,
        "ratio": build_s / floor_s,
        "peak_rss_mb": vm_hwm_kb() as f64 / 1024.0,
        "archives": report.archives.len(),
        "data_bytes": report.data_len,
        "scanned_bytes": scanned,
        "progress_ticks": ticks,
        "data_sha1": hex::encode(digest),
    });
    println!("RESULT {result}");
    Ok(())
}
