//! Community ids, chat ids, 4-byte topics and content-topic strings.

use std::fmt;
use std::str::FromStr;

use chs_waku_payload::{PublicKey, SecretKey, keccak256};

/// The pubsub topic status-go uses when a community has no shard: cluster 16, shard 32.
pub use chs_proto::waku::DEFAULT_PUBSUB_TOPIC;

/// Suffix of the chat that carries magnetlinks in status-go c72f491.
pub const MAGNETLINKS_SUFFIX: &str = "-magnetlinks";
/// Suffix of the member-update chat (newer status-go's `UniversalChatID`).
pub const MEMBER_UPDATE_SUFFIX: &str = "-memberUpdate";
/// Suffix of the status-update ("ping") chat.
pub const PING_SUFFIX: &str = "-ping";

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not `0x` followed by 66 hex digits.
    #[error("community id {0:?} is not 0x followed by 66 hex digits")]
    CommunityIdFormat(String),
    /// The bytes are not a compressed secp256k1 point.
    #[error("community id {0:?} is not a compressed secp256k1 public key")]
    CommunityIdKey(String),
    /// Not a `https://status.app/...#zQ3…` link or a `zQ3…` chat key of a community.
    #[error("{0:?} is not a status.app community link (https://status.app/c#zQ3…) nor a zQ3… community key")]
    ShareUrl(String),
    /// Not `/waku/1/0x<hex>/rfc26`.
    #[error("content topic {0:?} is not /waku/1/0x<hex>/rfc26")]
    ContentTopic(String),
}

/// The base of the links Status shares (status-go `baseShareURL`).
pub const SHARE_URL_BASE: &str = "https://status.app";

/// The multicodec of a secp256k1 public key (`0xe7`, as a varint), status-go's key prefix.
const SECP256K1_PUB_MULTICODEC: [u8; 2] = [0xe7, 0x01];

/// A community's id: the 33-byte compressed public key of the community key.
///
/// Its text form (`Display`, `FromStr`) is `0x` + 66 lowercase hex digits, status-go's
/// `IDString()`, which is also the prefix of every chat id of the community.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId {
    bytes: [u8; 33],
    key: PublicKey,
}

impl CommunityId {
    /// The id of the community whose key is `key`.
    #[must_use]
    pub fn from_public_key(key: &PublicKey) -> Self {
        Self { bytes: key.to_compressed(), key: *key }
    }

    /// The id of the community whose private key is `key`.
    #[must_use]
    pub fn from_secret_key(key: &SecretKey) -> Self {
        Self::from_public_key(&key.public_key())
    }

    /// Parses `0x` + 66 hex digits (either case) naming a compressed key.
    ///
    /// # Errors
    /// [`IdError::CommunityIdFormat`] or [`IdError::CommunityIdKey`].
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or_else(|| IdError::CommunityIdFormat(text.to_owned()))?;
        let mut bytes = [0u8; 33];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| IdError::CommunityIdFormat(text.to_owned()))?;
        if !matches!(bytes[0], 2 | 3) {
            return Err(IdError::CommunityIdKey(text.to_owned()));
        }
        let key = PublicKey::from_sec1_bytes(&bytes).map_err(|_| IdError::CommunityIdKey(text.to_owned()))?;
        Ok(Self { bytes, key })
    }

    /// The community's key as status-go serialises it for links (`SerializePublicKey`):
    /// multibase base58btc (`z`) of the secp256k1-pub multicodec (`0xe7 0x01`) followed by the 33
    /// compressed bytes, so it starts with `zQ3sh`.
    #[must_use]
    pub fn chat_key(&self) -> String {
        let mut bytes = Vec::with_capacity(35);
        bytes.extend_from_slice(&SECP256K1_PUB_MULTICODEC);
        bytes.extend_from_slice(&self.bytes);
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// The link Status shares for the community when only its key is known (status-go
    /// `ShareCommunityURLWithChatKey`): `https://status.app/c#` + [`CommunityId::chat_key`].
    /// (The app's richer form, `/c/<data>#<key>`, also encodes the name, description, colour and
    /// tags of the community description; the key alone opens the community all the same.)
    #[must_use]
    pub fn share_url(&self) -> String {
        format!("{SHARE_URL_BASE}/c#{}", self.chat_key())
    }

    /// The community of a link the Status app shares (`https://status.app/c#zQ3…`,
    /// `https://status.app/c/<data>#zQ3…`, a channel's `https://status.app/cc/…#zQ3…`): the key
    /// after `#`; or of a bare `zQ3…` chat key.
    ///
    /// # Errors
    /// [`IdError::ShareUrl`] if it is neither, or the key is not a compressed secp256k1 key.
    pub fn from_share_url(text: &str) -> Result<Self, IdError> {
        let bad = || IdError::ShareUrl(text.to_owned());
        let text = text.trim();
        let key = match text.split_once('#') {
            Some((url, key)) => {
                let path = url
                    .strip_prefix("https://status.app/")
                    .or_else(|| url.strip_prefix("http://status.app/"))
                    .ok_or_else(bad)?;
                if !(path == "c" || path.starts_with("c/") || path.starts_with("cc/")) {
                    return Err(bad());
                }
                key
            }
            None => text,
        };
        let body = key.strip_prefix('z').ok_or_else(bad)?;
        let bytes = bs58::decode(body).into_vec().map_err(|_| bad())?;
        let compressed = bytes.strip_prefix(&SECP256K1_PUB_MULTICODEC[..]).ok_or_else(bad)?;
        let compressed: [u8; 33] = compressed.try_into().map_err(|_| bad())?;
        if !matches!(compressed[0], 2 | 3) {
            return Err(bad());
        }
        let key = PublicKey::from_sec1_bytes(&compressed).map_err(|_| bad())?;
        Ok(Self { bytes: compressed, key })
    }

    /// The 33 compressed-key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.bytes
    }

    /// The community public key.
    #[must_use]
    pub const fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The chat id of the community description (status-go `IDString()`).
    #[must_use]
    pub fn description_chat_id(&self) -> String {
        self.to_string()
    }

    /// `<id>-magnetlinks` (status-go `MagnetlinkMessageChannelID()`).
    #[must_use]
    pub fn magnetlinks_chat_id(&self) -> String {
        format!("{self}{MAGNETLINKS_SUFFIX}")
    }

    /// `<id>-memberUpdate` (status-go `MemberUpdateChannelID()`).
    #[must_use]
    pub fn member_update_chat_id(&self) -> String {
        format!("{self}{MEMBER_UPDATE_SUFFIX}")
    }

    /// `<id>-ping` (status-go `StatusUpdatesChannelID()`).
    #[must_use]
    pub fn ping_chat_id(&self) -> String {
        format!("{self}{PING_SUFFIX}")
    }

    /// `<id><channel uuid>`, no separator (status-go `ChatID(channelID)`).
    #[must_use]
    pub fn channel_chat_id(&self, channel_uuid: &str) -> String {
        format!("{self}{channel_uuid}")
    }

    /// The chat ids a member installs filters for (status-go `DefaultFilters`, minus the
    /// asymmetric one): description, `-ping`, `-magnetlinks`, `-memberUpdate`.
    #[must_use]
    pub fn default_chat_ids(&self) -> [String; 4] {
        [self.description_chat_id(), self.ping_chat_id(), self.magnetlinks_chat_id(), self.member_update_chat_id()]
    }
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.bytes))
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommunityId({self})")
    }
}

impl FromStr for CommunityId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl std::hash::Hash for CommunityId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PartialOrd for CommunityId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CommunityId {
    /// By the id's bytes (the order of the text form).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl serde::Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which chat a control node sends magnetlinks on. Members listen on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MagnetlinkChannel {
    /// `<id>-magnetlinks`: what status-go c72f491 sends on (the default).
    #[default]
    Magnetlinks,
    /// `<id>-memberUpdate`: what newer status-go (`UniversalChatID`) sends on.
    MemberUpdate,
}

impl MagnetlinkChannel {
    /// Both channels, in the order members should list them.
    pub const ALL: [Self; 2] = [Self::Magnetlinks, Self::MemberUpdate];

    /// The chat id of this channel for `community`.
    #[must_use]
    pub fn chat_id(self, community: &CommunityId) -> String {
        match self {
            Self::Magnetlinks => community.magnetlinks_chat_id(),
            Self::MemberUpdate => community.member_update_chat_id(),
        }
    }
}

/// The chat ids a member listens on for magnetlinks: `-magnetlinks` and `-memberUpdate`.
#[must_use]
pub fn magnetlink_chat_ids(community: &CommunityId) -> [String; 2] {
    MagnetlinkChannel::ALL.map(|channel| channel.chat_id(community))
}

/// The topics a member listens on for magnetlinks: those of [`magnetlink_chat_ids`].
#[must_use]
pub fn magnetlink_topics(community: &CommunityId) -> [Topic; 2] {
    magnetlink_chat_ids(community).map(|chat_id| Topic::from_chat_id(&chat_id))
}

/// The content topics a member listens on for magnetlinks.
#[must_use]
pub fn magnetlink_content_topics(community: &CommunityId) -> [String; 2] {
    magnetlink_topics(community).map(|topic| topic.content_topic())
}

/// A legacy 4-byte Waku topic: `Keccak-256(utf8(chat id))[0..4]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic([u8; 4]);

impl Topic {
    /// status-go `transport.ToTopic(chatID)`.
    #[must_use]
    pub fn from_chat_id(chat_id: &str) -> Self {
        let hash = keccak256(chat_id.as_bytes());
        Self([hash[0], hash[1], hash[2], hash[3]])
    }

    /// Wraps 4 topic bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// go `BytesToTopic`: the first 4 bytes, zero-padded if fewer.
    #[must_use]
    pub fn from_slice_lenient(bytes: &[u8]) -> Self {
        let mut out = [0u8; 4];
        let n = bytes.len().min(4);
        out[..n].copy_from_slice(&bytes[..n]);
        Self(out)
    }

    /// The 4 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// `/waku/1/0x<8 lowercase hex>/rfc26` (status-go `TopicType.ContentTopic()`).
    #[must_use]
    pub fn content_topic(&self) -> String {
        format!("/waku/1/{self}/rfc26")
    }

    /// Parses a content topic as status-go's `ExtractTopicFromContentTopic` does: five
    /// `/`-separated parts with `waku`, `1` and `rfc26` in places 1, 2 and 4, and `0x`-prefixed
    /// even-length hex in place 3, truncated or zero-padded to 4 bytes.
    ///
    /// # Errors
    /// [`IdError::ContentTopic`] for anything status-go would drop.
    pub fn parse_content_topic(content_topic: &str) -> Result<Self, IdError> {
        let bad = || IdError::ContentTopic(content_topic.to_owned());
        let parts: Vec<&str> = content_topic.split('/').collect();
        let [_, "waku", "1", hex_part, "rfc26"] = parts.as_slice() else {
            return Err(bad());
        };
        let digits = hex_part.strip_prefix("0x").or_else(|| hex_part.strip_prefix("0X")).ok_or_else(bad)?;
        let bytes = hex::decode(digits).map_err(|_| bad())?;
        Ok(Self::from_slice_lenient(&bytes))
    }
}

impl fmt::Display for Topic {
    /// `0x` + 8 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({self})")
    }
}

impl serde::Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
