//! Security item 6 (damage is repaired): real `chs node` processes over files damaged while they
//! were stopped. A damaged owner `index` is rebuilt from `data` at start and the same torrent is
//! seeded again; a damaged database is named, with what to do.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // a panic is a test failure

mod support;

use std::path::Path;

use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run};

/// The `btih` of a magnet link.
fn info_hash(magnet: &str) -> String {
    let start = magnet.find("btih:").unwrap_or_else(|| panic!("no btih in {magnet}")) + 5;
    magnet[start..].split('&').next().unwrap_or_default().to_ascii_lowercase()
}

/// Starts the owner and returns the info hash of the first torrent it seeds; a failed build or
/// seeding before that fails the test.
fn first_seeded(config: &str) -> (Proc, String) {
    let mut owner = Proc::spawn(["node", "--config", config]);
    let line = json(
        &owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding") || is_type(l, "historyArchivesFailed")),
    );
    assert_eq!(line["type"], "historyArchivesSeeding", "{line}\nstderr:\n{}", owner.stderr());
    let hash = info_hash(line["magnet_uri"].as_str().unwrap());
    (owner, hash)
}

#[test]
fn damaged_owner_index_is_rebuilt_at_start_and_the_same_torrent_reseeded() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 3, 120);
    let config = setup["owner_config"].as_str().unwrap().to_owned();
    let (owner, reference) = first_seeded(&config);
    owner.kill();

    let folder = Path::new(&config).parent().unwrap().join("archives").join(setup["community_id"].as_str().unwrap());
    let index_path = folder.join("index");
    let index = std::fs::read(&index_path).unwrap();
    let mut flipped = index.clone();
    for b in flipped.iter_mut().skip(3).step_by(11) {
        *b ^= 0xa5;
    }
    std::fs::write(&index_path, &flipped).unwrap();

    let (mut owner, seeded) = first_seeded(&config);
    assert_eq!(seeded, reference, "the restarted owner seeds the same torrent");
    owner.wait_stderr(TIMEOUT, "rebuilt from data");
    owner.kill();
    assert_eq!(std::fs::read(&index_path).unwrap(), index, "the index is the one the build wrote");
    run(["archive", "verify", p(&folder)]).ok();
}

#[test]
fn damaged_database_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 1, 50);
    let config = setup["owner_config"].as_str().unwrap().to_owned();
    let db = Path::new(&config).parent().unwrap().join("chs.db");
    // Checkpointed and closed by `demo --setup`; damage the schema page past the 100-byte header.
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[100..4096] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    for args in [vec!["node", "--config", config.as_str()], vec!["node", "status", "--config", config.as_str()]] {
        let out = run(&args).failed();
        let named =
            out.stderr.contains(p(&db)) || out.stderr.contains(&format!("{}/./chs.db", p(db.parent().unwrap())));
        assert!(named, "{args:?} names the file:\n{}", out.stderr);
        assert!(out.stderr.contains("damaged"), "{args:?} says it is damaged:\n{}", out.stderr);
        assert!(out.stderr.contains("backup"), "{args:?} says what to do:\n{}", out.stderr);
        assert!(!out.stderr.contains("already exists"), "{args:?}:\n{}", out.stderr);
    }
}

#[test]
fn database_with_a_lost_schema_record_is_named_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 1, 50);
    let config = setup["owner_config"].as_str().unwrap().to_owned();
    let db = Path::new(&config).parent().unwrap().join("chs.db");
    // The page of `chs_schema` rewritten as an empty table leaf: the file still opens, the
    // versions read as 0, and the first migration meets existing tables.
    let script = format!(
        "import sqlite3\nc = sqlite3.connect({path:?})\npage = c.execute(\"SELECT rootpage FROM sqlite_master WHERE name = 'chs_schema'\").fetchone()[0]\nsize = c.execute('PRAGMA page_size').fetchone()[0]\nc.close()\nf = open({path:?}, 'r+b')\nf.seek((page - 1) * size)\nf.write(bytes([13, 0, 0, 0, 0, 0x10, 0, 0]) + bytes(size - 8))\nf.close()\n",
        path = p(&db)
    );
    let status = std::process::Command::new("python3").args(["-c", &script]).status().unwrap();
    assert!(status.success());
    let out = run(["node", "--config", config.as_str()]).failed();
    assert!(out.stderr.contains("damaged") && out.stderr.contains("chs.db"), "{}", out.stderr);
    assert!(out.stderr.contains("backup"), "{}", out.stderr);
}
