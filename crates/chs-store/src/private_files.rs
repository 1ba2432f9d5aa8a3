//! The database file and its SQLite companions (`-wal`, `-shm`, `-journal`) are private to their
//! owner (mode 0600): the community tables keep private keys in the same file.
//!
//! [`create`] makes an absent database file with mode 0600 before SQLite opens it, without
//! changing the umask (a process-wide setting a library must not touch). SQLite's unix VFS then
//! `fchmod`s a still empty database file to its default 0644 when it opens it (`robust_open`), so
//! [`restore`] sets the new file back to 0600 right after the open, while it is still empty and
//! before any statement runs: SQLite creates `-journal`, `-wal` and `-shm` later, with the
//! database file's mode (`findCreateFileMode`), hence 0600 too. [`tighten`] repairs files an older
//! chs (or another tool) left readable by others. Elsewhere than on Unix all three do nothing.

use std::io;
use std::path::{Path, PathBuf};

/// The mode of every store file.
pub(crate) const MODE: u32 = 0o600;

/// The suffixes SQLite appends to the database path for its companion files.
pub(crate) const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The database file and its companions.
#[must_use]
pub(crate) fn files(db: &Path) -> Vec<PathBuf> {
    let mut out = vec![db.to_owned()];
    for suffix in COMPANIONS {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        out.push(PathBuf::from(name));
    }
    out
}

/// Creates `db` empty with mode 0600 if it does not exist (SQLite takes an empty file for a new
/// database); an existing file is left alone. Returns whether it created the file.
///
/// # Errors
/// The file cannot be created (e.g. its folder does not exist).
pub(crate) fn create(db: &Path) -> io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, MODE);
    match options.open(db) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets the file [`create`] made back to 0600 after SQLite opened it (and set it to 0644 because
/// it was empty), silently: nothing was ever written to it.
///
/// # Errors
/// The mode cannot be set.
pub(crate) fn restore(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(MODE))
    }
    #[cfg(not(unix))]
    {
        let _ = db;
        Ok(())
    }
}

/// Sets the database file and each existing companion that group or others may access to 0600,
/// with a warning naming the file and its old mode; returns the files changed. A file that cannot
/// be changed (owned by another user) is reported as an error in the log and left as it is.
pub(crate) fn tighten(db: &Path) -> Vec<PathBuf> {
    let mut changed = Vec::new();
    #[cfg(unix)]
    for path in files(db) {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(MODE)) {
            Ok(()) => {
                tracing::warn!(path = %path.display(), old_mode = format!("{mode:04o}"),
                    "store file was readable by other users (it may hold private keys): set to 0600");
                changed.push(path);
            }
            Err(e) => tracing::error!(path = %path.display(), mode = format!("{mode:04o}"), error = %e,
                "store file is readable by other users (it may hold private keys) and cannot be set to 0600"),
        }
    }
    changed
}
