//! Entry points for fuzzers (`cargo fuzz`): each feeds arbitrary bytes to a decoder and must
//! never panic.

use crate::{SymmetricKey, decode_symmetric, parse_plaintext};

/// Fuzzes the plaintext parser and the decrypting decoder.
///
/// The plaintext parser sees the input directly; the decoder sees it both under a fixed key
/// and, when it is long enough, re-encrypted under that key so the parser behind AES-GCM is
/// reached too.
pub fn decode(input: &[u8]) {
    let key = SymmetricKey::from_bytes([7u8; 32]);
    let _ = parse_plaintext(input.to_vec());
    let _ = decode_symmetric(input, &key);
    if let Ok(wire) = crate::encrypt_symmetric(&key, input, &crate::NonceSource::Fixed([1; 12])) {
        let _ = decode_symmetric(&wire, &key);
    }
}
