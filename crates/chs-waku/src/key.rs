//! The node's secp256k1 key, kept as 32 raw secret bytes in `<data_dir>/node_key`.

use std::io;
use std::path::{Path, PathBuf};

use libp2p::identity::{Keypair, secp256k1};

use crate::error::KeyError;

/// Name of the key file inside the data dir.
pub const NODE_KEY_FILE: &str = "node_key";

/// Loads the secp256k1 node key from `data_dir/node_key`, or creates one (and the dir) if absent.
pub(crate) async fn load_or_create(data_dir: &Path) -> Result<Keypair, KeyError> {
    let path = data_dir.join(NODE_KEY_FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            tighten(&path).await;
            decode(&path, bytes)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => create(data_dir, &path).await,
        Err(source) => Err(KeyError::Io { path, source }),
    }
}

/// Makes an existing key file that others can read owner-only (0600), with a warning; a file that
/// cannot be changed (another owner) is logged and still used.
async fn tighten(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = tokio::fs::metadata(path).await else { return };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).await {
                Ok(()) => tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                    "the node key was readable by others: made it 0600"),
                Err(error) => tracing::error!(path = %path.display(), %error,
                    "the node key is readable by others and cannot be made 0600"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn decode(path: &Path, bytes: Vec<u8>) -> Result<Keypair, KeyError> {
    let mut secret: [u8; 32] =
        bytes.try_into().map_err(|bytes: Vec<u8>| KeyError::BadLength { path: path.to_owned(), len: bytes.len() })?;
    let secret_key = secp256k1::SecretKey::try_from_bytes(&mut secret)
        .map_err(|_| KeyError::InvalidSecret { path: path.to_owned() })?;
    Ok(Keypair::from(secp256k1::Keypair::from(secret_key)))
}

async fn create(data_dir: &Path, path: &PathBuf) -> Result<Keypair, KeyError> {
    tokio::fs::create_dir_all(data_dir).await.map_err(|source| KeyError::Io { path: data_dir.to_owned(), source })?;
    let secret_key = secp256k1::SecretKey::generate();
    let bytes = secret_key.to_bytes();
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(mut file) => {
            use tokio::io::AsyncWriteExt as _;
            file.write_all(&bytes).await.map_err(|source| KeyError::Io { path: path.clone(), source })?;
            file.sync_all().await.map_err(|source| KeyError::Io { path: path.clone(), source })?;
            tracing::info!(path = %path.display(), "created a new node key");
            Ok(Keypair::from(secp256k1::Keypair::from(secret_key)))
        }
        // Another process created it between our read and our create: use theirs.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let bytes = tokio::fs::read(path).await.map_err(|source| KeyError::Io { path: path.clone(), source })?;
            decode(path, bytes)
        }
        Err(source) => Err(KeyError::Io { path: path.clone(), source }),
    }
}

/// A fresh, unsaved secp256k1 key.
pub(crate) fn ephemeral() -> Keypair {
    Keypair::from(secp256k1::Keypair::generate())
}
