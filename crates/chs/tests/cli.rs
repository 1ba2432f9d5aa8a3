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
