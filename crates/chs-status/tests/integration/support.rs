//! Shared fixtures: the keys and values of the end-to-end magnetlink vector.

use std::sync::OnceLock;

use chs_status::{ChatKeyCache, CommunityId, MagnetlinkChannel, MagnetlinkParams};
use chs_waku_payload::{NonceSource, Padding, SecretKey};

/// The vector file, copied from shared/spec/vectors/magnetlink-e2e.json.
pub(crate) fn vector() -> &'static serde_json::Value {
    static VECTOR: OnceLock<serde_json::Value> = OnceLock::new();
    VECTOR.get_or_init(|| serde_json::from_str(include_str!("../data/magnetlink-e2e.json")).expect("vector JSON"))
}

/// A string field of the vector.
pub(crate) fn field(name: &str) -> &'static str {
    vector()[name].as_str().expect("string field")
}

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).expect("test hex")
}

pub(crate) fn community_key() -> SecretKey {
    SecretKey::from_bytes(&unhex(field("community_sk"))).expect("key")
}

pub(crate) fn identity_key() -> SecretKey {
    SecretKey::from_bytes(&unhex(field("identity_sk"))).expect("key")
}

pub(crate) fn community_id() -> CommunityId {
    CommunityId::from_secret_key(&community_key())
}

/// One cache for the whole test binary: PBKDF2 runs once per chat id.
pub(crate) fn cache() -> &'static ChatKeyCache {
    static CACHE: OnceLock<ChatKeyCache> = OnceLock::new();
    CACHE.get_or_init(ChatKeyCache::new)
}

pub(crate) fn vector_padding() -> Vec<u8> {
    (1..=247u32).map(|i| (i % 256) as u8).collect()
}

pub(crate) fn vector_nonce() -> [u8; 12] {
    std::array::from_fn(|i| i as u8)
}

/// The vector's build parameters (keys must outlive the result).
pub(crate) fn vector_params<'a>(community_key: &'a SecretKey, identity_key: &'a SecretKey) -> MagnetlinkParams<'a> {
    MagnetlinkParams {
        community_key,
        identity_key,
        magnet_uri: field("magnet_uri"),
        clock: vector()["clock"].as_u64().expect("clock"),
        installation_id: field("installation_id"),
        bundle: None,
        timestamp_ns: vector()["waku_timestamp_ns"].as_i64().expect("timestamp"),
        channel: MagnetlinkChannel::Magnetlinks,
        padding: Padding::Fixed(vector_padding()),
        nonce: NonceSource::Fixed(vector_nonce()),
    }
}
