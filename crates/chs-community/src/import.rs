//! Canonical import: an archive's messages replace the member's messages of its time range, and
//! each message's unwrapped `ApplicationMetadataMessage` becomes a readable history row.

use std::collections::BTreeSet;

use chs_proto::protobuf::{WakuMessage as ArchivedMessage, WakuMessageArchiveMetadata};
use chs_store::{StoredMessage, Topic};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use serde::{Deserialize, Serialize};

use chs_status::CommunityId;

use crate::CommunityError;

/// One extracted archive, as the archive reader hands it over.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveImport<'a> {
    /// The archive id (the index key, `0x` + 64 hex).
    pub archive_id: &'a str,
    /// The archive's metadata: window `[from, to)` in seconds and its 4-byte topics.
    pub metadata: &'a WakuMessageArchiveMetadata,
    /// The archived messages (status-go's archived `WakuMessage`).
    pub messages: &'a [ArchivedMessage],
}

/// What one canonical import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The archive id.
    pub archive_id: String,
    /// Window start, seconds.
    pub from: u64,
    /// Window end, seconds.
    pub to: u64,
    /// Messages in the archive.
    pub messages: usize,
    /// Stored messages of the range that were deleted (the old set).
    pub deleted: usize,
    /// Messages inserted (the new set).
    pub inserted: usize,
    /// Messages of the archive skipped because their hash is already stored
    /// (a duplicate inside the archive, or a copy outside the range).
    pub duplicates: usize,
    /// Messages skipped because their hash is not 32 bytes or their topic not 4 bytes.
    pub malformed: usize,
    /// Messages skipped because their timestamp or topic lies outside the archive's window.
    pub out_of_window: usize,
    /// Topics the archive's metadata names that belong to another community of this node (see
    /// [`crate::Communities::import_archive`]): `0x` + 8 hex, sorted. Nothing on them is deleted
    /// or inserted.
    pub refused_topics: Vec<String>,
    /// Messages skipped because they are on a [`ImportReport::refused_topics`] topic.
    pub refused_messages: usize,
    /// Messages whose `ApplicationMetadataMessage` decoded into a history row.
    pub decoded: usize,
    /// Stored messages that did not decode (kept in the message table, not in the history).
    pub undecodable: usize,
    /// Of the decoded ones, chat messages with text.
    pub chat_messages: usize,
    /// Messages whose decoding was deferred ([`crate::DecodeMode::Deferred`]).
    pub pending_decode: usize,
}

/// When an import decodes the messages' Status layers for the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeMode {
    /// Decode (and verify: one ECDSA recovery per message) before the transaction; the report
    /// counts decoded and undecodable messages.
    #[default]
    Immediate,
    /// Store the messages and pending history rows only; decoding happens in
    /// [`crate::Communities::decode_pending_history`] (or on the next history read). The
    /// message set is canonical at commit either way; only the history fields come later.
    Deferred,
}

/// What a pass of deferred decoding did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeReport {
    /// Rows decoded.
    pub decoded: usize,
    /// Rows whose message did not decode.
    pub undecodable: usize,
    /// Of the decoded ones, chat messages with text.
    pub chat_messages: usize,
}

/// One row of a community's readable history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// `0x` + hex of the 14/WAKU2 message hash.
    pub message_hash: String,
    /// Archived timestamp, Unix seconds.
    pub timestamp: u64,
    /// The author: `0x` + hex of the signer's uncompressed public key (status-go's `from`);
    /// empty when unknown.
    pub author: String,
    /// `ApplicationMetadataMessage` type number.
    pub amm_type: i32,
    /// Its name in status-go's enum (`CHAT_MESSAGE`, ...), or `UNKNOWN(n)`.
    pub type_name: String,
    /// The application clock (ms; 0 if the payload has none).
    pub clock: u64,
    /// When the author sent it (ms, from a `ChatMessage`; 0 otherwise).
    pub sent_at_ms: u64,
    /// The chat id inside a `ChatMessage` (empty otherwise).
    pub chat_id: String,
    /// The text of a `ChatMessage`.
    pub text: Option<String>,
}

/// A decoded archived message, ready for the history table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) amm_type: i32,
    pub(crate) signer: String,
    pub(crate) clock: u64,
    pub(crate) sent_at_ms: u64,
    pub(crate) chat_id: String,
    pub(crate) text: Option<String>,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unclamp(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Decoded {
    /// The history fields of an archived message, via `chs-status` (one ECDSA recovery).
    pub(crate) fn decode(msg: &ArchivedMessage) -> Result<Decoded, chs_status::RejectReason> {
        let entry = chs_status::history::decode_archived(msg)?;
        let (sent_at_ms, chat_id, text) = match entry.chat {
            Some(chat) => (chat.timestamp_ms, chat.chat_id, Some(chat.text)),
            None => (0, String::new(), None),
        };
        Ok(Decoded {
            amm_type: entry.message_type,
            signer: format!("0x{}", hex::encode(entry.signer.to_uncompressed())),
            clock: entry.clock.unwrap_or(0),
            sent_at_ms,
            chat_id,
            text,
        })
    }
}

impl Decoded {
    /// The history row of a decoded message with hash `message_hash` (`0x` + hex), archived at
    /// `timestamp` (Unix seconds).
    pub(crate) fn into_record(self, message_hash: String, timestamp: u64) -> HistoryRecord {
        HistoryRecord {
            message_hash,
            timestamp,
            author: self.signer,
            amm_type: self.amm_type,
            type_name: chs_status::amm::type_name(self.amm_type),
            clock: self.clock,
            sent_at_ms: self.sent_at_ms,
            chat_id: self.chat_id,
            text: self.text,
        }
    }
}

/// Decodes `msgs` on all cores (decoding is one ECDSA recovery per message and dominates the
/// import otherwise), keeping the order.
fn decode_all(msgs: &[&ArchivedMessage]) -> Vec<Result<Decoded, chs_status::RejectReason>> {
    chs_status::parallel::map_ordered(msgs, |m| Decoded::decode(m))
}

/// The `rowid` of a stored community (the history key).
pub(crate) fn community_ref(conn: &Connection, community: &CommunityId) -> Result<i64, CommunityError> {
    conn.query_row("SELECT rowid FROM chs_communities WHERE community_id = ?1", [community.to_string()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| CommunityError::UnknownCommunity(community.to_string()))
}

/// Which topics an import may touch: those configured for the importing community (channels and
/// default chats) and those configured for every other community of the node.
#[derive(Debug, Default)]
pub(crate) struct TopicScope {
    pub(crate) own: BTreeSet<Topic>,
    pub(crate) others: BTreeSet<Topic>,
}

/// An archive's claimed topics, split by [`scope_topics`].
#[derive(Debug, Default)]
struct Scoped {
    /// Topics the import may replace.
    allowed: Vec<Topic>,
    /// Topics of another community.
    refused: Vec<Topic>,
    /// Allowed topics nobody had: learned by the importing community.
    learn: Vec<Topic>,
}

/// Splits an archive's claimed topics into those the community may replace and those refused.
/// A topic is refused if another community has it configured, or learned it from an earlier
/// import and the importing community does not have it configured. A topic nobody has is
/// allowed and learned so that no later archive of another community can take it.
fn scope_topics(
    tx: &Transaction<'_>,
    community: &CommunityId,
    scope: &TopicScope,
    claimed: Vec<Topic>,
) -> Result<Scoped, CommunityError> {
    let mut owner_of = tx.prepare_cached("SELECT community_id FROM chs_community_topics WHERE topic = ?1")?;
    let me = community.to_string();
    let mut out = Scoped::default();
    for topic in claimed {
        if out.allowed.contains(&topic) || out.refused.contains(&topic) {
            continue;
        }
        let learned_by: Option<String> = owner_of.query_row([&topic[..]], |r| r.get(0)).optional()?;
        let configured = scope.own.contains(&topic);
        if scope.others.contains(&topic) || learned_by.as_ref().is_some_and(|o| *o != me && !configured) {
            out.refused.push(topic);
        } else {
            if !configured && learned_by.is_none() {
                out.learn.push(topic);
            }
            out.allowed.push(topic);
        }
    }
    Ok(out)
}

/// Runs the whole import in one transaction on `conn`. Only messages on `pubsub_topic` and the
/// topics [`scope_topics`] allows are deleted or inserted; every row is keyed by the hash computed
/// from its own fields, not by the hash the archive claims.
pub(crate) fn import_archive(
    conn: &mut Connection,
    community: &CommunityId,
    pubsub_topic: &str,
    scope: &TopicScope,
    archive: &ArchiveImport<'_>,
    mode: DecodeMode,
    now_ms: i64,
) -> Result<ImportReport, CommunityError> {
    let archive_id = crate::bookkeeping::normalize_archive_id(archive.archive_id)?;
    let (from, to) = (archive.metadata.from, archive.metadata.to);
    if from >= to {
        return Err(CommunityError::EmptyRange { from, to });
    }
    let cref = community_ref(conn, community)?;
    let claimed: Vec<Topic> = archive
        .metadata
        .content_topic
        .iter()
        .filter_map(|t| {
            let topic = <Topic>::try_from(t.as_slice()).ok();
            if topic.is_none() {
                tracing::warn!(%archive_id, len = t.len(), "archive metadata topic is not 4 bytes; ignored");
            }
            topic
        })
        .collect();
    // The archive may only replace the community's own topics: a topic of another community is
    // refused, and the rest of the archive still imports.
    let started = std::time::Instant::now();
    let tx = conn.transaction()?;
    let Scoped { allowed: topics, refused, learn } = scope_topics(&tx, community, scope, claimed)?;
    let mut refused_topics: Vec<String> = refused.iter().map(|t| format!("0x{}", hex::encode(t))).collect();
    refused_topics.sort();
    refused_topics.dedup();
    let mut report = ImportReport {
        archive_id: archive_id.clone(),
        from,
        to,
        messages: archive.messages.len(),
        refused_topics,
        ..Default::default()
    };
    let received_at = now_ms;
    let mut stored = Vec::with_capacity(archive.messages.len());
    let mut kept = Vec::with_capacity(archive.messages.len());
    for msg in archive.messages {
        let Ok(row) = StoredMessage::from_untrusted_archive_message(pubsub_topic, msg, received_at) else {
            report.malformed += 1;
            continue;
        };
        let ts = row.timestamp_secs();
        if refused.contains(&row.topic) {
            report.refused_messages += 1;
            continue;
        }
        if ts < from || ts >= to || !topics.contains(&row.topic) {
            report.out_of_window += 1;
            continue;
        }
        kept.push(msg);
        stored.push(row);
    }
    // Decoding (ECDSA recoveries, on every core) runs while this thread replaces the window's
    // messages in the store: the two do not depend on each other until the history rows below.
    let parsed_ms = started.elapsed().as_millis();
    let (outcomes, stored_window) = std::thread::scope(|scope| {
        let decoding = (mode == DecodeMode::Immediate).then(|| scope.spawn(|| decode_all(&kept)));
        let stored_window = chs_store::replace_range_tx(&tx, pubsub_topic, &topics, from, to, &stored)
            .map_err(CommunityError::from)
            .and_then(|stats| delete_history(&tx, cref, &topics, from, to).map(|()| stats));
        tracing::debug!(%archive_id, elapsed_ms = started.elapsed().as_millis(), "archive import: messages stored");
        let outcomes: Vec<Outcome> = match decoding {
            Some(handle) => match handle.join() {
                Ok(decoded) => decoded.into_iter().map(Outcome::from).collect(),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            None => Vec::new(),
        };
        (outcomes, stored_window)
    });
    let stats = stored_window?;
    let decoded_ms = started.elapsed().as_millis();
    report.deleted = stats.deleted;
    report.inserted = stats.inserted;
    report.duplicates = stored.len() - stats.inserted;
    if outcomes.is_empty() {
        // Deferred: only the keys; every other column has its pending default.
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO chs_history (community_ref, timestamp, message_hash, topic) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in &stored {
            insert.execute(params![cref, clamp(row.timestamp_secs()), &row.hash[..], &row.topic[..]])?;
        }
    } else {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO chs_history
             (community_ref, timestamp, message_hash, state, amm_type, signer, clock, sent_at_ms, chat_id, text, error, topic)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let pending = Outcome::Pending;
        for (idx, row) in stored.iter().enumerate() {
            let outcome = outcomes.get(idx).unwrap_or(&pending);
            outcome.count(&mut report.decoded, &mut report.undecodable, &mut report.chat_messages);
            outcome.execute(&mut insert, (cref, clamp(row.timestamp_secs()), &row.hash[..]), Some(&row.topic[..]))?;
        }
    }
    report.pending_decode = stored.len() - report.decoded - report.undecodable;
    let mut learn_topic =
        tx.prepare_cached("INSERT OR IGNORE INTO chs_community_topics (topic, community_id) VALUES (?1, ?2)")?;
    for topic in &learn {
        learn_topic.execute(params![&topic[..], community.to_string()])?;
    }
    drop(learn_topic);
    let refusal = crate::bookkeeping::Refusal { topics: &report.refused_topics, messages: report.refused_messages };
    crate::bookkeeping::mark_imported(&tx, community, &archive_id, from, to, &refusal, now_ms)?;
    let written_ms = started.elapsed().as_millis();
    tx.commit()?;
    if !report.refused_topics.is_empty() {
        tracing::warn!(
            community_id = %community, %archive_id, topics = ?report.refused_topics,
            messages = report.refused_messages,
            "archive names topics that are not this community's own: their messages were refused"
        );
    }
    tracing::info!(
        community_id = %community, %archive_id, from, to,
        inserted = report.inserted, deleted = report.deleted, undecodable = report.undecodable,
        pending_decode = report.pending_decode, refused = report.refused_messages, "archive imported"
    );
    tracing::debug!(
        %archive_id, parsed_ms, decoded_ms, written_ms, committed_ms = started.elapsed().as_millis(),
        "archive import: time into the transaction at each step"
    );
    Ok(report)
}

/// The decoding outcome of one message.
enum Outcome {
    Pending,
    Decoded(Decoded),
    Undecodable(String),
}

impl From<Result<Decoded, chs_status::RejectReason>> for Outcome {
    fn from(result: Result<Decoded, chs_status::RejectReason>) -> Self {
        match result {
            Ok(decoded) => Outcome::Decoded(decoded),
            Err(reason) => Outcome::Undecodable(reason.to_string()),
        }
    }
}

impl Outcome {
    fn columns(&self) -> (i64, Option<&Decoded>, Option<&str>) {
        match self {
            Outcome::Pending => (STATE_PENDING, None, None),
            Outcome::Decoded(d) => (STATE_DECODED, Some(d), None),
            Outcome::Undecodable(e) => (STATE_UNDECODABLE, None, Some(e.as_str())),
        }
    }

    /// Runs `stmt`, an INSERT or UPDATE of `chs_history` whose parameters are the key
    /// (`?1` community_ref, `?2` timestamp, `?3` message_hash), the decoded columns `?4`–`?11`
    /// (state, amm_type, signer, clock, sent_at_ms, chat_id, text, error) and, if given, `?12` topic.
    fn execute(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        key: (i64, i64, &[u8]),
        topic: Option<&[u8]>,
    ) -> rusqlite::Result<usize> {
        let (state, d, error) = self.columns();
        let (amm_type, signer) = (d.map_or(0, |d| d.amm_type), d.map_or("", |d| d.signer.as_str()));
        let (clock, sent_at_ms) = (clamp(d.map_or(0, |d| d.clock)), clamp(d.map_or(0, |d| d.sent_at_ms)));
        let (chat_id, text) = (d.map_or("", |d| d.chat_id.as_str()), d.and_then(|d| d.text.as_deref()));
        let mut values: Vec<&dyn rusqlite::ToSql> =
            vec![&key.0, &key.1, &key.2, &state, &amm_type, &signer, &clock, &sent_at_ms, &chat_id, &text, &error];
        if let Some(topic) = &topic {
            values.push(topic);
        }
        stmt.execute(values.as_slice())
    }

    fn count(&self, decoded: &mut usize, undecodable: &mut usize, chat: &mut usize) {
        match self {
            Outcome::Pending => {}
            Outcome::Decoded(d) => {
                *decoded += 1;
                *chat += usize::from(d.text.is_some());
            }
            Outcome::Undecodable(_) => *undecodable += 1,
        }
    }
}

const STATE_PENDING: i64 = 0;
const STATE_DECODED: i64 = 1;
const STATE_UNDECODABLE: i64 = 2;

fn delete_history(tx: &Transaction<'_>, cref: i64, topics: &[Topic], from: u64, to: u64) -> Result<(), CommunityError> {
    let mut delete = tx.prepare_cached(
        "DELETE FROM chs_history WHERE community_ref = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND topic = ?4",
    )?;
    for topic in topics {
        delete.execute(params![cref, clamp(from), clamp(to), &topic[..]])?;
    }
    Ok(())
}

/// Decodes up to `max` pending history rows of a community (oldest first), in batches, each
/// batch's results written in one transaction. The messages are read back from the store.
pub(crate) fn decode_pending(
    conn: &mut Connection,
    community: &CommunityId,
    max: usize,
) -> Result<DecodeReport, CommunityError> {
    const BATCH: usize = 10_000;
    let cref = community_ref(conn, community)?;
    let mut report = DecodeReport::default();
    let mut cursor: (i64, Vec<u8>) = (-1, Vec::new());
    let mut remaining = max;
    while remaining > 0 {
        let limit = remaining.min(BATCH);
        // Keys and the archived form of the next pending rows (a LEFT JOIN: the message may
        // have been deleted from the store since, e.g. by retention).
        let batch: Vec<(i64, Vec<u8>, Option<ArchivedMessage>)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT h.timestamp, h.message_hash, m.sig, m.topic, m.payload, m.padding, m.third_party_id, m.hash
                 FROM chs_history h LEFT JOIN messages m ON m.hash = h.message_hash
                 WHERE h.community_ref = ?1 AND h.state = 0
                   AND (h.timestamp > ?2 OR (h.timestamp = ?2 AND h.message_hash > ?3))
                 ORDER BY h.timestamp, h.message_hash LIMIT ?4",
            )?;
            let rows =
                stmt.query_map(params![cref, cursor.0, cursor.1, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    let ts: i64 = r.get(0)?;
                    let hash: Vec<u8> = r.get(1)?;
                    let found: Option<Vec<u8>> = r.get(7)?;
                    let msg = match found {
                        None => None,
                        Some(_) => Some(ArchivedMessage {
                            sig: r.get(2)?,
                            timestamp: unclamp(ts),
                            topic: r.get(3)?,
                            payload: r.get(4)?,
                            padding: r.get(5)?,
                            hash: hash.clone(),
                            third_party_id: r.get(6)?,
                        }),
                    };
                    Ok((ts, hash, msg))
                })?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(last) = batch.last() else { break };
        cursor = (last.0, last.1.clone());
        remaining -= batch.len();
        let present: Vec<&ArchivedMessage> = batch.iter().filter_map(|(_, _, m)| m.as_ref()).collect();
        let mut decoded = decode_all(&present).into_iter();
        let tx = conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE chs_history SET state = ?4, amm_type = ?5, signer = ?6, clock = ?7, sent_at_ms = ?8,
                 chat_id = ?9, text = ?10, error = ?11
                 WHERE community_ref = ?1 AND timestamp = ?2 AND message_hash = ?3",
            )?;
            for (ts, hash, msg) in &batch {
                let outcome = match msg {
                    None => Outcome::Undecodable("message no longer in the store".to_owned()),
                    Some(_) => decoded.next().map_or(Outcome::Pending, Outcome::from),
                };
                outcome.count(&mut report.decoded, &mut report.undecodable, &mut report.chat_messages);
                outcome.execute(&mut update, (cref, *ts, &hash[..]), None)?;
            }
        }
        tx.commit()?;
    }
    if report != DecodeReport::default() {
        tracing::debug!(community_id = %community, decoded = report.decoded, undecodable = report.undecodable, "history decoded");
    }
    Ok(report)
}

/// How many imported messages of a community are kept but not readable here because they are
/// hash-ratchet encrypted (token-gated communities) or segments of a larger message: a Status
/// client with the keys (and every segment) reads them. Decoding marks them undecodable with
/// the chs-status reason, which is what is matched.
pub(crate) fn sealed_messages(conn: &Connection, community: &CommunityId) -> Result<u64, CommunityError> {
    let cref = community_ref(conn, community)?;
    let encrypted = chs_status::RejectReason::EncryptedMessage.to_string();
    let segment =
        chs_status::RejectReason::Segmented { index: 0, segments_count: 0, parity_segments_count: 0 }.to_string();
    let segment_prefix = format!("{}%", segment.split('(').next().unwrap_or(&segment));
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM chs_history WHERE community_ref = ?1 AND state = ?2 AND (error = ?3 OR error LIKE ?4)",
        params![cref, STATE_UNDECODABLE, encrypted, segment_prefix],
        |r| r.get(0),
    )?;
    Ok(unclamp(count))
}

/// A community's decoded history in time order (archived timestamp, then clock, then hash).
pub(crate) fn history(conn: &Connection, community: &CommunityId) -> Result<Vec<HistoryRecord>, CommunityError> {
    let cref = community_ref(conn, community)?;
    let mut stmt = conn.prepare_cached(
        "SELECT message_hash, timestamp, signer, amm_type, clock, sent_at_ms, chat_id, text FROM chs_history
         WHERE community_ref = ?1 AND state = 1 ORDER BY timestamp, clock, message_hash",
    )?;
    let rows = stmt.query_map([cref], |r| {
        let amm_type: i32 = r.get(3)?;
        Ok(HistoryRecord {
            message_hash: format!("0x{}", hex::encode(r.get::<_, Vec<u8>>(0)?)),
            timestamp: unclamp(r.get(1)?),
            author: r.get(2)?,
            amm_type,
            type_name: chs_status::amm::type_name(amm_type),
            clock: unclamp(r.get(4)?),
            sent_at_ms: unclamp(r.get(5)?),
            chat_id: r.get(6)?,
            text: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
