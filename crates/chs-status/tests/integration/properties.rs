//! Property tests: build → parse round trips; forgeries and corruptions are rejected with the
//! right reason, never a panic.

use chs_proto::waku::WakuMessage;
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_status::envelope::{EnvelopeParams, build_status_message, wrap_public_message};
use chs_status::magnetlink::MAGNETLINK_TYPE;
use chs_status::{
    ChatKeyRing, CommunityId, MagnetlinkChannel, MagnetlinkParams, RejectKind, build_magnetlink, parse_magnetlink,
};
use chs_waku_payload::{EncodeOptions, NonceSource, Padding, SecretKey, encode_symmetric, keccak256};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::support::cache;

const PUBSUB: &str = "/waku/2/rs/16/32";

fn config(cases: u32, seed: u64) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

/// Three communities, so PBKDF2 runs a bounded number of times.
fn pool_key(index: usize) -> SecretKey {
    SecretKey::from_bytes(&keccak256(format!("community {}", index % 3).as_bytes())).expect("key")
}

fn key_from_seed(seed: &[u8; 32]) -> SecretKey {
    SecretKey::from_bytes(&keccak256(seed)).expect("a keccak output is a valid key")
}

fn channel(member_update: bool) -> MagnetlinkChannel {
    if member_update { MagnetlinkChannel::MemberUpdate } else { MagnetlinkChannel::Magnetlinks }
}

fn build(
    community_key: &SecretKey,
    identity: &SecretKey,
    magnet: &str,
    clock: u64,
    member_update: bool,
) -> WakuMessage {
    let params = MagnetlinkParams {
        community_key,
        identity_key: identity,
        magnet_uri: magnet,
        clock,
        installation_id: "b5e2ba1f-0000-4000-8000-000000000001",
        bundle: None,
        timestamp_ns: 1_729_728_000_000_000_000,
        channel: channel(member_update),
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    build_magnetlink(&params, cache()).expect("build").waku_message
}

/// Re-wraps a (possibly corrupted) AMM as the magnetlinks chat would carry it.
fn rewrap_amm(community: &CommunityId, identity: &SecretKey, amm_bytes: Vec<u8>) -> WakuMessage {
    let protocol = wrap_public_message("inst", None, amm_bytes).encode_to_vec();
    rewrap_data(community, identity, &protocol)
}

/// Re-encrypts payload data for the magnetlinks chat, signed by `identity`.
fn rewrap_data(community: &CommunityId, identity: &SecretKey, data: &[u8]) -> WakuMessage {
    let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
    let payload = encode_symmetric(data, &chat_key.key, &EncodeOptions::signed(identity)).expect("encode");
    chs_status::envelope::waku_message(payload, &chat_key.topic, 1)
}

fn reject_kind(message: &WakuMessage, community: &CommunityId) -> Result<chs_status::MagnetlinkVerdict, RejectKind> {
    let ring = ChatKeyRing::for_magnetlinks(community, cache());
    parse_magnetlink(message, PUBSUB, community, &ring).map_err(|reason| reason.kind())
}

fn magnet_strategy() -> impl Strategy<Value = String> {
    "magnet:\\?xt=urn:btih:[0-9a-f]{40}(&dn=[a-z0-9-]{1,20})?"
}

proptest! {
    #![proptest_config(config(24, 0x5747_0001))]

    #[test]
    fn prop_build_parse_round_trip(community_index in 0usize..3, identity_seed in any::<[u8; 32]>(),
                                   magnet in magnet_strategy(), clock in any::<u64>(),
                                   member_update in any::<bool>()) {
        let community_key = pool_key(community_index);
        let identity = key_from_seed(&identity_seed);
        let community = CommunityId::from_secret_key(&community_key);
        let message = build(&community_key, &identity, &magnet, clock, member_update);
        let verdict = reject_kind(&message, &community).expect("accepted");
        prop_assert_eq!(verdict.clock, clock);
        prop_assert_eq!(&verdict.magnet_uri, &magnet);
        prop_assert_eq!(verdict.signer, community_key.public_key());
        prop_assert_eq!(verdict.transport_signer, identity.public_key());
        prop_assert_eq!(verdict.chat_id, channel(member_update).chat_id(&community));
        // Another community never accepts it: its keys do not know the topic.
        let other = CommunityId::from_secret_key(&pool_key(community_index + 1));
        prop_assert_eq!(reject_kind(&message, &other).err(), Some(RejectKind::UnknownTopic));
    }

    #[test]
    fn prop_signed_by_another_key_is_rejected(signer_seed in any::<[u8; 32]>(), community_index in 0usize..3) {
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let forger = key_from_seed(&signer_seed);
        // The forger signs the AMM but sends on the real community's chat.
        let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
        let inner = chs_proto::protobuf::CommunityMessageArchiveMagnetlink {
            clock: 1, magnet_uri: "magnet:?xt=urn:btih:00".to_owned(),
        }.encode_to_vec();
        let params = EnvelopeParams {
            chat_key: &chat_key, transport_key: &forger, installation_id: "x", bundle: None,
            timestamp_ns: 1, padding: Padding::Random, nonce: NonceSource::Random,
        };
        let built = build_status_message(inner, MAGNETLINK_TYPE, &forger, &params).expect("build");
        prop_assert_eq!(reject_kind(&built.waku_message, &community).err(),
                        Some(RejectKind::NotSignedByCommunity));
    }

    #[test]
    fn prop_another_type_is_rejected(type_number in 0i32..100, community_index in 0usize..3) {
        prop_assume!(type_number != 43);
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
        let mut amm = chs_status::amm::sign_amm(vec![8, 1], MAGNETLINK_TYPE, &community_key);
        amm.r#type = type_number;
        let params = EnvelopeParams {
            chat_key: &chat_key, transport_key: &community_key, installation_id: "x", bundle: None,
            timestamp_ns: 1, padding: Padding::Random, nonce: NonceSource::Random,
        };
        let built = chs_status::envelope::build_from_amm(&amm, &community_key.public_key(), &params)
            .expect("build");
        prop_assert_eq!(reject_kind(&built.waku_message, &community).err(), Some(RejectKind::WrongType));
        // The typed enum path gives the same.
        let typed = ApplicationMetadataMessageType::ChatMessage;
        let built = build_status_message(vec![8, 1], typed, &community_key, &params).expect("build");
        prop_assert_eq!(reject_kind(&built.waku_message, &community).err(), Some(RejectKind::WrongType));
    }

    #[test]
    fn prop_flipped_bit_in_wire_payload_is_undecryptable(bit in any::<usize>(), community_index in 0usize..3) {
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let mut message = build(&community_key, &community_key, "magnet:?xt=urn:btih:01", 5, false);
        let bit = bit % (message.payload.len() * 8);
        message.payload[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(reject_kind(&message, &community).err(), Some(RejectKind::Undecryptable));
    }

    #[test]
    fn prop_flipped_bit_in_amm_is_rejected(bit in any::<usize>(), community_index in 0usize..3,
                                            magnet in magnet_strategy()) {
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let inner = chs_proto::protobuf::CommunityMessageArchiveMagnetlink {
            clock: 77, magnet_uri: magnet,
        }.encode_to_vec();
        let mut amm = chs_status::amm::sign_amm(inner, MAGNETLINK_TYPE, &community_key).encode_to_vec();
        let bit = bit % (amm.len() * 8);
        amm[bit / 8] ^= 1 << (bit % 8);
        let identity = key_from_seed(&[9; 32]);
        let kind = reject_kind(&rewrap_amm(&community, &identity, amm), &community).err();
        prop_assert!(matches!(kind, Some(RejectKind::MalformedAmm | RejectKind::BadAmmSignature
            | RejectKind::NotSignedByCommunity | RejectKind::WrongType)), "got {:?}", kind);
    }

    #[test]
    fn prop_flipped_bit_in_plaintext_never_forges(bit in any::<usize>(), community_index in 0usize..3) {
        // Any bit of the ProtocolMessage (re-encrypted and re-signed, as an attacker who knows
        // the public chat key can): either rejected, or the same magnetlink (the installation
        // id is not signed).
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let inner = chs_proto::protobuf::CommunityMessageArchiveMagnetlink {
            clock: 99, magnet_uri: "magnet:?xt=urn:btih:02".to_owned(),
        }.encode_to_vec();
        let amm = chs_status::amm::sign_amm(inner, MAGNETLINK_TYPE, &community_key).encode_to_vec();
        let mut protocol = wrap_public_message("installation", None, amm).encode_to_vec();
        let bit = bit % (protocol.len() * 8);
        protocol[bit / 8] ^= 1 << (bit % 8);
        let identity = key_from_seed(&[10; 32]);
        if let Ok(verdict) = reject_kind(&rewrap_data(&community, &identity, &protocol), &community) {
            prop_assert_eq!(verdict.clock, 99);
            prop_assert_eq!(verdict.magnet_uri, "magnet:?xt=urn:btih:02");
            prop_assert_eq!(verdict.signer, community_key.public_key());
        }
    }

    #[test]
    fn prop_truncated_is_rejected(cut in any::<usize>(), community_index in 0usize..3) {
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let message = build(&community_key, &community_key, "magnet:?xt=urn:btih:03", 6, false);
        // Truncated 26/WAKU2 payload: never decrypts.
        let mut short = message.clone();
        short.payload.truncate(cut % message.payload.len());
        prop_assert_eq!(reject_kind(&short, &community).err(), Some(RejectKind::Undecryptable));
        // Truncated WakuMessage bytes, cut before the end of the version field: never accepted.
        let encoded = message.encode_to_vec();
        let version_end = encoded.len() - 16; // timestamp (10) + meta (2) + ephemeral (3) + 1
        let cut = cut % version_end;
        let accepted = WakuMessage::decode(&encoded[..cut]).ok()
            .map(|decoded| reject_kind(&decoded, &community).is_ok());
        prop_assert_ne!(accepted, Some(true));
        chs_status::fuzz::magnetlink(&encoded[..cut]);
    }

    #[test]
    fn prop_reencrypted_with_another_chat_key_is_rejected(community_index in 0usize..3, data_seed in any::<u8>()) {
        let community_key = pool_key(community_index);
        let community = CommunityId::from_secret_key(&community_key);
        let genuine = build(&community_key, &community_key, "magnet:?xt=urn:btih:04", u64::from(data_seed), false);
        let ring = ChatKeyRing::for_magnetlinks(&community, cache());
        let magnetlinks = ring.get(&chs_status::Topic::from_chat_id(&community.magnetlinks_chat_id()))
            .expect("in ring").clone();
        let plaintext = chs_waku_payload::decrypt_symmetric(&magnetlinks.key, &genuine.payload)
            .expect("decrypts");
        // Encrypted with the description chat's key, under the magnetlinks topic.
        let other = cache().chat_key(&community.description_chat_id());
        let payload = chs_waku_payload::encrypt_symmetric(&other.key, &plaintext, &NonceSource::Random)
            .expect("encrypt");
        let mut forged = genuine.clone();
        forged.payload = payload.clone();
        prop_assert_eq!(reject_kind(&forged, &community).err(), Some(RejectKind::Undecryptable));
        // The same under the description topic: not a chat members read magnetlinks from.
        forged.content_topic = other.content_topic();
        prop_assert_eq!(reject_kind(&forged, &community).err(), Some(RejectKind::UnknownTopic));
    }

    #[test]
    fn prop_fuzz_entries_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        chs_status::fuzz::magnetlink(&bytes);
        chs_status::fuzz::status_layers(&bytes);
        chs_status::fuzz::archived(&bytes);
    }
}
