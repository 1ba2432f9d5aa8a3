//! The community hash ratchet that wraps the archives and the index of an encrypted
//! (token-gated) community, as status-go c72f491 does it.
//!
//! status-go's `manager_archive_file.go` (`createHistoryArchiveTorrent`, lines 180-190 and
//! 245-254) replaces each encoded `WakuMessageArchive` and the encoded `WakuMessageArchiveIndex`
//! by `proto.Marshal(BuildHashRatchetMessage(communityID, bytes).Message)`
//! (`protocol/encryption/protocol.go:400-424`):
//!
//! ```text
//! ProtocolMessage{
//!   installation_id: <the sender's installation id>,
//!   encrypted_message: {"none": EncryptedMessageProtocol{
//!     HR_header: {deprecated_key_id: uint32(key timestamp), seq_no, group_id: community id, key_id},
//!     payload: AES-256-GCM(keccak256(chain hash), plaintext) ‖ tag ‖ 12-byte nonce}}}
//! ```
//!
//! * The key used is the group's newest (`GetCurrentKeyForGroup`: highest timestamp).
//! * `key_id = keccak256(group_id ‖ LE64(timestamp) ‖ key)` (`helpers.go:29-42`,
//!   `HashRatchetKeyCompatibility.GetKeyID`), unless the key carries an id of its own.
//! * `EncryptWithHR` (`encryptor.go:683-712`): `hash = keccak256(stored hash, or the raw key if
//!   none yet)`, the payload is encrypted with `hash`, and `hash` is stored under `seq_no + 1`,
//!   the `seq_no` written in the header. So message `n` of a key is encrypted with
//!   `keccak256ⁿ(key)` ([`message_key`]); every archive and the index each take one number.
//! * `DecryptWithHR` (`encryptor.go:714-763`): `seq_no == 0` is a plaintext payload; the key is
//!   found by `key_id`, or by `(deprecated_key_id, group_id)`; without a cached hash for exactly
//!   that `seq_no` status-go derives it from the raw key and refuses `seq_no > 100000`
//!   (`maxHashRatchetSeqNoDelta`), which [`unwrap`] does too.
//! * `EncryptSymmetric`/`DecryptSymmetric` (`eth-node/crypto/crypto.go:123-165`): AES-256-GCM, a
//!   random 12-byte nonce appended after the tag, no associated data.

use chs_proto::Message as _;
use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};
use chs_waku_payload::{NonceSource, SymmetricKey, keccak256};

/// The `encrypted_message` key status-go uses for a hash-ratchet message (`noInstallationID`).
pub const NO_INSTALLATION_ID: &str = "none";

/// The highest `seq_no` status-go derives from a raw key (`maxHashRatchetSeqNoDelta`,
/// `encryptor.go:37`).
pub const MAX_SEQ_NO_DELTA: u32 = 100_000;

/// One hash-ratchet key of a group (a community: the group id is its 33-byte id).
#[derive(Clone, PartialEq, Eq)]
pub struct RatchetKey {
    group_id: Vec<u8>,
    timestamp: u64,
    key: Vec<u8>,
    key_id: Vec<u8>,
}

impl std::fmt::Debug for RatchetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetKey")
            .field("group_id", &hex::encode(&self.group_id))
            .field("timestamp", &self.timestamp)
            .field("key_id", &hex::encode(&self.key_id))
            .finish_non_exhaustive()
    }
}

/// Why a key, a wrap or an unwrap failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashRatchetError {
    /// The key material is empty.
    #[error("the hash-ratchet key is empty")]
    EmptyKey,
    /// The group id is empty.
    #[error("the hash-ratchet group id is empty")]
    EmptyGroup,
    /// The key's timestamp is 0 and no key id was given (status-go cannot derive one either).
    #[error("the hash-ratchet key has timestamp 0 and no key id")]
    NoKeyId,
    /// The chain has used every sequence number.
    #[error("the hash-ratchet chain of this key is exhausted (seq_no {0})")]
    Exhausted(u32),
    /// AES-GCM failed to encrypt (absurd lengths) or the RNG failed.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The bytes are not a `ProtocolMessage`.
    #[error("not a ProtocolMessage: {0}")]
    NotProtocolMessage(String),
    /// The `ProtocolMessage` has no hash-ratchet `encrypted_message["none"]`.
    #[error("the ProtocolMessage carries no hash-ratchet message")]
    NotHashRatchet,
    /// None of the keys held is the one the header names.
    #[error("no hash-ratchet key held for key id 0x{key_id} (group 0x{group_id})")]
    UnknownKey {
        /// The header's key id, hex.
        key_id: String,
        /// The header's group id, hex.
        group_id: String,
    },
    /// The sequence number is past what status-go derives from a raw key.
    #[error("hash-ratchet seq_no {0} is too high (status-go's limit is {MAX_SEQ_NO_DELTA})")]
    SeqNoTooHigh(u32),
    /// The payload does not open with the key (wrong key material or damaged bytes).
    #[error("the payload does not decrypt with key id 0x{key_id} at seq_no {seq_no}")]
    Decrypt {
        /// The key id, hex.
        key_id: String,
        /// The header's sequence number.
        seq_no: u32,
    },
}

/// `keccak256(group_id ‖ LE64(timestamp) ‖ key)`: status-go's `generateHashRatchetKeyID`
/// (`protocol/encryption/helpers.go:29-42`).
#[must_use]
pub fn key_id(group_id: &[u8], timestamp: u64, key: &[u8]) -> [u8; 32] {
    let mut material = Vec::with_capacity(group_id.len() + 8 + key.len());
    material.extend_from_slice(group_id);
    material.extend_from_slice(&timestamp.to_le_bytes());
    material.extend_from_slice(key);
    keccak256(&material)
}

/// The AES-256 key of message `seq_no` (≥ 1; 0 is taken as 1) of `key`: `keccak256` applied
/// `seq_no` times to the raw key.
#[must_use]
pub fn message_key(key: &[u8], seq_no: u32) -> [u8; 32] {
    let mut hash = keccak256(key);
    for _ in 1..seq_no {
        hash = keccak256(&hash);
    }
    hash
}

impl RatchetKey {
    /// A key of `group_id` created at `timestamp` (status-go: Unix ms, bumped) with material
    /// `key` (status-go: 32 bytes); its id is `key_id` if given, else derived ([`key_id`]).
    ///
    /// # Errors
    /// [`HashRatchetError::EmptyKey`], [`HashRatchetError::EmptyGroup`],
    /// [`HashRatchetError::NoKeyId`].
    pub fn new(
        group_id: Vec<u8>,
        timestamp: u64,
        key: Vec<u8>,
        key_id: Option<Vec<u8>>,
    ) -> Result<Self, HashRatchetError> {
        if key.is_empty() {
            return Err(HashRatchetError::EmptyKey);
        }
        if group_id.is_empty() {
            return Err(HashRatchetError::EmptyGroup);
        }
        let key_id = match key_id.filter(|id| !id.is_empty()) {
            Some(id) => id,
            None if timestamp == 0 => return Err(HashRatchetError::NoKeyId),
            None => self::key_id(&group_id, timestamp, &key).to_vec(),
        };
        Ok(RatchetKey { group_id, timestamp, key, key_id })
    }

    /// The group (community id bytes).
    #[must_use]
    pub fn group_id(&self) -> &[u8] {
        &self.group_id
    }

    /// The key's timestamp.
    #[must_use]
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The key's id (what the header carries).
    #[must_use]
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The raw key material.
    #[must_use]
    pub fn material(&self) -> &[u8] {
        &self.key
    }

    /// `uint32(timestamp)`: the header's `deprecated_key_id`.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // status-go truncates the same way
    pub fn deprecated_key_id(&self) -> u32 {
        self.timestamp as u32
    }

    fn names(&self, header: &HrHeader) -> bool {
        (!header.key_id.is_empty() && header.key_id == self.key_id)
            || (header.deprecated_key_id != 0
                && header.deprecated_key_id == self.deprecated_key_id()
                && header.group_id == self.group_id)
    }
}

/// Where a key's chain is: the last sequence number used and its hash (status-go's
/// `hash_ratchet_encryption_cache` row). [`Chain::default`] is a key not used yet.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Chain {
    /// The last `seq_no` used (0: none).
    pub seq_no: u32,
    /// The hash stored under `seq_no` (`None` with `seq_no` 0).
    pub hash: Option<[u8; 32]>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("seq_no", &self.seq_no).finish_non_exhaustive()
    }
}

/// Wraps `plaintext` as status-go's `BuildHashRatchetMessage` does with `key` whose chain is at
/// `chain` (advanced by one); returns the encoded `ProtocolMessage`. `nonce` is
/// [`NonceSource::Random`] in production.
///
/// # Errors
/// [`HashRatchetError::Exhausted`], [`HashRatchetError::Encrypt`].
pub fn wrap(
    key: &RatchetKey,
    chain: &mut Chain,
    installation_id: &str,
    plaintext: &[u8],
    nonce: &NonceSource,
) -> Result<Vec<u8>, HashRatchetError> {
    let seq_no = chain.seq_no.checked_add(1).ok_or(HashRatchetError::Exhausted(chain.seq_no))?;
    let hash = match &chain.hash {
        Some(hash) if chain.seq_no > 0 => keccak256(hash),
        _ => message_key(&key.key, seq_no),
    };
    let payload = chs_waku_payload::encrypt_symmetric(&SymmetricKey::from_bytes(hash), plaintext, nonce)
        .map_err(|e| HashRatchetError::Encrypt(e.to_string()))?;
    let mut message = ProtocolMessage { installation_id: installation_id.to_owned(), ..ProtocolMessage::default() };
    message.encrypted_message.insert(
        NO_INSTALLATION_ID.to_owned(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader {
                deprecated_key_id: key.deprecated_key_id(),
                seq_no,
                group_id: key.group_id.clone(),
                key_id: key.key_id.clone(),
                keys: None,
            }),
            payload,
            ..EncryptedMessageProtocol::default()
        },
    );
    *chain = Chain { seq_no, hash: Some(hash) };
    Ok(message.encode_to_vec())
}

/// What [`unwrap`] opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwrapped {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The header's key id, hex.
    pub key_id: String,
    /// The header's sequence number.
    pub seq_no: u32,
}

/// Opens a hash-ratchet `ProtocolMessage` (an archive or index status-go wrapped) with whichever
/// of `keys` its header names, as `DecryptPayload`/`DecryptWithHR` do for a reader that is not
/// the sender (`encrypted_message["none"]`).
///
/// # Errors
/// [`HashRatchetError::NotProtocolMessage`], [`HashRatchetError::NotHashRatchet`],
/// [`HashRatchetError::UnknownKey`], [`HashRatchetError::SeqNoTooHigh`],
/// [`HashRatchetError::Decrypt`].
pub fn unwrap(keys: &[RatchetKey], bytes: &[u8]) -> Result<Unwrapped, HashRatchetError> {
    let message = ProtocolMessage::decode(bytes).map_err(|e| HashRatchetError::NotProtocolMessage(e.to_string()))?;
    let encrypted = message.encrypted_message.get(NO_INSTALLATION_ID).ok_or(HashRatchetError::NotHashRatchet)?;
    let header = encrypted.hr_header.as_ref().ok_or(HashRatchetError::NotHashRatchet)?;
    let key_id_hex = hex::encode(&header.key_id);
    if header.seq_no == 0 {
        return Ok(Unwrapped { plaintext: encrypted.payload.clone(), key_id: key_id_hex, seq_no: 0 });
    }
    let key = keys.iter().find(|k| k.names(header)).ok_or_else(|| HashRatchetError::UnknownKey {
        key_id: key_id_hex.clone(),
        group_id: hex::encode(&header.group_id),
    })?;
    if header.seq_no > MAX_SEQ_NO_DELTA {
        return Err(HashRatchetError::SeqNoTooHigh(header.seq_no));
    }
    let aes = SymmetricKey::from_bytes(message_key(&key.key, header.seq_no));
    let plaintext = chs_waku_payload::decrypt_symmetric(&aes, &encrypted.payload)
        .map_err(|_| HashRatchetError::Decrypt { key_id: hex::encode(&key.key_id), seq_no: header.seq_no })?;
    Ok(Unwrapped { plaintext, key_id: key_id_hex, seq_no: header.seq_no })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python 3 (`cryptography` 48.0.0 for AES-GCM, a pure-Python
    /// Keccak-f[1600] checked against Keccak-256("") = c5d246…a470) from the formulas of
    /// status-go's `helpers.go` and `encryptor.go`: `crates/chs-status/vectors/hash_ratchet.py` prints these.
    const GROUP: &str = "02b3c7fbd5d2e1a5e2e8f5e0c1b2a3d4e5f60718293a4b5c6d7e8f9012345678ab";
    const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const TIMESTAMP: u64 = 1_733_356_800_123;
    const KEY_ID: &str = "da1375f761e2beb0417922e5b2e3097dc940a7b3245520f43b3cd8d9de7eabd8";
    const KEY_SEQ_3: &str = "bf45a48724afa3b67a359ffe718f8ea60712b4915d64ed5c35532276bda9a17a";
    const NONCE: &str = "0c0d0e0f1011121314151617";
    const PLAINTEXT: &str = "hello archive";
    /// AES-256-GCM(keccak256³(KEY), NONCE, PLAINTEXT) ‖ NONCE: the payload at seq_no 3.
    const PAYLOAD_SEQ_3: &str = "8c7c6fb6ed4763e4898ae27821ce4916af0f5af1d075fd4cf3931961d50c0d0e0f1011121314151617";

    fn vector_key() -> RatchetKey {
        RatchetKey::new(hex::decode(GROUP).unwrap(), TIMESTAMP, hex::decode(KEY).unwrap(), None).unwrap()
    }

    #[test]
    fn key_id_and_message_key_match_the_independent_vector() {
        assert_eq!(hex::encode(vector_key().key_id()), KEY_ID);
        assert_eq!(hex::encode(message_key(&hex::decode(KEY).unwrap(), 3)), KEY_SEQ_3);
    }

    #[test]
    fn wrap_at_seq_3_gives_the_independent_ciphertext_and_header() {
        let key = vector_key();
        let mut chain = Chain::default();
        let nonce = NonceSource::Fixed(hex::decode(NONCE).unwrap().try_into().unwrap());
        for _ in 0..2 {
            wrap(&key, &mut chain, "inst", b"x", &nonce).unwrap();
        }
        let bytes = wrap(&key, &mut chain, "inst", PLAINTEXT.as_bytes(), &nonce).unwrap();
        assert_eq!(chain.seq_no, 3);
        let message = ProtocolMessage::decode(bytes.as_slice()).unwrap();
        assert_eq!(message.installation_id, "inst");
        let hr = &message.encrypted_message["none"];
        let header = hr.hr_header.as_ref().unwrap();
        assert_eq!(header.seq_no, 3);
        assert_eq!(header.deprecated_key_id, TIMESTAMP as u32);
        assert_eq!(hex::encode(&header.group_id), GROUP);
        assert_eq!(hex::encode(&header.key_id), KEY_ID);
        assert_eq!(hex::encode(&hr.payload), PAYLOAD_SEQ_3);
        let opened = unwrap(&[key], &bytes).unwrap();
        assert_eq!(opened.plaintext, PLAINTEXT.as_bytes());
        assert_eq!(opened.seq_no, 3);
    }

    #[test]
    fn a_chain_restarted_from_its_saved_state_continues() {
        let key = vector_key();
        let mut chain = Chain::default();
        wrap(&key, &mut chain, "i", b"a", &NonceSource::Random).unwrap();
        let saved = chain;
        let mut resumed = Chain { seq_no: saved.seq_no, hash: None };
        let bytes = wrap(&key, &mut resumed, "i", b"b", &NonceSource::Random).unwrap();
        assert_eq!(resumed, Chain { seq_no: 2, hash: Some(message_key(key.material(), 2)) });
        assert_eq!(unwrap(std::slice::from_ref(&key), &bytes).unwrap().plaintext, b"b");
    }

    #[test]
    fn unwrap_refuses_unknown_keys_wrong_material_and_high_seq_numbers() {
        let key = vector_key();
        let mut chain = Chain::default();
        let bytes = wrap(&key, &mut chain, "i", b"a", &NonceSource::Random).unwrap();
        assert!(matches!(unwrap(&[], &bytes), Err(HashRatchetError::UnknownKey { .. })));
        // Same id (given explicitly), other material: the payload does not open.
        let wrong =
            RatchetKey::new(key.group_id().to_vec(), TIMESTAMP, vec![2; 32], Some(key.key_id().to_vec())).unwrap();
        assert!(matches!(unwrap(&[wrong], &bytes), Err(HashRatchetError::Decrypt { .. })));
        // By (deprecated key id, group) when the header has no key id.
        let mut message = ProtocolMessage::decode(bytes.as_slice()).unwrap();
        fn header(m: &mut ProtocolMessage) -> &mut HrHeader {
            m.encrypted_message.get_mut("none").unwrap().hr_header.as_mut().unwrap()
        }
        header(&mut message).key_id.clear();
        assert_eq!(unwrap(std::slice::from_ref(&key), &message.encode_to_vec()).unwrap().plaintext, b"a");
        header(&mut message).seq_no = MAX_SEQ_NO_DELTA + 1;
        assert_eq!(unwrap(&[key], &message.encode_to_vec()), Err(HashRatchetError::SeqNoTooHigh(MAX_SEQ_NO_DELTA + 1)));
        assert!(matches!(
            unwrap(&[], b"\x0a\x01"),
            Err(HashRatchetError::NotProtocolMessage(_) | HashRatchetError::NotHashRatchet)
        ));
    }
}
