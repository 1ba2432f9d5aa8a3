//! Archive bookkeeping: status-go's `communities_archive_info` and
//! `community_message_archive_hashes` (spec archives §11.2-11.3), with two of its bugs fixed:
//! saving the end date no longer wipes the magnetlink clock and URI (§15 item 11), and archive
//! ids are keyed per community (§15 item 25).

use std::collections::BTreeSet;

use chs_proto::protobuf::{WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use chs_status::CommunityId;

use crate::CommunityError;

/// A community's `communities_archive_info` row (zero values when there is none, as in status-go).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// Clock (ms) of the newest accepted magnetlink.
    pub magnetlink_clock: u64,
    /// The last magnet URI whose download completed (`""` if none).
    pub last_magnetlink_uri: String,
    /// End (seconds, exclusive) of the last archive window the control node built.
    pub last_archive_end_date: u64,
}

/// An archive id this node downloaded, and whether it was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// `0x` + 64 lowercase hex digits.
    pub archive_id: String,
    /// Window start, seconds (inclusive).
    pub from: u64,
    /// Window end, seconds (exclusive).
    pub to: u64,
    /// Whether its messages are in the store.
    pub imported: bool,
    /// How many import attempts failed.
    pub import_failures: u32,
    /// The last import error, if any.
    pub last_error: Option<String>,
    /// Topics of the archive refused at import because they are not the community's own
    /// (`0x` + 8 hex); see [`crate::ImportReport::refused_topics`].
    pub refused_topics: Vec<String>,
    /// Messages refused with them.
    pub refused_messages: u64,
}

/// What an import refused, recorded with the archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal<'a> {
    pub(crate) topics: &'a [String],
    pub(crate) messages: usize,
}

/// Which archives of an index a member wants (the spec's three member strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Strategy {
    /// Every archive (a new member).
    All,
    /// Only the newest window: every archive whose `from` is the largest in the index (a window
    /// split into several size chunks has several archives with the same `from`).
    Latest,
    /// Archives overlapping `[from, to)` (seconds).
    TimeRange {
        /// Start, seconds (inclusive).
        from: u64,
        /// End, seconds (exclusive).
        to: u64,
    },
}

/// An archive of an index that this node has not downloaded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingArchive {
    /// The archive id (the index key).
    pub archive_id: String,
    /// Window start, seconds.
    pub from: u64,
    /// Window end, seconds.
    pub to: u64,
    /// Byte offset in `data`.
    pub offset: u64,
    /// Bytes in `data`, padding included.
    pub size: u64,
    /// Zero padding after the encoded archive.
    pub padding: u64,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unclamp(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Normalises an archive id to `0x` + 64 lowercase hex digits.
///
/// # Errors
/// [`CommunityError::InvalidArchiveId`].
pub fn normalize_archive_id(id: &str) -> Result<String, CommunityError> {
    let digits = id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")).unwrap_or(id);
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CommunityError::InvalidArchiveId(id.to_owned()));
    }
    Ok(format!("0x{}", digits.to_ascii_lowercase()))
}

pub(crate) fn archive_info(conn: &Connection, id: &CommunityId) -> Result<ArchiveInfo, CommunityError> {
    let row = conn
        .query_row(
            "SELECT magnetlink_clock, last_magnetlink_uri, last_message_archive_end_date
             FROM chs_archive_info WHERE community_id = ?1",
            [id.to_string()],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
        )
        .optional()?;
    Ok(row.map_or_else(ArchiveInfo::default, |(clock, uri, end)| ArchiveInfo {
        magnetlink_clock: unclamp(clock),
        last_magnetlink_uri: uri,
        last_archive_end_date: unclamp(end),
    }))
}

/// Sets one column of the archive-info row, creating the row when missing (status-go's plain
/// UPDATEs silently store nothing without a row, spec wire §3.10) and never touching the others.
fn upsert_column(
    conn: &Connection,
    id: &CommunityId,
    column: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO chs_archive_info (community_id, {column}) VALUES (?1, ?2)
             ON CONFLICT (community_id) DO UPDATE SET {column} = excluded.{column}"
        ),
        params![id.to_string(), value],
    )?;
    Ok(())
}

pub(crate) fn set_magnetlink_clock(conn: &Connection, id: &CommunityId, clock: u64) -> Result<(), CommunityError> {
    Ok(upsert_column(conn, id, "magnetlink_clock", &clamp(clock))?)
}

pub(crate) fn set_last_magnetlink_uri(conn: &Connection, id: &CommunityId, uri: &str) -> Result<(), CommunityError> {
    Ok(upsert_column(conn, id, "last_magnetlink_uri", &uri)?)
}

pub(crate) fn set_last_archive_end_date(conn: &Connection, id: &CommunityId, end: u64) -> Result<(), CommunityError> {
    Ok(upsert_column(conn, id, "last_message_archive_end_date", &clamp(end))?)
}

/// Records a downloaded archive (not yet imported). Returns false if it was already recorded.
pub(crate) fn record_downloaded(
    conn: &Connection,
    id: &CommunityId,
    archive_id: &str,
    from: u64,
    to: u64,
    now_ms: i64,
) -> Result<bool, CommunityError> {
    let archive_id = normalize_archive_id(archive_id)?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO chs_archive_ids (community_id, archive_id, from_secs, to_secs, downloaded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.to_string(), archive_id, clamp(from), clamp(to), now_ms],
    )?;
    Ok(n == 1)
}

/// Marks an archive imported (recording it if needed), inside the import transaction.
pub(crate) fn mark_imported(
    conn: &Connection,
    id: &CommunityId,
    archive_id: &str,
    from: u64,
    to: u64,
    refusal: &Refusal<'_>,
    now: i64,
) -> Result<(), CommunityError> {
    let refused_messages = i64::try_from(refusal.messages).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO chs_archive_ids (community_id, archive_id, from_secs, to_secs, imported, downloaded_at_ms, imported_at_ms,
             refused_topics, refused_messages)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6, ?7)
         ON CONFLICT (community_id, archive_id) DO UPDATE SET imported = 1, imported_at_ms = ?5, last_error = NULL,
             from_secs = excluded.from_secs, to_secs = excluded.to_secs,
             refused_topics = excluded.refused_topics, refused_messages = excluded.refused_messages",
        params![id.to_string(), archive_id, clamp(from), clamp(to), now, refusal.topics.join(","), refused_messages],
    )?;
    Ok(())
}

/// Records a failed import attempt (the archive stays un-imported; later archives are not blocked).
pub(crate) fn record_import_failure(
    conn: &Connection,
    id: &CommunityId,
    archive_id: &str,
    error: &str,
    now_ms: i64,
) -> Result<(), CommunityError> {
    conn.execute(
        "INSERT INTO chs_archive_ids (community_id, archive_id, import_failures, last_error, downloaded_at_ms)
         VALUES (?1, ?2, 1, ?3, ?4)
         ON CONFLICT (community_id, archive_id) DO UPDATE SET import_failures = import_failures + 1,
             last_error = excluded.last_error",
        params![id.to_string(), archive_id, error, now_ms],
    )?;
    Ok(())
}

pub(crate) fn archive_records(conn: &Connection, id: &CommunityId) -> Result<Vec<ArchiveRecord>, CommunityError> {
    let mut stmt = conn.prepare_cached(
        "SELECT archive_id, from_secs, to_secs, imported, import_failures, last_error, refused_topics, refused_messages
         FROM chs_archive_ids WHERE community_id = ?1 ORDER BY from_secs, archive_id",
    )?;
    let rows = stmt.query_map([id.to_string()], |r| {
        Ok(ArchiveRecord {
            archive_id: r.get(0)?,
            from: unclamp(r.get(1)?),
            to: unclamp(r.get(2)?),
            imported: r.get(3)?,
            import_failures: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
            last_error: r.get(5)?,
            refused_topics: r.get::<_, String>(6)?.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
            refused_messages: unclamp(r.get(7)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn downloaded_ids(conn: &Connection, id: &CommunityId) -> Result<BTreeSet<String>, CommunityError> {
    let mut stmt = conn.prepare_cached("SELECT archive_id FROM chs_archive_ids WHERE community_id = ?1")?;
    let rows = stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<BTreeSet<_>, _>>()?)
}

/// The archives of `index` selected by `strategy` whose ids are not in `have`, oldest `from`
/// first (ties by id, so the order is deterministic). Compares *sets* of ids, not counts
/// (spec §15 item 18). Index keys that are not valid archive ids are skipped with a warning.
#[must_use]
pub fn missing_archives(
    index: &WakuMessageArchiveIndex,
    have: &BTreeSet<String>,
    strategy: Strategy,
) -> Vec<MissingArchive> {
    let entries: Vec<(String, &WakuMessageArchiveIndexMetadata)> = index
        .archives
        .iter()
        .filter_map(|(key, meta)| match normalize_archive_id(key) {
            Ok(id) => Some((id, meta)),
            Err(_) => {
                tracing::warn!(archive_id = %key, "index key is not an archive id; skipped");
                None
            }
        })
        .collect();
    let window = |meta: &WakuMessageArchiveIndexMetadata| meta.metadata.as_ref().map_or((0, 0), |m| (m.from, m.to));
    let latest_from = entries.iter().map(|(_, meta)| window(meta).0).max();
    let mut out: Vec<MissingArchive> = entries
        .into_iter()
        .filter(|(_, meta)| {
            let (from, to) = window(meta);
            match strategy {
                Strategy::All => true,
                Strategy::Latest => Some(from) == latest_from,
                Strategy::TimeRange { from: range_from, to: range_to } => from < range_to && to > range_from,
            }
        })
        .filter(|(id, _)| !have.contains(id))
        .map(|(archive_id, meta)| {
            let (from, to) = window(meta);
            MissingArchive { archive_id, from, to, offset: meta.offset, size: meta.size, padding: meta.padding }
        })
        .collect();
    out.sort_by(|a, b| (a.from, &a.archive_id).cmp(&(b.from, &b.archive_id)));
    out
}
