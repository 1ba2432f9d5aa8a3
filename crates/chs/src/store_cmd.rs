//! `chs store import|stats`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use chs_proto::waku::{WakuMessage, message_hash};
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::{ChatKeyCache, ChatKeyRing, RejectCounters};
use chs_store::{Store, StoredMessage, topic_from_content_topic};
use clap::{ArgGroup, Subcommand};
use serde::Deserialize;

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Imports messages from a file (one message per line). Bad lines are reported with their line
    /// number and skipped; the exit code is non-zero if any line was bad.
    #[command(
        group(ArgGroup::new("input").required(true).args(["ndjson", "waku_ndjson", "waku_hex"])),
        long_about = "Imports messages into the store from a file with one message per line, in one of three formats:\n\n\
--ndjson FILE: stored as given (no decryption). Each line is a JSON object with pubsub_topic, \
content_topic, timestamp (Unix ns), payload (base64), and optional meta (base64) and version.\n\n\
--waku-ndjson FILE --community ID: captured 14/WAKU2 messages, one JSON object per line as printed by \
`chs waku listen` (pubsub_topic, content_topic, payload_hex, timestamp in ns, and optional version, \
meta_hex, ephemeral; other fields are ignored).\n\n\
--waku-hex FILE --community ID: one hex-encoded WakuMessage protobuf per line (as `waku_message` of \
`chs status magnetlink build` / `chs status chat build`), relayed on --pubsub-topic (default: the \
community's).\n\n\
Captured messages are decoded as the community's control node archives them: only messages on the \
community's channel chats that decrypt with the chat key, carry a valid payload signature and unwrap \
to a signed ApplicationMetadataMessage, a segment or a hash-ratchet-encrypted ProtocolMessage (token-gated \
communities; kept as status-go keeps them) are stored (decrypted payload, padding and signer). The others \
are not stored and are counted by reason (undecryptable, unknown_topic, bad_amm_signature, ...); \
they do not make the exit code non-zero, unreadable lines do."
    )]
    Import {
        /// SQLite file of the store (created if absent).
        #[arg(long)]
        db: PathBuf,
        /// File with one stored-message JSON object per line.
        #[arg(long)]
        ndjson: Option<PathBuf>,
        /// File of captured WakuMessages as JSON lines (`chs waku listen` output).
        #[arg(long, requires = "community")]
        waku_ndjson: Option<PathBuf>,
        /// File of hex-encoded WakuMessage protobufs, one per line.
        #[arg(long, requires = "community")]
        waku_hex: Option<PathBuf>,
        /// Community whose channel chat keys decode captured messages (must be stored in --db).
        #[arg(long)]
        community: Option<String>,
        /// Pubsub topic of --waku-hex messages (default: the community's).
        #[arg(long)]
        pubsub_topic: Option<String>,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
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
        StoreCommand::Import { db, ndjson, waku_ndjson, waku_hex, community, pubsub_topic, json } => {
            match (ndjson, waku_ndjson, waku_hex, community) {
                (Some(ndjson), None, None, None) if pubsub_topic.is_none() => import(&db, &ndjson, json),
                (Some(_), None, None, _) => anyhow::bail!(
                    "--community and --pubsub-topic apply to --waku-ndjson and --waku-hex only: --ndjson rows are stored as given"
                ),
                (None, Some(file), None, Some(community)) => {
                    import_captured(&db, &file, CaptureFormat::Ndjson, &community, pubsub_topic.as_deref(), json)
                }
                (None, None, Some(file), Some(community)) => {
                    import_captured(&db, &file, CaptureFormat::Hex, &community, pubsub_topic.as_deref(), json)
                }
                _ => anyhow::bail!(
                    "give exactly one of --ndjson, --waku-ndjson or --waku-hex (the last two with --community)"
                ),
            }
        }
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

fn import(db: &std::path::Path, ndjson: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
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
    if json {
        let value = serde_json::json!({
            "db": db, "read": read, "imported": inserted, "already_stored": duplicates, "bad_lines": bad,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("imported {inserted} messages ({duplicates} already stored, {bad} bad lines) into {}", db.display());
    }
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

/// How a capture file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureFormat {
    /// JSON lines as printed by `chs waku listen`.
    Ndjson,
    /// One hex-encoded WakuMessage protobuf per line.
    Hex,
}

/// One line of `chs store import --waku-ndjson` (the `chs waku listen` format; other fields ignored).
#[derive(Debug, Deserialize)]
struct CapturedRecord {
    pubsub_topic: String,
    content_topic: String,
    payload_hex: String,
    #[serde(default)]
    version: Option<u32>,
    /// Unix nanoseconds.
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    meta_hex: Option<String>,
    #[serde(default)]
    ephemeral: Option<bool>,
}

fn parse_captured(line: &str, format: CaptureFormat, default_pubsub: &str) -> anyhow::Result<(String, WakuMessage)> {
    match format {
        CaptureFormat::Hex => {
            use chs_proto::Message as _;
            let bytes = util::parse_hex(line, "the line")?;
            let message = WakuMessage::decode(bytes.as_slice()).context("not an encoded WakuMessage")?;
            Ok((default_pubsub.to_owned(), message))
        }
        CaptureFormat::Ndjson => {
            let rec: CapturedRecord = serde_json::from_str(line).context("not a valid captured-message record")?;
            anyhow::ensure!(!rec.pubsub_topic.is_empty(), "pubsub_topic is empty");
            let payload = util::parse_hex(&rec.payload_hex, "payload_hex")?;
            let meta = rec.meta_hex.as_deref().map(|m| util::parse_hex(m, "meta_hex")).transpose()?;
            let message = WakuMessage {
                payload,
                content_topic: rec.content_topic,
                version: rec.version,
                timestamp: rec.timestamp,
                meta,
                rate_limit_proof: None,
                ephemeral: rec.ephemeral,
            };
            Ok((rec.pubsub_topic, message))
        }
    }
}

fn import_captured(
    db: &std::path::Path,
    file: &std::path::Path,
    format: CaptureFormat,
    community: &str,
    pubsub_topic: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let id = util::parse_community_id(community)?;
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut store = util::open_existing_store(db)?;
    let communities = util::communities(&mut store)?;
    let community = communities.get(&store, &id)?;
    anyhow::ensure!(!community.chats.is_empty(), "community {id} has no channel chats stored: nothing can be captured");
    let default_pubsub = pubsub_topic.unwrap_or(&community.pubsub_topic).to_owned();
    let cache = ChatKeyCache::new();
    let ring = ChatKeyRing::from_chat_ids(community.chats.iter().map(String::as_str), &cache);
    let now_ms = util::now_ms();
    let mut counters = RejectCounters::new();
    let (mut read, mut bad, mut inserted, mut accepted) = (0u64, 0u64, 0usize, 0u64);
    let mut batch = Vec::with_capacity(1000);
    for (idx, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line_no = idx + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{}:{line_no}: unreadable line: {e}", file.display());
                bad += 1;
                continue;
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        read += 1;
        let (pubsub, message) = match parse_captured(line, format, &default_pubsub) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}:{line_no}: skipped: {e:#}", file.display());
                bad += 1;
                continue;
            }
        };
        let policy = CapturePolicy::CONTROL_NODE; // what a control node archives, as live capture
        let archived = match counters.record(capture_for_archive(&message, &pubsub, &ring, policy)) {
            Ok(a) => a,
            Err(reason) => {
                tracing::debug!(line = line_no, %reason, "captured message not stored");
                continue;
            }
        };
        accepted += 1;
        let mut stored = StoredMessage::from_archive_message(&pubsub, &archived, now_ms)
            .with_context(|| format!("{}:{line_no}: converting the captured message", file.display()))?;
        stored.content_topic = message.content_topic.clone();
        stored.timestamp_ns = message.timestamp.unwrap_or(0);
        stored.version = message.version.unwrap_or(0);
        stored.meta = message.meta.clone().unwrap_or_default();
        stored.raw_payload = Some(message.payload);
        batch.push(stored);
        if batch.len() == 1000 {
            inserted += store.insert_batch(&batch)?;
            batch.clear();
        }
    }
    inserted += store.insert_batch(&batch)?;
    let duplicates = accepted.saturating_sub(inserted as u64);
    let rejected = counters.total_rejected();
    if json {
        let not_stored: serde_json::Map<String, serde_json::Value> =
            counters.rejected.iter().map(|(kind, n)| (kind.as_str().to_owned(), (*n).into())).collect();
        let value = serde_json::json!({
            "db": db, "community": id.to_string(), "read": read, "imported": inserted, "already_stored": duplicates,
            "not_decodable": rejected, "bad_lines": bad, "not_stored": not_stored,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(if bad > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    println!(
        "imported {inserted} messages ({duplicates} already stored, {rejected} not decodable for community {id}, {bad} bad lines) from {read} lines into {}",
        db.display()
    );
    for (kind, n) in &counters.rejected {
        println!("  not stored, {}: {n}", kind.as_str());
    }
    Ok(if bad > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
