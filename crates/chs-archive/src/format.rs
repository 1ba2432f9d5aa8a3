//! The byte format: padding arithmetic, archive ids, and the `index`/archive codecs.
//!
//! Everything here is pure (no I/O) and follows status-go's `manager_archive_file.go` byte for byte
//! (status-go-archives.md §3-5, §15 items 1-4).

use chs_proto::Message as _;
use chs_proto::encryption::ProtocolMessage;
use chs_proto::protobuf::{
    WakuMessageArchive, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata,
};
use sha3::Digest as _;

use crate::Topic;

/// status-go's piece length (`pieceLength = 100 * 1024`): every archive is padded to a multiple of it.
pub const PIECE_LENGTH: u64 = 100 * 1024;

/// status-go's `maxArchiveSizeInBytes`: the cap on Σ(len(payload) + len(sig)) of one archive.
pub const MAX_ARCHIVE_SIZE: u64 = 30_000_000;

/// status-go's `messageArchiveInterval`: 7 days, in seconds.
pub const DEFAULT_INTERVAL_SECS: u64 = 7 * 24 * 60 * 60;

/// `ProtocolMessage.encrypted_message`: present in every hash-ratchet-encrypted archive or index.
const PROTOCOL_MESSAGE_ENCRYPTED_FIELD: u32 = 101;
/// `ProtocolMessage.public_message`.
const PROTOCOL_MESSAGE_PUBLIC_FIELD: u32 = 102;

/// Padding of one encoded archive of `raw` bytes, exactly as status-go computes it
/// (status-go-archives.md §4.7, §15 item 1 R): returns `(padding, size)` with `size = raw + padding`.
///
/// An encoding that is an exact multiple of the piece length *and* larger than one piece gets a
/// whole extra piece of zeros; one of exactly one piece gets none. `piece_length` must be > 0
/// (the builder checks it); 0 is treated as 1 here so that the function never panics.
#[must_use]
pub fn padding(raw: u64, piece_length: u64) -> (u64, u64) {
    let piece = piece_length.max(1);
    if raw > piece {
        let size = raw.saturating_add(piece - raw % piece);
        (size - raw, size)
    } else {
        (piece - raw, piece)
    }
}

/// The archive id status-go uses as index key: `"0x"` + lowercase hex of Keccak-256 of the encoded
/// index metadata (zero fields omitted; status-go-archives.md §4.8, §15 item 2 R).
#[must_use]
pub fn archive_id(meta: &WakuMessageArchiveIndexMetadata) -> String {
    let digest = sha3::Keccak256::digest(meta.encode_to_vec());
    format!("0x{}", hex::encode(digest))
}

/// The metadata status-go writes into an archive and its index entry: `from`, `to` (seconds) and
/// all `topics` in argument order; `version` stays unset.
#[must_use]
pub fn archive_metadata(from: u64, to: u64, topics: &[Topic]) -> WakuMessageArchiveMetadata {
    WakuMessageArchiveMetadata { version: 0, from, to, content_topic: topics.iter().map(|t| t.to_vec()).collect() }
}

/// Encodes an index with its entries sorted by key (prost's `BTreeMap`), the deterministic choice of
/// §15 item 3 (status-go writes Go map order, which readers must and do accept).
#[must_use]
pub fn encode_index(index: &WakuMessageArchiveIndex) -> Vec<u8> {
    index.encode_to_vec()
}

/// Why `index` or archive bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are a hash-ratchet-encrypted `ProtocolMessage` (status-go's encrypted communities,
    /// §3.4); decrypting needs the community's hash-ratchet keys, which this crate does not have.
    #[error("encrypted ProtocolMessage (installation id {installation_id:?}); decryption is not supported")]
    Encrypted {
        /// The sender's installation id in the `ProtocolMessage`.
        installation_id: String,
    },
    /// The bytes are not a valid protobuf of the expected message.
    #[error("not a valid {what} protobuf: {reason}")]
    Malformed {
        /// Which message was expected.
        what: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// A valid protobuf, but with a top-level field status-go never writes.
    #[error("{what} has unexpected top-level field {field}")]
    UnknownField {
        /// Which message was expected.
        what: &'static str,
        /// The field number.
        field: u32,
    },
}

/// Decodes an `index` file (a `WakuMessageArchiveIndex`), accepting any entry order.
///
/// Empty input is an empty index. An encrypted index is recognised (an empty decoded map from
/// non-empty input, or a top-level `ProtocolMessage` field) and reported as [`DecodeError::Encrypted`].
///
/// # Errors
/// [`DecodeError`] naming what is wrong; never panics on arbitrary bytes.
pub fn decode_index(bytes: &[u8]) -> Result<WakuMessageArchiveIndex, DecodeError> {
    const WHAT: &str = "WakuMessageArchiveIndex";
    if bytes.is_empty() {
        return Ok(WakuMessageArchiveIndex::default());
    }
    if let Some(field) = unexpected_top_level_field(bytes, &[1]) {
        return Err(as_protocol_message(bytes).unwrap_or(DecodeError::UnknownField { what: WHAT, field }));
    }
    match WakuMessageArchiveIndex::decode(bytes) {
        Ok(index) if index.archives.is_empty() => {
            // status-go's own detection (§5.1 step 3): non-empty input that decodes to nothing.
            Err(as_protocol_message(bytes).unwrap_or_else(|| DecodeError::Malformed {
                what: WHAT,
                reason: "non-empty input without archive entries".into(),
            }))
        }
        Ok(index) => Ok(index),
        Err(err) => Err(DecodeError::Malformed { what: WHAT, reason: err.to_string() }),
    }
}

/// Decodes one archive (the `size - padding` bytes at its offset).
///
/// Encrypted archives are recognised robustly (§15 item 4 F/compat): a top-level field other than
/// status-go's 1-3 (in particular `ProtocolMessage.encrypted_message` = 101) means the bytes are not
/// a plaintext archive, even when they happen to parse as one; status-go's own fallback (parse
/// failure, then `ProtocolMessage`) is kept as well.
///
/// # Errors
/// [`DecodeError`] naming what is wrong; never panics on arbitrary bytes.
pub fn decode_archive(bytes: &[u8]) -> Result<WakuMessageArchive, DecodeError> {
    const WHAT: &str = "WakuMessageArchive";
    if let Some(field) = unexpected_top_level_field(bytes, &[1, 2, 3]) {
        return Err(as_protocol_message(bytes).unwrap_or(DecodeError::UnknownField { what: WHAT, field }));
    }
    WakuMessageArchive::decode(bytes).map_err(|err| {
        as_protocol_message(bytes).unwrap_or_else(|| DecodeError::Malformed { what: WHAT, reason: err.to_string() })
    })
}

/// What a hash-ratchet-wrapped `index` or archive says about its key, readable without the key.
///
/// status-go wraps the index and every archive of an encrypted (token-gated) community with
/// `proto.Marshal(BuildHashRatchetMessage(community id, bytes).Message)`
/// (`protocol/communities/manager_archive_file.go` in 2024; `pkg/messaging/core.go`
/// `buildHashRatchetMessage` in 2026): a `ProtocolMessage{installation_id, encrypted_message =
/// {"none": {hr_header{seq_no, group_id = community id, key_id}, payload = ciphertext}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HashRatchetWrapping {
    /// The owner's installation id.
    pub installation_id: String,
    /// The hash-ratchet group: the 33-byte community id (or a channel's chat id), `0x` hex.
    pub group_id: String,
    /// The key id, `0x` hex (empty for legacy keys that only have `deprecated_key_id`).
    pub key_id: String,
    /// The ratchet sequence number (0 would mean plaintext).
    pub seq_no: u32,
}

impl std::fmt::Display for HashRatchetWrapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrapped with the hash-ratchet key {} of group {} (seq {}, installation {:?})",
            if self.key_id.is_empty() { "(legacy)" } else { &self.key_id },
            self.group_id,
            self.seq_no,
            self.installation_id
        )
    }
}

/// The [`HashRatchetWrapping`] of `bytes`, if they are a hash-ratchet `ProtocolMessage` (what
/// [`decode_index`] and [`decode_archive`] report as [`DecodeError::Encrypted`]); `None` for
/// anything else, including a `ProtocolMessage` without a hash-ratchet header.
#[must_use]
pub fn hash_ratchet_wrapping(bytes: &[u8]) -> Option<HashRatchetWrapping> {
    let msg = ProtocolMessage::decode(bytes).ok()?;
    let encrypted = msg.encrypted_message.get("none").or_else(|| msg.encrypted_message.values().next())?;
    let header = encrypted.hr_header.as_ref()?;
    let hex0x = |b: &[u8]| if b.is_empty() { String::new() } else { format!("0x{}", hex::encode(b)) };
    Some(HashRatchetWrapping {
        installation_id: msg.installation_id,
        group_id: hex0x(&header.group_id),
        key_id: hex0x(&header.key_id),
        seq_no: header.seq_no,
    })
}

/// `Some(Encrypted)` if `bytes` decode as a `ProtocolMessage` carrying an encrypted or public payload.
pub(crate) fn as_protocol_message(bytes: &[u8]) -> Option<DecodeError> {
    let msg = ProtocolMessage::decode(bytes).ok()?;
    (!msg.encrypted_message.is_empty() || !msg.public_message.is_empty())
        .then_some(DecodeError::Encrypted { installation_id: msg.installation_id })
}

/// The first top-level field whose number is not in `known` (or is a `ProtocolMessage` field),
/// if the bytes are a readable sequence of protobuf fields; `None` otherwise or if all are known.
pub(crate) fn unexpected_top_level_field(bytes: &[u8], known: &[u32]) -> Option<u32> {
    let mut fields = FieldScanner { bytes, pos: 0 };
    while let Some(Ok(field)) = fields.next() {
        if field.number == PROTOCOL_MESSAGE_ENCRYPTED_FIELD
            || field.number == PROTOCOL_MESSAGE_PUBLIC_FIELD
            || !known.contains(&field.number)
        {
            return Some(field.number);
        }
    }
    None
}

/// Counts top-level occurrences of field `number` (e.g. messages of an archive) without decoding
/// them; `None` if the bytes are not a readable sequence of fields.
pub(crate) fn count_top_level_field(bytes: &[u8], number: u32) -> Option<u64> {
    let mut count = 0u64;
    for field in (FieldScanner { bytes, pos: 0 }) {
        if field.ok()?.number == number {
            count += 1;
        }
    }
    Some(count)
}

/// One top-level protobuf field: number and wire type.
#[derive(Debug, Clone, Copy)]
struct Field {
    number: u32,
}

/// A minimal, bounds-checked protobuf field walker (varint, 64-bit, length-delimited, 32-bit).
#[derive(Debug)]
struct FieldScanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl FieldScanner<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        (end <= self.bytes.len()).then(|| self.pos = end)
    }
}

impl Iterator for FieldScanner<'_> {
    type Item = Result<Field, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let parsed = (|| {
            let key = self.varint()?;
            let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => self.skip(8)?,
                2 => {
                    let len = self.varint()?;
                    self.skip(len)?;
                }
                5 => self.skip(4)?,
                _ => return None,
            }
            Some(Field { number })
        })();
        match parsed {
            Some(field) => Some(Ok(field)),
            None => {
                self.pos = self.bytes.len();
                Some(Err(()))
            }
        }
    }
}

/// Streaming encoder of one `WakuMessageArchive`: the metadata field first (here), then one
/// `messages` field per message (encoded in place by the builder), byte-identical to prost's (and Go's) encoding of the whole struct.
#[derive(Debug, Default)]
pub(crate) struct ArchiveEncoder {
    scratch: Vec<u8>,
}

impl ArchiveEncoder {
    /// The bytes that open an archive: field 2 (metadata).
    pub(crate) fn header(&mut self, meta: &WakuMessageArchiveMetadata) -> &[u8] {
        self.scratch.clear();
        chs_proto::prost::encoding::message::encode(2, meta, &mut self.scratch);
        &self.scratch
    }
}

/// Why an index entry cannot be fetched from a `data` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The archive without its padding is larger than the reader accepts.
    #[error("entry of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Archive bytes (size − padding).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The entry is empty, all padding, or reaches past the end of `data`.
    #[error("entry offset {offset} size {size} padding {padding} does not fit `data` ({data_len} bytes)")]
    OutOfBounds {
        /// Byte offset in `data`.
        offset: u64,
        /// Bytes, padding included.
        size: u64,
        /// Padding bytes.
        padding: u64,
        /// Length of `data`.
        data_len: u64,
    },
}

/// Checks an index entry (`offset`, `size` with `padding`) against a `data` file of `data_len`
/// bytes and an archive size limit, before any of its bytes are fetched or read: an index from a
/// peer can claim anything.
///
/// # Errors
/// [`EntryError`] naming what does not fit.
pub fn check_entry(
    offset: u64,
    size: u64,
    padding: u64,
    data_len: u64,
    max_archive_bytes: u64,
) -> Result<(), EntryError> {
    let archive = size.saturating_sub(padding);
    if archive > max_archive_bytes {
        return Err(EntryError::TooLarge { size: archive, max: max_archive_bytes });
    }
    let fits = size > 0 && padding < size && offset.checked_add(size).is_some_and(|end| end <= data_len);
    if fits { Ok(()) } else { Err(EntryError::OutOfBounds { offset, size, padding, data_len }) }
}
