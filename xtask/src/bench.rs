//! `cargo xtask bench [name]`: runs the benchmarks (release builds), each of which prints its figures
//! against a baseline measured in the same run and one `BENCH_JSON {...}` line; the JSON lines are
//! collected into `target/bench-report.json`. A run of all of them also writes
//! `docs/benchmarks.md`: a table of every figure with its same-run baseline and ratio, the printed
//! output and the JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;

/// (name, cargo arguments after `cargo`).
const BENCHES: &[(&str, &[&str])] = &[
    ("store", &["bench", "-p", "chs-store", "--bench", "store"]),
    ("archive", &["run", "--release", "-p", "chs-archive", "--example", "bench_archive"]),
    ("status", &["run", "--release", "-p", "chs-status", "--example", "bench_status"]),
    ("import", &["run", "--release", "-p", "chs-community", "--example", "bench_import"]),
    ("cli", &["bench", "-p", "chs", "--bench", "cli_archive"]),
    ("waku", &["run", "--release", "-p", "chs-waku", "--example", "bench_waku"]),
    ("torrent", &["run", "--release", "-p", "chs-torrent", "--example", "bench_torrent", "--", "1024"]),
    ("e2e", &["run", "--release", "-p", "chs-demo", "--example", "bench_e2e"]),
    ("load", &["run", "--release", "-p", "chs-demo", "--example", "bench_load", "--", "100", "50"]),
    ("idle", &["run", "--release", "-p", "chs-demo", "--example", "bench_idle", "--", "1000", "30", "60"]),
];

pub(crate) fn run(root: &Path, only: Option<&str>) -> anyhow::Result<()> {
    let selected: Vec<_> = BENCHES.iter().filter(|(name, _)| only.is_none_or(|o| o == *name)).collect();
    if selected.is_empty() {
        bail!("unknown benchmark {only:?}; known: {}", BENCHES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "));
    }
    let started = Instant::now();
    let mut report = Vec::new();
    let mut printed = String::new();
    for (name, args) in selected {
        let header = format!("==> bench {name}: cargo {}", args.join(" "));
        println!("{header}");
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(*args)
            .envs(peer_env(root))
            .current_dir(root)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running bench {name}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if !out.status.success() {
            bail!("bench {name} failed");
        }
        printed.push_str(&header);
        printed.push('\n');
        for line in text.lines() {
            match line.strip_prefix("BENCH_JSON ") {
                Some(json) => {
                    report.push(serde_json::from_str::<Value>(json).with_context(|| format!("bench {name} JSON"))?)
                }
                None => {
                    printed.push_str(line);
                    printed.push('\n');
                }
            }
        }
    }
    let path = root.join("target/bench-report.json");
    std::fs::create_dir_all(root.join("target"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("bench report: {}", path.display());
    if only.is_none() {
        let doc = root.join("docs/benchmarks.md");
        std::fs::write(&doc, markdown(&report, &printed, &context(root, started.elapsed().as_secs())))?;
        println!("report: {}", doc.display());
    }
    Ok(())
}

/// The baselines' peers when the caller did not name them: `CHS_LT_PYTHON` = `.venv-lt/bin/python`
/// (what `cargo xtask interop` sets up) and `CHS_PEERS_BIN` = `../shared/peers/bin`, each when it
/// exists; a benchmark without them prints that its baseline was skipped.
fn peer_env(root: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut env = Vec::new();
    let python = root.join(".venv-lt/bin/python");
    if std::env::var_os("CHS_LT_PYTHON").is_none() && python.is_file() {
        env.push(("CHS_LT_PYTHON", python.into_os_string()));
    }
    let peers = root.join("../shared/peers/bin");
    if std::env::var_os("CHS_PEERS_BIN").is_none() && peers.join("chspeer-torrent").is_file() {
        env.push(("CHS_PEERS_BIN", peers.into_os_string()));
    }
    env
}

/// Commit, date and machine of the run.
fn context(root: &Path, seconds: u64) -> String {
    let cmd = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = cmd("git", &["rev-parse", "--short", "HEAD"]);
    let dirty =
        if cmd("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() { "" } else { " + local changes" };
    let date = cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let cpus = cmd("nproc", &[]);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(String::new(), |kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0));
    format!(
        "one `cargo xtask bench` run, commit {commit}{dirty}, finished {date}, {seconds} s; machine: {cpus} CPUs ({model}), {mem}"
    )
}

fn f(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// `1234567` → `1,234,567`.
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// One table row: benchmark, what, ours, baseline, ratio, goal, met.
type Row = [String; 7];

fn row(bench: &str, what: &str, ours: String, baseline: String, ratio: f64, goal: &str, met: bool) -> Row {
    [
        bench.to_owned(),
        what.to_owned(),
        ours,
        baseline,
        format!("{ratio:.2}x"),
        goal.to_owned(),
        if met { "yes" } else { "**no**" }.to_owned(),
    ]
}

/// The table rows of one benchmark's JSON.
fn rows(v: &Value) -> Vec<Row> {
    let bench = v.get("bench").and_then(Value::as_str).unwrap_or("?");
    match bench {
        "store" => vec![
            row(
                "store",
                &format!("insert {} messages", thousands(f(v, "messages"))),
                format!("{} msg/s", thousands(f(v, "insert_msgs_per_s"))),
                format!("plain rusqlite {} msg/s", thousands(f(v, "baseline_insert_msgs_per_s"))),
                f(v, "insert_ratio"),
                "≥ 0.7x",
                f(v, "insert_ratio") >= 0.7,
            ),
            row(
                "store",
                &format!(
                    "range scan {} messages (peak RSS {:.1} MB)",
                    thousands(f(v, "messages")),
                    f(v, "scan_peak_rss_kib_full") / 1024.0
                ),
                format!("{} msg/s", thousands(f(v, "scan_msgs_per_s"))),
                format!("plain rusqlite {} msg/s", thousands(f(v, "baseline_scan_msgs_per_s"))),
                f(v, "scan_ratio"),
                "≥ 0.7x",
                f(v, "scan_ratio") >= 0.7,
            ),
        ],
        "archive" => v
            .get("runs")
            .and_then(Value::as_array)
            .map(|runs| {
                runs.iter()
                    .map(|r| {
                        row(
                            "archive",
                            &format!("build {} messages, {:.0} archives", thousands(f(r, "n")), f(r, "archives")),
                            format!("{:.2} s, peak RSS {:.1} MB", f(r, "build_s"), f(r, "peak_rss_mb")),
                            format!("SELECT + SHA-1 floor {:.2} s", f(r, "floor_s")),
                            f(r, "ratio"),
                            "≤ 1.5x, RSS < 256 MB",
                            f(r, "ratio") <= 1.5 && f(r, "peak_rss_mb") < 256.0,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "status_decode_verify" => vec![
            row(
                "status",
                &format!(
                    "decode + verify {} magnetlink/chat messages, one core (k256 floor {} msg/s)",
                    thousands(f(v, "messages")),
                    thousands(f(v, "k256_floor_msgs_per_s"))
                ),
                format!("{} msg/s", thousands(f(v, "msgs_per_s"))),
                format!("libsecp256k1: AES-GCM + 2 recoveries {} msg/s", thousands(f(v, "baseline_msgs_per_s"))),
                f(v, "ratio"),
                "≥ 0.8x",
                f(v, "ratio") >= 0.8,
            ),
            row(
                "status",
                &format!("decode + verify, all {:.0} cores", f(v, "threads")),
                format!("{} msg/s", thousands(f(v, "all_cores_msgs_per_s"))),
                format!("libsecp256k1 floor {} msg/s", thousands(f(v, "all_cores_baseline_msgs_per_s"))),
                f(v, "all_cores_ratio"),
                "≥ 0.8x",
                f(v, "all_cores_ratio") >= 0.8,
            ),
        ],
        "status_chat_key" => vec![row(
            "status",
            &format!(
                "chat key derivation (PBKDF2-HMAC-SHA256, 65,356 rounds; one per chat a node follows), one core; limit 2 x 65,356 SHA-256 compressions {:.2} ms ({:.2}x of it)",
                f(v, "limit_ms_per_key"),
                f(v, "limit_ms_per_key") / f(v, "ms_per_key")
            ),
            format!("{:.2} ms/key", f(v, "ms_per_key")),
            format!(
                "RustCrypto pbkdf2 {:.2} ms, OpenSSL (Python hashlib) {:.2} ms",
                f(v, "rustcrypto_ms_per_key"),
                f(v, "openssl_ms_per_key")
            ),
            f(v, "ratio"),
            "≥ 1.0x",
            f(v, "ratio") >= 1.0,
        )],
        "import" => vec![row(
            "import",
            &format!("canonical import of {} archived messages", thousands(f(v, "messages"))),
            format!("{} msg/s", thousands(f(v, "import_deferred_msgs_per_s"))),
            format!("plain batched INSERT {} msg/s", thousands(f(v, "baseline_msgs_per_s"))),
            f(v, "ratio"),
            "≥ 0.7x",
            f(v, "ratio") >= 0.7,
        )],
        "cli_archive" => vec![
            row(
                "cli",
                &format!(
                    "`chs store import --ndjson` of {} messages (peak RSS {:.0} MB)",
                    thousands(f(v, "messages")),
                    f(v, "import_peak_rss_mb")
                ),
                format!("{} msg/s", thousands(f(v, "import_msgs_per_s"))),
                format!("Store::insert_batch {} msg/s", thousands(f(v, "insert_msgs_per_s"))),
                f(v, "import_ratio"),
                "≥ 0.7x",
                f(v, "import_ratio") >= 0.7,
            ),
            row(
                "cli",
                &format!(
                    "store import + archive build of {} messages (build peak RSS {:.0} MB; status-go {:.0} MB)",
                    thousands(f(v, "messages")),
                    f(v, "build_peak_rss_mb"),
                    f(v, "status_go_create_peak_rss_mb")
                ),
                format!("{:.2} s", f(v, "import_build_s")),
                format!("status-go's creator {:.2} s", f(v, "status_go_create_s")),
                f(v, "create_speed_ratio"),
                "> 1.0x (speed)",
                f(v, "create_speed_ratio") > 1.0,
            ),
            row(
                "cli",
                &format!(
                    "extract every archive as JSON lines (peak RSS {:.0} MB; status-go {:.0} MB)",
                    f(v, "extract_peak_rss_mb"),
                    f(v, "status_go_extract_peak_rss_mb")
                ),
                format!("{:.2} s", f(v, "extract_s")),
                format!("status-go's extractor {:.2} s", f(v, "status_go_extract_s")),
                f(v, "extract_speed_ratio"),
                "≥ 3.0x (speed)",
                f(v, "extract_speed_ratio") >= 3.0,
            ),
        ],
        "waku_relay" => vec![
            row(
                "waku",
                &format!(
                    "{:.0} × {:.0} B, chs → relay → chs, relay chs vs status-go (delivered {:.1} % / {:.1} %)",
                    f(v, "messages"),
                    f(v, "payload_bytes"),
                    f(v, "hop_chs_delivery_ratio") * 100.0,
                    f(v, "hop_status_go_delivery_ratio") * 100.0
                ),
                format!("p50 {:.2} ms, p99 {:.2} ms", f(v, "hop_chs_p50_ms"), f(v, "hop_chs_p99_ms")),
                format!(
                    "status-go relay p50 {:.2} ms, p99 {:.2} ms",
                    f(v, "hop_status_go_p50_ms"),
                    f(v, "hop_status_go_p99_ms")
                ),
                f(v, "hop_p99_ratio"),
                "100 % delivered, p99 ≤ 1.0x",
                f(v, "hop_chs_delivery_ratio") >= 1.0 && f(v, "hop_p99_ratio") <= 1.0,
            ),
            row(
                "waku",
                &format!(
                    "{:.0} × {:.0} B over {:.0} relay nodes, delivered {:.1} %",
                    f(v, "messages"),
                    f(v, "payload_bytes"),
                    f(v, "nodes"),
                    f(v, "delivery_ratio") * 100.0
                ),
                format!("p50 {:.1} ms, p99 {:.1} ms", f(v, "p50_ms"), f(v, "p99_ms")),
                format!(
                    "20 status-go nodes, same links and publishes: delivered {:.1} %, p50 {:.1} ms, p99 {:.1} ms",
                    f(v, "mesh_status_go_delivery_ratio") * 100.0,
                    f(v, "mesh_status_go_p50_ms"),
                    f(v, "mesh_status_go_p99_ms")
                ),
                f(v, "mesh_p99_ratio"),
                "100 % delivered, p99 < 1 s and ≤ 1.0x",
                f(v, "delivery_ratio") >= 1.0 && f(v, "p99_ms") < 1000.0 && f(v, "mesh_p99_ratio") <= 1.0,
            ),
        ],
        "torrent" => {
            // Every figure against the strongest anchor (libtorrent TCP-only or anacrolix, the
            // faster of the two in this run) and against the machine's SHA-1 limit.
            let anchor =
                format!("{} {:.1} MB/s", v.get("anchor").and_then(Value::as_str).unwrap_or("?"), f(v, "anchor_mbps"));
            let sha1 = f(v, "sha1_limit_mbps");
            let limits = format!(
                "SHA-1 {:.0} MB/s, loopback TCP {:.0} MB/s, new-file write {:.0} MB/s",
                sha1,
                f(v, "loopback_tcp_mbps"),
                f(v, "file_write_mbps")
            );
            let rate = |key: &str| format!("{:.1} MB/s ({:.2}x SHA-1)", f(v, key), f(v, key) / sha1);
            let ana = f(v, "anacrolix_anacrolix_mbps");
            let vs_anacrolix = |what: &str, key: &str| {
                row(
                    "torrent",
                    what,
                    rate(key),
                    format!("anacrolix → anacrolix {ana:.1} MB/s"),
                    f(v, key) / ana,
                    "≥ 1.0x",
                    f(v, key) >= ana,
                )
            };
            vec![
                row(
                    "torrent",
                    &format!("download {:.0} MiB on loopback, chs → chs (best path)", f(v, "size_mib")),
                    rate("ours_download_mbps"),
                    anchor.clone(),
                    f(v, "download_ratio"),
                    "≥ 1.0x",
                    f(v, "download_ratio") >= 1.0,
                ),
                row(
                    "torrent",
                    "chs → chs through librqbit (`fetch_files`)",
                    rate("ours_librqbit_mbps"),
                    anchor.clone(),
                    f(v, "ours_librqbit_mbps") / f(v, "anchor_mbps"),
                    "—",
                    true,
                ),
                row(
                    "torrent",
                    "machine limits (same run, one core / one connection / one writer)",
                    limits,
                    anchor,
                    f(v, "ours_download_mbps") / (sha1 / 2.0),
                    "toward 1.0x of half SHA-1",
                    f(v, "ours_download_mbps") >= sha1 / 2.0,
                ),
                vs_anacrolix("anacrolix (as status-go) seeds → chs downloads", "anacrolix_chs_mbps"),
                vs_anacrolix("chs seeds → anacrolix (as status-go) downloads", "chs_anacrolix_mbps"),
                row(
                    "torrent",
                    "piece fetcher system CPU per GiB",
                    format!("{:.2} s (user {:.2} s)", f(v, "fetcher_sys_s_per_gib"), f(v, "fetcher_user_s_per_gib")),
                    format!(
                        "librqbit fetch {:.2} s (user {:.2} s)",
                        f(v, "librqbit_sys_s_per_gib"),
                        f(v, "librqbit_user_s_per_gib")
                    ),
                    f(v, "fetcher_sys_s_per_gib") / f(v, "librqbit_sys_s_per_gib"),
                    "< 1.0x",
                    f(v, "fetcher_sys_s_per_gib") < f(v, "librqbit_sys_s_per_gib"),
                ),
                row(
                    "torrent",
                    &format!("create the torrent of {:.0} MiB", f(v, "size_mib")),
                    format!("{:.2} s", f(v, "ours_create_s")),
                    format!("libtorrent {:.2} s", f(v, "lt_create_s")),
                    f(v, "create_speed_ratio"),
                    "≥ 1.0x (speed)",
                    f(v, "create_speed_ratio") >= 1.0,
                ),
                row(
                    "torrent",
                    &format!("create the torrent of {:.0} MiB, CPU time", f(v, "size_mib")),
                    format!("{:.2} s", f(v, "ours_create_cpu_s")),
                    format!("libtorrent {:.2} s", f(v, "lt_create_cpu_s")),
                    f(v, "lt_create_cpu_s") / f(v, "ours_create_cpu_s"),
                    "≥ 1.0x",
                    f(v, "lt_create_cpu_s") >= f(v, "ours_create_cpu_s"),
                ),
            ]
        }
        "e2e" => vec![row(
            "e2e",
            &format!("owner seeds → member done, {:.0} MB archive", f(v, "mb")),
            format!("{:.0} ms", f(v, "delivery_ms")),
            format!("bare torrent transfer {:.0} ms", f(v, "baseline_ms")),
            f(v, "ratio"),
            &format!("≤ {:.1}x", f(v, "goal_ratio")),
            f(v, "ratio") <= f(v, "goal_ratio"),
        )],
        "load" => vec![row(
            "load",
            &format!(
                "{:.0} members at once (owner seeding {:.0} communities in {:.1} s); owner uploaded {:.1} copies; peak RSS {:.0} MB; all {:.0} nodes in one process: the round used {:.1} CPU-s, its floor on {:.0} cores {:.1} s ({:.2}x that limit)",
                f(v, "members"),
                f(v, "communities"),
                f(v, "owner_seed_all_s"),
                f(v, "owner_upload_bytes") / f(v, "torrent_bytes"),
                f(v, "peak_rss_mb"),
                f(v, "members") + 2.0,
                f(v, "round_cpu_s"),
                f(v, "cores"),
                f(v, "cpu_floor_s"),
                f(v, "ratio_to_cpu_floor")
            ),
            format!("{:.0}/{:.0} complete in {:.1} s", f(v, "completed"), f(v, "members"), f(v, "all_members_s")),
            format!("1 member alone {:.1} s", f(v, "single_member_s")),
            f(v, "ratio"),
            &format!("all complete, ≤ {:.1}x", f(v, "goal_ratio")),
            f(v, "completion_ratio") >= 1.0 && f(v, "ratio") <= f(v, "goal_ratio"),
        )],
        "idle" => vec![row(
            "idle",
            &format!(
                "owner holding {:.0} communities ({:.0} seeding), idle for {:.0} s",
                f(v, "communities"),
                f(v, "seeding"),
                f(v, "window_s")
            ),
            format!(
                "CPU {:.2}% of one core, RSS {:.0} MB (peak {:.0} MB)",
                f(v, "cpu_pct"),
                f(v, "rss_mb"),
                f(v, "peak_rss_mb")
            ),
            // No peer to compare with: the ratio is the share of the goal's budget used (the
            // larger of CPU and peak RSS).
            format!("budget {:.0}% CPU, {:.0} MB", f(v, "goal_cpu_pct"), f(v, "goal_rss_mb")),
            (f(v, "cpu_pct") / f(v, "goal_cpu_pct")).max(f(v, "peak_rss_mb") / f(v, "goal_rss_mb")),
            &format!("< {:.0}% CPU, < {:.0} MB", f(v, "goal_cpu_pct"), f(v, "goal_rss_mb")),
            f(v, "cpu_pct") < f(v, "goal_cpu_pct") && f(v, "peak_rss_mb") < f(v, "goal_rss_mb"),
        )],
        other => {
            vec![row(other, "(no table row for this benchmark)", String::new(), String::new(), f64::NAN, "", false)]
        }
    }
}

fn markdown(report: &[Value], printed: &str, context: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench` (do not edit by hand): {context}. Each benchmark measures its own\n\
         baseline in the same run; ratio = ours / baseline as each benchmark defines it (throughput:\n\
         higher is better; times and latencies: lower is better). The goals are the issues' targets.\n"
    );
    let _ = writeln!(md, "| benchmark | what | ours | baseline (same run) | ratio | goal | met |");
    let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- | --- |");
    for v in report {
        for r in rows(v) {
            let _ = writeln!(md, "| {} |", r.join(" | "));
        }
    }
    let _ = writeln!(md, "\n## Printed output\n\n```text\n{}```\n", printed);
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    let _ = writeln!(md, "## JSON (`target/bench-report.json`)\n\n```json\n{json}\n```");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_benchmark_json_gets_a_table_row_with_its_ratio() {
        let report: Vec<Value> = serde_json::from_str(
            r#"[{"bench":"store","messages":1000000,"insert_msgs_per_s":237464,"baseline_insert_msgs_per_s":320330,"insert_ratio":0.741,"scan_msgs_per_s":1270811,"baseline_scan_msgs_per_s":1389220,"scan_ratio":0.915,"scan_peak_rss_kib_full":10292},
                {"bench":"torrent","size_mib":1024,"sha1_limit_mbps":1900.0,"loopback_tcp_mbps":3000.0,"anchor":"libtorrent → libtorrent (TCP)","anchor_mbps":438.0,"ours_download_mbps":500.0,"ours_librqbit_mbps":130.0,"download_ratio":1.1415,"anacrolix_chs_mbps":96.0,"anacrolix_anacrolix_mbps":54.0,"chs_anacrolix_mbps":157.0,"fetcher_sys_s_per_gib":1.0,"fetcher_user_s_per_gib":1.0,"librqbit_sys_s_per_gib":5.8,"librqbit_user_s_per_gib":3.0,"ours_create_s":0.6,"lt_create_s":0.7,"create_speed_ratio":1.17,"ours_create_cpu_s":0.7,"lt_create_cpu_s":0.77,"file_write_mbps":410.0},
                {"bench":"e2e","mb":10,"delivery_ms":448.1,"baseline_ms":171.2,"ratio":2.617,"goal_ratio":2.0},
                {"bench":"status_chat_key","keys":24,"ms_per_key":5.89,"rustcrypto_ms_per_key":7.24,"openssl_ms_per_key":14.62,"anchor_ms_per_key":7.24,"ratio":1.229,"limit_ms_per_key":4.65,"goal_ratio":1.0},
                {"bench":"load","communities":100,"owner_seed_all_s":40.0,"members":50,"completed":49,"completion_ratio":0.98,"all_members_s":12.6,"single_member_s":0.4,"ratio":31.5,"owner_upload_bytes":40000000,"torrent_bytes":1200000,"peak_rss_mb":348,"round_cpu_s":9.4,"single_cpu_s":0.2,"cores":2,"cpu_floor_s":4.7,"ratio_to_cpu_floor":2.68,"goal_ratio":5.0},
                {"bench":"idle","communities":1000,"seeding":1000,"settle_all_s":60.0,"window_s":30.0,"cpu_pct":0.4,"rss_mb":300,"peak_rss_mb":320,"goal_cpu_pct":1.0,"goal_rss_mb":500}]"#,
        )
        .unwrap();
        let md = markdown(&report, "==> bench store\n", "test");
        assert!(md.contains("| store | insert 1,000,000 messages | 237,464 msg/s | plain rusqlite 320,330 msg/s | 0.74x | ≥ 0.7x | yes |"), "{md}");
        assert!(md.contains("| e2e | owner seeds → member done, 10 MB archive | 448 ms | bare torrent transfer 171 ms | 2.62x | ≤ 2.0x | **no** |"), "{md}");
        assert!(md.contains("| torrent | download 1024 MiB on loopback, chs → chs (best path) | 500.0 MB/s (0.26x SHA-1) | libtorrent → libtorrent (TCP) 438.0 MB/s | 1.14x | ≥ 1.0x | yes |"), "{md}");
        assert!(md.contains("| torrent | machine limits (same run, one core / one connection / one writer) | SHA-1 1900 MB/s, loopback TCP 3000 MB/s, new-file write 410 MB/s |"), "{md}");
        assert!(md.contains("| torrent | create the torrent of 1024 MiB, CPU time | 0.70 s | libtorrent 0.77 s | 1.10x | ≥ 1.0x | yes |"), "{md}");
        assert!(md.contains("| torrent | anacrolix (as status-go) seeds → chs downloads | 96.0 MB/s (0.05x SHA-1) | anacrolix → anacrolix 54.0 MB/s | 1.78x | ≥ 1.0x | yes |"), "{md}");
        assert!(
            md.contains("49/50 complete in 12.6 s")
                && md.contains("| 31.50x | all complete, ≤ 5.0x | **no** |")
                && md.contains("the round used 9.4 CPU-s, its floor on 2 cores 4.7 s (2.68x that limit)"),
            "{md}"
        );
        assert!(md.contains("| idle | owner holding 1000 communities (1000 seeding), idle for 30 s | CPU 0.40% of one core, RSS 300 MB (peak 320 MB) | budget 1% CPU, 500 MB | 0.64x |"), "{md}");
        assert!(md.contains("| < 1% CPU, < 500 MB | yes |"), "{md}");
        assert!(
            md.contains(
                "| 5.89 ms/key | RustCrypto pbkdf2 7.24 ms, OpenSSL (Python hashlib) 14.62 ms | 1.23x | ≥ 1.0x | yes |"
            ),
            "{md}"
        );
        assert!(md.contains("\"bench\": \"load\""));
    }
}
