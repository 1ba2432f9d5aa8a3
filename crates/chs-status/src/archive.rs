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

impl CapturePolicy {
    /// What a control node archives: status-go's set. Readable messages must unwrap to a signed
    /// `ApplicationMetadataMessage`; segments and hash-ratchet-encrypted messages (token-gated
    /// communities and channels) are kept as they arrived, because status-go stores every
    /// message after Waku's symmetric layer and before its own encryption and segmentation
    /// layers are removed (`protocol/messenger.go` `handleRetrievedMessages`: `StoreWakuMessage`
    /// comes before `HandleMessages`). A member with the keys decrypts them on import.
    pub const CONTROL_NODE: Self = Self { require_amm_signature: true, keep_unverifiable: true };
}

impl Default for CapturePolicy {
    /// Strict: every archived message unwraps to a signed `ApplicationMetadataMessage` (what
    /// tools that show messages want; a control node uses [`CapturePolicy::CONTROL_NODE`]).
    fn default() -> Self {
        Self { require_amm_signature: true, keep_unverifiable: false }
    }
}

/// What the Status layers of an archived payload are, without any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// A `ProtocolMessage.public_message` or a bare `ApplicationMetadataMessage` (readable).
    Plain,
    /// A `SegmentMessage`: one piece of a larger payload (status-go segments payloads over
    /// ¾ of the Waku message limit, `protocol/common/message_segmentation.go`).
    Segment,
    /// A `ProtocolMessage` whose payload is in `encrypted_message` (hash-ratchet encrypted with
    /// the community's or channel's key, `protocol/common/message_sender.go` `sendCommunity`).
    HashRatchet,
}

impl PayloadKind {
    /// The kind of a decrypted 26/WAKU2 payload's data (an archived `WakuMessage.payload`),
    /// decided as status-go's receive path does: segment check first, then the encryption layer.
    #[must_use]
    pub fn of(data: &[u8]) -> Self {
        use chs_proto::Message as _;
        if crate::segment::detect_segment(data).is_some() {
            return Self::Segment;
        }
        match chs_proto::encryption::ProtocolMessage::decode(data) {
            Ok(protocol) if protocol.public_message.is_empty() && !protocol.encrypted_message.is_empty() => {
                Self::HashRatchet
            }
            _ => Self::Plain,
        }
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
/// unsigned, or (per `policy`) whose Status layers do not verify are not archived; with
/// [`CapturePolicy::CONTROL_NODE`] segments and hash-ratchet-encrypted messages are archived as
/// status-go archives them (see [`PayloadKind`]).
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
