//! CLI import and archive benchmark: `cargo bench -p chs --bench cli_archive -- [N] [REPS]`
//! (default 200,000 messages of ~300 bytes on 4 topics over 4 weeks, 3 repetitions).
//!
//! Measured in the same run, repetitions interleaved, medians reported:
//! - `chs store import --ndjson` (the `chs` binary, a fresh store each time) against the store's
//!   own insert rate: [`Store::insert_batch`] of the same rows, already in memory, in batches of
//!   10,000;
//! - `chs store import` + `chs archive build` (7-day windows) against status-go's own archive
//!   creator (`chspeer-archive create`: `CreateHistoryArchiveTorrentFromMessages`, which also
//!   writes the `.torrent`) given the same messages as its JSON file;
//! - `chs archive extract --all --ndjson` against status-go's extractor (`chspeer-archive
//!   extract`: `ExtractMessagesFromHistoryArchive` of every archive of the index, printed as JSON
//!   lines), both reading the same folder (built by chs), output to /dev/null.
//!
//! Peak RSS of each process is read with `/usr/bin/time -f %M` when present. status-go's binary
//! is looked up in `$CHS_PEERS_BIN` or `../shared/peers/bin`; without it those baselines are
//! skipped with a notice.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use chs_proto::waku::{WakuMessage, message_hash};
use chs_store::{Store, StoredMessage, topic_from_content_topic};

const PUBSUB: &str = "/waku/2/rs/16/32";
const TOPICS: [u32; 4] = [0x1980_b7cb, 0xa4ab_df64, 0x0c3f_1e22, 0x7d2e_4f7e];
/// 2024-10-01T00:00:00Z.
const START: u64 = 1_727_740_800;
const SPAN: u64 = 28 * 86_400;

fn chs_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chs"))
}

fn peers_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("CHS_PEERS_BIN")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/bin"), PathBuf::from);
    let bin = dir.join("chspeer-archive");
    bin.exists().then_some(bin)
}

/// A deterministic stream of bytes (xorshift).
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// The `n` messages as the wire sees them, in time order.
fn messages(n: usize) -> Vec<(WakuMessage, u64)> {
    let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let secs = START + (i as u64 * SPAN) / n as u64;
            let mut payload = vec![0u8; 256 + i % 96];
            bytes.fill(&mut payload);
            let topic = TOPICS[i % TOPICS.len()];
            let message = WakuMessage {
                payload,
                content_topic: format!("/waku/1/0x{topic:08x}/rfc26"),
                version: Some(1),
                timestamp: Some(i64::try_from(secs * 1_000_000_000 + i as u64 % 1_000_000_000).unwrap()),
                meta: None,
                rate_limit_proof: None,
                ephemeral: None,
            };
            (message, secs)
        })
        .collect()
}

/// `chs store import --ndjson` input.
fn write_ndjson(path: &Path, msgs: &[(WakuMessage, u64)]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (m, _) in msgs {
        writeln!(
            out,
            "{{\"pubsub_topic\":\"{PUBSUB}\",\"content_topic\":\"{}\",\"timestamp\":{},\"payload\":\"{}\",\"version\":1}}",
            m.content_topic,
            m.timestamp.unwrap(),
            b64.encode(&m.payload)
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// `chspeer-archive create -messages` input: the same messages as status-go stores them.
fn write_status_go_json(path: &Path, msgs: &[(WakuMessage, u64)]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(b"[").unwrap();
    for (i, (m, secs)) in msgs.iter().enumerate() {
        let topic = topic_from_content_topic(&m.content_topic);
        let mut line = String::with_capacity(800);
        write!(
            line,
            "{}{{\"timestamp\":{secs},\"topic\":\"0x{}\",\"payload\":\"{}\",\"sig\":\"\",\"padding\":\"\",\"hash\":\"{}\",\"thirdPartyId\":\"\"}}",
            if i == 0 { "" } else { ",\n" },
            hex::encode(topic),
            hex::encode(&m.payload),
            hex::encode(message_hash(PUBSUB, m))
        )
        .unwrap();
        out.write_all(line.as_bytes()).unwrap();
    }
    out.write_all(b"]\n").unwrap();
    out.flush().unwrap();
}

/// The rows `chs store import --ndjson` stores.
fn stored(msgs: &[(WakuMessage, u64)]) -> Vec<StoredMessage> {
    msgs.iter()
        .map(|(m, _)| StoredMessage {
            hash: message_hash(PUBSUB, m),
            topic: topic_from_content_topic(&m.content_topic),
            pubsub_topic: PUBSUB.to_owned(),
            content_topic: m.content_topic.clone(),
            timestamp_ns: m.timestamp.unwrap(),
            version: 1,
            meta: Vec::new(),
            raw_payload: None,
            payload: m.payload.clone(),
            padding: Vec::new(),
            sig: Vec::new(),
            third_party_id: String::new(),
            received_at_ms: 0,
        })
        .collect()
}

/// Runs a command, stdout to /dev/null; returns (seconds, peak RSS in MiB if known).
fn timed(program: &Path, args: &[String]) -> (f64, Option<f64>) {
    let time = Path::new("/usr/bin/time");
    let report = std::env::temp_dir().join(format!("chs-bench-time-{}", std::process::id()));
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&report).arg(program);
        c
    } else {
        Command::new(program)
    };
    let start = Instant::now();
    let out = cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{} {args:?} failed: {}", program.display(), String::from_utf8_lossy(&out.stderr));
    let rss = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse::<f64>().ok()))
        .map(|kib| kib / 1024.0);
    let _ = std::fs::remove_file(&report);
    (secs, rss)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn max_rss(v: &[Option<f64>]) -> f64 {
    v.iter().flatten().copied().fold(f64::NAN, f64::max)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[derive(Default)]
struct Samples {
    insert: Vec<f64>,
    import: Vec<f64>,
    import_rss: Vec<Option<f64>>,
    build: Vec<f64>,
    build_rss: Vec<Option<f64>>,
    extract: Vec<f64>,
    extract_rss: Vec<Option<f64>>,
    sg_create: Vec<f64>,
    sg_create_rss: Vec<Option<f64>>,
    sg_extract: Vec<f64>,
    sg_extract_rss: Vec<Option<f64>>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let reps: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    // CHS_BENCH_KEEP=1 keeps the folders (stores, archives) for profiling, and says where.
    let keep = std::env::var_os("CHS_BENCH_KEEP").is_some();
    let dir = tmp.path().to_owned();
    let dir = dir.as_path();
    let msgs = messages(n);
    let ndjson = dir.join("messages.ndjson");
    let sg_json = dir.join("messages.json");
    write_ndjson(&ndjson, &msgs);
    let rows = stored(&msgs);
    let peers = peers_bin();
    if peers.is_some() {
        write_status_go_json(&sg_json, &msgs);
    } else {
        println!("notice: chspeer-archive not found (set CHS_PEERS_BIN): status-go baselines skipped");
    }
    drop(msgs);
    // Any 33-byte compressed key: status-go's archive folder is named after the community id.
    let community = format!("02{}", hex::encode(chs_waku_payload::keccak256(b"bench community")));
    let from = START.to_string();
    let to = (START + SPAN + 1).to_string();
    let chs = chs_bin();
    let mut t = Samples::default();

    for rep in 0..reps {
        let round = dir.join(format!("r{rep}"));
        std::fs::create_dir_all(&round).unwrap();

        // The store's own insert rate, same rows.
        let db = round.join("insert.sqlite");
        let mut store = Store::open(&db).unwrap();
        let start = Instant::now();
        for batch in rows.chunks(10_000) {
            store.insert_batch(batch).unwrap();
        }
        t.insert.push(start.elapsed().as_secs_f64());
        drop(store);

        // chs: import, then build the archives into the folder status-go's extractor reads.
        let db = round.join("chs.sqlite");
        let (secs, rss) = timed(&chs, &["store", "import", "--db", &s(&db), "--ndjson", &s(&ndjson)].map(String::from));
        t.import.push(secs);
        t.import_rss.push(rss);
        let data_dir = round.join("data");
        let archive_dir = data_dir.join(format!("0x{community}"));
        let mut build =
            vec!["archive", "build", "--db", &s(&db), "--dir", &s(&archive_dir), "--from", &from, "--to", &to]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
        for topic in TOPICS {
            build.extend(["--topic".to_owned(), format!("0x{topic:08x}")]);
        }
        let (secs, rss) = timed(&chs, &build);
        t.build.push(secs);
        t.build_rss.push(rss);

        // status-go's creator on the same messages.
        if let Some(peer) = &peers {
            let sg_data = round.join("sg-data");
            let sg_torrents = round.join("sg-torrents");
            let (secs, rss) = timed(
                peer,
                &[
                    "create",
                    "-datadir",
                    &s(&sg_data),
                    "-torrentdir",
                    &s(&sg_torrents),
                    "-community",
                    &community,
                    "-messages",
                    &s(&sg_json),
                    "-start",
                    &from,
                    "-end",
                    &to,
                ]
                .map(String::from),
            );
            t.sg_create.push(secs);
            t.sg_create_rss.push(rss);
            let _ = std::fs::remove_dir_all(&sg_data);
        }

        // Extract every archive of the chs-built folder: chs, then status-go.
        let (secs, rss) = timed(&chs, &["archive", "extract", &s(&archive_dir), "--all", "--ndjson"].map(String::from));
        t.extract.push(secs);
        t.extract_rss.push(rss);
        if let Some(peer) = &peers {
            let (secs, rss) =
                timed(peer, &["extract", "-datadir", &s(&data_dir), "-community", &community].map(String::from));
            t.sg_extract.push(secs);
            t.sg_extract_rss.push(rss);
        }
        std::fs::remove_dir_all(&round).unwrap();
    }

    let rate = |secs: f64| n as f64 / secs;
    let insert = median(t.insert.clone());
    let import = median(t.import.clone());
    let build = median(t.build.clone());
    let import_build = median(t.import.iter().zip(&t.build).map(|(a, b)| a + b).collect());
    let extract = median(t.extract.clone());
    let sg_create = median(t.sg_create.clone());
    let sg_extract = median(t.sg_extract.clone());
    let import_ratio = rate(import) / rate(insert);
    let create_ratio = sg_create / import_build;
    let extract_ratio = sg_extract / extract;
    println!(
        "cli archive bench: {n} messages, ~300 B payloads, 4 topics, 4 weeks; medians of {reps} interleaved runs (shared 2-core machine)"
    );
    println!(
        "  chs store import --ndjson: {import:.2} s = {:.0} msg/s (peak RSS {:.1} MB); store insert_batch {insert:.2} s = {:.0} msg/s; ratio {import_ratio:.2}x (goal >= 0.7)",
        rate(import),
        max_rss(&t.import_rss),
        rate(insert)
    );
    println!(
        "  chs import + archive build: {import_build:.2} s (build {build:.2} s, peak RSS {:.1} MB); status-go create {sg_create:.2} s (peak RSS {:.1} MB); speed ratio {create_ratio:.2}x (goal > 1)",
        max_rss(&t.build_rss),
        max_rss(&t.sg_create_rss)
    );
    println!(
        "  archive extract (all archives, JSON lines): chs {extract:.2} s (peak RSS {:.1} MB); status-go {sg_extract:.2} s (peak RSS {:.1} MB); speed ratio {extract_ratio:.2}x (goal >= 3)",
        max_rss(&t.extract_rss),
        max_rss(&t.sg_extract_rss)
    );
    let json = |x: f64| if x.is_finite() { format!("{x:.3}") } else { "null".to_owned() };
    println!(
        "BENCH_JSON {{\"bench\":\"cli_archive\",\"messages\":{n},\"reps\":{reps},\"import_s\":{},\"import_msgs_per_s\":{},\"insert_msgs_per_s\":{},\"import_ratio\":{},\"import_peak_rss_mb\":{},\"build_s\":{},\"build_peak_rss_mb\":{},\"import_build_s\":{},\"status_go_create_s\":{},\"status_go_create_peak_rss_mb\":{},\"create_speed_ratio\":{},\"extract_s\":{},\"extract_peak_rss_mb\":{},\"status_go_extract_s\":{},\"status_go_extract_peak_rss_mb\":{},\"extract_speed_ratio\":{}}}",
        json(import),
        json(rate(import)),
        json(rate(insert)),
        json(import_ratio),
        json(max_rss(&t.import_rss)),
        json(build),
        json(max_rss(&t.build_rss)),
        json(import_build),
        json(sg_create),
        json(max_rss(&t.sg_create_rss)),
        json(create_ratio),
        json(extract),
        json(max_rss(&t.extract_rss)),
        json(sg_extract),
        json(max_rss(&t.sg_extract_rss)),
        json(extract_ratio),
    );
    if keep {
        println!("kept: {}", tmp.keep().display());
    }
}
