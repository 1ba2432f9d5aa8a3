//! Byte vectors: status-go-wire.md §4 (end-to-end magnetlink, bundle variant, go-waku hashes)
//! and the worked encodings of status-go-protobufs.md §10 that belong to these layers.

use chs_proto::Message as _;
use chs_proto::encryption::ProtocolMessage;
use chs_proto::protobuf::{
    ApplicationMetadataMessage, ChatMessage, CommunityMessageArchiveMagnetlink, SegmentMessage,
    WakuMessage as ArchivedMessage,
};
use chs_proto::waku::{WakuMessage, message_hash};
use chs_status::amm::{message_id, recover_amm_signer, sign_amm};
use chs_status::bundle::{PreKey, build_bundle, bundle_signature_material, verify_bundle};
use chs_status::envelope::{waku_message, wrap_public_message};
use chs_status::magnetlink::MAGNETLINK_TYPE;
use chs_status::segment::detect_segment;
use chs_status::{ChatKeyRing, Topic, build_magnetlink, parse_magnetlink};
use chs_waku_payload::{SecretKey, keccak256};
use sha2::Digest as _;

use crate::support::*;

const L5_KECCAK: &str = "431432c721fa549b208402472fedaa828fceae053dcd9bde41d990c20ef46ecd";
const AMM_SIGNATURE: &str = "56c82925e9e66a2fb7a584c5955aa1f7e364626fd57dd15c5e8d2a4c80a7108a7b5bf735a4875331529b8b242ebf8aed1dfdfd9eabf4eaeb69c4a23c9707227901";
const MESSAGE_ID: &str = "6bd6eaa6aa0590e2de0fa8c9633fb0324861f5f92a905e91fd98b62f6b71d8e6";
const COMMUNITY_PUB: &str = "04cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa27b4a47db1e94e30b0889af02714ac6a77a6ff47edcde93a1d0302950f7eed807";
const IDENTITY_PUB: &str = "04eb0177131d07520da774ce45687054fd8b57ca51ea80c0de63624c1f7856d237b7290383a7d74c102136f222bbc4c64a68f5e04dfca69c30bddabfa99a8fd016";

#[test]
fn e2e_ids_topics_and_keys() {
    let community = community_id();
    assert_eq!(community.to_string(), field("community_id"));
    assert_eq!(hex::encode(community.public_key().to_uncompressed()), COMMUNITY_PUB);
    assert_eq!(hex::encode(identity_key().public_key().to_uncompressed()), IDENTITY_PUB);
    let topic = |chat_id: &str| Topic::from_chat_id(chat_id).to_string();
    assert_eq!(topic(&community.description_chat_id()), "0xd4740ba8");
    assert_eq!(topic(&community.magnetlinks_chat_id()), "0x1980b7cb");
    assert_eq!(topic(&community.member_update_chat_id()), "0x8e636111");
    assert_eq!(topic(&community.ping_chat_id()), "0xe810dad3");
    assert_eq!(topic("status"), "0xcd423760");
    let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
    assert_eq!(chat_key.content_topic(), field("content_topic"));
    assert_eq!(hex::encode(chat_key.key.as_bytes()), field("symkey_magnetlinks"));
}

#[test]
fn e2e_each_layer_byte_for_byte() {
    let community_key = community_key();
    let l5 = CommunityMessageArchiveMagnetlink {
        clock: vector()["clock"].as_u64().expect("clock"),
        magnet_uri: field("magnet_uri").to_owned(),
    }
    .encode_to_vec();
    assert_eq!(hex::encode(&l5), field("magnetlink_message"));
    assert_eq!(hex::encode(keccak256(&l5)), L5_KECCAK);

    let amm = sign_amm(l5, MAGNETLINK_TYPE, &community_key);
    assert_eq!(hex::encode(&amm.signature), AMM_SIGNATURE);
    let amm_bytes = amm.encode_to_vec();
    assert_eq!(hex::encode(&amm_bytes), field("amm"));
    assert_eq!(recover_amm_signer(&amm).expect("valid"), Some(community_key.public_key()));
    assert_eq!(hex::encode(message_id(&community_key.public_key(), &amm_bytes)), MESSAGE_ID);

    let protocol = wrap_public_message(field("installation_id"), None, amm_bytes).encode_to_vec();
    assert_eq!(protocol.len(), 198);
    assert_eq!(hex::encode(&protocol), field("protocol_message"));
}

#[test]
fn e2e_waku_message_hash_and_gossipsub_id() {
    let (community_key, identity_key) = (community_key(), identity_key());
    let built = build_magnetlink(&vector_params(&community_key, &identity_key), cache()).expect("build");
    let encoded = built.encoded();
    assert_eq!(encoded.len(), 586);
    assert_eq!(hex::encode(&encoded), field("waku_message"));
    assert_eq!(built.content_topic, field("content_topic"));
    assert_eq!(hex::encode(built.message_id), MESSAGE_ID);
    assert_eq!(hex::encode(message_hash("/waku/2/rs/16/32", &built.waku_message)), field("waku_message_hash"));
    assert_eq!(hex::encode(sha2::Sha256::digest(&encoded)), field("gossipsub_message_id"));
}

#[test]
fn e2e_vector_parses_to_its_verdict() {
    let community = community_id();
    let message = WakuMessage::decode(unhex(field("waku_message")).as_slice()).expect("decode");
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let verdict = parse_magnetlink(&message, "/waku/2/rs/16/32", &community, &ring).expect("accepted");
    assert_eq!(verdict.clock, 1_729_728_000_000);
    assert_eq!(verdict.magnet_uri, field("magnet_uri"));
    assert_eq!(verdict.signer, *community.public_key());
    assert!(verdict.amm_signed);
    assert_eq!(verdict.transport_signer, identity_key().public_key());
    assert_eq!(hex::encode(verdict.message_id), MESSAGE_ID);
    assert_eq!(verdict.chat_id, community.magnetlinks_chat_id());
    let layers = &verdict.layers;
    assert_eq!(hex::encode(layers.message_hash), field("waku_message_hash"));
    assert_eq!(layers.payload_flags, 0x05);
    assert_eq!(layers.payload_data_len, 198);
    assert_eq!(layers.padding_len, 247);
    assert_eq!(layers.amm_type, 43);
    assert_eq!(layers.amm_type_name, "COMMUNITY_MESSAGE_ARCHIVE_MAGNETLINK");
    assert_eq!(layers.meta, Some(vec![]));
    assert_eq!(layers.ephemeral, Some(false));
    let json = serde_json::to_value(&verdict).expect("serialise");
    assert_eq!(json["signer"], field("community_id"));
    assert_eq!(json["message_id"], format!("0x{MESSAGE_ID}"));
    assert_eq!(json["layers"]["wrapper"]["kind"], "protocol_message");
}

/// status-go-wire.md §4.2, bundle variant: prekey sk = keccak256("prekey").
#[test]
fn e2e_bundle_variant() {
    let identity = identity_key();
    let prekey = SecretKey::from_bytes(&keccak256(b"prekey")).expect("key");
    let installation_id = field("installation_id");
    let bundle = build_bundle(
        &identity,
        &[PreKey {
            installation_id: installation_id.to_owned(),
            signed_pre_key: prekey.public_key().to_compressed(),
            version: 0,
        }],
        1_729_728_000_000_000_000,
    );
    let mut material = installation_id.as_bytes().to_vec();
    material.extend_from_slice(&unhex("0344cd9e9d879ee0518db073e7354b97b411cb4e42b396aa62cd721f2785328872"));
    material.extend_from_slice(b"0");
    material.extend_from_slice(b"1729728000000000000");
    assert_eq!(bundle_signature_material(&bundle), material);
    assert_eq!(
        hex::encode(&bundle.signature),
        "1fa866a6049973d4c97e87c1b1348a98d506aaca6aec54b16da166bae1a1bf42318745a661738ad97e90c4d0561ac18cbb775e8a1870764007865c31a9d48b6201"
    );
    let bundle_hex = "0a2102eb0177131d07520da774ce45687054fd8b57ca51ea80c0de63624c1f7856d237124d0a2462356532626131662d303030302d343030302d383030302d30303030303030303030303112250a210344cd9e9d879ee0518db073e7354b97b411cb4e42b396aa62cd721f2785328872180122411fa866a6049973d4c97e87c1b1348a98d506aaca6aec54b16da166bae1a1bf42318745a661738ad97e90c4d0561ac18cbb775e8a1870764007865c31a9d48b6201288080b0b0b9cece8018";
    assert_eq!(hex::encode(bundle.encode_to_vec()), bundle_hex);
    assert_eq!(verify_bundle(&bundle), Ok(identity.public_key()));

    let protocol = wrap_public_message(installation_id, Some(bundle.clone()), unhex(field("amm")));
    let expected = format!("1224{}1abf01{bundle_hex}b2069c01{}", hex::encode(installation_id), field("amm"));
    assert_eq!(hex::encode(protocol.encode_to_vec()), expected);

    // The whole stack with the bundle parses, and reports the bundle identity.
    let (community_key, identity_key) = (community_key(), identity_key());
    let mut params = vector_params(&community_key, &identity_key);
    params.bundle = Some(bundle);
    let built = build_magnetlink(&params, cache()).expect("build");
    let community = community_id();
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let verdict = parse_magnetlink(&built.waku_message, "/waku/2/rs/16/32", &community, &ring).expect("accepted");
    let json = serde_json::to_value(&verdict.layers.wrapper).expect("serialise");
    assert_eq!(json["bundle_identities"][0], format!("0x{}", hex::encode(identity.public_key().to_compressed())));
}

/// status-go-protobufs.md §10: the encodings of this crate's layers.
#[test]
fn protobufs_section10_worked_encodings() {
    let magnetlink = CommunityMessageArchiveMagnetlink {
        clock: 1_700_000_000_000,
        magnet_uri: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=0x02aa".to_owned(),
    }
    .encode_to_vec();
    let magnetlink_hex = "0880d095ffbc3112466d61676e65743a3f78743d75726e3a627469683a3031323334353637383961626364656630313233343536373839616263646566303132333435363726646e3d307830326161";
    assert_eq!(hex::encode(&magnetlink), magnetlink_hex);

    let signature: Vec<u8> = (0u8..=0x40).collect();
    let amm = ApplicationMetadataMessage { signature: signature.clone(), payload: magnetlink, r#type: 43 };
    assert_eq!(hex::encode(amm.encode_to_vec()), format!("0a41{}124f{magnetlink_hex}182b", hex::encode(&signature)));

    let protocol =
        ProtocolMessage { installation_id: "abc".to_owned(), public_message: vec![1, 2], ..ProtocolMessage::default() };
    assert_eq!(hex::encode(protocol.encode_to_vec()), "1203616263b206020102");

    let segment = SegmentMessage {
        entire_message_hash: vec![0x11; 32],
        index: 1,
        segments_count: 2,
        payload: vec![0xaa],
        ..SegmentMessage::default()
    };
    let segment_bytes = segment.encode_to_vec();
    assert_eq!(hex::encode(&segment_bytes), format!("0a20{}100118022201aa", "11".repeat(32)));
    let info = detect_segment(&segment_bytes).expect("a segment");
    assert_eq!((info.index, info.segments_count), (1, 2));

    let parity = SegmentMessage {
        entire_message_hash: vec![0x11; 32],
        payload: vec![0xaa],
        parity_segments_count: 1,
        ..SegmentMessage::default()
    };
    let parity_bytes = parity.encode_to_vec();
    assert_eq!(hex::encode(&parity_bytes), format!("0a20{}2201aa3001", "11".repeat(32)));
    assert_eq!(detect_segment(&parity_bytes).map(|info| info.parity_segments_count), Some(1));

    let mut archived_sig = vec![4u8];
    archived_sig.extend_from_slice(&[0; 64]);
    let archived = ArchivedMessage {
        sig: archived_sig,
        timestamp: 1_577_840_400,
        topic: vec![1, 2, 3, 4],
        payload: vec![1],
        padding: vec![1],
        hash: vec![0x22; 32],
        third_party_id: String::new(),
    };
    assert_eq!(
        hex::encode(archived.encode_to_vec()),
        format!("0a4104{}1090deaff0051a04010203042201012a01013220{}", "00".repeat(64), "22".repeat(32))
    );

    // ChatMessage{clock=1, display_name="d"}: the §10 vector minus its oneof sticker, which
    // chs-proto's ChatMessage does not model.
    let chat = ChatMessage { clock: 1, display_name: "d".to_owned(), ..ChatMessage::default() };
    assert_eq!(hex::encode(chat.encode_to_vec()), "0801720164");
    // The full §10 bytes (with the sticker) still decode; the oneof member is skipped.
    let decoded = ChatMessage::decode(unhex("08017201644a030a0178").as_slice()).expect("decode");
    assert_eq!((decoded.clock, decoded.display_name.as_str()), (1, "d"));

    let topic = Topic::from_bytes([1, 2, 3, 4]);
    let status_go = waku_message(vec![0xde, 0xad], &topic, 1_700_000_000_123_456_789);
    let head = "0a02dead12182f77616b752f312f307830313032303330342f72666332361801";
    assert_eq!(hex::encode(status_go.encode_to_vec()), format!("{head}50aab4aed8c7bfce972f5a00f80100"));
    let bare = WakuMessage { meta: None, ephemeral: None, ..status_go.clone() };
    assert_eq!(hex::encode(bare.encode_to_vec()), format!("{head}50aab4aed8c7bfce972f"));
    let with_proof = WakuMessage { meta: None, rate_limit_proof: Some(vec![7]), ..status_go };
    assert_eq!(hex::encode(with_proof.encode_to_vec()), format!("{head}50aab4aed8c7bfce972faa010107f80100"));
}

/// go-waku `waku/v2/protocol/pb/utils_test.go` at 0ed94ce0 (status-go-wire.md §4.1).
#[test]
fn go_waku_message_hash_vectors() {
    let message = |payload: &[u8], content_topic: &str, meta: Option<&[u8]>, ts: Option<i64>| WakuMessage {
        payload: payload.to_vec(),
        content_topic: content_topic.to_owned(),
        version: Some(1),
        timestamp: ts,
        meta: meta.map(<[u8]>::to_vec),
        rate_limit_proof: None,
        ephemeral: None,
    };
    let ts = Some(123_456_789_123_456_789);
    let hash = |pubsub: &str, msg: &WakuMessage| hex::encode(message_hash(pubsub, msg));
    assert_eq!(
        hash("test", &message(b"Hello World", "Test", None, ts)),
        "b659607f2aae18848dcaa7d51cb37e6cc6fc33402c704ff0c016337d83ad6150"
    );
    let pubsub = "/waku/2/default-waku/proto";
    let content = "/waku/2/default-content/proto";
    let payload = b"\x01\x02\x03\x04TEST\x05\x06\x07\x08";
    assert_eq!(
        hash(pubsub, &message(payload, content, Some(b""), ts)),
        "f0183c2e370e473ff471bbe1028d0d8a940949c02f3007a1ccd21fed356852a0"
    );
    assert_eq!(
        hash(pubsub, &message(payload, content, Some(b"super-secret"), ts)),
        "f673cd2c9c973d685b52ca74c2559e001733a3a31a49ffc7b6e8713decba5a55"
    );
    assert_eq!(
        hash(pubsub, &message(b"", content, Some(b"super-secret"), ts)),
        "978ccc9a665029f9829d42d84e3a49ad3a4791cce53fb5a8b581ef43ad6b4d2f"
    );
    // TestHashWithTimestamp, timestamp unset: go-waku hashes 8 zero bytes for it
    // (`toBytes(msg.GetTimestamp())`), giving 58e2fc03…8f1f56.
    let unset = hash(pubsub, &message(b"", content, Some(b"super-secret"), None));
    assert_eq!(unset, "58e2fc032a82c4adeb967a8b87086d0d6fb304912f120d4404e6236add8f1f56");
}

/// go-waku `relay/validators_test.go` `TestMsgHash` (values reproduced in status-go-wire.md
/// §4.1) and the protected-topic variant of the end-to-end vector (§4.2).
#[test]
fn protected_topic_vectors() {
    use chs_status::protected::{ProtectedError, relay_hash, sign_protected, verify_protected};
    let topic_key =
        SecretKey::from_bytes(&unhex("5526a8990317c9b7b58d07843d270f9cd1d9aaee129294c1c478abf7261dd9e6")).expect("key");
    let timestamp = 1_683_208_172_339_052_800;
    let mut message = WakuMessage {
        payload: unhex(
            "1A12E077D0E89F9CAC11FBBB6A676C86120B5AD3E248B1F180E98F15EE43D2DFCF62F00C92737B2FF6F59B3ABA02773314B991C41DC19ADB0AD8C17C8E26757B",
        ),
        content_topic: "content-topic".to_owned(),
        timestamp: Some(timestamp),
        ephemeral: Some(true),
        ..WakuMessage::default()
    };
    assert_eq!(
        hex::encode(relay_hash("pubsub-topic", &message)),
        "662f8c20a335f170bd60abc1f02ad66f0c6a6ee285da2a53c95259e7937c0ae9"
    );
    sign_protected(&mut message, "pubsub-topic", &topic_key);
    assert_eq!(
        hex::encode(message.meta.as_deref().expect("meta")),
        "127fa211b2514f0e974a055392946dc1a14052182a6abefb8a6cd7c51da1bf2e40595d28ef1a9488797c297eed3aac45430005fb3a7f037bdd9fc4bd99f59e63"
    );
    let public = topic_key.public_key();
    assert_eq!(verify_protected(&message, "pubsub-topic", &public, timestamp + 1), Ok(()));
    assert!(matches!(
        verify_protected(&message, "pubsub-topic", &public, timestamp + 300_000_000_001),
        Err(ProtectedError::OutsideWindow { .. })
    ));
    assert!(matches!(verify_protected(&message, "other-topic", &public, timestamp), Err(ProtectedError::Signature(_))));

    // The magnetlink vector on a protected topic.
    let mut magnetlink = WakuMessage::decode(unhex(field("waku_message")).as_slice()).expect("decode");
    assert_eq!(
        hex::encode(relay_hash("/waku/2/rs/16/32", &magnetlink)),
        "3ecdc9742e6a9dc370d5b2d359212c08bf70c011456ec95efe75133f3ed0ea18"
    );
    sign_protected(&mut magnetlink, "/waku/2/rs/16/32", &topic_key);
    let meta = "f5c79cae4a3bc53c17e83b5ca1f857a5968760bf55453160c21bd0c2465306515d2b921974114f66f450caa89ac1336862a56318567cf07791f5cd529ecfcbac";
    assert_eq!(hex::encode(magnetlink.meta.as_deref().expect("meta")), meta);
    let encoded = hex::encode(magnetlink.encode_to_vec());
    assert!(encoded.ends_with(&format!("1801508089efe0f29c9d81305a40{meta}f80100")));
    assert_eq!(
        hex::encode(message_hash("/waku/2/rs/16/32", &magnetlink)),
        "36dc387fab753af76f0da2b2c3a7b07ba81c9bbe4e0a37237b82134bdd3eef1b"
    );
}
