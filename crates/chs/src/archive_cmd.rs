//! `chs archive build|inspect|verify|extract|import`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::archive_cli::{parse_duration, parse_topic, parse_unix_secs};
use anyhow::Context as _;
use chs_archive::{BuildOptions, Builder, DEFAULT_INTERVAL_SECS, INDEX_FILE, PIECE_LENGTH, Reader, Topic};
use chs_community::{ArchiveImport, DecodeMode};
use clap::{Args, Subcommand};

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Appends the archives of a time range of stored messages to DIR/data and DIR/index.
    #[command(long_about = "Appends status-go-compatible history archives to DIR/data and DIR/index, \
        reading the messages of the given topics from the store. The range [--from, --to) is cut into \
        windows of --interval (aligned to --from); each window with messages becomes one archive (or \
        several when the 30 MB cap is reached), padded to --piece-length. A message that alone exceeds \
        the cap is left out and reported. Without --from, the build resumes at the end of the last \
        archive in DIR (or starts at the oldest stored message). A progress bar is drawn on stderr \
        when it is a terminal.")]
    Build(BuildArgs),
    /// Lists the archives of DIR: id, window, offset, size, padding, message count, topics.
    Inspect {
        /// Archive directory (holding `index` and `data`).
        dir: PathBuf,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Checks every archive of DIR (ids, bounds, piece alignment, overlaps, padding, decoding);
    /// exits non-zero naming each bad archive.
    Verify {
        /// Archive directory.
        dir: PathBuf,
        /// Piece length the archives must be aligned to.
        #[arg(long, default_value_t = PIECE_LENGTH)]
        piece_length: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the messages of one archive (--id) or of every archive in index order (--all).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Extract {
        /// Archive directory.
        dir: PathBuf,
        /// Archive id (`0x` + 64 hex digits, as `inspect` prints it).
        #[arg(long)]
        id: Option<String>,
        /// Every archive of the index, in data-file order (one archive in memory at a time).
        #[arg(long)]
        all: bool,
        /// One JSON object per message (timestamp, topic, hash, sig, payload, padding as 0x-hex).
        #[arg(long)]
        ndjson: bool,
    },
    /// Imports the archives of DIR into a community's canonical history (member side).
    #[command(long_about = "Imports the archives of DIR (all, or those named with --id) into the \
        database as the community's canonical history: for each archive, the stored messages of its \
        topics and window are replaced by exactly the archive's messages, in one transaction, and the \
        archive id is recorded as imported. History rows are decoded later (by `chs history show`).")]
    Import {
        /// Archive directory.
        dir: PathBuf,
        /// SQLite database holding the community (see `chs community join`).
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long)]
        community: String,
        /// Only these archive ids (default: every archive of DIR).
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Print JSON (one object per archive, imported or failed, and the totals).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// SQLite store to read messages from.
    #[arg(long)]
    db: PathBuf,
    /// Archive directory (created if absent).
    #[arg(long)]
    dir: PathBuf,
    /// Topic to archive: 8 hex digits (`0xa4abdf64`) or a content topic `/waku/1/0x…/rfc26`. Repeatable.
    #[arg(long = "topic", value_parser = parse_topic, required_unless_present = "community")]
    topics: Vec<Topic>,
    /// Archive the channel topics of this community (stored in --db) instead of --topic; the
    /// community's last archive end date is updated.
    #[arg(long, conflicts_with = "topics")]
    community: Option<String>,
    /// Start of the range, Unix seconds (default: resume after the last archive, or the oldest message).
    #[arg(long, value_parser = parse_unix_secs)]
    from: Option<u64>,
    /// End of the range, Unix seconds, exclusive (default: now). Milliseconds or nanoseconds are
    /// refused (a number past the year 9999 as seconds).
    #[arg(long, value_parser = parse_unix_secs)]
    to: Option<u64>,
    /// Window length: seconds or a number with s, m, h, d or w (e.g. 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value_t = DEFAULT_INTERVAL_SECS)]
    interval: u64,
    /// Piece length the archives are padded to.
    #[arg(long, default_value_t = PIECE_LENGTH)]
    piece_length: u64,
    /// Print the build report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: ArchiveCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ArchiveCommand::Build(args) => build(&args),
        ArchiveCommand::Inspect { dir, json } => inspect(&dir, json),
        ArchiveCommand::Verify { dir, piece_length, json } => verify(&dir, piece_length, json),
        ArchiveCommand::Extract { dir, id, all: _, ndjson } => extract(&dir, id.as_deref(), ndjson),
        ArchiveCommand::Import { dir, db, community, ids, json } => import(&dir, &db, &community, &ids, json),
    }
}

fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.piece_length > 0, "--piece-length must be at least 1");
    let mut store = util::open_existing_store(&args.db)?;
    let (topics, community) = match &args.community {
        Some(text) => {
            let id = util::parse_community_id(text)?;
            let communities = util::communities(&mut store)?;
            let topics = communities.channel_topics(&store, &id)?;
            anyhow::ensure!(!topics.is_empty(), "community {id} has no channel chats to archive");
            (topics, Some((communities, id)))
        }
        None => (args.topics.clone(), None),
    };
    let to = args.to.unwrap_or_else(util::now_secs);
    if let Some(from) = args.from {
        anyhow::ensure!(from < to, "--from {from} is not before --to {to}");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating archive directory {}", args.dir.display()))?;
    let options = BuildOptions {
        from: args.from,
        interval: args.interval,
        piece_length: args.piece_length,
        ..BuildOptions::new(topics, to)
    };
    let bar = util::progress_bar(1000, "{spinner} [{elapsed_precise}] [{bar:40}] {percent}% {msg}");
    let mut on_progress = |p: &chs_archive::Progress| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        bar.set_position((p.fraction() * 1000.0) as u64);
        bar.set_message(format!(
            "window {}/{}, {} messages, {} bytes",
            p.windows_done, p.windows_total, p.messages, p.bytes_written
        ));
    };
    // The control node of an encrypted community wraps its archives as status-go does.
    let wrapping = match &community {
        Some((communities, id)) if communities.get(&store, id)?.is_control_node() => {
            Some(communities.build_wrapping(&mut store, id)?)
        }
        _ => None,
    };
    let build = |w: Option<&mut dyn chs_archive::Wrapper>| {
        Builder::new(&args.dir, options)
            .progress(&mut on_progress)
            .maybe_wrapper(w.map(|w| w as &mut dyn chs_archive::Wrapper))
            .run(&store)
    };
    let report = match wrapping {
        Some(wrapping) => wrapping.run(&args.db, build).map(|(report, _)| report),
        None => build(None),
    }
    .with_context(|| format!("building archives in {}", args.dir.display()))?;
    bar.finish_and_clear();
    if let Some((communities, id)) = &community
        && report.archived_until > 0
    {
        communities.save_last_archive_end_date(&mut store, id, report.archived_until)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if report.repaired_bytes > 0 {
            println!("repaired an interrupted build: removed {} trailing bytes of data", report.repaired_bytes);
        }
        match report.range {
            Some(range) => println!(
                "scanned {} .. {} ({} windows, {} empty)",
                util::format_utc(range.from),
                util::format_utc(range.to),
                report.windows_scanned,
                report.windows_empty
            ),
            None => println!("nothing to scan (no messages on the topics, or already archived up to --to)"),
        }
        for a in &report.archives {
            println!(
                "archive {} [{} .. {}) offset {} size {} padding {} messages {}",
                a.id, a.window.from, a.window.to, a.offset, a.size, a.padding, a.messages
            );
        }
        println!(
            "built {} archives with {} messages into {} (data is {} bytes)",
            report.archives.len(),
            report.messages_archived,
            args.dir.display(),
            report.data_len
        );
    }
    if !report.oversized.is_empty() {
        eprintln!(
            "warning: {} messages skipped because each alone exceeds the archive size cap:",
            report.oversized.len()
        );
        for m in &report.oversized {
            eprintln!("  {} at {} ({} bytes)", m.hash, m.timestamp, m.size);
        }
    }
    if !args.json {
        println!("oversized messages skipped: {}", report.oversized.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens DIR for reading; a missing directory or index is a clear error.
fn open_dir(dir: &Path) -> anyhow::Result<Reader> {
    anyhow::ensure!(dir.is_dir(), "archive directory {} does not exist", dir.display());
    anyhow::ensure!(
        dir.join(INDEX_FILE).is_file(),
        "{} has no {INDEX_FILE} file: not an archive directory",
        dir.display()
    );
    Reader::open(dir).with_context(|| format!("reading archive directory {}", dir.display()))
}

fn inspect(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let reader = open_dir(dir)?;
    let rows = reader.rows();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<68} {:>10} {:>10} {:>10} {:>9} {:>8} {:>8}  topics",
        "id", "from", "to", "offset", "size", "padding", "messages"
    );
    for r in &rows {
        let count = match (&r.message_count, r.encrypted, &r.error) {
            (Some(n), _, _) => n.to_string(),
            (None, true, _) => "encrypted".to_owned(),
            (None, false, _) => "error".to_owned(),
        };
        println!(
            "{:<68} {:>10} {:>10} {:>10} {:>9} {:>8} {:>8}  {}",
            r.id,
            r.from,
            r.to,
            r.offset,
            r.size,
            r.padding,
            count,
            r.topics.join(",")
        );
        if let Some(e) = &r.error {
            println!("  error: {e}");
        }
    }
    println!("{} archives, data is {} bytes", rows.len(), reader.data_len());
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path, piece_length: u64, json: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(piece_length > 0, "--piece-length must be at least 1");
    let reader = open_dir(dir)?;
    let report = reader.verify(piece_length);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    for f in &report.stray_files {
        eprintln!("warning: stray file {f} in {} would be part of a torrent of the directory", dir.display());
    }
    if report.trailing_bytes > 0 {
        eprintln!("warning: {} bytes of data after the last archive", report.trailing_bytes);
    }
    if report.is_ok() {
        if !json {
            println!("ok: {} archives, {} messages in {}", report.archives, report.messages, dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    for v in &report.violations {
        if v.id.is_empty() {
            eprintln!("bad archive directory: {}", v.problem);
        } else {
            eprintln!("bad archive {}: {}", v.id, v.problem);
        }
    }
    eprintln!(
        "error: verification of {} failed: {} problems in {} archives",
        dir.display(),
        report.violations.len(),
        report.archives
    );
    Ok(ExitCode::FAILURE)
}

/// Messages formatted at once by `archive extract --ndjson` (on all cores, then written).
const EXTRACT_WINDOW: usize = 4096;

fn extract(dir: &Path, id: Option<&str>, ndjson: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let reader = open_dir(dir)?;
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_owned()],
        None => {
            let mut entries: Vec<_> = reader.entries().iter().collect();
            entries.sort_by_key(|e| e.offset());
            entries.into_iter().map(|e| e.id.clone()).collect()
        }
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut total = 0usize;
    // A reading thread decodes the next archive while this one is written: at most three
    // archives (each at most 30 MB) in memory.
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reader = &reader;
        let ids = &ids;
        scope.spawn(move || {
            for id in ids {
                let archive = reader.extract(id).with_context(|| format!("extracting from {}", dir.display()));
                let failed = archive.is_err();
                if tx.send((id, archive)).is_err() || failed {
                    return;
                }
            }
        });
        for (id, archive) in rx {
            let archive = archive?;
            total += archive.messages.len();
            if ndjson {
                // Formatted on all cores, one part of a window each, written in order. Windows of
                // EXTRACT_WINDOW messages keep the text buffers small and reused by the allocator
                // (a whole archive's text at once costs its size in fresh, zeroed pages).
                for window in archive.messages.chunks(EXTRACT_WINDOW) {
                    for lines in chs_status::parallel::map_chunks(window, |part| {
                        let mut lines = Vec::with_capacity(part.iter().map(|m| 2 * m.payload.len() + 400).sum());
                        for m in part {
                            crate::archive_cli::write_message_row(&mut lines, m);
                        }
                        lines
                    }) {
                        out.write_all(&lines)?;
                    }
                }
                continue;
            }
            if let Some(meta) = &archive.metadata {
                let topics: Vec<String> = meta.content_topic.iter().map(|t| format!("0x{}", hex::encode(t))).collect();
                writeln!(out, "archive {id}: [{} .. {}) topics {}", meta.from, meta.to, topics.join(","))?;
            }
            for m in &archive.messages {
                writeln!(
                    out,
                    "{}  0x{}  0x{}  {} bytes",
                    util::format_utc(m.timestamp),
                    hex::encode(&m.topic),
                    hex::encode(&m.hash),
                    m.payload.len()
                )?;
            }
        }
        Ok(())
    })?;
    if !ndjson {
        writeln!(out, "{total} messages")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn import(dir: &Path, db: &Path, community: &str, ids: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let reader = open_dir(dir)?;
    let id = util::parse_community_id(community)?;
    let mut store = util::open_existing_store(db)?;
    let communities = util::communities(&mut store)?;
    communities.get(&store, &id)?;
    let wanted: Vec<String> = if ids.is_empty() {
        reader.entries().iter().map(|e| e.id.clone()).collect()
    } else {
        ids.iter().map(|i| reader.entry(i).map(|e| e.id.clone())).collect::<Result<_, _>>()?
    };
    let mut failed = 0usize;
    let mut reports = Vec::new();
    for archive_id in &wanted {
        let entry = reader.entry(archive_id)?;
        let result = reader.extract(archive_id).map_err(anyhow::Error::from).and_then(|archive| {
            let metadata = archive
                .metadata
                .as_ref()
                .or(entry.metadata.metadata.as_ref())
                .with_context(|| format!("archive {archive_id} has no metadata"))?;
            communities.record_downloaded_archive(&mut store, &id, archive_id, entry.from(), entry.to())?;
            let import = ArchiveImport { archive_id, metadata, messages: &archive.messages };
            Ok(communities.import_archive_with(&mut store, &id, &import, DecodeMode::Deferred)?)
        });
        match result {
            Ok(r) if json => reports.push(serde_json::json!({
                "archive_id": r.archive_id, "from": r.from, "to": r.to, "messages": r.messages,
                "inserted": r.inserted, "replaced": r.deleted, "duplicates": r.duplicates,
                "malformed": r.malformed, "out_of_window": r.out_of_window,
            })),
            Err(e) if json => {
                reports.push(serde_json::json!({ "archive_id": archive_id, "error": crate::error_text(&e) }));
                failed += 1;
            }
            Ok(r) => println!(
                "imported archive {} [{} .. {}): {} messages, {} inserted, {} replaced, {} duplicates, {} malformed, {} out of window",
                r.archive_id,
                r.from,
                r.to,
                r.messages,
                r.inserted,
                r.deleted,
                r.duplicates,
                r.malformed,
                r.out_of_window
            ),
            Err(e) => {
                eprintln!("error: archive {archive_id} not imported: {e:#}");
                failed += 1;
            }
        }
    }
    if json {
        let value = serde_json::json!({ "imported": wanted.len() - failed, "failed": failed, "archives": reports });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{} archives imported, {failed} failed", wanted.len() - failed);
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
