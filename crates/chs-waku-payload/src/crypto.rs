//! go-ethereum-compatible secp256k1 primitives: Keccak-256, `crypto.Sign` and `crypto.SigToPub`.
//!
//! Signatures are 65 bytes `R‖S‖V` with `V ∈ {0,1}` (never 27/28), low-S, deterministic
//! (RFC 6979), made over a 32-byte hash. Recovery accepts `V ∈ 0..=3` and, like
//! libsecp256k1's recovery, a high `S`.

use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::Digest as _;

use crate::error::{KeyError, SignatureError};

/// Length of a recoverable signature `R‖S‖V`.
pub const SIGNATURE_LEN: usize = 65;

/// Legacy Keccak-256 (go-ethereum `crypto.Keccak256`, not NIST SHA3-256).
#[must_use]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    sha3::Keccak256::digest(data).into()
}

/// Keccak-256 of the concatenation of `parts`.
#[must_use]
pub fn keccak256_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = sha3::Keccak256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a SEC1 point: 33-byte compressed or 65-byte uncompressed.
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] if the bytes are not a point on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes).map(Self).map_err(|_| KeyError::InvalidPublicKey { len: bytes.len() })
    }

    /// The 33-byte compressed form (`02`/`03` ‖ X), go-ethereum `CompressPubkey`.
    #[must_use]
    pub fn to_compressed(&self) -> [u8; 33] {
        let point = self.0.to_sec1_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The 65-byte uncompressed form (`04` ‖ X ‖ Y), go-ethereum `FromECDSAPub`.
    #[must_use]
    pub fn to_uncompressed(&self) -> [u8; 65] {
        let point = self.0.to_sec1_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// Recovers the signer's key from a 65-byte `R‖S‖V` signature over `prehash`
    /// (go-ethereum `crypto.SigToPub`).
    ///
    /// # Errors
    /// A [`SignatureError`] naming what is wrong with the signature.
    pub fn recover(prehash: &[u8; 32], signature: &[u8]) -> Result<Self, SignatureError> {
        let Ok(bytes) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return Err(SignatureError::InvalidLength { len: signature.len() });
        };
        let v = bytes[64];
        if RecoveryId::from_byte(v).is_none() {
            return Err(SignatureError::InvalidRecoveryId { v });
        }
        // k256 checks the scalars (non-zero, below the order) so that the errors stay what they
        // were; libsecp256k1 recovers (1.8x faster than k256's recovery, measured by
        // `bench_status`); the point it returns is parsed back into the k256 key (an on-curve
        // check of an uncompressed point, well under a microsecond).
        Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::InvalidScalars)?;
        let recovery_id = secp256k1::ecdsa::RecoveryId::from_u8_masked(v);
        let signature = secp256k1::ecdsa::RecoverableSignature::from_compact(&bytes[..64], recovery_id)
            .map_err(|_| SignatureError::InvalidScalars)?;
        let point = signature
            .recover_ecdsa(secp256k1::Message::from_digest(*prehash))
            .map_err(|_| SignatureError::RecoveryFailed)?;
        VerifyingKey::from_sec1_bytes(&point.serialize_uncompressed())
            .map(Self)
            .map_err(|_| SignatureError::RecoveryFailed)
    }

    /// k256's own recovery (what [`recover`](Self::recover) used before libsecp256k1), kept for
    /// the benchmark that chooses between the two and for the tests that compare them.
    ///
    /// # Errors
    /// As [`recover`](Self::recover).
    #[doc(hidden)]
    pub fn recover_k256(prehash: &[u8; 32], signature: &[u8]) -> Result<Self, SignatureError> {
        let Ok(bytes) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return Err(SignatureError::InvalidLength { len: signature.len() });
        };
        let v = bytes[64];
        let recovery_id = RecoveryId::from_byte(v).ok_or(SignatureError::InvalidRecoveryId { v })?;
        let signature = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::InvalidScalars)?;
        VerifyingKey::recover_from_prehash(prehash, &signature, recovery_id)
            .map(Self)
            .map_err(|_| SignatureError::RecoveryFailed)
    }
}

impl PublicKey {
    /// Verifies a 64-byte `R‖S` signature over a 32-byte hash, rejecting a high `S` like
    /// go-ethereum's `secp256k1.VerifySignature`.
    ///
    /// # Errors
    /// [`SignatureError::InvalidLength`] unless 64 bytes, [`SignatureError::InvalidScalars`] for
    /// out-of-range scalars, [`SignatureError::VerifyFailed`] if it does not verify.
    pub fn verify_prehash(&self, prehash: &[u8; 32], signature: &[u8]) -> Result<(), SignatureError> {
        if signature.len() != 64 {
            return Err(SignatureError::InvalidLength { len: signature.len() });
        }
        let signature = Signature::from_slice(signature).map_err(|_| SignatureError::InvalidScalars)?;
        self.0.verify_prehash(prehash, &signature).map_err(|_| SignatureError::VerifyFailed)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(0x{})", hex::encode(self.to_compressed()))
    }
}

impl std::fmt::Display for PublicKey {
    /// `0x` + lowercase hex of the compressed key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.to_compressed()))
    }
}

/// A secp256k1 private key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Parses a 32-byte big-endian scalar.
    ///
    /// # Errors
    /// [`KeyError::InvalidSecretKey`] if it is not 32 bytes, zero, or not below the order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_slice(bytes).map(Self).map_err(|_| KeyError::InvalidSecretKey { len: bytes.len() })
    }

    /// A fresh key from the operating system's RNG.
    ///
    /// # Errors
    /// [`KeyError::Random`] if the RNG fails.
    pub fn generate() -> Result<Self, KeyError> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
            if let Ok(key) = Self::from_bytes(&bytes) {
                return Ok(key);
            }
        }
    }

    /// The 32-byte big-endian scalar.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Signs a 32-byte hash: 65 bytes `R‖S‖V`, `V ∈ {0,1}`, low-S, RFC 6979
    /// (go-ethereum `crypto.Sign`).
    #[must_use]
    pub fn sign_prehash(&self, prehash: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
        let (signature, recovery_id) = self.0.sign_prehash_recoverable(prehash);
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = recovery_id.to_byte();
        out
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(pub {})", self.public_key())
    }
}
