//! Following the community as a Status client does: its signed description (channels, name,
//! encryption, archive clock), its public shard info (the pubsub topic) and the protected-topic
//! key, stored in the store's file with status-go's clock rules.
//!
//! - Description: an older clock is refused; an equal clock is applied again (status-go
//!   `Community.UpdateCommunityDescription`: "Enables processing of identical clocks"). The
//!   channel chats become exactly the description's, unless the channels are hidden in
//!   `privateData` (encrypted community read without its key), when the known ones are kept.
//!   Field 9 raises the stored magnetlink clock (`handleCommunityDescriptionMessageCommon`).
//! - Shard info: applied only with a strictly newer clock (`persistence.go` `SaveCommunityShard`);
//!   no shard means status-go's default shard.

use chs_status::description::{Channel, Description, Shard, ShardInfo};
use chs_status::{CommunityId, DEFAULT_PUBSUB_TOPIC, RejectReason};
use chs_waku_payload::{PublicKey, SecretKey};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::CommunityError;

/// The key of a protected pubsub topic (status-go `PubsubTopicPrivateKey`).
#[derive(Clone)]
pub enum TopicKey {
    /// The private key: signs `meta` of what this node publishes, and validates.
    Private(SecretKey),
    /// Only the public key: validates what arrives.
    Public(PublicKey),
}

impl std::fmt::Debug for TopicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicKey::Private(key) => write!(f, "TopicKey::Private(public {})", key.public_key()),
            TopicKey::Public(key) => write!(f, "TopicKey::Public({key})"),
        }
    }
}

impl TopicKey {
    /// Parses 64 hex digits (private key) or 66/130 hex digits (public key), `0x` optional.
    ///
    /// # Errors
    /// [`CommunityError::InvalidPrivateKey`] naming what is wrong (the key is never echoed).
    pub fn parse(text: &str) -> Result<TopicKey, CommunityError> {
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")).unwrap_or(trimmed);
        if digits.len() == 64 {
            return crate::parse_private_key(digits).map(TopicKey::Private);
        }
        let bytes = hex::decode(digits)
            .map_err(|_| CommunityError::InvalidPrivateKey { reason: "topic key is not hex".to_owned() })?;
        PublicKey::from_sec1_bytes(&bytes).map(TopicKey::Public).map_err(|_| CommunityError::InvalidPrivateKey {
            reason: format!("topic key of {} bytes is neither a private nor a public secp256k1 key", bytes.len()),
        })
    }

    /// The public key (what validators check `meta` against).
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            TopicKey::Private(key) => key.public_key(),
            TopicKey::Public(key) => *key,
        }
    }

    /// The private key, if this node may sign.
    #[must_use]
    pub fn private_key(&self) -> Option<&SecretKey> {
        match self {
            TopicKey::Private(key) => Some(key),
            TopicKey::Public(_) => None,
        }
    }

    fn to_column(&self) -> Vec<u8> {
        match self {
            TopicKey::Private(key) => key.to_bytes().to_vec(),
            TopicKey::Public(key) => key.to_compressed().to_vec(),
        }
    }

    fn from_column(bytes: &[u8]) -> Result<TopicKey, CommunityError> {
        let malformed =
            || CommunityError::MalformedRow { table: "chs_communities", what: "topic_key is not a key".to_owned() };
        match bytes.len() {
            32 => SecretKey::from_bytes(bytes).map(TopicKey::Private).map_err(|_| malformed()),
            _ => PublicKey::from_sec1_bytes(bytes).map(TopicKey::Public).map_err(|_| malformed()),
        }
    }
}

/// The stored description of a community.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDescription {
    /// The description clock.
    pub clock: u64,
    /// Community name.
    pub name: String,
    /// Community description text.
    pub about: String,
    /// status-go `Community.Encrypted()`.
    pub encrypted: bool,
    /// The channels are only in `privateData` (encrypted, key unknown here).
    pub channels_hidden: bool,
    /// `permissions.access`.
    pub access: i32,
    /// Number of token permissions.
    pub token_permissions: usize,
    /// Field 9 (`archive_link_clock`), ms.
    pub archive_link_clock: u64,
    /// The channels.
    pub channels: Vec<Channel>,
    /// When this node applied it, Unix ms.
    pub received_at_ms: u64,
}

/// The stored public shard info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoredShard {
    /// Its clock.
    pub clock: u64,
    /// The shard (`None`: the default one).
    pub shard: Option<Shard>,
    /// When this node applied it, Unix ms.
    pub received_at_ms: u64,
}

/// What a description did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptionOutcome {
    /// Applied: the channel chats added and removed (both empty if the channels did not change).
    Applied {
        /// The description clock.
        clock: u64,
        /// Chat ids added.
        added: Vec<String>,
        /// Chat ids removed.
        removed: Vec<String>,
    },
    /// Refused (forged, invalid, or an older clock); nothing changed.
    Rejected(RejectReason),
}

impl DescriptionOutcome {
    /// Whether the channel set changed.
    #[must_use]
    pub fn channels_changed(&self) -> bool {
        matches!(self, DescriptionOutcome::Applied { added, removed, .. } if !added.is_empty() || !removed.is_empty())
    }
}

/// What a shard info did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    /// The community's pubsub topic changed.
    Moved {
        /// The previous pubsub topic.
        from: String,
        /// The new one.
        to: String,
    },
    /// Newer clock, same topic.
    Unchanged,
    /// Refused (forged, invalid, or not a newer clock); nothing changed.
    Rejected(RejectReason),
}

fn now_i64(now_ms: i64) -> i64 {
    now_ms.max(0)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn load(conn: &Connection, id: &CommunityId) -> Result<Option<StoredDescription>, CommunityError> {
    let row = conn
        .query_row(
            "SELECT clock, name, about, encrypted, channels_hidden, access, token_permissions,
                    archive_link_clock, channels, received_at_ms
             FROM chs_community_description WHERE community_id = ?1",
            [id.to_string()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i32>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            },
        )
        .optional()?;
    let Some((clock, name, about, encrypted, channels_hidden, access, permissions, archive_clock, channels, at)) = row
    else {
        return Ok(None);
    };
    let channels: Vec<Channel> = serde_json::from_str(&channels).map_err(|e| CommunityError::MalformedRow {
        table: "chs_community_description",
        what: format!("channels: {e}"),
    })?;
    Ok(Some(StoredDescription {
        clock: as_u64(clock),
        name,
        about,
        encrypted,
        channels_hidden,
        access,
        token_permissions: usize::try_from(permissions).unwrap_or(0),
        archive_link_clock: as_u64(archive_clock),
        channels,
        received_at_ms: as_u64(at),
    }))
}

/// Applies `description` (already verified) in one transaction.
pub(crate) fn apply(
    conn: &mut Connection,
    description: &Description,
    now_ms: i64,
) -> Result<DescriptionOutcome, CommunityError> {
    let id = description.community_id;
    let tx = conn.transaction()?;
    if let Some(stored) = load(&tx, &id)?
        && description.clock < stored.clock
    {
        return Ok(DescriptionOutcome::Rejected(RejectReason::StaleClock {
            clock: description.clock,
            stored: stored.clock,
        }));
    }
    let channels = serde_json::to_string(&description.channels)
        .map_err(|e| CommunityError::Build(format!("channels as JSON: {e}")))?;
    tx.execute(
        "INSERT INTO chs_community_description (community_id, clock, name, about, encrypted, channels_hidden,
             access, token_permissions, archive_link_clock, channels, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (community_id) DO UPDATE SET clock = excluded.clock, name = excluded.name,
             about = excluded.about, encrypted = excluded.encrypted, channels_hidden = excluded.channels_hidden,
             access = excluded.access, token_permissions = excluded.token_permissions,
             archive_link_clock = excluded.archive_link_clock, channels = excluded.channels,
             received_at_ms = excluded.received_at_ms",
        params![
            id.to_string(),
            as_i64(description.clock),
            description.name,
            description.about,
            description.encrypted,
            description.channels_hidden,
            description.access,
            i64::try_from(description.token_permissions).unwrap_or(i64::MAX),
            as_i64(description.archive_link_clock),
            channels,
            now_i64(now_ms),
        ],
    )?;
    if !description.name.is_empty() {
        tx.execute(
            "UPDATE chs_communities SET name = ?2 WHERE community_id = ?1",
            params![id.to_string(), description.name],
        )?;
    }
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    if !description.channels_hidden {
        let current: Vec<String> = {
            let mut stmt = tx.prepare_cached("SELECT chat_id FROM chs_community_chats WHERE community_id = ?1")?;
            stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let wanted = description.chat_ids();
        for chat in current.iter().filter(|c| !wanted.contains(c)) {
            tx.execute(
                "DELETE FROM chs_community_chats WHERE community_id = ?1 AND chat_id = ?2",
                params![id.to_string(), chat],
            )?;
            removed.push(chat.clone());
        }
        for chat in wanted.iter().filter(|c| !current.contains(c)) {
            tx.execute(
                "INSERT INTO chs_community_chats (community_id, chat_id) VALUES (?1, ?2)",
                params![id.to_string(), chat],
            )?;
            added.push(chat.clone());
        }
    }
    let stored_clock = crate::bookkeeping::archive_info(&tx, &id)?.magnetlink_clock;
    if description.archive_link_clock > stored_clock {
        crate::bookkeeping::set_magnetlink_clock(&tx, &id, description.archive_link_clock)?;
    }
    tx.commit()?;
    Ok(DescriptionOutcome::Applied { clock: description.clock, added, removed })
}

pub(crate) fn load_shard(conn: &Connection, id: &CommunityId) -> Result<Option<StoredShard>, CommunityError> {
    let row = conn
        .query_row(
            "SELECT clock, cluster, shard_index, received_at_ms FROM chs_community_shard WHERE community_id = ?1",
            [id.to_string()],
            |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<u16>>(1)?, r.get::<_, Option<u16>>(2)?, r.get::<_, i64>(3)?))
            },
        )
        .optional()?;
    Ok(row.map(|(clock, cluster, index, at)| StoredShard {
        clock: as_u64(clock),
        shard: cluster.zip(index).map(|(cluster, index)| Shard { cluster, index }),
        received_at_ms: as_u64(at),
    }))
}

/// Applies `info` (already verified) in one transaction: strictly newer clocks only.
pub(crate) fn apply_shard(
    conn: &mut Connection,
    info: &ShardInfo,
    now_ms: i64,
) -> Result<ShardOutcome, CommunityError> {
    let id = info.community_id;
    let tx = conn.transaction()?;
    if let Some(stored) = load_shard(&tx, &id)?
        && info.clock <= stored.clock
    {
        return Ok(ShardOutcome::Rejected(RejectReason::StaleClock { clock: info.clock, stored: stored.clock }));
    }
    tx.execute(
        "INSERT INTO chs_community_shard (community_id, clock, cluster, shard_index, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (community_id) DO UPDATE SET clock = excluded.clock, cluster = excluded.cluster,
             shard_index = excluded.shard_index, received_at_ms = excluded.received_at_ms",
        params![
            id.to_string(),
            as_i64(info.clock),
            info.shard.map(|s| s.cluster),
            info.shard.map(|s| s.index),
            now_i64(now_ms)
        ],
    )?;
    let from: String =
        tx.query_row("SELECT pubsub_topic FROM chs_communities WHERE community_id = ?1", [id.to_string()], |r| {
            r.get(0)
        })?;
    let to = info.shard.map_or_else(|| DEFAULT_PUBSUB_TOPIC.to_owned(), |s| s.pubsub_topic());
    let outcome = if from == to {
        ShardOutcome::Unchanged
    } else {
        tx.execute(
            "UPDATE chs_communities SET pubsub_topic = ?2 WHERE community_id = ?1",
            params![id.to_string(), to],
        )?;
        ShardOutcome::Moved { from, to }
    };
    tx.commit()?;
    Ok(outcome)
}

pub(crate) fn set_topic_key(conn: &Connection, id: &CommunityId, key: Option<&TopicKey>) -> Result<(), CommunityError> {
    let changed = conn.execute(
        "UPDATE chs_communities SET topic_key = ?2 WHERE community_id = ?1",
        params![id.to_string(), key.map(TopicKey::to_column)],
    )?;
    if changed == 0 {
        return Err(CommunityError::UnknownCommunity(id.to_string()));
    }
    Ok(())
}

pub(crate) fn topic_key(conn: &Connection, id: &CommunityId) -> Result<Option<TopicKey>, CommunityError> {
    let bytes: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT topic_key FROM chs_communities WHERE community_id = ?1", [id.to_string()], |r| r.get(0))
        .optional()?;
    bytes.flatten().map(|b| TopicKey::from_column(&b)).transpose()
}

pub(crate) fn set_control_node(
    conn: &Connection,
    id: &CommunityId,
    key: Option<&PublicKey>,
) -> Result<(), CommunityError> {
    let changed = conn.execute(
        "UPDATE chs_communities SET control_node = ?2 WHERE community_id = ?1",
        params![id.to_string(), key.map(|k| k.to_compressed().to_vec())],
    )?;
    if changed == 0 {
        return Err(CommunityError::UnknownCommunity(id.to_string()));
    }
    Ok(())
}

pub(crate) fn control_node(conn: &Connection, id: &CommunityId) -> Result<Option<PublicKey>, CommunityError> {
    let bytes: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT control_node FROM chs_communities WHERE community_id = ?1", [id.to_string()], |r| r.get(0))
        .optional()?;
    bytes
        .flatten()
        .map(|b| {
            PublicKey::from_sec1_bytes(&b).map_err(|_| CommunityError::MalformedRow {
                table: "chs_communities",
                what: "control_node is not a public key".to_owned(),
            })
        })
        .transpose()
}
