//! `chs store import|stats`.

use std::borrow::Cow;
use std::io::BufRead as _;
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

/// One line of `chs store import --ndjson`: a 14/WAKU2 message as relayed (the base64 fields are
/// borrowed from the line when they need no unescaping).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NdjsonRecord<'a> {
    pubsub_topic: String,
    content_topic: String,
    /// Unix nanoseconds.
    timestamp: i64,
    /// Base64.
    #[serde(borrow)]
    payload: Cow<'a, str>,
    /// Base64.
    #[serde(default, borrow)]
    meta: Option<Cow<'a, str>>,
    #[serde(default)]
    version: Option<u32>,
}

/// Lines read, parsed (on all cores) and stored (in one transaction) at a time; while one batch
/// is stored the next is parsed. At most three batches are in memory, whatever the file's size.
const BATCH_LINES: usize = 8192;

/// SQLite page cache of an import's connection (see [`Store::set_cache_size_kib`]).
const IMPORT_CACHE_KIB: u32 = 64 * 1024;

/// Rows an import commits at once (see [`chs_store::BulkInsert`]): a crash loses at most this
/// many, and a rerun of the import stores them (stored hashes are skipped).
const ROWS_PER_TRANSACTION: usize = 8 * BATCH_LINES;

/// What became of one line of an import file.
enum Line<T> {
    /// Empty or whitespace only: not counted.
    Blank,
    /// Not UTF-8.
    Unreadable(String),
    /// What the format's parser made of it.
    Parsed(T),
}

/// Reads `path` in batches of [`BATCH_LINES`] lines, parses each batch on all cores
/// ([`chs_status::parallel::map_ordered`]) on a reading thread, and hands the parsed batches, in
/// file order with their 1-based line numbers, to `sink` on the calling thread; the next batch is
/// read and parsed while `sink` stores the last one. `sink`'s error stops the reading.
fn for_each_parsed_batch<T: Send>(
    file: std::fs::File,
    path: &std::path::Path,
    parse: impl Fn(&str) -> T + Sync,
    mut sink: impl FnMut(Vec<(usize, Line<T>)>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let parse = &parse;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Line<T>)>>(1);
        let reader = scope.spawn(move || -> std::io::Result<()> {
            let mut input = std::io::BufReader::with_capacity(1 << 20, file);
            let mut line_no = 0usize;
            let mut text = Vec::new();
            let mut lines = Vec::with_capacity(BATCH_LINES);
            loop {
                text.clear();
                lines.clear();
                while lines.len() < BATCH_LINES {
                    let start = text.len();
                    if input.read_until(b'\n', &mut text)? == 0 {
                        break;
                    }
                    line_no += 1;
                    let mut end = text.len();
                    if text[..end].ends_with(b"\n") {
                        end -= 1;
                        if text[start..end].ends_with(b"\r") {
                            end -= 1;
                        }
                    }
                    lines.push((line_no, start..end));
                }
                if lines.is_empty() {
                    return Ok(());
                }
                let parsed = chs_status::parallel::map_ordered(&lines, |(no, range)| {
                    let line = match std::str::from_utf8(&text[range.clone()]) {
                        Ok(line) if line.trim().is_empty() => Line::Blank,
                        Ok(line) => Line::Parsed(parse(line)),
                        Err(e) => Line::Unreadable(format!("stream did not contain valid UTF-8: {e}")),
                    };
                    (*no, line)
                });
                if tx.send(parsed).is_err() {
                    return Ok(());
                }
            }
        });
        for batch in rx {
            sink(batch)?;
        }
        match reader.join() {
            Ok(read) => read.with_context(|| format!("reading {}", path.display())),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
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
    let rec: NdjsonRecord<'_> = serde_json::from_str(line).context("not a valid record")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(rec.payload.as_bytes()).context("payload is not valid base64")?;
    let meta = rec.meta.as_deref().map(|m| b64.decode(m.as_bytes())).transpose().context("meta is not valid base64")?;
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
    store.set_cache_size_kib(IMPORT_CACHE_KIB)?;
    let mut bulk = store.bulk_insert(ROWS_PER_TRANSACTION)?;
    let now_ms = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    // `bad` counts unreadable and skipped lines; `read` the readable ones, skipped included.
    let (mut read, mut bad, mut skipped, mut inserted) = (0u64, 0u64, 0u64, 0usize);
    let mut rows = Vec::with_capacity(BATCH_LINES);
    for_each_parsed_batch(
        file,
        ndjson,
        |line| parse_line(line, now_ms),
        |batch| {
            for (line_no, line) in batch {
                match line {
                    Line::Blank => {}
                    Line::Unreadable(e) => {
                        eprintln!("{}:{line_no}: unreadable line: {e}", ndjson.display());
                        bad += 1;
                    }
                    Line::Parsed(Ok(m)) => {
                        read += 1;
                        rows.push(m);
                    }
                    Line::Parsed(Err(e)) => {
                        read += 1;
                        eprintln!("{}:{line_no}: skipped: {e:#}", ndjson.display());
                        bad += 1;
                        skipped += 1;
                    }
                }
            }
            inserted += bulk.insert(&rows)?;
            rows.clear();
            Ok(())
        },
    )?;
    bulk.finish()?;
    let duplicates = read.saturating_sub(skipped + inserted as u64);
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

/// What became of one captured line (computed on a worker thread).
enum Captured {
    /// Not a message in the file's format.
    Bad(anyhow::Error),
    /// A message the community's control node would not archive.
    Rejected(chs_status::RejectReason),
    /// A captured message the store refuses (a bug, not a bad line: the import stops).
    Unconvertible(chs_store::StoreError),
    /// What is stored.
    Stored(Box<StoredMessage>),
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
    store.set_cache_size_kib(IMPORT_CACHE_KIB)?;
    let communities = util::communities(&mut store)?;
    let community = communities.get(&store, &id)?;
    anyhow::ensure!(!community.chats.is_empty(), "community {id} has no channel chats stored: nothing can be captured");
    let default_pubsub = pubsub_topic.unwrap_or(&community.pubsub_topic).to_owned();
    let cache = ChatKeyCache::new();
    let ring = ChatKeyRing::from_chat_ids(community.chats.iter().map(String::as_str), &cache);
    let now_ms = util::now_ms();
    let mut counters = RejectCounters::new();
    let (mut read, mut bad, mut inserted, mut accepted) = (0u64, 0u64, 0usize, 0u64);
    let mut rows = Vec::with_capacity(BATCH_LINES);
    let mut bulk = store.bulk_insert(ROWS_PER_TRANSACTION)?;
    // Parsing, decryption and both signature recoveries run on all cores; counting, reporting and
    // storing stay here, in file order.
    // What a control node archives, as live capture: segments and hash-ratchet ciphertext too.
    let decode = |line: &str| {
        let (pubsub, message) = match parse_captured(line.trim(), format, &default_pubsub) {
            Ok(parsed) => parsed,
            Err(e) => return Captured::Bad(e),
        };
        let archived = match capture_for_archive(&message, &pubsub, &ring, CapturePolicy::CONTROL_NODE) {
            Ok(archived) => archived,
            Err(reason) => return Captured::Rejected(reason),
        };
        let mut stored = match StoredMessage::from_archive_message(&pubsub, &archived, now_ms) {
            Ok(stored) => stored,
            Err(e) => return Captured::Unconvertible(e),
        };
        stored.content_topic = message.content_topic;
        stored.timestamp_ns = message.timestamp.unwrap_or(0);
        stored.version = message.version.unwrap_or(0);
        stored.meta = message.meta.unwrap_or_default();
        stored.raw_payload = Some(message.payload);
        Captured::Stored(Box::new(stored))
    };
    for_each_parsed_batch(input, file, decode, |batch| {
        for (line_no, line) in batch {
            let captured = match line {
                Line::Blank => continue,
                Line::Unreadable(e) => {
                    eprintln!("{}:{line_no}: unreadable line: {e}", file.display());
                    bad += 1;
                    continue;
                }
                Line::Parsed(captured) => captured,
            };
            read += 1;
            match captured {
                Captured::Bad(e) => {
                    eprintln!("{}:{line_no}: skipped: {e:#}", file.display());
                    bad += 1;
                }
                Captured::Unconvertible(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("{}:{line_no}: converting the captured message", file.display())));
                }
                Captured::Rejected(reason) => {
                    counters.record_rejected(&reason);
                    tracing::debug!(line = line_no, %reason, "captured message not stored");
                }
                Captured::Stored(stored) => {
                    counters.record_accepted();
                    accepted += 1;
                    rows.push(*stored);
                }
            }
        }
        inserted += bulk.insert(&rows)?;
        rows.clear();
        Ok(())
    })?;
    bulk.finish()?;
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
