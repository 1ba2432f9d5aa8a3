//! Status history archives: the `data` and `index` files of status-go's Community History Service,
//! byte-compatible with status-go (`protocol/communities/manager_archive_file.go`).
//!
//! Start with [`Builder`] (append the archives of a time range from a [`MessageSource`], crash
//! safely), [`plan_catch_up`] (which range to build when), and [`Reader`] (list, extract and verify
//! the archives of a directory). [`format`](mod@format) holds the byte-level rules: padding, archive ids and the
//! codecs; [`fuzz`] the fuzzing entry points.
//!
//! A directory holds `data` (the padded archives, append-only) and `index` (a
//! `WakuMessageArchiveIndex`, rewritten atomically). Nothing else is left behind: the torrent is
//! built from every file of the directory. A build locks the directory against other processes
//! ([`FolderLock`], a `<dir>.lock` file beside it); take it shared to read a consistent directory.
//!
//! This crate is synchronous and does its file I/O through `std`. It knows nothing of torrents,
//! Waku, communities or keys (encrypted archives are recognised, not decrypted), and nothing of
//! SQLite beyond implementing [`MessageSource`] for the message store, behind the `store` feature
//! (default). With `default-features = false` it has neither SQLite nor tokio: see the example in
//! the crate's README.md (compiled as a doctest).

pub mod builder;
pub mod format;
pub mod fuzz;
pub mod lock;
pub mod logos;
pub mod plan;
pub mod reader;
mod recover;
pub mod source;
mod writer;

pub use builder::{
    BuildError, BuildOptions, BuildReport, Builder, BuiltArchive, OversizedMessage, Progress, Step, StepHook,
    WrapError, Wrapper, repair, repair_with, repair_wrapped,
};
pub use format::{
    DEFAULT_INTERVAL_SECS, DecodeError, EntryError, HashRatchetWrapping, MAX_ARCHIVE_SIZE, PIECE_LENGTH, archive_id,
    check_entry, hash_ratchet_wrapping, padding,
};
pub use lock::{FolderLock, LockError};
pub use plan::{
    CatchUpCase, CatchUpPlan, CatchUpPolicy, MAX_SECS, PlanError, TimeUnit, Window, Windows, check_secs, plan_catch_up,
    windows,
};
pub use reader::{ArchiveEntry, ArchiveProblem, ArchiveRow, ReadError, Reader, VerifyReport, Violation};
pub use source::{MemorySource, MessageSource, ScanError, SourceError};

/// The protobuf messages of the format (from `chs-proto`), so that a user of this crate alone can
/// build messages and read archives.
pub use chs_proto::protobuf::{
    WakuMessage, WakuMessageArchive, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata,
    WakuMessageArchiveMetadata,
};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

/// status-go's legacy 4-byte topic (the same type as `chs_store::Topic`).
pub type Topic = [u8; 4];

/// Name of the archive data file inside an archive directory.
pub const DATA_FILE: &str = "data";
/// Name of the index file inside an archive directory.
pub const INDEX_FILE: &str = "index";
/// Name of the temporary index written before the atomic rename (removed on the next build).
pub const INDEX_TEMP_FILE: &str = "index.tmp";

/// The end of the last archive in `<dir>/index` (largest `to`), if there is one: where the next
/// build resumes, and a fallback for the stored "last archive end date".
///
/// # Errors
/// [`ReadError`] if the index cannot be read.
pub fn last_archive_end(dir: &std::path::Path) -> Result<Option<u64>, ReadError> {
    Ok(Reader::open(dir)?.entries().iter().map(ArchiveEntry::to).max())
}

#[cfg(test)]
mod tests;
