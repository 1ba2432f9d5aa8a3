//! Every layer of a received message, for inspection (`chs status decode --verbose`).

use chs_proto::waku::{WakuMessage, message_hash};
use chs_waku_payload::PublicKey;

use crate::amm::type_name;
use crate::envelope::{OpenedPayload, StatusEnvelope, Wrapper};
use crate::ids::Topic;

/// What each layer of an accepted message held. Bytes serialise as `0x` hex, keys as
/// `0x` + compressed hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageLayers {
    /// L0: the pubsub topic it arrived on.
    pub pubsub_topic: String,
    /// L0: `WakuMessage.content_topic`.
    pub content_topic: String,
    /// L0: the 4-byte topic.
    pub topic: Topic,
    /// The chat whose key opened it.
    pub chat_id: String,
    /// L0: `WakuMessage.version`.
    pub version: Option<u32>,
    /// L0: `WakuMessage.timestamp`, Unix nanoseconds.
    pub timestamp_ns: Option<i64>,
    /// L0: `WakuMessage.meta`.
    #[serde(serialize_with = "crate::serde_hex::opt_bytes")]
    pub meta: Option<Vec<u8>>,
    /// L0: `WakuMessage.ephemeral`.
    pub ephemeral: Option<bool>,
    /// L0: the 14/WAKU2 deterministic message hash.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub message_hash: [u8; 32],
    /// L1: the 26/WAKU2 flags byte.
    pub payload_flags: u8,
    /// L1: length of the payload data.
    pub payload_data_len: usize,
    /// L1: length of the padding.
    pub padding_len: usize,
    /// L1: the payload signer.
    #[serde(serialize_with = "crate::serde_hex::key")]
    pub transport_signer: PublicKey,
    /// L3: how the AMM was carried.
    pub wrapper: Wrapper,
    /// L4: AMM type number.
    pub amm_type: i32,
    /// L4: AMM type name.
    pub amm_type_name: String,
    /// L4: AMM signature.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub amm_signature: Vec<u8>,
    /// L4: AMM signer, if signed.
    #[serde(serialize_with = "crate::serde_hex::opt_key")]
    pub amm_signer: Option<PublicKey>,
    /// L5: the AMM payload (the inner message).
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub inner: Vec<u8>,
    /// status-go's message id.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub message_id: [u8; 32],
}

impl MessageLayers {
    /// Collects the layers of a message that got through [`crate::envelope::unwrap_status`].
    #[must_use]
    pub fn collect(
        message: &WakuMessage,
        pubsub_topic: &str,
        opened: &OpenedPayload<'_>,
        status: &StatusEnvelope,
    ) -> Self {
        Self {
            pubsub_topic: pubsub_topic.to_owned(),
            content_topic: message.content_topic.clone(),
            topic: opened.chat_key.topic,
            chat_id: opened.chat_key.chat_id.clone(),
            version: message.version,
            timestamp_ns: message.timestamp,
            meta: message.meta.clone(),
            ephemeral: message.ephemeral,
            message_hash: message_hash(pubsub_topic, message),
            payload_flags: opened.payload.flags(),
            payload_data_len: opened.payload.data().len(),
            padding_len: opened.payload.padding().len(),
            transport_signer: opened.transport_signer,
            wrapper: status.wrapper.clone(),
            amm_type: status.amm.r#type,
            amm_type_name: type_name(status.amm.r#type),
            amm_signature: status.amm.signature.clone(),
            amm_signer: status.amm_signer,
            inner: status.amm.payload.clone(),
            message_id: status.message_id,
        }
    }
}
