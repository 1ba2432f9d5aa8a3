//! Versioned migrations, shared by every crate that keeps tables in the store's file.

use rusqlite::Connection;

use crate::StoreError;

/// The table that records each component's schema version.
pub(crate) const SCHEMA_TABLE: &str = "chs_schema";

/// The store's own migrations; entry `i` moves the schema from version `i` to `i + 1`.
pub(crate) const STORE_MIGRATIONS: &[&str] = &["CREATE TABLE messages (
        hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
        pubsub_topic TEXT NOT NULL,
        content_topic TEXT NOT NULL,
        topic BLOB NOT NULL CHECK (length(topic) = 4),
        timestamp INTEGER NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        version INTEGER NOT NULL,
        meta BLOB NOT NULL,
        raw_payload BLOB,
        payload BLOB NOT NULL,
        padding BLOB NOT NULL,
        sig BLOB NOT NULL,
        third_party_id TEXT NOT NULL DEFAULT '',
        received_at INTEGER NOT NULL
    );
    CREATE INDEX messages_timestamp_topic ON messages (timestamp, topic);"];

/// Brings `component`'s tables to the newest version in `migrations` (entry `i` upgrades from `i` to
/// `i + 1`), each step in its own transaction together with the version bump.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when the file is newer than `migrations`, SQLite errors otherwise
/// (the failed step is rolled back).
pub fn migrate(conn: &mut Connection, component: &str, migrations: &[&str]) -> Result<(), StoreError> {
    match migrate_inner(conn, component, migrations) {
        Err(err) if !matches!(err, StoreError::SchemaTooNew { .. }) => match damage(conn).or_else(|| {
            // Tables exist that the recorded version says were never made: the version record was
            // lost (its page damaged or rewritten), which quick_check cannot always see.
            err.to_string()
                .contains("already exists")
                .then(|| format!("the {SCHEMA_TABLE} record of {component} is missing although its tables exist"))
        }) {
            // A damaged file reads as "no tables" and then fails as "table ... already exists":
            // say what it is instead.
            Some(detail) => Err(StoreError::Damaged {
                path: conn.path().map(std::path::PathBuf::from).unwrap_or_default(),
                detail: format!("{detail} (while migrating {component}: {err})"),
            }),
            None => Err(err),
        },
        other => other,
    }
}

/// What SQLite's own consistency check finds wrong with the file, if anything.
pub(crate) fn damage(conn: &Connection) -> Option<String> {
    match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0)) {
        Ok(ok) if ok == "ok" => None,
        Ok(problem) => Some(problem),
        Err(err) => Some(err.to_string()),
    }
}

fn migrate_inner(conn: &mut Connection, component: &str, migrations: &[&str]) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (component TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)"
    ))?;
    let current: i64 = conn.query_row(
        &format!("SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE} WHERE component = ?1"),
        [component],
        |r| r.get(0),
    )?;
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::SchemaTooNew { component: component.to_owned(), found: current, known });
    }
    for (idx, sql) in migrations.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            &format!("INSERT OR REPLACE INTO {SCHEMA_TABLE} (component, version) VALUES (?1, ?2)"),
            rusqlite::params![component, i64::try_from(idx + 1).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        tracing::debug!(component, version = idx + 1, "migrated");
    }
    Ok(())
}

/// Names of the non-internal tables in the database.
pub(crate) fn user_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}
