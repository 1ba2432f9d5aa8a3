//! `kill -9` at every step (issue 8, fault tests): real `chs node` processes stopped at a named
//! step (`CHS_PAUSE_AT`, see `NodeConfig::pause_at`) and killed there with SIGKILL. Each case
//! ends with: no stored message lost, the folder and database consistent, and the work completed
//! by a restarted process (the owner seeds byte-identical archives; the member imports all of
//! them, exactly once).

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // a panic is a test failure; the child reports on stdout

mod support;

use std::path::{Path, PathBuf};

use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run};

/// The `btih` of a magnet link (its peer hint changes with every process).
fn info_hash(magnet: &str) -> String {
    let start = magnet.find("btih:").unwrap_or_else(|| panic!("no btih in {magnet}")) + 5;
    magnet[start..].split('&').next().unwrap_or_default().to_ascii_lowercase()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn status(config: &str) -> serde_json::Value {
    let status = run(["node", "status", "--config", config, "--json"]).ok().json();
    assert_eq!(status["running"], false, "read after the kill: {status}");
    status["communities"][0].clone()
}

/// Waits for the member's download to finish with `archives` archives and `messages` messages,
/// kills it, and checks its database: all archives imported, every message exactly once, no
/// link pending.
fn member_completes(mut member: Proc, config: &str, archives: u64, messages: u64, case: &str) {
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!(
        (done["archives"].as_u64(), done["messages"].as_u64()),
        (Some(archives), Some(messages)),
        "{case}: {done}"
    );
    member.kill();
    let after = status(config);
    assert_eq!(after["imported_archives"], archives, "{case}: {after}");
    assert_eq!(after["stored_messages"], messages, "{case}: every message exactly once: {after}");
    assert!(after["pending_magnetlink"].is_null(), "{case}: {after}");
}

struct OwnerCase {
    root: PathBuf,
    pristine: PathBuf,
    community_id: String,
    messages: u64,
}

impl OwnerCase {
    /// A fresh copy of the owner's folder as prepared (messages stored, nothing archived yet).
    fn fresh(&self, name: &str) -> String {
        let dir = self.root.join(name);
        copy_dir(&self.pristine, &dir);
        p(&dir.join("chs.toml")).to_owned()
    }

    /// Starts the owner, paused at `point` if given; returns it and the first line that is either
    /// `faultPaused` or `historyArchivesSeeding`.
    fn start(config: &str, point: Option<&str>) -> (Proc, serde_json::Value) {
        let env: Vec<(&str, &str)> = point.map(|p| ("CHS_PAUSE_AT", p)).into_iter().collect();
        let mut owner = Proc::spawn_env(["node", "--config", config], env);
        let line = owner.wait_line(TIMEOUT, |l| is_type(l, "faultPaused") || is_type(l, "historyArchivesSeeding"));
        (owner, json(&line))
    }

    /// Kill -9 at `point`, then check and complete the work with a restart: the restarted owner
    /// ends up seeding the `reference` torrent (byte-identical archives). It may first seed what
    /// the killed one had committed (status-go too seeds the existing torrent at start); it must
    /// never fail a build or seed anything else after the reference.
    fn kill_and_recover(&self, config: &str, owner: Proc, point: &str, reference: &str) {
        owner.kill();
        let before = status(config);
        assert_eq!(before["stored_messages"], self.messages, "killed at {point}: no stored message lost: {before}");
        let mut owner = Proc::spawn(["node", "--config", config]);
        let mut seeded = Vec::new();
        while seeded.last().map(String::as_str) != Some(reference) {
            let line =
                json(&owner.wait_line(TIMEOUT, |l| {
                    is_type(l, "historyArchivesSeeding") || is_type(l, "historyArchivesFailed")
                }));
            assert_eq!(line["type"], "historyArchivesSeeding", "after a kill at {point}: {line}");
            seeded.push(info_hash(line["magnet_uri"].as_str().unwrap()));
            assert!(seeded.len() <= 2, "killed at {point}: seeded {seeded:?}, the reference is {reference}");
        }
        owner.kill();
        let archives = Path::new(config).parent().unwrap().join("archives").join(&self.community_id);
        run(["archive", "verify", p(&archives)]).ok();
        let after = status(config);
        assert_eq!(after["stored_messages"], self.messages, "killed at {point}: {after}");
    }
}

#[test]
fn owner_killed_at_every_step_of_archive_creation_and_seeding_completes_identically_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("setup");
    let setup = demo_setup(&base, 1, 2, 120);
    let case = OwnerCase {
        root: dir.path().to_owned(),
        pristine: Path::new(setup["owner_config"].as_str().unwrap()).parent().unwrap().to_owned(),
        community_id: setup["community_id"].as_str().unwrap().to_owned(),
        messages: setup["messages"].as_u64().unwrap(),
    };

    // Reference: an owner that is never interrupted.
    let config = case.fresh("reference");
    let (owner, line) = OwnerCase::start(&config, None);
    let reference = info_hash(line["magnet_uri"].as_str().unwrap());
    owner.kill();

    // Every I/O step of the archive build, until a build runs past the last one.
    let mut build_steps = 0;
    loop {
        let point = format!("build:{build_steps}");
        let config = case.fresh(&point.replace(':', "-"));
        let (owner, line) = OwnerCase::start(&config, Some(&point));
        if line["type"] == "historyArchivesSeeding" {
            owner.kill();
            break;
        }
        assert_eq!(line["point"], point.as_str());
        case.kill_and_recover(&config, owner, &point, &reference);
        build_steps += 1;
    }
    // 2 archives: header + padding each, then data sync, index temp/sync/rename, dir sync.
    assert!(build_steps >= 8, "the build has more steps than were reached: {build_steps}");

    for point in ["built", "end-saved", "torrent-written", "seeded", "published"] {
        let config = case.fresh(point);
        let mut owner = Proc::spawn_env(["node", "--config", &config], [("CHS_PAUSE_AT", point)]);
        let line = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "faultPaused")));
        assert_eq!(line["point"], point, "{line}");
        case.kill_and_recover(&config, owner, point, &reference);
    }
}

#[test]
fn member_killed_during_metadata_index_data_and_import_completes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let points = ["metadata", "index-fetch", "data", "import"];
    let setup = demo_setup(dir.path(), points.len(), 4, 300);
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let messages = setup["messages"].as_u64().unwrap();
    let mut owner = Proc::spawn(["node", "--config", &owner_cfg]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let owner_addr = started["waku"][0].as_str().unwrap().to_owned();
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding"));

    for (i, point) in points.into_iter().enumerate() {
        let member_cfg = setup["member_configs"][i].as_str().unwrap().to_owned();
        let mut member =
            Proc::spawn_env(["node", "--config", &member_cfg, "--bootstrap", &owner_addr], [("CHS_PAUSE_AT", point)]);
        let paused = json(&member.wait_line(TIMEOUT, |l| is_type(l, "faultPaused")));
        assert_eq!(paused["point"], point);
        member.kill();

        // Killed before any import transaction: nothing imported, nothing half-imported, and the
        // accepted link is still pending.
        let killed = status(&member_cfg);
        assert_eq!((killed["imported_archives"].as_u64(), killed["stored_messages"].as_u64()), (Some(0), Some(0)));
        assert!(!killed["pending_magnetlink"].is_null(), "killed at {point}: the link is kept: {killed}");

        let mut member = Proc::spawn(["node", "--config", &member_cfg, "--bootstrap", &owner_addr]);
        let index = json(&member.wait_line(TIMEOUT, |l| is_type(l, "historyArchiveIndexFetched")));
        assert_eq!((index["archives"].as_u64(), index["missing"].as_u64()), (Some(4), Some(4)), "{point}");
        member_completes(member, &member_cfg, 4, messages, &format!("killed at {point}"));
    }
    owner.kill();
}

const DISK_FULL_CHILD: &str = "CHS_DISK_FULL_CHILD_DIR";
const DISK_FULL_DONE: &str = "CHS-DISK-FULL-SCENARIO-DONE";
const TEST_NAME: &str = "disk_full_on_the_data_dir_fails_cleanly_and_completes_once_space_is_freed";

/// Bytes still free on the file system of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("stat").args(["-f", "-c", "%a %S", p(dir)]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    it.next().unwrap() * it.next().unwrap()
}

/// Fills the file system of `dir` with a ballast file until only about `leave` bytes are free.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write as _;
    let ballast = dir.join("ballast");
    let mut file = std::fs::File::create(&ballast).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut todo = free_bytes(dir).saturating_sub(leave);
    while todo > 0 {
        let n = todo.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        todo -= n as u64;
    }
    file.sync_all().unwrap();
    assert!(free_bytes(dir) <= leave + 64 * 1024, "ballast written: {} bytes free", free_bytes(dir));
    ballast
}

/// Replaces the value of `key` (written by `chs demo --setup` with every key spelled out).
fn set_key(config: &str, key: &str, value: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let prefix = format!("{key} = ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{config} has no {key}"));
    std::fs::write(config, text.replacen(line, &format!("{prefix}{value}"), 1)).unwrap();
}

/// Runs inside a private mount namespace (`unshare -rm`), where `fs` is a small tmpfs holding
/// the owner's and the member's whole data folders.
fn disk_full_child(root: &Path) {
    let fs = root.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let mount =
        std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=12m", "tmpfs", p(&fs)]).output().unwrap();
    assert!(mount.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&mount.stderr));

    let setup = demo_setup(&fs.join("setup"), 1, 4, 300);
    let messages = setup["messages"].as_u64().unwrap();
    let community_id = setup["community_id"].as_str().unwrap().to_owned();
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let member_cfg = setup["member_configs"][0].as_str().unwrap().to_owned();
    // Reference: the same owner folder on the ordinary disk, never short of space.
    let reference_dir = root.join("reference");
    copy_dir(Path::new(&owner_cfg).parent().unwrap(), &reference_dir);
    let (owner, line) = OwnerCase::start(p(&reference_dir.join("chs.toml")), None);
    let reference = info_hash(line["magnet_uri"].as_str().unwrap());
    owner.kill();
    set_key(&owner_cfg, "retry_after_failure", "\"1s\"");

    // Owner: the archive build hits ENOSPC. The node reports it, keeps running, loses nothing.
    let ballast = fill(&fs, 150 * 1024);
    let mut owner = Proc::spawn(["node", "--config", &owner_cfg]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let owner_addr = started["waku"][0].as_str().unwrap().to_owned();
    let failed = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesFailed")));
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "names the cause: {error}");
    println!("owner: {failed}");
    let live = run(["node", "status", "--config", &owner_cfg, "--json"]).ok().json();
    assert_eq!(live["communities"][0]["stored_messages"], messages, "no stored message lost: {live}");
    // Space comes back: the next attempt repairs the folder and seeds the reference bytes.
    std::fs::remove_file(&ballast).unwrap();
    let mut seeded = Vec::new();
    while seeded.last() != Some(&reference) {
        let line = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding")));
        seeded.push(info_hash(line["magnet_uri"].as_str().unwrap()));
        assert!(seeded.len() <= 2, "seeded {seeded:?}, the reference is {reference}");
    }
    let archives = Path::new(&owner_cfg).parent().unwrap().join("archives").join(&community_id);
    run(["archive", "verify", p(&archives)]).ok();

    // Member: its download hits ENOSPC; it retries; once space is back it imports everything once.
    let ballast = fill(&fs, 150 * 1024);
    let mut member = Proc::spawn(["node", "--config", &member_cfg, "--bootstrap", &owner_addr]);
    let failed = json(&member.wait_line(TIMEOUT, |l| is_type(l, "historyArchiveDownloadFailed")));
    assert!(failed["retry_in_ms"].as_u64().unwrap() > 0, "retried: {failed}");
    assert!(failed["error"].as_str().unwrap().contains("No space left on device"), "names the cause: {failed}");
    println!("member: {failed}");
    std::fs::remove_file(&ballast).unwrap();
    member_completes(member, &member_cfg, 4, messages, "disk full");
    owner.kill();
    println!("{DISK_FULL_DONE}");
}

/// Disk full, for real: the data folders live on a 12 MB tmpfs, filled up with a ballast file
/// (in a private mount namespace made by `unshare -rm`, so no privilege on the host is needed).
/// Set `CHS_NO_TMPFS=1` where user namespaces are not allowed (`.ci/run` does so after a failed
/// probe, and says so).
#[test]
fn disk_full_on_the_data_dir_fails_cleanly_and_completes_once_space_is_freed() {
    if let Ok(dir) = std::env::var(DISK_FULL_CHILD) {
        disk_full_child(Path::new(&dir));
        return;
    }
    if std::env::var_os("CHS_NO_TMPFS").is_some() {
        eprintln!("SKIPPED: CHS_NO_TMPFS is set (no user namespaces for a tmpfs here)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .arg("-rm")
        .arg(&exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(DISK_FULL_CHILD, dir.path())
        .output()
        .expect("running unshare (util-linux)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains(DISK_FULL_DONE),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    eprintln!("{stdout}");
}

/// Another process (Python's `sqlite3`, not our code) holds an exclusive lock on the member's
/// database when the magnetlink arrives: the verdict fails after the busy timeout and says so, the
/// member keeps the message and judges it again once the lock is gone, then imports everything.
#[test]
fn database_locked_by_another_process_delays_the_member_without_losing_the_magnetlink() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 2, 100);
    let messages = setup["messages"].as_u64().unwrap();
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let member_cfg = setup["member_configs"][0].as_str().unwrap().to_owned();
    let mut member = Proc::spawn(["node", "--config", &member_cfg]);
    let started = json(&member.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let member_addr = started["waku"][0].as_str().unwrap().to_owned();

    let db = Path::new(&member_cfg).parent().unwrap().join("chs.db");
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                  c.execute('BEGIN EXCLUSIVE')\n\
                  print('locked', flush=True)\n\
                  sys.stdin.readline()\n\
                  c.execute('ROLLBACK')\n";
    let mut locker = std::process::Command::new("python3")
        .args(["-c", script, p(&db)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut first = String::new();
    std::io::BufReader::new(locker.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "locked");

    let mut owner = Proc::spawn(["node", "--config", &owner_cfg, "--bootstrap", &member_addr]);
    owner.wait_line(TIMEOUT, |l| is_type(l, "magnetlinkPublished"));
    let failed =
        json(&member.wait_line(TIMEOUT, |l| is_type(l, "magnetlinkVerdictFailed") || is_type(l, "magnetlinkAccepted")));
    assert_eq!(failed["type"], "magnetlinkVerdictFailed", "judged while the database was locked: {failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("locked") || error.contains("busy"), "names the cause: {error}");
    assert!(failed["retry_in_ms"].as_u64().unwrap() > 0, "{failed}");

    locker.stdin.take().unwrap().write_all(b"release\n").unwrap();
    assert!(locker.wait().unwrap().success(), "the locking process ends cleanly");
    member.wait_line(TIMEOUT, |l| is_type(l, "magnetlinkAccepted"));
    member_completes(member, &member_cfg, 2, messages, "database locked");
    owner.kill();
}
