//! Typed errors of the torrent layer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bencode::DecodeError;

/// Why metainfo (an info dict or a `.torrent`) was rejected or could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The bytes are not valid bencode.
    #[error("invalid bencode")]
    Bencode(#[source] DecodeError),
    /// A required field is missing or has the wrong type.
    #[error("missing or malformed field `{0}`")]
    Field(&'static str),
    /// Single-file torrents are not used by status-go archives and are not supported.
    #[error("single-file torrents are not supported (no `files` list)")]
    SingleFile,
    /// `name` is not one safe path component.
    #[error("torrent name {0:?} is not a single safe path component")]
    BadName(String),
    /// A file path component is empty, `.`/`..`, or contains a separator.
    #[error("unsafe file path {0:?} in torrent")]
    BadPath(String),
    /// The number of piece hashes does not match the total length.
    #[error("torrent has {actual} piece hashes but its length needs {expected}")]
    PieceCount {
        /// Hashes the length calls for.
        expected: u64,
        /// Hashes present.
        actual: u64,
    },
    /// The piece length is zero.
    #[error("piece length must be positive")]
    ZeroPieceLength,
    /// The folder has no bytes to share.
    #[error("no data: the folder has no non-empty regular files")]
    Empty,
    /// A file's length changed while it was hashed.
    #[error("file {path} changed while it was being hashed")]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// More than `u32::MAX` pieces.
    #[error("torrent has too many pieces")]
    TooManyPieces,
}

/// Errors of `chs-torrent`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid metainfo.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A file-system operation failed.
    #[error("I/O error on {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not 40 hex characters.
    #[error("invalid info hash {0:?}")]
    InvalidInfoHash(String),
    /// The magnet link could not be parsed.
    #[error("invalid magnet link {uri:?}: {reason}")]
    InvalidMagnet {
        /// The link.
        uri: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The torrent has no file with that path (or index).
    #[error("torrent has no file {0:?}")]
    NoSuchFile(String),
    /// A requested byte range lies outside its file.
    #[error("byte range {start}..{end} is outside the file (length {file_len})")]
    RangeOutOfFile {
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// librqbit reported an error (its errors are `anyhow`; the chain is kept as text).
    #[error("librqbit: {context}: {message}")]
    Librqbit {
        /// What we were doing.
        context: &'static str,
        /// librqbit's error chain.
        message: String,
    },
    /// Metadata from the swarm does not hash to the magnet's info hash.
    #[error("metadata from peers has info hash {actual}, expected {expected}")]
    InfoHashMismatch {
        /// From the magnet link.
        expected: String,
        /// Of the received info dict.
        actual: String,
    },
    /// Data on disk does not match the torrent being seeded.
    #[error("local data in {folder} does not match torrent {info_hash}: {have} of {total} bytes verified")]
    DataMismatch {
        /// The seeded folder.
        folder: PathBuf,
        /// The torrent.
        info_hash: String,
        /// Verified bytes.
        have: u64,
        /// Torrent size.
        total: u64,
    },
    /// A step did not finish in time (after all retries).
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The caller's cancellation token fired.
    #[error("cancelled")]
    Cancelled,
    /// The caller's [`crate::DownloadOptions::validate`] refused the torrent's metadata.
    #[error("torrent refused: {0}")]
    Rejected(String),
    /// No peer to download from: give explicit peers or enable DHT/trackers.
    #[error("no peers to download from")]
    NoPeers,
    /// A peer violated the wire protocol or sent data that failed verification.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The peer.
        peer: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// Some pieces could not be fetched from any peer.
    #[error("{missing} pieces could not be fetched from any peer")]
    Incomplete {
        /// Pieces still missing.
        missing: usize,
    },
    /// A key must be non-empty and contain no tab or line break.
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The node was shut down.
    #[error("torrent node is shut down")]
    Shutdown,
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    pub(crate) fn rqbit(context: &'static str, err: impl std::fmt::Display) -> Self {
        // `{:#}` prints an anyhow chain on one line.
        Self::Librqbit { context, message: format!("{err:#}") }
    }
}
