//! The generic Status envelope on Waku, both ways: `ApplicationMetadataMessage` →
//! `ProtocolMessage.public_message` → 26/WAKU2-PAYLOAD v1 → 14/WAKU2 `WakuMessage`.

use chs_proto::encryption::{Bundle, ProtocolMessage};
use chs_proto::protobuf::ApplicationMetadataMessage;
use chs_proto::waku::WakuMessage;
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_waku_payload::{
    DecodeError, DecodedPayload, EncodeError, EncodeOptions, NonceSource, Padding, PublicKey, SecretKey,
    encode_symmetric,
};

use crate::amm::{message_id, recover_amm_signer, sign_amm};
use crate::bundle::verify_bundle;
use crate::ids::Topic;
use crate::keys::{ChatKey, ChatKeyRing};
use crate::reject::RejectReason;
use crate::segment::{SEGMENTATION_THRESHOLD, detect_segment};

/// Building a message failed: only bad arguments or a broken RNG cause this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The 26/WAKU2 payload could not be encoded.
    #[error("cannot encode the 26/WAKU2 payload")]
    Encode(#[source] EncodeError),
    /// The `ProtocolMessage` needs segmentation, which is not implemented.
    #[error("ProtocolMessage of {len} bytes exceeds the {SEGMENTATION_THRESHOLD}-byte segmentation threshold")]
    TooLarge {
        /// Encoded length.
        len: usize,
    },
}

/// How to put an `ApplicationMetadataMessage` on a public/community chat.
#[derive(Debug, Clone)]
pub struct EnvelopeParams<'a> {
    /// The chat (topic and symmetric key) to send on.
    pub chat_key: &'a ChatKey,
    /// The key that signs the 26/WAKU2 payload: the sender's identity (status-go's `addSig`).
    pub transport_key: &'a SecretKey,
    /// The sender's installation (device) id; free-form, status-go uses a UUID.
    pub installation_id: &'a str,
    /// The sender's bundle, if any (optional; if present it must verify).
    pub bundle: Option<Bundle>,
    /// `WakuMessage.timestamp`, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Padding source (random in production).
    pub padding: Padding,
    /// Nonce source (random in production).
    pub nonce: NonceSource,
}

/// A built message, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuiltMessage {
    /// The 14/WAKU2 message.
    #[serde(skip)]
    pub waku_message: WakuMessage,
    /// Its chat id.
    pub chat_id: String,
    /// Its content topic.
    pub content_topic: String,
    /// status-go's message id: `Keccak-256(author key ‖ AMM bytes)`.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub message_id: [u8; 32],
}

impl BuiltMessage {
    /// The encoded `WakuMessage` bytes.
    #[must_use]
    pub fn encoded(&self) -> Vec<u8> {
        self.waku_message.encode_to_vec()
    }
}

/// `ProtocolMessage{installation_id, bundles, public_message}` (status-go `BuildPublicMessage`).
#[must_use]
pub fn wrap_public_message(installation_id: &str, bundle: Option<Bundle>, amm_bytes: Vec<u8>) -> ProtocolMessage {
    ProtocolMessage {
        installation_id: installation_id.to_owned(),
        bundles: bundle.into_iter().collect(),
        encrypted_message: std::collections::BTreeMap::new(),
        public_message: amm_bytes,
    }
}

/// The 14/WAKU2 message status-go's `PublicWakuAPI.Post` builds: version 1, `meta` present but
/// empty, `ephemeral` present and false.
#[must_use]
pub fn waku_message(payload: Vec<u8>, topic: &Topic, timestamp_ns: i64) -> WakuMessage {
    WakuMessage {
        payload,
        content_topic: topic.content_topic(),
        version: Some(1),
        timestamp: Some(timestamp_ns),
        meta: Some(Vec::new()),
        rate_limit_proof: None,
        ephemeral: Some(false),
    }
}

/// Puts an already-signed AMM into a `ProtocolMessage`, a signed and encrypted 26/WAKU2 payload
/// and a `WakuMessage`. `author` is the key whose signature the AMM carries (for the id).
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_from_amm(
    amm: &ApplicationMetadataMessage,
    author: &PublicKey,
    params: &EnvelopeParams<'_>,
) -> Result<BuiltMessage, BuildError> {
    let amm_bytes = amm.encode_to_vec();
    let id = message_id(author, &amm_bytes);
    let protocol_message =
        wrap_public_message(params.installation_id, params.bundle.clone(), amm_bytes).encode_to_vec();
    seal(protocol_message, id, params)
}

/// Like [`build_from_amm`] without the `ProtocolMessage`: status-go's `SkipEncryptionLayer`
/// (community descriptions, shard info), where the AMM bytes are the 26/WAKU2 payload data.
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_bare_amm(
    amm: &ApplicationMetadataMessage,
    author: &PublicKey,
    params: &EnvelopeParams<'_>,
) -> Result<BuiltMessage, BuildError> {
    let amm_bytes = amm.encode_to_vec();
    let id = message_id(author, &amm_bytes);
    seal(amm_bytes, id, params)
}

/// Signs and encrypts `data` as the 26/WAKU2 payload of a `WakuMessage` on the chat of `params`.
fn seal(data: Vec<u8>, id: [u8; 32], params: &EnvelopeParams<'_>) -> Result<BuiltMessage, BuildError> {
    if data.len() > SEGMENTATION_THRESHOLD {
        return Err(BuildError::TooLarge { len: data.len() });
    }
    let options =
        EncodeOptions { signing_key: Some(params.transport_key), padding: params.padding.clone(), nonce: params.nonce };
    let payload = encode_symmetric(&data, &params.chat_key.key, &options).map_err(BuildError::Encode)?;
    let waku_message = waku_message(payload, &params.chat_key.topic, params.timestamp_ns);
    Ok(BuiltMessage {
        content_topic: waku_message.content_topic.clone(),
        waku_message,
        chat_id: params.chat_key.chat_id.clone(),
        message_id: id,
    })
}

/// Signs `payload` as an AMM of `message_type` by `author` and builds the whole message.
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_status_message(
    payload: Vec<u8>,
    message_type: ApplicationMetadataMessageType,
    author: &SecretKey,
    params: &EnvelopeParams<'_>,
) -> Result<BuiltMessage, BuildError> {
    let amm = sign_amm(payload, message_type, author);
    build_from_amm(&amm, &author.public_key(), params)
}

/// A decrypted 26/WAKU2 payload and the chat it arrived on.
#[derive(Debug, Clone)]
pub struct OpenedPayload<'a> {
    /// The chat whose key decrypted it.
    pub chat_key: &'a ChatKey,
    /// The decoded payload (data, padding, signature).
    pub payload: DecodedPayload,
    /// The payload signer (status-go's transport `SigPubKey`).
    pub transport_signer: PublicKey,
}

/// Maps a payload decoding error to its reject reason.
pub(crate) fn payload_reject(error: &DecodeError) -> RejectReason {
    match error {
        DecodeError::TooShortToDecrypt { .. } | DecodeError::Decrypt => RejectReason::Undecryptable,
        DecodeError::Signature(signature) => RejectReason::BadPayloadSignature { detail: signature.to_string() },
        other => RejectReason::MalformedPayload { detail: other.to_string() },
    }
}

/// Receive steps 1-3 of status-go: content topic → chat key → version 1 → decrypt → parse, and
/// a payload signature is required (status-go's transport layer drops unsigned payloads).
///
/// # Errors
/// The [`RejectReason`] of the first layer that fails.
pub fn open_envelope<'a>(message: &WakuMessage, ring: &'a ChatKeyRing) -> Result<OpenedPayload<'a>, RejectReason> {
    let topic = Topic::parse_content_topic(&message.content_topic)
        .map_err(|_| RejectReason::BadContentTopic { content_topic: message.content_topic.clone() })?;
    let chat_key = ring.get(&topic).ok_or_else(|| RejectReason::UnknownTopic { topic: topic.to_string() })?;
    if message.version != Some(1) {
        return Err(RejectReason::WrongVersion { version: message.version });
    }
    let payload =
        chs_waku_payload::decode_symmetric(&message.payload, &chat_key.key).map_err(|error| payload_reject(&error))?;
    let transport_signer = *payload.signer().ok_or(RejectReason::UnsignedPayload)?;
    Ok(OpenedPayload { chat_key, payload, transport_signer })
}

/// How the AMM was carried.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wrapper {
    /// In `ProtocolMessage.public_message` (what status-go sends).
    ProtocolMessage {
        /// The sender's installation id.
        installation_id: String,
        /// The identity of each bundle (all verified).
        #[serde(serialize_with = "serialize_keys")]
        bundle_identities: Vec<PublicKey>,
    },
    /// A bare AMM (status-go accepts it through a fallback; §3.5 of status-go-wire.md).
    Bare,
}

fn serialize_keys<S: serde::Serializer>(keys: &[PublicKey], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(keys.iter().map(ToString::to_string))
}

/// The Status layers above the 26/WAKU2 payload, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEnvelope {
    /// How the AMM was carried.
    pub wrapper: Wrapper,
    /// The AMM's encoded bytes as received.
    pub amm_bytes: Vec<u8>,
    /// The decoded AMM.
    pub amm: ApplicationMetadataMessage,
    /// The AMM's own signer, if it is signed.
    pub amm_signer: Option<PublicKey>,
    /// The effective author: the AMM signer, else the transport signer (status-go `SigPubKey`).
    pub signer: PublicKey,
    /// status-go's message id: `Keccak-256(signer ‖ AMM bytes)`.
    pub message_id: [u8; 32],
}

/// Unwraps the Status layers of a payload's data as status-go does: segment check, then
/// `ProtocolMessage` (every bundle must verify) or, failing that, a bare AMM; then the AMM and
/// its signature (absent → the transport signer stands in).
///
/// # Errors
/// The [`RejectReason`] of the first layer that fails.
pub fn unwrap_status(data: &[u8], transport_signer: &PublicKey) -> Result<StatusEnvelope, RejectReason> {
    if let Some(segment) = detect_segment(data) {
        return Err(RejectReason::Segmented {
            index: segment.index,
            segments_count: segment.segments_count,
            parity_segments_count: segment.parity_segments_count,
        });
    }
    let (wrapper, amm_bytes) = match ProtocolMessage::decode(data) {
        Ok(protocol) if !protocol.public_message.is_empty() => {
            let mut identities = Vec::with_capacity(protocol.bundles.len());
            for bundle in &protocol.bundles {
                let identity =
                    verify_bundle(bundle).map_err(|error| RejectReason::BadBundle { detail: error.to_string() })?;
                identities.push(identity);
            }
            (
                Wrapper::ProtocolMessage { installation_id: protocol.installation_id, bundle_identities: identities },
                protocol.public_message,
            )
        }
        Ok(protocol) if !protocol.encrypted_message.is_empty() => {
            return Err(RejectReason::EncryptedMessage);
        }
        // status-go keeps the raw bytes when the ProtocolMessage decode fails or has no payload.
        _ => (Wrapper::Bare, data.to_vec()),
    };
    let amm = ApplicationMetadataMessage::decode(amm_bytes.as_slice())
        .map_err(|error| RejectReason::MalformedAmm { detail: error.to_string() })?;
    let amm_signer =
        recover_amm_signer(&amm).map_err(|error| RejectReason::BadAmmSignature { detail: error.to_string() })?;
    let signer = amm_signer.unwrap_or(*transport_signer);
    let message_id = message_id(&signer, &amm_bytes);
    Ok(StatusEnvelope { wrapper, amm_bytes, amm, amm_signer, signer, message_id })
}

/// [`unwrap_status`] with reassembly: a segment goes to `assembler`, and the status layers are
/// unwrapped once the whole message is in. `Ok(None)` means "segment stored, more needed" (or a
/// repeat of a completed message).
///
/// # Errors
/// [`RejectReason::BadSegment`] for unusable segments, else as [`unwrap_status`].
pub fn unwrap_status_reassembling(
    data: &[u8],
    transport_signer: &PublicKey,
    assembler: &mut crate::segment::SegmentAssembler,
) -> Result<Option<StatusEnvelope>, RejectReason> {
    if detect_segment(data).is_none() {
        return unwrap_status(data, transport_signer).map(Some);
    }
    match assembler.add(data, transport_signer) {
        Ok(crate::segment::SegmentOutcome::Complete(whole)) => unwrap_status(&whole, transport_signer).map(Some),
        Ok(_) => Ok(None),
        Err(error) => Err(RejectReason::BadSegment { detail: error.to_string() }),
    }
}
