//! Symmetric (topic) keys and their PBKDF2 derivation from a password.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// PBKDF2 iteration count of go-waku/status-go `AddSymKeyFromPassword`: 65356, a historical
/// typo for 65536 that every implementation must reproduce.
pub const PBKDF2_ITERATIONS: u32 = 65356;

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
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), b"", PBKDF2_ITERATIONS, &mut out);
        Self(out)
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
