//! Serde helpers: byte strings and keys as `0x`-prefixed lowercase hex.

use chs_waku_payload::PublicKey;

/// Bytes as `0x…`.
pub(crate) fn bytes<S: serde::Serializer>(value: &impl AsRef<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("0x{}", hex::encode(value.as_ref())))
}

/// Optional bytes as `0x…` or null.
pub(crate) fn opt_bytes<S: serde::Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => bytes(value, serializer),
        None => serializer.serialize_none(),
    }
}

/// A public key as `0x` + compressed hex (the form of community ids).
pub(crate) fn key<S: serde::Serializer>(value: &PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// An optional public key as `0x` + compressed hex, or null.
pub(crate) fn opt_key<S: serde::Serializer>(value: &Option<PublicKey>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}
