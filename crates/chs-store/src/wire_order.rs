//! Pages of messages in 13/WAKU2-STORE order, `(timestamp_ns, hash)`, for a store v3 server
//! (chs-node serves its message store with them).

use rusqlite::types::Value;

use crate::message::{self, StoredMessage};
use crate::{COLUMNS, Store, StoreError, placeholders};

/// One page asked in store order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePageQuery<'a> {
    /// The pubsub topic the messages were relayed on.
    pub pubsub_topic: &'a str,
    /// Content topics (empty = all of the pubsub topic).
    pub content_topics: &'a [String],
    /// Earliest wire timestamp, ns (inclusive).
    pub start_ns: Option<i64>,
    /// Latest wire timestamp, ns (inclusive).
    pub end_ns: Option<i64>,
    /// Start strictly after this message in the page's direction.
    pub after: Option<[u8; 32]>,
    /// `true`: oldest first.
    pub forward: bool,
    /// Most rows.
    pub limit: usize,
    /// Only rows that can still give the message as relayed: its relayed payload kept
    /// (`raw_payload`), or a version-0 payload (relayed as is). Rows rebuilt from archives have
    /// neither.
    pub relayed_only: bool,
}

impl Store {
    /// The rows of `query` in `(timestamp_ns, hash)` order (descending when not `forward`), at most
    /// `limit`; `Ok(None)` when `after` names no stored message.
    ///
    /// # Errors
    /// SQLite or row errors.
    pub fn page_in_wire_order(&self, query: &WirePageQuery<'_>) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let mut values: Vec<Value> = vec![Value::Text(query.pubsub_topic.to_owned())];
        let mut clauses = vec!["pubsub_topic = ?1".to_owned()];
        if query.relayed_only {
            clauses.push("(raw_payload IS NOT NULL OR version = 0)".to_owned());
        }
        if !query.content_topics.is_empty() {
            clauses.push(format!("content_topic IN ({})", placeholders(values.len() + 1, query.content_topics.len())));
            values.extend(query.content_topics.iter().map(|t| Value::Text(t.clone())));
        }
        if let Some(start) = query.start_ns {
            values.push(Value::Integer(start));
            clauses.push(format!("timestamp_ns >= ?{}", values.len()));
        }
        if let Some(end) = query.end_ns {
            values.push(Value::Integer(end));
            clauses.push(format!("timestamp_ns <= ?{}", values.len()));
        }
        if let Some(after) = query.after {
            let found: Option<i64> = self
                .conn
                .query_row("SELECT timestamp_ns FROM messages WHERE hash = ?1", [&after[..]], |r| r.get(0))
                .map(Some)
                .or_else(|err| match err {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    other => Err(other),
                })?;
            let Some(timestamp_ns) = found else { return Ok(None) };
            values.push(Value::Integer(timestamp_ns));
            values.push(Value::Blob(after.to_vec()));
            let op = if query.forward { ">" } else { "<" };
            clauses.push(format!("(timestamp_ns, hash) {op} (?{}, ?{})", values.len() - 1, values.len()));
        }
        let order = if query.forward { "ASC" } else { "DESC" };
        values.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE {} ORDER BY timestamp_ns {order}, hash {order} LIMIT ?{}",
            clauses.join(" AND "),
            values.len()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut page = Vec::new();
        while let Some(row) = rows.next()? {
            page.push(message::from_row(row)?);
        }
        Ok(Some(page))
    }

    /// The rows among `hashes` (in no particular order).
    ///
    /// # Errors
    /// SQLite or row errors.
    pub fn messages_by_hash(&self, hashes: &[[u8; 32]]) -> Result<Vec<StoredMessage>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE hash IN ({})", placeholders(1, hashes.len()));
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(hashes.iter().map(|h| h.to_vec())))?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(message::from_row(row)?);
        }
        Ok(found)
    }
}
