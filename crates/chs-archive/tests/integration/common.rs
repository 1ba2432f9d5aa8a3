//! Shared helpers: status-go's test messages, a hand-written protobuf encoder for golden bytes,
//! and build shortcuts.

use std::path::Path;

use chs_archive::{BuildOptions, BuildReport, Builder, MemorySource, Topic};
use chs_proto::protobuf::WakuMessage;

/// 2020-01-01 00:00:00 UTC.
pub(crate) const JAN1: u64 = 1_577_836_800;
pub(crate) const HOUR: u64 = 3600;
pub(crate) const DAY: u64 = 86_400;
pub(crate) const WEEK: u64 = 7 * DAY;
/// keccak256("test-chat")[0..4], the topic of the spec's vectors.
pub(crate) const TOPIC: Topic = [0xa4, 0xab, 0xdf, 0x64];

/// status-go's `buildMessage(t, topic, hash)` (manager_test.go:1622-1632).
pub(crate) fn status_go_message(timestamp: u64, topic: Topic, hash: u8) -> WakuMessage {
    WakuMessage {
        sig: vec![1],
        timestamp,
        topic: topic.to_vec(),
        payload: vec![1],
        padding: vec![1],
        hash: vec![hash],
        third_party_id: String::new(),
    }
}

/// A message with a realistic 65-byte key, a 32-byte hash and a payload of `payload_len` bytes.
pub(crate) fn message(timestamp: u64, topic: Topic, seed: u32, payload_len: usize) -> WakuMessage {
    let mut sig = vec![0x04];
    sig.extend((0..64u32).map(|i| (seed.wrapping_mul(31).wrapping_add(i) & 0xff) as u8));
    WakuMessage {
        sig,
        timestamp,
        topic: topic.to_vec(),
        payload: (0..payload_len).map(|i| (seed as usize + i) as u8).collect(),
        padding: vec![0; (seed % 3) as usize],
        hash: (0..32u32).map(|i| (seed.wrapping_add(i * 7) & 0xff) as u8).collect(),
        third_party_id: if seed.is_multiple_of(5) { format!("discord-{seed}") } else { String::new() },
    }
}

/// Builds `[from, to)` from `messages` into `dir` with default options (7-day windows).
pub(crate) fn build(dir: &Path, messages: &[WakuMessage], topics: &[Topic], from: u64, to: u64) -> BuildReport {
    let mut options = BuildOptions::new(topics.to_vec(), to);
    options.from = Some(from);
    Builder::new(dir, options).run(&MemorySource::new(messages.to_vec())).expect("build")
}

pub(crate) fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("chs-archive-").tempdir().expect("tempdir")
}

// Hand-written protobuf encoding, composed from the spec's field tags (status-go-protobufs.md §1.1),
// independent of prost and of the code under test.

pub(crate) fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A varint field `tag v`, omitted when `v == 0` (proto3).
pub(crate) fn vi(tag: u8, v: u64) -> Vec<u8> {
    if v == 0 {
        return Vec::new();
    }
    let mut out = vec![tag];
    out.extend(varint(v));
    out
}

/// A length-delimited field `tag len body`.
pub(crate) fn ld(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// A bytes field, omitted when empty (proto3).
pub(crate) fn bytes_field(tag: u8, body: &[u8]) -> Vec<u8> {
    if body.is_empty() { Vec::new() } else { ld(tag, body) }
}

/// `WakuMessageArchiveMetadata` fields: from `10`, to `18`, contentTopic `22`.
pub(crate) fn metadata_body(from: u64, to: u64, topics: &[Topic]) -> Vec<u8> {
    let mut body = vi(0x10, from);
    body.extend(vi(0x18, to));
    for topic in topics {
        body.extend(ld(0x22, topic));
    }
    body
}

/// Archive `WakuMessage` fields: sig `0a`, timestamp `10`, topic `1a`, payload `22`, padding `2a`,
/// hash `32`, thirdPartyId `3a`.
pub(crate) fn message_body(m: &WakuMessage) -> Vec<u8> {
    let mut body = bytes_field(0x0a, &m.sig);
    body.extend(vi(0x10, m.timestamp));
    body.extend(bytes_field(0x1a, &m.topic));
    body.extend(bytes_field(0x22, &m.payload));
    body.extend(bytes_field(0x2a, &m.padding));
    body.extend(bytes_field(0x32, &m.hash));
    body.extend(bytes_field(0x3a, m.third_party_id.as_bytes()));
    body
}

/// `WakuMessageArchive`: metadata `12`, messages `1a`.
pub(crate) fn archive_bytes(from: u64, to: u64, topics: &[Topic], messages: &[WakuMessage]) -> Vec<u8> {
    let mut out = ld(0x12, &metadata_body(from, to, topics));
    for m in messages {
        out.extend(ld(0x1a, &message_body(m)));
    }
    out
}

/// `WakuMessageArchiveIndexMetadata`: metadata `12`, offset `18`, size `20`, padding `28`.
pub(crate) fn index_metadata_bytes(
    from: u64,
    to: u64,
    topics: &[Topic],
    offset: u64,
    size: u64,
    padding: u64,
) -> Vec<u8> {
    let mut out = ld(0x12, &metadata_body(from, to, topics));
    out.extend(vi(0x18, offset));
    out.extend(vi(0x20, size));
    out.extend(vi(0x28, padding));
    out
}

/// One `WakuMessageArchiveIndex.archives` entry: `0a len { 0a len key ; 12 len value }`.
pub(crate) fn index_entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut body = ld(0x0a, key.as_bytes());
    body.extend(ld(0x12, value));
    ld(0x0a, &body)
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}
