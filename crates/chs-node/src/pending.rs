//! The member's accepted-but-unfetched magnetlink, one per community, in the store's file
//! (table `chs_node_pending`), so that a member killed mid-download resumes after a restart
//! even though the magnetlink message is gone from Waku.

use chs_community::CommunityId;
use chs_store::Store;
use rusqlite::OptionalExtension;

use crate::error::NodeError;

const MIGRATIONS: &[&str] = &["CREATE TABLE chs_node_pending (
        community_id TEXT PRIMARY KEY NOT NULL,
        magnet_uri TEXT NOT NULL,
        clock INTEGER NOT NULL,
        accepted_at_ms INTEGER NOT NULL
    )"];

/// An accepted magnetlink not fully fetched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) magnet_uri: String,
    pub(crate) clock: u64,
}

pub(crate) fn migrate(store: &mut Store) -> Result<(), NodeError> {
    chs_store::migrate(store.connection_mut(), "node", MIGRATIONS)?;
    Ok(())
}

fn sql_err(e: rusqlite::Error) -> NodeError {
    NodeError::Store(chs_store::StoreError::from(e))
}

pub(crate) fn save(store: &Store, id: &CommunityId, p: &Pending, now_ms: u64) -> Result<(), NodeError> {
    store
        .connection()
        .execute(
            "INSERT INTO chs_node_pending (community_id, magnet_uri, clock, accepted_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (community_id) DO UPDATE SET magnet_uri = ?2, clock = ?3, accepted_at_ms = ?4",
            rusqlite::params![
                id.to_string(),
                p.magnet_uri,
                i64::try_from(p.clock).unwrap_or(i64::MAX),
                i64::try_from(now_ms).unwrap_or(i64::MAX)
            ],
        )
        .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn load(store: &Store, id: &CommunityId) -> Result<Option<Pending>, NodeError> {
    store
        .connection()
        .query_row("SELECT magnet_uri, clock FROM chs_node_pending WHERE community_id = ?1", [id.to_string()], |r| {
            Ok(Pending { magnet_uri: r.get(0)?, clock: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0) })
        })
        .optional()
        .map_err(sql_err)
}

/// Removes the pending link of `id` if it is still `uri` (a newer one may have replaced it).
pub(crate) fn clear(store: &Store, id: &CommunityId, uri: &str) -> Result<(), NodeError> {
    store
        .connection()
        .execute(
            "DELETE FROM chs_node_pending WHERE community_id = ?1 AND magnet_uri = ?2",
            [id.to_string(), uri.to_owned()],
        )
        .map_err(sql_err)?;
    Ok(())
}
