//! Shared helpers: fixtures copied from the spec vectors, temp dirs, node setup.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chs_torrent::{Config, DEFAULT_PIECE_LENGTH, Progress, ProgressFn, TorrentMeta, TorrentNode};

pub(crate) const CID: &str = "0x020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
/// Each of the vector's three archives is one 102400-byte padded piece.
pub(crate) const ARCHIVE_SIZE: u64 = 102_400;
/// Upper bound for every network test.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(CID)
}

/// Copies the vector's `<cid>/{data,index}` into `parent/<cid>` and returns that folder.
pub(crate) fn owner_folder(parent: &Path) -> PathBuf {
    let dir = parent.join(CID);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in ["data", "index"] {
        std::fs::copy(vector_dir().join(f), dir.join(f)).expect("copy vector file");
    }
    dir
}

pub(crate) fn meta_of(dir: &Path) -> TorrentMeta {
    TorrentMeta::from_dir(dir, DEFAULT_PIECE_LENGTH).expect("torrent of folder")
}

pub(crate) async fn node(state: &Path) -> TorrentNode {
    TorrentNode::start(Config::local(state)).await.expect("node starts")
}

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A progress callback that records every event.
pub(crate) fn recorder() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let cb: ProgressFn = Arc::new(move |p| sink.lock().expect("lock").push(p));
    (cb, events)
}

/// An owner node seeding the vector's folder (copied under `tmp/owner-data`) as the torrent of
/// [`CID`]: the folder, its torrent, the node.
pub(crate) async fn seeding_owner(tmp: &Path) -> (PathBuf, TorrentMeta, TorrentNode) {
    let folder = owner_folder(&tmp.join("owner-data"));
    let meta = meta_of(&folder);
    let owner = node(&tmp.join("owner-state")).await;
    owner.seed(CID, &folder, &meta).await.expect("seeds");
    (folder, meta, owner)
}
