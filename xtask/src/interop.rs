//! `cargo xtask interop`: runs the interop tests against real external peers, and only those:
//! every test whose path starts with `interop::` in the packages of [`PACKAGES`]: libtorrent
//! (`CHS_LT_PYTHON`), js-waku (`CHS_JS_WAKU_DIR`) and the binaries built from status-go's own code
//! in `../shared/peers/bin` (`CHS_PEERS_BIN`, set here to that folder when it exists).
//!
//! It sets the peers up when missing, as `.ci/run` does: a `.venv-lt` virtualenv with PyPI
//! `libtorrent==2.1.1`, and `npm ci` in `crates/chs-waku/interop`. The tests return early with a
//! "skipped:" notice when their variable is unset; this task fails if any test says so, if a test
//! it listed did not pass, or if no test was selected.

use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const LIBTORRENT: &str = "libtorrent==2.1.1";
/// The nextest filter: the `interop` module of every integration test binary.
const FILTER: &str = "kind(test) & test(/^interop::/)";
/// The packages holding interop tests; each must have at least one.
const PACKAGES: [&str; 4] = ["chs-torrent", "chs-waku", "chs", "chs-tests"];
/// Packages that must hold at least one interop test (the others may, once they have one).
const REQUIRED: [&str; 2] = ["chs-torrent", "chs-waku"];
/// What a test prints when its peer is not configured.
const SKIP_NOTICE: &str = "skipped:";

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let python = setup_libtorrent(root)?;
    let js_dir = setup_js_waku(root)?;
    let peers = peers_bin(root)?;
    let envs = [("CHS_LT_PYTHON", python), ("CHS_JS_WAKU_DIR", js_dir), ("CHS_PEERS_BIN", peers)];
    for (k, v) in &envs {
        println!("{k}={v}");
    }
    let nextest = Command::new(cargo()).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success());
    if nextest { run_nextest(root, &envs) } else { run_cargo_test(root, &envs) }
}

/// The folder of status-go's peers: `CHS_PEERS_BIN` if set, else `<root>/../shared/peers/bin`.
fn peers_bin(root: &Path) -> anyhow::Result<String> {
    let dir = match std::env::var_os("CHS_PEERS_BIN") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => root.join("../shared/peers/bin"),
    };
    if !dir.join("chspeer-waku").is_file() {
        bail!("{} has no chspeer-waku: set CHS_PEERS_BIN to the folder of ../shared/peers/bin", dir.display());
    }
    Ok(dir.canonicalize()?.display().to_string())
}

fn packages() -> Vec<&'static str> {
    PACKAGES.iter().flat_map(|p| ["-p", p]).collect()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The python of `.venv-lt`, created and given libtorrent if it cannot `import libtorrent`.
fn setup_libtorrent(root: &Path) -> anyhow::Result<String> {
    let venv = root.join(".venv-lt");
    let python = venv.join("bin/python");
    let imports =
        |py: &Path| Command::new(py).args(["-c", "import libtorrent"]).output().is_ok_and(|o| o.status.success());
    if !imports(&python) {
        if !python.exists() {
            println!("==> python3 -m venv {}", venv.display());
            check(Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv")?;
        }
        println!("==> pip install {LIBTORRENT}");
        check(Command::new(&python).args(["-m", "pip", "install", "-q", LIBTORRENT]), "pip install libtorrent")?;
        if !imports(&python) {
            bail!("{} still cannot import libtorrent", python.display());
        }
    }
    Ok(python.display().to_string())
}

/// `crates/chs-waku/interop` after `npm ci` (run when `node_modules` is missing or older than the lock).
fn setup_js_waku(root: &Path) -> anyhow::Result<String> {
    let dir = root.join("crates/chs-waku/interop");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (modified(&installed), modified(&dir.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if !fresh {
        println!("==> npm ci in {}", dir.display());
        check(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir), "npm ci (needs Node 20)")?;
    }
    Ok(dir.display().to_string())
}

fn check(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn run_nextest(root: &Path, envs: &[(&str, String); 3]) -> anyhow::Result<()> {
    let list = Command::new(cargo())
        .current_dir(root)
        .args(["nextest", "list", "--message-format", "json", "-E", FILTER])
        .args(packages())
        .stderr(Stdio::inherit())
        .output()
        .context("cargo nextest list")?;
    if !list.status.success() {
        bail!("cargo nextest list failed");
    }
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).context("nextest list JSON")?;
    let mut expected = Vec::new();
    for (suite, body) in listed["rust-suites"].as_object().into_iter().flatten() {
        for (name, case) in body["testcases"].as_object().into_iter().flatten() {
            if case["filter-match"]["status"] == "matches" {
                expected.push(format!("{suite} {name}"));
            }
        }
    }
    for package in REQUIRED {
        if !expected.iter().any(|t| t.starts_with(&format!("{package}::"))) {
            bail!("no interop test of {package} matches `{FILTER}`");
        }
    }
    println!("==> {} interop tests:\n  {}", expected.len(), expected.join("\n  "));
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["nextest", "run", "--no-fail-fast", "--no-capture", "-E", FILTER])
        .args(packages())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let (ok, output) = tee(&mut cmd)?;
    // `PASS [   1.234s] chs-torrent::integration interop::name` (stdout or stderr, as nextest prints it).
    let passed = |t: &str| output.lines().any(|l| l.trim_start().starts_with("PASS") && l.trim_end().ends_with(t));
    let missing: Vec<&String> = expected.iter().filter(|t| !passed(t)).collect();
    verdict(ok, &output, &missing)
}

/// Without nextest: `cargo test --test integration interop::` per required package, output not captured.
fn run_cargo_test(root: &Path, envs: &[(&str, String); 3]) -> anyhow::Result<()> {
    let mut all_ok = true;
    let mut output = String::new();
    for package in REQUIRED {
        let mut cmd = Command::new(cargo());
        cmd.current_dir(root)
            .args(["test", "-p", package, "--test", "integration", "interop::", "--", "--nocapture"])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
        let (ok, out) = tee(&mut cmd)?;
        all_ok &= ok;
        let ran =
            out.lines().filter_map(|l| l.strip_prefix("test result: ok. ")).any(|rest| !rest.starts_with("0 passed"));
        if !ran {
            bail!("no interop test of {package} ran");
        }
        output.push_str(&out);
    }
    verdict(all_ok, &output, &[])
}

fn verdict(ok: bool, output: &str, missing: &[&String]) -> anyhow::Result<()> {
    let skipped: Vec<&str> = output.lines().filter(|l| l.contains(SKIP_NOTICE)).collect();
    if !skipped.is_empty() {
        bail!("interop tests were skipped:\n  {}", skipped.join("\n  "));
    }
    if !ok {
        bail!("interop tests failed");
    }
    if !missing.is_empty() {
        bail!("interop tests without a PASS line: {missing:?}");
    }
    println!("xtask interop: all interop tests ran against the real peers and passed");
    Ok(())
}

/// Runs `cmd`, echoing its stdout and stderr live, and returns (success, both outputs).
fn tee(cmd: &mut Command) -> anyhow::Result<(bool, String)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("spawning tests")?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let echo_err = std::thread::spawn(move || echo(stderr, true));
    let mut text = echo(stdout, false);
    text.push_str(&echo_err.join().unwrap_or_default());
    let status = child.wait()?;
    Ok((status.success(), text))
}

fn echo(stream: impl Read, to_stderr: bool) -> String {
    let mut text = String::new();
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn a_skipped_test_fails_the_task() {
        let output =
            "running 1 test\nskipped: set CHS_LT_PYTHON to a python with libtorrent\ntest result: ok. 1 passed";
        assert!(verdict(true, output, &[]).is_err());
    }

    #[test]
    fn a_test_without_pass_line_fails_the_task() {
        let name = "chs-waku::integration interop::x".to_owned();
        assert!(verdict(true, "", &[&name]).is_err());
        assert!(verdict(false, "", &[]).is_err());
        assert!(verdict(true, "PASS [ 1s] chs-waku::integration interop::x", &[]).is_ok());
    }
}
