//! 26/WAKU2-PAYLOAD version 1: the encrypted, optionally signed payload of a Waku message.
//!
//! Start with [`encode_symmetric`] and [`decode_symmetric`]; the keys are
//! [`SymmetricKey`] (derive one from a password with [`SymmetricKey::from_password`], or cache
//! derivations in a [`SymKeyCache`]) and the secp256k1 [`SecretKey`] / [`PublicKey`].
//!
//! The plaintext layout, as go-waku writes it (`waku/v2/payload/waku_payload.go`):
//!
//! ```text
//! flags (1 B: bits 0-1 = width of the size field, bit 2 = signed)
//! ‖ size (1-3 B, little-endian length of data) ‖ data ‖ padding
//! ‖ [65-byte R‖S‖V signature over Keccak-256(everything before it)]
//! ```
//!
//! encrypted with AES-256-GCM under a random 12-byte nonce that is **appended** after the tag.
//! Randomness (padding and nonce) can be fixed through [`EncodeOptions`] to reproduce vectors.
//!
//! The [`crypto`] module holds the go-ethereum-compatible signature primitives (`crypto.Sign`,
//! `crypto.SigToPub`) that this layer and the Status layers above share.
//!
//! This crate does no I/O, has no runtime, and knows nothing of Status, communities, chats,
//! content topics or the 14/WAKU2 message around the payload: it is a pure codec.
//! Asymmetric (ECIES) payloads are not implemented: Status sends community traffic symmetrically.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

mod codec;
pub mod crypto;
mod error;
pub mod fuzz;
mod symkey;

pub use codec::{
    DecodedPayload, EncodeOptions, FLAG_SIGNED, MAX_DATA_LEN, NONCE_LEN, NonceSource, PADDING_BLOCK, Padding,
    SIZE_MASK, TAG_LEN, decode_symmetric, decrypt_symmetric, encode_plaintext, encode_symmetric, encrypt_symmetric,
    padding_len, parse_plaintext,
};
pub use crypto::{PublicKey, SIGNATURE_LEN, SecretKey, keccak256};
pub use error::{DecodeError, EncodeError, KeyError, SignatureError};
pub use symkey::{PBKDF2_ITERATIONS, SymKeyCache, SymmetricKey};

#[cfg(test)]
mod tests;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
