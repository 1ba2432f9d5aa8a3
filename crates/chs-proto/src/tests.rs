//! Golden-byte tests: fixed values encode to the bytes of status-go-protobufs.md §10 (computed there
//! with protoc-gen-go from status-go's own .proto files), and decode back.

use prost::Message;

use crate::encryption::ProtocolMessage;
use crate::protobuf::{
    ApplicationMetadataMessage, ChatMessage, CommunityDescription, CommunityMessageArchiveMagnetlink,
    CommunityRequestToJoinResponse, SegmentMessage, SyncCommunitySettings, WakuMessage as ArchivedMessage,
    WakuMessageArchive, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata,
};
use crate::waku::{WakuMessage, message_hash};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("valid hex in test")
}

fn assert_golden<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M, golden: &[u8]) {
    assert_eq!(hex::encode(msg.encode_to_vec()), hex::encode(golden), "encoding of {msg:?}");
    assert_eq!(&M::decode(golden).expect("golden bytes decode"), msg);
}

const MAGNET: &str = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=0x02aa";

fn magnetlink() -> CommunityMessageArchiveMagnetlink {
    CommunityMessageArchiveMagnetlink { clock: 1_700_000_000_000, magnet_uri: MAGNET.to_owned() }
}

const MAGNETLINK_HEX: &str = "0880d095ffbc3112466d61676e65743a3f78743d75726e3a627469683a30313233343536373839616263646566303132333435363738396162636465663031323334353637\
26646e3d307830326161";

#[test]
fn magnetlink_golden() {
    assert_golden(&magnetlink(), &hx(MAGNETLINK_HEX));
}

#[test]
fn application_metadata_message_golden() {
    let signature: Vec<u8> = (0u8..=0x40).collect();
    let amm = ApplicationMetadataMessage {
        signature: signature.clone(),
        payload: hx(MAGNETLINK_HEX),
        r#type: crate::ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink as i32,
    };
    let golden = [hx("0a41"), signature, hx("124f"), hx(MAGNETLINK_HEX), hx("182b")].concat();
    assert_golden(&amm, &golden);
}

#[test]
fn application_metadata_type_numbers() {
    use crate::ApplicationMetadataMessageType as T;
    assert_eq!(T::ChatMessage as i32, 1);
    assert_eq!(T::CommunityDescription as i32, 25);
    assert_eq!(T::PinMessage as i32, 28);
    assert_eq!(T::CommunityMessageArchiveMagnetlink as i32, 43);
    assert_eq!(T::CommunityRequestToJoinResponse as i32, 48);
    assert_eq!(T::SyncCommunitySettings as i32, 49);
    assert_eq!(T::SyncContactRequestDecision as i32, 56);
    assert_eq!(T::CommunitySharedAddressesResponse as i32, 90);
    assert!(T::try_from(55).is_err(), "55 is unused in status-go");
    assert!(T::try_from(14).is_err(), "14 is reserved in status-go");
}

#[test]
fn protocol_message_golden() {
    let pm = ProtocolMessage { installation_id: "abc".into(), public_message: vec![1, 2], ..Default::default() };
    assert_golden(&pm, &hx("1203616263b206020102"));
}

#[test]
fn segment_message_golden() {
    let seg = SegmentMessage {
        entire_message_hash: vec![0x11; 32],
        index: 1,
        segments_count: 2,
        payload: vec![0xaa],
        ..Default::default()
    };
    assert_golden(&seg, &[hx("0a20"), vec![0x11; 32], hx("1001 1802 2201aa")].concat());
    let parity = SegmentMessage {
        entire_message_hash: vec![0x11; 32],
        payload: vec![0xaa],
        parity_segments_count: 1,
        ..Default::default()
    };
    assert_golden(&parity, &[hx("0a20"), vec![0x11; 32], hx("2201aa 3001")].concat());
}

fn window_metadata() -> WakuMessageArchiveMetadata {
    WakuMessageArchiveMetadata {
        version: 0,
        from: 1_577_836_800,
        to: 1_578_441_600,
        content_topic: vec![vec![1, 2, 3, 4]],
    }
}

#[test]
fn index_metadata_golden() {
    let first = WakuMessageArchiveIndexMetadata {
        metadata: Some(window_metadata()),
        offset: 0,
        size: 102_400,
        padding: 102_000,
        version: 0,
    };
    assert_golden(&first, &hx("12121080c2aff0051880b7d4f0052204010203042080a00628f09c06"));
    let second = WakuMessageArchiveIndexMetadata {
        metadata: Some(window_metadata()),
        offset: 102_400,
        size: 204_800,
        padding: 1000,
        version: 0,
    };
    assert_golden(&second, &hx("12121080c2aff0051880b7d4f0052204010203041880a0062080c00c28e807"));
}

#[test]
fn index_golden() {
    let id = "0xa0eb799e578a651c4ee89d7b1daf820d54b20374a68a3c535c222d7bca9d3c70";
    let first = WakuMessageArchiveIndexMetadata {
        metadata: Some(window_metadata()),
        offset: 0,
        size: 102_400,
        padding: 102_000,
        version: 0,
    };
    let index = WakuMessageArchiveIndex { archives: [(id.to_owned(), first)].into_iter().collect() };
    let golden =
        [hx("0a620a42"), id.as_bytes().to_vec(), hx("121c12121080c2aff0051880b7d4f0052204010203042080a00628f09c06")]
            .concat();
    assert_golden(&index, &golden);
}

#[test]
fn archive_golden() {
    let archive = WakuMessageArchive {
        version: 0,
        metadata: Some(window_metadata()),
        messages: vec![ArchivedMessage { timestamp: 1, payload: vec![1], ..Default::default() }],
    };
    assert_golden(&archive, &hx("12121080c2aff0051880b7d4f0052204010203041a051001220101"));
}

#[test]
fn archived_waku_message_golden() {
    let sig = [vec![4u8], vec![0; 64]].concat();
    let msg = ArchivedMessage {
        sig: sig.clone(),
        timestamp: 1_577_840_400,
        topic: vec![1, 2, 3, 4],
        payload: vec![1],
        padding: vec![1],
        hash: vec![0x22; 32],
        third_party_id: String::new(),
    };
    let golden = [hx("0a41"), sig, hx("1090deaff005 1a0401020304 220101 2a0101 3220"), vec![0x22; 32]].concat();
    assert_golden(&msg, &golden);
}

#[test]
fn chat_message_fields() {
    // §10 pins `ChatMessage{clock=1, sticker{hash="x"}, display_name="d"}`; our subset has no oneof
    // members, so we check that those bytes decode (the sticker is skipped) and the fields we declare.
    let decoded = ChatMessage::decode(hx("0801 720164 4a030a0178").as_slice()).expect("decodes");
    assert_eq!(decoded.clock, 1);
    assert_eq!(decoded.display_name, "d");
    let text = ChatMessage { clock: 7, text: "hi".into(), ..Default::default() };
    assert_golden(&text, &hx("0807 1a026869"));
}

#[test]
fn community_messages_golden() {
    assert_golden(
        &CommunityRequestToJoinResponse { clock: 1, accepted: true, magnet_uri: "m".into(), ..Default::default() },
        &hx("0801 1801 32016d"),
    );
    assert_golden(
        &CommunityDescription { clock: 1, archive_magnetlink_clock: 1_700_000_000_000, ..Default::default() },
        &hx("0801 4880d095ffbc31"),
    );
    assert_golden(
        &SyncCommunitySettings { clock: 1, community_id: "0x02".into(), history_archive_support_enabled: true },
        &hx("0801 120430783032 1801"),
    );
}

fn status_go_wire_message() -> WakuMessage {
    WakuMessage {
        payload: vec![0xde, 0xad],
        content_topic: "/waku/1/0x01020304/rfc26".into(),
        version: Some(1),
        timestamp: Some(1_700_000_000_123_456_789),
        meta: Some(Vec::new()),
        rate_limit_proof: None,
        ephemeral: Some(false),
    }
}

#[test]
fn waku_wire_message_golden() {
    let head = "0a02dead 1218 2f77616b752f312f307830313032303330342f7266633236 1801 50aab4aed8c7bfce972f";
    assert_golden(&status_go_wire_message(), &hx(&format!("{head} 5a00 f80100")));
    let bare = WakuMessage { meta: None, ephemeral: None, ..status_go_wire_message() };
    assert_golden(&bare, &hx(head));
    let rln = WakuMessage { meta: None, rate_limit_proof: Some(vec![7]), ..status_go_wire_message() };
    assert_golden(&rln, &hx(&format!("{head} aa010107 f80100")));
}

/// go-waku `waku/v2/protocol/pb/utils_test.go` at 0ed94ce0 (status-go-wire.md §4.1).
#[test]
fn message_hash_go_waku_vectors() {
    let envelope = WakuMessage {
        payload: b"Hello World".to_vec(),
        content_topic: "Test".into(),
        version: Some(1),
        timestamp: Some(123_456_789_123_456_789),
        ..Default::default()
    };
    assert_eq!(
        hex::encode(message_hash("test", &envelope)),
        "b659607f2aae18848dcaa7d51cb37e6cc6fc33402c704ff0c016337d83ad6150"
    );

    let mut msg = WakuMessage {
        payload: [&[1u8, 2, 3, 4][..], b"TEST", &[5, 6, 7, 8]].concat(),
        content_topic: "/waku/2/default-content/proto".into(),
        meta: Some(Vec::new()),
        timestamp: Some(123_456_789_123_456_789),
        ..Default::default()
    };
    let pubsub = "/waku/2/default-waku/proto";
    assert_eq!(
        hex::encode(message_hash(pubsub, &msg)),
        "f0183c2e370e473ff471bbe1028d0d8a940949c02f3007a1ccd21fed356852a0"
    );
    msg.meta = Some(b"super-secret".to_vec());
    assert_eq!(
        hex::encode(message_hash(pubsub, &msg)),
        "f673cd2c9c973d685b52ca74c2559e001733a3a31a49ffc7b6e8713decba5a55"
    );
    msg.payload.clear();
    assert_eq!(
        hex::encode(message_hash(pubsub, &msg)),
        "978ccc9a665029f9829d42d84e3a49ad3a4791cce53fb5a8b581ef43ad6b4d2f"
    );
    msg.timestamp = None;
    let unset = hex::encode(message_hash(pubsub, &msg));
    assert!(unset.starts_with("58e2fc03") && unset.ends_with("8f1f56"), "timestamp unset: {unset}");
}

mod roundtrip {
    use proptest::prelude::*;
    use prost::Message;

    use crate::protobuf::{
        WakuMessage as ArchivedMessage, WakuMessageArchive, WakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata,
    };
    use crate::waku::WakuMessage;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn metadata() -> impl Strategy<Value = WakuMessageArchiveMetadata> {
        (any::<u32>(), any::<u64>(), any::<u64>(), proptest::collection::vec(bytes(8), 0..4)).prop_map(
            |(version, from, to, content_topic)| WakuMessageArchiveMetadata { version, from, to, content_topic },
        )
    }

    fn archived() -> impl Strategy<Value = ArchivedMessage> {
        (bytes(70), any::<u64>(), bytes(5), bytes(300), bytes(40), bytes(33), ".{0,8}").prop_map(
            |(sig, timestamp, topic, payload, padding, hash, third_party_id)| ArchivedMessage {
                sig,
                timestamp,
                topic,
                payload,
                padding,
                hash,
                third_party_id,
            },
        )
    }

    proptest! {
        #[test]
        fn archive_roundtrip(version in any::<u32>(), metadata in proptest::option::of(metadata()), messages in proptest::collection::vec(archived(), 0..5)) {
            let archive = WakuMessageArchive { version, metadata, messages };
            let bytes = archive.encode_to_vec();
            prop_assert_eq!(bytes.len(), archive.encoded_len());
            prop_assert_eq!(WakuMessageArchive::decode(bytes.as_slice()).unwrap(), archive);
        }

        #[test]
        fn index_metadata_roundtrip(version in any::<u32>(), metadata in proptest::option::of(metadata()), offset in any::<u64>(), size in any::<u64>(), padding in any::<u64>()) {
            let entry = WakuMessageArchiveIndexMetadata { version, metadata, offset, size, padding };
            prop_assert_eq!(WakuMessageArchiveIndexMetadata::decode(entry.encode_to_vec().as_slice()).unwrap(), entry);
        }

        #[test]
        fn wire_message_roundtrip(payload in bytes(300), content_topic in ".{0,30}", version in proptest::option::of(any::<u32>()),
            timestamp in proptest::option::of(any::<i64>()), meta in proptest::option::of(bytes(64)), ephemeral in proptest::option::of(any::<bool>())) {
            let msg = WakuMessage { payload, content_topic, version, timestamp, meta, rate_limit_proof: None, ephemeral };
            prop_assert_eq!(WakuMessage::decode(msg.encode_to_vec().as_slice()).unwrap(), msg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in bytes(512)) {
            let _ = WakuMessageArchive::decode(data.as_slice());
            let _ = crate::protobuf::WakuMessageArchiveIndex::decode(data.as_slice());
            let _ = WakuMessage::decode(data.as_slice());
            let _ = crate::protobuf::ApplicationMetadataMessage::decode(data.as_slice());
            let _ = crate::encryption::ProtocolMessage::decode(data.as_slice());
        }
    }
}

/// Every vector of `proto/golden.json` (also decoded by `protoc` in `cargo xtask ci`) decodes with
/// prost and re-encodes to the same bytes.
#[test]
fn golden_json_vectors_roundtrip() {
    fn check<M: Message + Default>(bytes: &[u8]) -> Vec<u8> {
        M::decode(bytes).expect("golden vector decodes").encode_to_vec()
    }
    let text = include_str!("../../../proto/golden.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    assert!(vectors.len() >= 16);
    for v in vectors {
        let bytes = hx(v["hex"].as_str().unwrap());
        let again = match v["message"].as_str().unwrap() {
            "protobuf.CommunityMessageArchiveMagnetlink" => check::<CommunityMessageArchiveMagnetlink>(&bytes),
            "protobuf.ApplicationMetadataMessage" => check::<ApplicationMetadataMessage>(&bytes),
            "encryption.ProtocolMessage" => check::<ProtocolMessage>(&bytes),
            "protobuf.SegmentMessage" => check::<SegmentMessage>(&bytes),
            "protobuf.WakuMessageArchiveIndexMetadata" => check::<WakuMessageArchiveIndexMetadata>(&bytes),
            "protobuf.WakuMessageArchiveIndex" => check::<WakuMessageArchiveIndex>(&bytes),
            "protobuf.WakuMessageArchive" => check::<WakuMessageArchive>(&bytes),
            "protobuf.WakuMessage" => check::<ArchivedMessage>(&bytes),
            "protobuf.CommunityRequestToJoinResponse" => check::<CommunityRequestToJoinResponse>(&bytes),
            "protobuf.CommunityDescription" => check::<CommunityDescription>(&bytes),
            "protobuf.SyncCommunitySettings" => check::<SyncCommunitySettings>(&bytes),
            "waku.message.v1.WakuMessage" => check::<WakuMessage>(&bytes),
            other => panic!("golden.json names a message this test does not know: {other}"),
        };
        assert_eq!(hex::encode(again), hex::encode(&bytes), "{}", v["source"]);
    }
}
