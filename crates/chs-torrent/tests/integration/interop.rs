//! Interop with libtorrent (PyPI `libtorrent` 2.1), run only when `CHS_LT_PYTHON` names a python
//! that can `import libtorrent`; otherwise each test prints that it is skipped and returns.
//! The Python side lives in `crates/chs-torrent/interop/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use chs_torrent::{DownloadOptions, Magnet, TorrentFileOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use crate::util::{ARCHIVE_SIZE, CID, TEST_TIMEOUT, init_tracing, meta_of, node, owner_folder};

mod status_go;

// The skip notice must reach the test log.
#[allow(clippy::print_stderr)]
fn lt_python() -> Option<String> {
    match std::env::var("CHS_LT_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("skipped: set CHS_LT_PYTHON to a python with libtorrent to run the interop tests");
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop").join(name)
}

fn python(py: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(py);
    cmd.args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

/// Reads the first JSON line the script prints.
async fn first_json(child: &mut Child) -> serde_json::Value {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await.expect("read stdout").expect("script printed a line");
    serde_json::from_str(&line).expect("script printed JSON")
}

/// Deterministic pseudo-random bytes (xorshift64, fixed seed).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `<parent>/<cid>/{data,index}` with three 100 KiB archives of random bytes and a short index.
fn random_archive_folder(parent: &Path) -> PathBuf {
    let dir = parent.join(CID);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("data"), pseudo_random(3 * ARCHIVE_SIZE as usize, 42)).expect("data");
    std::fs::write(dir.join("index"), pseudo_random(1234, 7)).expect("index");
    dir
}

/// (a) libtorrent downloads, from our magnet link and our seeder, a torrent we created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_what_we_create_and_seed() {
    let Some(py) = lt_python() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = random_archive_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner = node(&tmp.path().join("owner-state")).await;
        owner.seed(CID, &folder, &meta).await.expect("seeds");
        let peer = owner.local_peer_addr().expect("listens");
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(peer).to_string();
        let out = tmp.path().join("lt-out");
        let mut child = python(
            &py,
            &[
                script("lt_fetch.py").to_str().expect("utf-8"),
                &magnet,
                out.to_str().expect("utf-8"),
                &peer.to_string(),
                "60",
            ],
        )
        .spawn()
        .expect("spawn python");
        let report = first_json(&mut child).await;
        assert_eq!(report["done"], true);
        assert_eq!(report["name"], CID);
        for f in ["data", "index"] {
            let theirs = std::fs::read(out.join(CID).join(f)).expect("libtorrent wrote the file");
            assert_eq!(theirs, std::fs::read(folder.join(f)).expect("ours"), "{f} differs");
        }
        let status = owner.status(CID).expect("seeding");
        assert!(status.uploaded_bytes >= meta.total_length(), "{status:?}");
    })
    .await
    .expect("test timed out");
}

/// Starts `lt_seed.py` and returns the child, its magnet link and its port.
async fn lt_seed(py: &str, folder: &Path, mode: &str, arg: &str) -> (Child, Magnet, u16, Vec<u8>) {
    let mut child =
        python(py, &[script("lt_seed.py").to_str().expect("utf-8"), folder.to_str().expect("utf-8"), mode, arg])
            .spawn()
            .expect("spawn python");
    let report = first_json(&mut child).await;
    let magnet: Magnet = report["magnet"].as_str().expect("magnet").parse().expect("libtorrent magnet parses");
    let port = u16::try_from(report["port"].as_u64().expect("port")).expect("port fits");
    use base64::Engine as _;
    let torrent =
        base64::engine::general_purpose::STANDARD.decode(report["torrent"].as_str().expect("torrent")).expect("b64");
    (child, magnet, port, torrent)
}

async fn fetch_index_and_archive_two(magnet: &Magnet, port: u16, folder: &Path, work: &Path) {
    let member = node(&work.join("member-state")).await;
    let opts = DownloadOptions { peers: vec![([127, 0, 0, 1], port).into()], ..DownloadOptions::default() };
    let dl = member.download(CID, magnet, &work.join("member-data"), opts).await.expect("metadata from libtorrent");
    let index = dl.fetch_index().await.expect("index from libtorrent");
    assert_eq!(index, std::fs::read(folder.join("index")).expect("index"));
    let range = ARCHIVE_SIZE..2 * ARCHIVE_SIZE;
    let stats = dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("range from libtorrent");
    assert!(stats.pieces_fetched >= 1);
    let want = std::fs::read(folder.join("data")).expect("data");
    assert_eq!(
        dl.read_range("data", range.clone()).await.expect("read"),
        want[range.start as usize..range.end as usize]
    );
    let piece_length = u64::from(dl.meta().piece_length());
    assert!(stats.bytes_received <= ARCHIVE_SIZE + 2 * piece_length, "{stats:?}");
}

/// (b) libtorrent creates (v1 only; it only accepts power-of-two piece lengths) and seeds; we
/// fetch the index and one archive's byte range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_fetch_index_and_range_from_libtorrent_created_torrent() {
    let Some(py) = lt_python() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = random_archive_folder(&tmp.path().join("lt-data"));
        let (mut child, magnet, port, torrent) = lt_seed(&py, &folder, "--create", "65536").await;
        let lt_meta = chs_torrent::TorrentMeta::from_torrent_bytes(&torrent).expect("libtorrent's torrent parses");
        assert_eq!(lt_meta.info_hash(), magnet.info_hash);
        assert_eq!(lt_meta.piece_length(), 65536);
        fetch_index_and_archive_two(&magnet, port, &folder, tmp.path()).await;
        child.kill().await.ok();
    })
    .await
    .expect("test timed out");
}

/// (b') libtorrent seeds a status-go style torrent (100 KiB pieces, written by us: the spec
/// vector) and we fetch the index and one archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_fetch_index_and_range_from_libtorrent_seeding_status_go_torrent() {
    let Some(py) = lt_python() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("lt-data"));
        let meta = meta_of(&folder);
        let torrent_path =
            meta.write_torrent_file(&tmp.path().join("torrents"), &TorrentFileOptions::default()).expect("write");
        let (mut child, magnet, port, _) =
            lt_seed(&py, &folder, "--torrent", torrent_path.to_str().expect("utf-8")).await;
        assert_eq!(magnet.info_hash, meta.info_hash());
        fetch_index_and_archive_two(&magnet, port, &folder, tmp.path()).await;
        child.kill().await.ok();
    })
    .await
    .expect("test timed out");
}
