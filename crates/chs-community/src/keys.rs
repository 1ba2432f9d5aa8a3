//! Private keys and installation ids (community ids are `chs_status::CommunityId`).

use chs_waku_payload::{PublicKey, SecretKey};

use crate::CommunityError;

/// Generates a fresh secp256k1 private key from the operating system's RNG (`getrandom`).
///
/// # Errors
/// [`CommunityError::Random`] if the RNG fails.
pub fn generate_key() -> Result<SecretKey, CommunityError> {
    SecretKey::generate().map_err(|e| CommunityError::Random(e.to_string()))
}

/// Parses a private key from 64 hex digits (with or without `0x`).
///
/// # Errors
/// [`CommunityError::InvalidPrivateKey`] naming what is wrong (the key is never echoed).
pub fn parse_private_key(hex_key: &str) -> Result<SecretKey, CommunityError> {
    let trimmed = hex_key.trim();
    let digits = trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")).unwrap_or(trimmed);
    if digits.len() != 64 {
        return Err(CommunityError::InvalidPrivateKey {
            reason: format!("expected 64 hex digits, got {} characters", digits.len()),
        });
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digits, &mut bytes)
        .map_err(|_| CommunityError::InvalidPrivateKey { reason: "not hex".to_owned() })?;
    SecretKey::from_bytes(&bytes).map_err(|_| CommunityError::InvalidPrivateKey {
        reason: "not a valid secp256k1 scalar (zero or not below the group order)".to_owned(),
    })
}

/// Parses a secp256k1 public key from 66 (compressed) or 130 (uncompressed, `04…`) hex digits,
/// with or without `0x`.
///
/// # Errors
/// [`CommunityError::InvalidPublicKey`] naming what is wrong.
pub fn parse_public_key(hex_key: &str) -> Result<PublicKey, CommunityError> {
    let trimmed = hex_key.trim();
    let digits = trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")).unwrap_or(trimmed);
    if digits.len() != 66 && digits.len() != 130 {
        return Err(CommunityError::InvalidPublicKey {
            reason: format!("expected 66 or 130 hex digits, got {} characters", digits.len()),
        });
    }
    let bytes = hex::decode(digits).map_err(|_| CommunityError::InvalidPublicKey { reason: "not hex".to_owned() })?;
    PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| CommunityError::InvalidPublicKey { reason: "not a point of secp256k1".to_owned() })
}

/// A random installation id in status-go's form (a version-4 UUID string).
///
/// # Errors
/// [`CommunityError::Random`] if the RNG fails.
pub fn generate_installation_id() -> Result<String, CommunityError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| CommunityError::Random(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}
