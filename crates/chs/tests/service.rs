//! Issue 21, running chs like a service: logs, settings from flags and the environment, errors
//! printed once naming the setting that fixes them, `chs node init`, and one convention for every
//! subcommand's flags.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{Proc, TIMEOUT, is_type, json, p, run, run_env};

/// `chs node init` in `dir`, returns the config path.
fn init_config(dir: &Path) -> PathBuf {
    let config = dir.join("chs.toml");
    run(["node", "init", "--config", p(&config)]).ok();
    support::offline_config(&config);
    config
}

/// Flags that keep a node on loopback with free ports (discovery is off in the file:
/// `init_config`), and test `--set` on the way.
const LOOPBACK: [&str; 8] = [
    "--set",
    "torrent.listen_ip=\"127.0.0.1\"",
    "--set",
    "torrent.port=0",
    "--set",
    "waku.listen=[\"/ip4/127.0.0.1/tcp/0\"]",
    "--set",
    "api.listen=\"127.0.0.1:0\"",
];

/// The API on a free port (tests run in parallel; the default 8645 is one port).
const API_ANY_PORT: [&str; 2] = ["--set", "api.listen=\"127.0.0.1:0\""];

/// A TCP port on 127.0.0.1 held by this test for as long as the listener lives.
fn taken_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn error_causes_are_printed_once_with_the_flag_that_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = run(["node", "--config", p(&missing)]).failed();
    assert_eq!(out.stderr.matches("os error 2").count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--config") && out.stderr.contains("chs node init"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
}

#[test]
fn torrent_port_clash_fails_once_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    let (_held, port) = taken_port();
    let out = run([
        "node",
        "--config",
        p(&config),
        "--set",
        "torrent.listen_ip=\"127.0.0.1\"",
        "--set",
        &format!("torrent.port={port}"),
        "--set",
        "waku.listen=[\"/ip4/127.0.0.1/tcp/0\"]",
        API_ANY_PORT[0],
        API_ANY_PORT[1],
    ])
    .failed();
    assert!(out.stderr.contains("[torrent] port") && out.stderr.contains(&port.to_string()), "{}", out.stderr);
    assert_eq!(out.stderr.matches("os error 98").count(), 1, "{}", out.stderr);
}

#[test]
fn waku_port_clash_fails_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    let (_held, port) = taken_port();
    let out = run([
        "node",
        "--config",
        p(&config),
        "--set",
        "torrent.listen_ip=\"127.0.0.1\"",
        "--set",
        "torrent.port=0",
        "--set",
        &format!("waku.listen=[\"/ip4/127.0.0.1/tcp/{port}\"]"),
        API_ANY_PORT[0],
        API_ANY_PORT[1],
    ])
    .failed();
    assert!(out.stderr.contains("[waku] listen") && out.stderr.contains("in use"), "{}", out.stderr);
}

#[test]
fn settings_come_from_the_file_then_chs_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    // Free ports, found by binding and closing (nothing else on the machine is told about them).
    let (from_env, env_port) = taken_port();
    let (from_flag, flag_port) = taken_port();
    drop((from_env, from_flag));
    let env_only = [("CHS_TORRENT_PORT", env_port.to_string()), ("CHS_TORRENT_LISTEN_IP", "127.0.0.1".to_owned())];
    let waku = ["--set", "waku.listen=[\"/ip4/127.0.0.1/tcp/0\"]", API_ANY_PORT[0], API_ANY_PORT[1]];
    let mut node = Proc::spawn_env(["node", "--config", p(&config)].into_iter().chain(waku), env_only.clone());
    let started = json(&node.wait_line(TIMEOUT, |l| is_type(l, "started")));
    assert_eq!(started["torrent"], format!("127.0.0.1:{env_port}"), "{started}");
    node.kill();

    let set = format!("torrent.port={flag_port}");
    let args = ["node", "--config", p(&config), "--set", &set].into_iter().chain(waku);
    let mut node = Proc::spawn_env(args, env_only);
    let started = json(&node.wait_line(TIMEOUT, |l| is_type(l, "started")));
    assert_eq!(started["torrent"], format!("127.0.0.1:{flag_port}"), "a flag wins over the environment: {started}");
    node.kill();

    let out = run_env(["node", "--config", p(&config)], [("CHS_TORRENT_PROT", "1")]).failed();
    assert!(out.stderr.contains("CHS_TORRENT_PROT") && out.stderr.contains("prot"), "{}", out.stderr);
}

#[test]
fn log_lines_and_event_lines_carry_a_timestamp_and_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    let args = ["node", "--config", p(&config), "--log-level", "info", "--log-format", "json"];
    let mut node = Proc::spawn(args.into_iter().chain(LOOPBACK));
    let started = json(&node.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let stamp = started["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {started}"));
    assert!(stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "{stamp}");
    node.wait_stderr(TIMEOUT, "\"level\":\"INFO\"");
    let stderr = node.stderr();
    node.kill();
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let v = json(line);
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["target"].is_string(), "{line}");
    }

    // Text logs into a pipe: no colour codes, a timestamp first.
    let mut node = Proc::spawn(["node", "--config", p(&config), "--log-level", "info"].into_iter().chain(LOOPBACK));
    node.wait_line(TIMEOUT, |l| is_type(l, "started"));
    node.wait_stderr(TIMEOUT, "INFO");
    let stderr = node.stderr();
    node.kill();
    assert!(!stderr.contains('\u{1b}'), "colour codes in a pipe: {stderr:?}");
    let first = stderr.lines().next().unwrap();
    assert!(first.get(..4).is_some_and(|y| y.chars().all(|c| c.is_ascii_digit())), "{first}");

    let out = run(["node", "status", "--config", p(&config), "--log-level", "loud"]).failed();
    assert!(out.stderr.contains("--log-level"), "{}", out.stderr);
}

#[test]
fn node_init_writes_announce_addr_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    let torrent = text.split("[torrent]").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(torrent.contains("# announce_addr = \"203.0.113.7:9025\""), "{text}");
    // Uncommented, it is a valid setting of the section it sits in.
    std::fs::write(&config, text.replace("# announce_addr = ", "announce_addr = ")).unwrap();
    run(["community", "create", "--db", p(&dir.path().join("chs-data/chs.db"))]).ok();
    run(["node", "status", "--config", p(&config)]).ok();

    let other = dir.path().join("other.toml");
    let value = run(["node", "init", "--json", "--config", p(&other)]).ok().json();
    assert_eq!(value["settings"]["torrent"]["port"], 9025, "{value}");
    assert_eq!(value["config"], p(&other));
}

#[test]
fn community_create_makes_missing_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs-data/sub/chs.db");
    let created = run(["community", "create", "--json", "--name", "x", "--db", p(&db)]).ok().json();
    assert!(db.is_file());
    let id = created["id"].as_str().unwrap();
    // The community is named the same way everywhere: --community (the positional id still works).
    let shown = run(["community", "show", "--json", "--db", p(&db), "--community", id]).ok().json();
    assert_eq!(shown["id"], id);
    run(["community", "show", "--db", p(&db), id]).ok();
}

#[test]
fn node_status_text_uses_human_units_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = init_config(dir.path());
    run(["community", "create", "--db", p(&dir.path().join("chs-data/chs.db"))]).ok();
    let text = run(["node", "status", "--config", p(&config)]).ok().stdout;
    assert!(text.contains("unnamed (control node)"), "{text}");
    assert!(text.contains("last archive ends: never"), "{text}");
    assert!(!text.contains("downloaded"), "member-only lines on an owner: {text}");
}

/// Every leaf subcommand (and `node`, which runs itself and has subcommands), as its words after `chs`.
fn leaf_commands() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    support::subcommands(&[], &mut paths);
    paths
        .into_iter()
        .filter(|path| !path.is_empty())
        .filter(|path| {
            let help = run(path.iter().map(String::as_str).chain(["--help"])).ok().stdout;
            !help.contains("Commands:") || help.contains("[COMMAND]")
        })
        .collect()
}

/// Commands without `--json`, and why.
const NO_JSON: &[(&str, &str)] = &[
    ("node", "the daemon prints JSON lines already"),
    ("waku listen", "prints one JSON line per message already"),
    ("waku store-query", "prints one JSON line per message already"),
    ("archive extract", "prints messages, --ndjson for JSON lines"),
    ("status decode", "prints JSON already"),
    ("status magnetlink build", "prints JSON already (--hex for the bare message)"),
    ("status chat build", "prints JSON already (--ndjson for a line)"),
];

#[test]
fn every_subcommand_help_follows_one_flag_convention() {
    let leaves = leaf_commands();
    assert!(leaves.len() > 20, "{leaves:?}");
    let mut problems = BTreeSet::new();
    for leaf in &leaves {
        let name = leaf.join(" ");
        let help = run(leaf.iter().map(String::as_str).chain(["--help"])).ok().stdout;
        let flags: Vec<(String, Option<String>)> = help
            .lines()
            .map(str::trim_start)
            .filter_map(|l| l.strip_prefix("-h, ").or(Some(l)))
            .filter_map(|l| l.strip_prefix("--"))
            .map(|l| {
                let mut words = l.split_whitespace();
                let flag = words.next().unwrap_or("").to_owned();
                let value = words.next().filter(|v| v.starts_with('<')).map(str::to_owned);
                (flag, value)
            })
            .collect();
        for (flag, value) in &flags {
            let kebab = flag
                .split('-')
                .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            if !kebab {
                problems.insert(format!("{name}: --{flag} is not lower-case kebab-case"));
            }
            if flag.contains("community") && !["community", "community-key-file"].contains(&flag.as_str()) {
                problems.insert(format!("{name}: --{flag}: a community is named with --community ID"));
            }
            if ["database", "sqlite", "store"].contains(&flag.as_str()) {
                problems.insert(format!("{name}: --{flag}: the database is --db"));
            }
            let is_duration = ["timeout", "debounce", "interval"].iter().any(|d| flag.ends_with(d));
            if is_duration && value.as_deref() != Some("<DURATION>") {
                problems.insert(format!("{name}: --{flag} takes a <DURATION> (20s, 5m, 7d)"));
            }
        }
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        let words: Vec<&str> = usage.split_whitespace().collect();
        let positional = words.windows(2).filter(|w| !w[0].starts_with("--")).map(|w| w[1].trim_matches(['[', ']']));
        if positional.into_iter().any(|a| ["<ID>", "<COMMUNITY>", "<COMMUNITY_ID>"].contains(&a)) {
            problems.insert(format!("{name}: a community is named with --community, not positionally: {usage}"));
        }
        let has_json = flags.iter().any(|(f, _)| f == "json");
        if !has_json && !NO_JSON.iter().any(|(n, _)| *n == name) {
            problems.insert(format!("{name}: prints a result but has no --json"));
        }
        for global in ["log-level", "log-format"] {
            if !flags.iter().any(|(f, _)| f == global) {
                problems.insert(format!("{name}: no --{global}"));
            }
        }
    }
    assert!(problems.is_empty(), "{:#?}", problems);
}

/// The shipped unit (`dist/chs.service`) passes `systemd-analyze verify` without a warning (with
/// ExecStart pointed at the binary under test), and its command line is one `chs` accepts.
#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/chs.service")).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/chs"), "{exec}");
    let args: Vec<&str> = words.collect();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("chs.service");
    std::fs::write(&local, unit.replace("/usr/local/bin/chs", env!("CARGO_BIN_EXE_chs"))).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local)
        .output()
        .expect("systemd-analyze (Debian package `systemd`, installed by .ci/run)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {}\n{stderr}", out.status);
    // The unit's arguments parse: with the configuration absent, the error is about the file.
    let out = run_env(args.iter().copied(), [("CHS_DATA_DIR", p(dir.path()))]).failed();
    assert_eq!(out.status.code(), Some(1), "not a usage error: {}", out.stderr);
    assert!(out.stderr.contains("/etc/chs/chs.toml") || out.stderr.contains("cannot read config"), "{}", out.stderr);
}
