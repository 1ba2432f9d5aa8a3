//! `.torrent` and info-dict parsing (`chs_torrent::TorrentMeta`) and the bencode decoder.
//!
//! Invariants: a strictly decoded bencode value re-encodes to the same bytes; a parsed info dict
//! keeps its bytes verbatim (info hash = SHA-1 of the input) and rebuilding it from its parts
//! gives the same fields; a `.torrent` written from it parses back to the same info dict.
#![no_main]

use chs_torrent::bencode::Value;
use chs_torrent::{TorrentFileOptions, TorrentMeta};
use libfuzzer_sys::fuzz_target;

fn check_meta(meta: &TorrentMeta, info_bytes: &[u8]) {
    assert_eq!(meta.info_bytes(), info_bytes, "info bytes must be kept verbatim");
    let rebuilt = TorrentMeta::from_parts(
        meta.name().to_owned(),
        meta.piece_length(),
        meta.files().to_vec(),
        meta.pieces().to_vec(),
    )
    .expect("a parsed info dict rebuilds from its parts");
    assert_eq!(rebuilt.name(), meta.name());
    assert_eq!(rebuilt.piece_length(), meta.piece_length());
    assert_eq!(rebuilt.files(), meta.files());
    assert_eq!(rebuilt.pieces(), meta.pieces());
    let reparsed = TorrentMeta::from_info_bytes(rebuilt.info_bytes()).expect("our info dict parses");
    assert_eq!(reparsed, rebuilt);
    let torrent = meta.torrent_file_bytes(&TorrentFileOptions::default());
    let from_file = TorrentMeta::from_torrent_bytes(&torrent).expect("our .torrent parses");
    assert_eq!(&from_file, meta);
    let _ = meta.pieces_for_file_range(0, 0..meta.files()[0].length);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = Value::decode(data) {
        assert_eq!(value.encode(), data, "strict bencode must re-encode byte for byte");
    }
    if let Ok(meta) = TorrentMeta::from_info_bytes(data) {
        check_meta(&meta, data);
    }
    if let Ok(meta) = TorrentMeta::from_torrent_bytes(data) {
        let info = meta.info_bytes().to_vec();
        check_meta(&meta, &info);
    }
});
