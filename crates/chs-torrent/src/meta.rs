//! BitTorrent v1 metainfo built by us: the info dict of a folder, the `.torrent` file and the info hash.
//!
//! The layout follows anacrolix/torrent's `Info.BuildFromFilePath` as status-go uses it
//! (status-go-archives.md §4.10): multi-file form, files sorted by their `/`-joined path
//! byte-wise, `name` = the folder's base name, keys `files`, `name`, `piece length`, `pieces`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha1::{Digest, Sha1};

use crate::bencode::Value;
use crate::error::{Error, MetaError};

/// status-go's piece length: 100 KiB (status-go-archives.md §1.1).
pub const DEFAULT_PIECE_LENGTH: u32 = 100 * 1024;

/// The announce list status-go writes into every `.torrent` (status-go-archives.md §1.1):
/// two tiers with one UDP tracker each.
pub const STATUS_ANNOUNCE_LIST: [&str; 2] =
    ["udp://tracker.opentrackr.org:1337/announce", "udp://tracker.openbittorrent.com:6969/announce"];

/// A BitTorrent v1 info hash: the SHA-1 of the bencoded info dict.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The info hash of bencoded info-dict bytes.
    pub fn of_info_bytes(info_bytes: &[u8]) -> Self {
        Self(Sha1::digest(info_bytes).into())
    }

    /// 40 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl FromStr for InfoHash {
    type Err = Error;

    /// Parses 40 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidInfoHash(s.to_owned()))?;
        Ok(Self(out))
    }
}

/// One file of a multi-file torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components relative to the torrent's folder (e.g. `["data"]`).
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
}

impl FileEntry {
    /// The components joined with `/`, which is how files are sorted and named (`"data"`, `"index"`).
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// The v1 info dict of a multi-file torrent, plus its exact bencoded bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TorrentMeta {
    name: String,
    piece_length: u32,
    files: Vec<FileEntry>,
    pieces: Vec<[u8; 20]>,
    info_bytes: Vec<u8>,
}

impl fmt::Debug for TorrentMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorrentMeta")
            .field("name", &self.name)
            .field("info_hash", &self.info_hash())
            .field("piece_length", &self.piece_length)
            .field("files", &self.files)
            .field("n_pieces", &self.pieces.len())
            .finish()
    }
}

/// Extra top-level fields of a `.torrent` file; the defaults give status-go's layout minus the
/// node-specific `created by` and `creation date`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFileOptions {
    /// `announce-list` tiers; omitted when empty.
    pub announce_list: Vec<Vec<String>>,
    /// `created by`; status-go writes its node's uncompressed public key as `0x04…`.
    pub created_by: Option<String>,
    /// `creation date` in Unix seconds.
    pub creation_date: Option<i64>,
}

impl Default for TorrentFileOptions {
    fn default() -> Self {
        Self {
            announce_list: STATUS_ANNOUNCE_LIST.iter().map(|t| vec![(*t).to_owned()]).collect(),
            created_by: None,
            creation_date: None,
        }
    }
}

/// Number of pieces of `total` bytes at `piece_length`: exact multiples get no extra piece.
pub fn piece_count(total: u64, piece_length: u32) -> u64 {
    total.div_ceil(u64::from(piece_length))
}

impl TorrentMeta {
    /// Builds the info dict of `dir` (every regular file under it, recursively, sorted by path),
    /// reading and hashing all files, on all cores (see [`TorrentMeta::from_dir_threads`]).
    /// Blocking; call it from `spawn_blocking` in async code.
    pub fn from_dir(dir: &Path, piece_length: u32) -> Result<Self, Error> {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::from_dir_threads(dir, piece_length, threads)
    }

    /// [`TorrentMeta::from_dir`] with `threads` hashing threads (at least 1). The calling thread
    /// reads the files in order, in large sequential reads, into a bounded pool of buffers of
    /// whole pieces; with more than one thread the pieces are hashed by `threads` hashers while
    /// the next buffers are read, and the hashes are put back in piece order. Memory: a few
    /// buffers per thread, whatever the size of the folder. The result does not depend on
    /// `threads`. Blocking.
    pub fn from_dir_threads(dir: &Path, piece_length: u32, threads: usize) -> Result<Self, Error> {
        if piece_length == 0 {
            return Err(MetaError::ZeroPieceLength.into());
        }
        let name = dir_name(dir)?;
        let mut found = Vec::new();
        collect_files(dir, &mut Vec::new(), &mut found)?;
        found.sort_by_key(|(entry, _)| entry.display_path());
        let files: Vec<FileEntry> = found.iter().map(|(entry, _)| entry.clone()).collect();
        let total: u64 = files.iter().map(|f| f.length).sum();
        if total == 0 {
            return Err(MetaError::Empty.into());
        }
        let mut stream = PieceStream::new(&found, piece_length);
        let pieces = if threads <= 1 || total <= stream.chunk_len as u64 {
            hash_inline(&mut stream)?
        } else {
            hash_parallel(&mut stream, threads)?
        };
        Self::from_parts(name, piece_length, files, pieces)
    }

    /// Assembles an info dict from already computed parts, validating the piece count.
    pub fn from_parts(
        name: String,
        piece_length: u32,
        files: Vec<FileEntry>,
        pieces: Vec<[u8; 20]>,
    ) -> Result<Self, Error> {
        if piece_length == 0 {
            return Err(MetaError::ZeroPieceLength.into());
        }
        validate_name(&name)?;
        if files.is_empty() {
            return Err(MetaError::Empty.into());
        }
        for file in &files {
            if file.path.is_empty() {
                return Err(MetaError::BadPath(String::new()).into());
            }
            for component in &file.path {
                validate_name(component).map_err(|_| MetaError::BadPath(file.display_path()))?;
            }
        }
        let total: u64 = files.iter().map(|f| f.length).sum();
        let expected = piece_count(total, piece_length);
        if expected != pieces.len() as u64 || total == 0 {
            return Err(MetaError::PieceCount { expected, actual: pieces.len() as u64 }.into());
        }
        let info_bytes = encode_info(&name, piece_length, &files, &pieces);
        Ok(Self { name, piece_length, files, pieces, info_bytes })
    }

    /// Parses bencoded info-dict bytes (e.g. received by ut_metadata), keeping them verbatim for
    /// the info hash. Only the multi-file form is accepted, which is what status-go produces.
    pub fn from_info_bytes(info_bytes: &[u8]) -> Result<Self, Error> {
        let value = Value::decode(info_bytes).map_err(MetaError::Bencode)?;
        let dict = value.as_dict().ok_or(MetaError::Field("info"))?;
        let name = dict
            .get(b"name".as_slice())
            .and_then(Value::as_bytes)
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .ok_or(MetaError::Field("name"))?;
        let piece_length = dict
            .get(b"piece length".as_slice())
            .and_then(Value::as_int)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(MetaError::Field("piece length"))?;
        let pieces_raw = dict.get(b"pieces".as_slice()).and_then(Value::as_bytes).ok_or(MetaError::Field("pieces"))?;
        if pieces_raw.len() % 20 != 0 {
            return Err(MetaError::Field("pieces").into());
        }
        let pieces: Vec<[u8; 20]> = pieces_raw
            .chunks_exact(20)
            .map(|c| {
                let mut h = [0u8; 20];
                h.copy_from_slice(c);
                h
            })
            .collect();
        let files_value = dict.get(b"files".as_slice()).ok_or(MetaError::SingleFile)?;
        let mut files = Vec::new();
        for file in files_value.as_list().ok_or(MetaError::Field("files"))? {
            let file = file.as_dict().ok_or(MetaError::Field("files"))?;
            let length = file
                .get(b"length".as_slice())
                .and_then(Value::as_int)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(MetaError::Field("length"))?;
            let mut path = Vec::new();
            for component in file.get(b"path".as_slice()).and_then(Value::as_list).ok_or(MetaError::Field("path"))? {
                let component = component
                    .as_bytes()
                    .and_then(|b| String::from_utf8(b.to_vec()).ok())
                    .ok_or(MetaError::Field("path"))?;
                path.push(component);
            }
            files.push(FileEntry { path, length });
        }
        let mut meta = Self::from_parts(name, piece_length, files, pieces)?;
        // Keep the peer's exact bytes: they define the info hash even if they carry extra keys.
        meta.info_bytes = info_bytes.to_vec();
        Ok(meta)
    }

    /// Parses a `.torrent` file and returns its info dict (its raw bytes are kept verbatim).
    pub fn from_torrent_bytes(torrent: &[u8]) -> Result<Self, Error> {
        let span = info_span(torrent).ok_or(MetaError::Field("info"))?;
        Self::from_info_bytes(&torrent[span])
    }

    /// The torrent's `name` (for status-go archives: the community id string).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Piece length in bytes.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Files in torrent order.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Piece SHA-1 hashes in order.
    pub fn pieces(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// Total length of all files.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// The exact bencoded info dict.
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// SHA-1 of the info dict.
    pub fn info_hash(&self) -> InfoHash {
        InfoHash::of_info_bytes(&self.info_bytes)
    }

    /// Index of the file whose `/`-joined path is `path` (e.g. `"index"`).
    pub fn file_index(&self, path: &str) -> Option<usize> {
        self.files.iter().position(|f| f.display_path() == path)
    }

    /// Offset of file `idx` inside the concatenated torrent data.
    pub fn file_offset(&self, idx: usize) -> u64 {
        self.files.iter().take(idx).map(|f| f.length).sum()
    }

    /// Length of piece `piece` (the last one may be short); 0 past the end.
    pub fn piece_len(&self, piece: u32) -> u64 {
        let start = u64::from(piece) * u64::from(self.piece_length);
        let total = self.total_length();
        if start >= total { 0 } else { (total - start).min(u64::from(self.piece_length)) }
    }

    /// The pieces covering bytes `range` of file `file_idx`; empty for an empty range.
    pub fn pieces_for_file_range(&self, file_idx: usize, range: Range<u64>) -> Result<Range<u32>, Error> {
        let file = self.files.get(file_idx).ok_or(Error::NoSuchFile(file_idx.to_string()))?;
        if range.start > range.end || range.end > file.length {
            return Err(Error::RangeOutOfFile { start: range.start, end: range.end, file_len: file.length });
        }
        if range.is_empty() {
            return Ok(0..0);
        }
        let base = self.file_offset(file_idx);
        let pl = u64::from(self.piece_length);
        let first = (base + range.start) / pl;
        let last = (base + range.end).div_ceil(pl);
        let to_u32 = |n: u64| u32::try_from(n).map_err(|_| Error::from(MetaError::TooManyPieces));
        Ok(to_u32(first)?..to_u32(last)?)
    }

    /// The bencoded `.torrent` file: `announce-list`, `created by`, `creation date`, `info`
    /// (keys sorted, the info dict inserted verbatim), as status-go writes it.
    pub fn torrent_file_bytes(&self, opts: &TorrentFileOptions) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        out.push(b'd');
        if !opts.announce_list.is_empty() {
            Value::bytes("announce-list").encode_into(&mut out);
            let tiers = opts
                .announce_list
                .iter()
                .map(|tier| Value::List(tier.iter().map(|t| Value::bytes(t.as_bytes())).collect()))
                .collect();
            Value::List(tiers).encode_into(&mut out);
        }
        if let Some(created_by) = &opts.created_by {
            Value::bytes("created by").encode_into(&mut out);
            Value::bytes(created_by.as_bytes()).encode_into(&mut out);
        }
        if let Some(date) = opts.creation_date {
            Value::bytes("creation date").encode_into(&mut out);
            Value::Int(date).encode_into(&mut out);
        }
        Value::bytes("info").encode_into(&mut out);
        out.extend_from_slice(&self.info_bytes);
        out.push(b'e');
        out
    }

    /// Writes `<torrents_dir>/<name>.torrent` (creating the directory) and returns its path.
    pub fn write_torrent_file(&self, torrents_dir: &Path, opts: &TorrentFileOptions) -> Result<PathBuf, Error> {
        std::fs::create_dir_all(torrents_dir).map_err(|source| Error::io(torrents_dir, source))?;
        let path = torrents_dir.join(format!("{}.torrent", self.name));
        let tmp = torrents_dir.join(format!(".{}.torrent.tmp", self.name));
        std::fs::write(&tmp, self.torrent_file_bytes(opts)).map_err(|source| Error::io(&tmp, source))?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::io(&path, source))?;
        Ok(path)
    }
}

/// SHA-1 of piece data: aws-lc's assembly (SHA-NI where the CPU has it), 1.6x the `sha1` crate
/// on this project's machines (issue 22: hashing bounds torrent creation and verification).
pub(crate) fn piece_sha1(data: &[u8]) -> [u8; 20] {
    digest_bytes(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data))
}

fn digest_bytes(d: &aws_lc_rs::digest::Digest) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(&d.as_ref()[..20]);
    out
}

/// Bytes read (and handed to a hasher) at once: whole pieces, about [`CHUNK_TARGET`].
const CHUNK_TARGET: usize = 4 << 20;

/// The files of a folder as one stream of bytes, read in buffers of whole pieces.
struct PieceStream<'a> {
    files: &'a [(FileEntry, PathBuf)],
    /// Index of the file being read and the open file with the bytes left to read of it.
    next_file: usize,
    open: Option<(std::fs::File, u64)>,
    piece_length: usize,
    /// Bytes per buffer: a whole number of pieces.
    chunk_len: usize,
}

impl<'a> PieceStream<'a> {
    fn new(files: &'a [(FileEntry, PathBuf)], piece_length: u32) -> Self {
        let piece_length = piece_length as usize;
        let chunk_len = piece_length * (CHUNK_TARGET / piece_length).max(1);
        Self { files, next_file: 0, open: None, piece_length, chunk_len }
    }

    /// Reads the next [`PieceStream::chunk_len`] bytes of the stream (fewer only at its end)
    /// into `buf`, which it sizes to that length once (no zeroing per chunk), and returns how
    /// many it read: 0 at the end. A file shorter or longer than it was when listed is refused:
    /// the hashes would not describe it.
    fn fill(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        if buf.len() != self.chunk_len {
            buf.resize(self.chunk_len, 0);
        }
        let mut filled = 0;
        while filled < self.chunk_len {
            let Some((file, left)) = &mut self.open else {
                let Some((entry, path)) = self.files.get(self.next_file) else { break };
                let file = std::fs::File::open(path).map_err(|source| Error::io(path, source))?;
                self.open = Some((file, entry.length));
                continue;
            };
            let path = &self.files[self.next_file].1;
            if *left == 0 {
                // Exactly the listed length was read: the file must end here.
                let n = file.read(&mut [0u8; 1]).map_err(|source| Error::io(path, source))?;
                if n != 0 {
                    return Err(MetaError::FileChanged { path: path.clone() }.into());
                }
                self.open = None;
                self.next_file += 1;
                continue;
            }
            let want = (self.chunk_len - filled).min(usize::try_from(*left).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[filled..filled + want]).map_err(|source| Error::io(path, source))?;
            if n == 0 {
                return Err(MetaError::FileChanged { path: path.clone() }.into());
            }
            filled += n;
            *left -= n as u64;
        }
        Ok(filled)
    }
}

/// The SHA-1 of each piece of `chunk` (the last one may be short).
fn hash_chunk(chunk: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
    chunk.chunks(piece_length).map(piece_sha1).collect()
}

/// A hashed buffer: `(chunk index, piece hashes, the buffer for reuse)`.
type Hashed = (usize, Vec<[u8; 20]>, Vec<u8>);

/// Reads and hashes on the calling thread.
fn hash_inline(stream: &mut PieceStream<'_>) -> Result<Vec<[u8; 20]>, Error> {
    let mut pieces = Vec::new();
    let mut buf = Vec::new();
    loop {
        let n = stream.fill(&mut buf)?;
        if n == 0 {
            return Ok(pieces);
        }
        pieces.extend(hash_chunk(&buf[..n], stream.piece_length));
    }
}

/// Reads on the calling thread, hashes on `threads` scoped threads; at most `2 * threads + 1`
/// buffers exist at once (the reader waits for a free one).
fn hash_parallel(stream: &mut PieceStream<'_>, threads: usize) -> Result<Vec<[u8; 20]>, Error> {
    use std::sync::mpsc;
    let piece_length = stream.piece_length;
    let (work_tx, work_rx) = mpsc::channel::<(usize, Vec<u8>, usize)>();
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Hashed>();
    let mut by_chunk: Vec<Option<Vec<[u8; 20]>>> = Vec::new();
    let mut free: Vec<Vec<u8>> = (0..2 * threads + 1).map(|_| Vec::new()).collect();
    let mut in_flight = 0usize;
    let store = |by_chunk: &mut Vec<Option<Vec<[u8; 20]>>>, free: &mut Vec<Vec<u8>>, done: Hashed| {
        let (idx, hashes, buf) = done;
        by_chunk[idx] = Some(hashes);
        free.push(buf);
    };
    let read = std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next buffer, not while hashing.
                    let next = work_rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok((idx, buf, len)) = next else { return };
                    let hashes = hash_chunk(&buf[..len], piece_length);
                    if done_tx.send((idx, hashes, buf)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let result = (|| -> Result<(), Error> {
            loop {
                let Some(mut buf) = free.pop() else {
                    // Every buffer is with the hashers: wait for one back.
                    let Ok(done) = done_rx.recv() else { return Ok(()) };
                    in_flight -= 1;
                    store(&mut by_chunk, &mut free, done);
                    continue;
                };
                let len = stream.fill(&mut buf)?;
                if len == 0 {
                    return Ok(());
                }
                by_chunk.push(None);
                if work_tx.send((by_chunk.len() - 1, buf, len)).is_err() {
                    return Ok(());
                }
                in_flight += 1;
            }
        })();
        // Closing the work channel ends the hashers once they have drained it.
        drop(work_tx);
        while in_flight > 0 {
            let Ok(done) = done_rx.recv() else { break };
            in_flight -= 1;
            store(&mut by_chunk, &mut free, done);
        }
        result
    });
    read?;
    // Every chunk sent was hashed (a hasher cannot fail; a panic would end the scope); were one
    // missing, `from_parts` would refuse the piece count.
    Ok(by_chunk.into_iter().flatten().flatten().collect())
}

fn encode_info(name: &str, piece_length: u32, files: &[FileEntry], pieces: &[[u8; 20]]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|f| {
            let mut d = BTreeMap::new();
            d.insert(b"length".to_vec(), Value::Int(i64::try_from(f.length).unwrap_or(i64::MAX)));
            d.insert(b"path".to_vec(), Value::List(f.path.iter().map(|c| Value::bytes(c.as_bytes())).collect()));
            Value::Dict(d)
        })
        .collect();
    let mut info = BTreeMap::new();
    info.insert(b"files".to_vec(), Value::List(files));
    info.insert(b"name".to_vec(), Value::bytes(name.as_bytes()));
    info.insert(b"piece length".to_vec(), Value::Int(i64::from(piece_length)));
    info.insert(b"pieces".to_vec(), Value::Bytes(pieces.concat()));
    Value::Dict(info).encode()
}

/// Rejects names that are not one safe path component (they come from remote peers).
fn validate_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0');
    if bad { Err(MetaError::BadName(name.to_owned()).into()) } else { Ok(()) }
}

fn dir_name(dir: &Path) -> Result<String, Error> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| MetaError::BadName(dir.display().to_string()))?
        .to_owned();
    validate_name(&name)?;
    Ok(name)
}

fn collect_files(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<(FileEntry, PathBuf)>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::io(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::io(dir, source))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| Error::io(&path, source))?;
        let component =
            entry.file_name().to_str().ok_or_else(|| MetaError::BadPath(path.display().to_string()))?.to_owned();
        if file_type.is_dir() {
            prefix.push(component);
            collect_files(&path, prefix, out)?;
            prefix.pop();
        } else if file_type.is_file() {
            let length = entry.metadata().map_err(|source| Error::io(&path, source))?.len();
            let mut components = prefix.clone();
            components.push(component);
            out.push((FileEntry { path: components, length }, path));
        }
    }
    Ok(())
}

/// The byte span of the value of the top-level `info` key of a `.torrent` file.
fn info_span(torrent: &[u8]) -> Option<Range<usize>> {
    if torrent.first() != Some(&b'd') {
        return None;
    }
    let mut pos = 1;
    while torrent.get(pos).is_some_and(|b| *b != b'e') {
        let (key, key_len) = Value::decode_prefix(torrent.get(pos..)?).ok()?;
        pos += key_len;
        let (_, value_len) = Value::decode_prefix(torrent.get(pos..)?).ok()?;
        if key.as_bytes() == Some(b"info".as_slice()) {
            return Some(pos..pos + value_len);
        }
        pos += value_len;
    }
    None
}
