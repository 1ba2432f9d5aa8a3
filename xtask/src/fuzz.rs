//! `cargo xtask fuzz [target] [--seconds N]`: builds the cargo-fuzz targets of `fuzz/` and runs each
//! for N seconds (default 20), then reports per target the runs, execs/s, coverage, corpus size and
//! crashes, also into `target/fuzz-report.json`. Exits non-zero on a crash, naming the crash file.
//!
//! cargo-fuzz passes nightly-only flags (`-Zsanitizer`, `-Cpasses=sancov-module`), so the
//! build runs with `RUSTC_BOOTSTRAP=1` and works on the stable toolchain. New inputs found go to
//! `target/fuzz-corpus/<target>/`; the committed seeds in `fuzz/corpus/<target>/` are only read.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;

/// The fuzz targets (binaries of `fuzz/Cargo.toml`); add new ones here and in `fuzz/Cargo.toml`
/// (e.g. the node's TOML configuration once `chs-node` exists).
pub(crate) const TARGETS: &[&str] = &[
    "index",
    "archive",
    "archive_dir",
    "magnetlink",
    "status_layers",
    "status_archived",
    "waku_message",
    "torrent_meta",
    "magnet_uri",
    "config",
];

/// The cargo-fuzz version `.ci/run` installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const DEFAULT_SECONDS: u64 = 20;

/// What one run of one target gave.
#[derive(Debug, Default)]
struct Outcome {
    target: String,
    seconds: u64,
    runs: Option<u64>,
    execs_per_sec: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus_units: Option<u64>,
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    corpus_files: usize,
    crash_file: Option<String>,
    crash_reason: Option<String>,
    exit_ok: bool,
}

pub(crate) fn run(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut only = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match *arg {
            "--seconds" => {
                seconds = iter.next().context("--seconds needs a number")?.parse().context("--seconds N")?;
            }
            name if !name.starts_with('-') && only.is_none() => only = Some(name),
            other => bail!("unexpected argument {other:?}; usage: cargo xtask fuzz [target] [--seconds N]"),
        }
    }
    let selected: Vec<&str> = TARGETS.iter().copied().filter(|t| only.is_none_or(|o| o == *t)).collect();
    if selected.is_empty() {
        bail!("unknown fuzz target {}; known: {}", only.unwrap_or_default(), TARGETS.join(", "));
    }
    let fuzz_ok = Command::new(cargo()).args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !fuzz_ok {
        bail!("cargo-fuzz is not installed: cargo install cargo-fuzz --version {CARGO_FUZZ_VERSION} --locked");
    }

    // Every target of fuzz/Cargo.toml must be in TARGETS, so that CI runs it.
    let listed = fuzz_command(root, "list").output().context("cargo fuzz list")?;
    let unlisted: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && !TARGETS.contains(name))
        .map(str::to_owned)
        .collect();
    if !unlisted.is_empty() {
        bail!("fuzz targets missing from TARGETS in xtask/src/fuzz.rs: {}", unlisted.join(", "));
    }

    println!("==> cargo fuzz build {}", only.unwrap_or("(all targets)"));
    let mut build = fuzz_command(root, "build");
    build.args(only);
    let status = build.status().context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed");
    }

    let mut outcomes = Vec::new();
    for target in selected {
        let outcome = run_target(root, target, seconds)?;
        print_outcome(&outcome);
        outcomes.push(outcome);
    }

    let report = json!({
        "seconds_per_target": seconds,
        "targets": outcomes.iter().map(|o| json!({
            "target": o.target,
            "seconds": o.seconds,
            "runs": o.runs,
            "execs_per_sec": o.execs_per_sec,
            "coverage": o.coverage,
            "features": o.features,
            "corpus_units": o.corpus_units,
            "new_units": o.new_units,
            "corpus_files": o.corpus_files,
            "peak_rss_mb": o.peak_rss_mb,
            "crash_file": o.crash_file,
            "crash_reason": o.crash_reason,
            "ok": o.exit_ok,
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(root.join("target"))?;
    let path = root.join("target/fuzz-report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;

    println!();
    println!("{:<16} {:>12} {:>9} {:>7} {:>8} {:>7}  crash", "target", "runs", "execs/s", "cov", "corpus", "files");
    for o in &outcomes {
        println!(
            "{:<16} {:>12} {:>9} {:>7} {:>8} {:>7}  {}",
            o.target,
            n(o.runs),
            n(o.execs_per_sec),
            n(o.coverage),
            n(o.corpus_units),
            o.corpus_files,
            o.crash_file.as_deref().unwrap_or(if o.exit_ok { "-" } else { "FAILED (see log above)" }),
        );
    }
    println!("fuzz report: {}", path.display());

    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.exit_ok).collect();
    if !failed.is_empty() {
        for o in &failed {
            println!(
                "CRASH in {}: {} ({}); reproduce with RUSTC_BOOTSTRAP=1 cargo fuzz run {} {}",
                o.target,
                o.crash_file.as_deref().unwrap_or("no crash file"),
                o.crash_reason.as_deref().unwrap_or("see log"),
                o.target,
                o.crash_file.as_deref().unwrap_or(""),
            );
        }
        bail!("{} fuzz target(s) crashed", failed.len());
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo fuzz <sub>` with the flags that make it work on stable. The build always goes to
/// cargo-fuzz's own `fuzz/target` (instrumented builds share nothing with the workspace's).
fn fuzz_command(root: &Path, sub: &str) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).env("RUSTC_BOOTSTRAP", "1").env_remove("CARGO_TARGET_DIR").args(["fuzz", sub]);
    cmd
}

fn run_target(root: &Path, target: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let work = root.join("target/fuzz-corpus").join(target);
    let seeds = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&seeds)?;
    println!("==> fuzz {target} for {seconds} s (new inputs: {})", work.display());
    let out = fuzz_command(root, "run")
        .arg(target)
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .output()
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let mut outcome = parse_log(&log);
    outcome.target = target.to_owned();
    outcome.seconds = seconds;
    outcome.exit_ok = out.status.success();
    outcome.corpus_files = std::fs::read_dir(&work)?.count();
    if !outcome.exit_ok {
        // The whole libFuzzer log for the crash (panic message, backtrace, crash file).
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{log}");
    }
    Ok(outcome)
}

/// Reads libFuzzer's stderr: the last status line (`#N ... cov: C ft: F corp: U/...`), the final
/// stats (`-print_final_stats=1`), and on a crash the test-unit path and the panic message.
fn parse_log(log: &str) -> Outcome {
    let mut o = Outcome::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty())?.parse().ok()
    };
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if line.starts_with('#') && line.contains(" cov: ") {
            o.coverage = field(line, " cov: ");
            o.features = field(line, " ft: ");
            o.corpus_units = field(line, " corp: ");
        } else if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            o.runs = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            o.execs_per_sec = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::new_units_added:") {
            o.new_units = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("stat::peak_rss_mb:") {
            o.peak_rss_mb = v.trim().parse().ok();
        } else if let Some(pos) = line.find("Test unit written to ") {
            o.crash_file = Some(line[pos + "Test unit written to ".len()..].trim().to_owned());
        } else if line.contains("panicked at ") && o.crash_reason.is_none() {
            // The location line, then the message on the next line.
            let message = lines.get(i + 1).map_or("", |l| l.trim());
            o.crash_reason = Some(format!("{line} {message}").trim_end().to_owned());
        } else if line.starts_with("SUMMARY: ") && o.crash_reason.is_none() {
            o.crash_reason = Some(line.to_owned());
        }
    }
    o
}

/// A figure libFuzzer printed, or `?` when its log did not have it.
fn n(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn print_outcome(o: &Outcome) {
    println!(
        "<== {}: {} runs, {} exec/s, cov {}, corpus {} units ({} new files){}",
        o.target,
        n(o.runs),
        n(o.execs_per_sec),
        n(o.coverage),
        n(o.corpus_units),
        o.corpus_files,
        o.crash_file.as_ref().map(|c| format!(", CRASH {c}")).unwrap_or_default(),
    );
}

#[cfg(test)]
mod tests {
    use super::parse_log;

    #[test]
    fn parses_a_libfuzzer_log() {
        let log = "\
INFO: seed corpus: files: 8 min: 27b max: 321b total: 1130b rss: 44Mb
#8\tINITED cov: 820 ft: 1200 corp: 8/1130b exec/s: 0 rss: 45Mb
#52341\tDONE   cov: 1041 ft: 2210 corp: 150/9876b lim: 4096 exec/s: 2617 rss: 80Mb
Done 52341 runs in 21 second(s)
stat::number_of_executed_units: 52341
stat::average_exec_per_sec:     2492
stat::new_units_added:          142
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              80
";
        let o = parse_log(log);
        assert_eq!(o.runs, Some(52_341));
        assert_eq!(o.execs_per_sec, Some(2_492));
        assert_eq!(o.coverage, Some(1_041));
        assert_eq!(o.features, Some(2_210));
        assert_eq!(o.corpus_units, Some(150));
        assert_eq!(o.new_units, Some(142));
        assert_eq!(o.peak_rss_mb, Some(80));
        assert_eq!(o.crash_file, None);
    }

    #[test]
    fn parses_a_crash() {
        let log = "\
thread '<unnamed>' panicked at fuzz_targets/magnet_uri.rs:14:5:
assertion `left == right` failed
==1234== ERROR: libFuzzer: deadly signal
SUMMARY: libFuzzer: deadly signal
MS: 1 ChangeByte-; base unit: 0000
artifact_prefix='/w/fuzz/artifacts/magnet_uri/'; Test unit written to /w/fuzz/artifacts/magnet_uri/crash-abc
";
        let o = parse_log(log);
        assert_eq!(o.crash_file.as_deref(), Some("/w/fuzz/artifacts/magnet_uri/crash-abc"));
        assert_eq!(
            o.crash_reason.as_deref(),
            Some("thread '<unnamed>' panicked at fuzz_targets/magnet_uri.rs:14:5: assertion `left == right` failed")
        );
    }
}
