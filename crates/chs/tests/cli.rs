//! End-to-end tests of the `chs` command, run as a real process.

use std::process::Command;

fn chs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chs"))
}

#[test]
fn store_import_reports_bad_lines_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let input = dir.path().join("in.ndjson");
    let good = r#"{"pubsub_topic":"/waku/2/rs/16/32","content_topic":"/waku/1/0x1980b7cb/rfc26","timestamp":1729728000000000000,"payload":"aGVsbG8="}"#;
    let good2 = r#"{"pubsub_topic":"/waku/2/rs/16/32","content_topic":"/toy/1/chat/proto","timestamp":1729728001000000000,"payload":"d29ybGQ=","meta":"bQ==","version":0}"#;
    let bad_b64 = r#"{"pubsub_topic":"p","content_topic":"c","timestamp":1,"payload":"%%%"}"#;
    std::fs::write(&input, format!("{good}\nnot json\n{good2}\n{bad_b64}\n\n{good}\n")).unwrap();
    let out = chs().args(["store", "import", "--db"]).arg(&db).arg("--ndjson").arg(&input).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bad lines must make the exit code non-zero");
    assert!(stderr.contains(":2: skipped"), "{stderr}");
    assert!(stderr.contains(":4: skipped") && stderr.contains("base64"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 2 messages (1 already stored, 2 bad lines)"), "{stdout}");

    let out = chs().args(["store", "stats", "--json", "--db"]).arg(&db).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 2);
    assert_eq!(v["first_timestamp"], 1_729_728_000);
    assert_eq!(v["content_topics"]["/toy/1/chat/proto"], 1);
}

#[test]
fn store_import_sample_file_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample-messages.ndjson");
    let out = chs().args(["store", "import", "--ndjson", sample, "--db"]).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = chs().args(["store", "stats", "--json", "--db"]).arg(&db).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 60);
}

#[test]
fn store_stats_on_a_foreign_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    let notes = "just some notes, definitely not a database file, long enough for sqlite to look at";
    std::fs::write(&db, notes).unwrap();
    let out = chs().args(["store", "stats", "--db"]).arg(&db).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a valid SQLite database"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), notes, "the file must be left untouched");
}

/// A line that is not UTF-8 is an unreadable line: reported with its number, counted as bad, and
/// the rest is imported (the duplicate count used to subtract it from the readable lines and
/// overflow).
#[test]
fn store_import_counts_an_unreadable_line_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let input = dir.path().join("in.ndjson");
    let good = r#"{"pubsub_topic":"/waku/2/rs/16/32","content_topic":"/waku/1/0x1980b7cb/rfc26","timestamp":1729728000000000000,"payload":"aGVsbG8="}"#;
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
    std::fs::write(&input, bytes).unwrap();
    let out = chs().args(["store", "import", "--json", "--db"]).arg(&db).arg("--ndjson").arg(&input).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unreadable line makes the exit code non-zero: {stderr}");
    assert!(stderr.contains(":2: unreadable line"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the counts as JSON");
    assert_eq!(
        (v["read"].as_u64(), v["imported"].as_u64(), v["bad_lines"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["already_stored"], 0, "{v}");
}

/// A file of several import batches (8,192 lines each): every good line stored once, every bad
/// line reported with its own line number and in file order, duplicates counted.
#[test]
fn store_import_of_many_batches_keeps_line_numbers_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let input = dir.path().join("in.ndjson");
    let lines = 20_000usize;
    let mut text = String::new();
    let mut bad = Vec::new();
    for i in 1..=lines {
        if i % 3_001 == 0 {
            text.push_str("{\"broken\n");
            bad.push(i);
        } else {
            // Every 1,000th line repeats the line before it (same message: already stored).
            let n = if i % 1_000 == 0 { i - 1 } else { i };
            text.push_str(&format!(
                "{{\"pubsub_topic\":\"/waku/2/rs/16/32\",\"content_topic\":\"/waku/1/0x1980b7cb/rfc26\",\"timestamp\":{},\"payload\":\"aGVsbG8=\"}}\n",
                1_729_728_000_000_000_000u64 + n as u64
            ));
        }
    }
    std::fs::write(&input, text).unwrap();
    let out = chs().args(["store", "import", "--json", "--db"]).arg(&db).arg("--ndjson").arg(&input).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reported: Vec<usize> =
        stderr.lines().filter_map(|l| l.split(':').nth(1).and_then(|n| n.parse().ok())).collect();
    assert_eq!(reported, bad, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the counts as JSON");
    let duplicates = (1..=lines).filter(|i| i % 1_000 == 0 && i % 3_001 != 0 && (i - 1) % 3_001 != 0).count();
    assert_eq!(v["read"].as_u64(), Some(lines as u64), "{v}");
    assert_eq!(v["bad_lines"].as_u64(), Some(bad.len() as u64), "{v}");
    assert_eq!(v["already_stored"].as_u64(), Some(duplicates as u64), "{v}");
    let stored = lines - bad.len() - duplicates;
    assert_eq!(v["imported"].as_u64(), Some(stored as u64), "{v}");
    let out = chs().args(["store", "stats", "--json", "--db"]).arg(&db).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["messages"].as_u64(), Some(stored as u64));
}
