//! Today's status-go Logos Storage index (PR 7486): each archive (the encoded
//! `WakuMessageArchive`, no padding) is its own CID, and the index
//! `LogosStorageWakuMessageArchiveIndex{map<string, LogosStorageWakuMessageArchiveIndexMetadata>
//! archives = 1}` maps each archive id to `{version = 1, metadata = 2, cid = 3}`.
//!
//! The archive id is `"0x"` + lowercase hex Keccak-256 of the encoded entry with `version` unset
//! (status-go: `crypto.Keccak256Hash(proto.Marshal(&{Metadata, Cid})).String()`). Pure: no I/O.

use std::collections::BTreeSet;

use chs_proto::Message as _;
pub use chs_proto::protobuf::{
    LogosStorageWakuMessageArchiveIndex, LogosStorageWakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata,
};
use sha3::Digest as _;

use crate::format::{DecodeError, as_protocol_message, unexpected_top_level_field};

/// The archive id of `entry`: `"0x"` + hex Keccak-256 of its encoding with `version` unset.
#[must_use]
pub fn logos_archive_id(entry: &LogosStorageWakuMessageArchiveIndexMetadata) -> String {
    let unversioned = LogosStorageWakuMessageArchiveIndexMetadata { version: 0, ..entry.clone() };
    format!("0x{}", hex::encode(sha3::Keccak256::digest(unversioned.encode_to_vec())))
}

/// The index entry of an archive with `metadata` uploaded as `cid`, and its id: what status-go's
/// owner adds to the index for each new archive.
#[must_use]
pub fn logos_entry(
    metadata: WakuMessageArchiveMetadata,
    cid: &str,
) -> (String, LogosStorageWakuMessageArchiveIndexMetadata) {
    let entry = LogosStorageWakuMessageArchiveIndexMetadata { version: 0, metadata: Some(metadata), cid: cid.into() };
    (logos_archive_id(&entry), entry)
}

/// Encodes a Logos Storage index with its entries sorted by key (prost's `BTreeMap`; status-go
/// writes Go map order, which [`decode_logos_index`] accepts).
#[must_use]
pub fn encode_logos_index(index: &LogosStorageWakuMessageArchiveIndex) -> Vec<u8> {
    index.encode_to_vec()
}

/// Decodes a Logos Storage index in any entry order. Empty input is an empty index; a
/// hash-ratchet-wrapped index is reported as [`DecodeError::Encrypted`].
///
/// # Errors
/// [`DecodeError`] naming what is wrong; never panics on arbitrary bytes.
pub fn decode_logos_index(bytes: &[u8]) -> Result<LogosStorageWakuMessageArchiveIndex, DecodeError> {
    const WHAT: &str = "LogosStorageWakuMessageArchiveIndex";
    if bytes.is_empty() {
        return Ok(LogosStorageWakuMessageArchiveIndex::default());
    }
    if let Some(field) = unexpected_top_level_field(bytes, &[1]) {
        return Err(as_protocol_message(bytes).unwrap_or(DecodeError::UnknownField { what: WHAT, field }));
    }
    LogosStorageWakuMessageArchiveIndex::decode(bytes)
        .map_err(|err| DecodeError::Malformed { what: WHAT, reason: err.to_string() })
}

/// The ids of `index` not in `have`: what a member still fetches ("nothing new" is a set
/// comparison, not a count).
#[must_use]
pub fn missing_ids<'a>(index: &'a LogosStorageWakuMessageArchiveIndex, have: &BTreeSet<String>) -> Vec<&'a str> {
    index.archives.keys().filter(|id| !have.contains(*id)).map(String::as_str).collect()
}
