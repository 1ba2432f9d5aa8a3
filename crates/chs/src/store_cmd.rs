//! `chs store import|stats`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use chs_proto::waku::{WakuMessage, message_hash};
use chs_store::{Store, StoredMessage, topic_from_content_topic};
use clap::Subcommand;
use serde::Deserialize;

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Imports messages from a file of JSON lines (see docs/formats.md). Bad lines are reported with
    /// their line number and skipped; the exit code is non-zero if any line was bad.
    Import {
        /// SQLite file of the store (created if absent).
        #[arg(long)]
        db: PathBuf,
        /// File with one JSON object per line.
        #[arg(long)]
        ndjson: PathBuf,
    },
    /// Prints message counts.
    Stats {
        /// SQLite file of the store.
        #[arg(long)]
        db: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// One line of `chs store import --ndjson`: a 14/WAKU2 message as relayed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NdjsonRecord {
    pubsub_topic: String,
    content_topic: String,
    /// Unix nanoseconds.
    timestamp: i64,
    /// Base64.
    payload: String,
    /// Base64.
    #[serde(default)]
    meta: Option<String>,
    #[serde(default)]
    version: Option<u32>,
}

pub(crate) fn run(cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Import { db, ndjson } => import(&db, &ndjson),
        StoreCommand::Stats { db, json } => stats(&db, json),
    }
}

fn parse_line(line: &str, received_at_ms: i64) -> anyhow::Result<StoredMessage> {
    let rec: NdjsonRecord = serde_json::from_str(line).context("not a valid record")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(&rec.payload).context("payload is not valid base64")?;
    let meta = rec.meta.as_deref().map(|m| b64.decode(m)).transpose().context("meta is not valid base64")?;
    anyhow::ensure!(!rec.pubsub_topic.is_empty(), "pubsub_topic is empty");
    anyhow::ensure!(!rec.content_topic.is_empty(), "content_topic is empty");
    anyhow::ensure!(rec.timestamp >= 0, "timestamp {} is negative", rec.timestamp);
    anyhow::ensure!(meta.as_ref().is_none_or(|m| m.len() <= 64), "meta is longer than 64 bytes");
    let wire = WakuMessage {
        payload,
        content_topic: rec.content_topic,
        version: rec.version,
        timestamp: Some(rec.timestamp),
        meta,
        rate_limit_proof: None,
        ephemeral: None,
    };
    let hash = message_hash(&rec.pubsub_topic, &wire);
    Ok(StoredMessage {
        hash,
        topic: topic_from_content_topic(&wire.content_topic),
        pubsub_topic: rec.pubsub_topic,
        content_topic: wire.content_topic,
        timestamp_ns: rec.timestamp,
        version: wire.version.unwrap_or(0),
        meta: wire.meta.unwrap_or_default(),
        raw_payload: None,
        payload: wire.payload,
        padding: Vec::new(),
        sig: Vec::new(),
        third_party_id: String::new(),
        received_at_ms,
    })
}

fn import(db: &std::path::Path, ndjson: &std::path::Path) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(ndjson).with_context(|| format!("opening {}", ndjson.display()))?;
    let mut store = Store::open(db).with_context(|| format!("opening store {}", db.display()))?;
    let now_ms = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    let (mut read, mut bad, mut inserted) = (0u64, 0u64, 0usize);
    let mut batch = Vec::with_capacity(1000);
    for (idx, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = idx + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{}:{line_no}: unreadable line: {e}", ndjson.display());
                bad += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        read += 1;
        match parse_line(&line, now_ms) {
            Ok(m) => batch.push(m),
            Err(e) => {
                eprintln!("{}:{line_no}: skipped: {e:#}", ndjson.display());
                bad += 1;
            }
        }
        if batch.len() == 1000 {
            inserted += store.insert_batch(&batch)?;
            batch.clear();
        }
    }
    inserted += store.insert_batch(&batch)?;
    let duplicates = read - bad - inserted as u64;
    println!("imported {inserted} messages ({duplicates} already stored, {bad} bad lines) into {}", db.display());
    Ok(if bad > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn stats(db: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(db.exists(), "no store at {}", db.display());
    let store = Store::open(db).with_context(|| format!("opening store {}", db.display()))?;
    let s = store.stats()?;
    if json {
        let per_topic: serde_json::Map<String, serde_json::Value> =
            s.per_content_topic.iter().map(|(t, n)| (t.clone(), (*n).into())).collect();
        let value = serde_json::json!({
            "messages": s.messages,
            "payload_bytes": s.payload_bytes,
            "first_timestamp": s.first_timestamp,
            "last_timestamp": s.last_timestamp,
            "content_topics": per_topic,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("messages:      {}", s.messages);
        println!("payload bytes: {}", s.payload_bytes);
        println!("first:         {}", s.first_timestamp.map_or("-".into(), |t| t.to_string()));
        println!("last:          {}", s.last_timestamp.map_or("-".into(), |t| t.to_string()));
        for (topic, n) in &s.per_content_topic {
            println!("  {topic}: {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
