//! Encoding and decoding of version-1 payloads (symmetric AES-256-GCM).

use std::ops::Range;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::crypto::{PublicKey, SIGNATURE_LEN, SecretKey, keccak256};
use crate::error::{DecodeError, EncodeError};
use crate::symkey::SymmetricKey;

/// Length of the AES-GCM nonce appended to the ciphertext.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// The plaintext (flags through signature) is padded to a multiple of this many bytes.
pub const PADDING_BLOCK: usize = 256;
/// Flags bit: the plaintext ends with a 65-byte signature.
pub const FLAG_SIGNED: u8 = 0x04;
/// Flags bits holding the width (0-3 bytes) of the little-endian size field.
pub const SIZE_MASK: u8 = 0x03;
/// Largest data length the 3-byte size field can state.
pub const MAX_DATA_LEN: usize = (1 << 24) - 1;

/// Where the padding bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Padding {
    /// Random bytes up to the next multiple of [`PADDING_BLOCK`] (1 to 256 bytes), as go-waku does.
    #[default]
    Random,
    /// These exact bytes, used as they are (tests and vectors). May be empty.
    Fixed(Vec<u8>),
}

/// Where the AES-GCM nonce comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonceSource {
    /// 12 random non-zero bytes (production).
    #[default]
    Random,
    /// This exact nonce (tests and vectors). Never reuse one with the same key in production.
    Fixed([u8; NONCE_LEN]),
}

/// How to encode a payload.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions<'a> {
    /// Key that signs the plaintext; `None` leaves it unsigned (status-go drops unsigned payloads).
    pub signing_key: Option<&'a SecretKey>,
    /// Padding source.
    pub padding: Padding,
    /// Nonce source.
    pub nonce: NonceSource,
}

impl<'a> EncodeOptions<'a> {
    /// Signed by `key`, with random padding and nonce: what production sends.
    #[must_use]
    pub fn signed(key: &'a SecretKey) -> Self {
        Self { signing_key: Some(key), padding: Padding::Random, nonce: NonceSource::Random }
    }
}

/// Width in bytes of the size field for `data_len` (go-waku `getSizeOfPayloadSizeField`).
fn size_field_len(data_len: usize) -> usize {
    let mut width = 1;
    let mut rest = data_len;
    while rest >= 256 {
        width += 1;
        rest /= 256;
    }
    width
}

/// Number of padding bytes [`Padding::Random`] adds for `data_len` bytes of data:
/// `256 − (raw mod 256)` with `raw = 1 + size-field + data (+ 65 if signed)`, so 1 to 256.
#[must_use]
pub fn padding_len(data_len: usize, signed: bool) -> usize {
    let mut raw = 1 + size_field_len(data_len) + data_len;
    if signed {
        raw += SIGNATURE_LEN;
    }
    PADDING_BLOCK - raw % PADDING_BLOCK
}

/// Fills `buf` with random bytes that are not all zero (go-waku rejects all-zero randomness).
fn random_nonzero(buf: &mut [u8]) -> Result<(), EncodeError> {
    loop {
        getrandom::fill(buf).map_err(EncodeError::Random)?;
        if buf.len() <= 3 || buf.iter().any(|byte| *byte != 0) {
            return Ok(());
        }
    }
}

/// Builds the unencrypted plaintext: `flags ‖ size ‖ data ‖ padding ‖ [signature]`.
///
/// # Errors
/// [`EncodeError::DataTooLarge`] above [`MAX_DATA_LEN`], [`EncodeError::Random`] if the RNG fails.
pub fn encode_plaintext(
    data: &[u8],
    signing_key: Option<&SecretKey>,
    padding: &Padding,
) -> Result<Vec<u8>, EncodeError> {
    if data.len() > MAX_DATA_LEN {
        return Err(EncodeError::DataTooLarge { len: data.len() });
    }
    let width = size_field_len(data.len());
    let pad_len = match padding {
        Padding::Random => padding_len(data.len(), signing_key.is_some()),
        Padding::Fixed(bytes) => bytes.len(),
    };
    let mut out = Vec::with_capacity(1 + width + data.len() + pad_len + SIGNATURE_LEN);
    // `width` is at most 3 here, so it fits the two size bits.
    out.push(u8::try_from(width).unwrap_or(3));
    let len_bytes = u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len_bytes[..width]);
    out.extend_from_slice(data);
    match padding {
        Padding::Random => {
            let start = out.len();
            out.resize(start + pad_len, 0);
            random_nonzero(&mut out[start..])?;
        }
        Padding::Fixed(bytes) => out.extend_from_slice(bytes),
    }
    if let Some(key) = signing_key {
        // The flag is set before hashing, as go-waku's `sign` does.
        out[0] |= FLAG_SIGNED;
        let signature = key.sign_prehash(&keccak256(&out));
        out.extend_from_slice(&signature);
    }
    Ok(out)
}

/// Encrypts a plaintext: AES-256-GCM ciphertext ‖ tag ‖ 12-byte nonce.
///
/// # Errors
/// [`EncodeError::Random`] if the RNG fails, [`EncodeError::Encrypt`] for absurd lengths.
pub fn encrypt_symmetric(key: &SymmetricKey, plaintext: &[u8], nonce: &NonceSource) -> Result<Vec<u8>, EncodeError> {
    let nonce_bytes = match nonce {
        NonceSource::Random => {
            let mut bytes = [0u8; NONCE_LEN];
            random_nonzero(&mut bytes)?;
            bytes
        }
        NonceSource::Fixed(bytes) => *bytes,
    };
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.as_bytes()));
    let mut out = cipher.encrypt(&Nonce::from(nonce_bytes), plaintext).map_err(|_| EncodeError::Encrypt)?;
    out.extend_from_slice(&nonce_bytes);
    Ok(out)
}

/// Encodes and encrypts `data`: the version-1 payload of a Waku message.
///
/// # Errors
/// See [`encode_plaintext`] and [`encrypt_symmetric`].
pub fn encode_symmetric(data: &[u8], key: &SymmetricKey, options: &EncodeOptions<'_>) -> Result<Vec<u8>, EncodeError> {
    let plaintext = encode_plaintext(data, options.signing_key, &options.padding)?;
    encrypt_symmetric(key, &plaintext, &options.nonce)
}

/// Decrypts a version-1 payload (the last 12 bytes are the nonce) into its plaintext.
///
/// # Errors
/// [`DecodeError::TooShortToDecrypt`] or [`DecodeError::Decrypt`].
pub fn decrypt_symmetric(key: &SymmetricKey, wire: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if wire.len() < NONCE_LEN + TAG_LEN {
        return Err(DecodeError::TooShortToDecrypt { len: wire.len() });
    }
    let (ciphertext, nonce_bytes) = wire.split_at(wire.len() - NONCE_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(nonce_bytes);
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.as_bytes()));
    cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| DecodeError::Decrypt)
}

/// A decoded payload: the data, the padding and, if signed, the signature and its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPayload {
    plaintext: Vec<u8>,
    data: Range<usize>,
    padding: Range<usize>,
    signature: Option<[u8; SIGNATURE_LEN]>,
    signer: Option<PublicKey>,
}

impl DecodedPayload {
    /// The application data (what status-go calls the payload).
    #[must_use]
    pub fn data(&self) -> &[u8] {
        self.plaintext.get(self.data.clone()).unwrap_or_default()
    }

    /// The padding bytes between the data and the signature (not checked, as in go-waku).
    #[must_use]
    pub fn padding(&self) -> &[u8] {
        self.plaintext.get(self.padding.clone()).unwrap_or_default()
    }

    /// The 65-byte signature, if the payload is signed.
    #[must_use]
    pub fn signature(&self) -> Option<&[u8; SIGNATURE_LEN]> {
        self.signature.as_ref()
    }

    /// The key that signed the payload, if it is signed.
    #[must_use]
    pub fn signer(&self) -> Option<&PublicKey> {
        self.signer.as_ref()
    }

    /// The whole decrypted plaintext (flags through signature).
    #[must_use]
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// The flags byte.
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.plaintext.first().copied().unwrap_or(0)
    }
}

/// Parses a decrypted plaintext exactly as go-waku's `validateAndParse`: signature first
/// (recovering the signer), then the size field, data and padding. Padding is not checked.
///
/// # Errors
/// A [`DecodeError`] naming the part that is malformed.
pub fn parse_plaintext(plaintext: Vec<u8>) -> Result<DecodedPayload, DecodeError> {
    let Some(&flags) = plaintext.first() else {
        return Err(DecodeError::Empty);
    };
    let mut end = plaintext.len();
    let mut signature = None;
    let mut signer = None;
    if flags & FLAG_SIGNED != 0 {
        if end <= SIGNATURE_LEN + 1 {
            return Err(DecodeError::TooShortForSignature { len: end });
        }
        end -= SIGNATURE_LEN;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&plaintext[end..]);
        let hash = keccak256(&plaintext[..end]);
        signer = Some(PublicKey::recover(&hash, &sig).map_err(DecodeError::Signature)?);
        signature = Some(sig);
    }
    let width = usize::from(flags & SIZE_MASK);
    let mut begin = 1;
    let mut data = begin..begin;
    if width != 0 {
        if end < begin + width {
            return Err(DecodeError::SizeFieldTruncated { width, available: end - begin });
        }
        let declared =
            plaintext[begin..begin + width].iter().rev().fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        begin += width;
        if declared > end - begin {
            return Err(DecodeError::DataTruncated { declared, available: end - begin });
        }
        data = begin..begin + declared;
        begin += declared;
    }
    Ok(DecodedPayload { plaintext, data, padding: begin..end, signature, signer })
}

/// Decrypts and parses a version-1 payload.
///
/// # Errors
/// See [`decrypt_symmetric`] and [`parse_plaintext`].
pub fn decode_symmetric(wire: &[u8], key: &SymmetricKey) -> Result<DecodedPayload, DecodeError> {
    parse_plaintext(decrypt_symmetric(key, wire)?)
}
