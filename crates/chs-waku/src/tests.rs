//! Unit tests of the pure parts: topics, validation, the metadata codec and rules, node keys.

use std::time::Duration;

use chs_proto::Message as _;
use chs_proto::waku::WakuMessage;
use futures::io::Cursor;
use libp2p::request_response::Codec as _;

use crate::metadata::{MetadataCodec, encode_varint, read_length_prefixed};
use crate::topic::RelayShard;
use crate::validation::{Rejection, ValidationConfig, Verdict, validate_bytes};
use crate::{MessageId, PeerMetadata, PeerRejection, metadata::check_peer_metadata};

const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn good_message() -> WakuMessage {
    WakuMessage {
        payload: b"hello".to_vec(),
        content_topic: "/chs/1/test/proto".to_owned(),
        version: Some(0),
        timestamp: Some(NOW_NS),
        ..WakuMessage::default()
    }
}

#[test]
fn static_shard_topic_round_trip() {
    let shard = RelayShard::new(16, 32);
    assert_eq!(shard.pubsub_topic(), "/waku/2/rs/16/32");
    assert_eq!(RelayShard::from_pubsub_topic("/waku/2/rs/16/32"), Some(shard));
    assert_eq!("/waku/2/rs/16/1023".parse::<RelayShard>(), Ok(RelayShard::new(16, 1023)));
    assert_eq!(RelayShard::STATUS_DEFAULT.pubsub_topic(), crate::DEFAULT_PUBSUB_TOPIC);
}

#[test]
fn non_static_shard_topics_are_refused() {
    for topic in [
        "/waku/2/default-waku/proto",
        "/waku/2/rs/16",
        "/waku/2/rs/16/",
        "/waku/2/rs//32",
        "/waku/2/rs/+16/32",
        "/waku/2/rs/16/32/x",
        "/waku/2/rs/99999999999/1",
        "",
    ] {
        let err = topic.parse::<RelayShard>().expect_err(topic);
        assert_eq!(err.topic, topic);
    }
}

#[test]
fn valid_message_is_accepted() {
    let bytes = good_message().encode_to_vec();
    let decoded = validate_bytes(&bytes, NOW_NS, &ValidationConfig::default()).expect("valid");
    assert_eq!(decoded, good_message());
}

#[test]
fn message_without_timestamp_is_accepted() {
    let message = WakuMessage { timestamp: None, ..good_message() };
    validate_bytes(&message.encode_to_vec(), NOW_NS, &ValidationConfig::default()).expect("valid");
}

fn rejection_of(message: &WakuMessage, config: &ValidationConfig) -> Rejection {
    validate_bytes(&message.encode_to_vec(), NOW_NS, config).expect_err("must be refused")
}

#[test]
fn structural_faults_are_rejected() {
    let config = ValidationConfig::default();
    let malformed = validate_bytes(&[0xff, 0xff, 0xff], NOW_NS, &config).expect_err("garbage");
    assert!(matches!(malformed, Rejection::Malformed(_)), "{malformed:?}");
    assert_eq!(malformed.verdict(), Verdict::Reject);

    let cases = [
        (WakuMessage { content_topic: String::new(), ..good_message() }, Rejection::EmptyContentTopic),
        (WakuMessage { payload: Vec::new(), ..good_message() }, Rejection::EmptyPayload),
        (WakuMessage { meta: Some(vec![7; 65]), ..good_message() }, Rejection::MetaTooLong { len: 65 }),
        (WakuMessage { timestamp: Some(-1), ..good_message() }, Rejection::NegativeTimestamp { timestamp_ns: -1 }),
    ];
    for (message, expected) in cases {
        let rejection = rejection_of(&message, &config);
        assert_eq!(rejection, expected);
        assert_eq!(rejection.verdict(), Verdict::Reject, "{rejection}");
    }
    // 64 bytes of meta is the limit, not over it.
    validate_bytes(&WakuMessage { meta: Some(vec![7; 64]), ..good_message() }.encode_to_vec(), NOW_NS, &config)
        .expect("64-byte meta is fine");
}

#[test]
fn oversized_message_is_rejected_before_decoding() {
    let config = ValidationConfig { max_message_size: 100, ..ValidationConfig::default() };
    let message = WakuMessage { payload: vec![1; 200], ..good_message() };
    let size = message.encoded_len();
    assert_eq!(rejection_of(&message, &config), Rejection::Oversized { size, max: 100 });
    // Garbage that is too large is "oversized", not "malformed": no decoding is attempted.
    let rejection = validate_bytes(&[0xff; 101], NOW_NS, &config).expect_err("too large");
    assert_eq!(rejection, Rejection::Oversized { size: 101, max: 100 });
}

#[test]
fn timestamps_outside_the_window_are_ignored() {
    let config = ValidationConfig {
        max_future_skew: Some(Duration::from_secs(10)),
        max_age: Some(Duration::from_secs(60)),
        ..ValidationConfig::default()
    };
    let future = WakuMessage { timestamp: Some(NOW_NS + 11_000_000_000), ..good_message() };
    let rejection = rejection_of(&future, &config);
    assert_eq!(rejection, Rejection::TimestampInFuture { skew: Duration::from_secs(11) });
    assert_eq!(rejection.verdict(), Verdict::Ignore);

    let old = WakuMessage { timestamp: Some(NOW_NS - 61_000_000_000), ..good_message() };
    let rejection = rejection_of(&old, &config);
    assert_eq!(rejection, Rejection::TimestampTooOld { age: Duration::from_secs(61) });
    assert_eq!(rejection.verdict(), Verdict::Ignore);

    // Inside the window, and with the checks disabled, both pass.
    for ts in [NOW_NS + 9_000_000_000, NOW_NS - 59_000_000_000] {
        validate_bytes(&WakuMessage { timestamp: Some(ts), ..good_message() }.encode_to_vec(), NOW_NS, &config)
            .expect("inside the window");
    }
    let unchecked = ValidationConfig { max_future_skew: None, max_age: None, ..ValidationConfig::default() };
    validate_bytes(&future.encode_to_vec(), NOW_NS, &unchecked).expect("check disabled");
    validate_bytes(&old.encode_to_vec(), NOW_NS, &unchecked).expect("check disabled");
}

#[test]
fn extreme_timestamps_do_not_panic() {
    let config = ValidationConfig::default();
    for ts in [i64::MAX, i64::MIN, 0] {
        let message = WakuMessage { timestamp: Some(ts), ..good_message() };
        let _ = validate_bytes(&message.encode_to_vec(), NOW_NS, &config);
        let _ = validate_bytes(&message.encode_to_vec(), i64::MAX, &config);
        let _ = validate_bytes(&message.encode_to_vec(), i64::MIN, &config);
    }
}

#[test]
fn message_id_is_sha256_of_the_encoded_bytes() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        MessageId::of_bytes(b"abc").to_string(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let message = good_message();
    assert_eq!(MessageId::of_message(&message), MessageId::of_bytes(&message.encode_to_vec()));
}

#[test]
fn metadata_rules_follow_nwaku() {
    let ours = [32];
    let ok = PeerMetadata { cluster_id: Some(16), shards: vec![1, 32] };
    assert_eq!(check_peer_metadata(16, &ours, &ok), Ok(()));
    assert_eq!(
        check_peer_metadata(16, &ours, &PeerMetadata { cluster_id: Some(1), shards: vec![32] }),
        Err(PeerRejection::OtherCluster { ours: 16, theirs: 1 })
    );
    assert_eq!(
        check_peer_metadata(16, &ours, &PeerMetadata { cluster_id: None, shards: vec![32] }),
        Err(PeerRejection::NoClusterId)
    );
    assert_eq!(
        check_peer_metadata(16, &ours, &PeerMetadata { cluster_id: Some(16), shards: vec![64] }),
        Err(PeerRejection::NoCommonShard { ours: vec![32], theirs: vec![64] })
    );
    // An empty shard list on either side is tolerated.
    assert_eq!(check_peer_metadata(16, &ours, &PeerMetadata { cluster_id: Some(16), shards: vec![] }), Ok(()));
    assert_eq!(check_peer_metadata(16, &[], &PeerMetadata { cluster_id: Some(16), shards: vec![64] }), Ok(()));
}

#[test]
fn varint_matches_protobuf_encoding() {
    for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 20] {
        let mut ours = Vec::new();
        encode_varint(len, &mut ours);
        let mut reference = Vec::new();
        chs_proto::prost::encoding::encode_varint(len as u64, &mut reference);
        assert_eq!(ours, reference, "{len}");
    }
}

#[tokio::test]
async fn metadata_codec_round_trip_and_wire_bytes() {
    let protocol = libp2p::StreamProtocol::new(crate::METADATA_PROTOCOL);
    let request = PeerMetadata { cluster_id: Some(16), shards: vec![32, 64] };
    let mut wire = Vec::new();
    MetadataCodec.write_request(&protocol, &mut Cursor::new(&mut wire), request.clone()).await.expect("write");
    // As nwaku and go-waku: varint length 10, cluster_id=16 (08 10), the deprecated field 2
    // unpacked (10 20 10 40) and field 3 packed [32, 64] (1a 02 20 40): go-waku reads field 3 only.
    assert_eq!(hex::encode(&wire), "0a0810102010401a022040");
    let decoded = MetadataCodec.read_request(&protocol, &mut Cursor::new(&wire)).await.expect("read");
    assert_eq!(decoded, request);
    let decoded = MetadataCodec.read_response(&protocol, &mut Cursor::new(&wire)).await.expect("read");
    assert_eq!(decoded, request);
    // An older peer's packed field 2 alone is still read.
    let old = hex::decode("06081012022040").expect("hex");
    let decoded = MetadataCodec.read_response(&protocol, &mut Cursor::new(&old)).await.expect("read");
    assert_eq!(decoded, request);
}

#[tokio::test]
async fn metadata_codec_refuses_bad_frames() {
    // Length prefix announcing far more than the limit.
    let mut huge = Vec::new();
    encode_varint(1 << 20, &mut huge);
    let err = read_length_prefixed(&mut Cursor::new(huge)).await.expect_err("too large");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // Endless varint.
    let err = read_length_prefixed(&mut Cursor::new(vec![0xff; 12])).await.expect_err("endless varint");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    // Truncated body.
    let err = read_length_prefixed(&mut Cursor::new(vec![5, 1, 2])).await.expect_err("truncated");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    // Not a protobuf.
    let protocol = libp2p::StreamProtocol::new(crate::METADATA_PROTOCOL);
    let err = MetadataCodec.read_response(&protocol, &mut Cursor::new(vec![2, 0xff, 0xff])).await.expect_err("bad pb");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn node_key_is_created_once_and_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("nested/data");
    let first = crate::key::load_or_create(&data_dir).await.expect("create");
    let bytes = std::fs::read(data_dir.join(crate::NODE_KEY_FILE)).expect("key file");
    assert_eq!(bytes.len(), 32);
    let second = crate::key::load_or_create(&data_dir).await.expect("reload");
    assert_eq!(first.public(), second.public());
    // A secp256k1 peer id, as nwaku and go-waku have.
    assert!(first.public().to_peer_id().to_string().starts_with("16Uiu2"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data_dir.join(crate::NODE_KEY_FILE)).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Security item 5: an existing node key that others can read is made 0600 when loaded.
#[cfg(unix)]
#[tokio::test]
async fn private_keys_readable_by_others_existing_node_key_is_made_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = crate::key::load_or_create(dir.path()).await.expect("create");
    let path = dir.path().join(crate::NODE_KEY_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let again = crate::key::load_or_create(dir.path()).await.expect("reload");
    assert_eq!(first.public(), again.public());
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn bad_node_key_files_give_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(crate::NODE_KEY_FILE), [1u8; 31]).expect("write");
    let err = crate::key::load_or_create(dir.path()).await.expect_err("31 bytes");
    assert!(matches!(err, crate::KeyError::BadLength { len: 31, .. }), "{err:?}");
    std::fs::write(dir.path().join(crate::NODE_KEY_FILE), [0u8; 32]).expect("write");
    let err = crate::key::load_or_create(dir.path()).await.expect_err("zero secret");
    assert!(matches!(err, crate::KeyError::InvalidSecret { .. }), "{err:?}");
}

#[tokio::test]
async fn metadata_codec_reads_newer_nwaku_encoding() {
    // Newer nwaku writes the shards twice: unpacked in field 2 (deprecated) and packed in
    // field 3. cluster_id=16 (08 10), field 2 = 32 (10 20), field 3 = packed [32] (1a 01 20).
    let protocol = libp2p::StreamProtocol::new(crate::METADATA_PROTOCOL);
    let wire = hex::decode("0708101020".to_owned() + "1a0120").expect("hex");
    let decoded = MetadataCodec.read_response(&protocol, &mut Cursor::new(&wire)).await.expect("read");
    assert_eq!(decoded, PeerMetadata { cluster_id: Some(16), shards: vec![32] });
}

fn received(pubsub_topic: &str, content_topic: &str, payload: &[u8]) -> crate::ReceivedMessage {
    let message = WakuMessage { payload: payload.to_vec(), content_topic: content_topic.to_owned(), ..good_message() };
    crate::ReceivedMessage {
        pubsub_topic: pubsub_topic.to_owned(),
        message_id: MessageId::of_message(&message),
        message,
        propagation_source: crate::PeerId(crate::key::ephemeral().public().to_peer_id()),
    }
}

#[test]
fn content_filter_matches_topic_and_content_topics() {
    let on_a = received("/waku/2/rs/16/32", "/app/1/a/proto", b"x");
    let on_b = received("/waku/2/rs/16/32", "/app/1/b/proto", b"x");
    let elsewhere = received("/waku/2/rs/16/64", "/app/1/a/proto", b"x");
    let all = crate::ContentFilter::all();
    assert!(all.matches(&on_a) && all.matches(&on_b) && all.matches(&elsewhere));
    let only_a = crate::ContentFilter::new("/waku/2/rs/16/32", ["/app/1/a/proto"]);
    assert!(only_a.matches(&on_a));
    assert!(!only_a.matches(&on_b));
    assert!(!only_a.matches(&elsewhere));
    let whole_topic = crate::ContentFilter::new("/waku/2/rs/16/64", Vec::<String>::new());
    assert!(whole_topic.matches(&elsewhere) && !whole_topic.matches(&on_a));
}

#[test]
fn json_output_of_a_received_message() {
    let text = received("/waku/2/rs/16/32", "/app/1/a/proto", b"hi");
    let json = text.to_json();
    assert_eq!(json["pubsub_topic"], "/waku/2/rs/16/32");
    assert_eq!(json["content_topic"], "/app/1/a/proto");
    assert_eq!(json["payload_hex"], "6869");
    assert_eq!(json["payload_utf8"], "hi");
    assert_eq!(json["timestamp"], NOW_NS);
    assert_eq!(json["version"], 0);
    assert_eq!(json["message_id"], text.message_id.to_string());
    assert_eq!(json["message_hash"], hex::encode(chs_proto::waku::message_hash("/waku/2/rs/16/32", &text.message)));
    assert_eq!(json["from"], text.propagation_source.to_string());
    let binary = received("/waku/2/rs/16/32", "/app/1/a/proto", &[0xff, 0xfe]);
    assert_eq!(binary.to_json()["payload_utf8"], serde_json::Value::Null);
    assert_eq!(binary.to_json()["meta_hex"], serde_json::Value::Null);
}

#[test]
fn peer_ids_parse_and_print() {
    let id = crate::PeerId(crate::key::ephemeral().public().to_peer_id());
    assert_eq!(id.to_string().parse::<crate::PeerId>(), Ok(id));
    let err = "not-a-peer-id".parse::<crate::PeerId>().expect_err("invalid");
    assert_eq!(err.text, "not-a-peer-id");
}
