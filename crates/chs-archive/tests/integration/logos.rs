//! Issue 20 item 5: a Logos Storage index built by hand from status-go's field numbers
//! (`LogosStorageWakuMessageArchiveIndex{archives = 1}`, entry `{version = 1, metadata = 2,
//! cid = 3}`, metadata `{version = 1, from = 2, to = 3, contentTopic = 4}`), reproduced by our
//! encoder; archive id = "0x" + hex Keccak-256 of the entry encoded with `version` unset.

use std::collections::BTreeSet;

use chs_archive::format::archive_metadata;
use chs_archive::logos::{
    LogosStorageWakuMessageArchiveIndex, decode_logos_index, encode_logos_index, logos_archive_id, logos_entry,
    missing_ids,
};
use sha3::Digest as _;

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Field `number` with wire type 0.
fn field_varint(out: &mut Vec<u8>, number: u64, value: u64) {
    varint(out, number << 3);
    varint(out, value);
}

/// Field `number` with wire type 2.
fn field_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `WakuMessageArchiveMetadata{from = 2, to = 3, contentTopic = 4...}`, version unset.
fn metadata_bytes(from: u64, to: u64, topics: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::new();
    field_varint(&mut out, 2, from);
    field_varint(&mut out, 3, to);
    for topic in topics {
        field_bytes(&mut out, 4, topic);
    }
    out
}

/// `LogosStorageWakuMessageArchiveIndexMetadata{metadata = 2, cid = 3}`, version unset.
fn entry_bytes(metadata: &[u8], cid: &str) -> Vec<u8> {
    let mut out = Vec::new();
    field_bytes(&mut out, 2, metadata);
    field_bytes(&mut out, 3, cid.as_bytes());
    out
}

fn keccak_id(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(sha3::Keccak256::digest(bytes)))
}

const CID_A: &str = "zDvZRwzmAkhzDRPH5EW242gJBNZ2T7aoH2v1fVH66FxXL4kSbvyM";
const CID_B: &str = "zDvZRwzmCyaY3vTGvXuXQqmHjSBJ3s7X6nxRn6WBXm1KQMtxjMyY";

#[test]
fn logos_index_hand_built_bytes_reproduced() {
    let topics = [[0xde, 0xad, 0xbe, 0xef], [0x01, 0x02, 0x03, 0x04]];
    let windows = [(1_700_000_000u64, 1_700_604_800u64, CID_A), (1_700_604_800, 1_701_209_600, CID_B)];

    // By hand: each entry, its id, then the index as map entries {key = 1, value = 2} in key order.
    let mut by_hand: Vec<(String, Vec<u8>)> = windows
        .iter()
        .map(|&(from, to, cid)| {
            let entry = entry_bytes(&metadata_bytes(from, to, &topics), cid);
            (keccak_id(&entry), entry)
        })
        .collect();
    by_hand.sort();
    let mut index_by_hand = Vec::new();
    for (id, entry) in &by_hand {
        let mut map_entry = Vec::new();
        field_bytes(&mut map_entry, 1, id.as_bytes());
        field_bytes(&mut map_entry, 2, entry);
        field_bytes(&mut index_by_hand, 1, &map_entry);
    }

    // Ours.
    let mut index = LogosStorageWakuMessageArchiveIndex::default();
    for &(from, to, cid) in &windows {
        let (id, entry) = logos_entry(archive_metadata(from, to, &topics), cid);
        assert_eq!(id, keccak_id(&entry_bytes(&metadata_bytes(from, to, &topics), cid)));
        assert!(id.starts_with("0x") && id.len() == 66);
        index.archives.insert(id, entry);
    }
    assert_eq!(hex::encode(encode_logos_index(&index)), hex::encode(&index_by_hand));
    assert_eq!(decode_logos_index(&index_by_hand).expect("decode"), index);

    // The id ignores `version` (status-go never sets it; an entry read with version 1 keeps its id).
    let id = by_hand[0].0.clone();
    let entry = index.archives[&id].clone();
    let versioned = chs_archive::logos::LogosStorageWakuMessageArchiveIndexMetadata { version: 1, ..entry };
    assert_eq!(logos_archive_id(&versioned), id);

    // Reverse (Go map) order decodes to the same index.
    let mut reversed = Vec::new();
    for (id, entry) in by_hand.iter().rev() {
        let mut map_entry = Vec::new();
        field_bytes(&mut map_entry, 1, id.as_bytes());
        field_bytes(&mut map_entry, 2, entry);
        field_bytes(&mut reversed, 1, &map_entry);
    }
    assert_eq!(decode_logos_index(&reversed).expect("decode"), index);

    // "Nothing new" is a set comparison.
    let have: BTreeSet<String> = [by_hand[0].0.clone(), "0xforeign".to_owned()].into();
    assert_eq!(missing_ids(&index, &have), vec![by_hand[1].0.as_str()]);
}

#[test]
fn logos_index_refuses_what_status_go_never_writes() {
    assert!(decode_logos_index(&[]).expect("empty").archives.is_empty());
    // Field 7 at top level.
    assert!(decode_logos_index(&[0x3a, 0x00]).is_err());
    // A ProtocolMessage (what hash-ratchet wrapping produces) is recognised, not misread.
    let wrapped = chs_proto::Message::encode_to_vec(&chs_proto::encryption::ProtocolMessage {
        installation_id: "i".into(),
        public_message: b"ciphertext".to_vec(),
        ..Default::default()
    });
    assert!(matches!(decode_logos_index(&wrapped), Err(chs_archive::DecodeError::Encrypted { .. })));
    // Truncated.
    assert!(decode_logos_index(&[0x0a, 0x10, 0x01]).is_err());
}
