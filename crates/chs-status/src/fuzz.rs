//! Entry points for fuzzers (`cargo fuzz`): each feeds arbitrary bytes to a decoder and must
//! never panic. Keys are fixed and derived once per process.

use std::sync::OnceLock;

use chs_proto::Message as _;
use chs_proto::protobuf::WakuMessage as ArchivedMessage;
use chs_proto::waku::WakuMessage;
use chs_waku_payload::{EncodeOptions, NonceSource, Padding, PublicKey, SecretKey, SymmetricKey};

use crate::archive::{CapturePolicy, capture_for_archive};
use crate::envelope::{unwrap_status, waku_message};
use crate::history::decode_archived;
use crate::ids::{CommunityId, DEFAULT_PUBSUB_TOPIC};
use crate::keys::{ChatKey, ChatKeyRing};
use crate::magnetlink::parse_magnetlink;

struct Fixture {
    community: CommunityId,
    ring: ChatKeyRing,
    magnetlinks: ChatKey,
    signer: SecretKey,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let community_key = SecretKey::from_bytes(&[0x11; 32]).ok()?;
            let signer = SecretKey::from_bytes(&[0x22; 32]).ok()?;
            let community = CommunityId::from_secret_key(&community_key);
            // Fixed keys instead of PBKDF2, so fuzzing starts fast.
            let magnetlinks_id = community.magnetlinks_chat_id();
            let magnetlinks = ChatKey {
                topic: crate::ids::Topic::from_chat_id(&magnetlinks_id),
                chat_id: magnetlinks_id,
                key: SymmetricKey::from_bytes([0x33; 32]),
            };
            let mut ring = ChatKeyRing::new();
            ring.insert(magnetlinks.clone());
            Some(Fixture { community, ring, magnetlinks, signer })
        })
        .as_ref()
}

/// Fuzzes the magnetlink parser three ways: the input as an encoded `WakuMessage`; as the
/// data of a valid signed payload on the magnetlinks chat (reaching the Status layers); and as
/// the payload bytes of a `WakuMessage` (reaching the 26/WAKU2 decoder).
pub fn magnetlink(input: &[u8]) {
    let Some(fixture) = fixture() else { return };
    let pubsub = DEFAULT_PUBSUB_TOPIC;
    if let Ok(message) = WakuMessage::decode(input) {
        let _ = parse_magnetlink(&message, pubsub, &fixture.community, &fixture.ring);
    }
    let options = EncodeOptions {
        signing_key: Some(&fixture.signer),
        padding: Padding::Fixed(Vec::new()),
        nonce: NonceSource::Fixed([0; 12]),
    };
    if let Ok(payload) = chs_waku_payload::encode_symmetric(input, &fixture.magnetlinks.key, &options) {
        let message = waku_message(payload, &fixture.magnetlinks.topic, 1);
        let _ = parse_magnetlink(&message, pubsub, &fixture.community, &fixture.ring);
    }
    let raw = waku_message(input.to_vec(), &fixture.magnetlinks.topic, 1);
    let _ = parse_magnetlink(&raw, pubsub, &fixture.community, &fixture.ring);
    let _ = capture_for_archive(&raw, pubsub, &fixture.ring, CapturePolicy::default());
}

/// Fuzzes the Status layers (segment, `ProtocolMessage`, bundles, AMM) on raw payload data.
pub fn status_layers(input: &[u8]) {
    let Some(fixture) = fixture() else { return };
    let signer: PublicKey = fixture.signer.public_key();
    let _ = unwrap_status(input, &signer);
    let mut assembler = crate::segment::SegmentAssembler::new(2);
    let _ = crate::envelope::unwrap_status_reassembling(input, &signer, &mut assembler);
    let _ = crate::envelope::unwrap_status_reassembling(input, &signer, &mut assembler);
}

/// Fuzzes the history reader: the input as an encoded archived `WakuMessage`, and as the
/// payload of one with a valid `sig`.
pub fn archived(input: &[u8]) {
    let Some(fixture) = fixture() else { return };
    if let Ok(message) = ArchivedMessage::decode(input) {
        let _ = decode_archived(&message);
    }
    let message = ArchivedMessage {
        sig: fixture.signer.public_key().to_uncompressed().to_vec(),
        payload: input.to_vec(),
        ..ArchivedMessage::default()
    };
    let _ = decode_archived(&message);
}
