//! A [`Wrapper`] (an encrypted community's hash ratchet, status-go-archives.md §4.6): every new
//! archive and the index are wrapped, padding is computed on the wrapped bytes, and a later build
//! opens the wrapped index and appends.

use chs_archive::format::{decode_archive, decode_index};
use chs_archive::{BuildOptions, Builder, DecodeError, MemorySource, PIECE_LENGTH, WrapError, Wrapper};
use chs_proto::Message as _;
use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};

use crate::common::*;

/// Wraps into a hash-ratchet `ProtocolMessage` whose payload is the plaintext reversed (the
/// cipher is chs-status's business; this checks what the builder does with the wrapper).
#[derive(Default)]
struct Reverse {
    seq_no: u32,
    opened: usize,
}

impl Wrapper for Reverse {
    fn wrap(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.seq_no += 1;
        let mut message = ProtocolMessage { installation_id: "inst".to_owned(), ..ProtocolMessage::default() };
        let header =
            HrHeader { seq_no: self.seq_no, group_id: vec![2; 33], key_id: vec![7; 32], ..HrHeader::default() };
        let payload = plaintext.iter().rev().copied().collect();
        let hr = EncryptedMessageProtocol { hr_header: Some(header), payload, ..EncryptedMessageProtocol::default() };
        message.encrypted_message.insert("none".to_owned(), hr);
        Ok(message.encode_to_vec())
    }

    fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.opened += 1;
        let message = ProtocolMessage::decode(wrapped).map_err(|e| WrapError(e.to_string()))?;
        let hr = message.encrypted_message.get("none").ok_or_else(|| WrapError("no hr".to_owned()))?;
        Ok(hr.payload.iter().rev().copied().collect())
    }
}

fn open(bytes: &[u8]) -> Vec<u8> {
    Reverse::default().unwrap(bytes).expect("unwrap")
}

#[test]
fn wrapper_wraps_every_archive_and_the_index_and_a_later_build_appends() {
    let dir = tempdir();
    let mut wrapper = Reverse::default();
    let first = vec![status_go_message(JAN1 + HOUR, TOPIC, 1), status_go_message(JAN1 + WEEK + HOUR, TOPIC, 2)];
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 2 * WEEK);
    options.from = Some(JAN1);
    let report = Builder::new(dir.path(), options).wrapper(&mut wrapper).run(&MemorySource::new(first)).expect("build");
    assert_eq!(report.archives.len(), 2);
    // Two archives, then the index (committed once per window: two index writes).
    assert_eq!(wrapper.seq_no, 4);
    let index_bytes = read(dir.path(), "index");
    assert!(matches!(decode_index(&index_bytes), Err(DecodeError::Encrypted { .. })));
    let index = decode_index(&open(&index_bytes)).expect("the unwrapped index");
    assert_eq!(index.archives.len(), 2);
    let data = read(dir.path(), "data");
    for archive in &report.archives {
        let entry = &index.archives[&archive.id];
        let raw = &data[entry.offset as usize..(entry.offset + entry.size - entry.padding) as usize];
        // Padding computed on the wrapped bytes (§4.7), and the wrapped bytes are what status-go reads.
        assert_eq!(entry.size - entry.padding, raw.len() as u64);
        assert_eq!(entry.size % PIECE_LENGTH, 0);
        assert!(matches!(decode_archive(raw), Err(DecodeError::Encrypted { .. })));
        let plain = decode_archive(&open(raw)).expect("the unwrapped archive");
        assert_eq!(plain.messages.len(), 1);
        assert_eq!(plain.metadata, entry.metadata);
    }
    // A later build opens the wrapped index and appends a third archive.
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 3 * WEEK);
    options.from = Some(JAN1);
    let later = vec![status_go_message(JAN1 + 2 * WEEK + HOUR, TOPIC, 3)];
    let report =
        Builder::new(dir.path(), options).wrapper(&mut wrapper).run(&MemorySource::new(later)).expect("append");
    assert_eq!(wrapper.opened, 1);
    assert_eq!(report.archives.len(), 1);
    let index = decode_index(&open(&read(dir.path(), "index"))).expect("index");
    assert_eq!(index.archives.len(), 3);
    // Without the wrapper the wrapped index is refused as before (nothing appended blind).
    let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 4 * WEEK);
    options.from = Some(JAN1);
    let more = vec![status_go_message(JAN1 + 3 * WEEK + HOUR, TOPIC, 4)];
    assert!(Builder::new(dir.path(), options).run(&MemorySource::new(more)).is_err());
}
