//! The crate's error type.

/// Why a fetched archive was not imported (recorded with the archive; the others go on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchedArchiveError {
    /// The bytes are not a `WakuMessageArchive`.
    #[error("archive decode")]
    Decode(#[from] chs_archive::DecodeError),
    /// The archive is wrapped with the community's hash-ratchet key (status-go's encrypted
    /// communities, `manager_archive_file.go`), which this node does not hold: the bytes are
    /// kept and seeded, the messages not imported.
    #[error("archive {0}; chs holds no hash-ratchet key: kept and seeded, not imported")]
    Wrapped(chs_archive::HashRatchetWrapping),
    /// The archive's own window is not the one its index entry claims.
    #[error("archive {archive_id} covers [{from}, {to}) but its index entry says [{entry_from}, {entry_to})")]
    WrongWindow {
        /// The archive id.
        archive_id: String,
        /// The archive's window start.
        from: u64,
        /// The archive's window end.
        to: u64,
        /// The index entry's window start.
        entry_from: u64,
        /// The index entry's window end.
        entry_to: u64,
    },
    /// The import refused it.
    #[error("import")]
    Import(#[source] Box<CommunityError>),
}

/// What went wrong in the community manager.
///
/// Hostile or malformed *network* input (a forged magnetlink, a broken archive message) is not an
/// error: it yields a [`crate::Verdict::Rejected`] or a count in [`crate::ImportReport`].
/// These errors are about the caller's input and the database.
#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    /// A community id string is not `0x` + 66 hex digits of a compressed secp256k1 point.
    #[error("invalid community id")]
    InvalidCommunityId(#[from] chs_status::ids::IdError),
    /// A private key given as hex is not a valid secp256k1 scalar.
    #[error("invalid private key: {reason}")]
    InvalidPrivateKey {
        /// What is wrong with it (never the key itself).
        reason: String,
    },
    /// A public key given as hex is not a secp256k1 point.
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    /// No community with this id is stored.
    #[error("community {0} is not known (create, import or join it first)")]
    UnknownCommunity(String),
    /// The operation needs the community's private key (control node) but only the id is stored.
    #[error("community {0} is joined as a member: the operation needs the control node's private key")]
    NotControlNode(String),
    /// The community is already stored with different key material.
    #[error("community {0} already exists")]
    AlreadyExists(String),
    /// An archive id is not `0x` + 64 hex digits.
    #[error("invalid archive id {0:?}: expected 0x + 64 hex digits")]
    InvalidArchiveId(String),
    /// A time range with `from >= to`.
    #[error("empty time range [{from}, {to})")]
    EmptyRange {
        /// Start (seconds, inclusive).
        from: u64,
        /// End (seconds, exclusive).
        to: u64,
    },
    /// A row of the community tables holds a value this build cannot read.
    #[error("malformed row in {table}: {what}")]
    MalformedRow {
        /// Table name.
        table: &'static str,
        /// What is wrong.
        what: String,
    },
    /// A hash-ratchet key (or its timestamp) given is not usable, or its chain is exhausted.
    #[error("hash-ratchet key: {0}")]
    InvalidRatchetKey(String),
    /// The wire layer refused to build a message (e.g. a magnet URI too large for one payload).
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The message store failed (including migrations of this crate's tables).
    #[error("store")]
    Store(#[from] chs_store::StoreError),
    /// Any other SQLite failure.
    #[error("sqlite")]
    Sqlite(#[from] rusqlite::Error),
}
