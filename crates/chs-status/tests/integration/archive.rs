//! What the control node stores (capture) and what members read back (history).

use chs_proto::Message as _;
use chs_proto::encryption::ProtocolMessage;
use chs_proto::protobuf::{SegmentMessage, WakuMessage as ArchivedMessage};
use chs_proto::waku::{WakuMessage, message_hash};
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::envelope::{EnvelopeParams, build_from_amm, waku_message};
use chs_status::history::{ChatMessageParams, build_chat_message, decode_archived};
use chs_status::{ChatKeyRing, CommunityId, RejectCounters, RejectKind, Topic};
use chs_waku_payload::{EncodeOptions, NonceSource, Padding, PublicKey, SecretKey, keccak256};

use crate::support::{cache, community_id, community_key, field, identity_key, unhex};

const PUBSUB: &str = "/waku/2/rs/16/32";
const CHANNEL: &str = "8f1c2d4e-1111-4222-8333-944455556666";

fn author(n: u8) -> SecretKey {
    SecretKey::from_bytes(&keccak256(&[b'a', n])).expect("key")
}

fn chat(author: &SecretKey, community: &CommunityId, text: &str, clock: u64) -> WakuMessage {
    let params = ChatMessageParams {
        author,
        community,
        channel_uuid: CHANNEL,
        text,
        clock,
        timestamp_ms: 1_729_728_000_000 + clock,
        display_name: "alice",
        installation_id: "member-device",
        bundle: None,
        timestamp_ns: 1_729_728_001_500_000_000,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    build_chat_message(&params, cache()).expect("build").waku_message
}

fn channels(community: &CommunityId) -> ChatKeyRing {
    ChatKeyRing::for_channels(community, [CHANNEL], cache())
}

#[test]
fn captured_chat_message_is_what_status_go_stores_and_reads_back() {
    let community = community_id();
    let alice = author(1);
    let message = chat(&alice, &community, "hello, history", 42);
    let archived =
        capture_for_archive(&message, PUBSUB, &channels(&community), CapturePolicy::default()).expect("captured");
    // sig parses as an uncompressed secp256k1 key: the author's.
    assert_eq!(archived.sig.len(), 65);
    assert_eq!(PublicKey::from_sec1_bytes(&archived.sig), Ok(alice.public_key()));
    assert_eq!(archived.timestamp, 1_729_728_001);
    let chat_id = community.channel_chat_id(CHANNEL);
    assert_eq!(archived.topic, Topic::from_chat_id(&chat_id).as_bytes().to_vec());
    assert_eq!(archived.hash, message_hash(PUBSUB, &message).to_vec());
    assert!(archived.third_party_id.is_empty());
    // The payload is the decrypted data: a ProtocolMessage; data + padding + flags/size +
    // signature fill the 256-byte blocks.
    let protocol = ProtocolMessage::decode(archived.payload.as_slice()).expect("ProtocolMessage");
    assert_eq!(protocol.installation_id, "member-device");
    let size_field = if archived.payload.len() >= 256 { 2 } else { 1 };
    assert_eq!((1 + size_field + archived.payload.len() + archived.padding.len() + 65) % 256, 0);

    // It survives the archive's protobuf and reads back as a signed chat message.
    let reread = ArchivedMessage::decode(archived.encode_to_vec().as_slice()).expect("decode");
    let entry = decode_archived(&reread).expect("readable");
    assert_eq!(entry.type_name, "CHAT_MESSAGE");
    assert_eq!(entry.message_type, 1);
    assert!(entry.amm_signed);
    assert_eq!(entry.signer, alice.public_key());
    assert_eq!(entry.transport_signer, alice.public_key());
    assert_eq!(entry.clock, Some(42));
    assert_eq!(entry.timestamp_s, 1_729_728_001);
    let text = entry.chat.as_ref().expect("chat text");
    assert_eq!(text.text, "hello, history");
    assert_eq!(text.chat_id, chat_id);
    assert_eq!(text.content_type, 1);
    assert_eq!(text.message_type, 5);
    assert_eq!(text.display_name, "alice");
    let json = serde_json::to_value(&entry).expect("serialise");
    assert_eq!(json["chat"]["text"], "hello, history");
    assert_eq!(json["signer"], alice.public_key().to_string());
}

#[test]
fn captured_magnetlink_vector_fields() {
    let community = community_id();
    let message = WakuMessage::decode(unhex(field("waku_message")).as_slice()).expect("decode");
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let archived = capture_for_archive(&message, PUBSUB, &ring, CapturePolicy::default()).expect("captured");
    assert_eq!(archived.sig, identity_key().public_key().to_uncompressed().to_vec());
    assert_eq!(archived.timestamp, 1_729_728_000);
    assert_eq!(hex::encode(&archived.topic), "1980b7cb");
    assert_eq!(hex::encode(&archived.payload), field("protocol_message"));
    assert_eq!(archived.padding, (1..=247u32).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(hex::encode(&archived.hash), field("waku_message_hash"));
    assert_eq!(
        chs_status::archive::capture_encoded(&unhex(field("waku_message")), PUBSUB, &ring, CapturePolicy::default()),
        Ok(archived.clone())
    );
    assert_eq!(
        chs_status::archive::capture_encoded(&[0xff], PUBSUB, &ring, CapturePolicy::default())
            .map_err(|reason| reason.kind()),
        Err(RejectKind::MalformedWakuMessage)
    );
    let entry = decode_archived(&archived).expect("readable");
    assert_eq!(entry.signer, community_key().public_key());
    assert_eq!(entry.clock, Some(1_729_728_000_000));
    assert_eq!(entry.chat, None);
}

#[test]
fn capture_rejections_are_counted_by_reason() {
    let community = community_id();
    let ring = channels(&community);
    let alice = author(2);
    let mut counters = RejectCounters::new();
    let mut capture = |message: &WakuMessage, policy: CapturePolicy| {
        counters.record(capture_for_archive(message, PUBSUB, &ring, policy)).map_err(|reason| reason.kind())
    };
    let good = chat(&alice, &community, "ok", 1);
    assert!(capture(&good, CapturePolicy::default()).is_ok());

    // Another chat's topic (the magnetlinks chat is not archived).
    let magnetlink = WakuMessage::decode(unhex(field("waku_message")).as_slice()).expect("decode");
    assert_eq!(capture(&magnetlink, CapturePolicy::default()), Err(RejectKind::UnknownTopic));

    // Right topic, wrong key.
    let mut wrong_key = good.clone();
    wrong_key.payload[0] ^= 1;
    assert_eq!(capture(&wrong_key, CapturePolicy::default()), Err(RejectKind::Undecryptable));

    let chat_key = cache().chat_key(&community.channel_chat_id(CHANNEL));
    let data = chs_waku_payload::decrypt_symmetric(&chat_key.key, &good.payload).expect("decrypts");
    let parsed = chs_waku_payload::parse_plaintext(data).expect("parses");
    let reencode = |data: &[u8], signing_key: Option<&SecretKey>| {
        let options = EncodeOptions { signing_key, ..EncodeOptions::default() };
        let payload = chs_waku_payload::encode_symmetric(data, &chat_key.key, &options).expect("encode");
        waku_message(payload, &chat_key.topic, 1_729_728_001_500_000_000)
    };

    // Unsigned 26/WAKU2 payload.
    assert_eq!(capture(&reencode(parsed.data(), None), CapturePolicy::default()), Err(RejectKind::UnsignedPayload));

    // A segment: rejected by default, kept when asked.
    let segment = SegmentMessage {
        entire_message_hash: vec![7; 32],
        index: 0,
        segments_count: 2,
        payload: vec![1, 2, 3],
        ..SegmentMessage::default()
    }
    .encode_to_vec();
    let segment_message = reencode(&segment, Some(&alice));
    assert_eq!(capture(&segment_message, CapturePolicy::default()), Err(RejectKind::Segmented));
    let keep = CapturePolicy { keep_unverifiable: true, ..CapturePolicy::default() };
    assert!(capture(&segment_message, keep).is_ok());

    // An unsigned AMM (status-go would attribute it to the payload signer).
    let mut amm = chs_status::amm::sign_amm(vec![8, 1], chs_proto::ApplicationMetadataMessageType::ChatMessage, &alice);
    amm.signature.clear();
    let params = EnvelopeParams {
        chat_key: &chat_key,
        transport_key: &alice,
        installation_id: "x",
        bundle: None,
        timestamp_ns: 1,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    let unsigned_amm = build_from_amm(&amm, &alice.public_key(), &params).expect("build");
    assert_eq!(capture(&unsigned_amm.waku_message, CapturePolicy::default()), Err(RejectKind::BadAmmSignature));
    let lenient = CapturePolicy { require_amm_signature: false, ..CapturePolicy::default() };
    let archived = capture(&unsigned_amm.waku_message, lenient).expect("lenient capture");
    let _ = archived;

    assert_eq!(counters.accepted, 3);
    assert_eq!(counters.rejected(RejectKind::UnknownTopic), 1);
    assert_eq!(counters.rejected(RejectKind::Undecryptable), 1);
    assert_eq!(counters.rejected(RejectKind::UnsignedPayload), 1);
    assert_eq!(counters.rejected(RejectKind::Segmented), 1);
    assert_eq!(counters.rejected(RejectKind::BadAmmSignature), 1);
    assert_eq!(counters.total_rejected(), 5);
}

#[test]
fn history_rejects_bad_archived_sig_and_altered_text() {
    let community = community_id();
    let bob = author(3);
    let message = chat(&bob, &community, "second", 7);
    let mut archived =
        capture_for_archive(&message, PUBSUB, &channels(&community), CapturePolicy::default()).expect("captured");
    let original = archived.clone();
    archived.sig.truncate(33);
    assert_eq!(decode_archived(&archived).map_err(|reason| reason.kind()), Err(RejectKind::BadArchivedSig));
    // status-go's own test messages use sig = [1]: not importable.
    archived.sig = vec![1];
    assert_eq!(decode_archived(&archived).map_err(|reason| reason.kind()), Err(RejectKind::BadArchivedSig));
    // The AMM type is not covered by the signature (status-go-wire.md §2.3): altering it keeps
    // the author, with another type.
    let mut retyped = original.clone();
    let last = retyped.payload.len() - 1;
    retyped.payload[last] ^= 0x01;
    let entry = decode_archived(&retyped).expect("still signed");
    assert_eq!((entry.signer, entry.message_type), (bob.public_key(), 0));
    // Altered text no longer verifies against its author.
    let mut altered = original;
    let text_at = altered.payload.windows(6).position(|window| window == b"second").expect("text in payload");
    altered.payload[text_at] ^= 0x01;
    match decode_archived(&altered) {
        Ok(entry) => assert_ne!(entry.signer, bob.public_key()),
        Err(reason) => assert!(matches!(
            reason.kind(),
            RejectKind::MalformedAmm | RejectKind::BadAmmSignature | RejectKind::MalformedInner
        )),
    }
}

/// Issue 19 item 3: a control node archives what status-go archives in a token-gated
/// community: hash-ratchet-encrypted channel messages and segments, byte for byte as they
/// arrived after Waku's symmetric layer.
#[test]
fn control_node_policy_keeps_hash_ratchet_and_segments() {
    use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader};
    use chs_status::archive::PayloadKind;

    let community = community_id();
    let ring = channels(&community);
    let alice = author(4);
    let chat_key = cache().chat_key(&community.channel_chat_id(CHANNEL));
    let send = |data: &[u8]| {
        let options = EncodeOptions { signing_key: Some(&alice), ..EncodeOptions::default() };
        let payload = chs_waku_payload::encode_symmetric(data, &chat_key.key, &options).expect("encode");
        waku_message(payload, &chat_key.topic, 1_729_728_001_500_000_000)
    };
    // status-go's BuildHashRatchetMessage: {"none": HR header + ciphertext}, no bundle.
    let mut hr = ProtocolMessage { installation_id: "owner-device".into(), ..ProtocolMessage::default() };
    hr.encrypted_message.insert(
        "none".into(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader {
                seq_no: 3,
                group_id: community.as_bytes().to_vec(),
                key_id: vec![9; 32],
                ..HrHeader::default()
            }),
            payload: vec![0x5a; 77],
            ..EncryptedMessageProtocol::default()
        },
    );
    let hr_bytes = hr.encode_to_vec();
    let segment = SegmentMessage {
        entire_message_hash: vec![7; 32],
        index: 1,
        segments_count: 2,
        payload: vec![1; 300],
        ..SegmentMessage::default()
    }
    .encode_to_vec();
    let plain = chat(&alice, &community, "plain", 5);
    for (data, kind) in [(&hr_bytes, PayloadKind::HashRatchet), (&segment, PayloadKind::Segment)] {
        let message = send(data);
        assert!(capture_for_archive(&message, PUBSUB, &ring, CapturePolicy::default()).is_err());
        let archived = capture_for_archive(&message, PUBSUB, &ring, CapturePolicy::CONTROL_NODE).expect("kept");
        assert_eq!(&archived.payload, data, "archived as it arrived");
        assert_eq!(PublicKey::from_sec1_bytes(&archived.sig), Ok(alice.public_key()));
        assert_eq!(archived.hash, message_hash(PUBSUB, &message).to_vec());
        assert_eq!(PayloadKind::of(&archived.payload), kind);
    }
    let archived = capture_for_archive(&plain, PUBSUB, &ring, CapturePolicy::CONTROL_NODE).expect("plain");
    assert_eq!(PayloadKind::of(&archived.payload), PayloadKind::Plain);
    // Still refused under the control-node policy: wrong key, unsigned payload.
    let mut wrong_key = plain.clone();
    wrong_key.payload[0] ^= 1;
    assert_eq!(
        capture_for_archive(&wrong_key, PUBSUB, &ring, CapturePolicy::CONTROL_NODE).map_err(|r| r.kind()),
        Err(RejectKind::Undecryptable)
    );
}
