//! The 14/WAKU2-MESSAGE decoder (`chs_proto::waku::WakuMessage`) and its deterministic hash:
//! decode → encode → decode is stable, the encoding has the announced length, and the hash of the
//! re-decoded message is the same.
#![no_main]

use chs_proto::Message as _;
use chs_proto::waku::{WakuMessage, message_hash};
use libfuzzer_sys::fuzz_target;

const PUBSUB_TOPIC: &str = "/waku/2/rs/16/32";

fuzz_target!(|data: &[u8]| {
    let Ok(message) = WakuMessage::decode(data) else { return };
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len());
    let again = WakuMessage::decode(encoded.as_slice()).expect("re-encoded WakuMessage decodes");
    assert_eq!(again, message);
    assert_eq!(message_hash(PUBSUB_TOPIC, &again), message_hash(PUBSUB_TOPIC, &message));
    // An absent meta hashes like an empty one, an absent timestamp like 0.
    let normalised = WakuMessage {
        meta: Some(message.meta.clone().unwrap_or_default()),
        timestamp: Some(message.timestamp.unwrap_or(0)),
        ..message.clone()
    };
    assert_eq!(message_hash(PUBSUB_TOPIC, &normalised), message_hash(PUBSUB_TOPIC, &message));
});
