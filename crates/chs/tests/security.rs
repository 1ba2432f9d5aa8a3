//! Issue items about process safety, on the real binary: private keys are never readable by other
//! users nor taken on the command line (item 5), one data folder runs one node (item 7), and a
//! time in the wrong unit is refused at once instead of planning billions of windows (item 8).

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Proc, TIMEOUT, chs_with_umask, is_type, json, p, run, subcommands};

/// How long a refusal may take: it must come at once, not after a long computation.
const PROMPT: Duration = Duration::from_secs(30);

/// The database file and its SQLite companions that exist.
fn db_files(db: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            out.push(path);
        }
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn assert_private(db: &Path, after: &str) {
    let files = db_files(db);
    assert!(!files.is_empty(), "{} exists after {after}", db.display());
    for f in files {
        assert_eq!(mode(&f), 0o600, "{} after {after} (mode {:04o})", f.display(), mode(&f));
    }
}

/// Runs `cmd` to completion (bounded).
fn finish(cmd: Command) -> support::Finished {
    Proc::spawn_command(cmd).finish(TIMEOUT)
}

/// Item 5: under the usual umask 022 (files readable by everyone unless the program asks for
/// less), every database file a command creates is 0600, the WAL and SHM files included.
#[cfg(unix)]
#[test]
fn private_keys_readable_by_others_every_store_file_is_0600() {
    let dir = tempfile::tempdir().unwrap();

    // chs demo --setup: the owner's store holds the community key.
    let demo = dir.path().join("demo");
    let setup = finish(chs_with_umask(
        "022",
        ["demo", "--setup", p(&demo), "--members", "1", "--weeks", "1", "--messages-per-week", "5", "--json"],
    ))
    .ok()
    .json();
    assert_private(&demo.join("owner").join("chs.db"), "demo --setup (owner)");
    assert_private(&demo.join("member-0").join("chs.db"), "demo --setup (member)");

    // chs store import into a new file.
    let imported = dir.path().join("import.db");
    finish(chs_with_umask("022", ["store", "import", "--ndjson", support::SAMPLE, "--db", p(&imported)])).ok();
    assert_private(&imported, "store import");

    // chs community create on an existing database readable by others: fixed to 0600.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&imported, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(mode(&imported), 0o644);
    finish(chs_with_umask("022", ["community", "create", "--db", p(&imported), "--json"])).ok();
    assert_private(&imported, "community create on a 0644 file");

    // chs node on a fresh folder: its new store, with the -wal and -shm files SQLite creates
    // while the node runs.
    let member_cfg = std::fs::read_to_string(setup["member_configs"][0].as_str().unwrap()).unwrap();
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join("chs.toml"), member_cfg).unwrap();
    let mut node = Proc::spawn_command(chs_with_umask("022", ["node", "--config", p(&fresh.join("chs.toml"))]));
    node.wait_line(TIMEOUT, |l| is_type(l, "started"));
    let db = fresh.join("chs.db");
    assert_eq!(db_files(&db).len(), 3, "the running node's store is in WAL mode: {:?}", db_files(&db));
    assert_private(&db, "chs node (running)");
    node.kill();
}

/// Item 5: no command takes a private key on the command line (where `ps` shows it to every
/// user): every option naming a key that takes a value takes a file (`--*-key-file PATH`), and no
/// positional argument is a key.
#[test]
fn private_keys_readable_by_others_no_flag_takes_a_key_value() {
    let mut paths = Vec::new();
    subcommands(&[], &mut paths);
    assert!(paths.len() > 20, "walked the command tree: {paths:?}");
    let mut offenders = Vec::new();
    for path in &paths {
        let help = run(path.iter().map(String::as_str).chain(["--help"])).ok().stdout;
        for line in help.lines() {
            // "  -x, --name <VALUE>  help" or "  <ARG>  help" / "  [ARG]  help": the part before the help text.
            let spec = line.trim_start().split("  ").next().unwrap_or("").to_lowercase();
            let is_option = spec.starts_with('-');
            let is_argument = spec.starts_with('<') || spec.starts_with('[');
            if !(line.starts_with("  ") && (is_option || is_argument)) || !spec.contains("key") {
                continue;
            }
            let name = spec.split_whitespace().find(|w| w.starts_with("--")).unwrap_or(&spec);
            let takes_value = spec.contains('<') || is_argument;
            if takes_value && !(is_option && name.ends_with("-key-file")) {
                offenders.push(format!("chs {}: {}", path.join(" "), line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "arguments that take a key value:\n{}", offenders.join("\n"));
}

/// Item 5: a key file, stdin and the environment all work, and the key is not echoed.
#[test]
fn private_keys_readable_by_others_keys_come_from_files_stdin_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let key = "1111111111111111111111111111111111111111111111111111111111111111";
    let key_file = dir.path().join("community.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let from_file = run([
        "community",
        "import-key",
        "--db",
        p(&dir.path().join("a.db")),
        "--json",
        "--community-key-file",
        p(&key_file),
    ])
    .ok()
    .json();
    let from_env = support::run_env(
        ["community", "import-key", "--db", p(&dir.path().join("b.db")), "--json"],
        [("CHS_COMMUNITY_KEY", key)],
    )
    .ok()
    .json();
    assert_eq!(from_file["id"], from_env["id"]);
    assert_eq!(from_file["control_node"], true);
    // `-`: stdin (a shell pipes the file in).
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" status magnetlink build --community-key-file - --identity-key-file \"$1\" --magnet magnet:?xt=urn:btih:00 --clock 1 < \"$1\"")
        .arg(env!("CARGO_BIN_EXE_chs"))
        .arg(&key_file);
    let built = finish(cmd).ok().json();
    assert_eq!(built["community_id"], from_file["id"]);
    let both = run([
        "status",
        "magnetlink",
        "build",
        "--community-key-file",
        "-",
        "--identity-key-file",
        "-",
        "--magnet",
        "magnet:?x",
        "--clock",
        "1",
    ])
    .failed();
    assert!(both.stderr.contains("only one key can be read from stdin"), "{}", both.stderr);
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "2".repeat(63)).unwrap();
    let out =
        run(["community", "import-key", "--db", p(&dir.path().join("c.db")), "--community-key-file", p(&bad)]).failed();
    assert!(out.stderr.contains("invalid private key") && !out.stderr.contains(&"2".repeat(63)), "{}", out.stderr);
}

/// Item 7: a second `chs node` on the data folder of a running one exits at once, naming the
/// lock file and the running node's pid; the first one keeps running. One-shot commands still
/// write the same database meanwhile.
#[test]
fn two_nodes_on_one_folder_the_second_exits_naming_the_lock_and_pid() {
    let dir = tempfile::tempdir().unwrap();
    let setup = support::demo_setup(dir.path(), 1, 1, 5);
    let cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let data_dir = Path::new(&cfg).parent().unwrap().to_owned();
    let mut first = Proc::spawn(["node", "--config", &cfg]);
    first.wait_line(TIMEOUT, |l| is_type(l, "started"));

    let second = Proc::spawn(["node", "--config", &cfg]).finish(PROMPT).failed();
    let lock_file = data_dir.join("node.lock");
    assert!(second.stderr.contains(p(&lock_file)), "names the lock file {}: {}", lock_file.display(), second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.pid())), "names the running node's pid: {}", second.stderr);
    assert!(!second.stdout.contains("\"started\""), "{}", second.stdout);

    // The database is not locked out for one-shot commands.
    let db = data_dir.join("chs.db");
    run(["store", "import", "--ndjson", support::SAMPLE, "--db", p(&db)]).ok();
    run(["community", "list", "--db", p(&db)]).ok();

    // The first node still runs, and shuts down cleanly on SIGTERM.
    let status = Command::new("kill").args(["-TERM", &first.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let finished = first.finish(TIMEOUT);
    assert!(finished.status.success(), "{finished:?}");
    // Its lock went with it: the folder can be used again.
    let mut again = Proc::spawn(["node", "--config", &cfg]);
    json(&again.wait_line(TIMEOUT, |l| is_type(l, "started")));
    again.kill();
}

/// Item 8: a `--to` in nanoseconds (or milliseconds) is refused at once, saying what it looks
/// like, instead of building for hours.
#[test]
fn bad_input_hangs_archive_build_refuses_times_that_are_not_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    run(["store", "import", "--ndjson", support::SAMPLE, "--db", p(&db)]).ok();
    let arch = dir.path().join("arch");
    for (flag, value, unit) in [
        ("--to", "1790000001000000000", "nanoseconds"),
        ("--to", "1790000001000", "milliseconds"),
        ("--from", "1729728000000000", "microseconds"),
    ] {
        let out =
            Proc::spawn(["archive", "build", "--db", p(&db), "--dir", p(&arch), "--topic", "0x1980b7cb", flag, value])
                .finish(PROMPT)
                .failed();
        assert!(out.stderr.contains(&format!("looks like {unit}")), "{flag} {value}: {}", out.stderr);
        assert!(out.stderr.contains(value), "{}", out.stderr);
    }
    assert!(!arch.join("index").exists());
}
