//! Reading history: archived messages down to the `ApplicationMetadataMessage` and chat text;
//! and building the status-format chat messages the demo's members post.

use chs_proto::protobuf::{
    ChatMessage, CommunityDescription, CommunityMessageArchiveMagnetlink, MessageType, PinMessage,
    WakuMessage as ArchivedMessage, chat_message::ContentType,
};
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_waku_payload::{NonceSource, Padding, PublicKey, SecretKey};

use crate::amm::type_name;
use crate::envelope::{BuildError, BuiltMessage, EnvelopeParams, build_status_message, unwrap_status};
use crate::ids::{CommunityId, Topic};
use crate::keys::ChatKeyCache;
use crate::reject::RejectReason;

/// The readable part of a `ChatMessage`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatText {
    /// Message text.
    pub text: String,
    /// Sender's Unix milliseconds (informational).
    pub timestamp_ms: u64,
    /// The chat id inside the message.
    pub chat_id: String,
    /// `ChatMessage.content_type` (1 = text/plain).
    pub content_type: i32,
    /// `ChatMessage.message_type` (5 = community chat).
    pub message_type: i32,
    /// Id of the message replied to, if any.
    pub response_to: String,
    /// Sender display name, if set.
    pub display_name: String,
}

/// One archived message, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// AMM type number.
    pub message_type: i32,
    /// AMM type name.
    pub type_name: String,
    /// The author: the AMM signer, else the payload signer.
    #[serde(serialize_with = "crate::serde_hex::key")]
    pub signer: PublicKey,
    /// Whether the AMM carried its own signature.
    pub amm_signed: bool,
    /// The payload signer, from the archived `sig`.
    #[serde(serialize_with = "crate::serde_hex::key")]
    pub transport_signer: PublicKey,
    /// The inner message's clock (field 1), for the types whose layout is known.
    pub clock: Option<u64>,
    /// status-go's message id.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub message_id: [u8; 32],
    /// Archived timestamp, Unix seconds.
    pub timestamp_s: u64,
    /// The 4-byte topic.
    pub topic: Topic,
    /// The chat text, for `CHAT_MESSAGE`.
    pub chat: Option<ChatText>,
}

/// Decodes an archived message as status-go's import does: `sig` must be an uncompressed key
/// (the transport signer), then the Status layers of `payload`.
///
/// # Errors
/// The [`RejectReason`] of the first layer that fails.
pub fn decode_archived(archived: &ArchivedMessage) -> Result<HistoryEntry, RejectReason> {
    let result = decode_inner(archived);
    if let Err(reason) = &result {
        tracing::debug!(hash = %hex::encode(&archived.hash), %reason, "archived message unreadable");
    }
    result
}

fn decode_inner(archived: &ArchivedMessage) -> Result<HistoryEntry, RejectReason> {
    let sig_len = archived.sig.len();
    if sig_len != 65 || archived.sig[0] != 4 {
        return Err(RejectReason::BadArchivedSig { len: sig_len });
    }
    let transport_signer =
        PublicKey::from_sec1_bytes(&archived.sig).map_err(|_| RejectReason::BadArchivedSig { len: sig_len })?;
    let status = unwrap_status(&archived.payload, &transport_signer)?;
    let payload = status.amm.payload.as_slice();
    let malformed = |error: chs_proto::prost::DecodeError| RejectReason::MalformedInner { detail: error.to_string() };
    let mut chat = None;
    let clock = match ApplicationMetadataMessageType::try_from(status.amm.r#type) {
        Ok(ApplicationMetadataMessageType::ChatMessage) => {
            let message = ChatMessage::decode(payload).map_err(malformed)?;
            chat = Some(ChatText {
                text: message.text,
                timestamp_ms: message.timestamp,
                chat_id: message.chat_id,
                content_type: message.content_type,
                message_type: message.message_type,
                response_to: message.response_to,
                display_name: message.display_name,
            });
            Some(message.clock)
        }
        Ok(ApplicationMetadataMessageType::PinMessage) => Some(PinMessage::decode(payload).map_err(malformed)?.clock),
        Ok(ApplicationMetadataMessageType::CommunityDescription) => {
            Some(CommunityDescription::decode(payload).map_err(malformed)?.clock)
        }
        Ok(ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink) => {
            Some(CommunityMessageArchiveMagnetlink::decode(payload).map_err(malformed)?.clock)
        }
        _ => None,
    };
    Ok(HistoryEntry {
        message_type: status.amm.r#type,
        type_name: type_name(status.amm.r#type),
        signer: status.signer,
        amm_signed: status.amm_signer.is_some(),
        transport_signer,
        clock,
        message_id: status.message_id,
        timestamp_s: archived.timestamp,
        topic: Topic::from_slice_lenient(&archived.topic),
        chat,
    })
}

/// What a member needs to post a chat message in a community channel.
#[derive(Debug, Clone)]
pub struct ChatMessageParams<'a> {
    /// The author's key (signs the AMM and the 26/WAKU2 payload).
    pub author: &'a SecretKey,
    /// The community.
    pub community: &'a CommunityId,
    /// The channel's uuid; the chat id is `<community id><uuid>`.
    pub channel_uuid: &'a str,
    /// Message text.
    pub text: &'a str,
    /// Lamport clock.
    pub clock: u64,
    /// Unix milliseconds.
    pub timestamp_ms: u64,
    /// Optional display name.
    pub display_name: &'a str,
    /// The author's installation id.
    pub installation_id: &'a str,
    /// Optional bundle of the author.
    pub bundle: Option<chs_proto::encryption::Bundle>,
    /// `WakuMessage.timestamp`, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Padding source (random in production).
    pub padding: Padding,
    /// Nonce source (random in production).
    pub nonce: NonceSource,
}

/// Builds a status-format community chat message: `ChatMessage` (text/plain, community chat)
/// in an AMM of type `CHAT_MESSAGE` signed by the author, in `ProtocolMessage.public_message`,
/// in a 26/WAKU2 payload signed by the author and encrypted with the channel's key.
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_chat_message(params: &ChatMessageParams<'_>, cache: &ChatKeyCache) -> Result<BuiltMessage, BuildError> {
    let chat_id = params.community.channel_chat_id(params.channel_uuid);
    let chat_key = cache.chat_key(&chat_id);
    let message = ChatMessage {
        clock: params.clock,
        timestamp: params.timestamp_ms,
        text: params.text.to_owned(),
        chat_id,
        message_type: MessageType::CommunityChat as i32,
        content_type: ContentType::TextPlain as i32,
        display_name: params.display_name.to_owned(),
        ..ChatMessage::default()
    };
    let envelope = EnvelopeParams {
        chat_key: &chat_key,
        transport_key: params.author,
        installation_id: params.installation_id,
        bundle: params.bundle.clone(),
        timestamp_ns: params.timestamp_ns,
        padding: params.padding.clone(),
        nonce: params.nonce,
    };
    build_status_message(message.encode_to_vec(), ApplicationMetadataMessageType::ChatMessage, params.author, &envelope)
}
