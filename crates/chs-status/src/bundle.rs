//! X3DH bundles in `ProtocolMessage.bundles`: building and status-go's verification.

use chs_proto::encryption::{Bundle, SignedPreKey};
use chs_waku_payload::{PublicKey, SecretKey, SignatureError, keccak256};

/// `protocolVersion` of status-go's encryption layer, written into each signed pre-key.
pub const PROTOCOL_VERSION: u32 = 1;

/// One installation's signed pre-key for [`build_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKey {
    /// The installation (device) id.
    pub installation_id: String,
    /// The compressed pre-key public key.
    pub signed_pre_key: [u8; 33],
    /// Pre-key version (status-go starts at 0).
    pub version: u32,
}

/// A bundle that does not verify (status-go then drops the whole message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// `identity` is not a 33-byte compressed key.
    #[error("bundle identity ({len} bytes) is not a compressed secp256k1 key")]
    Identity {
        /// Length of `identity`.
        len: usize,
    },
    /// The signature is malformed or recovers no key.
    #[error("bundle signature is invalid")]
    Signature(#[source] SignatureError),
    /// The signature recovers a key other than `identity`.
    #[error("bundle signature was made by another key than its identity")]
    Mismatch,
}

/// status-go's `buildSignatureMaterial`: for each installation id in sorted order,
/// `id ‖ signed_pre_key ‖ decimal(version)`, then `decimal(timestamp)` if it is not 0.
#[must_use]
pub fn bundle_signature_material(bundle: &Bundle) -> Vec<u8> {
    let mut material = Vec::new();
    // `signed_pre_keys` is a BTreeMap, so iteration is already sorted by installation id,
    // byte-wise, like Go's sort.Strings.
    for (installation_id, pre_key) in &bundle.signed_pre_keys {
        material.extend_from_slice(installation_id.as_bytes());
        material.extend_from_slice(&pre_key.signed_pre_key);
        material.extend_from_slice(pre_key.version.to_string().as_bytes());
    }
    if bundle.timestamp != 0 {
        material.extend_from_slice(bundle.timestamp.to_string().as_bytes());
    }
    material
}

/// Builds and signs a bundle of `identity` for `pre_keys`, stamped `timestamp_ns`
/// (status-go `CreateBundle`/`SignBundle`).
#[must_use]
pub fn build_bundle(identity: &SecretKey, pre_keys: &[PreKey], timestamp_ns: i64) -> Bundle {
    let mut bundle = Bundle {
        identity: identity.public_key().to_compressed().to_vec(),
        signed_pre_keys: pre_keys
            .iter()
            .map(|pre_key| {
                (
                    pre_key.installation_id.clone(),
                    SignedPreKey {
                        signed_pre_key: pre_key.signed_pre_key.to_vec(),
                        version: pre_key.version,
                        protocol_version: PROTOCOL_VERSION,
                    },
                )
            })
            .collect(),
        signature: Vec::new(),
        timestamp: timestamp_ns,
    };
    bundle.signature = identity.sign_prehash(&keccak256(&bundle_signature_material(&bundle))).to_vec();
    bundle
}

/// Verifies a bundle as status-go's `ExtractIdentity`: `identity` must be a compressed key and
/// the signature over the material must recover it. Returns the identity.
///
/// # Errors
/// A [`BundleError`] naming the failure.
pub fn verify_bundle(bundle: &Bundle) -> Result<PublicKey, BundleError> {
    let identity_len = bundle.identity.len();
    if identity_len != 33 {
        return Err(BundleError::Identity { len: identity_len });
    }
    let identity =
        PublicKey::from_sec1_bytes(&bundle.identity).map_err(|_| BundleError::Identity { len: identity_len })?;
    let recovered = PublicKey::recover(&keccak256(&bundle_signature_material(bundle)), &bundle.signature)
        .map_err(BundleError::Signature)?;
    if recovered != identity {
        return Err(BundleError::Mismatch);
    }
    Ok(identity)
}
