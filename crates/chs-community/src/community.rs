//! The community record and its persistence.

use chs_waku_payload::SecretKey;
use rusqlite::{Connection, OptionalExtension as _, params};

use chs_status::CommunityId;

use crate::CommunityError;

/// A community as this node knows it.
///
/// It is the control node iff it holds the private key ([`Community::is_control_node`]).
/// `Debug` never shows the private key.
#[derive(Debug, Clone)]
pub struct Community {
    /// The id (compressed public key of the community key).
    pub id: CommunityId,
    /// Display name (free text, local only).
    pub name: String,
    /// The pubsub topic the community's traffic is relayed on.
    pub pubsub_topic: String,
    /// Whether this node has joined the community (members act on magnetlinks only when joined).
    pub joined: bool,
    /// Channel chat ids (`id` + channel uuid), sorted.
    pub chats: Vec<String>,
    /// When this node stored the community, Unix ms.
    pub created_at_ms: i64,
    /// The key of its protected pubsub topic, if set (`Debug` shows only the public key).
    pub topic_key: Option<crate::TopicKey>,
    key: Option<SecretKey>,
}

impl Community {
    /// The topic key, if the community is on a shard of its own: status-go stores the key per
    /// pubsub topic (`StorePubsubTopicKey`) and only a community's own shard is protected; the
    /// default community shard (`/waku/2/rs/16/32`, shared by every community) and the
    /// unprotected shard 64 never are.
    #[must_use]
    pub fn protected_topic_key(&self) -> Option<&crate::TopicKey> {
        let shared = [chs_status::DEFAULT_PUBSUB_TOPIC, chs_status::description::NON_PROTECTED_PUBSUB_TOPIC];
        self.topic_key.as_ref().filter(|_| !shared.contains(&self.pubsub_topic.as_str()))
    }

    /// Whether this node is the community's control node (holds its private key).
    #[must_use]
    pub fn is_control_node(&self) -> bool {
        self.key.is_some()
    }

    /// The community's private key, if this node is its control node.
    #[must_use]
    pub fn private_key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    /// The community's id string: the chat id of its community-description channel.
    #[must_use]
    pub fn id_string(&self) -> String {
        self.id.to_string()
    }

    /// The chat id of a channel: `id` + `channel_uuid` (status-go `ChatID(channelUUID)`).
    #[must_use]
    pub fn channel_chat_id(&self, channel_uuid: &str) -> String {
        format!("{}{channel_uuid}", self.id)
    }
}

pub(crate) fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Inserts a new community. Fails with [`CommunityError::AlreadyExists`] if the id is stored.
pub(crate) fn insert(
    conn: &Connection,
    id: &CommunityId,
    name: &str,
    key: Option<&SecretKey>,
    pubsub_topic: &str,
    chats: &[String],
    now_ms: i64,
) -> Result<(), CommunityError> {
    let tx = conn.unchecked_transaction()?;
    let exists: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM chs_communities WHERE community_id = ?1)", [id.to_string()], |r| {
            r.get(0)
        })?;
    if exists {
        return Err(CommunityError::AlreadyExists(id.to_string()));
    }
    let key_bytes = key.map(|k| k.to_bytes().to_vec());
    tx.execute(
        "INSERT INTO chs_communities (community_id, name, private_key, pubsub_topic, joined, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, 1, ?5)",
        params![id.to_string(), name, key_bytes, pubsub_topic, now_ms],
    )?;
    for chat in chats {
        tx.execute(
            "INSERT OR IGNORE INTO chs_community_chats (community_id, chat_id) VALUES (?1, ?2)",
            params![id.to_string(), chat],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Stores the private key of an already known community (a member becoming the control node).
pub(crate) fn set_key(conn: &Connection, id: &CommunityId, key: &SecretKey) -> Result<(), CommunityError> {
    let n = conn.execute(
        "UPDATE chs_communities SET private_key = ?2 WHERE community_id = ?1",
        params![id.to_string(), key.to_bytes().to_vec()],
    )?;
    if n == 0 {
        return Err(CommunityError::UnknownCommunity(id.to_string()));
    }
    Ok(())
}

pub(crate) fn add_chat(conn: &Connection, id: &CommunityId, chat_id: &str) -> Result<bool, CommunityError> {
    if load(conn, id)?.is_none() {
        return Err(CommunityError::UnknownCommunity(id.to_string()));
    }
    let n = conn.execute(
        "INSERT OR IGNORE INTO chs_community_chats (community_id, chat_id) VALUES (?1, ?2)",
        params![id.to_string(), chat_id],
    )?;
    Ok(n == 1)
}

pub(crate) fn set_joined(conn: &Connection, id: &CommunityId, joined: bool) -> Result<(), CommunityError> {
    let n = conn
        .execute("UPDATE chs_communities SET joined = ?2 WHERE community_id = ?1", params![id.to_string(), joined])?;
    if n == 0 {
        return Err(CommunityError::UnknownCommunity(id.to_string()));
    }
    Ok(())
}

pub(crate) fn load(conn: &Connection, id: &CommunityId) -> Result<Option<Community>, CommunityError> {
    let row = conn
        .query_row(
            "SELECT name, private_key, pubsub_topic, joined, created_at_ms FROM chs_communities WHERE community_id = ?1",
            [id.to_string()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<Vec<u8>>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((name, key_bytes, pubsub_topic, joined, created_at_ms)) = row else {
        return Ok(None);
    };
    let key = match key_bytes {
        None => None,
        Some(bytes) => {
            let key = SecretKey::from_bytes(&bytes).map_err(|_| CommunityError::MalformedRow {
                table: "chs_communities",
                what: format!("private key of {id} is not a valid secp256k1 scalar"),
            })?;
            if CommunityId::from_public_key(&key.public_key()) != *id {
                return Err(CommunityError::MalformedRow {
                    table: "chs_communities",
                    what: format!("private key stored for {id} belongs to another community"),
                });
            }
            Some(key)
        }
    };
    let mut stmt =
        conn.prepare_cached("SELECT chat_id FROM chs_community_chats WHERE community_id = ?1 ORDER BY chat_id")?;
    let chats = stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let topic_key = crate::description::topic_key(conn, id)?;
    Ok(Some(Community { id: *id, name, pubsub_topic, joined, chats, created_at_ms, topic_key, key }))
}

pub(crate) fn list_ids(conn: &Connection) -> Result<Vec<CommunityId>, CommunityError> {
    let mut stmt = conn.prepare_cached("SELECT community_id FROM chs_communities ORDER BY community_id")?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    ids.into_iter()
        .map(|s| {
            CommunityId::parse(&s).map_err(|_| CommunityError::MalformedRow {
                table: "chs_communities",
                what: format!("community id {s:?} is not a valid id"),
            })
        })
        .collect()
}

/// The node's chat identity key and installation id, created on first use.
pub(crate) fn node_identity(conn: &Connection) -> Result<(SecretKey, String), CommunityError> {
    let row = conn
        .query_row("SELECT identity_key, installation_id FROM chs_node_identity WHERE id = 1", [], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?;
    if let Some((bytes, installation_id)) = row {
        let key = SecretKey::from_bytes(&bytes).map_err(|_| CommunityError::MalformedRow {
            table: "chs_node_identity",
            what: "identity key is not a valid secp256k1 scalar".to_owned(),
        })?;
        return Ok((key, installation_id));
    }
    let key = crate::keys::generate_key()?;
    let installation_id = crate::keys::generate_installation_id()?;
    conn.execute(
        "INSERT INTO chs_node_identity (id, identity_key, installation_id) VALUES (1, ?1, ?2)",
        params![key.to_bytes().to_vec(), installation_id],
    )?;
    Ok((key, installation_id))
}
