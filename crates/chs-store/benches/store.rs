//! Store benchmark: `cargo bench -p chs-store --bench store -- [N]` (default 1,000,000 messages of
//! ~300 bytes). Imports N messages with [`Store::insert_batch`] and scans them back in timestamp order
//! with [`Store::for_each_in_range`], against a plain rusqlite batched INSERT / SELECT of the same rows
//! into a bare table measured in the same run, and measures the scan's peak RSS in a child process
//! for N/10 and N rows (it must not grow with N).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::type_complexity
)]

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use chs_store::{Store, StoredMessage, Topic};

const TOPIC: Topic = [0x19, 0x80, 0xb7, 0xcb];
const BATCH: usize = 10_000;

fn message(n: u64) -> StoredMessage {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_be_bytes());
    hash[8..16].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    // Ten weeks of traffic, ~1 message per 6 s at 1M messages.
    let ts_secs = 1_700_000_000 + i64::try_from(n * 6).unwrap();
    StoredMessage {
        hash,
        pubsub_topic: "/waku/2/rs/16/32".into(),
        content_topic: "/waku/1/0x1980b7cb/rfc26".into(),
        topic: TOPIC,
        timestamp_ns: ts_secs * 1_000_000_000,
        version: 1,
        meta: Vec::new(),
        raw_payload: None,
        payload: n.to_le_bytes().repeat(20), // 160 bytes
        padding: vec![0xab; 40],
        sig: [vec![4u8], vec![0x11; 64]].concat(),
        third_party_id: String::new(),
        received_at_ms: 0,
    }
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ours_insert(path: &Path, n: u64) -> f64 {
    let mut store = Store::open(path).unwrap();
    let start = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(message(i));
        if batch.len() == BATCH {
            store.insert_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.insert_batch(&batch).unwrap();
    start.elapsed().as_secs_f64()
}

fn ours_scan(path: &Path) -> (f64, u64) {
    let store = Store::open(path).unwrap();
    let start = Instant::now();
    let mut count = 0u64;
    let mut checksum = 0u64;
    store
        .for_each_in_range(&[TOPIC], 0, u64::MAX, |m| {
            count += 1;
            checksum = checksum.wrapping_add(u64::from(m.payload[0]));
            Ok::<_, ()>(ControlFlow::Continue(()))
        })
        .unwrap();
    std::hint::black_box(checksum);
    (start.elapsed().as_secs_f64(), count)
}

fn plain_insert(path: &Path, n: u64) -> f64 {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE m (hash BLOB PRIMARY KEY, pubsub_topic TEXT, content_topic TEXT, topic BLOB, timestamp INTEGER,
         timestamp_ns INTEGER, version INTEGER, meta BLOB, raw_payload BLOB, payload BLOB, padding BLOB, sig BLOB,
         third_party_id TEXT, received_at INTEGER)",
    )
    .unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt =
                tx.prepare_cached("INSERT INTO m VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)").unwrap();
            for j in i..(i + BATCH as u64).min(n) {
                let m = message(j);
                stmt.execute(rusqlite::params![
                    &m.hash[..],
                    m.pubsub_topic,
                    m.content_topic,
                    &m.topic[..],
                    m.timestamp_ns / 1_000_000_000,
                    m.timestamp_ns,
                    m.version,
                    m.meta,
                    m.raw_payload,
                    m.payload,
                    m.padding,
                    m.sig,
                    m.third_party_id,
                    m.received_at_ms
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        i += BATCH as u64;
    }
    start.elapsed().as_secs_f64()
}

fn plain_scan(path: &Path) -> (f64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let start = Instant::now();
    let mut stmt = conn.prepare("SELECT * FROM m ORDER BY rowid").unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut count = 0u64;
    let mut checksum = 0u64;
    while let Some(row) = rows.next().unwrap() {
        let payload: Vec<u8> = row.get(9).unwrap();
        let _: (Vec<u8>, String, String, Vec<u8>, i64, i64, u32, Vec<u8>, Option<Vec<u8>>) = (
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
            row.get(4).unwrap(),
            row.get(5).unwrap(),
            row.get(6).unwrap(),
            row.get(7).unwrap(),
            row.get(8).unwrap(),
        );
        let _: (Vec<u8>, Vec<u8>, String, i64) =
            (row.get(10).unwrap(), row.get(11).unwrap(), row.get(12).unwrap(), row.get(13).unwrap());
        checksum = checksum.wrapping_add(u64::from(payload[0]));
        count += 1;
    }
    std::hint::black_box(checksum);
    (start.elapsed().as_secs_f64(), count)
}

/// Child mode: fill a store with `n` rows, then report the scan's peak RSS growth.
fn child_scan_rss(path: &Path, n: u64) {
    ours_insert(path, n);
    let store = Store::open(path).unwrap();
    // Reset the high-water mark so only the scan counts (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let before = rss_kib("VmRSS:");
    let mut count = 0u64;
    store
        .for_each_in_range(&[TOPIC], 0, u64::MAX, |_| {
            count += 1;
            Ok::<_, ()>(ControlFlow::Continue(()))
        })
        .unwrap();
    let peak = rss_kib("VmHWM:");
    println!("{count} {before} {peak}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("child-scan") {
        child_scan_rss(Path::new(&args[1]), args[2].parse().unwrap());
        return;
    }
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();

    let plain_ins = plain_insert(&dir.path().join("plain.db"), n);
    let (plain_sc, plain_count) = plain_scan(&dir.path().join("plain.db"));
    let ours_ins = ours_insert(&dir.path().join("ours.db"), n);
    let (ours_sc, ours_count) = ours_scan(&dir.path().join("ours.db"));
    assert_eq!((plain_count, ours_count), (n, n));

    let exe = std::env::current_exe().unwrap();
    let mut rss = Vec::new();
    for rows in [n / 10, n] {
        let db = dir.path().join(format!("rss-{rows}.db"));
        let out = std::process::Command::new(&exe)
            .args(["child-scan", db.to_str().unwrap(), &rows.to_string()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<u64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        rss.push((rows, f.get(1).copied().unwrap_or(0), f.get(2).copied().unwrap_or(0)));
    }

    let rate = |secs: f64| n as f64 / secs;
    println!("store bench: {n} messages of ~300 bytes");
    println!(
        "  insert: ours {:>10.0} msg/s   plain rusqlite {:>10.0} msg/s   ratio {:.2}x (goal >= 0.7)",
        rate(ours_ins),
        rate(plain_ins),
        plain_ins / ours_ins
    );
    println!(
        "  scan:   ours {:>10.0} msg/s   plain rusqlite {:>10.0} msg/s   ratio {:.2}x (goal >= 0.7)",
        rate(ours_sc),
        rate(plain_sc),
        plain_sc / ours_sc
    );
    for (rows, before, peak) in &rss {
        println!("  scan of {rows:>8} rows: RSS before {before} KiB, peak during scan {peak} KiB");
    }
    println!(
        "BENCH_JSON {{\"bench\":\"store\",\"messages\":{n},\"insert_msgs_per_s\":{:.0},\"baseline_insert_msgs_per_s\":{:.0},\"insert_ratio\":{:.3},\"scan_msgs_per_s\":{:.0},\"baseline_scan_msgs_per_s\":{:.0},\"scan_ratio\":{:.3},\"scan_peak_rss_kib_small\":{},\"scan_peak_rss_kib_full\":{}}}",
        rate(ours_ins),
        rate(plain_ins),
        plain_ins / ours_ins,
        rate(ours_sc),
        rate(plain_sc),
        plain_sc / ours_sc,
        rss[0].2,
        rss[1].2
    );
}
