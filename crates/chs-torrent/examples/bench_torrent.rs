//! Torrent benchmark: creation (hashing) and loopback transfer, ours vs libtorrent.
//!
//! Run: `CHS_LT_PYTHON=/work/main/.venv-lt/bin/python cargo run --release -p chs-torrent
//! --example bench_torrent -- [SIZE_MIB] [--piece-length N]` (default 1024 MiB, 102400).
//! Ours: `TorrentMeta::from_dir`, then one node seeds and another downloads the whole torrent
//! through librqbit (`fetch_files`), and a third fetches all of `data` through the piece fetcher
//! (`fetch_ranges`). Baseline (if `CHS_LT_PYTHON` is set): `interop/lt_bench.py`, libtorrent
//! creating a v1 torrent of the same folder (131072-byte pieces; it refuses 102400) and
//! transferring it between two libtorrent sessions. The last line is `BENCH_JSON {...}`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chs_torrent::{DEFAULT_PIECE_LENGTH, DownloadOptions, Magnet, NodeConfig, TorrentMeta, TorrentNode};

fn write_random_file(path: &Path, len: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size_mib: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let piece_length: u32 = args
        .iter()
        .position(|a| a == "--piece-length")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_PIECE_LENGTH);
    let tmp = tempfile::tempdir()?;
    let name = "0x02bench";
    let folder = tmp.path().join("owner").join(name);
    std::fs::create_dir_all(&folder)?;
    let size = size_mib << 20;
    write_random_file(&folder.join("data"), size)?;
    write_random_file(&folder.join("index"), 4096)?;
    println!("data: {size_mib} MiB, piece length {piece_length}");

    // Creation (hashing).
    let t = Instant::now();
    let f = folder.clone();
    let meta = tokio::task::spawn_blocking(move || TorrentMeta::from_dir(&f, piece_length)).await??;
    let ours_create = t.elapsed().as_secs_f64();
    let f = folder.clone();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || TorrentMeta::from_dir(&f, 131_072)).await??;
    let ours_create_131k = t.elapsed().as_secs_f64();
    let total = meta.total_length();
    println!(
        "ours create: {ours_create:.3} s ({:.1} MB/s); at 131072-byte pieces {ours_create_131k:.3} s",
        mbps(total, ours_create)
    );

    // Transfer ours -> ours.
    let owner = TorrentNode::start(NodeConfig::local(tmp.path().join("owner-state"))).await?;
    owner.seed(name, &folder, &meta).await?;
    let magnet =
        Magnet::for_meta(&meta, &[]).with_peer(owner.local_peer_addr().unwrap_or_else(|| ([127, 0, 0, 1], 0).into()));
    let member = TorrentNode::start(NodeConfig::local(tmp.path().join("member-state"))).await?;
    let t = Instant::now();
    let dl = member.download(name, &magnet, &tmp.path().join("member"), DownloadOptions::default()).await?;
    dl.fetch_files(&["data", "index"]).await?;
    let ours_dl = t.elapsed().as_secs_f64();
    println!("ours->ours librqbit download: {ours_dl:.3} s ({:.1} MB/s)", mbps(total, ours_dl));
    member.shutdown().await;
    std::fs::remove_dir_all(tmp.path().join("member")).ok();

    let member2 = TorrentNode::start(NodeConfig::local(tmp.path().join("member2-state"))).await?;
    let t = Instant::now();
    let dl2 = member2.download(name, &magnet, &tmp.path().join("member2"), DownloadOptions::default()).await?;
    let stats = dl2.fetch_ranges("data", std::slice::from_ref(&(0..size))).await?;
    let ours_ranges = t.elapsed().as_secs_f64();
    println!(
        "ours->ours piece fetcher (all of data): {ours_ranges:.3} s ({:.1} MB/s), received {} bytes",
        mbps(size, ours_ranges),
        stats.bytes_received
    );
    member2.shutdown().await;
    std::fs::remove_dir_all(tmp.path().join("member2")).ok();
    owner.shutdown().await;

    // Baseline: libtorrent -> libtorrent in the same run.
    let mut lt = None;
    if let Ok(py) = std::env::var("CHS_LT_PYTHON") {
        // Relative to where the bench was started, not to the script's folder it runs in.
        let py = std::path::absolute(&py)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_bench.py");
        let out = std::process::Command::new(&py)
            .arg(&script)
            .arg(&folder)
            .arg("131072")
            .arg(tmp.path().join("lt-out"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop"))
            .output()?;
        anyhow::ensure!(out.status.success(), "lt_bench.py failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let create = v["create_seconds"].as_f64().unwrap_or(f64::NAN);
        let download = v["download_seconds"].as_f64().unwrap_or(f64::NAN);
        println!("libtorrent create: {create:.3} s ({:.1} MB/s)", mbps(total, create));
        println!("libtorrent->libtorrent download: {download:.3} s ({:.1} MB/s)", mbps(total, download));
        println!(
            "ratio ours/libtorrent: download {:.2}x (piece fetcher {:.2}x), creation speed {:.2}x",
            download / ours_dl,
            download / ours_ranges,
            create / ours_create
        );
        lt = Some((create, download));
    } else {
        println!("libtorrent baseline skipped: CHS_LT_PYTHON not set");
    }
    let json = serde_json::json!({
        "bench": "torrent",
        "size_mib": size_mib,
        "piece_length": piece_length,
        "ours_create_s": ours_create,
        "ours_create_mbps": mbps(total, ours_create),
        "ours_create_131072_s": ours_create_131k,
        "ours_download_s": ours_dl,
        "ours_download_mbps": mbps(total, ours_dl),
        "ours_piece_fetcher_mbps": mbps(size, ours_ranges),
        "lt_create_s": lt.map(|l| l.0),
        "lt_download_s": lt.map(|l| l.1),
        "lt_download_mbps": lt.map(|l| mbps(total, l.1)),
        "download_ratio": lt.map(|l| l.1 / ours_dl),
        "create_speed_ratio": lt.map(|l| l.0 / ours_create),
    });
    println!("BENCH_JSON {json}");
    Ok(())
}
