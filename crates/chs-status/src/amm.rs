//! `ApplicationMetadataMessage`: the signed application envelope, and the message id.

use chs_proto::ApplicationMetadataMessageType;
use chs_proto::protobuf::ApplicationMetadataMessage;
use chs_waku_payload::crypto::keccak256_concat;
use chs_waku_payload::{PublicKey, SecretKey, SignatureError, keccak256};

/// Wraps `payload` as status-go's `WrapMessageV1` does: `signature = Sign(Keccak-256(payload),
/// author)` (65 bytes, `V ∈ {0,1}`, low-S). The signature does not cover `type`.
#[must_use]
pub fn sign_amm(
    payload: Vec<u8>,
    message_type: ApplicationMetadataMessageType,
    author: &SecretKey,
) -> ApplicationMetadataMessage {
    let signature = author.sign_prehash(&keccak256(&payload)).to_vec();
    ApplicationMetadataMessage { signature, payload, r#type: message_type as i32 }
}

/// The author of an `ApplicationMetadataMessage`: `SigToPub(Keccak-256(payload), signature)`,
/// or `None` when the signature is empty (status-go then falls back to the transport signer).
///
/// # Errors
/// A [`SignatureError`] when a signature is present but unusable.
pub fn recover_amm_signer(amm: &ApplicationMetadataMessage) -> Result<Option<PublicKey>, SignatureError> {
    if amm.signature.is_empty() {
        return Ok(None);
    }
    PublicKey::recover(&keccak256(&amm.payload), &amm.signature).map(Some)
}

/// status-go's message id: `Keccak-256(uncompressed signer key (65 B) ‖ encoded AMM bytes)`.
#[must_use]
pub fn message_id(signer: &PublicKey, amm_bytes: &[u8]) -> [u8; 32] {
    keccak256_concat(&[&signer.to_uncompressed(), amm_bytes])
}

/// The protobuf name of a message type (`COMMUNITY_MESSAGE_ARCHIVE_MAGNETLINK`), or
/// `UNKNOWN(<n>)` for numbers the enum does not list.
#[must_use]
pub fn type_name(message_type: i32) -> String {
    ApplicationMetadataMessageType::try_from(message_type)
        .map_or_else(|_| format!("UNKNOWN({message_type})"), |known| known.as_str_name().to_owned())
}
