//! Advisory locking of an archive folder between processes.
//!
//! A build holds the folder's lock exclusively from the moment it reads `index` until the new
//! `index` is renamed into place; whoever makes a torrent of the folder (the node's seeder) holds it
//! shared. Without it, a seeder watching the folder could hash `data` already appended to but the
//! old `index` (a torrent whose index misses the new archives), or the stray `index.tmp`; and two
//! builders would truncate each other's appended bytes as "left by an interrupted build".
//!
//! The lock is an OS file lock (`flock` on Unix) on the folder itself (opened read-only), so nothing
//! is added to the folder (the torrent covers every file in it) or left beside it. The kernel drops
//! the lock when its holder exits, even by SIGKILL, so a crash never leaves the folder locked.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// An error taking a folder lock.
#[derive(Debug, thiserror::Error)]
#[error("cannot lock archive folder {folder}")]
pub struct LockError {
    /// The archive folder.
    pub folder: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// A held lock on an archive folder; released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    exclusive: bool,
}

impl FolderLock {
    /// Takes the lock of `folder` (which must exist) exclusively, for a build, waiting while
    /// another holder has it.
    /// `waiting` is called once if the lock is busy, before waiting.
    ///
    /// # Errors
    /// [`LockError`] if the lock file cannot be opened or locked.
    pub fn exclusive(folder: &Path, waiting: impl FnOnce()) -> Result<Self, LockError> {
        let file = open(folder)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(|source| error(folder, source))?;
            }
            Err(TryLockError::Error(source)) => return Err(error(folder, source)),
        }
        Ok(FolderLock { _file: file, exclusive: true })
    }

    /// Takes the lock of `folder` (which must exist) shared (to read a consistent folder, e.g. to make its torrent), waiting while
    /// a build holds it.
    ///
    /// # Errors
    /// [`LockError`] if the lock file cannot be opened or locked.
    pub fn shared(folder: &Path) -> Result<Self, LockError> {
        let file = open(folder)?;
        file.lock_shared().map_err(|source| error(folder, source))?;
        Ok(FolderLock { _file: file, exclusive: false })
    }

    /// Takes the lock of `folder` (which must exist) shared if no build holds it; `Ok(None)` while one does.
    ///
    /// # Errors
    /// [`LockError`] if the lock file cannot be opened or locked.
    pub fn try_shared(folder: &Path) -> Result<Option<Self>, LockError> {
        let file = open(folder)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(FolderLock { _file: file, exclusive: false })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(error(folder, source)),
        }
    }

    /// Whether this is the exclusive (build) lock.
    #[must_use]
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

fn error(folder: &Path, source: io::Error) -> LockError {
    LockError { folder: folder.to_owned(), source }
}

/// Opens the folder itself, which must exist.
fn open(folder: &Path) -> Result<File, LockError> {
    File::open(folder).map_err(|source| error(folder, source))
}
