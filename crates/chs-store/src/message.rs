//! One stored message and its conversions to and from status-go's archived `WakuMessage`.

use chs_proto::protobuf::WakuMessage as ArchivedMessage;
use sha3::Digest as _;

use crate::StoreError;

/// status-go's legacy 4-byte topic (`Keccak-256(chat id)[0..4]`).
pub type Topic = [u8; 4];

/// One message of the store: what was relayed, and what status-go's archive needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// 14/WAKU2 deterministic message hash (the primary key).
    pub hash: [u8; 32],
    /// Pubsub topic the message was relayed on.
    pub pubsub_topic: String,
    /// 14/WAKU2 content topic string.
    pub content_topic: String,
    /// 4-byte legacy topic (see [`topic_from_content_topic`]).
    pub topic: Topic,
    /// Wire timestamp in nanoseconds; archives use whole seconds ([`StoredMessage::timestamp_secs`]).
    pub timestamp_ns: i64,
    /// 14/WAKU2 payload version (1 = 26/WAKU2-PAYLOAD).
    pub version: u32,
    /// 14/WAKU2 `meta`.
    pub meta: Vec<u8>,
    /// The relayed (encrypted) payload, when it differs from [`StoredMessage::payload`].
    pub raw_payload: Option<Vec<u8>>,
    /// The decrypted 26/WAKU2 data (what archives carry).
    pub payload: Vec<u8>,
    /// The 26/WAKU2 padding.
    pub padding: Vec<u8>,
    /// The payload signer's 65-byte uncompressed public key; empty when unknown.
    pub sig: Vec<u8>,
    /// Non-empty only for imported (Discord) messages.
    pub third_party_id: String,
    /// When this node received (or imported) the message, Unix milliseconds.
    pub received_at_ms: i64,
}

impl StoredMessage {
    /// The timestamp in whole seconds, as status-go archives it (negative wire timestamps count as 0).
    #[must_use]
    pub fn timestamp_secs(&self) -> u64 {
        u64::try_from(self.timestamp_ns / 1_000_000_000).unwrap_or(0)
    }

    /// status-go's archived form of this message.
    #[must_use]
    pub fn to_archive_message(&self) -> ArchivedMessage {
        ArchivedMessage {
            sig: self.sig.clone(),
            timestamp: self.timestamp_secs(),
            topic: self.topic.to_vec(),
            payload: self.payload.clone(),
            padding: self.padding.clone(),
            hash: self.hash.to_vec(),
            third_party_id: self.third_party_id.clone(),
        }
    }

    /// Rebuilds a row from an archived message (as a member imports it). The wire-only fields that
    /// archives do not carry are filled as status-go would have sent them: version 1, content topic
    /// `/waku/1/0x<topic>/rfc26`, empty meta, timestamp in ns = seconds × 10⁹.
    ///
    /// # Errors
    /// [`StoreError::InvalidMessage`] if the hash is not 32 bytes or the topic not 4 bytes.
    pub fn from_archive_message(
        pubsub_topic: &str,
        m: &ArchivedMessage,
        received_at_ms: i64,
    ) -> Result<Self, StoreError> {
        let hash: [u8; 32] = m.hash.as_slice().try_into().map_err(|_| {
            StoreError::InvalidMessage(format!("archived message hash has {} bytes, expected 32", m.hash.len()))
        })?;
        let topic: Topic = m.topic.as_slice().try_into().map_err(|_| {
            StoreError::InvalidMessage(format!("archived message topic has {} bytes, expected 4", m.topic.len()))
        })?;
        let timestamp_ns =
            i64::try_from(m.timestamp).ok().and_then(|s| s.checked_mul(1_000_000_000)).ok_or_else(|| {
                StoreError::InvalidMessage(format!("archived message timestamp {} is out of range", m.timestamp))
            })?;
        Ok(StoredMessage {
            hash,
            pubsub_topic: pubsub_topic.to_owned(),
            content_topic: format!("/waku/1/0x{}/rfc26", hex::encode(topic)),
            topic,
            timestamp_ns,
            version: 1,
            meta: Vec::new(),
            raw_payload: None,
            payload: m.payload.clone(),
            padding: m.padding.clone(),
            sig: m.sig.clone(),
            third_party_id: m.third_party_id.clone(),
            received_at_ms,
        })
    }

    /// The 14/WAKU2 deterministic hash of this row as stored: its pubsub topic, [`payload`],
    /// content topic, meta and nanosecond timestamp (see [`chs_proto::waku::message_hash_of`]).
    ///
    /// For a captured message this differs from [`StoredMessage::hash`] (the wire hash covers the
    /// relayed, still encrypted payload, which archives do not carry); for a row made by
    /// [`StoredMessage::from_untrusted_archive_message`] it is the key.
    ///
    /// [`payload`]: StoredMessage::payload
    #[must_use]
    pub fn computed_hash(&self) -> [u8; 32] {
        chs_proto::waku::message_hash_of(
            &self.pubsub_topic,
            &self.payload,
            &self.content_topic,
            &self.meta,
            self.timestamp_ns,
        )
    }

    /// [`StoredMessage::from_archive_message`] for an archive from someone else: the row is keyed
    /// by [`StoredMessage::computed_hash`], never by the `hash` the archive claims, so that an
    /// archive cannot choose keys that collide with (and so shadow) other messages of the store.
    /// The claimed hash must still be 32 bytes (status-go's format).
    ///
    /// # Errors
    /// As [`StoredMessage::from_archive_message`].
    pub fn from_untrusted_archive_message(
        pubsub_topic: &str,
        m: &ArchivedMessage,
        received_at_ms: i64,
    ) -> Result<Self, StoreError> {
        let mut row = Self::from_archive_message(pubsub_topic, m, received_at_ms)?;
        row.hash = row.computed_hash();
        Ok(row)
    }
}

/// The 4-byte topic of a content topic: the bytes named in status-go's `/waku/1/0x<8 hex>/rfc26`
/// form, otherwise the first 4 bytes of Keccak-256 of the content-topic string (so that any
/// 14/WAKU2 content topic maps to a stable topic).
#[must_use]
pub fn topic_from_content_topic(content_topic: &str) -> Topic {
    if let Some(hex_part) = content_topic.strip_prefix("/waku/1/0x").and_then(|s| s.strip_suffix("/rfc26")) {
        let mut topic = [0u8; 4];
        if hex_part.len() == 8 && hex::decode_to_slice(hex_part, &mut topic).is_ok() {
            return topic;
        }
    }
    let digest = sha3::Keccak256::digest(content_topic.as_bytes());
    [digest[0], digest[1], digest[2], digest[3]]
}

pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> Result<StoredMessage, StoreError> {
    let hash_ref = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
    let malformed = |what: &str| StoreError::MalformedRow { hash: hex::encode(hash_ref), what: what.to_owned() };
    let hash: [u8; 32] = hash_ref.try_into().map_err(|_| malformed("hash is not 32 bytes"))?;
    let topic_ref = row.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
    let topic: Topic = topic_ref.try_into().map_err(|_| malformed("topic is not 4 bytes"))?;
    Ok(StoredMessage {
        hash,
        pubsub_topic: row.get(1)?,
        content_topic: row.get(2)?,
        topic,
        timestamp_ns: row.get(5)?,
        version: row.get(6)?,
        meta: row.get(7)?,
        raw_payload: row.get(8)?,
        payload: row.get(9)?,
        padding: row.get(10)?,
        sig: row.get(11)?,
        third_party_id: row.get(12)?,
        received_at_ms: row.get(13)?,
    })
}

/// A row of `SELECT hash, topic, timestamp_ns, payload, padding, sig, third_party_id` as status-go's
/// archived message (the mapping of [`StoredMessage::to_archive_message`]).
pub(crate) fn archived_from_row(row: &rusqlite::Row<'_>) -> Result<ArchivedMessage, StoreError> {
    let hash = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
    let malformed = |what: &str| StoreError::MalformedRow { hash: hex::encode(hash), what: what.to_owned() };
    if hash.len() != 32 {
        return Err(malformed("hash is not 32 bytes"));
    }
    let topic = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
    if topic.len() != 4 {
        return Err(malformed("topic is not 4 bytes"));
    }
    let timestamp_ns: i64 = row.get(2)?;
    Ok(ArchivedMessage {
        sig: row.get(5)?,
        timestamp: u64::try_from(timestamp_ns / 1_000_000_000).unwrap_or(0),
        topic: topic.to_vec(),
        payload: row.get(3)?,
        padding: row.get(4)?,
        hash: hash.to_vec(),
        third_party_id: row.get(6)?,
    })
}
