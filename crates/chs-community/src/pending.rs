//! A member's accepted-but-unfetched magnetlink, one per community (table `chs_node_pending`,
//! named when it lived in chs-node), so that a member killed mid-download resumes after a
//! restart even though the magnetlink message is gone from Waku.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::{CommunityError, CommunityId};

/// An accepted magnetlink not fully fetched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    /// The magnet URI.
    pub magnet_uri: String,
    /// Its magnetlink clock (ms).
    pub clock: u64,
}

pub(crate) fn save(conn: &Connection, id: &CommunityId, p: &PendingLink, now_ms: u64) -> Result<(), CommunityError> {
    conn.execute(
        "INSERT INTO chs_node_pending (community_id, magnet_uri, clock, accepted_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (community_id) DO UPDATE SET magnet_uri = ?2, clock = ?3, accepted_at_ms = ?4",
        params![
            id.to_string(),
            p.magnet_uri,
            i64::try_from(p.clock).unwrap_or(i64::MAX),
            i64::try_from(now_ms).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

pub(crate) fn load(conn: &Connection, id: &CommunityId) -> Result<Option<PendingLink>, CommunityError> {
    Ok(conn
        .query_row("SELECT magnet_uri, clock FROM chs_node_pending WHERE community_id = ?1", [id.to_string()], |r| {
            Ok(PendingLink { magnet_uri: r.get(0)?, clock: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0) })
        })
        .optional()?)
}

pub(crate) fn clear(conn: &Connection, id: &CommunityId, uri: &str) -> Result<(), CommunityError> {
    conn.execute(
        "DELETE FROM chs_node_pending WHERE community_id = ?1 AND magnet_uri = ?2",
        [id.to_string(), uri.to_owned()],
    )?;
    Ok(())
}
