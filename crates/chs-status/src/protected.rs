//! Protected (signed) pubsub topics: go-waku's `relay.SignMessage` and the relay validator
//! (`waku/v2/protocol/relay/validators.go`). Only communities with a protected shard use them.

use chs_proto::waku::WakuMessage;
use chs_waku_payload::{PublicKey, SecretKey, SignatureError};
use sha2::Digest as _;

/// Relay peers drop a protected message whose timestamp is further than this from their clock.
pub const MESSAGE_WINDOW_NS: i64 = 5 * 60 * 1_000_000_000;

/// Why a message fails the protected-topic validator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectedError {
    /// The timestamp is absent, zero, or more than 5 minutes from `now`.
    #[error("timestamp {timestamp_ns:?} is outside the 5-minute window around {now_ns}")]
    OutsideWindow {
        /// The message timestamp.
        timestamp_ns: Option<i64>,
        /// The validator's clock.
        now_ns: i64,
    },
    /// `meta` is not a valid signature by the topic key.
    #[error("meta is not a valid signature by the topic key")]
    Signature(#[source] SignatureError),
}

/// go-waku `msgHash`: `SHA-256(pubsub topic ‖ payload ‖ content topic ‖ LE64(timestamp) ‖
/// ephemeral byte)`. Note: little-endian and no `meta`, unlike the message hash.
#[must_use]
pub fn relay_hash(pubsub_topic: &str, message: &WakuMessage) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(pubsub_topic.as_bytes());
    hasher.update(&message.payload);
    hasher.update(message.content_topic.as_bytes());
    hasher.update(message.timestamp.unwrap_or(0).to_le_bytes());
    hasher.update([u8::from(message.ephemeral.unwrap_or(false))]);
    hasher.finalize().into()
}

/// go-waku `SignMessage`: sets `meta` to the 64-byte `R‖S` signature of [`relay_hash`] by the
/// topic key.
pub fn sign_protected(message: &mut WakuMessage, pubsub_topic: &str, topic_key: &SecretKey) {
    let signature = topic_key.sign_prehash(&relay_hash(pubsub_topic, message));
    message.meta = Some(signature[..64].to_vec());
}

/// go-waku's signed-topic validator: timestamp within 5 minutes of `now_ns` and `meta` a
/// low-S signature of [`relay_hash`] by the topic key.
///
/// # Errors
/// [`ProtectedError`] naming the failed check.
pub fn verify_protected(
    message: &WakuMessage,
    pubsub_topic: &str,
    topic_key: &PublicKey,
    now_ns: i64,
) -> Result<(), ProtectedError> {
    let timestamp = message.timestamp.unwrap_or(0);
    if timestamp == 0 || now_ns.abs_diff(timestamp) > MESSAGE_WINDOW_NS.unsigned_abs() {
        return Err(ProtectedError::OutsideWindow { timestamp_ns: message.timestamp, now_ns });
    }
    let meta = message.meta.as_deref().unwrap_or_default();
    topic_key.verify_prehash(&relay_hash(pubsub_topic, message), meta).map_err(ProtectedError::Signature)
}
