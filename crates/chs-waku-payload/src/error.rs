//! Error types of the payload codec and the signature primitives.

/// A secp256k1 signature that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not 65 bytes `R‖S‖V`.
    #[error("signature is {len} bytes, expected 65 (R||S||V)")]
    InvalidLength {
        /// Length found.
        len: usize,
    },
    /// `V` is not in 0..=3 (go-ethereum rejects 27/28 too).
    #[error("recovery id V = {v} is not in 0..=3")]
    InvalidRecoveryId {
        /// The `V` byte found.
        v: u8,
    },
    /// `R` or `S` is zero or not below the group order.
    #[error("R or S is zero or not below the secp256k1 group order")]
    InvalidScalars,
    /// No public key can be recovered from this signature and message hash.
    #[error("no public key can be recovered from the signature")]
    RecoveryFailed,
    /// The signature does not verify against the key (or has a high `S`).
    #[error("signature does not verify against the key")]
    VerifyFailed,
}

/// A secp256k1 key that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret key is not 32 bytes, is zero, or is not below the group order.
    #[error("secret key ({len} bytes) is not a valid secp256k1 scalar")]
    InvalidSecretKey {
        /// Length given.
        len: usize,
    },
    /// The public key is not a valid SEC1 (33-byte compressed or 65-byte uncompressed) point.
    #[error("public key ({len} bytes) is not a valid SEC1 secp256k1 point")]
    InvalidPublicKey {
        /// Length given.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// Encoding a payload failed; only bad arguments or a broken RNG cause this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The data does not fit the 3-byte size field (go-waku would corrupt the flags byte).
    #[error("data of {len} bytes exceeds the 16 MiB - 1 limit of the 3-byte size field")]
    DataTooLarge {
        /// Length given.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(getrandom::Error),
    /// AES-GCM refused to encrypt (only for absurdly long input).
    #[error("AES-256-GCM encryption failed")]
    Encrypt,
}

/// A received payload that cannot be decoded. Each variant names the layer that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The encrypted payload is shorter than the 16-byte tag plus the 12-byte nonce.
    #[error("encrypted payload of {len} bytes is shorter than tag + nonce (28 bytes)")]
    TooShortToDecrypt {
        /// Length found.
        len: usize,
    },
    /// AES-256-GCM authentication failed: wrong key, or the bytes were altered.
    #[error("AES-256-GCM authentication failed (wrong key or altered payload)")]
    Decrypt,
    /// The decrypted plaintext is empty (no flags byte).
    #[error("decrypted plaintext is empty")]
    Empty,
    /// The signed flag is set but the plaintext cannot hold flags plus a 65-byte signature.
    #[error("signed plaintext of {len} bytes is too short for the flags and a 65-byte signature")]
    TooShortForSignature {
        /// Plaintext length.
        len: usize,
    },
    /// The payload signature is malformed or recovers no key.
    #[error("payload signature is invalid")]
    Signature(#[source] SignatureError),
    /// The size field runs past the end of the plaintext (before the signature).
    #[error("size field of {width} bytes does not fit in the {available} bytes after the flags")]
    SizeFieldTruncated {
        /// Width of the size field from the flags.
        width: usize,
        /// Bytes available after the flags byte.
        available: usize,
    },
    /// The declared data length runs past the end of the plaintext (before the signature).
    #[error("declared data length {declared} exceeds the {available} bytes available")]
    DataTruncated {
        /// Length from the size field.
        declared: usize,
        /// Bytes available after the size field.
        available: usize,
    },
}
