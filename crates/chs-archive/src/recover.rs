//! Damage to `index` found and repaired from `data`.
//!
//! `data` is append-only and self-describing: every archive starts on a piece boundary with its
//! metadata field, its messages follow, and zero padding fills it up to its size (status-go-archives.md
//! §4.5-4.8). An index whose keys are not the Keccak-256 of their entries, whose entries do not tile
//! `data` from offset 0, or whose metadata differs from the archive at its offset is damaged; it can
//! be rebuilt from `data` alone, byte for byte as the builder wrote it (entries sorted by key).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chs_proto::Message as _;
use chs_proto::protobuf::{WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata, WakuMessageArchiveMetadata};

use crate::format;

/// Largest metadata field read back (topics are 4 bytes each: this is ~100,000 topics).
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// The protobuf tag of `WakuMessageArchive.metadata` (field 2, length-delimited).
const TAG_METADATA: u8 = 0x12;
/// The protobuf tag of `WakuMessageArchive.messages` (field 3, length-delimited).
const TAG_MESSAGES: u8 = 0x1a;
/// The protobuf tag of `WakuMessageArchive.version` (field 1, varint).
const TAG_VERSION: u8 = 0x08;

/// Why an index does not describe its `data` (the first problem found).
/// `read_archives`: also check each entry's metadata against the archive in `data` (not for
/// wrapped archives, whose bytes are ciphertext).
pub(crate) fn damage(
    index: &WakuMessageArchiveIndex,
    data: &Path,
    data_len: u64,
    read_archives: bool,
) -> io::Result<Option<String>> {
    let mut entries: Vec<(&String, &WakuMessageArchiveIndexMetadata)> = index.archives.iter().collect();
    for (id, entry) in &entries {
        let expected = format::archive_id(entry);
        if **id != expected {
            return Ok(Some(format!("entry {id} is not the hash of its content ({expected})")));
        }
        if entry.size == 0 || entry.padding >= entry.size || entry.metadata.is_none() {
            return Ok(Some(format!("entry {id} has size {} and padding {}", entry.size, entry.padding)));
        }
    }
    entries.sort_by_key(|(_, e)| e.offset);
    let mut end = 0u64;
    for (id, entry) in &entries {
        if entry.offset != end {
            return Ok(Some(format!("entry {id} starts at {} where the previous one ends at {end}", entry.offset)));
        }
        end = end.saturating_add(entry.size);
    }
    if !read_archives {
        return Ok(None);
    }
    let mut file = BufReader::new(File::open(data)?);
    for (id, entry) in &entries {
        if entry.offset.saturating_add(entry.size) > data_len {
            // Not damage of the index: `data` is short (checked by the caller).
            break;
        }
        match read_metadata(&mut file, entry.offset)? {
            Some((meta, _)) if Some(&meta) == entry.metadata.as_ref() => {}
            _ => {
                return Ok(Some(format!(
                    "entry {id} names metadata that the archive at offset {} does not have",
                    entry.offset
                )));
            }
        }
    }
    Ok(None)
}

/// Reads the metadata field at the start of the archive at `offset`: `(metadata, bytes of the
/// version and metadata fields)`, or `None` if no plaintext archive starts there.
fn read_metadata(file: &mut BufReader<File>, offset: u64) -> io::Result<Option<(WakuMessageArchiveMetadata, u64)>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut pos = 0u64;
    let mut tag = read_byte(file)?;
    if tag == Some(TAG_VERSION) {
        let Some(n) = read_varint(file)? else { return Ok(None) };
        pos += 1 + n.1;
        tag = read_byte(file)?;
    }
    if tag != Some(TAG_METADATA) {
        return Ok(None);
    }
    let Some((len, len_bytes)) = read_varint(file)? else { return Ok(None) };
    if len > MAX_METADATA_BYTES {
        return Ok(None);
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    if file.read_exact(&mut buf).is_err() {
        return Ok(None);
    }
    let Ok(meta) = WakuMessageArchiveMetadata::decode(buf.as_slice()) else { return Ok(None) };
    Ok(Some((meta, pos + 1 + len_bytes + len)))
}

fn read_byte(file: &mut BufReader<File>) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match file.read_exact(&mut b) {
        Ok(()) => Ok(Some(b[0])),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// A protobuf varint: `(value, bytes it took)`; `None` at the end of the file or on overflow.
fn read_varint(file: &mut BufReader<File>) -> io::Result<Option<(u64, u64)>> {
    let mut value = 0u64;
    for i in 0..10u32 {
        let Some(b) = read_byte(file)? else { return Ok(None) };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, u64::from(i) + 1)));
        }
    }
    Ok(None)
}

/// Rebuilds the index of `data` (`data_len` bytes) by walking its archives: at each piece
/// boundary an archive's metadata field, then its messages fields, then zero padding up to the
/// size status-go's padding rule gives its length. Returns the index of the whole archives (an
/// incomplete tail is left out), or why `data` cannot be read this way (e.g. hash-ratchet-encrypted
/// archives).
pub(crate) fn rebuild(
    data: &Path,
    data_len: u64,
    piece_length: u64,
) -> io::Result<Result<WakuMessageArchiveIndex, String>> {
    let mut file = BufReader::new(File::open(data)?);
    let mut index = WakuMessageArchiveIndex::default();
    let mut offset = 0u64;
    while offset < data_len {
        let Some((metadata, mut pos)) = read_metadata(&mut file, offset)? else {
            return Ok(Err(format!("no plaintext archive starts at offset {offset} of {}", data.display())));
        };
        // Messages fields until the padding (a zero byte), the next archive or the end.
        loop {
            let at = offset + pos;
            if at >= data_len {
                break;
            }
            file.seek(SeekFrom::Start(at))?;
            match read_byte(&mut file)? {
                Some(TAG_MESSAGES) => {
                    let Some((len, len_bytes)) = read_varint(&mut file)? else {
                        return Ok(Err(format!("truncated message at offset {at}")));
                    };
                    pos = pos.saturating_add(1 + len_bytes).saturating_add(len);
                }
                _ => break,
            }
        }
        if offset + pos > data_len {
            return Ok(Err(format!("the archive at offset {offset} runs past the end of data")));
        }
        let (padding, size) = format::padding(pos, piece_length);
        if offset + size > data_len {
            // The tail of an interrupted append: not a whole archive.
            break;
        }
        let entry = WakuMessageArchiveIndexMetadata { version: 0, metadata: Some(metadata), offset, size, padding };
        index.archives.insert(format::archive_id(&entry), entry);
        offset += size;
    }
    Ok(Ok(index))
}
