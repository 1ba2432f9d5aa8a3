//! The reader: list, locate, extract and verify the archives of a directory (or of in-memory bytes).

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chs_proto::protobuf::{WakuMessageArchive, WakuMessageArchiveIndexMetadata};

use crate::format::{self, DecodeError};
use crate::{DATA_FILE, INDEX_FILE, Topic};

/// One entry of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveEntry {
    /// The index key (the archive id as written; not necessarily its correct Keccak-256).
    pub id: String,
    /// The index value.
    pub metadata: WakuMessageArchiveIndexMetadata,
}

impl ArchiveEntry {
    /// Window start (seconds); 0 if the entry has no metadata.
    #[must_use]
    pub fn from(&self) -> u64 {
        self.metadata.metadata.as_ref().map_or(0, |m| m.from)
    }

    /// Window end (seconds, exclusive); 0 if the entry has no metadata.
    #[must_use]
    pub fn to(&self) -> u64 {
        self.metadata.metadata.as_ref().map_or(0, |m| m.to)
    }

    /// The topics listed in the metadata (entries that are not 4 bytes are skipped).
    #[must_use]
    pub fn topics(&self) -> Vec<Topic> {
        self.metadata
            .metadata
            .as_ref()
            .map(|m| m.content_topic.iter().filter_map(|t| Topic::try_from(t.as_slice()).ok()).collect())
            .unwrap_or_default()
    }

    /// Byte offset in `data`.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.metadata.offset
    }

    /// Bytes in `data`, padding included.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.metadata.size
    }

    /// Zero bytes after the encoded archive.
    #[must_use]
    pub fn padding(&self) -> u64 {
        self.metadata.padding
    }

    /// The bytes of `data` this archive occupies, padding included.
    ///
    /// # Errors
    /// [`ArchiveProblem::RangeOverflow`] when `offset + size` overflows.
    pub fn byte_range(&self) -> Result<Range<u64>, ArchiveProblem> {
        let end = self
            .offset()
            .checked_add(self.size())
            .ok_or(ArchiveProblem::RangeOverflow { offset: self.offset(), size: self.size() })?;
        Ok(self.offset()..end)
    }

    /// The encoded archive without its padding (`size - padding` bytes at `offset`).
    ///
    /// # Errors
    /// [`ArchiveProblem::PaddingExceedsSize`], [`ArchiveProblem::RangeOverflow`].
    pub fn content_range(&self) -> Result<Range<u64>, ArchiveProblem> {
        let range = self.byte_range()?;
        let len = self
            .size()
            .checked_sub(self.padding())
            .ok_or(ArchiveProblem::PaddingExceedsSize { size: self.size(), padding: self.padding() })?;
        Ok(range.start..range.start + len)
    }

    /// The pieces a downloader fetches for this archive, as status-go computes them
    /// (`[offset / P, offset / P + size / P)`, §8.2: floor divisions, hence the alignment rule).
    ///
    /// # Errors
    /// [`ArchiveProblem::RangeOverflow`]; a `piece_length` of 0 gives an empty range.
    pub fn piece_range(&self, piece_length: u64) -> Result<Range<u64>, ArchiveProblem> {
        self.byte_range()?;
        let start = self.offset().checked_div(piece_length).unwrap_or(0);
        let count = self.size().checked_div(piece_length).unwrap_or(0);
        Ok(start..start.saturating_add(count))
    }
}

/// One row of `chs archive inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ArchiveRow {
    /// Archive id (index key).
    pub id: String,
    /// Window start (seconds).
    pub from: u64,
    /// Window end (seconds, exclusive).
    pub to: u64,
    /// Byte offset in `data`.
    pub offset: u64,
    /// Bytes in `data`, padding included.
    pub size: u64,
    /// Zero padding bytes.
    pub padding: u64,
    /// Messages in the archive; `None` if it cannot be read or decoded (see `error`).
    pub message_count: Option<u64>,
    /// Topics of the metadata, `0x` + 8 hex.
    pub topics: Vec<String>,
    /// Whether the archive is a hash-ratchet-encrypted `ProtocolMessage`.
    pub encrypted: bool,
    /// Why the archive could not be read, if so.
    pub error: Option<String>,
}

/// What is wrong with one archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    /// The key is not `0x` + hex Keccak-256 of the encoded entry.
    #[error("key does not match Keccak-256 of the entry, which is {expected}")]
    IdMismatch {
        /// The id the entry hashes to.
        expected: String,
    },
    /// The entry has no metadata (status-go always writes it).
    #[error("entry has no metadata")]
    MissingMetadata,
    /// `offset + size` overflows.
    #[error("offset {offset} + size {size} overflows")]
    RangeOverflow {
        /// Offset.
        offset: u64,
        /// Size.
        size: u64,
    },
    /// `padding > size`.
    #[error("padding {padding} exceeds size {size}")]
    PaddingExceedsSize {
        /// Size.
        size: u64,
        /// Padding.
        padding: u64,
    },
    /// The archive ends past the end of `data`.
    #[error("bytes {offset}..{end} lie outside the {data_len}-byte data file")]
    OutOfBounds {
        /// Offset.
        offset: u64,
        /// Offset + size.
        end: u64,
        /// Length of `data`.
        data_len: u64,
    },
    /// Offset or size is not a multiple of the piece length.
    #[error("offset {offset} or size {size} is not a multiple of the piece length {piece_length}")]
    Misaligned {
        /// Offset.
        offset: u64,
        /// Size.
        size: u64,
        /// Piece length.
        piece_length: u64,
    },
    /// Two archives share bytes of `data`.
    #[error("overlaps archive {other}")]
    Overlap {
        /// The other archive's id.
        other: String,
    },
    /// `data` ended before the archive's bytes were read (spec §15 item 27 F).
    #[error("short read: expected {expected} bytes, the file had {got}")]
    ShortRead {
        /// Bytes needed.
        expected: u64,
        /// Bytes available.
        got: u64,
    },
    /// The padding bytes are not all zero.
    #[error("padding byte at offset {at} is not zero")]
    PaddingNotZero {
        /// Absolute offset in `data`.
        at: u64,
    },
    /// The archive bytes do not decode.
    #[error("archive does not decode")]
    Decode(#[source] DecodeError),
    /// The archive's own metadata differs from its index entry's.
    #[error("archive metadata differs from the index entry's")]
    MetadataMismatch,
    /// Reading `data` failed.
    #[error("reading data failed: {0}")]
    Io(String),
}

/// Why a directory or archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The `index` does not decode (or is encrypted).
    #[error("index does not decode")]
    Index(#[source] DecodeError),
    /// The `index` is wrapped and the [`crate::Wrapper`] given could not open it.
    #[error("the wrapped index does not open")]
    Unwrap(#[source] crate::WrapError),
    /// No archive with this id in the index.
    #[error("no archive {id} in the index")]
    UnknownArchive {
        /// The id asked for.
        id: String,
    },
    /// The archive exists but cannot be read or decoded.
    #[error("archive {id}: {problem}")]
    Archive {
        /// The archive id.
        id: String,
        /// What is wrong.
        #[source]
        problem: ArchiveProblem,
    },
}

/// One problem found by [`Reader::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Violation {
    /// The archive id (empty for problems of the whole directory).
    pub id: String,
    /// What is wrong.
    pub problem: String,
    /// The typed problem.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub kind: Option<ArchiveProblem>,
}

/// The result of [`Reader::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VerifyReport {
    /// Archives in the index.
    pub archives: usize,
    /// Messages in the archives that decoded.
    pub messages: u64,
    /// Bytes of `data` after the last archive (status-go itself leaves none).
    pub trailing_bytes: u64,
    /// Files of the directory other than `data` and `index`: a torrent built from the directory
    /// would include them (status-go-archives.md §4.10), e.g. an `index.tmp` of an interrupted build.
    pub stray_files: Vec<String>,
    /// Everything found wrong; empty means the directory is valid.
    pub violations: Vec<Violation>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The `data` bytes behind a reader.
#[derive(Debug)]
enum Data {
    File { file: File, path: PathBuf, len: u64 },
    Bytes(Vec<u8>),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::File { len, .. } => *len,
            Data::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// Reads `range`, which the caller has checked against [`Data::len`] (so the allocation is bounded
    /// by the real file size); a file that shrank since is a [`ArchiveProblem::ShortRead`].
    fn read(&self, range: Range<u64>) -> Result<Vec<u8>, ArchiveProblem> {
        let expected = range.end - range.start;
        match self {
            Data::Bytes(bytes) => {
                let (Ok(start), Ok(end)) = (usize::try_from(range.start), usize::try_from(range.end)) else {
                    return Err(ArchiveProblem::ShortRead { expected, got: 0 });
                };
                bytes.get(start..end).map(<[u8]>::to_vec).ok_or(ArchiveProblem::ShortRead {
                    expected,
                    got: (bytes.len() as u64).saturating_sub(range.start),
                })
            }
            Data::File { file, path, .. } => {
                let mut reader = file;
                reader
                    .seek(SeekFrom::Start(range.start))
                    .map_err(|e| ArchiveProblem::Io(format!("{}: {e}", path.display())))?;
                let mut buf = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
                reader
                    .take(expected)
                    .read_to_end(&mut buf)
                    .map_err(|e| ArchiveProblem::Io(format!("{}: {e}", path.display())))?;
                if (buf.len() as u64) < expected {
                    return Err(ArchiveProblem::ShortRead { expected, got: buf.len() as u64 });
                }
                Ok(buf)
            }
        }
    }
}

/// Reads an archive directory (`index` + `data`) or the same bytes from memory.
#[derive(Debug)]
pub struct Reader {
    entries: Vec<ArchiveEntry>,
    data: Data,
    stray_files: Vec<String>,
}

impl Reader {
    /// Opens `<dir>/index` and `<dir>/data` (read-only; nothing is repaired). A missing `index`
    /// is an empty directory; a missing `data` is an empty file.
    ///
    /// # Errors
    /// [`ReadError::Io`], [`ReadError::Index`].
    pub fn open(dir: &Path) -> Result<Reader, ReadError> {
        Reader::open_inner(dir, None)
    }

    /// [`Reader::open`] of a folder whose `index` may be wrapped (an encrypted community's,
    /// hash-ratchet): a wrapped index is opened with `wrapper` ([`crate::Wrapper::unwrap`]); a
    /// plain one is read as it is. The archives stay wrapped: [`Reader::read_raw`] gives them as
    /// they are in `data`.
    ///
    /// # Errors
    /// As [`Reader::open`]; [`ReadError::Unwrap`] if `wrapper` cannot open the index.
    pub fn open_with(dir: &Path, wrapper: &mut dyn crate::Wrapper) -> Result<Reader, ReadError> {
        Reader::open_inner(dir, Some(wrapper))
    }

    fn open_inner(dir: &Path, wrapper: Option<&mut dyn crate::Wrapper>) -> Result<Reader, ReadError> {
        let index_path = dir.join(INDEX_FILE);
        let index_bytes = match std::fs::read(&index_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(ReadError::Io { path: index_path, source }),
        };
        let index_bytes = match (wrapper, format::decode_index(&index_bytes)) {
            (Some(wrapper), Err(DecodeError::Encrypted { .. })) => {
                wrapper.unwrap(&index_bytes).map_err(ReadError::Unwrap)?
            }
            _ => index_bytes,
        };
        let data_path = dir.join(DATA_FILE);
        let data = match File::open(&data_path) {
            Ok(file) => {
                let len = file.metadata().map_err(|source| ReadError::Io { path: data_path.clone(), source })?.len();
                Data::File { file, path: data_path, len }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Data::Bytes(Vec::new()),
            Err(source) => return Err(ReadError::Io { path: data_path, source }),
        };
        let mut reader = Reader::new(&index_bytes, data)?;
        if let Ok(listing) = std::fs::read_dir(dir) {
            reader.stray_files = listing
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != DATA_FILE && name != INDEX_FILE)
                .collect();
            reader.stray_files.sort();
        }
        Ok(reader)
    }

    /// A reader over in-memory `index` and `data` bytes.
    ///
    /// # Errors
    /// [`ReadError::Index`].
    pub fn from_bytes(index: &[u8], data: Vec<u8>) -> Result<Reader, ReadError> {
        Reader::new(index, Data::Bytes(data))
    }

    fn new(index: &[u8], data: Data) -> Result<Reader, ReadError> {
        let index = format::decode_index(index).map_err(ReadError::Index)?;
        let mut entries: Vec<ArchiveEntry> =
            index.archives.into_iter().map(|(id, metadata)| ArchiveEntry { id, metadata }).collect();
        entries.sort_by(|a, b| (a.from(), a.offset(), &a.id).cmp(&(b.from(), b.offset(), &b.id)));
        Ok(Reader { entries, data, stray_files: Vec::new() })
    }

    /// The archives, sorted by `from` (then offset).
    #[must_use]
    pub fn entries(&self) -> &[ArchiveEntry] {
        &self.entries
    }

    /// The entry with this id (`0x` prefix and case as in the index; lowercase hex also matches).
    ///
    /// # Errors
    /// [`ReadError::UnknownArchive`].
    pub fn entry(&self, id: &str) -> Result<&ArchiveEntry, ReadError> {
        let wanted = id.to_ascii_lowercase();
        let wanted = if wanted.starts_with("0x") { wanted } else { format!("0x{wanted}") };
        self.entries
            .iter()
            .find(|e| e.id == id || e.id.to_ascii_lowercase() == wanted)
            .ok_or_else(|| ReadError::UnknownArchive { id: id.to_owned() })
    }

    /// Length of `data`.
    #[must_use]
    pub fn data_len(&self) -> u64 {
        self.data.len()
    }

    /// Why this directory is not one a finished build leaves, so not worth a torrent yet: files
    /// other than `data` and `index` (e.g. the `index.tmp` of a build in progress or interrupted),
    /// or a `data` longer or shorter than Σ(size) of the index. `None` when it is finished. Cheap:
    /// no archive is read.
    #[must_use]
    pub fn unfinished(&self) -> Option<String> {
        if !self.stray_files.is_empty() {
            return Some(format!("files other than data and index: {:?}", self.stray_files));
        }
        let end = self.entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size()));
        let len = self.data.len();
        (len != end).then(|| format!("data is {len} bytes but the index accounts for {end}"))
    }

    /// The encoded archive (`size - padding` bytes at `offset`), checked against the file's bounds.
    ///
    /// # Errors
    /// [`ReadError::UnknownArchive`], [`ReadError::Archive`].
    pub fn read_raw(&self, id: &str) -> Result<Vec<u8>, ReadError> {
        let entry = self.entry(id)?;
        self.raw_of(entry).map_err(|problem| ReadError::Archive { id: entry.id.clone(), problem })
    }

    fn raw_of(&self, entry: &ArchiveEntry) -> Result<Vec<u8>, ArchiveProblem> {
        let range = entry.content_range()?;
        let full = entry.byte_range()?;
        if full.end > self.data.len() {
            return Err(ArchiveProblem::OutOfBounds { offset: full.start, end: full.end, data_len: self.data.len() });
        }
        self.data.read(range)
    }

    /// Extracts and decodes one archive.
    ///
    /// # Errors
    /// [`ReadError::UnknownArchive`]; [`ReadError::Archive`] with [`ArchiveProblem::Decode`] and
    /// [`DecodeError::Encrypted`] for a hash-ratchet-encrypted archive.
    pub fn extract(&self, id: &str) -> Result<WakuMessageArchive, ReadError> {
        let entry = self.entry(id)?;
        let archive = |entry: &ArchiveEntry| -> Result<WakuMessageArchive, ArchiveProblem> {
            let raw = self.raw_of(entry)?;
            format::decode_archive(&raw).map_err(ArchiveProblem::Decode)
        };
        archive(entry).map_err(|problem| ReadError::Archive { id: entry.id.clone(), problem })
    }

    /// One row per archive (sorted by `from`) for `chs archive inspect`; unreadable archives get
    /// `message_count: None` and an `error`.
    #[must_use]
    pub fn rows(&self) -> Vec<ArchiveRow> {
        self.entries
            .iter()
            .map(|entry| {
                let decoded = self.raw_of(entry).and_then(|raw| {
                    // Count without building the messages; a full decode checks the bytes first.
                    format::decode_archive(&raw).map_err(ArchiveProblem::Decode)?;
                    Ok(format::count_top_level_field(&raw, 3).unwrap_or(0))
                });
                let (message_count, encrypted, error) = match decoded {
                    Ok(count) => (Some(count), false, None),
                    Err(ArchiveProblem::Decode(DecodeError::Encrypted { .. })) => (None, true, None),
                    Err(problem) => (None, false, Some(problem.to_string())),
                };
                ArchiveRow {
                    id: entry.id.clone(),
                    from: entry.from(),
                    to: entry.to(),
                    offset: entry.offset(),
                    size: entry.size(),
                    padding: entry.padding(),
                    message_count,
                    topics: entry.topics().iter().map(|t| format!("0x{}", hex::encode(t))).collect(),
                    encrypted,
                    error,
                }
            })
            .collect()
    }

    /// Checks every archive: key = Keccak-256 of the entry, byte range inside `data`, offset and size
    /// multiples of `piece_length`, no overlaps, zero padding, and the archive decodes with the
    /// index's metadata. Encrypted archives are reported ([`DecodeError::Encrypted`]).
    #[must_use]
    pub fn verify(&self, piece_length: u64) -> VerifyReport {
        let mut report = VerifyReport {
            archives: self.entries.len(),
            stray_files: self.stray_files.clone(),
            ..VerifyReport::default()
        };
        let mut push = |id: &str, problem: ArchiveProblem| {
            report.violations.push(Violation { id: id.to_owned(), problem: problem.to_string(), kind: Some(problem) });
        };
        let mut messages = 0u64;
        let mut ranges: Vec<(Range<u64>, &str)> = Vec::new();
        for entry in &self.entries {
            let id = entry.id.as_str();
            let expected = format::archive_id(&entry.metadata);
            if expected != entry.id {
                push(id, ArchiveProblem::IdMismatch { expected });
            }
            if entry.metadata.metadata.is_none() {
                push(id, ArchiveProblem::MissingMetadata);
            }
            if piece_length == 0 || entry.offset() % piece_length != 0 || entry.size() % piece_length != 0 {
                push(id, ArchiveProblem::Misaligned { offset: entry.offset(), size: entry.size(), piece_length });
            }
            let (full, content) = match (entry.byte_range(), entry.content_range()) {
                (Ok(full), Ok(content)) => (full, content),
                (Err(problem), _) | (_, Err(problem)) => {
                    push(id, problem);
                    continue;
                }
            };
            if full.end > self.data.len() {
                push(id, ArchiveProblem::OutOfBounds { offset: full.start, end: full.end, data_len: self.data.len() });
                continue;
            }
            ranges.push((full.clone(), id));
            match self.data.read(content.end..full.end) {
                Ok(pad) => {
                    if let Some(pos) = pad.iter().position(|b| *b != 0) {
                        push(id, ArchiveProblem::PaddingNotZero { at: content.end + pos as u64 });
                    }
                }
                Err(problem) => push(id, problem),
            }
            match self.data.read(content) {
                Ok(raw) => match format::decode_archive(&raw) {
                    Ok(archive) => {
                        messages += archive.messages.len() as u64;
                        if archive.metadata != entry.metadata.metadata {
                            push(id, ArchiveProblem::MetadataMismatch);
                        }
                    }
                    Err(err) => push(id, ArchiveProblem::Decode(err)),
                },
                Err(problem) => push(id, problem),
            }
        }
        ranges.sort_by_key(|(range, _)| (range.start, range.end));
        for pair in ranges.windows(2) {
            let ((a, a_id), (b, b_id)) = (&pair[0], &pair[1]);
            if b.start < a.end && a.start < a.end && b.start < b.end {
                push(b_id, ArchiveProblem::Overlap { other: (*a_id).to_owned() });
            }
        }
        let end = ranges.iter().map(|(range, _)| range.end).max().unwrap_or(0);
        report.trailing_bytes = self.data.len().saturating_sub(end);
        report.messages = messages;
        report
    }
}
