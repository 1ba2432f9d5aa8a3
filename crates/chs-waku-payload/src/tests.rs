//! Unit tests: the go-waku-compatible vectors, malformed inputs and round-trip properties.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::*;

/// Control node identity key of the end-to-end magnetlink vector (status-go-wire.md §4.2).
const IDENTITY_SK: &str = "d51dd64ad19ea84968a308dca246012c00d2b2101d41bce740acd1c650acc509";
const IDENTITY_PUB: &str = "04eb0177131d07520da774ce45687054fd8b57ca51ea80c0de63624c1f7856d237b7290383a7d74c102136f222bbc4c64a68f5e04dfca69c30bddabfa99a8fd016";
/// symkey("0x03cab3…0fa2-magnetlinks").
const SYMKEY_MAGNETLINKS: &str = "d2d57b0d71b622b8449fef24447bfb5190aa9eaa05e1f141b410ecf9a8309837";
const CHAT_ID_MAGNETLINKS: &str = "0x03cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2-magnetlinks";
/// L3 of the vector: the ProtocolMessage carried as payload data (198 bytes).
const L3: &str = "122462356532626131662d303030302d343030302d383030302d303030303030303030303031b2069c010a4156c82925e9e66a2fb7a584c5955aa1f7e364626fd57dd15c5e8d2a4c80a7108a7b5bf735a4875331529b8b242ebf8aed1dfdfd9eabf4eaeb69c4a23c970722790112550880e0cadeab32124c6d61676e65743a3f78743d75726e3a627469683a6332613665346431653166326334643362396130653566366137623863396430653166326133623426646e3d746573742d61726368697665182b";
/// L1 wire payload of the vector (540 = 512 + 16 tag + 12 nonce).
const L1_WIRE: &str = "22b34d31d91c9cac886c9917aa77442a6dcca0df88d0ea3b8b7632dbbb741f2b168a11054016fb2a6757dc70f4a9c5ff58036015ed95eabf269f72a706e6154dfbc11aa7ed015648010409f1790c413b7a552b544a51668c5d6991aae16d6398a727ea8a771f4e7b514501a31d8ac328b8ec3a0e346a0556c24184f727507d11980bc7bfd105f9bb014b43ce76bb8862bb1dec255b6c0686b3e76f97f95b6937b276acd55399e5ca9547e2d6f10471df354d438a5f88c11eb72ca2fa82173029fcabb04a847d82ac9130137539ee711af22e2e53082024faffee51fa24fd3fca3245199e745cbf2977022ffdc6620d62341683bdb9662bd6d79bf3456e48cb7075db6df6683aca11576219c779c947efde87c95a7f9522435f4d1294e04f645918f0411f14a1a9b95d63844ad00074cc3b9e705fa7b345b10a81196f19603ccf89364c31ecfa46087065b7e559da61495ce45003b110cefb2d1192b0f3906ad6f814749638086861c745bb2ecebe2c57e883d62e2ee2f4b1a79b6348688949c586495f45bfa3b0b07c657f9c583ea8d11f9e3fc3a2faa7376545e21384a07219697428cd993b2f1b48bc33c8f16952673d22f213cacde831625a3b19ccaa8b65c8d2358c810f5c9c106f1200c27e4cc4cc35712dcce92accc238671431edd244802ffed6cb70b4414ddf56cc03d514f0650226881be390aa3c3a18c9393e3f0823847984bbba499d2c6ce924ef038ed9000102030405060708090a0b";
/// Last 65 bytes of the vector's plaintext: the identity signature.
const L1_SIGNATURE: &str = "b7656d4f5ac326818dbb52eb707bfe5c55e1db4f5bfab20a009a89bf8df222c04bb7e12f7f930b7fe3c4feb89404e0963f6f120792090ff0a5d9b3c2be9e56a301";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

fn vector_padding() -> Vec<u8> {
    (1..=247u32).map(|i| (i % 256) as u8).collect()
}

fn vector_nonce() -> [u8; 12] {
    std::array::from_fn(|i| i as u8)
}

fn symkey_magnetlinks() -> SymmetricKey {
    SymmetricKey::from_bytes(unhex(SYMKEY_MAGNETLINKS).try_into().expect("32 bytes"))
}

fn identity() -> SecretKey {
    SecretKey::from_bytes(&unhex(IDENTITY_SK)).expect("valid key")
}

fn config(cases: u32, seed: u64) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

#[test]
fn vector_l1_wire_payload_byte_for_byte() {
    let l3 = unhex(L3);
    assert_eq!(l3.len(), 198);
    assert_eq!(padding_len(l3.len(), true), 247);
    let key = identity();
    let options = EncodeOptions {
        signing_key: Some(&key),
        padding: Padding::Fixed(vector_padding()),
        nonce: NonceSource::Fixed(vector_nonce()),
    };
    let plaintext = encode_plaintext(&l3, Some(&key), &options.padding).expect("encode");
    assert_eq!(plaintext.len(), 512);
    assert_eq!(&plaintext[..2], &[0x05, 0xc6]);
    assert_eq!(hex::encode(&plaintext[447..]), L1_SIGNATURE);
    let wire = encode_symmetric(&l3, &symkey_magnetlinks(), &options).expect("encode");
    assert_eq!(hex::encode(&wire), L1_WIRE);

    let decoded = decode_symmetric(&wire, &symkey_magnetlinks()).expect("decode");
    assert_eq!(decoded.data(), &l3[..]);
    assert_eq!(decoded.padding(), &vector_padding()[..]);
    assert_eq!(decoded.flags(), 0x05);
    assert_eq!(hex::encode(decoded.signature().expect("signed")), L1_SIGNATURE);
    assert_eq!(hex::encode(decoded.signer().expect("signed").to_uncompressed()), IDENTITY_PUB);
    assert_eq!(decoded.plaintext(), &plaintext[..]);
}

#[test]
fn pbkdf2_vectors() {
    assert_eq!(hex::encode(SymmetricKey::from_password(CHAT_ID_MAGNETLINKS).as_bytes()), SYMKEY_MAGNETLINKS);
    assert_eq!(
        hex::encode(SymmetricKey::from_password("status").as_bytes()),
        "36224048e42c49e5c59c57bba5024fbb8822d6b4ee6ac5fbefd8b77f5323ecc4"
    );
}

/// The derivation on SHA-256's compression function agrees with the `pbkdf2` crate (RustCrypto's
/// generic PBKDF2-HMAC) for passwords around every block boundary (0-130 bytes: shorter than,
/// exactly, and longer than the 64-byte HMAC block, which is hashed first) and several
/// iteration counts.
#[test]
fn pbkdf2_one_block_matches_the_pbkdf2_crate() {
    for len in 0..=130usize {
        let password: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        for iterations in [1u32, 2, 3, 17, 1000] {
            let mut expected = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&password, b"", iterations, &mut expected);
            let ours = crate::symkey::pbkdf2_hmac_sha256_one_block(&password, iterations);
            assert_eq!(hex::encode(ours), hex::encode(expected), "password of {len} bytes, {iterations} iterations");
        }
    }
}

#[test]
fn symkey_cache_derives_once_and_returns_the_same_key() {
    let cache = SymKeyCache::new();
    assert!(cache.is_empty());
    assert_eq!(cache.get("status"), None);
    let first = cache.get_or_derive("status");
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.get("status"), Some(first));
    assert_eq!(cache.get_or_derive("status"), first);
    assert_eq!(cache.len(), 1);
    assert_eq!(first, SymmetricKey::from_password("status"));
    assert!(!format!("{first:?}").contains("36224048"));
}

/// go-waku `TestPaddingAppendedToSymMessagesWithSignature`: 246 bytes of signed data give a
/// padded pre-signature length of 512 − 65.
#[test]
fn go_waku_padding_with_signature() {
    let key = identity();
    let data = vec![0xabu8; 246];
    let plaintext = encode_plaintext(&data, Some(&key), &Padding::Random).expect("encode");
    assert_eq!(plaintext.len() - SIGNATURE_LEN, 512 - 65);
}

#[test]
fn random_padding_aligns_to_256_signed_and_unsigned() {
    let key = identity();
    for len in [0usize, 1, 120, 189, 190, 191, 254, 255, 256, 300, 65_535, 65_536, 70_000] {
        let data = vec![0x5a; len];
        for signing_key in [None, Some(&key)] {
            let plaintext = encode_plaintext(&data, signing_key, &Padding::Random).expect("encode");
            assert_eq!(plaintext.len() % PADDING_BLOCK, 0, "len {len}");
            let decoded = parse_plaintext(plaintext).expect("decode");
            assert_eq!(decoded.data(), &data[..]);
            assert!(!decoded.padding().is_empty() && decoded.padding().len() <= 256);
            assert_eq!(decoded.signer().is_some(), signing_key.is_some());
        }
    }
}

#[test]
fn size_field_width_follows_go_waku() {
    for (len, width) in [(0usize, 1u8), (255, 1), (256, 2), (65_535, 2), (65_536, 3)] {
        let plaintext = encode_plaintext(&vec![1; len], None, &Padding::Fixed(vec![])).expect("encode");
        assert_eq!(plaintext[0], width, "len {len}");
        assert_eq!(plaintext.len(), 1 + usize::from(width) + len);
    }
    let too_large = vec![0u8; MAX_DATA_LEN + 1];
    assert_eq!(
        encode_plaintext(&too_large, None, &Padding::Fixed(vec![])),
        Err(EncodeError::DataTooLarge { len: MAX_DATA_LEN + 1 })
    );
}

#[test]
fn unsigned_round_trip_has_no_signer() {
    let key = symkey_magnetlinks();
    let wire = encode_symmetric(b"hello", &key, &EncodeOptions::default()).expect("encode");
    let decoded = decode_symmetric(&wire, &key).expect("decode");
    assert_eq!(decoded.data(), b"hello");
    assert_eq!(decoded.signer(), None);
    assert_eq!(decoded.signature(), None);
    assert_eq!(decoded.flags(), 1);
}

#[test]
fn random_nonces_differ() {
    let key = symkey_magnetlinks();
    let a = encode_symmetric(b"x", &key, &EncodeOptions::default()).expect("encode");
    let b = encode_symmetric(b"x", &key, &EncodeOptions::default()).expect("encode");
    assert_ne!(a[a.len() - NONCE_LEN..], b[b.len() - NONCE_LEN..]);
}

#[test]
fn malformed_plaintexts_are_typed_errors() {
    assert_eq!(parse_plaintext(vec![]), Err(DecodeError::Empty));
    // Signed flag but only 66 bytes: go-waku requires more than flags + signature.
    assert_eq!(parse_plaintext(vec![0x04; 66]), Err(DecodeError::TooShortForSignature { len: 66 }));
    // Size field of 3 bytes with only 1 byte after the flags.
    assert_eq!(parse_plaintext(vec![0x03, 0x01]), Err(DecodeError::SizeFieldTruncated { width: 3, available: 1 }));
    // Declares 5 bytes of data, holds 2.
    assert_eq!(
        parse_plaintext(vec![0x01, 0x05, 0xaa, 0xbb]),
        Err(DecodeError::DataTruncated { declared: 5, available: 2 })
    );
    // No size field: empty data, everything else is padding.
    let decoded = parse_plaintext(vec![0x00, 1, 2, 3]).expect("valid");
    assert!(decoded.data().is_empty());
    assert_eq!(decoded.padding(), &[1, 2, 3]);
}

#[test]
fn malformed_signatures_are_typed_errors() {
    let key = identity();
    let good = encode_plaintext(b"data", Some(&key), &Padding::Random).expect("encode");
    let sig_start = good.len() - SIGNATURE_LEN;

    let mut v27 = good.clone();
    v27[good.len() - 1] += 27;
    assert!(matches!(parse_plaintext(v27), Err(DecodeError::Signature(SignatureError::InvalidRecoveryId { .. }))));

    let mut zero_r = good.clone();
    zero_r[sig_start..sig_start + 32].fill(0);
    assert_eq!(parse_plaintext(zero_r), Err(DecodeError::Signature(SignatureError::InvalidScalars)));

    let mut high_r = good.clone();
    high_r[sig_start..sig_start + 32].fill(0xff);
    assert_eq!(parse_plaintext(high_r), Err(DecodeError::Signature(SignatureError::InvalidScalars)));

    // A flipped bit in the signed bytes recovers some other key (or none), never the signer.
    let mut flipped = good.clone();
    flipped[3] ^= 0x10;
    match parse_plaintext(flipped) {
        Ok(decoded) => assert_ne!(decoded.signer(), Some(&key.public_key())),
        Err(err) => assert!(matches!(err, DecodeError::Signature(_))),
    }
}

#[test]
fn ciphertext_errors_are_typed() {
    let key = symkey_magnetlinks();
    assert_eq!(decode_symmetric(&[0u8; 27], &key), Err(DecodeError::TooShortToDecrypt { len: 27 }));
    let wire = unhex(L1_WIRE);
    let other = SymmetricKey::from_bytes([9; 32]);
    assert_eq!(decode_symmetric(&wire, &other), Err(DecodeError::Decrypt));
}

#[test]
fn crypto_sign_is_low_s_v01_and_recovers() {
    let key = identity();
    for i in 0u8..32 {
        let hash = keccak256(&[i]);
        let sig = key.sign_prehash(&hash);
        assert!(sig[64] <= 1);
        // Low S: the top bit of S is clear whenever S <= n/2; n/2 starts with 0x7fffffff.
        assert!(sig[32] <= 0x7f);
        assert_eq!(PublicKey::recover(&hash, &sig), Ok(key.public_key()));
    }
    assert_eq!(hex::encode(keccak256(b"")), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
}

/// libsecp256k1's recovery (go-ethereum `SigToPub`) accepts a high S; so do we.
#[test]
fn high_s_signature_still_recovers() {
    use k256::ecdsa::Signature;
    let key = identity();
    let hash = keccak256(b"high s");
    let sig = key.sign_prehash(&hash);
    let parsed = Signature::from_slice(&sig[..64]).expect("valid");
    let (r, s) = parsed.split_scalars();
    let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).expect("valid");
    let mut high_sig = [0u8; 65];
    high_sig[..64].copy_from_slice(&high.to_bytes());
    high_sig[64] = sig[64] ^ 1;
    assert!(high_sig[32] >= 0x80);
    assert_eq!(PublicKey::recover(&hash, &high_sig), Ok(key.public_key()));
}

/// `recover` (libsecp256k1) and `recover_k256` agree on every outcome: valid signatures, each
/// recovery id, a high S, out-of-range or zero scalars, wrong lengths and ids.
#[test]
fn recover_with_libsecp256k1_agrees_with_k256() {
    let key = identity();
    let mut cases: Vec<([u8; 32], Vec<u8>)> = Vec::new();
    for i in 0u8..64 {
        let hash = keccak256(&[i]);
        let sig = key.sign_prehash(&hash);
        cases.push((hash, sig.to_vec()));
        for v in [2u8, 3, 4, 27] {
            let mut other = sig;
            other[64] = v;
            cases.push((hash, other.to_vec()));
        }
        let mut flipped = sig;
        flipped[64] ^= 1;
        cases.push((hash, flipped.to_vec()));
        let mut bent = sig;
        bent[i as usize % 64] ^= 0x01;
        cases.push((hash, bent.to_vec()));
        cases.push((hash, sig[..64].to_vec()));
    }
    let zero = [0u8; 65];
    let mut over = [0xffu8; 65];
    over[64] = 0;
    cases.push((keccak256(b"z"), zero.to_vec()));
    cases.push((keccak256(b"o"), over.to_vec()));
    for (hash, sig) in &cases {
        assert_eq!(PublicKey::recover(hash, sig), PublicKey::recover_k256(hash, sig), "sig {}", hex::encode(sig));
    }
    assert!(cases.iter().filter(|(h, s)| PublicKey::recover(h, s) == Ok(key.public_key())).count() >= 64);
}

#[test]
fn public_key_forms_round_trip() {
    let public = identity().public_key();
    let uncompressed = public.to_uncompressed();
    assert_eq!(hex::encode(uncompressed), IDENTITY_PUB);
    assert_eq!(PublicKey::from_sec1_bytes(&uncompressed), Ok(public));
    assert_eq!(PublicKey::from_sec1_bytes(&public.to_compressed()), Ok(public));
    assert_eq!(PublicKey::from_sec1_bytes(&[4u8; 65]), Err(KeyError::InvalidPublicKey { len: 65 }));
    assert_eq!(
        SecretKey::from_bytes(&[0u8; 32]).map(|key| key.public_key()),
        Err(KeyError::InvalidSecretKey { len: 32 })
    );
    let generated = SecretKey::generate().expect("rng");
    assert_eq!(SecretKey::from_bytes(&generated.to_bytes()).map(|key| key.public_key()), Ok(generated.public_key()));
    assert!(!format!("{generated:?}").contains(&hex::encode(generated.to_bytes())));
}

#[test]
fn fuzz_entry_handles_vector_and_garbage() {
    fuzz::decode(&[]);
    fuzz::decode(&unhex(L1_WIRE));
    fuzz::decode(&[0x07; 300]);
}

proptest! {
    #![proptest_config(config(48, 0x26_2626))]

    #[test]
    fn prop_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048),
                       seed in any::<[u8; 32]>(), signed in any::<bool>(),
                       key in any::<[u8; 32]>()) {
        let key = SymmetricKey::from_bytes(key);
        let signer = SecretKey::from_bytes(&keccak256(&seed)).ok();
        let options = EncodeOptions {
            signing_key: if signed { signer.as_ref() } else { None },
            ..EncodeOptions::default()
        };
        let wire = encode_symmetric(&data, &key, &options).expect("encode");
        prop_assert_eq!((wire.len() - NONCE_LEN - TAG_LEN) % PADDING_BLOCK, 0);
        let decoded = decode_symmetric(&wire, &key).expect("decode");
        prop_assert_eq!(decoded.data(), &data[..]);
        prop_assert_eq!(decoded.signer().copied(), options.signing_key.map(SecretKey::public_key));
    }

    #[test]
    fn prop_flipped_bit_fails_authentication(data in proptest::collection::vec(any::<u8>(), 0..600),
                                             bit in any::<usize>()) {
        let key = symkey_magnetlinks();
        let mut wire = encode_symmetric(&data, &key, &EncodeOptions::default()).expect("encode");
        let bit = bit % (wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(decode_symmetric(&wire, &key), Err(DecodeError::Decrypt));
    }

    #[test]
    fn prop_truncated_fails(data in proptest::collection::vec(any::<u8>(), 0..600),
                            cut in any::<usize>()) {
        let key = symkey_magnetlinks();
        let wire = encode_symmetric(&data, &key, &EncodeOptions::default()).expect("encode");
        let cut = cut % wire.len();
        prop_assert!(decode_symmetric(&wire[..cut], &key).is_err());
    }

    #[test]
    fn prop_arbitrary_plaintext_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(decoded) = parse_plaintext(bytes.clone()) {
            let signed = usize::from(decoded.signature().is_some()) * SIGNATURE_LEN;
            let width = usize::from(bytes[0] & SIZE_MASK);
            prop_assert_eq!(1 + width + decoded.data().len() + decoded.padding().len() + signed,
                            bytes.len());
        }
        fuzz::decode(&bytes);
    }
}

#[test]
fn verify_prehash_accepts_low_s_and_rejects_high_s_and_others() {
    use k256::ecdsa::Signature;
    let key = identity();
    let hash = keccak256(b"verify");
    let sig = key.sign_prehash(&hash);
    assert_eq!(key.public_key().verify_prehash(&hash, &sig[..64]), Ok(()));
    let other = SecretKey::from_bytes(&keccak256(b"other")).expect("key");
    assert_eq!(other.public_key().verify_prehash(&hash, &sig[..64]), Err(SignatureError::VerifyFailed));
    assert_eq!(key.public_key().verify_prehash(&hash, &sig), Err(SignatureError::InvalidLength { len: 65 }));
    let parsed = Signature::from_slice(&sig[..64]).expect("valid");
    let (r, s) = parsed.split_scalars();
    let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).expect("valid");
    assert_eq!(key.public_key().verify_prehash(&hash, &high.to_bytes()), Err(SignatureError::VerifyFailed));
}
