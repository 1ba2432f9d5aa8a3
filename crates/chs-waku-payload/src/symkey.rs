//! Symmetric (topic) keys and their PBKDF2 derivation from a password.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// PBKDF2 iteration count of go-waku/status-go `AddSymKeyFromPassword`: 65356, a historical
/// typo for 65536 that every implementation must reproduce.
pub const PBKDF2_ITERATIONS: u32 = 65356;

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] =
    [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];

/// PBKDF2-HMAC-SHA256 with an empty salt and one 32-byte output block (RFC 8018 §5.2, block
/// index 1), on SHA-256's compression function directly: the HMAC key's inner and outer states
/// are computed once, and each of the `iterations` rounds is two compressions of a block whose
/// padding is written once. The `pbkdf2` crate's generic HMAC did the same compressions but
/// ~40 % more work around them (state clones, buffering, finalisation): that overhead was a
/// third of a member node's start-up CPU (four chat keys) and of an owner's (several keys per
/// community). Checked against the `pbkdf2` crate in the tests.
pub(crate) fn pbkdf2_hmac_sha256_one_block(password: &[u8], iterations: u32) -> [u8; 32] {
    use sha2::block_api::compress256;
    use sha2::{Digest, Sha256};

    // HMAC key: the password, or its hash if longer than a block, zero-padded to 64 bytes.
    let mut key = [0u8; 64];
    if password.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(password));
    } else {
        key[..password.len()].copy_from_slice(password);
    }
    let keyed = |pad: u8| {
        let mut block = key;
        for b in &mut block {
            *b ^= pad;
        }
        let mut state = SHA256_IV;
        compress256(&mut state, &[block]);
        state
    };
    let (inner, outer) = (keyed(0x36), keyed(0x5c));

    // U1 = HMAC(P, salt || INT(1)), the salt empty: the inner message is 00 00 00 01, one block
    // after the key block (64 + 4 bytes = 544 bits).
    let mut first = [0u8; 64];
    first[..4].copy_from_slice(&1u32.to_be_bytes());
    first[4] = 0x80;
    first[56..].copy_from_slice(&(544u64).to_be_bytes());
    // Every other message (inner: U_{j-1}; outer: the inner hash) is 32 bytes after the key
    // block: 768 bits.
    let mut block = [0u8; 64];
    block[32] = 0x80;
    block[56..].copy_from_slice(&(768u64).to_be_bytes());

    // A state's 32-byte digest, big-endian, into the first 32 bytes of `to`.
    let write = |state: &[u32; 8], to: &mut [u8]| {
        for (chunk, word) in to[..32].chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    };
    let mut state = inner;
    compress256(&mut state, &[first]);
    write(&state, &mut block);
    let mut u = outer;
    compress256(&mut u, &[block]);
    let mut t = u;
    for _ in 1..iterations {
        write(&u, &mut block);
        let mut state = inner;
        compress256(&mut state, &[block]);
        write(&state, &mut block);
        u = outer;
        compress256(&mut u, &[block]);
        for (t, u) in t.iter_mut().zip(&u) {
            *t ^= u;
        }
    }
    let mut out = [0u8; 32];
    write(&t, &mut out);
    out
}

/// A 32-byte AES-256 key. `Debug` shows only a fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Wraps raw key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// PBKDF2-HMAC-SHA256(password, empty salt, 65356 iterations, 32 bytes), as
    /// `AddSymKeyFromPassword` does. Slow by design (tens of milliseconds): cache the result,
    /// e.g. in a [`SymKeyCache`].
    #[must_use]
    pub fn from_password(password: &str) -> Self {
        Self(pbkdf2_hmac_sha256_one_block(password.as_bytes(), PBKDF2_ITERATIONS))
    }

    /// The raw key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fingerprint = crate::crypto::keccak256(&self.0);
        write!(f, "SymmetricKey(keccak 0x{}…)", hex::encode(&fingerprint[..4]))
    }
}

/// A thread-safe cache of password-derived keys, so each password pays PBKDF2 once.
#[derive(Debug, Default)]
pub struct SymKeyCache {
    keys: Mutex<HashMap<String, SymmetricKey>>,
}

impl SymKeyCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for `password`, derived on first use.
    ///
    /// The derivation runs outside the lock, so two threads asking for the same new password
    /// may both derive it; both get the same key.
    #[must_use]
    pub fn get_or_derive(&self, password: &str) -> SymmetricKey {
        if let Some(key) = self.get(password) {
            return key;
        }
        let key = SymmetricKey::from_password(password);
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).insert(password.to_owned(), key);
        key
    }

    /// The cached key for `password`, if it was derived before.
    #[must_use]
    pub fn get(&self, password: &str) -> Option<SymmetricKey> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).get(password).copied()
    }

    /// Number of cached keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
