//! The community hash-ratchet keys this node holds (table `chs_ratchet_keys`), and the
//! [`chs_archive::Wrapper`] that wraps an encrypted community's archives and index with them as
//! status-go does (`chs_status::hash_ratchet`; `manager_archive_file.go`).
//!
//! status-go keeps a group's keys in `hash_ratchet_encryption` (group id, key id, key timestamp,
//! 32-byte key) and where each key's chain is in `hash_ratchet_encryption_cache` (`seq_no`,
//! hash). Here one row per key holds both: the key and `last_seq_no`, the last sequence number
//! this node used with it. A wrap reserves its number in the database first
//! ([`RatchetWrapper`]), so a crash or a restart may skip a number but never reuses one (a
//! reused number would encrypt two plaintexts under the same AES key).

use chs_archive::{WrapError, Wrapper};
use chs_status::hash_ratchet::{self, Chain, RatchetKey};
use chs_store::Store;
use chs_waku_payload::NonceSource;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::{CommunityError, CommunityId};

/// The length of a status-go hash-ratchet key (`crypto.FromECDSA` of a fresh key).
pub const RATCHET_KEY_LEN: usize = 32;

/// Timestamps below this are taken for seconds, not status-go's Unix milliseconds.
const MIN_TIMESTAMP_MS: u64 = 100_000_000_000;

/// A held key as listed (never the key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatchetKeyInfo {
    /// The key id (`0x` + 64 hex): `keccak256(group id ‖ LE64(timestamp) ‖ key)`.
    pub key_id: String,
    /// status-go's key timestamp (Unix ms, bumped).
    pub timestamp: u64,
    /// The last sequence number this node wrapped with the key (0: never used).
    pub last_seq_no: u32,
    /// When it was added here, Unix ms.
    pub added_at_ms: u64,
}

/// What [`crate::Communities::add_ratchet_key`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddedRatchetKey {
    /// The key as listed.
    pub key: RatchetKeyInfo,
    /// False if the same key was held already.
    pub new: bool,
    /// The kept link whose wrapped index could not be opened, now pending again so that the
    /// member re-opens it (from the files it keeps), if there was one and no newer link pending.
    pub reopened: Option<String>,
}

/// How an owner writes the community's archives (status-go: wrapped iff `community.Encrypted()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveWrapping {
    /// Not an encrypted community (or no description received yet): plain, as status-go.
    Plain,
    /// An encrypted community but no hash-ratchet key held: plain (status-go reads plain
    /// archives; the messages inside stay hash-ratchet ciphertext).
    NoKey,
    /// An encrypted community: wrapped with the group's newest key (`GetCurrentKeyForGroup`).
    Wrapped(RatchetKey),
}

impl ArchiveWrapping {
    /// What `chs node status` and `chs community show` say about it, if anything.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            ArchiveWrapping::Plain => None,
            ArchiveWrapping::NoKey => Some(
                "encrypted community; no hash-ratchet key: archives written plain, which status-go reads".to_owned(),
            ),
            ArchiveWrapping::Wrapped(key) => Some(format!(
                "encrypted community: archives and index wrapped with hash-ratchet key 0x{} (timestamp {})",
                hex::encode(key.key_id()),
                key.timestamp()
            )),
        }
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Checks `key` and `timestamp` and makes the [`RatchetKey`] of community `id`.
pub(crate) fn make_key(id: &CommunityId, timestamp: u64, key: &[u8]) -> Result<RatchetKey, CommunityError> {
    if key.len() != RATCHET_KEY_LEN {
        return Err(CommunityError::InvalidRatchetKey(format!(
            "{} bytes, expected {RATCHET_KEY_LEN} (64 hex digits)",
            key.len()
        )));
    }
    if timestamp < MIN_TIMESTAMP_MS {
        return Err(CommunityError::InvalidRatchetKey(format!(
            "timestamp {timestamp} is not Unix milliseconds (status-go's key timestamp, e.g. 1733356800123); \
             the key id depends on the exact value"
        )));
    }
    RatchetKey::new(id.as_bytes().to_vec(), timestamp, key.to_vec(), None)
        .map_err(|e| CommunityError::InvalidRatchetKey(e.to_string()))
}

/// Stores `key`; false if it was held already.
pub(crate) fn insert(
    conn: &Connection,
    id: &CommunityId,
    key: &RatchetKey,
    now_ms: u64,
) -> Result<bool, CommunityError> {
    let added = conn.execute(
        "INSERT INTO chs_ratchet_keys (community_id, key_id, key_timestamp, key, last_seq_no, added_at_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT (community_id, key_id) DO NOTHING",
        params![id.to_string(), key.key_id(), clamp(key.timestamp()), key.material(), clamp(now_ms)],
    )?;
    Ok(added == 1)
}

/// The keys of `id` as listed, newest first.
pub(crate) fn list(conn: &Connection, id: &CommunityId) -> Result<Vec<RatchetKeyInfo>, CommunityError> {
    let mut stmt = conn.prepare(
        "SELECT key_id, key_timestamp, last_seq_no, added_at_ms FROM chs_ratchet_keys WHERE community_id = ?1
         ORDER BY key_timestamp DESC, key_id",
    )?;
    let rows = stmt.query_map([id.to_string()], |r| {
        Ok(RatchetKeyInfo {
            key_id: format!("0x{}", hex::encode(r.get::<_, Vec<u8>>(0)?)),
            timestamp: unsigned(r.get(1)?),
            last_seq_no: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
            added_at_ms: unsigned(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The keys of `id` with their material, newest first.
pub(crate) fn load(conn: &Connection, id: &CommunityId) -> Result<Vec<RatchetKey>, CommunityError> {
    let mut stmt = conn.prepare(
        "SELECT key_id, key_timestamp, key FROM chs_ratchet_keys WHERE community_id = ?1
         ORDER BY key_timestamp DESC, key_id",
    )?;
    let rows = stmt
        .query_map([id.to_string()], |r| Ok((r.get::<_, Vec<u8>>(0)?, unsigned(r.get(1)?), r.get::<_, Vec<u8>>(2)?)))?;
    let mut keys = Vec::new();
    for row in rows {
        let (key_id, timestamp, material) = row?;
        let key = RatchetKey::new(id.as_bytes().to_vec(), timestamp, material, Some(key_id))
            .map_err(|e| CommunityError::MalformedRow { table: "chs_ratchet_keys", what: e.to_string() })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Reserves the next sequence number of `key` (one statement: the stored number moves first).
pub(crate) fn reserve_seq(conn: &Connection, id: &CommunityId, key: &RatchetKey) -> Result<u32, CommunityError> {
    let seq: Option<i64> = conn
        .query_row(
            "UPDATE chs_ratchet_keys SET last_seq_no = last_seq_no + 1
             WHERE community_id = ?1 AND key_id = ?2 AND last_seq_no < ?3 RETURNING last_seq_no",
            params![id.to_string(), key.key_id(), i64::from(hash_ratchet::MAX_SEQ_NO_DELTA)],
            |r| r.get(0),
        )
        .optional()?;
    let seq = seq.ok_or_else(|| {
        CommunityError::InvalidRatchetKey(format!(
            "key 0x{} is not held or its chain reached status-go's limit of {} messages",
            hex::encode(key.key_id()),
            hash_ratchet::MAX_SEQ_NO_DELTA
        ))
    })?;
    u32::try_from(seq).map_err(|_| CommunityError::MalformedRow { table: "chs_ratchet_keys", what: seq.to_string() })
}

/// Wraps an encrypted community's archives and index for [`chs_archive::Builder::wrapper`]:
/// each [`Wrapper::wrap`] reserves the key's next sequence number in the database
/// (`chs_ratchet_keys.last_seq_no`, committed before the bytes are encrypted), then builds
/// status-go's `BuildHashRatchetMessage` with it; [`Wrapper::unwrap`] opens the existing index
/// with any key held.
pub struct RatchetWrapper<'a> {
    store: &'a Store,
    id: CommunityId,
    key: RatchetKey,
    keys: Vec<RatchetKey>,
    installation_id: String,
    used: Vec<u32>,
}

impl std::fmt::Debug for RatchetWrapper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetWrapper").field("id", &self.id).field("key", &self.key).finish_non_exhaustive()
    }
}

impl<'a> RatchetWrapper<'a> {
    /// A wrapper of community `id` with `key` (its newest: [`ArchiveWrapping::Wrapped`]),
    /// opening with `keys` (every key held), writing `installation_id` as the sender's, whose
    /// sequence numbers live in `store`'s `chs_ratchet_keys`.
    #[must_use]
    pub fn new(
        store: &'a Store,
        id: CommunityId,
        key: RatchetKey,
        keys: Vec<RatchetKey>,
        installation_id: String,
    ) -> Self {
        RatchetWrapper { store, id, key, keys, installation_id, used: Vec::new() }
    }

    /// The sequence numbers this wrapper used, in order.
    #[must_use]
    pub fn used(&self) -> &[u32] {
        &self.used
    }
}

impl Wrapper for RatchetWrapper<'_> {
    fn wrap(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        let seq =
            reserve_seq(self.store.connection(), &self.id, &self.key).map_err(|e| WrapError(crate::error_chain(&e)))?;
        let mut chain = Chain { seq_no: seq - 1, hash: None };
        let bytes = hash_ratchet::wrap(&self.key, &mut chain, &self.installation_id, plaintext, &NonceSource::Random)
            .map_err(|e| WrapError(e.to_string()))?;
        self.used.push(seq);
        Ok(bytes)
    }

    fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
        open(&self.keys, wrapped)
    }
}

/// Opens a wrapped index or archive with any of `keys` ([`hash_ratchet::unwrap`]).
///
/// # Errors
/// Why it does not open (unknown key, wrong material, not a hash-ratchet message).
pub fn open(keys: &[RatchetKey], wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
    hash_ratchet::unwrap(keys, wrapped).map(|u| u.plaintext).map_err(|e| WrapError(e.to_string()))
}

/// A [`Wrapper`] that only opens (reading a wrapped folder: [`chs_archive::Reader::open_with`]);
/// wrapping through it fails.
#[derive(Debug, Clone)]
pub struct RatchetOpener(pub Vec<RatchetKey>);

impl Wrapper for RatchetOpener {
    fn wrap(&mut self, _plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        Err(WrapError("this hash-ratchet opener does not wrap".to_owned()))
    }

    fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
        open(&self.0, wrapped)
    }
}

/// What a control node's build of an encrypted community needs to wrap as status-go does:
/// [`crate::Communities::build_wrapping`], then [`BuildWrapping::run`]. Used by the node's
/// archive task, its "build now" and `chs archive build --community`.
#[derive(Debug, Clone)]
pub struct BuildWrapping {
    /// Wrapped or plain, and why.
    pub wrapping: ArchiveWrapping,
    id: CommunityId,
    keys: Vec<RatchetKey>,
    installation_id: String,
}

impl BuildWrapping {
    pub(crate) fn new(
        wrapping: ArchiveWrapping,
        id: CommunityId,
        keys: Vec<RatchetKey>,
        installation_id: String,
    ) -> Self {
        BuildWrapping { wrapping, id, keys, installation_id }
    }

    /// Runs `build` (a [`chs_archive::Builder`] given the wrapper with
    /// [`chs_archive::Builder::maybe_wrapper`]) with a [`RatchetWrapper`] when
    /// [`ArchiveWrapping::Wrapped`], else with `None`. The wrapper reserves its sequence numbers
    /// through a connection of its own to the database at `db_path`: each is committed before
    /// the bytes it encrypts are written, never held back by the builder's open scan. Returns
    /// the report and the sequence numbers used.
    ///
    /// # Errors
    /// What the build returns; [`chs_archive::BuildError::Wrap`] if the database cannot be
    /// opened for the sequence numbers.
    pub fn run(
        self,
        db_path: &std::path::Path,
        build: impl FnOnce(Option<&mut dyn Wrapper>) -> Result<chs_archive::BuildReport, chs_archive::BuildError>,
    ) -> Result<(chs_archive::BuildReport, Vec<u32>), chs_archive::BuildError> {
        let ArchiveWrapping::Wrapped(key) = self.wrapping else { return Ok((build(None)?, Vec::new())) };
        let seq_store = Store::open(db_path).map_err(|e| chs_archive::BuildError::Wrap {
            what: "open the database for the hash-ratchet sequence numbers",
            source: WrapError(crate::error_chain(&e)),
        })?;
        let mut wrapper = RatchetWrapper::new(&seq_store, self.id, key, self.keys, self.installation_id);
        let report = build(Some(&mut wrapper))?;
        tracing::info!(community_id = %self.id, seq_nos = ?wrapper.used(), "archives and index hash-ratchet wrapped");
        Ok((report, wrapper.used))
    }

    /// Wraps one more blob as [`BuildWrapping::run`] wraps an archive (a backend's own index,
    /// e.g. the Logos Storage index, which status-go wraps too): `Some` of the wrapped bytes when
    /// [`ArchiveWrapping::Wrapped`] (one sequence number, reserved in the database at `db_path`
    /// first), `None` when the community is written plain.
    ///
    /// # Errors
    /// The database cannot be opened, the number not reserved, or the bytes not wrapped.
    pub fn wrap_one(&self, db_path: &std::path::Path, plaintext: &[u8]) -> Result<Option<Vec<u8>>, WrapError> {
        let ArchiveWrapping::Wrapped(key) = &self.wrapping else { return Ok(None) };
        let seq_store = Store::open(db_path).map_err(|e| WrapError(crate::error_chain(&e)))?;
        let mut wrapper =
            RatchetWrapper::new(&seq_store, self.id, key.clone(), self.keys.clone(), self.installation_id.clone());
        let bytes = wrapper.wrap(plaintext)?;
        tracing::info!(community_id = %self.id, seq_nos = ?wrapper.used(), "index hash-ratchet wrapped");
        Ok(Some(bytes))
    }

    /// Every key held when [`ArchiveWrapping::Wrapped`] (to open what was wrapped), else none.
    #[must_use]
    pub fn keys(&self) -> &[RatchetKey] {
        &self.keys
    }
}
