//! The crash-safe, streaming archive builder.
//!
//! Order of writes (spec §15 item 10 F): archives are appended to `data` and `data` is fsynced,
//! then the new `index` is written to `index.tmp`, fsynced and renamed over `index`, and the
//! directory is fsynced. One commit happens per window that produced archives. On start, bytes of
//! `data` beyond the end the index accounts for (a crash between the two) are truncated, and a stale
//! `index.tmp` is removed, so a killed build leaves a directory the next build repairs and completes.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use chs_proto::protobuf::{WakuMessage, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata};

use crate::format::{self, ArchiveEncoder, DEFAULT_INTERVAL_SECS, DecodeError, MAX_ARCHIVE_SIZE, PIECE_LENGTH};
use crate::lock::{FolderLock, LockError};
use crate::plan::{self, Window};
use crate::source::{MessageSource, ScanError, SourceError};
use crate::writer::DataWriter;
use crate::{DATA_FILE, INDEX_FILE, INDEX_TEMP_FILE, Topic};

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// The community's channel topics: messages on them are archived, and every archive's metadata
    /// lists all of them in this order.
    pub topics: Vec<Topic>,
    /// Start of the range (seconds). `None`: the end of the last archive, or else the oldest stored
    /// message on `topics`.
    pub from: Option<u64>,
    /// End of the range (seconds, exclusive); past [`crate::MAX_SECS`] (year 9999) it is refused
    /// with [`BuildError::Plan`] as milliseconds or nanoseconds given for seconds.
    pub to: u64,
    /// Window length in seconds (default 7 days); 0 is an error (spec §15 item 26 F).
    pub interval: u64,
    /// Piece length the archives are padded to (default 102400).
    pub piece_length: u64,
    /// Cap on Σ(len(payload) + len(sig)) per archive (default 30,000,000).
    pub size_cap: u64,
    /// Start no earlier than the end of the last archive in the index (default true), so a repeated
    /// or resumed build never archives a window twice. `false` appends overlapping archives as
    /// status-go's Discord import does.
    pub resume: bool,
}

impl BuildOptions {
    /// Defaults (status-go's constants) for `topics` up to `to`.
    #[must_use]
    pub fn new(topics: Vec<Topic>, to: u64) -> Self {
        BuildOptions {
            topics,
            from: None,
            to,
            interval: DEFAULT_INTERVAL_SECS,
            piece_length: PIECE_LENGTH,
            size_cap: MAX_ARCHIVE_SIZE,
            resume: true,
        }
    }
}

/// One archive written by a build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BuiltArchive {
    /// Archive id (index key).
    pub id: String,
    /// The window (shared by all chunks of a window).
    pub window: Window,
    /// Byte offset in `data`.
    pub offset: u64,
    /// Bytes in `data`, padding included.
    pub size: u64,
    /// Zero bytes after the encoded archive.
    pub padding: u64,
    /// Messages in the archive.
    pub messages: u64,
}

/// A message left out because it alone exceeds the size cap (spec §15 item 7 F: reported, never
/// silently dropped; status-go drops it without a word).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OversizedMessage {
    /// The message hash, `0x` + hex.
    pub hash: String,
    /// Its timestamp (seconds).
    pub timestamp: u64,
    /// len(payload) + len(sig).
    pub size: u64,
}

/// What a build did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BuildReport {
    /// The range scanned (`None`: nothing to scan).
    pub range: Option<Window>,
    /// All messages on the topics before this time are archived (or were found to be oversized):
    /// store it as the "last archive end date" (status-go stores the run's end date likewise).
    pub archived_until: u64,
    /// New archives, in creation order.
    pub archives: Vec<BuiltArchive>,
    /// Windows of the range. Only those holding messages are read: the builder jumps over the
    /// others, which count as scanned and empty.
    pub windows_scanned: u64,
    /// Windows without messages (nothing written for them).
    pub windows_empty: u64,
    /// Messages written into archives.
    pub messages_archived: u64,
    /// Messages left out because each alone exceeds the size cap.
    pub oversized: Vec<OversizedMessage>,
    /// Bytes of an interrupted earlier build removed from the end of `data` before starting.
    pub repaired_bytes: u64,
    /// Length of `data` afterwards.
    pub data_len: u64,
}

/// Where a build is, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The whole range being built.
    pub range: Window,
    /// The window being scanned.
    pub window: Window,
    /// Windows finished so far.
    pub windows_done: u64,
    /// Windows in the range.
    pub windows_total: u64,
    /// Timestamp of the last message read (or the window start).
    pub position: u64,
    /// Messages archived so far.
    pub messages: u64,
    /// Bytes appended to `data` so far.
    pub bytes_written: u64,
}

impl Progress {
    /// Fraction of the time range done, in `[0, 1]`.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // a progress bar needs no 53-bit precision
    pub fn fraction(&self) -> f64 {
        let span = self.range.to.saturating_sub(self.range.from);
        if span == 0 {
            return 1.0;
        }
        (self.position.saturating_sub(self.range.from) as f64 / span as f64).clamp(0.0, 1.0)
    }
}

/// One step of a build's file I/O, announced to a [`StepHook`] before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Step {
    /// Truncating `data` back to the end the index accounts for.
    TruncateData,
    /// Writing the metadata that opens archive number `archive` (0-based, this build).
    ArchiveHeader {
        /// Archive number in this build.
        archive: u64,
    },
    /// Writing one message of archive number `archive` (not announced to hooks: it names the step of
    /// an I/O error only).
    ArchiveMessage {
        /// Archive number in this build.
        archive: u64,
    },
    /// Writing the zero padding that closes archive number `archive`.
    ArchivePadding {
        /// Archive number in this build.
        archive: u64,
    },
    /// Flushing and fsyncing `data`.
    SyncData,
    /// Writing the new index to `index.tmp`.
    WriteIndexTemp,
    /// Fsyncing `index.tmp`.
    SyncIndexTemp,
    /// Renaming `index.tmp` over `index`.
    RenameIndex,
    /// Fsyncing the directory.
    SyncDir,
}

/// Called before every I/O step (except the per-message writes); an `Err` aborts the build there (failure injection in tests,
/// cancellation by callers).
pub trait StepHook {
    /// Runs before `step`.
    ///
    /// # Errors
    /// Any error aborts the build with [`BuildError::Io`] for this step.
    fn before(&mut self, step: Step) -> io::Result<()>;
}

/// Wraps each encoded archive and the encoded index before they are written, and opens the
/// existing index: an encrypted (token-gated) community's hash ratchet (status-go's
/// `manager_archive_file.go`, `BuildHashRatchetMessage`; the wire is in `chs-status`). With a
/// wrapper the builder holds each archive in memory until it is closed (status-go does too), and
/// the padding is computed on the wrapped bytes (status-go-archives.md §4.6-4.7).
pub trait Wrapper {
    /// Wraps one encoded archive or index (each call takes one step of the chain).
    ///
    /// # Errors
    /// Any error aborts the build ([`BuildError::Wrap`]).
    fn wrap(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// Opens the existing, wrapped `index`.
    ///
    /// # Errors
    /// Any error aborts the build ([`BuildError::Wrap`]).
    fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, WrapError>;
}

/// Why a [`Wrapper`] failed (its own words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WrapError(pub String);

/// The hook that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl StepHook for NoHook {
    fn before(&mut self, _step: Step) -> io::Result<()> {
        Ok(())
    }
}

/// Why a build failed. The directory is always left consistent or repairable by the next build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An option is out of range.
    #[error("invalid build option: {0}")]
    InvalidOption(&'static str),
    /// File I/O failed (or a [`StepHook`] aborted) at this step.
    #[error("I/O error at {step:?} on {path}")]
    Io {
        /// The step that failed.
        step: Step,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the existing directory failed (not an interrupted build).
    #[error("cannot read {path}")]
    Open {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The existing `index` cannot be decoded (or is encrypted), so nothing can be appended.
    #[error("existing index {path} is unusable")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// An entry of the existing index does not lie inside the Σ(size) its offsets are based on.
    #[error(
        "existing index entry {id} (offset {offset}, size {size}) lies outside the {end} bytes the index accounts for"
    )]
    InconsistentIndex {
        /// The archive id.
        id: String,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// Σ(size) over the index.
        end: u64,
    },
    /// The existing `index` is damaged and cannot be rebuilt from `data` (e.g. hash-ratchet
    /// encrypted archives, or `data` damaged too). Nothing was changed.
    #[error(
        "archive index {path} is damaged ({why}) and cannot be rebuilt from data ({reason}): restore the folder \
         from a backup, or move it aside and let the next build start a new one from the message store"
    )]
    DamagedIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
        /// Why `data` could not be read back.
        reason: String,
    },
    /// `data` is shorter than the index says (e.g. status-go crashed between writing `index` and
    /// appending `data`, §4.9); appending would corrupt offsets.
    #[error("data file is {data_len} bytes but the index accounts for {index_end}")]
    DataShorterThanIndex {
        /// Length of `data`.
        data_len: u64,
        /// Σ(size) over the index.
        index_end: u64,
    },
    /// The message source failed.
    #[error("message source failed")]
    Source(#[source] SourceError),
    /// The folder's lock (held for the whole build, see [`crate::lock`]) cannot be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The range cannot be planned (e.g. `to` is in milliseconds or nanoseconds, not seconds).
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// The [`Wrapper`] could not wrap an archive or the index, or open the existing index.
    #[error("cannot {what} with the hash-ratchet key")]
    Wrap {
        /// What was being done.
        what: &'static str,
        /// The wrapper's error.
        #[source]
        source: WrapError,
    },
}

/// The archive builder: `Builder::new(dir, options).run(&source)`.
pub struct Builder<'a> {
    dir: PathBuf,
    options: BuildOptions,
    progress: Option<&'a mut dyn FnMut(&Progress)>,
    hook: Option<&'a mut dyn StepHook>,
    wrapper: Option<&'a mut dyn Wrapper>,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("dir", &self.dir).field("options", &self.options).finish_non_exhaustive()
    }
}

impl<'a> Builder<'a> {
    /// A builder writing `<dir>/data` and `<dir>/index`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, options: BuildOptions) -> Self {
        Builder { dir: dir.into(), options, progress: None, hook: None, wrapper: None }
    }

    /// Reports progress (window starts, every few thousand messages, window ends).
    #[must_use]
    pub fn progress(mut self, progress: &'a mut dyn FnMut(&Progress)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs `hook` before every I/O step.
    #[must_use]
    pub fn hook(mut self, hook: &'a mut dyn StepHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Wraps every new archive and the index with `wrapper` (an encrypted community), and opens
    /// an existing wrapped index with it.
    #[must_use]
    pub fn wrapper(mut self, wrapper: &'a mut dyn Wrapper) -> Self {
        self.wrapper = Some(wrapper);
        self
    }

    /// [`Builder::wrapper`] if `wrapper` is `Some`; plain otherwise.
    #[must_use]
    pub fn maybe_wrapper(mut self, wrapper: Option<&'a mut dyn Wrapper>) -> Self {
        self.wrapper = wrapper;
        self
    }

    /// Builds the archives.
    ///
    /// # Errors
    /// [`BuildError`]; whatever happened, the directory is consistent or repaired by the next build.
    pub fn run<S: MessageSource>(self, source: &S) -> Result<BuildReport, BuildError> {
        let Builder { dir, options, progress, hook, wrapper } = self;
        let mut no_progress = |_: &Progress| {};
        let mut no_hook = NoHook;
        let progress = progress.unwrap_or(&mut no_progress);
        let hook = hook.unwrap_or(&mut no_hook);
        let wrapper = wrapper.map(|w| w as &mut dyn Wrapper);
        run(&dir, &options, source, progress, hook, wrapper)
    }
}

/// [`repair_with`] for status-go's piece length ([`crate::PIECE_LENGTH`]).
///
/// # Errors
/// As [`repair_with`].
pub fn repair(dir: &Path) -> Result<u64, BuildError> {
    repair_with(dir, crate::PIECE_LENGTH)
}

/// Repairs what an interrupted build or damage left in `dir`, under the folder's exclusive lock,
/// as the next build would: a stale `index.tmp` is removed, a damaged `index` (undecodable, keys
/// that are not the hash of their entries, entries that do not tile `data`, or metadata that the
/// archive at the entry's offset does not have) is rebuilt from `data` (archives padded to
/// `piece_length`), and `data` bytes that no index entry accounts for (an interrupted append) are
/// truncated. Returns the number of `data` bytes removed. A missing folder is created empty.
///
/// # Errors
/// [`BuildError`] if the folder cannot be locked, read or repaired (e.g. `data` shorter than an
/// intact index says, or a damaged index over `data` that cannot be read back: nothing is
/// deleted then).
pub fn repair_with(dir: &Path, piece_length: u64) -> Result<u64, BuildError> {
    let _lock = lock_for_build(dir)?;
    Ok(open_for_append(dir, piece_length, &mut NoHook, &mut None)?.repaired_bytes)
}

/// [`repair_with`] of an encrypted community's folder: a wrapped `index` is opened with
/// `wrapper` (and written wrapped again if it has to be rewritten).
///
/// # Errors
/// As [`repair_with`]; [`BuildError::Wrap`].
pub fn repair_wrapped(dir: &Path, piece_length: u64, wrapper: &mut dyn Wrapper) -> Result<u64, BuildError> {
    let _lock = lock_for_build(dir)?;
    Ok(open_for_append(dir, piece_length, &mut NoHook, &mut Some(wrapper))?.repaired_bytes)
}

/// Creates `dir` if needed and takes its exclusive lock, held until the new index is in place: no
/// seeder hashes a half-built folder, and no other builder truncates the bytes this one appends.
fn lock_for_build(dir: &Path) -> Result<FolderLock, BuildError> {
    create_dir(dir).map_err(|source| BuildError::Open { path: dir.to_owned(), source })?;
    Ok(FolderLock::exclusive(dir, || {
        tracing::warn!(dir = %dir.display(), "another process is building this archive folder: waiting for it to finish");
    })?)
}

/// What [`open_for_append`] found.
#[derive(Debug)]
pub(crate) struct OpenDir {
    pub(crate) index: WakuMessageArchiveIndex,
    /// Σ(size): where the next archive goes.
    pub(crate) end: u64,
    /// Largest `to` in the index.
    pub(crate) last_to: Option<u64>,
    pub(crate) repaired_bytes: u64,
}

/// Creates the directory if needed, loads the index (rebuilding a damaged one from `data`, see
/// [`repair_with`]), removes a stale `index.tmp` and truncates `data` to the end the index
/// accounts for.
/// A wrapped index is opened with `wrapper` (if any); its archives are then not checked against
/// `data` (they are wrapped too), only the entries' offsets and sizes.
pub(crate) fn open_for_append(
    dir: &Path,
    piece_length: u64,
    hook: &mut dyn StepHook,
    wrapper: &mut Option<&mut dyn Wrapper>,
) -> Result<OpenDir, BuildError> {
    let open_err = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Open { path, source }
    };
    create_dir(dir).map_err(open_err(dir))?;
    let tmp = dir.join(INDEX_TEMP_FILE);
    match std::fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(path = %tmp.display(), "removed index.tmp left by an interrupted build"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(open_err(&tmp)(err)),
    }
    let index_path = dir.join(INDEX_FILE);
    let data_path = dir.join(DATA_FILE);
    let data_len = match std::fs::metadata(&data_path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => 0,
        Err(err) => return Err(open_err(&data_path)(err)),
    };
    let mut wrapped = false;
    let decoded = match std::fs::read(&index_path) {
        Ok(bytes) => match (format::decode_index(&bytes), wrapper.as_mut()) {
            (Err(DecodeError::Encrypted { .. }), Some(wrapper)) => {
                let plain = wrapper
                    .unwrap(&bytes)
                    .map_err(|source| BuildError::Wrap { what: "open the existing index", source })?;
                wrapped = true;
                format::decode_index(&plain)
            }
            (decoded, _) => decoded,
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(WakuMessageArchiveIndex::default()),
        Err(err) => return Err(open_err(&index_path)(err)),
    };
    let damaged = match &decoded {
        // An encrypted index is a format this crate does not open, not damage; and with an empty
        // `data` there is nothing to rebuild from (a non-empty index is the short-data case below).
        Err(DecodeError::Encrypted { .. }) => None,
        _ if data_len == 0 => None,
        Ok(index) => crate::recover::damage(index, &data_path, data_len, !wrapped).map_err(open_err(&data_path))?,
        Err(err) => Some(err.to_string()),
    };
    let index = match (decoded, damaged) {
        (Ok(index), None) => index,
        (Err(source), None) => return Err(BuildError::Index { path: index_path, source }),
        (_, Some(why)) => {
            let index =
                match crate::recover::rebuild(&data_path, data_len, piece_length).map_err(open_err(&data_path))? {
                    Ok(index) => index,
                    Err(reason) => return Err(BuildError::DamagedIndex { path: index_path, why, reason }),
                };
            tracing::warn!(path = %index_path.display(), damage = %why, archives = index.archives.len(),
                "archive index was damaged: rebuilt from data");
            replace_index(dir, &index, hook, wrapper)?;
            index
        }
    };
    let end = index.archives.values().fold(0u64, |sum, meta| sum.saturating_add(meta.size));
    for (id, meta) in &index.archives {
        if meta.offset.checked_add(meta.size).is_none_or(|e| e > end) {
            return Err(BuildError::InconsistentIndex { id: id.clone(), offset: meta.offset, size: meta.size, end });
        }
    }
    let last_to = index.archives.values().filter_map(|m| m.metadata.as_ref().map(|m| m.to)).max();
    if data_len < end {
        return Err(BuildError::DataShorterThanIndex { data_len, index_end: end });
    }
    let mut repaired_bytes = 0;
    if data_len > end {
        let io_err = |source| BuildError::Io { step: Step::TruncateData, path: data_path.clone(), source };
        hook.before(Step::TruncateData).map_err(io_err)?;
        let file = OpenOptions::new().write(true).open(&data_path).map_err(io_err)?;
        file.set_len(end).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        repaired_bytes = data_len - end;
        tracing::warn!(path = %data_path.display(), removed = repaired_bytes, kept = end,
            "truncated data bytes of an interrupted build that the index does not account for");
    }
    Ok(OpenDir { index, end, last_to, repaired_bytes })
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The state of one build while it runs.
struct Run<'h> {
    dir: PathBuf,
    data_path: PathBuf,
    hook: &'h mut dyn StepHook,
    data: Option<DataWriter>,
    index: WakuMessageArchiveIndex,
    /// Where the next archive starts.
    offset: u64,
    encoder: ArchiveEncoder,
    report: BuildReport,
    open: Option<OpenArchive>,
    /// Archives of the current window, not yet committed.
    uncommitted: usize,
    /// Wraps archives and the index; the open archive is then held in `pending`.
    wrapper: Option<&'h mut dyn Wrapper>,
    pending: Vec<u8>,
}

/// The archive being written.
struct OpenArchive {
    window: Window,
    meta: chs_proto::protobuf::WakuMessageArchiveMetadata,
    raw: u64,
    capped: u64,
    messages: u64,
}

fn run<'a, S: MessageSource>(
    dir: &Path,
    options: &BuildOptions,
    source: &S,
    progress: &mut dyn FnMut(&Progress),
    hook: &'a mut dyn StepHook,
    mut wrapper: Option<&'a mut dyn Wrapper>,
) -> Result<BuildReport, BuildError> {
    if options.interval == 0 {
        return Err(BuildError::InvalidOption("interval must be at least 1 second (spec §15 item 26)"));
    }
    if options.piece_length == 0 {
        return Err(BuildError::InvalidOption("piece length must be at least 1 byte"));
    }
    if options.size_cap == 0 {
        return Err(BuildError::InvalidOption("size cap must be at least 1 byte"));
    }
    if options.topics.is_empty() {
        return Err(BuildError::InvalidOption("at least one topic is needed"));
    }
    plan::check_secs("to", options.to)?;
    if let Some(from) = options.from {
        plan::check_secs("from", from)?;
    }
    let span = tracing::info_span!("archive_build", dir = %dir.display());
    let _enter = span.enter();
    let _lock = lock_for_build(dir)?;
    let opened = open_for_append(dir, options.piece_length, hook, &mut wrapper)?;
    let mut from = match options.from {
        Some(from) => Some(from),
        None => match opened.last_to {
            Some(to) => Some(to),
            None => source.first_timestamp_secs(&options.topics).map_err(BuildError::Source)?,
        },
    };
    if options.resume
        && let (Some(start), Some(last_to)) = (from, opened.last_to)
        && last_to > start
    {
        tracing::info!(requested = start, resumed = last_to, "resuming after the last archive");
        from = Some(last_to);
    }
    let mut state = Run {
        dir: dir.to_owned(),
        data_path: dir.join(DATA_FILE),
        hook,
        data: None,
        index: opened.index,
        offset: opened.end,
        encoder: ArchiveEncoder::default(),
        report: BuildReport { repaired_bytes: opened.repaired_bytes, data_len: opened.end, ..BuildReport::default() },
        open: None,
        uncommitted: 0,
        wrapper,
        pending: Vec::new(),
    };
    let Some(from) = from else {
        state.report.archived_until = options.to;
        return Ok(state.report);
    };
    state.report.archived_until = from.max(options.to);
    if from >= options.to {
        return Ok(state.report);
    }
    let range = Window { from, to: options.to };
    state.report.range = Some(range);
    let mut windows = plan::windows(from, options.to, options.interval)?;
    let windows_total = windows.remaining();
    let mut bytes_written = 0u64;
    // Jump over the windows before the next message: status-go writes nothing for an empty window
    // (§4.2), so only the windows holding messages are scanned and the cost follows the messages,
    // not the span (one-second windows over a century are fine).
    while let Some(start) = windows.next_start() {
        match source.next_timestamp_secs(&options.topics, start).map_err(BuildError::Source)? {
            Some(next) if next < options.to => {
                windows.skip_to(next);
            }
            _ => break,
        }
        let windows_done = windows.passed();
        let Some(window) = windows.next() else { break };
        let mut position = window.from;
        let mut seen = 0u64;
        progress(&Progress {
            range,
            window,
            windows_done,
            windows_total,
            position,
            messages: state.report.messages_archived,
            bytes_written,
        });
        let meta = format::archive_metadata(window.from, window.to, &options.topics);
        let scan = source.for_each_in_range(&options.topics, window.from, window.to, &mut |msg: WakuMessage| {
            seen += 1;
            position = msg.timestamp;
            state.add_message(window, &meta, options, msg)?;
            if seen.is_multiple_of(4096) {
                progress(&Progress {
                    range,
                    window,
                    windows_done,
                    windows_total,
                    position,
                    messages: state.report.messages_archived,
                    bytes_written: bytes_written + state.offset - state.report.data_len,
                });
            }
            Ok(())
        });
        match scan {
            Ok(()) => {}
            Err(ScanError::Callback(err)) => return Err(err),
            Err(ScanError::Source(err)) => return Err(BuildError::Source(err)),
        }
        state.close_archive(options.piece_length)?;
        state.report.windows_scanned += 1;
        if seen == 0 {
            state.report.windows_empty += 1;
        }
        if state.uncommitted > 0 {
            bytes_written += state.offset - state.report.data_len;
            state.commit()?;
        }
        progress(&Progress {
            range,
            window,
            windows_done: windows_done + 1,
            windows_total,
            position: window.to,
            messages: state.report.messages_archived,
            bytes_written,
        });
    }
    // The windows jumped over held no message: they count as scanned and empty, as when every
    // window was queried.
    let skipped = windows_total - state.report.windows_scanned;
    state.report.windows_scanned += skipped;
    state.report.windows_empty += skipped;
    tracing::info!(
        archives = state.report.archives.len(),
        messages = state.report.messages_archived,
        oversized = state.report.oversized.len(),
        data_len = state.report.data_len,
        "archive build finished"
    );
    Ok(state.report)
}

fn io_err(step: Step, path: &Path) -> impl FnOnce(io::Error) -> BuildError + use<> {
    let path = path.to_owned();
    move |source| BuildError::Io { step, path, source }
}

impl Run<'_> {
    fn add_message(
        &mut self,
        window: Window,
        meta: &chs_proto::protobuf::WakuMessageArchiveMetadata,
        options: &BuildOptions,
        msg: WakuMessage,
    ) -> Result<(), BuildError> {
        // status-go counts only payload + sig against the cap (§4.4).
        let capped = (msg.payload.len() as u64).saturating_add(msg.sig.len() as u64);
        if capped > options.size_cap {
            tracing::warn!(hash = %hex::encode(&msg.hash), timestamp = msg.timestamp, size = capped,
                cap = options.size_cap, "message larger than the archive size cap left out of the archive");
            self.report.oversized.push(OversizedMessage {
                hash: format!("0x{}", hex::encode(&msg.hash)),
                timestamp: msg.timestamp,
                size: capped,
            });
            return Ok(());
        }
        if self.open.as_ref().is_some_and(|open| open.capped.saturating_add(capped) > options.size_cap) {
            self.close_archive(options.piece_length)?;
        }
        if self.open.is_none() {
            let archive = self.report.archives.len() as u64;
            let step = Step::ArchiveHeader { archive };
            self.hook.before(step).map_err(io_err(step, &self.data_path))?;
            let header = self.encoder.header(meta);
            let raw = header.len() as u64;
            if self.wrapper.is_some() {
                self.pending.clear();
                self.pending.extend_from_slice(header);
            } else {
                write_data(&mut self.data, &self.data_path, self.offset, header)
                    .map_err(io_err(step, &self.data_path))?;
            }
            self.open = Some(OpenArchive { window, meta: meta.clone(), raw, capped: 0, messages: 0 });
        }
        let step = Step::ArchiveMessage { archive: self.report.archives.len() as u64 };
        let len = if self.wrapper.is_some() {
            let before = self.pending.len();
            chs_proto::prost::encoding::message::encode(3, &msg, &mut self.pending);
            (self.pending.len() - before) as u64
        } else {
            append_message(&mut self.data, &self.data_path, self.offset, &msg).map_err(|source| BuildError::Io {
                step,
                path: self.data_path.clone(),
                source,
            })?
        };
        if let Some(open) = self.open.as_mut() {
            open.raw += len;
            open.capped += capped;
            open.messages += 1;
        }
        self.report.messages_archived += 1;
        Ok(())
    }

    /// Pads the open archive and records its index entry (not yet committed).
    fn close_archive(&mut self, piece_length: u64) -> Result<(), BuildError> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        let archive = self.report.archives.len() as u64;
        if let Some(wrapper) = self.wrapper.as_mut() {
            // status-go pads the wrapped bytes (§4.6).
            let wrapped =
                wrapper.wrap(&self.pending).map_err(|source| BuildError::Wrap { what: "wrap an archive", source })?;
            self.pending = Vec::new();
            let step = Step::ArchiveHeader { archive };
            write_data(&mut self.data, &self.data_path, self.offset, &wrapped)
                .map_err(io_err(step, &self.data_path))?;
            open.raw = wrapped.len() as u64;
        }
        let step = Step::ArchivePadding { archive };
        self.hook.before(step).map_err(io_err(step, &self.data_path))?;
        let (padding, size) = format::padding(open.raw, piece_length);
        let zeros = [0u8; 8192];
        let mut left = padding;
        while left > 0 {
            let n = left.min(zeros.len() as u64);
            #[allow(clippy::cast_possible_truncation)] // n <= 8192
            write_data(&mut self.data, &self.data_path, self.offset, &zeros[..n as usize])
                .map_err(io_err(step, &self.data_path))?;
            left -= n;
        }
        let entry = WakuMessageArchiveIndexMetadata {
            version: 0,
            metadata: Some(open.meta),
            offset: self.offset,
            size,
            padding,
        };
        let id = format::archive_id(&entry);
        tracing::debug!(archive_id = %id, from = open.window.from, to = open.window.to, offset = self.offset, size,
            padding, messages = open.messages, "archive written");
        self.report.archives.push(BuiltArchive {
            id: id.clone(),
            window: open.window,
            offset: self.offset,
            size,
            padding,
            messages: open.messages,
        });
        self.index.archives.insert(id, entry);
        self.offset += size;
        self.uncommitted += 1;
        Ok(())
    }

    /// Makes the archives written so far durable: fsync `data`, then replace `index` atomically.
    fn commit(&mut self) -> Result<(), BuildError> {
        let data_path = self.data_path.clone();
        self.hook.before(Step::SyncData).map_err(io_err(Step::SyncData, &data_path))?;
        if let Some(data) = self.data.as_mut() {
            data.sync().map_err(io_err(Step::SyncData, &data_path))?;
        }
        replace_index(&self.dir, &self.index, self.hook, &mut self.wrapper)?;
        self.report.data_len = self.offset;
        self.uncommitted = 0;
        Ok(())
    }
}

/// Replaces `index` atomically: written to `index.tmp`, fsynced, renamed over `index`, and the
/// folder fsynced. Wrapped first if there is a `wrapper`.
fn replace_index(
    dir: &Path,
    index: &WakuMessageArchiveIndex,
    hook: &mut dyn StepHook,
    wrapper: &mut Option<&mut dyn Wrapper>,
) -> Result<(), BuildError> {
    let tmp = dir.join(INDEX_TEMP_FILE);
    let index_path = dir.join(INDEX_FILE);
    hook.before(Step::WriteIndexTemp).map_err(io_err(Step::WriteIndexTemp, &tmp))?;
    let mut bytes = format::encode_index(index);
    if let Some(wrapper) = wrapper.as_mut() {
        bytes = wrapper.wrap(&bytes).map_err(|source| BuildError::Wrap { what: "wrap the index", source })?;
    }
    let mut file = File::create(&tmp).map_err(io_err(Step::WriteIndexTemp, &tmp))?;
    file.write_all(&bytes).map_err(io_err(Step::WriteIndexTemp, &tmp))?;
    hook.before(Step::SyncIndexTemp).map_err(io_err(Step::SyncIndexTemp, &tmp))?;
    file.sync_all().map_err(io_err(Step::SyncIndexTemp, &tmp))?;
    drop(file);
    hook.before(Step::RenameIndex).map_err(io_err(Step::RenameIndex, &index_path))?;
    std::fs::rename(&tmp, &index_path).map_err(io_err(Step::RenameIndex, &index_path))?;
    hook.before(Step::SyncDir).map_err(io_err(Step::SyncDir, dir))?;
    sync_dir(dir).map_err(io_err(Step::SyncDir, dir))
}

/// The writer of `data`, opened (positioned at `offset`, the committed end) on first use.
fn data_writer<'d>(data: &'d mut Option<DataWriter>, path: &Path, offset: u64) -> io::Result<&'d mut DataWriter> {
    if data.is_none() {
        let mut file = OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        *data = Some(DataWriter::new(file)?);
    }
    data.as_mut().ok_or_else(|| io::Error::other("bug: data file not open"))
}

/// Appends `bytes` to `data`.
fn write_data(data: &mut Option<DataWriter>, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
    data_writer(data, path, offset)?.write_all(bytes)
}

/// Appends one `messages` field (encoded in place) to `data`; returns its length.
fn append_message(data: &mut Option<DataWriter>, path: &Path, offset: u64, msg: &WakuMessage) -> io::Result<u64> {
    let writer = data_writer(data, path, offset)?;
    let buffer = writer.buffer();
    let before = buffer.len();
    chs_proto::prost::encoding::message::encode(3, msg, buffer);
    let len = (buffer.len() - before) as u64;
    writer.written()?;
    Ok(len)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
