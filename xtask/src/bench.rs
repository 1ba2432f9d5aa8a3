//! `cargo xtask bench [name]`: runs the benchmarks (release builds), each of which prints its figures
//! against a baseline measured in the same run and one `BENCH_JSON {...}` line; the JSON lines are
//! collected into `target/bench-report.json`.

use std::path::Path;

use anyhow::{Context, bail};

/// (name, cargo arguments after `cargo`).
const BENCHES: &[(&str, &[&str])] = &[
    ("store", &["bench", "-p", "chs-store", "--bench", "store"]),
    ("archive", &["run", "--release", "-p", "chs-archive", "--example", "bench_archive"]),
    ("status", &["run", "--release", "-p", "chs-status", "--example", "bench_status"]),
    ("import", &["run", "--release", "-p", "chs-community", "--example", "bench_import"]),
    ("waku", &["run", "--release", "-p", "chs-waku", "--example", "bench_waku"]),
    ("torrent", &["run", "--release", "-p", "chs-torrent", "--example", "bench_torrent", "--", "1024"]),
    ("e2e", &["run", "--release", "-p", "chs-node", "--example", "bench_e2e"]),
    ("load", &["run", "--release", "-p", "chs-node", "--example", "bench_load", "--", "100", "50"]),
];

pub(crate) fn run(root: &Path, only: Option<&str>) -> anyhow::Result<()> {
    let selected: Vec<_> = BENCHES.iter().filter(|(name, _)| only.is_none_or(|o| o == *name)).collect();
    if selected.is_empty() {
        bail!("unknown benchmark {only:?}; known: {}", BENCHES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "));
    }
    let mut report = Vec::new();
    for (name, args) in selected {
        println!("==> bench {name}: cargo {}", args.join(" "));
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(*args)
            .current_dir(root)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running bench {name}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if !out.status.success() {
            bail!("bench {name} failed");
        }
        for line in text.lines() {
            if let Some(json) = line.strip_prefix("BENCH_JSON ") {
                report.push(
                    serde_json::from_str::<serde_json::Value>(json).with_context(|| format!("bench {name} JSON"))?,
                );
            }
        }
    }
    let path = root.join("target/bench-report.json");
    std::fs::create_dir_all(root.join("target"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("bench report: {}", path.display());
    Ok(())
}
