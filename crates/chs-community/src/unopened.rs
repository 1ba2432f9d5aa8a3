//! A member's fetched link whose `index` it could not open (table `chs_unopened_links`, one row
//! per community: the newest). In an encrypted (token-gated) community status-go wraps the
//! index with the community's hash-ratchet key, which chs does not hold: the member keeps and
//! seeds the torrent, and records here why its history is not imported, so that `chs node
//! status` says so instead of showing an empty history.

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use crate::{CommunityError, CommunityId};

/// A fetched and seeded link whose index this node could not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnopenedLink {
    /// The link (magnet URI or CID).
    pub magnet_uri: String,
    /// Why it was not imported (e.g. the index is wrapped with the community's hash-ratchet key).
    pub reason: String,
    /// Bytes kept (and seeded) for it.
    pub bytes: u64,
    /// When it was recorded, Unix ms.
    pub recorded_at_ms: u64,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn save(conn: &Connection, id: &CommunityId, link: &UnopenedLink) -> Result<(), CommunityError> {
    conn.execute(
        "INSERT INTO chs_unopened_links (community_id, link, reason, bytes, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (community_id) DO UPDATE SET link = ?2, reason = ?3, bytes = ?4, recorded_at_ms = ?5",
        params![id.to_string(), link.magnet_uri, link.reason, clamp(link.bytes), clamp(link.recorded_at_ms)],
    )?;
    Ok(())
}

pub(crate) fn load(conn: &Connection, id: &CommunityId) -> Result<Option<UnopenedLink>, CommunityError> {
    Ok(conn
        .query_row(
            "SELECT link, reason, bytes, recorded_at_ms FROM chs_unopened_links WHERE community_id = ?1",
            [id.to_string()],
            |r| {
                Ok(UnopenedLink {
                    magnet_uri: r.get(0)?,
                    reason: r.get(1)?,
                    bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    recorded_at_ms: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            },
        )
        .optional()?)
}

pub(crate) fn clear(conn: &Connection, id: &CommunityId) -> Result<(), CommunityError> {
    conn.execute("DELETE FROM chs_unopened_links WHERE community_id = ?1", [id.to_string()])?;
    Ok(())
}
