//! Unit tests: ids, topics, the receive fallbacks status-go has, the member rule and the CLI.

use std::sync::OnceLock;

use chs_proto::Message as _;
use chs_proto::encryption::{EncryptedMessageProtocol, ProtocolMessage};
use chs_proto::waku::WakuMessage;
use chs_waku_payload::{EncodeOptions, NonceSource, Padding, SecretKey, keccak256};

use crate::amm::sign_amm;
use crate::bundle::{BundleError, PreKey, build_bundle, verify_bundle};
use crate::envelope::{EnvelopeParams, build_from_amm, unwrap_status, waku_message};
use crate::ids::IdError;
use crate::magnetlink::MAGNETLINK_TYPE;
use crate::segment::detect_segment;
use crate::*;

fn cache() -> &'static ChatKeyCache {
    static CACHE: OnceLock<ChatKeyCache> = OnceLock::new();
    CACHE.get_or_init(ChatKeyCache::new)
}

fn key(label: &str) -> SecretKey {
    SecretKey::from_bytes(&keccak256(label.as_bytes())).expect("key")
}

fn magnetlink_bytes(clock: u64, uri: &str) -> Vec<u8> {
    chs_proto::protobuf::CommunityMessageArchiveMagnetlink { clock, magnet_uri: uri.to_owned() }.encode_to_vec()
}

/// Encrypts `data` for `community`'s magnetlinks chat, payload signed by `signer`.
fn on_magnetlinks(community: &CommunityId, data: &[u8], signer: Option<&SecretKey>) -> WakuMessage {
    let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
    let options = EncodeOptions { signing_key: signer, ..EncodeOptions::default() };
    let payload = chs_waku_payload::encode_symmetric(data, &chat_key.key, &options).expect("encode");
    waku_message(payload, &chat_key.topic, 1)
}

fn parse(message: &WakuMessage, community: &CommunityId) -> Result<MagnetlinkVerdict, RejectKind> {
    let ring = ChatKeyRing::for_magnetlinks(community, cache());
    parse_magnetlink(message, DEFAULT_PUBSUB_TOPIC, community, &ring).map_err(|r| r.kind())
}

#[test]
fn community_id_parses_and_prints() {
    let text = "0x03cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2";
    let id: CommunityId = text.parse().expect("valid");
    assert_eq!(id.to_string(), text);
    assert_eq!(CommunityId::parse(&text.to_uppercase().replace("0X", "0x")), Ok(id));
    assert_eq!(id.as_bytes()[0], 3);
    assert_eq!(id.channel_chat_id("abc"), format!("{text}abc"), "channel chat ids have no separator");
    assert_eq!(id.default_chat_ids()[3], format!("{text}-memberUpdate"));
    assert!(matches!(CommunityId::parse(&text[2..]), Err(IdError::CommunityIdFormat(_))));
    assert!(matches!(CommunityId::parse("0x03ab"), Err(IdError::CommunityIdFormat(_))));
    let uncompressed_prefix = format!("0x04{}", &text[4..]);
    assert!(matches!(CommunityId::parse(&uncompressed_prefix), Err(IdError::CommunityIdKey(_))));
    let off_curve = format!("0x02{}", "ff".repeat(32));
    assert!(matches!(CommunityId::parse(&off_curve), Err(IdError::CommunityIdKey(_))));
    assert_eq!(serde_json::to_value(id).expect("json"), text);
}

/// Issue 21: the status.app link of a community, as status-go's `messenger_share_urls_test.go`
/// has it (`communityURL`, `communityURLWithData`, `channelURL` of community
/// 0x02a3d2fd…452084), and back.
#[test]
fn community_share_url_matches_status_go() {
    let id = CommunityId::parse("0x02a3d2fdb9ac335917bf9d46b38d7496c00bbfadbaf832e8aa61d13ac2b4452084").expect("valid");
    let key = "zQ3shYSHp7GoiXaauJMnDcjwU2yNjdzpXLosAWapPS4CFxc11";
    assert_eq!(id.chat_key(), key);
    assert_eq!(id.share_url(), format!("https://status.app/c#{key}"));
    for link in [
        format!("https://status.app/c#{key}"),
        format!(
            "https://status.app/c/iyKACkQKB0Rvb2RsZXMSJ0NvbG9yaW5nIHRoZSB3b3JsZCB3aXRoIGpveSDigKIg4bSXIOKAohiYohsiByMxMzFEMkYqAwEhMwM=#{key}"
        ),
        format!("https://status.app/cc/003cdcd5-e065-48f9-b166-b1a94ac75a11#{key}"),
        format!(" {key}\n"),
    ] {
        assert_eq!(CommunityId::from_share_url(&link), Ok(id), "{link}");
    }
    for bad in [
        format!("https://status.app/u#{key}"),
        format!("https://status.im/c#{key}"),
        format!("https://status.app/cc#{key}"),
        "https://status.app/c#zQ3sh".to_owned(),
        "https://status.app/c/".to_owned(),
        id.to_string(),
    ] {
        assert!(matches!(CommunityId::from_share_url(&bad), Err(IdError::ShareUrl(_))), "{bad}");
    }
}

/// go-waku/status-go `wakuv2/common/topic_test.go` `TestTopicString` and `TestBytesToTopic`.
#[test]
fn topic_strings_and_lenient_bytes_match_status_go() {
    for hex_topic in ["00000000", "007f80ff", "ff807f00", "f26e7779"] {
        let topic = Topic::from_slice_lenient(&hex::decode(hex_topic).expect("hex"));
        assert_eq!(topic.to_string(), format!("0x{hex_topic}"));
    }
    for (input, expected) in [
        ("", "00000000"),
        ("01", "01000000"),
        ("00fe", "00fe0000"),
        ("ea1d43", "ea1d4300"),
        ("6f3cb0dd0f0090", "6f3cb0dd"),
    ] {
        let topic = Topic::from_slice_lenient(&hex::decode(input).expect("hex"));
        assert_eq!(hex::encode(topic.as_bytes()), expected);
    }
}

#[test]
fn content_topic_parsing_follows_extract_topic_from_content_topic() {
    let topic = Topic::from_bytes([0x19, 0x80, 0xb7, 0xcb]);
    assert_eq!(topic.content_topic(), "/waku/1/0x1980b7cb/rfc26");
    assert_eq!(Topic::parse_content_topic("/waku/1/0x1980b7cb/rfc26"), Ok(topic));
    // Like Go: uppercase hex, short or long hex, and any first part are accepted.
    assert_eq!(Topic::parse_content_topic("/waku/1/0X1980B7CB/rfc26"), Ok(topic));
    assert_eq!(Topic::parse_content_topic("/waku/1/0x1980/rfc26"), Ok(Topic::from_bytes([0x19, 0x80, 0, 0])));
    assert_eq!(Topic::parse_content_topic("x/waku/1/0x1980b7cbff/rfc26"), Ok(topic));
    for bad in [
        "/waku/2/0x1980b7cb/rfc26",
        "/waku/1/1980b7cb/rfc26",
        "/waku/1/0x1980b7c/rfc26",
        "/waku/1/0x1980b7cb/proto",
        "/waku/1/0x1980b7cb/rfc26/",
        "",
    ] {
        assert!(Topic::parse_content_topic(bad).is_err(), "{bad}");
    }
}

#[test]
fn magnetlink_helpers_return_both_chats() {
    let community = CommunityId::from_secret_key(&key("c1"));
    let ids = ids::magnetlink_chat_ids(&community);
    assert_eq!(ids[0], community.magnetlinks_chat_id());
    assert_eq!(ids[1], community.member_update_chat_id());
    assert_eq!(MagnetlinkChannel::default(), MagnetlinkChannel::Magnetlinks);
    let topics = ids::magnetlink_topics(&community);
    let content_topics = ids::magnetlink_content_topics(&community);
    assert_eq!(content_topics[1], topics[1].content_topic());
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    assert_eq!(ring.len(), 2);
    assert!(topics.iter().all(|topic| ring.get(topic).is_some()));
}

#[test]
fn member_update_channel_is_accepted_too() {
    let community_key = key("c2");
    let community = CommunityId::from_secret_key(&community_key);
    let params = MagnetlinkParams {
        community_key: &community_key,
        identity_key: &community_key,
        magnet_uri: "magnet:?xt=urn:btih:aa",
        clock: 3,
        installation_id: "",
        bundle: None,
        timestamp_ns: 5,
        channel: MagnetlinkChannel::MemberUpdate,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    let built = build_magnetlink(&params, cache()).expect("build");
    assert_eq!(built.chat_id, community.member_update_chat_id());
    let verdict = parse(&built.waku_message, &community).expect("accepted");
    assert_eq!(verdict.chat_id, community.member_update_chat_id());
}

/// status-go-wire.md §3.5: a bare AMM (no ProtocolMessage) is accepted; §3.4: it must not be
/// taken for a segment although protobuf-go's leniency would.
#[test]
fn bare_amm_is_accepted_and_not_a_segment() {
    let community_key = key("c3");
    let community = CommunityId::from_secret_key(&community_key);
    let amm = sign_amm(magnetlink_bytes(9, "magnet:?x"), MAGNETLINK_TYPE, &community_key).encode_to_vec();
    assert_eq!(detect_segment(&amm), None);
    let empty_payload_amm =
        chs_proto::protobuf::ApplicationMetadataMessage { signature: vec![1; 65], payload: Vec::new(), r#type: 43 }
            .encode_to_vec();
    assert_eq!(detect_segment(&empty_payload_amm), None);
    let verdict = parse(&on_magnetlinks(&community, &amm, Some(&key("identity"))), &community).expect("accepted");
    assert_eq!(verdict.clock, 9);
    assert_eq!(verdict.layers.wrapper, envelope::Wrapper::Bare);
}

/// status-go-wire.md §3.7: an AMM without signature takes the payload signer as author, so a
/// payload signed by the community key carries an unsigned magnetlink.
#[test]
fn unsigned_amm_falls_back_to_the_transport_signer() {
    let community_key = key("c4");
    let community = CommunityId::from_secret_key(&community_key);
    let mut amm = sign_amm(magnetlink_bytes(1, "m"), MAGNETLINK_TYPE, &community_key);
    amm.signature.clear();
    let protocol = crate::envelope::wrap_public_message("i", None, amm.encode_to_vec());
    let data = protocol.encode_to_vec();
    let verdict = parse(&on_magnetlinks(&community, &data, Some(&community_key)), &community).expect("ok");
    assert!(!verdict.amm_signed);
    assert_eq!(
        parse(&on_magnetlinks(&community, &data, Some(&key("other"))), &community).err(),
        Some(RejectKind::NotSignedByCommunity)
    );
    assert_eq!(parse(&on_magnetlinks(&community, &data, None), &community).err(), Some(RejectKind::UnsignedPayload));
}

#[test]
fn bad_bundle_loses_the_message_like_status_go() {
    let community_key = key("c5");
    let community = CommunityId::from_secret_key(&community_key);
    let identity = key("identity5");
    let pre_key = PreKey {
        installation_id: "dev".to_owned(),
        signed_pre_key: key("pre").public_key().to_compressed(),
        version: 1,
    };
    let mut bundle = build_bundle(&identity, &[pre_key], 77);
    assert_eq!(verify_bundle(&bundle), Ok(identity.public_key()));
    bundle.timestamp += 1;
    assert_eq!(verify_bundle(&bundle), Err(BundleError::Mismatch));
    let mut short_identity = bundle.clone();
    short_identity.identity.truncate(20);
    assert_eq!(verify_bundle(&short_identity), Err(BundleError::Identity { len: 20 }));
    let amm = sign_amm(magnetlink_bytes(1, "m"), MAGNETLINK_TYPE, &community_key);
    let chat_key = cache().chat_key(&community.magnetlinks_chat_id());
    let params = EnvelopeParams {
        chat_key: &chat_key,
        transport_key: &identity,
        installation_id: "dev",
        bundle: Some(bundle),
        timestamp_ns: 1,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    let built = build_from_amm(&amm, &community_key.public_key(), &params).expect("build");
    assert_eq!(parse(&built.waku_message, &community).err(), Some(RejectKind::BadBundle));
}

#[test]
fn encrypted_protocol_message_and_wrong_version_are_rejected() {
    let signer = key("s");
    let mut protocol = ProtocolMessage { installation_id: "i".to_owned(), ..ProtocolMessage::default() };
    protocol.encrypted_message.insert(
        "none".to_owned(),
        EncryptedMessageProtocol { payload: vec![1, 2, 3], ..EncryptedMessageProtocol::default() },
    );
    assert_eq!(
        unwrap_status(&protocol.encode_to_vec(), &signer.public_key()).map_err(|r| r.kind()),
        Err(RejectKind::EncryptedMessage)
    );
    let community = CommunityId::from_secret_key(&key("c6"));
    let mut message = on_magnetlinks(&community, b"x", Some(&signer));
    message.version = None;
    assert_eq!(parse(&message, &community).err(), Some(RejectKind::WrongVersion));
    message.content_topic = "/waku/2/default-content/proto".to_owned();
    assert_eq!(parse(&message, &community).err(), Some(RejectKind::BadContentTopic));
}

#[test]
fn accept_magnetlink_applies_status_go_member_rule() {
    let community_key = key("c7");
    let community = CommunityId::from_secret_key(&community_key);
    let params = MagnetlinkParams {
        community_key: &community_key,
        identity_key: &community_key,
        magnet_uri: "magnet:?xt=urn:btih:bb",
        clock: 1000,
        installation_id: "",
        bundle: None,
        timestamp_ns: 5,
        channel: MagnetlinkChannel::Magnetlinks,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    let built = build_magnetlink(&params, cache()).expect("build");
    let verdict = parse(&built.waku_message, &community).expect("parsed");
    let joined = MagnetlinkState { joined: true, ..MagnetlinkState::default() };
    let check =
        |state: &MagnetlinkState| accept_magnetlink(&verdict, &community, state).map_err(|reason| reason.kind());
    assert_eq!(check(&joined), Ok(()));
    // `>=`, not `>`: the same clock is accepted.
    assert_eq!(check(&MagnetlinkState { last_clock: 1000, ..joined.clone() }), Ok(()));
    assert_eq!(check(&MagnetlinkState { last_clock: 1001, ..joined.clone() }), Err(RejectKind::StaleClock));
    assert_eq!(check(&MagnetlinkState::default()), Err(RejectKind::NotJoined));
    assert_eq!(check(&MagnetlinkState { is_control_node: true, ..joined.clone() }), Err(RejectKind::ControlNode));
    assert_eq!(
        check(&MagnetlinkState { last_uri: Some("magnet:?xt=urn:btih:bb".to_owned()), ..joined.clone() }),
        Err(RejectKind::AlreadyFetched)
    );
    assert_eq!(check(&MagnetlinkState { last_uri: Some("magnet:?other".to_owned()), ..joined.clone() }), Ok(()));
    let other = CommunityId::from_secret_key(&key("c8"));
    assert_eq!(
        accept_magnetlink(&verdict, &other, &joined).map_err(|reason| reason.kind()),
        Err(RejectKind::NotSignedByCommunity)
    );
}

#[test]
fn reject_reasons_serialise_with_their_kind_name() {
    let reason = RejectReason::StaleClock { clock: 1, stored: 2 };
    let json = serde_json::to_value(&reason).expect("json");
    assert_eq!(json["reason"], reason.kind().as_str());
    assert_eq!(json["stored"], 2);
    assert_eq!(serde_json::to_value(RejectKind::NotSignedByCommunity).expect("json"), "not_signed_by_community");
    let mut counters = RejectCounters::new();
    counters.record_rejected(&reason);
    counters.record_rejected(&RejectReason::Undecryptable);
    counters.record_accepted();
    let json = serde_json::to_value(&counters).expect("json");
    assert_eq!(json["rejected"]["stale_clock"], 1);
    assert_eq!(json["accepted"], 1);
}

#[test]
fn segments_reassemble_in_any_order_and_once() {
    use crate::segment::{SegmentAssembler, SegmentError, SegmentOutcome, segment_payload};
    let signer = key("segmenter").public_key();
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let segments = segment_payload(&payload, 300);
    assert_eq!(segments.len(), 4);
    assert!(segments.iter().all(|segment| detect_segment(segment).is_some()));
    assert_eq!(segment_payload(&payload, 1000), vec![payload.clone()]);
    let mut assembler = SegmentAssembler::new(4);
    for (step, index) in [2usize, 0, 3].into_iter().enumerate() {
        assert_eq!(
            assembler.add(&segments[index], &signer),
            Ok(SegmentOutcome::Incomplete { received: step as u32 + 1, needed: 4 })
        );
    }
    // The same segment from another signer is another message.
    let other = key("other segmenter").public_key();
    assert!(matches!(assembler.add(&segments[1], &other), Ok(SegmentOutcome::Incomplete { received: 1, needed: 4 })));
    assert_eq!(assembler.add(&segments[1], &signer), Ok(SegmentOutcome::Complete(payload)));
    assert_eq!(assembler.add(&segments[0], &signer), Ok(SegmentOutcome::AlreadyCompleted));
    assert_eq!(assembler.pending(), 1);

    // A forged segment set whose bytes do not match the hash.
    let mut forged = segment_payload(&[9u8; 20], 10);
    let mut tampered = chs_proto::protobuf::SegmentMessage::decode(forged[1].as_slice()).expect("segment");
    tampered.payload[0] ^= 1;
    forged[1] = tampered.encode_to_vec();
    assert!(matches!(assembler.add(&forged[0], &signer), Ok(SegmentOutcome::Incomplete { .. })));
    assert_eq!(assembler.add(&forged[1], &signer), Err(SegmentError::HashMismatch));
    assert_eq!(assembler.add(b"\x0a\x01", &signer), Err(SegmentError::NotASegment));

    // Bounded memory: a fifth incomplete message evicts the oldest.
    let mut small = SegmentAssembler::new(2);
    for n in 0u8..3 {
        let parts = segment_payload(&[n; 30], 10);
        assert!(matches!(small.add(&parts[0], &signer), Ok(SegmentOutcome::Incomplete { .. })));
    }
    assert_eq!(small.pending(), 2);
}

#[test]
fn segmented_status_message_unwraps_once_complete() {
    use crate::envelope::unwrap_status_reassembling;
    use crate::segment::{SegmentAssembler, segment_payload};
    let author = key("big author");
    let amm = sign_amm(vec![0x42; 700], chs_proto::ApplicationMetadataMessageType::ChatMessage, &author);
    let protocol = crate::envelope::wrap_public_message("i", None, amm.encode_to_vec()).encode_to_vec();
    let segments = segment_payload(&protocol, 256);
    assert!(segments.len() >= 3);
    let mut assembler = SegmentAssembler::new(8);
    let signer = author.public_key();
    for segment in &segments[..segments.len() - 1] {
        assert_eq!(unwrap_status(segment, &signer).map_err(|reason| reason.kind()), Err(RejectKind::Segmented));
        assert_eq!(unwrap_status_reassembling(segment, &signer, &mut assembler), Ok(None));
    }
    let last = segments.last().expect("segments");
    let envelope = unwrap_status_reassembling(last, &signer, &mut assembler).expect("valid").expect("complete");
    assert_eq!(envelope.amm, amm);
    assert_eq!(envelope.signer, signer);
    // Unsegmented data passes straight through.
    let direct = unwrap_status_reassembling(&protocol, &signer, &mut assembler).expect("valid");
    assert_eq!(direct.map(|envelope| envelope.message_id), Some(envelope.message_id));
}
