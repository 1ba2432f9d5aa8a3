//! The community manager: a community's state and rules.
//!
//! Start with [`Communities`]: open it on a [`chs_store::Store`] (its tables live in the store's
//! SQLite file, see `docs/chs-community.md`), then [`Communities::create`] a community (control
//! node: the private key is generated and stored), [`Communities::import_key`] one, or
//! [`Communities::join`] one (member: the id only).
//!
//! What it knows:
//! * who the community is ([`CommunityId`], chats, topics, pubsub topic) and whether this node is
//!   its control node (holds the private key);
//! * which magnetlinks a member accepts ([`Communities::receive_magnetlink`]: signed by the
//!   community key, newer-or-equal clock, not the last fully fetched URI, exactly as status-go),
//!   every rejection logged and counted ([`Communities::rejection_counts`]);
//! * what was downloaded and imported ([`ArchiveInfo`], [`ArchiveRecord`], the "which archives are
//!   missing" query [`missing_archives`] with a [`Strategy`]);
//! * how an archive becomes the canonical history ([`Communities::import_archive`]: one SQLite
//!   transaction replaces the range and records the archive id) and how an application reads it
//!   ([`Communities::history`]).
//!
//! What it must NOT know: Waku networking, gossipsub, torrents, librqbit or any socket. It takes
//! and returns messages, bytes and records; the orchestrator moves them. Every wire-level
//! encoding (topics, keys, envelopes, signatures) comes from `chs-status`; this crate holds no
//! copy of it. The API is synchronous: call it from `spawn_blocking`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

mod bookkeeping;
mod community;
mod description;
mod error;
mod import;
mod keys;
mod magnetlink;
mod pending;
pub mod ratchet;
mod schema;
mod unopened;

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use chs_proto::protobuf::WakuMessageArchiveIndex;
use chs_proto::waku::WakuMessage;
use chs_store::Store;
use serde::{Deserialize, Serialize};

pub use bookkeeping::{ArchiveInfo, ArchiveRecord, MissingArchive, Strategy, missing_archives, normalize_archive_id};
pub use chs_status::{
    CommunityId, DEFAULT_PUBSUB_TOPIC, Generation, LinkKind, MagnetlinkChannel, RejectCounters, RejectKind,
    RejectReason, UsableLinks,
};
/// The secp256k1 private key type (community keys, identity keys).
pub use chs_waku_payload::SecretKey;
pub use community::Community;
pub use description::{DescriptionOutcome, ShardOutcome, StoredDescription, StoredShard, TopicKey};
pub use error::{CommunityError, FetchedArchiveError};
pub use import::{ArchiveImport, DecodeMode, DecodeReport, HistoryRecord, ImportReport};
pub use keys::{generate_installation_id, generate_key, parse_private_key, parse_public_key};
pub use magnetlink::{MagnetlinkOptions, Verdict};
pub use pending::PendingLink;
pub use ratchet::{AddedRatchetKey, ArchiveWrapping, RatchetKeyInfo, RatchetWrapper};
pub use unopened::UnopenedLink;

/// How to create a community.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateOptions {
    /// Display name.
    pub name: String,
    /// Pubsub topic; `None` for [`DEFAULT_PUBSUB_TOPIC`].
    pub pubsub_topic: Option<String>,
    /// Channel uuids to create. When empty, one channel with a random uuid is created, so that a
    /// new community has a chat to archive.
    pub channels: Vec<String>,
}

/// A chat of a community with its 4-byte topic and content topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatInfo {
    /// The chat id.
    pub chat_id: String,
    /// `0x` + 8 hex digits: `Keccak-256(chat id)[0..4]`.
    pub topic: String,
    /// `/waku/1/0x<topic>/rfc26`.
    pub content_topic: String,
}

impl ChatInfo {
    /// The topics of `chat_id` (via `chs-status`).
    #[must_use]
    pub fn new(chat_id: &str) -> ChatInfo {
        let topic = chs_status::Topic::from_chat_id(chat_id);
        ChatInfo { chat_id: chat_id.to_owned(), topic: topic.to_string(), content_topic: topic.content_topic() }
    }
}

/// Everything `chs community show` prints: identity, topics and bookkeeping (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommunityInfo {
    /// The community id.
    pub id: CommunityId,
    /// Display name.
    pub name: String,
    /// Whether this node holds the private key.
    pub control_node: bool,
    /// Whether this node has joined.
    pub joined: bool,
    /// The community's status.app link ([`CommunityId::share_url`]): opens it in the Status app.
    pub share_url: String,
    /// The pubsub topic.
    pub pubsub_topic: String,
    /// The community-description chat (`id`).
    pub description_chat: ChatInfo,
    /// The magnetlink chat status-go c72f491 sends on (`id-magnetlinks`).
    pub magnetlinks_chat: ChatInfo,
    /// The chat newer status-go sends magnetlinks on (`id-memberUpdate`).
    pub member_update_chat: ChatInfo,
    /// The channel chats (what archives hold).
    pub channels: Vec<ChatInfo>,
    /// Magnetlink clock, last fetched URI, last archive end date.
    pub archive_info: ArchiveInfo,
    /// Archive ids recorded, oldest window first.
    pub archives: Vec<ArchiveRecord>,
    /// What the community's signed description said (none received yet: `None`).
    pub description: Option<StoredDescription>,
    /// The community's public shard info, if one was received.
    pub shard_info: Option<StoredShard>,
    /// The protected-topic public key (`0x` + compressed hex), if one is set.
    pub topic_key: Option<String>,
    /// Whether this node can sign `meta` on the protected topic (holds the private topic key).
    pub topic_key_signs: bool,
    /// The control node configured for an owner-token community (`0x` + compressed hex), if any.
    pub control_node_key: Option<String>,
    /// The hash-ratchet keys held (ids and timestamps, never the keys), newest first.
    pub ratchet_keys: Vec<RatchetKeyInfo>,
    /// How this node writes its archives if it is the control node of an encrypted community
    /// ([`ArchiveWrapping::note`]); `None` otherwise.
    pub archive_wrapping: Option<String>,
}

/// The community manager. Holds no database handle: every call takes the [`Store`] whose file
/// holds the community tables, so it works with any `Store` the caller holds. It is `Send + Sync`; its counters are shared by all callers.
pub struct Communities {
    /// Chat keys (65356 PBKDF2 rounds each): derived once per chat id.
    chat_keys: chs_status::ChatKeyCache,
    /// Magnetlink outcomes, per rejection reason.
    counters: Mutex<RejectCounters>,
    /// Unix milliseconds for the records' times (`created_at`, `downloaded_at`, `imported_at`,
    /// `received_at`): the system clock unless [`Communities::with_clock`] set another.
    clock: NowFn,
    /// The link kinds this node's backends fetch (torrent only unless set).
    usable_links: Mutex<UsableLinks>,
    /// Descriptions and shard infos applied, and refused per reason.
    description_counters: Mutex<RejectCounters>,
}

/// A source of Unix milliseconds.
pub type NowFn = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

impl Default for Communities {
    fn default() -> Self {
        Communities {
            chat_keys: chs_status::ChatKeyCache::default(),
            counters: Mutex::default(),
            clock: std::sync::Arc::new(community::system_now_ms),
            usable_links: Mutex::new(UsableLinks::default()),
            description_counters: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Communities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communities").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl Communities {
    /// Migrates the community tables in `store`'s file and returns the manager.
    ///
    /// # Errors
    /// [`CommunityError::Store`] (e.g. `SchemaTooNew`) or SQLite errors.
    pub fn open(store: &mut Store) -> Result<Communities, CommunityError> {
        chs_store::migrate(store.connection_mut(), schema::COMPONENT, schema::MIGRATIONS)?;
        Ok(Communities::default())
    }

    /// The same manager reading record times from `clock` (Unix milliseconds) instead of the
    /// system clock: the node passes its own clock, so a simulated month stamps its records too.
    #[must_use]
    pub fn with_clock(mut self, clock: NowFn) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        i64::try_from((self.clock)()).unwrap_or(i64::MAX)
    }

    /// Creates a community with a freshly generated key (this node is its control node).
    ///
    /// # Errors
    /// [`CommunityError::Random`] if the RNG fails, SQLite errors.
    pub fn create(&self, store: &mut Store, options: &CreateOptions) -> Result<Community, CommunityError> {
        let key = generate_key()?;
        self.create_with_key(store, &key, options)
    }

    /// Stores a community whose private key is given as hex (64 digits, optional `0x`): this node
    /// becomes its control node. If the community is already stored as a member, the key is added;
    /// if it is already stored with this key, the stored community is returned.
    ///
    /// # Errors
    /// [`CommunityError::InvalidPrivateKey`], SQLite errors.
    pub fn import_key(
        &self,
        store: &mut Store,
        key_hex: &str,
        options: &CreateOptions,
    ) -> Result<Community, CommunityError> {
        let key = parse_private_key(key_hex)?;
        let id = CommunityId::from_public_key(&key.public_key());
        if community::load(store.connection(), &id)?.is_some() {
            community::set_key(store.connection(), &id, &key)?;
            tracing::info!(community_id = %id, "private key imported: this node is now the control node");
            return self.get(store, &id);
        }
        self.create_with_key(store, &key, options)
    }

    /// Creates a community with the given key (see [`Communities::create`]).
    ///
    /// # Errors
    /// [`CommunityError::AlreadyExists`], [`CommunityError::Random`], SQLite errors.
    pub fn create_with_key(
        &self,
        store: &mut Store,
        key: &SecretKey,
        options: &CreateOptions,
    ) -> Result<Community, CommunityError> {
        let id = CommunityId::from_public_key(&key.public_key());
        let channels =
            if options.channels.is_empty() { vec![generate_installation_id()?] } else { options.channels.clone() };
        let chats: Vec<String> = channels.iter().map(|uuid| format!("{id}{uuid}")).collect();
        let pubsub_topic = options.pubsub_topic.as_deref().unwrap_or(DEFAULT_PUBSUB_TOPIC);
        community::insert(store.connection(), &id, &options.name, Some(key), pubsub_topic, &chats, self.now_ms())?;
        tracing::info!(community_id = %id, name = %options.name, "community created (control node)");
        self.get(store, &id)
    }

    /// Joins a community as a member: stores its id (no key). Joining a stored community marks it
    /// joined again and returns it.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn join(
        &self,
        store: &mut Store,
        id: &CommunityId,
        pubsub_topic: Option<&str>,
    ) -> Result<Community, CommunityError> {
        if community::load(store.connection(), id)?.is_some() {
            community::set_joined(store.connection(), id, true)?;
        } else {
            let topic = pubsub_topic.unwrap_or(DEFAULT_PUBSUB_TOPIC);
            community::insert(store.connection(), id, "", None, topic, &[], self.now_ms())?;
            tracing::info!(community_id = %id, "community joined (member)");
        }
        self.get(store, id)
    }

    /// Leaves a community: it stays stored, but a member no longer acts on its magnetlinks.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn leave(&self, store: &mut Store, id: &CommunityId) -> Result<(), CommunityError> {
        community::set_joined(store.connection(), id, false)
    }

    /// Adds a channel chat (`id` + `channel_uuid`). Returns false if it was already there.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn add_channel(&self, store: &mut Store, id: &CommunityId, channel_uuid: &str) -> Result<bool, CommunityError> {
        community::add_chat(store.connection(), id, &format!("{id}{channel_uuid}"))
    }

    /// The stored community.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors, [`CommunityError::MalformedRow`].
    pub fn get(&self, store: &Store, id: &CommunityId) -> Result<Community, CommunityError> {
        community::load(store.connection(), id)?.ok_or_else(|| CommunityError::UnknownCommunity(id.to_string()))
    }

    /// What `chs community show --community ID [--json]` prints (serialisable; no private key).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn info(&self, store: &Store, id: &CommunityId) -> Result<CommunityInfo, CommunityError> {
        let community = self.get(store, id)?;
        let topic_key = self.topic_key(store, id)?;
        Ok(CommunityInfo {
            id: community.id,
            name: community.name.clone(),
            control_node: community.is_control_node(),
            joined: community.joined,
            share_url: id.share_url(),
            pubsub_topic: community.pubsub_topic.clone(),
            description_chat: ChatInfo::new(&id.description_chat_id()),
            magnetlinks_chat: ChatInfo::new(&id.magnetlinks_chat_id()),
            member_update_chat: ChatInfo::new(&id.member_update_chat_id()),
            channels: community.chats.iter().map(|chat| ChatInfo::new(chat)).collect(),
            archive_info: self.archive_info(store, id)?,
            archives: self.archive_records(store, id)?,
            description: self.description(store, id)?,
            shard_info: self.shard_info(store, id)?,
            topic_key: topic_key.as_ref().map(|k| format!("0x{}", hex::encode(k.public_key().to_compressed()))),
            topic_key_signs: topic_key.as_ref().is_some_and(|k| k.private_key().is_some()),
            control_node_key: self.control_node(store, id)?.map(|k| k.to_string()),
            ratchet_keys: self.ratchet_keys(store, id)?,
            archive_wrapping: if community.is_control_node() { self.archive_wrapping(store, id)?.note() } else { None },
        })
    }

    /// The 4-byte topics of the community's channel chats (what its archives cover).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn channel_topics(&self, store: &Store, id: &CommunityId) -> Result<Vec<[u8; 4]>, CommunityError> {
        let community = self.get(store, id)?;
        Ok(community.chats.iter().map(|chat| *chs_status::Topic::from_chat_id(chat).as_bytes()).collect())
    }

    /// The 4-byte topics a control node of `generation` archives for `id`: its channel chats, and
    /// for [`Generation::Status2026`] also `-memberUpdate` (today's status-go adds
    /// `UniversalChatID` to every archive).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn archived_topics(
        &self,
        store: &Store,
        id: &CommunityId,
        generation: Generation,
    ) -> Result<Vec<[u8; 4]>, CommunityError> {
        let mut topics = self.channel_topics(store, id)?;
        if let Some(chat) = generation.extra_archived_chat_id(id) {
            let topic = *chs_status::Topic::from_chat_id(&chat).as_bytes();
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

    /// The topics of `id` that this node knows from configuration (its channels and default chats)
    /// and those of every other stored community: the input of an import's topic scope.
    fn topic_scope(&self, store: &Store, id: &CommunityId) -> Result<import::TopicScope, CommunityError> {
        let topics_of = |c: &Community| -> Vec<[u8; 4]> {
            let defaults = c.id.default_chat_ids();
            c.chats
                .iter()
                .map(String::as_str)
                .chain(defaults.iter().map(String::as_str))
                .map(|chat| *chs_status::Topic::from_chat_id(chat).as_bytes())
                .collect()
        };
        let mut scope = import::TopicScope::default();
        for community in self.list(store)? {
            if community.id == *id {
                scope.own.extend(topics_of(&community));
            } else {
                scope.others.extend(topics_of(&community));
            }
        }
        Ok(scope)
    }

    /// Records `link` as the community's accepted magnetlink not fully fetched yet (replacing an
    /// older one), so that a restarted member resumes it.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn save_pending_link(
        &self,
        store: &Store,
        id: &CommunityId,
        link: &PendingLink,
        now_ms: u64,
    ) -> Result<(), CommunityError> {
        pending::save(store.connection(), id, link, now_ms)
    }

    /// The community's accepted magnetlink not fully fetched yet, if any.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn pending_link(&self, store: &Store, id: &CommunityId) -> Result<Option<PendingLink>, CommunityError> {
        pending::load(store.connection(), id)
    }

    /// Forgets the pending magnetlink of `id` if it is still `uri` (a newer one may have replaced it).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn clear_pending_link(&self, store: &Store, id: &CommunityId, uri: &str) -> Result<(), CommunityError> {
        pending::clear(store.connection(), id, uri)
    }

    /// Records that the fetched link `link.magnet_uri` of `id` is kept and seeded but its index
    /// could not be opened (replacing an older record): see [`UnopenedLink`].
    ///
    /// # Errors
    /// SQLite errors.
    pub fn record_unopened_link(
        &self,
        store: &Store,
        id: &CommunityId,
        link: &UnopenedLink,
    ) -> Result<(), CommunityError> {
        tracing::warn!(community_id = %id, link = %link.magnet_uri, reason = %link.reason, "history link kept and seeded but not imported");
        unopened::save(store.connection(), id, link)
    }

    /// The community's newest fetched link whose index could not be opened, if any.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn unopened_link(&self, store: &Store, id: &CommunityId) -> Result<Option<UnopenedLink>, CommunityError> {
        unopened::load(store.connection(), id)
    }

    /// Forgets the unopened-link record of `id` (a newer link's index opened).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn clear_unopened_link(&self, store: &Store, id: &CommunityId) -> Result<(), CommunityError> {
        unopened::clear(store.connection(), id)
    }

    // ----- hash-ratchet keys (encrypted communities) -----

    /// Stores a hash-ratchet key of community `id` (the group id is the community id): 32 bytes
    /// of key material and status-go's key timestamp (Unix ms; the key id derives from both, see
    /// [`chs_status::hash_ratchet::key_id`]). An owner wraps the archives and index of an
    /// encrypted community with its newest key; a member opens wrapped ones with any key held.
    /// If the community has a kept link whose index could not be opened and no newer link is
    /// pending, that link becomes pending again so that the member re-opens it
    /// ([`AddedRatchetKey::reopened`]). Adding a key held already changes nothing.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], [`CommunityError::InvalidRatchetKey`] (not 32
    /// bytes, a timestamp that is not Unix ms), SQLite errors.
    pub fn add_ratchet_key(
        &self,
        store: &mut Store,
        id: &CommunityId,
        timestamp: u64,
        key: &[u8],
    ) -> Result<AddedRatchetKey, CommunityError> {
        self.get(store, id)?;
        let key = ratchet::make_key(id, timestamp, key)?;
        let now = u64::try_from(self.now_ms()).unwrap_or(0);
        let tx = store.connection_mut().transaction()?;
        let new = ratchet::insert(&tx, id, &key, now)?;
        let mut reopened = None;
        if let (Some(link), None) = (unopened::load(&tx, id)?, pending::load(&tx, id)?) {
            let clock = bookkeeping::archive_info(&tx, id)?.magnetlink_clock;
            pending::save(&tx, id, &PendingLink { magnet_uri: link.magnet_uri.clone(), clock }, now)?;
            reopened = Some(link.magnet_uri);
        }
        tx.commit()?;
        let info = ratchet::list(store.connection(), id)?
            .into_iter()
            .find(|k| k.key_id == format!("0x{}", hex::encode(key.key_id())))
            .ok_or_else(|| CommunityError::MalformedRow { table: "chs_ratchet_keys", what: "key not stored".into() })?;
        tracing::info!(community_id = %id, key_id = %info.key_id, timestamp, new, reopened = ?reopened, "hash-ratchet key added");
        Ok(AddedRatchetKey { key: info, new, reopened })
    }

    /// The hash-ratchet keys held for `id`, newest first (ids and timestamps, never the keys).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn ratchet_keys(&self, store: &Store, id: &CommunityId) -> Result<Vec<RatchetKeyInfo>, CommunityError> {
        ratchet::list(store.connection(), id)
    }

    /// The hash-ratchet keys held for `id` with their material, newest first (what opens a
    /// wrapped index or archive: [`chs_status::hash_ratchet::unwrap`]).
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn ratchet_key_material(
        &self,
        store: &Store,
        id: &CommunityId,
    ) -> Result<Vec<chs_status::hash_ratchet::RatchetKey>, CommunityError> {
        ratchet::load(store.connection(), id)
    }

    /// How a control node writes `id`'s archives: wrapped with the newest key
    /// (status-go's `GetCurrentKeyForGroup`: highest timestamp) if the community's signed
    /// description says it is encrypted and a key is held; plain otherwise.
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn archive_wrapping(&self, store: &Store, id: &CommunityId) -> Result<ArchiveWrapping, CommunityError> {
        if !self.description(store, id)?.is_some_and(|d| d.encrypted) {
            return Ok(ArchiveWrapping::Plain);
        }
        Ok(ratchet::load(store.connection(), id)?
            .into_iter()
            .next()
            .map_or(ArchiveWrapping::NoKey, ArchiveWrapping::Wrapped))
    }

    /// [`Communities::archive_wrapping`] with what a build needs to wrap: every key held (to
    /// open the existing index) and this node's installation id (written as the sender's).
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::Random`] (a first installation id).
    pub fn build_wrapping(
        &self,
        store: &mut Store,
        id: &CommunityId,
    ) -> Result<ratchet::BuildWrapping, CommunityError> {
        let wrapping = self.archive_wrapping(store, id)?;
        if !matches!(wrapping, ArchiveWrapping::Wrapped(_)) {
            return Ok(ratchet::BuildWrapping::new(wrapping, *id, Vec::new(), String::new()));
        }
        let keys = ratchet::load(store.connection(), id)?;
        let (_, installation_id) = self.node_identity(store)?;
        Ok(ratchet::BuildWrapping::new(wrapping, *id, keys, installation_id))
    }

    /// Every stored community, by id.
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn list(&self, store: &Store) -> Result<Vec<Community>, CommunityError> {
        community::list_ids(store.connection())?.iter().map(|id| self.get(store, id)).collect()
    }

    /// This node's chat identity key (signs the 26/WAKU2 payload of what it sends) and installation
    /// id, generated and stored on first use.
    ///
    /// # Errors
    /// [`CommunityError::Random`], SQLite errors.
    pub fn node_identity(&self, store: &mut Store) -> Result<(SecretKey, String), CommunityError> {
        community::node_identity(store.connection())
    }

    // ----- magnetlinks -----

    /// Builds the magnetlink message of `community` for `magnet_uri` at `clock` (ms), exactly as
    /// status-go's `dispatchMagnetlinkMessage` puts it on the wire: the magnetlink signed by the
    /// community key, the 26/WAKU2 payload signed by `identity_key`. Publish the result on
    /// `community.pubsub_topic`.
    ///
    /// # Errors
    /// [`CommunityError::NotControlNode`] without the private key, [`CommunityError::Build`] if
    /// the wire layer refuses (e.g. a URI too large for one unsegmented message).
    pub fn build_magnetlink(
        &self,
        community: &Community,
        identity_key: &SecretKey,
        magnet_uri: &str,
        clock: u64,
        options: &MagnetlinkOptions,
    ) -> Result<WakuMessage, CommunityError> {
        let community_key =
            community.private_key().ok_or_else(|| CommunityError::NotControlNode(community.id.to_string()))?;
        let params = chs_status::MagnetlinkParams {
            community_key,
            identity_key,
            magnet_uri,
            clock,
            installation_id: &options.installation_id,
            bundle: None,
            timestamp_ns: options.timestamp_ns.unwrap_or_else(magnetlink::now_ns),
            channel: options.channel,
            padding: options.padding.clone(),
            nonce: options.nonce,
        };
        let built = chs_status::build_magnetlink(&params, &self.chat_keys)
            .map_err(|e| CommunityError::Build(error_chain(&e)))?;
        tracing::debug!(community_id = %community.id, clock, content_topic = %built.content_topic, "magnetlink built");
        Ok(built.waku_message)
    }

    /// [`Communities::build_magnetlink`] with the stored community key, this node's stored identity
    /// and installation id ([`Communities::node_identity`]), the current time and random padding
    /// and nonce: what the orchestrator publishes after seeding a new torrent.
    ///
    /// # Errors
    /// As [`Communities::build_magnetlink`], plus [`CommunityError::UnknownCommunity`].
    pub fn build_magnetlink_now(
        &self,
        store: &mut Store,
        id: &CommunityId,
        magnet_uri: &str,
        clock: u64,
    ) -> Result<WakuMessage, CommunityError> {
        self.build_magnetlink_now_on(store, id, magnet_uri, clock, MagnetlinkChannel::Magnetlinks)
    }

    /// [`Communities::build_magnetlink_now`] on `channel`: `-magnetlinks` (status-go 2024) or
    /// `-memberUpdate` (today's status-go sends archive links there).
    ///
    /// # Errors
    /// As [`Communities::build_magnetlink_now`].
    pub fn build_magnetlink_now_on(
        &self,
        store: &mut Store,
        id: &CommunityId,
        link: &str,
        clock: u64,
        channel: MagnetlinkChannel,
    ) -> Result<WakuMessage, CommunityError> {
        let community = self.get(store, id)?;
        let (identity_key, installation_id) = self.node_identity(store)?;
        let options = MagnetlinkOptions { installation_id, channel, ..MagnetlinkOptions::default() };
        self.build_magnetlink(&community, &identity_key, link, clock, &options)
    }

    /// Sets the link kinds this node's distribution backends can fetch (a torrent member takes
    /// magnets, a Logos Storage member CIDs). [`Communities::receive_magnetlink`] refuses a link
    /// of another kind, or an empty one, without changing any state.
    pub fn set_usable_links(&self, usable: UsableLinks) {
        *self.usable_links.lock().unwrap_or_else(PoisonError::into_inner) = usable;
    }

    /// The link kinds this node's backends can fetch ([`UsableLinks::TORRENT`] unless set).
    #[must_use]
    pub fn usable_links(&self) -> UsableLinks {
        *self.usable_links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A member's handling of a received magnetlink `WakuMessage` (relayed on `pubsub_topic`):
    /// find the stored community whose `-magnetlinks` or `-memberUpdate` topic it carries, let
    /// `chs-status` verify every layer (signed by the community key, type 43, ...), then apply
    /// status-go's rule with the stored state: joined, not the control node,
    /// `clock >= magnetlink_clock`, URI ≠ the last fully fetched one. Beyond status-go, the link
    /// must be non-empty and of a kind this node fetches ([`Communities::set_usable_links`]):
    /// status-go advances the clock and drops its seed before finding out. On accept the stored
    /// clock is set to the message's clock; a rejection changes nothing in the database. Every
    /// rejection is logged and counted.
    ///
    /// # Errors
    /// Only database errors; a bad message is a [`Verdict::Rejected`].
    pub fn receive_magnetlink(
        &self,
        store: &mut Store,
        message: &WakuMessage,
        pubsub_topic: &str,
    ) -> Result<Verdict, CommunityError> {
        let communities = self.list(store)?;
        let outcome = magnetlink::find_community(message, pubsub_topic, &communities).and_then(|community| {
            let ring = chs_status::ChatKeyRing::for_magnetlinks(&community.id, &self.chat_keys);
            let parsed = chs_status::parse_magnetlink(message, pubsub_topic, &community.id, &ring)?;
            Ok((community, parsed))
        });
        let verdict = match outcome {
            Err(reason) => Verdict::Rejected(reason),
            Ok((community, parsed)) => {
                let info = bookkeeping::archive_info(store.connection(), &community.id)?;
                let state = chs_status::MagnetlinkState {
                    is_control_node: community.is_control_node(),
                    joined: community.joined,
                    last_clock: info.magnetlink_clock,
                    last_uri: Some(info.last_magnetlink_uri).filter(|uri| !uri.is_empty()),
                    usable_links: self.usable_links(),
                };
                match chs_status::accept_magnetlink(&parsed, &community.id, &state) {
                    Err(reason) => Verdict::Rejected(reason),
                    Ok(()) => {
                        bookkeeping::set_magnetlink_clock(store.connection(), &community.id, parsed.clock)?;
                        Verdict::Accepted {
                            community_id: community.id,
                            clock: parsed.clock,
                            magnet_uri: parsed.magnet_uri,
                        }
                    }
                }
            }
        };
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        match &verdict {
            Verdict::Accepted { community_id, clock, magnet_uri } => {
                counters.record_accepted();
                tracing::info!(%community_id, clock, %magnet_uri, "magnetlink accepted");
            }
            Verdict::Rejected(reason) => {
                counters.record_rejected(reason);
                tracing::debug!(%reason, kind = reason.kind().as_str(), pubsub_topic, content_topic = %message.content_topic, "magnetlink rejected");
            }
        }
        Ok(verdict)
    }

    /// The stateless part of [`Communities::receive_magnetlink`], without the database: is
    /// `message` (relayed on `pubsub_topic`) a well-formed magnetlink of `community` on one of
    /// its magnetlink topics, decrypted with its chat key and signed by its key? Returns the
    /// link's (clock, magnet URI). A refusal is counted in [`Communities::rejection_counts`] like
    /// the full verdict's; a message that passes must still go through `receive_magnetlink`
    /// (joined, clock, last fetched URI), which counts its outcome.
    ///
    /// # Errors
    /// The [`RejectReason`] of the first layer that fails.
    pub fn check_magnetlink(
        &self,
        community: &CommunityId,
        message: &WakuMessage,
        pubsub_topic: &str,
    ) -> Result<(u64, String), RejectReason> {
        let ring = chs_status::ChatKeyRing::for_magnetlinks(community, &self.chat_keys);
        match chs_status::parse_magnetlink(message, pubsub_topic, community, &ring) {
            Ok(parsed) => Ok((parsed.clock, parsed.magnet_uri)),
            Err(reason) => {
                self.counters.lock().unwrap_or_else(PoisonError::into_inner).record_rejected(&reason);
                Err(reason)
            }
        }
    }

    /// Magnetlinks accepted, and rejected per reason, since this manager was opened.
    #[must_use]
    pub fn rejection_counts(&self) -> RejectCounters {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    // ----- the community as Status clients see it (issue 19) -----

    /// Receives a `WakuMessage` from `id`'s description chat: verifies it (signed by the
    /// community key, status-go's validation; `chs_status::description`) and applies it with
    /// status-go's clock rule (older refused, equal re-applied). The channel chats become the
    /// description's; field 9 raises the magnetlink clock. Every outcome is logged and counted.
    ///
    /// # Errors
    /// Database errors only; a bad or stale description is [`DescriptionOutcome::Rejected`].
    pub fn receive_description(
        &self,
        store: &mut Store,
        id: &CommunityId,
        message: &WakuMessage,
    ) -> Result<DescriptionOutcome, CommunityError> {
        self.get(store, id)?;
        let outcome = match self.check_description(store, id, message)? {
            Ok(parsed) => description::apply(store.connection_mut(), &parsed, self.now_ms())?,
            Err(reason) => DescriptionOutcome::Rejected(reason),
        };
        let mut counters = self.description_counters.lock().unwrap_or_else(PoisonError::into_inner);
        match &outcome {
            DescriptionOutcome::Applied { clock, added, removed } => {
                counters.record_accepted();
                tracing::info!(community_id = %id, clock, ?added, ?removed, "community description applied");
            }
            DescriptionOutcome::Rejected(reason) => {
                counters.record_rejected(reason);
                tracing::warn!(community_id = %id, %reason, kind = reason.kind().as_str(), "community description refused");
            }
        }
        Ok(outcome)
    }

    /// Applies an already verified description (see [`Communities::receive_description`]).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn apply_description(
        &self,
        store: &mut Store,
        parsed: &chs_status::Description,
    ) -> Result<DescriptionOutcome, CommunityError> {
        self.get(store, &parsed.community_id)?;
        description::apply(store.connection_mut(), parsed, self.now_ms())
    }

    /// Verifies `message` as a description of `id` exactly as [`Communities::receive_description`]
    /// does, without applying it (what a store catch-up uses to pick the newest valid one).
    ///
    /// # Errors
    /// SQLite errors; the refusal is the inner `Err`.
    pub fn check_description(
        &self,
        store: &Store,
        id: &CommunityId,
        message: &WakuMessage,
    ) -> Result<Result<chs_status::Description, RejectReason>, CommunityError> {
        let control_node = description::control_node(store.connection(), id)?;
        let ring = chs_status::description::description_ring(id, &self.chat_keys);
        Ok(chs_status::description::parse_description_with(message, id, &ring, control_node.as_ref()))
    }

    /// Verifies `message` as a shard info of `id` exactly as [`Communities::receive_shard_info`]
    /// does, without applying it.
    ///
    /// # Errors
    /// SQLite errors; the refusal is the inner `Err`.
    pub fn check_shard_info(
        &self,
        store: &Store,
        id: &CommunityId,
        message: &WakuMessage,
    ) -> Result<Result<chs_status::description::ShardInfo, RejectReason>, CommunityError> {
        let control_node = description::control_node(store.connection(), id)?;
        let ring = chs_status::description::shard_info_ring(id, &self.chat_keys);
        Ok(chs_status::description::parse_shard_info_with(message, id, &ring, control_node.as_ref()))
    }

    /// Receives a `WakuMessage` from `id`'s `-shard-info` chat (on `/waku/2/rs/16/64`): verifies
    /// the community key's signature over `PublicShardInfo` and applies it if its clock is
    /// strictly newer, moving the community's pubsub topic. Logged and counted.
    ///
    /// # Errors
    /// Database errors only; a bad or stale one is [`ShardOutcome::Rejected`].
    pub fn receive_shard_info(
        &self,
        store: &mut Store,
        id: &CommunityId,
        message: &WakuMessage,
    ) -> Result<ShardOutcome, CommunityError> {
        self.get(store, id)?;
        let outcome = match self.check_shard_info(store, id, message)? {
            Ok(info) => description::apply_shard(store.connection_mut(), &info, self.now_ms())?,
            Err(reason) => ShardOutcome::Rejected(reason),
        };
        let mut counters = self.description_counters.lock().unwrap_or_else(PoisonError::into_inner);
        match &outcome {
            ShardOutcome::Moved { from, to } => {
                counters.record_accepted();
                tracing::info!(community_id = %id, %from, %to, "community moved to another shard");
            }
            ShardOutcome::Unchanged => counters.record_accepted(),
            ShardOutcome::Rejected(reason) => {
                counters.record_rejected(reason);
                tracing::warn!(community_id = %id, %reason, kind = reason.kind().as_str(), "community shard info refused");
            }
        }
        Ok(outcome)
    }

    /// Applies an already verified shard info (see [`Communities::receive_shard_info`]).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn apply_shard_info(
        &self,
        store: &mut Store,
        info: &chs_status::ShardInfo,
    ) -> Result<ShardOutcome, CommunityError> {
        self.get(store, &info.community_id)?;
        description::apply_shard(store.connection_mut(), info, self.now_ms())
    }

    /// The stored description, if one was applied.
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn description(&self, store: &Store, id: &CommunityId) -> Result<Option<StoredDescription>, CommunityError> {
        description::load(store.connection(), id)
    }

    /// The stored public shard info, if one was applied.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn shard_info(&self, store: &Store, id: &CommunityId) -> Result<Option<StoredShard>, CommunityError> {
        description::load_shard(store.connection(), id)
    }

    /// Sets (or clears) the protected-topic key of `id`'s pubsub topic.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn set_topic_key(
        &self,
        store: &mut Store,
        id: &CommunityId,
        key: Option<&TopicKey>,
    ) -> Result<(), CommunityError> {
        description::set_topic_key(store.connection(), id, key)
    }

    /// Sets (or with `None` clears) the control node of `id`: the key that signs the descriptions
    /// (and shard infos with a chain id) of an owner-token community, whose owner status-go reads
    /// from the chain and chs takes from the operator
    /// ([`chs_status::description::description_from_amm_with`]).
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn set_control_node(
        &self,
        store: &mut Store,
        id: &CommunityId,
        key: Option<&chs_waku_payload::PublicKey>,
    ) -> Result<(), CommunityError> {
        description::set_control_node(store.connection(), id, key)
    }

    /// The control node configured for `id`, if any.
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn control_node(
        &self,
        store: &Store,
        id: &CommunityId,
    ) -> Result<Option<chs_waku_payload::PublicKey>, CommunityError> {
        description::control_node(store.connection(), id)
    }

    /// The protected-topic key of `id`, if set.
    ///
    /// # Errors
    /// SQLite errors, [`CommunityError::MalformedRow`].
    pub fn topic_key(&self, store: &Store, id: &CommunityId) -> Result<Option<TopicKey>, CommunityError> {
        description::topic_key(store.connection(), id)
    }

    /// Descriptions and shard infos applied, and refused per reason, since this manager was opened.
    #[must_use]
    pub fn description_counts(&self) -> RejectCounters {
        self.description_counters.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    // ----- bookkeeping -----

    /// The community's archive info (zero values if none was stored yet).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn archive_info(&self, store: &Store, id: &CommunityId) -> Result<ArchiveInfo, CommunityError> {
        bookkeeping::archive_info(store.connection(), id)
    }

    /// Stores the end (seconds) of the last archive window built by the control node. Touches
    /// only that value (status-go's INSERT-or-REPLACE also wiped the clock and URI, §15 item 11).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn save_last_archive_end_date(
        &self,
        store: &mut Store,
        id: &CommunityId,
        end: u64,
    ) -> Result<(), CommunityError> {
        bookkeeping::set_last_archive_end_date(store.connection(), id, end)
    }

    /// Stores the magnetlink clock (ms); [`Communities::receive_magnetlink`] does this on accept.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_magnetlink_clock(&self, store: &mut Store, id: &CommunityId, clock: u64) -> Result<(), CommunityError> {
        bookkeeping::set_magnetlink_clock(store.connection(), id, clock)
    }

    /// Raises the stored magnetlink clock to `clock` if it is newer (what status-go does with a
    /// community description's `archive_magnetlink_clock`, wire §3.11). Returns the stored clock.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn raise_magnetlink_clock(
        &self,
        store: &mut Store,
        id: &CommunityId,
        clock: u64,
    ) -> Result<u64, CommunityError> {
        let stored = bookkeeping::archive_info(store.connection(), id)?.magnetlink_clock;
        if clock > stored {
            bookkeeping::set_magnetlink_clock(store.connection(), id, clock)?;
            return Ok(clock);
        }
        Ok(stored)
    }

    /// Records that the download of `uri` completed (index and every wanted archive fetched): a
    /// later magnetlink with the same URI is then rejected as already fetched.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn mark_magnetlink_fetched(
        &self,
        store: &mut Store,
        id: &CommunityId,
        uri: &str,
    ) -> Result<(), CommunityError> {
        bookkeeping::set_last_magnetlink_uri(store.connection(), id, uri)
    }

    /// Records a downloaded (not yet imported) archive. Returns false if it was already recorded.
    ///
    /// # Errors
    /// [`CommunityError::InvalidArchiveId`], SQLite errors.
    pub fn record_downloaded_archive(
        &self,
        store: &mut Store,
        id: &CommunityId,
        archive_id: &str,
        from: u64,
        to: u64,
    ) -> Result<bool, CommunityError> {
        bookkeeping::record_downloaded(store.connection(), id, archive_id, from, to, self.now_ms())
    }

    /// Records a failed import attempt (e.g. the archive could not be extracted). The archive stays
    /// pending but moves behind the others in [`Communities::pending_imports`], so a broken archive
    /// never blocks later ones (status-go retried it forever, §15 item 17).
    ///
    /// # Errors
    /// [`CommunityError::InvalidArchiveId`], SQLite errors.
    pub fn record_import_failure(
        &self,
        store: &mut Store,
        id: &CommunityId,
        archive_id: &str,
        error: &str,
    ) -> Result<(), CommunityError> {
        let archive_id = normalize_archive_id(archive_id)?;
        tracing::warn!(community_id = %id, %archive_id, %error, "archive import failed");
        bookkeeping::record_import_failure(store.connection(), id, &archive_id, error, self.now_ms())
    }

    /// Every archive id recorded for the community, oldest window first.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn archive_records(&self, store: &Store, id: &CommunityId) -> Result<Vec<ArchiveRecord>, CommunityError> {
        bookkeeping::archive_records(store.connection(), id)
    }

    /// Downloaded archives still to import: never-failed ones first (oldest window first), then
    /// those that failed before (fewest failures first).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn pending_imports(&self, store: &Store, id: &CommunityId) -> Result<Vec<ArchiveRecord>, CommunityError> {
        let mut pending: Vec<ArchiveRecord> =
            bookkeeping::archive_records(store.connection(), id)?.into_iter().filter(|r| !r.imported).collect();
        pending.sort_by(|a, b| {
            (a.import_failures, a.from, &a.archive_id).cmp(&(b.import_failures, b.from, &b.archive_id))
        });
        Ok(pending)
    }

    /// The archive ids recorded (downloaded, imported or not) for the community.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn downloaded_archive_ids(&self, store: &Store, id: &CommunityId) -> Result<BTreeSet<String>, CommunityError> {
        bookkeeping::downloaded_ids(store.connection(), id)
    }

    /// The archives of `index` selected by `strategy` that this node has not downloaded, oldest
    /// first. Compares sets of ids (status-go compared counts, §15 item 18).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn missing_archives(
        &self,
        store: &Store,
        id: &CommunityId,
        index: &WakuMessageArchiveIndex,
        strategy: Strategy,
    ) -> Result<Vec<MissingArchive>, CommunityError> {
        let have = bookkeeping::downloaded_ids(store.connection(), id)?;
        Ok(missing_archives(index, &have, strategy))
    }

    /// The archives of `index` this member still has to fetch and import: every archive not
    /// imported yet, including those recorded as downloaded by a run that died before importing
    /// them; a failed import is not retried (the same bytes would fail again: it stays recorded
    /// with its error). Oldest first.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn archives_to_fetch(
        &self,
        store: &Store,
        id: &CommunityId,
        index: &WakuMessageArchiveIndex,
    ) -> Result<Vec<MissingArchive>, CommunityError> {
        let done: BTreeSet<String> = self
            .archive_records(store, id)?
            .into_iter()
            .filter(|r| r.imported || r.import_failures > 0)
            .map(|r| r.archive_id)
            .collect();
        Ok(missing_archives(index, &done, Strategy::All))
    }

    /// Imports one fetched archive: `bytes` are the archive of index entry `entry` without its
    /// padding. It is decoded, its window checked against the entry's, and imported as the
    /// canonical history of that window in one transaction that also records it as downloaded
    /// and imported (so a crash leaves it either imported or still missing). An archive that
    /// cannot be imported is recorded as downloaded with its error and returned as the inner
    /// `Err`; it never stops the others.
    ///
    /// # Errors
    /// SQLite errors (outer); the archive's own fault (inner).
    pub fn import_fetched_archive(
        &self,
        store: &mut Store,
        id: &CommunityId,
        entry: &MissingArchive,
        bytes: &[u8],
        mode: DecodeMode,
    ) -> Result<Result<ImportReport, FetchedArchiveError>, CommunityError> {
        let result = chs_archive::format::decode_archive(bytes)
            .map_err(|e| match (&e, chs_archive::hash_ratchet_wrapping(bytes)) {
                (chs_archive::DecodeError::Encrypted { .. }, Some(wrapping)) => FetchedArchiveError::Wrapped(wrapping),
                _ => FetchedArchiveError::from(e),
            })
            .and_then(|archive| {
                let metadata = archive.metadata.unwrap_or_default();
                if metadata.from != entry.from || metadata.to != entry.to {
                    return Err(FetchedArchiveError::WrongWindow {
                        archive_id: entry.archive_id.clone(),
                        from: metadata.from,
                        to: metadata.to,
                        entry_from: entry.from,
                        entry_to: entry.to,
                    });
                }
                let import =
                    ArchiveImport { archive_id: &entry.archive_id, metadata: &metadata, messages: &archive.messages };
                self.import_archive_with(store, id, &import, mode).map_err(|e| FetchedArchiveError::Import(Box::new(e)))
            });
        if let Err(e) = &result {
            self.record_downloaded_archive(store, id, &entry.archive_id, entry.from, entry.to)?;
            self.record_import_failure(store, id, &entry.archive_id, &error_chain(e))?;
        }
        Ok(result)
    }

    // ----- import and history -----

    /// Canonical import of one extracted archive: in ONE SQLite transaction, the stored messages of
    /// the archive's topics in `[from, to)` are replaced by exactly the archive's messages, their
    /// history rows likewise, and the archive id is recorded as imported. A crash leaves the old or
    /// the new set, never a mix. Importing the same archive again changes nothing.
    ///
    /// Messages that do not decode down to an `ApplicationMetadataMessage` are stored but counted as
    /// undecodable; malformed messages and messages outside the window are skipped and counted.
    ///
    /// The import is scoped to the community: only messages on its pubsub topic are deleted or
    /// inserted, and only on the archive's topics that are not another community's. A topic is
    /// another community's if that community has it configured (channels and default chats) or
    /// learned it from one of its own earlier imports (first claim wins, unless the importing
    /// community has the topic configured). Those topics are refused, their messages skipped and
    /// counted ([`ImportReport::refused_topics`], recorded with the archive and logged); the rest
    /// of the archive imports. A topic no community has is learned by this one. Each stored row is
    /// keyed by the 14/WAKU2 hash of its own fields, not by the hash the archive claims.
    ///
    /// On error the failure is recorded (see [`Communities::record_import_failure`]) and nothing of
    /// the archive is stored.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], [`CommunityError::InvalidArchiveId`],
    /// [`CommunityError::EmptyRange`], store or SQLite errors.
    pub fn import_archive(
        &self,
        store: &mut Store,
        id: &CommunityId,
        archive: &ArchiveImport<'_>,
    ) -> Result<ImportReport, CommunityError> {
        self.import_archive_with(store, id, archive, DecodeMode::Immediate)
    }

    /// [`Communities::import_archive`] with a choice of when the history is decoded: with
    /// [`DecodeMode::Deferred`] the transaction stores the canonical message set and pending
    /// history rows only (the ECDSA recoveries, most of an import's cost, run later in
    /// [`Communities::decode_pending_history`] or on the next [`Communities::history`]).
    ///
    /// # Errors
    /// As [`Communities::import_archive`].
    pub fn import_archive_with(
        &self,
        store: &mut Store,
        id: &CommunityId,
        archive: &ArchiveImport<'_>,
        mode: DecodeMode,
    ) -> Result<ImportReport, CommunityError> {
        let community = self.get(store, id)?;
        let scope = self.topic_scope(store, id)?;
        let result = import::import_archive(
            store.connection_mut(),
            id,
            &community.pubsub_topic,
            &scope,
            archive,
            mode,
            self.now_ms(),
        );
        if let Err(err) = &result
            && let Ok(archive_id) = normalize_archive_id(archive.archive_id)
        {
            let message = error_chain(err);
            tracing::warn!(community_id = %id, %archive_id, error = %message, "archive import failed");
            if let Err(record_err) =
                bookkeeping::record_import_failure(store.connection(), id, &archive_id, &message, self.now_ms())
            {
                tracing::warn!(community_id = %id, %archive_id, error = %record_err, "could not record the import failure");
            }
        }
        result
    }

    /// Decodes up to `max` history rows left pending by a [`DecodeMode::Deferred`] import
    /// (oldest first, in batches of 10,000, each batch one transaction; decoding runs on all
    /// cores). Call it in the background after deferred imports.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn decode_pending_history(
        &self,
        store: &mut Store,
        id: &CommunityId,
        max: usize,
    ) -> Result<DecodeReport, CommunityError> {
        import::decode_pending(store.connection_mut(), id, max)
    }

    /// How many imported messages are kept but not readable here: hash-ratchet encrypted
    /// (token-gated communities) or segments of a larger message. A Status client with the keys
    /// reads them on import; chs keeps and serves them. Rows still pending decoding
    /// ([`Communities::decode_pending_history`]) are not counted.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn sealed_messages(&self, store: &Store, id: &CommunityId) -> Result<u64, CommunityError> {
        import::sealed_messages(store.connection(), id)
    }

    /// The community's readable history in time order (archived timestamp, then clock, then
    /// hash): every imported message that decoded. Pending rows are decoded first.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn history(&self, store: &mut Store, id: &CommunityId) -> Result<Vec<HistoryRecord>, CommunityError> {
        import::decode_pending(store.connection_mut(), id, usize::MAX)?;
        import::history(store.connection(), id)
    }

    /// The history this node holds of `id` from `since_secs` on, in [`Communities::history`]'s
    /// order: the imported history plus the messages stored live on the community's channel
    /// topics (what a control node captured and archives), decoded as an import decodes them,
    /// each message once. Stored messages that do not decode (not Status messages, bad
    /// signature) are left out.
    ///
    /// # Errors
    /// [`CommunityError::UnknownCommunity`], SQLite errors.
    pub fn node_history(
        &self,
        store: &mut Store,
        id: &CommunityId,
        since_secs: u64,
    ) -> Result<Vec<HistoryRecord>, CommunityError> {
        let mut rows: Vec<HistoryRecord> =
            self.history(store, id)?.into_iter().filter(|r| r.timestamp >= since_secs).collect();
        let mut seen: std::collections::HashSet<String> = rows.iter().map(|r| r.message_hash.clone()).collect();
        let topics = self.channel_topics(store, id)?;
        let scanned = store.for_each_in_range(&topics, since_secs, u64::MAX, |m| {
            let hash = format!("0x{}", hex::encode(m.hash));
            if !seen.contains(&hash)
                && let Ok(d) = import::Decoded::decode(&m.to_archive_message())
            {
                seen.insert(hash.clone());
                rows.push(d.into_record(hash, m.timestamp_secs()));
            }
            Ok::<_, std::convert::Infallible>(std::ops::ControlFlow::Continue(()))
        });
        match scanned {
            Ok(()) => {}
            Err(chs_store::ScanError::Store(e)) => return Err(e.into()),
            Err(chs_store::ScanError::Callback(never)) => match never {},
        }
        rows.sort_by(|a, b| (a.timestamp, a.clock, &a.message_hash).cmp(&(b.timestamp, b.clock, &b.message_hash)));
        Ok(rows)
    }
}

/// An error with every cause, `outer: inner: innermost` (what records and logs carry).
#[must_use]
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod description_tests;
#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
