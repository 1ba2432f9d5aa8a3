//! Symmetric keys of public and community chats, cached, and key rings for receiving.

use std::collections::HashMap;

use chs_waku_payload::{SymKeyCache, SymmetricKey};

use crate::ids::{CommunityId, MagnetlinkChannel, Topic};
use crate::link::Generation;

/// A chat's id with its topic and symmetric key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatKey {
    /// The chat id, e.g. `0x03…-magnetlinks`.
    pub chat_id: String,
    /// `Keccak-256(chat id)[0..4]`.
    pub topic: Topic,
    /// `PBKDF2-HMAC-SHA256(chat id, empty salt, 65356, 32)`.
    pub key: SymmetricKey,
}

impl ChatKey {
    /// Derives topic and key (slow: prefer [`ChatKeyCache::chat_key`]).
    #[must_use]
    pub fn derive(chat_id: &str) -> Self {
        Self {
            chat_id: chat_id.to_owned(),
            topic: Topic::from_chat_id(chat_id),
            key: SymmetricKey::from_password(chat_id),
        }
    }

    /// The content topic `/waku/1/0x<topic>/rfc26`.
    #[must_use]
    pub fn content_topic(&self) -> String {
        self.topic.content_topic()
    }
}

/// A thread-safe cache of chat keys: each chat id pays the 65356 PBKDF2 rounds once.
#[derive(Debug, Default)]
pub struct ChatKeyCache {
    keys: SymKeyCache,
}

impl ChatKeyCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The chat key of `chat_id`, derived on first use.
    #[must_use]
    pub fn chat_key(&self, chat_id: &str) -> ChatKey {
        ChatKey {
            chat_id: chat_id.to_owned(),
            topic: Topic::from_chat_id(chat_id),
            key: self.keys.get_or_derive(chat_id),
        }
    }

    /// Number of cached keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The chat keys a receiver tries, found by 4-byte topic (like status-go's filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatKeyRing {
    by_topic: HashMap<Topic, ChatKey>,
}

impl ChatKeyRing {
    /// An empty ring.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A ring with the keys of `chat_ids`, derived through `cache`.
    #[must_use]
    pub fn from_chat_ids<'a>(chat_ids: impl IntoIterator<Item = &'a str>, cache: &ChatKeyCache) -> Self {
        let mut ring = Self::new();
        for chat_id in chat_ids {
            ring.insert(cache.chat_key(chat_id));
        }
        ring
    }

    /// The two chats members listen on for `community`'s magnetlinks.
    #[must_use]
    pub fn for_magnetlinks(community: &CommunityId, cache: &ChatKeyCache) -> Self {
        let mut ring = Self::new();
        for channel in MagnetlinkChannel::ALL {
            ring.insert(cache.chat_key(&channel.chat_id(community)));
        }
        ring
    }

    /// The channel chats `<id><uuid>` of `community`: the chats status-go archives.
    #[must_use]
    pub fn for_channels<'a>(
        community: &CommunityId,
        channel_uuids: impl IntoIterator<Item = &'a str>,
        cache: &ChatKeyCache,
    ) -> Self {
        let mut ring = Self::new();
        for uuid in channel_uuids {
            ring.insert(cache.chat_key(&community.channel_chat_id(uuid)));
        }
        ring
    }

    /// The chats a control node of `generation` archives for `community`: the channels, and for
    /// 2026 also `-memberUpdate` ([`Generation::archived_chat_ids`]).
    #[must_use]
    pub fn for_archive<'a>(
        community: &CommunityId,
        channel_uuids: impl IntoIterator<Item = &'a str>,
        generation: Generation,
        cache: &ChatKeyCache,
    ) -> Self {
        let chats = generation.archived_chat_ids(community, channel_uuids);
        Self::from_chat_ids(chats.iter().map(String::as_str), cache)
    }

    /// Adds a key; a key with the same topic is replaced.
    pub fn insert(&mut self, chat_key: ChatKey) {
        self.by_topic.insert(chat_key.topic, chat_key);
    }

    /// The key for `topic`, if the ring holds one.
    #[must_use]
    pub fn get(&self, topic: &Topic) -> Option<&ChatKey> {
        self.by_topic.get(topic)
    }

    /// All keys (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &ChatKey> {
        self.by_topic.values()
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Whether the ring is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}
