//! Torrent benchmark: a 1 GiB loopback download by chs against fair anchors and the machine's
//! limits, all measured in the same run, repetitions interleaved, medians reported.
//!
//! Run: `CHS_LT_PYTHON=<venv>/bin/python CHS_PEERS_BIN=<peers>/bin cargo run --release -p
//! chs-torrent --example bench_torrent -- [SIZE_MIB] [--reps N] [--piece-length N] [--no-utp-baseline]`
//! (default 1024 MiB, 3 repetitions, 102400-byte pieces = status-go's).
//!
//! The folder holds `index` (4 KiB) and `payload` (SIZE_MIB of pseudo-random bytes); the big file
//! sorts after `index`, so that anacrolix's leecher, which prints one `FILE` line per file (after
//! hashing it with SHA-256) once the whole torrent is complete, marks the end of the transfer with
//! its first line (4 KiB hashed), not after hashing the big file.
//!
//! Measured, per repetition, in this order:
//! - **limits**: SHA-1 on one core (the `sha1` crate chs uses, 100 KiB pieces, in this process,
//!   and `openssl speed -evp sha1` when installed; the faster is the limit), loopback TCP (one
//!   connection, 1 MiB writes and reads, two threads of this process), both per CPU-second so that
//!   other jobs do not lower them, and writing a new 1 GiB file (page cache), per CPU-second too
//!   (printed for the record, not a ratio: it varies 5x from run to run on this VM);
//! - **creation**: `TorrentMeta::from_dir` of the folder (read on one thread, hashed on all
//!   cores), and libtorrent's (below: `set_piece_hashes` with its defaults, one hashing thread
//!   fed by its disk threads; the Python binding takes no settings), each as wall time and as the
//!   CPU time of its process (which other jobs on the machine do not inflate);
//! - **libtorrent → libtorrent** (`interop/lt_bench.py tcp`, if `CHS_LT_PYTHON` is set): libtorrent
//!   2.1 with `lt_common.session()` (loopback only; no DHT, LSD, UPnP, NAT-PMP) and **uTP off**
//!   (`enable_outgoing_utp` / `enable_incoming_utp` false), 131072-byte pieces (it refuses 102400).
//!   uTP is libtorrent's default, but on loopback its congestion control holds it near 23 MB/s
//!   where TCP gives hundreds: a uTP baseline would flatter chs, which speaks TCP. The uTP figure is
//!   measured once at the end for the record (`--no-utp-baseline` skips it);
//! - **chs → chs** twice, the member in a child process (so its CPU time is its own): through
//!   librqbit (`Download::fetch_files`, what the member uses for the `index`) and through the
//!   piece fetcher (`Download::fetch_ranges` over all of `payload`, what the member uses for the
//!   archives); the seeder is a `TorrentNode` in this process;
//! - **anacrolix → anacrolix**, **anacrolix → chs**, **chs → anacrolix** (if `CHS_PEERS_BIN` is
//!   set): `chspeer-torrent seed|leech`, anacrolix v1.41 configured as status-go's
//!   `StartTorrentClient` (TCP and uTP on one port, MSE preferred; DHT, trackers and UPnP off,
//!   the peer given with `-peer`), leeching with `-flow all` (`DownloadAll`).
//!
//! Every download is timed from the magnet (metadata included) to the last verified piece. The
//! last line is `BENCH_JSON {...}`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chs_torrent::{Config, DEFAULT_PIECE_LENGTH, DownloadOptions, Magnet, TorrentMeta, TorrentNode};
use sha1::Digest;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const NAME: &str = "0x02bench";
/// The big file (see the module doc for why it sorts after `index`).
const PAYLOAD: &str = "payload";

fn fill_random(buf: &mut [u8], x: &mut u64) {
    for chunk in buf.chunks_exact_mut(8) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
}

fn write_random_file(path: &Path, len: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        fill_random(&mut buf, &mut x);
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// (user, system) CPU seconds of this process so far, from `/proc/self/stat`.
fn cpu_times() -> (f64, f64) {
    let ticks = 100.0; // USER_HZ: 100 on every Linux this runs on
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (f64::NAN, f64::NAN) };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN) / ticks;
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    (get(11), get(12))
}

/// CPU time of the calling thread so far, seconds (`/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// SHA-1 throughput of one core, MB/s per CPU-second (as `openssl speed` counts, so that other
/// jobs on the machine do not lower it): the `sha1` crate (what chs hashes pieces with) over
/// 512 MiB in 100 KiB pieces.
fn sha1_limit() -> f64 {
    let mut buf = vec![0u8; 64 << 20];
    fill_random(&mut buf, &mut 7);
    let t = thread_cpu();
    let mut acc = 0u8;
    for _ in 0..8 {
        for piece in buf.chunks(102_400) {
            acc ^= sha1::Sha1::digest(piece)[0];
        }
    }
    let secs = thread_cpu() - t;
    std::hint::black_box(acc);
    mbps(8 * buf.len() as u64, secs)
}

/// SHA-1 throughput of one core by `openssl speed -evp sha1` (100 KiB blocks, CPU time), MB/s,
/// when `openssl` is installed: OpenSSL's assembly is faster than the `sha1` crate, and the
/// limit is the machine's, not our library's.
fn openssl_sha1() -> Option<f64> {
    let o = std::process::Command::new("openssl")
        .args(["speed", "-evp", "sha1", "-bytes", "102400", "-seconds", "2"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stdout);
    // Last line: `sha1  1926136.18k` (1000s of bytes per second).
    let k = text.lines().rev().find(|l| l.trim_start().starts_with("sha1"))?.split_whitespace().nth(1)?;
    k.trim_end_matches('k').parse::<f64>().ok().map(|k| k / 1000.0)
}

/// Writing a new 1 GiB file in `dir` (1 MiB `write`s, no `fsync`: what a download pays is the
/// copy into the page cache), MB/s per CPU-second of the writing thread. On this VM the copy
/// into fresh page-cache pages is the most expensive step of a download (half the fetcher's
/// samples in `perf`), and it varies with the other jobs' memory and writeback traffic.
fn file_write_limit(dir: &Path) -> anyhow::Result<f64> {
    let path = dir.join("write-limit");
    let buf = vec![0xa5u8; 1 << 20];
    let t = thread_cpu();
    let mut f = std::fs::File::create(&path)?;
    for _ in 0..1024 {
        f.write_all(&buf)?;
    }
    let secs = thread_cpu() - t;
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(mbps(1 << 30, secs))
}

/// Loopback TCP throughput, MB/s: 2 GiB over one connection, 1 MiB writes and reads, per
/// CPU-second of the busier side (sender or receiver thread), so that other jobs on the machine
/// do not lower it.
fn tcp_limit() -> anyhow::Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let total: u64 = 2 << 30;
    let sender = std::thread::spawn(move || -> std::io::Result<f64> {
        let t = thread_cpu();
        let mut s = std::net::TcpStream::connect(addr)?;
        let buf = vec![0x5au8; 1 << 20];
        let mut left = total;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n])?;
            left -= n as u64;
        }
        Ok(thread_cpu() - t)
    });
    let (mut conn, _) = listener.accept()?;
    let t = thread_cpu();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    while got < total {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let receiver_secs = thread_cpu() - t;
    let sender_secs = sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
    Ok(mbps(got, receiver_secs.max(sender_secs)))
}

/// A running `chspeer-torrent` (or our own child) and its stdout lines.
struct Proc {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Proc {
    fn spawn(program: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", program.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        Ok(Self { child, lines: BufReader::new(stdout).lines() })
    }

    /// The next line starting with `prefix`; fails on `FATAL`, exit or timeout.
    async fn line(&mut self, prefix: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("timed out waiting for {prefix}"))??
                .with_context(|| format!("exited before printing {prefix}"))?;
            if line.starts_with("FATAL") {
                bail!("{line}");
            }
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }
}

/// The value of `key=` in a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}="))?;
    line[at + key.len() + 1..].split(' ').next()
}

/// One download by a chs member in a child process (`--fetch`): seconds, user and system CPU.
#[derive(Debug, Clone, Copy)]
struct Fetch {
    secs: f64,
    user_s: f64,
    sys_s: f64,
}

/// Child mode: `--fetch MAGNET WORK_DIR files|ranges`; prints `FETCH {json}`.
async fn child_fetch(magnet: &str, work: &Path, mode: &str) -> anyhow::Result<()> {
    let magnet: Magnet = magnet.parse()?;
    let member = TorrentNode::start(Config::local(work.join("state"))).await?;
    let (u0, s0) = cpu_times();
    let t = Instant::now();
    let dl = member.download(NAME, &magnet, &work.join("out"), DownloadOptions::default()).await?;
    let size = dl.meta().files().iter().find(|f| f.path == [PAYLOAD]).map_or(0, |f| f.length);
    match mode {
        "files" => dl.fetch_files(&["index", PAYLOAD]).await?,
        "ranges" => {
            dl.fetch_ranges("index", std::slice::from_ref(&(0..4096))).await?;
            dl.fetch_ranges(PAYLOAD, std::slice::from_ref(&(0..size))).await?;
        }
        other => bail!("unknown fetch mode {other}"),
    }
    let secs = t.elapsed().as_secs_f64();
    let (u1, s1) = cpu_times();
    println!("FETCH {}", serde_json::json!({"secs": secs, "user_s": u1 - u0, "sys_s": s1 - s0}));
    member.shutdown().await;
    Ok(())
}

/// Runs `--fetch` in a child process and parses its result.
async fn chs_fetch(magnet: &Magnet, work: &Path, mode: &str) -> anyhow::Result<Fetch> {
    let exe = std::env::current_exe()?;
    let exe_s = exe.to_string_lossy().into_owned();
    let magnet = magnet.to_string();
    let work_s = work.to_string_lossy().into_owned();
    // Profiling aid: `CHS_BENCH_FETCH_WRAPPER="strace -c -f -o /tmp/fetch.strace"` runs the member
    // under that command.
    let wrapper = std::env::var("CHS_BENCH_FETCH_WRAPPER").unwrap_or_default();
    let mut argv: Vec<&str> = wrapper.split_whitespace().collect();
    argv.extend([exe_s.as_str(), "--fetch", &magnet, &work_s, mode]);
    let mut p = Proc::spawn(Path::new(argv[0]), &argv[1..])?;
    let line = p.line("FETCH ", Duration::from_secs(900)).await?;
    p.child.wait().await?;
    std::fs::remove_dir_all(work).ok();
    let v: serde_json::Value = serde_json::from_str(line.trim_start_matches("FETCH "))?;
    let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Fetch { secs: g("secs"), user_s: g("user_s"), sys_s: g("sys_s") })
}

/// anacrolix (as status-go) leeches `magnet` from `peer`: seconds to the end of the transfer.
async fn anacrolix_leech(bin: &Path, magnet: &str, peer: std::net::SocketAddr, work: &Path) -> anyhow::Result<f64> {
    let datadir = work.to_string_lossy().into_owned();
    let peer = peer.to_string();
    let t = Instant::now();
    let mut p = Proc::spawn(
        &bin.join("chspeer-torrent"),
        &[
            "leech",
            "-datadir",
            &datadir,
            "-magnet",
            magnet,
            "-peer",
            &peer,
            "-listen-host",
            "127.0.0.1",
            "-flow",
            "all",
            "-timeout",
            "900s",
        ],
    )?;
    let first = p.line("FILE ", Duration::from_secs(900)).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(first.contains(&format!("path={NAME}/index")), "index is not the first file: {first}");
    p.line("DONE", Duration::from_secs(120)).await?;
    p.child.wait().await?;
    std::fs::remove_dir_all(work).ok();
    Ok(secs)
}

/// `lt_bench.py FOLDER 131072 OUT tcp|utp`: (create seconds, create CPU seconds, download seconds).
fn libtorrent(py: &Path, folder: &Path, out: &Path, transport: &str) -> anyhow::Result<(f64, f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/lt_bench.py");
    let o = std::process::Command::new(py)
        .arg(&script)
        .arg(folder)
        .arg("131072")
        .arg(out)
        .arg(transport)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop"))
        .output()?;
    std::fs::remove_dir_all(out).ok();
    anyhow::ensure!(o.status.success(), "lt_bench.py failed: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok((g("create_seconds"), g("create_cpu_seconds"), g("download_seconds")))
}

/// Samples of every figure over the repetitions.
#[derive(Default)]
struct Samples {
    sha1: Vec<f64>,
    sha1_crate: Vec<f64>,
    write: Vec<f64>,
    ours_create: Vec<f64>,
    ours_create_cpu: Vec<f64>,
    lt_create_cpu: Vec<f64>,
    tcp: Vec<f64>,
    lt_create: Vec<f64>,
    lt: Vec<f64>,
    chs_files: Vec<f64>,
    chs_files_sys: Vec<f64>,
    chs_files_user: Vec<f64>,
    chs_ranges: Vec<f64>,
    chs_ranges_sys: Vec<f64>,
    chs_ranges_user: Vec<f64>,
    seed_sys: Vec<f64>,
    seed_user: Vec<f64>,
    ana_ana: Vec<f64>,
    ana_chs: Vec<f64>,
    chs_ana: Vec<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--fetch") {
        let [_, magnet, work, mode] = &args[..] else { bail!("--fetch MAGNET WORK_DIR files|ranges") };
        return child_fetch(magnet, Path::new(work), mode).await;
    }
    let size_mib: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let piece_length: u32 = opt("--piece-length").and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_PIECE_LENGTH);
    let reps: usize = opt("--reps").and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let utp_baseline = !args.iter().any(|a| a == "--no-utp-baseline");
    let lt_py = std::env::var_os("CHS_LT_PYTHON").map(|p| std::path::absolute(PathBuf::from(p))).transpose()?;
    let peers_bin = std::env::var_os("CHS_PEERS_BIN").filter(|p| !p.is_empty()).map(PathBuf::from);

    let tmp = tempfile::tempdir()?;
    let owner_dir = tmp.path().join("owner");
    let folder = owner_dir.join(NAME);
    std::fs::create_dir_all(&folder)?;
    let size = size_mib << 20;
    write_random_file(&folder.join(PAYLOAD), size)?;
    write_random_file(&folder.join("index"), 4096)?;
    println!(
        "data: {size_mib} MiB + 4 KiB index, piece length {piece_length}, {reps} interleaved repetitions, medians"
    );
    println!("machine shared with other jobs: compare figures of this run only");

    let f = folder.clone();
    let meta = tokio::task::spawn_blocking(move || TorrentMeta::from_dir(&f, piece_length)).await??;
    let total = meta.total_length();

    // Seeders, kept for all repetitions.
    let owner = TorrentNode::start(Config::local(tmp.path().join("owner-state"))).await?;
    owner.seed(NAME, &folder, &meta).await?;
    let owner_addr = owner.local_peer_addr().context("owner listens")?;
    let chs_magnet = Magnet::for_meta(&meta, &[]).with_peer(owner_addr);
    let mut ana_seeder = None;
    if let Some(bin) = &peers_bin {
        let datadir = owner_dir.to_string_lossy().into_owned();
        let mut p = Proc::spawn(
            &bin.join("chspeer-torrent"),
            &["seed", "-datadir", &datadir, "-name", NAME, "-listen-host", "127.0.0.1"],
        )?;
        let listen = p.line("LISTEN ", Duration::from_secs(60)).await?;
        let port: u16 = field(&listen, "port").and_then(|p| p.parse().ok()).context("LISTEN port")?;
        let magnet_line = p.line("MAGNET ", Duration::from_secs(300)).await?;
        let magnet: Magnet = magnet_line.trim_start_matches("MAGNET ").parse()?;
        anyhow::ensure!(magnet.info_hash == meta.info_hash(), "anacrolix built another info hash");
        p.line("SEEDING", Duration::from_secs(300)).await?;
        ana_seeder = Some((p, magnet_line.trim_start_matches("MAGNET ").to_owned(), ([127, 0, 0, 1], port).into()));
    } else {
        println!("anacrolix baselines skipped: CHS_PEERS_BIN not set");
    }
    if lt_py.is_none() {
        println!("libtorrent baselines skipped: CHS_LT_PYTHON not set");
    }

    let mut s = Samples::default();
    for rep in 1..=reps {
        println!("-- repetition {rep}/{reps}");
        let sha_crate = tokio::task::spawn_blocking(sha1_limit).await?;
        let sha_openssl = tokio::task::spawn_blocking(openssl_sha1).await?;
        let sha = sha_openssl.unwrap_or(f64::NAN).max(sha_crate);
        println!(
            "SHA-1 one core: sha1 crate {sha_crate:.0} MB/s, openssl {} (limit: the faster)",
            sha_openssl.map_or("not installed".to_owned(), |v| format!("{v:.0} MB/s"))
        );
        s.sha1_crate.push(sha_crate);
        let tcp = tokio::task::spawn_blocking(tcp_limit).await??;
        let dir = tmp.path().to_owned();
        let write = tokio::task::spawn_blocking(move || file_write_limit(&dir)).await??;
        println!(
            "limits (per CPU-second): SHA-1 one core {sha:.0} MB/s, loopback TCP {tcp:.0} MB/s, \
             new-file write {write:.0} MB/s"
        );
        s.sha1.push(sha);
        s.tcp.push(tcp);
        s.write.push(write);
        let t = Instant::now();
        let (cu0, cs0) = cpu_times();
        let f = folder.clone();
        tokio::task::spawn_blocking(move || TorrentMeta::from_dir(&f, piece_length)).await??;
        let create = t.elapsed().as_secs_f64();
        let (cu1, cs1) = cpu_times();
        let create_cpu = (cu1 - cu0) + (cs1 - cs0);
        println!("chs create: {create:.3} s ({:.1} MB/s), CPU {create_cpu:.2} s", mbps(total, create));
        s.ours_create.push(create);
        s.ours_create_cpu.push(create_cpu);
        if let Some(py) = &lt_py {
            let (c, c_cpu, d) = libtorrent(py, &folder, &tmp.path().join("lt-out"), "tcp")?;
            println!(
                "libtorrent -> libtorrent (TCP): {d:.3} s ({:.1} MB/s); create {c:.3} s, CPU {c_cpu:.2} s",
                mbps(total, d)
            );
            s.lt_create.push(c);
            s.lt_create_cpu.push(c_cpu);
            s.lt.push(mbps(total, d));
        }
        for (mode, rate, user, sys) in [
            ("files", &mut s.chs_files, &mut s.chs_files_user, &mut s.chs_files_sys),
            ("ranges", &mut s.chs_ranges, &mut s.chs_ranges_user, &mut s.chs_ranges_sys),
        ] {
            let (su0, ss0) = cpu_times();
            let f = chs_fetch(&chs_magnet, &tmp.path().join("member"), mode).await?;
            let (su1, ss1) = cpu_times();
            let gib = total as f64 / f64::from(1u32 << 30);
            println!(
                "chs -> chs ({}): {:.3} s ({:.1} MB/s); fetcher CPU per GiB user {:.2} s, system {:.2} s; \
                 seeder CPU per GiB user {:.2} s, system {:.2} s",
                if mode == "files" { "librqbit" } else { "piece fetcher" },
                f.secs,
                mbps(total, f.secs),
                f.user_s / gib,
                f.sys_s / gib,
                (su1 - su0) / gib,
                (ss1 - ss0) / gib
            );
            rate.push(mbps(total, f.secs));
            user.push(f.user_s / gib);
            sys.push(f.sys_s / gib);
            s.seed_user.push((su1 - su0) / gib);
            s.seed_sys.push((ss1 - ss0) / gib);
        }
        if let (Some(bin), Some((_, ana_magnet, ana_addr))) = (&peers_bin, &ana_seeder) {
            let d = anacrolix_leech(bin, ana_magnet, *ana_addr, &tmp.path().join("ana-leech")).await?;
            println!("anacrolix -> anacrolix: {d:.3} s ({:.1} MB/s)", mbps(total, d));
            s.ana_ana.push(mbps(total, d));
            let ana_magnet: Magnet = ana_magnet.parse()?;
            let f = chs_fetch(&ana_magnet.with_peer(*ana_addr), &tmp.path().join("member"), "ranges").await?;
            println!("anacrolix -> chs (piece fetcher): {:.3} s ({:.1} MB/s)", f.secs, mbps(total, f.secs));
            s.ana_chs.push(mbps(total, f.secs));
            let plain = Magnet::for_meta(&meta, &[]).to_string();
            let d = anacrolix_leech(bin, &plain, owner_addr, &tmp.path().join("ana-leech")).await?;
            println!("chs -> anacrolix: {d:.3} s ({:.1} MB/s)", mbps(total, d));
            s.chs_ana.push(mbps(total, d));
        }
    }
    let mut lt_utp = None;
    if let (Some(py), true) = (&lt_py, utp_baseline) {
        let (_, _, d) = libtorrent(py, &folder, &tmp.path().join("lt-out"), "utp")?;
        println!(
            "libtorrent -> libtorrent (uTP, its default; once, for the record): {d:.3} s ({:.1} MB/s)",
            mbps(total, d)
        );
        lt_utp = Some(mbps(total, d));
    }
    owner.shutdown().await;
    drop(ana_seeder);

    // Medians and ratios.
    let m = |v: &Vec<f64>| (!v.is_empty()).then(|| median(v));
    let sha1 = median(&s.sha1);
    let tcp = median(&s.tcp);
    let write = median(&s.write);
    let lt = m(&s.lt);
    let ana_ana = m(&s.ana_ana);
    let anchor = [lt, ana_ana].into_iter().flatten().fold(f64::NAN, f64::max);
    let anchor_name = match (lt, ana_ana) {
        (None, None) => "none (set CHS_LT_PYTHON and CHS_PEERS_BIN)",
        (Some(l), a) if l >= a.unwrap_or(0.0) => "libtorrent → libtorrent (TCP)",
        _ => "anacrolix → anacrolix",
    };
    let chs_files = median(&s.chs_files);
    let chs_ranges = median(&s.chs_ranges);
    let ours = chs_files.max(chs_ranges);
    println!(
        "== medians of {reps}; limits: SHA-1 one core {sha1:.0} MB/s, loopback TCP {tcp:.0} MB/s, \
         new-file write {write:.0} MB/s"
    );
    println!("   strongest anchor: {anchor_name} {anchor:.1} MB/s");
    let show = |what: &str, v: Option<f64>| {
        if let Some(v) = v {
            println!(
                "   {what:<36} {v:>7.1} MB/s  {:.2}x anchor  {:.2}x SHA-1 limit  {:.2}x loopback TCP",
                v / anchor,
                v / sha1,
                v / tcp
            );
        }
    };
    show("libtorrent -> libtorrent (TCP)", lt);
    show("libtorrent -> libtorrent (uTP)", lt_utp);
    show("anacrolix -> anacrolix", ana_ana);
    show("chs -> chs (librqbit)", Some(chs_files));
    show("chs -> chs (piece fetcher)", Some(chs_ranges));
    show("anacrolix -> chs (piece fetcher)", m(&s.ana_chs));
    show("chs -> anacrolix", m(&s.chs_ana));
    println!(
        "   CPU per GiB: piece fetcher user {:.2} s, system {:.2} s; librqbit fetch user {:.2} s, system {:.2} s; \
         chs seeder user {:.2} s, system {:.2} s",
        median(&s.chs_ranges_user),
        median(&s.chs_ranges_sys),
        median(&s.chs_files_user),
        median(&s.chs_files_sys),
        median(&s.seed_user),
        median(&s.seed_sys)
    );
    let lt_create = m(&s.lt_create);
    let ours_create = median(&s.ours_create);
    let json = serde_json::json!({
        "bench": "torrent",
        "size_mib": size_mib,
        "piece_length": piece_length,
        "reps": reps,
        "sha1_limit_mbps": sha1,
        "sha1_crate_mbps": median(&s.sha1_crate),
        "loopback_tcp_mbps": tcp,
        "file_write_mbps": write,
        "anchor": anchor_name,
        "anchor_mbps": anchor,
        "ours_create_s": ours_create,
        "ours_create_mbps": mbps(total, ours_create),
        "ours_download_mbps": ours,
        "ours_librqbit_mbps": chs_files,
        "ours_piece_fetcher_mbps": chs_ranges,
        "fetcher_sys_s_per_gib": median(&s.chs_ranges_sys),
        "fetcher_user_s_per_gib": median(&s.chs_ranges_user),
        "librqbit_sys_s_per_gib": median(&s.chs_files_sys),
        "librqbit_user_s_per_gib": median(&s.chs_files_user),
        "seeder_sys_s_per_gib": median(&s.seed_sys),
        "seeder_user_s_per_gib": median(&s.seed_user),
        "ours_create_cpu_s": median(&s.ours_create_cpu),
        "lt_create_s": lt_create,
        "lt_create_cpu_s": m(&s.lt_create_cpu),
        "lt_download_mbps": lt,
        "lt_utp_download_mbps": lt_utp,
        "anacrolix_anacrolix_mbps": ana_ana,
        "anacrolix_chs_mbps": m(&s.ana_chs),
        "chs_anacrolix_mbps": m(&s.chs_ana),
        "download_ratio": ours / anchor,
        "download_vs_sha1": ours / sha1,
        "create_speed_ratio": lt_create.map(|c| c / ours_create),
    });
    println!("BENCH_JSON {json}");
    Ok(())
}
