//! Fuzz entry points (wired into cargo-fuzz targets by `cargo xtask fuzz`): each takes arbitrary
//! bytes, must never panic, and exercises the decoders the way a downloaded torrent would.

use crate::format::{self, PIECE_LENGTH};
use crate::reader::Reader;

/// Decodes arbitrary bytes as an `index` file, then lists and verifies it against empty `data`.
pub fn index(bytes: &[u8]) {
    if let Ok(reader) = Reader::from_bytes(bytes, Vec::new()) {
        let _ = reader.rows();
        let _ = reader.verify(PIECE_LENGTH);
        for entry in reader.entries() {
            let _ = entry.piece_range(PIECE_LENGTH);
            let _ = reader.extract(&entry.id);
        }
    }
}

/// Decodes arbitrary bytes as one archive.
pub fn archive(bytes: &[u8]) {
    let _ = format::decode_archive(bytes);
    let _ = format::count_top_level_field(bytes, 3);
}

/// Splits arbitrary bytes into an `index` and a `data` part (first two bytes = index length) and
/// runs the whole reader over them: list, rows, verify and extract of every archive.
pub fn directory(bytes: &[u8]) {
    let (len, rest) = match bytes {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => return,
    };
    let (index, data) = rest.split_at(len.min(rest.len()));
    if let Ok(reader) = Reader::from_bytes(index, data.to_vec()) {
        let _ = reader.rows();
        let _ = reader.verify(1);
        let _ = reader.verify(PIECE_LENGTH);
        for entry in reader.entries() {
            let _ = reader.extract(&entry.id);
        }
    }
}
