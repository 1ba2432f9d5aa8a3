//! What a control node stores from community traffic: status-go's archived `WakuMessage`.

use chs_proto::protobuf::WakuMessage as ArchivedMessage;
use chs_proto::waku::{WakuMessage, message_hash};

use crate::envelope::{open_envelope, unwrap_status};
use crate::keys::ChatKeyRing;
use crate::reject::{RejectKind, RejectReason};

/// How strict capture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturePolicy {
    /// Require the AMM to carry its own valid signature (status-go would also accept an
    /// unsigned AMM, attributing it to the payload signer).
    pub require_amm_signature: bool,
    /// Archive segments and hash-ratchet-encrypted messages although their AMM cannot be
    /// checked here (status-go archives them; readers need the other segments or the key).
    pub keep_unverifiable: bool,
}

impl Default for CapturePolicy {
    /// Strict: every archived message unwraps to a signed `ApplicationMetadataMessage`.
    fn default() -> Self {
        Self { require_amm_signature: true, keep_unverifiable: false }
    }
}

/// Turns a received 14/WAKU2 message into what status-go archives (`protocol/messenger.go`
/// `StoreWakuMessage` of the `types.Message` built by `wakuv2/api.go` `ToWakuMessage`):
///
/// * `sig`: the 26/WAKU2 payload signer's 65-byte uncompressed key;
/// * `timestamp`: `WakuMessage.timestamp` ns / 10⁹ as Go's `uint32(...)` conversion;
/// * `topic`: the 4-byte topic; `payload`, `padding`: the *decrypted* data and padding;
/// * `hash`: the 14/WAKU2 message hash on `pubsub_topic`; `third_party_id`: empty.
///
/// `ring` holds the keys of the community's channel chats ([`ChatKeyRing::for_channels`]):
/// status-go archives only those chats. Unlike status-go, messages that do not decrypt, are
/// unsigned, or (per `policy`) whose Status layers do not verify are not archived.
///
/// # Errors
/// The [`RejectReason`] why the message is not archived.
pub fn capture_for_archive(
    message: &WakuMessage,
    pubsub_topic: &str,
    ring: &ChatKeyRing,
    policy: CapturePolicy,
) -> Result<ArchivedMessage, RejectReason> {
    let result = capture_inner(message, pubsub_topic, ring, policy);
    if let Err(reason) = &result {
        tracing::debug!(
            content_topic = %message.content_topic,
            %reason,
            "message not archived"
        );
    }
    result
}

fn capture_inner(
    message: &WakuMessage,
    pubsub_topic: &str,
    ring: &ChatKeyRing,
    policy: CapturePolicy,
) -> Result<ArchivedMessage, RejectReason> {
    let opened = open_envelope(message, ring)?;
    match unwrap_status(opened.payload.data(), &opened.transport_signer) {
        Ok(status) => {
            if policy.require_amm_signature && status.amm_signer.is_none() {
                return Err(RejectReason::BadAmmSignature {
                    detail: "ApplicationMetadataMessage is not signed".to_owned(),
                });
            }
        }
        Err(reason)
            if policy.keep_unverifiable
                && matches!(reason.kind(), RejectKind::Segmented | RejectKind::EncryptedMessage) => {}
        Err(reason) => return Err(reason),
    }
    let timestamp_ns = message.timestamp.unwrap_or(0);
    // Go: `uint32(timestamp / int64(time.Second))`, truncating to the low 32 bits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let timestamp_s = (timestamp_ns / 1_000_000_000) as u32;
    Ok(ArchivedMessage {
        sig: opened.transport_signer.to_uncompressed().to_vec(),
        timestamp: u64::from(timestamp_s),
        topic: opened.chat_key.topic.as_bytes().to_vec(),
        payload: opened.payload.data().to_vec(),
        padding: opened.payload.padding().to_vec(),
        hash: message_hash(pubsub_topic, message).to_vec(),
        third_party_id: String::new(),
    })
}

/// [`capture_for_archive`] on an encoded 14/WAKU2 `WakuMessage` (what `chs store import` reads
/// from a capture file).
///
/// # Errors
/// [`RejectReason::MalformedWakuMessage`] if the bytes do not decode, else as
/// [`capture_for_archive`].
pub fn capture_encoded(
    encoded: &[u8],
    pubsub_topic: &str,
    ring: &ChatKeyRing,
    policy: CapturePolicy,
) -> Result<ArchivedMessage, RejectReason> {
    use chs_proto::Message as _;
    let message = WakuMessage::decode(encoded)
        .map_err(|error| RejectReason::MalformedWakuMessage { detail: error.to_string() })?;
    capture_for_archive(&message, pubsub_topic, ring, policy)
}
