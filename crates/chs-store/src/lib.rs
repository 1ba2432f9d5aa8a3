//! The message store: every live Waku message of the communities a node archives, in SQLite.
//!
//! Start with [`Store::open`], [`Store::insert_batch`] and [`Store::for_each_in_range`].
//! A row ([`StoredMessage`]) keeps everything needed to rebuild both the 14/WAKU2 message that was
//! relayed (pubsub topic, content topic, wire payload, ns timestamp, meta, version) and status-go's
//! archived `WakuMessage` (signer key, seconds timestamp, 4-byte topic, decrypted payload, padding,
//! message hash, third-party id), keyed by the 14/WAKU2 deterministic message hash.
//!
//! The database runs in WAL mode with versioned migrations ([`migrate`], which other crates use for
//! their own tables in the same file). Range scans stream row by row in
//! `timestamp, topic, rowid` order (status-go's de-facto order, spec §15 item 9), so memory does not
//! grow with the size of a window.
//! The API is synchronous: async callers run it on their blocking pool.
//!
//! This crate knows nothing of archives, torrents, Waku networking or communities: it stores rows.

mod message;
mod private_files;
mod schema;
mod wire_order;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction, params};

pub use message::{StoredMessage, Topic, topic_from_content_topic};
pub use schema::migrate;
pub use wire_order::WirePageQuery;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database (or is damaged). Nothing was changed.
    #[error(
        "{path} is not a valid SQLite database (damaged, or another kind of file); nothing was changed: restore it \
         from a backup, or move it aside to start with an empty database"
    )]
    NotADatabase {
        /// The file that was opened.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is an SQLite database that another program owns (it has tables but no chs schema).
    #[error("{path} is an SQLite database of another program (tables {tables:?}, no chs schema); refusing to touch it")]
    ForeignDatabase {
        /// The file that was opened.
        path: PathBuf,
        /// A few of the tables found.
        tables: Vec<String>,
    },
    /// The database file is damaged (SQLite's `quick_check` fails). Nothing was changed.
    #[error(
        "database {path} is damaged ({detail}); nothing was changed: restore it from a backup (or run sqlite3's \
         `.recover` into a new file), or move it aside to start with an empty database"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
    /// The database was written by a newer chs with a schema this build does not know.
    #[error("schema of component {component:?} is at version {found}, newer than this build's {known}; upgrade chs")]
    SchemaTooNew {
        /// Which component's tables.
        component: String,
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A row holds a value that cannot be a stored message (e.g. a hash that is not 32 bytes).
    #[error("row with hash {hash} is malformed: {what}")]
    MalformedRow {
        /// Hex hash (or rowid) of the row.
        hash: String,
        /// What is wrong.
        what: String,
    },
    /// A message given to the store is invalid.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// Any other SQLite failure (I/O error, disk full, locked database...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file cannot be created (e.g. its folder does not exist).
    #[error("cannot create {path}: {source}")]
    Create {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task running the SQLite work panicked or was cancelled.
    #[error("store worker task failed: {0}")]
    Worker(String),
}

/// The error of a scan whose callback can fail.
#[derive(Debug, thiserror::Error)]
pub enum ScanError<E> {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The callback returned an error; the scan stopped there.
    #[error("scan callback failed")]
    Callback(#[source] E),
}

/// What [`Store::replace_range`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaceStats {
    /// Rows of the range deleted (the old set).
    pub deleted: usize,
    /// Rows inserted (the new set, duplicates counted once).
    pub inserted: usize,
}

/// Counts for `chs store stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of messages.
    pub messages: u64,
    /// Sum of payload bytes.
    pub payload_bytes: u64,
    /// Oldest message timestamp (seconds).
    pub first_timestamp: Option<u64>,
    /// Newest message timestamp (seconds).
    pub last_timestamp: Option<u64>,
    /// Message count per content topic, sorted by topic.
    pub per_content_topic: Vec<(String, u64)>,
}

/// The message store. Owns one SQLite connection; not `Sync`: async code runs it on its blocking pool behind a mutex.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "hash, pubsub_topic, content_topic, topic, timestamp, timestamp_ns, version, meta, raw_payload, \
                       payload, padding, sig, third_party_id, received_at";

impl Store {
    /// Opens (creating if absent) the store at `path` and migrates it to the current schema.
    ///
    /// The file may hold private keys (a community's, in the community tables), so it is private
    /// to its owner: an absent file is created with mode 0600 (kept so while SQLite opens it, and
    /// SQLite gives its `-wal` and `-shm` files the database file's mode), and an existing database, `-wal`,
    /// `-shm` or `-journal` file that others may read is set to 0600 with a warning (a `tracing`
    /// event). The process umask is not touched.
    ///
    /// # Errors
    /// [`StoreError::Create`] if the file cannot be created, [`StoreError::NotADatabase`] for a
    /// corrupt or non-SQLite file, [`StoreError::ForeignDatabase`] for another program's database,
    /// [`StoreError::SchemaTooNew`], or an SQLite error.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let create_err = |source| StoreError::Create { path: path.to_owned(), source };
        let created = private_files::create(path).map_err(create_err)?;
        if !created {
            private_files::tighten(path);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        if created {
            // Before any statement: SQLite has just made the empty file 0644, and its companions
            // will copy the database file's mode.
            private_files::restore(path).map_err(create_err)?;
        }
        let not_db = |source| StoreError::NotADatabase { path: path.to_owned(), source };
        // Reading the schema is the first thing that touches the file's contents.
        let tables = schema::user_tables(&conn).map_err(not_db)?;
        if !tables.is_empty() && !tables.iter().any(|t| t == schema::SCHEMA_TABLE) {
            return Err(StoreError::ForeignDatabase {
                path: path.to_owned(),
                tables: tables.into_iter().take(5).collect(),
            });
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(not_db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store { conn, path: path.to_owned() };
        migrate(&mut store.conn, "store", schema::STORE_MIGRATIONS)?;
        // The WAL files exist now: check them too (e.g. left loose by an older chs).
        private_files::tighten(path);
        Ok(store)
    }

    /// The file this store was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Inserts messages in one transaction; a message whose hash is already stored is skipped.
    /// Returns how many rows were new.
    ///
    /// # Errors
    /// SQLite errors (the transaction is rolled back: nothing of the batch is stored).
    pub fn insert_batch(&mut self, msgs: &[StoredMessage]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let inserted = insert_batch_tx(&tx, msgs)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// Calls `f` for every message on one of `topics` with `from_secs <= timestamp < to_secs`,
    /// in `timestamp, topic, rowid` order, one row at a time (memory stays flat).
    /// `f` returns `Err` to abort or `Ok(ControlFlow::Break(()))` to stop early.
    ///
    /// # Errors
    /// [`ScanError::Store`] on SQLite or row errors, [`ScanError::Callback`] with the callback's error.
    pub fn for_each_in_range<E>(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        f: impl FnMut(StoredMessage) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), ScanError<E>> {
        self.scan_range(COLUMNS, topics, from_secs, to_secs, message::from_row, f)
    }

    /// Collects a range into memory (for small ranges and tests; prefer [`Store::for_each_in_range`]).
    ///
    /// # Errors
    /// SQLite or row errors.
    pub fn messages_in_range(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        self.for_each_in_range(topics, from_secs, to_secs, |m| {
            out.push(m);
            Ok::<_, std::convert::Infallible>(ControlFlow::Continue(()))
        })
        .map_err(|e| match e {
            ScanError::Store(e) => e,
            ScanError::Callback(never) => match never {},
        })?;
        Ok(out)
    }

    /// [`Store::for_each_in_range`] for archiving: the same rows in the same order, read as
    /// status-go's archived `WakuMessage` directly (only the columns an archive holds, no
    /// intermediate [`StoredMessage`]), which is what the archive builder streams.
    ///
    /// # Errors
    /// [`ScanError::Store`] for SQLite or malformed-row errors, [`ScanError::Callback`] for `f`'s.
    pub fn for_each_archived_in_range<E>(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        f: impl FnMut(chs_proto::protobuf::WakuMessage) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), ScanError<E>> {
        let columns = "hash, topic, timestamp_ns, payload, padding, sig, third_party_id";
        self.scan_range(columns, topics, from_secs, to_secs, message::archived_from_row, f)
    }

    /// The range scan behind both `for_each_*_in_range`: `columns` of the rows on `topics` with
    /// `from_secs <= timestamp < to_secs`, in `timestamp, topic, rowid` order, each mapped by `map`.
    fn scan_range<T, E>(
        &self,
        columns: &str,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        map: fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
        mut f: impl FnMut(T) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), ScanError<E>> {
        if topics.is_empty() || from_secs >= to_secs {
            return Ok(());
        }
        let sql = format!(
            "SELECT {columns} FROM messages WHERE timestamp >= ?1 AND timestamp < ?2 AND +topic IN ({}) \
             ORDER BY timestamp, topic, rowid",
            placeholders(3, topics.len())
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(StoreError::from)?;
        let mut values: Vec<rusqlite::types::Value> = vec![clamp_i64(from_secs).into(), clamp_i64(to_secs).into()];
        values.extend(topics.iter().map(|t| rusqlite::types::Value::Blob(t.to_vec())));
        let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            match f(map(row)?).map_err(ScanError::Callback)? {
                ControlFlow::Continue(()) => {}
                ControlFlow::Break(()) => break,
            }
        }
        Ok(())
    }

    /// Timestamp (seconds) of the oldest message on `topics`, if any.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn first_timestamp_secs(&self, topics: &[Topic]) -> Result<Option<u64>, StoreError> {
        self.timestamp_agg("MIN", topics)
    }

    /// Timestamp (seconds) of the newest message on `topics`, if any.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn last_timestamp_secs(&self, topics: &[Topic]) -> Result<Option<u64>, StoreError> {
        self.timestamp_agg("MAX", topics)
    }

    fn timestamp_agg(&self, agg: &str, topics: &[Topic]) -> Result<Option<u64>, StoreError> {
        // status-go builds `WHERE topic = .. OR ..` and fails with a syntax error on no topics; we answer None.
        if topics.is_empty() {
            return Ok(None);
        }
        let sql = format!("SELECT {agg}(timestamp) FROM messages WHERE topic IN ({})", placeholders(1, topics.len()));
        let value: Option<i64> =
            self.conn.query_row(&sql, rusqlite::params_from_iter(topics.iter().map(|t| t.to_vec())), |r| r.get(0))?;
        Ok(value.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    /// Number of stored messages.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Number of stored messages on `topics` (0 for no topics).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn count_on_topics(&self, topics: &[Topic]) -> Result<u64, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let sql = format!("SELECT COUNT(*) FROM messages WHERE topic IN ({})", placeholders(1, topics.len()));
        let n: i64 =
            self.conn.query_row(&sql, rusqlite::params_from_iter(topics.iter().map(|t| t.to_vec())), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether a message with this hash is stored.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn contains(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.conn.query_row("SELECT EXISTS(SELECT 1 FROM messages WHERE hash = ?1)", [&hash[..]], |r| r.get(0))?)
    }

    /// Counts per content topic and totals.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let (messages, payload_bytes, first, last): (i64, i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), MIN(timestamp), MAX(timestamp) FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let mut stmt = self
            .conn
            .prepare("SELECT content_topic, COUNT(*) FROM messages GROUP BY content_topic ORDER BY content_topic")?;
        let per_content_topic = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0))))?
            .collect::<Result<Vec<_>, _>>()?;
        let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Stats {
            messages: to_u64(messages),
            payload_bytes: to_u64(payload_bytes),
            first_timestamp: first.map(to_u64),
            last_timestamp: last.map(to_u64),
            per_content_topic,
        })
    }

    /// Replaces the messages on `pubsub_topic` and `topics` with `from_secs <= timestamp < to_secs`
    /// by exactly `msgs`, in one transaction: after a crash the old set or the new set is stored,
    /// never a mix. Messages of other pubsub topics or topics are never touched.
    ///
    /// # Errors
    /// [`StoreError::InvalidMessage`] if a message lies outside the range, the pubsub topic or the
    /// topics (nothing changes), SQLite errors (rolled back).
    pub fn replace_range(
        &mut self,
        pubsub_topic: &str,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        msgs: &[StoredMessage],
    ) -> Result<ReplaceStats, StoreError> {
        let tx = self.conn.transaction()?;
        let stats = replace_range_tx(&tx, pubsub_topic, topics, from_secs, to_secs, msgs)?;
        tx.commit()?;
        Ok(stats)
    }

    /// Deletes messages on `topics` older than `before_secs` (retention of already-archived
    /// messages: pass at most the end of the last archive). Returns the number deleted.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn delete_older_than(&mut self, topics: &[Topic], before_secs: u64) -> Result<usize, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let sql = format!("DELETE FROM messages WHERE timestamp < ?1 AND topic IN ({})", placeholders(2, topics.len()));
        let mut values: Vec<rusqlite::types::Value> = vec![clamp_i64(before_secs).into()];
        values.extend(topics.iter().map(|t| rusqlite::types::Value::Blob(t.to_vec())));
        Ok(self.conn.execute(&sql, rusqlite::params_from_iter(values))?)
    }

    /// The SQLite connection, for crates that keep their own tables in the same file.
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The SQLite connection, e.g. to run [`replace_range_tx`] and other bookkeeping in one transaction.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// [`Store::insert_batch`] inside a caller's transaction.
///
/// # Errors
/// SQLite errors.
pub fn insert_batch_tx(tx: &Transaction<'_>, msgs: &[StoredMessage]) -> Result<usize, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO messages ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    let mut inserted = 0;
    for m in msgs {
        inserted += stmt.execute(params![
            &m.hash[..],
            m.pubsub_topic,
            m.content_topic,
            &m.topic[..],
            clamp_i64(m.timestamp_secs()),
            m.timestamp_ns,
            m.version,
            m.meta,
            m.raw_payload,
            m.payload,
            m.padding,
            m.sig,
            m.third_party_id,
            m.received_at_ms,
        ])?;
    }
    Ok(inserted)
}

/// [`Store::replace_range`] inside a caller's transaction.
///
/// # Errors
/// [`StoreError::InvalidMessage`] if a message lies outside the range, the pubsub topic or the
/// topics, SQLite errors.
pub fn replace_range_tx(
    tx: &Transaction<'_>,
    pubsub_topic: &str,
    topics: &[Topic],
    from_secs: u64,
    to_secs: u64,
    msgs: &[StoredMessage],
) -> Result<ReplaceStats, StoreError> {
    if let Some(bad) = msgs.iter().find(|m| {
        let ts = m.timestamp_secs();
        ts < from_secs || ts >= to_secs || !topics.contains(&m.topic) || m.pubsub_topic != pubsub_topic
    }) {
        return Err(StoreError::InvalidMessage(format!(
            "message {} (timestamp {}, topic 0x{}, pubsub topic {}) is outside [{from_secs}, {to_secs}), \
             {pubsub_topic} or its topics",
            hex::encode(bad.hash),
            bad.timestamp_secs(),
            hex::encode(bad.topic),
            bad.pubsub_topic,
        )));
    }
    let deleted = if topics.is_empty() {
        0
    } else {
        let sql = format!(
            "DELETE FROM messages WHERE timestamp >= ?1 AND timestamp < ?2 AND pubsub_topic = ?3 AND topic IN ({})",
            placeholders(4, topics.len())
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![clamp_i64(from_secs).into(), clamp_i64(to_secs).into(), pubsub_topic.to_owned().into()];
        values.extend(topics.iter().map(|t| rusqlite::types::Value::Blob(t.to_vec())));
        tx.execute(&sql, rusqlite::params_from_iter(values))?
    };
    let inserted = insert_batch_tx(tx, msgs)?;
    Ok(ReplaceStats { deleted, inserted })
}

fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
