//! Interop with status-go's own BitTorrent client (anacrolix v1.41 configured as status-go's
//! `StartTorrentClient`) and archive code, built in `../shared/peers/bin` (`CHS_PEERS_BIN`), with
//! **no peer hint anywhere**: the peers find each other through a local tracker or a local DHT
//! node only (both `chspeer-torrent`, on 127.0.0.1). Without `CHS_PEERS_BIN` each test prints a
//! `skipped:` line and returns (`cargo xtask interop` sets it, so CI skips none).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chs_torrent::{Config, Discovery, DownloadOptions, Magnet, TorrentMeta, TorrentNode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::pseudo_random;
use crate::util::{CID, TEST_TIMEOUT, init_tracing, meta_of, owner_folder};

// The skip notice must reach the test log.
#[allow(clippy::print_stderr)]
fn peers_bin() -> Option<PathBuf> {
    match std::env::var_os("CHS_PEERS_BIN") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: set CHS_PEERS_BIN to ../shared/peers/bin to run the status-go interop tests");
            None
        }
    }
}

/// A running `chspeer-*` process and the lines it printed.
struct Peer {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(bin: &Path, name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(bin.join(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        let tag = format!("{name} {}", args.first().copied().unwrap_or_default());
        tokio::spawn(async move {
            let mut rd = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                tracing::info!("{tag}: {line}");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// The first line (already seen or coming) that starts with `prefix` and contains `needle`.
    async fn line(&mut self, prefix: &str, needle: &str) -> String {
        let hit = |l: &String| l.starts_with(prefix) && l.contains(needle);
        if let Some(l) = self.seen.iter().find(|l| hit(l)) {
            return l.clone();
        }
        loop {
            let l = self.lines.recv().await.unwrap_or_else(|| panic!("exited before printing {prefix}…{needle}"));
            assert!(!l.starts_with("FATAL"), "{l}");
            self.seen.push(l.clone());
            if hit(&l) {
                return l;
            }
        }
    }

    /// Waits for the process to exit and returns every line it printed.
    async fn finish(mut self) -> Vec<String> {
        while let Some(l) = self.lines.recv().await {
            self.seen.push(l);
        }
        self.child.wait().await.ok();
        self.seen
    }
}

/// The value of `key=` in a line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {line}"));
    line[at + key.len() + 1..].split(' ').next().unwrap_or_default()
}

/// A local tracker (HTTP and UDP): its UDP announce URL.
async fn tracker(bin: &Path) -> (Peer, String) {
    let mut t = Peer::spawn(bin, "chspeer-torrent", &["tracker", "-listen", "127.0.0.1:0", "-interval", "2s"]);
    let line = t.line("TRACKER", "").await;
    let url = field(&line, "udp").to_owned();
    (t, url)
}

/// A local DHT node: its address.
async fn dht_node(bin: &Path) -> (Peer, String) {
    let mut d = Peer::spawn(bin, "chspeer-torrent", &["dht-node", "-listen", "127.0.0.1:0"]);
    let line = d.line("DHTNODE", "").await;
    let addr = field(&line, "addr").to_owned();
    (d, addr)
}

/// The community id `CID` without `0x`, as `chspeer-archive -community` takes it.
fn community_hex() -> &'static str {
    CID.trim_start_matches("0x")
}

/// status-go's own archive creator: 40 messages over 400 hours in 168-hour archives, written to
/// `<datadir>/<CID>/{data,index}` and `<torrentdir>/<CID>.torrent`. Returns the folder and the
/// `.torrent` path.
async fn status_go_archive(bin: &Path, work: &Path) -> (PathBuf, PathBuf) {
    let base = 1_700_000_000u64;
    let msgs: Vec<serde_json::Value> = (0..STATUS_GO_MESSAGES as u64)
        .map(|i| {
            serde_json::json!({
                "timestamp": base + i * 36_000,
                "topic": if i % 2 == 0 { "0xaabbccdd" } else { "0x11223344" },
                "payload": hex(&pseudo_random(2_000 + 9_000 * i as usize, i + 1)),
                "sig": "", "padding": "",
                "hash": hex(&pseudo_random(32, 1000 + i)),
                "thirdPartyId": "",
            })
        })
        .collect();
    let json = work.join("msgs.json");
    std::fs::write(&json, serde_json::to_vec(&msgs).expect("json")).expect("write msgs");
    let (data, torrents) = (work.join("sg-data"), work.join("sg-torrents"));
    let end = (base + STATUS_GO_MESSAGES as u64 * 36_000).to_string();
    let out = Peer::spawn(
        bin,
        "chspeer-archive",
        &[
            "create",
            "-datadir",
            data.to_str().expect("utf-8"),
            "-torrentdir",
            torrents.to_str().expect("utf-8"),
            "-community",
            community_hex(),
            "-messages",
            json.to_str().expect("utf-8"),
            "-start",
            &base.to_string(),
            "-end",
            &end,
            "-partition",
            "168h",
        ],
    )
    .finish()
    .await;
    assert!(out.iter().any(|l| l.starts_with("MAGNET")), "chspeer-archive create: {out:?}");
    (data.join(CID), torrents.join(format!("{CID}.torrent")))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// status-go's extractor over `<datadir>/<CID>`: the set of messages it reads.
async fn extract(bin: &Path, datadir: &Path) -> BTreeSet<String> {
    let out = Peer::spawn(
        bin,
        "chspeer-archive",
        &["extract", "-datadir", datadir.to_str().expect("utf-8"), "-community", community_hex()],
    )
    .finish()
    .await;
    out.into_iter().filter(|l| l.starts_with("MSG ")).collect()
}

/// The `(offset, size)` of every archive of an index file, read by status-go's code.
async fn archive_ranges(bin: &Path, index: &Path) -> Vec<std::ops::Range<u64>> {
    let out = Peer::spawn(bin, "chspeer-torrent", &["index", "-file", index.to_str().expect("utf-8")]).finish().await;
    out.iter()
        .filter(|l| l.starts_with("INDEX "))
        .map(|l| {
            let offset: u64 = field(l, "offset").parse().expect("offset");
            let size: u64 = field(l, "size").parse().expect("size");
            offset..offset + size
        })
        .collect()
}

/// A chs node with only the given discovery, listening on 127.0.0.1, no peer hint.
async fn chs_node(state: &Path, trackers: &[&str], dht: &[&str]) -> TorrentNode {
    let mut config = Config::local(state);
    config.discovery = Discovery::only(
        trackers.iter().map(|t| (*t).to_owned()).collect(),
        dht.iter().map(|d| (*d).to_owned()).collect(),
    );
    TorrentNode::start(config).await.expect("node starts")
}

/// status-go's client seeds `torrent` (announce list replaced by the local tracker, or DHT only).
async fn status_go_seeder(bin: &Path, folder: &Path, torrent: &Path, discovery: &[&str]) -> (Peer, Magnet) {
    let datadir = folder.parent().expect("parent");
    let mut args = vec![
        "seed",
        "-datadir",
        datadir.to_str().expect("utf-8"),
        "-torrent",
        torrent.to_str().expect("utf-8"),
        "-listen-host",
        "127.0.0.1",
    ];
    args.extend_from_slice(discovery);
    let mut seeder = Peer::spawn(bin, "chspeer-torrent", &args);
    let line = seeder.line("MAGNET ", "").await;
    let magnet: Magnet = line.trim_start_matches("MAGNET ").parse().expect("status-go's magnet parses");
    seeder.line("SEEDING", "").await;
    assert!(magnet.peers.is_empty(), "status-go's magnet has no peer hint: {magnet}");
    (seeder, magnet)
}

/// The chs member's flow, status-go's order: the metadata and the `index` (librqbit), then every
/// archive's byte range (our range fetcher), no peer given. Returns the fetch statistics.
async fn chs_fetch_index_then_ranges(
    bin: &Path,
    member: &TorrentNode,
    magnet: &Magnet,
    out: &Path,
) -> chs_torrent::FetchStats {
    let dl = member.download(CID, magnet, out, DownloadOptions::default()).await.expect("metadata, no peer hint");
    assert_eq!(dl.meta().info_hash(), magnet.info_hash);
    let index = dl.fetch_index().await.expect("index, no peer hint");
    let index_file = out.join("index.copy");
    std::fs::write(&index_file, &index).expect("write index copy");
    let ranges = archive_ranges(bin, &index_file).await;
    assert!(ranges.len() >= 2, "status-go's index lists the archives: {ranges:?}");
    let stats = dl.fetch_ranges("data", &ranges).await.expect("archive ranges, no peer hint");
    assert!(stats.pieces_fetched > 0, "{stats:?}");
    dl.finish().await.expect("finish");
    stats
}

/// Messages in the archives of [`status_go_archive`].
const STATUS_GO_MESSAGES: usize = 40;
/// Messages in the archives of the spec vector ([`owner_folder`]).
const VECTOR_MESSAGES: usize = 4;

/// The member's folder reads back, through status-go's extractor, every message of the seeder's
/// (`count` of them).
async fn assert_same_messages(bin: &Path, seeder_datadir: &Path, member_datadir: &Path, count: usize) {
    let want = extract(bin, seeder_datadir).await;
    assert_eq!(want.len(), count, "status-go reads the seeder's archives");
    let got = extract(bin, member_datadir).await;
    assert_eq!(got, want, "status-go's extractor reads the same messages from our download");
}

/// Item 5: a status-go-made archive seeded by status-go's client, announced to a local tracker
/// only; chs fetches the index then every archive's range from the magnet alone (its `tr` is the
/// local tracker). Before: the range fetcher dialled only `x.pe` and given peers (`NoPeers`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_only_status_go_seeder_to_chs_member() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut tracker, url) = tracker(&bin).await;
        let (folder, torrent) = status_go_archive(&bin, tmp.path()).await;
        let (_seeder, magnet) = status_go_seeder(&bin, &folder, &torrent, &["-tracker", &url]).await;
        assert_eq!(magnet.trackers, vec![url.clone()], "the magnet carries only the local tracker");
        tracker.line("ANNOUNCE", &magnet.info_hash.to_hex()).await;
        // Only the magnet's own trackers (what `chs torrent fetch MAGNET` uses).
        let mut config = Config::local(tmp.path().join("member-state"));
        config.discovery = Discovery { magnet_trackers: true, ..Discovery::none() };
        let member = TorrentNode::start(config).await.expect("member starts");
        let out = tmp.path().join("member-data");
        chs_fetch_index_then_ranges(&bin, &member, &magnet, &out).await;
        assert_same_messages(&bin, folder.parent().expect("parent"), &out, STATUS_GO_MESSAGES).await;
        member.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Item 5: the same through a local DHT node only (no tracker anywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_only_status_go_seeder_to_chs_member() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut dht, addr) = dht_node(&bin).await;
        let (folder, torrent) = status_go_archive(&bin, tmp.path()).await;
        let (_seeder, magnet) = status_go_seeder(&bin, &folder, &torrent, &["-dht-bootstrap", &addr]).await;
        dht.line("ANNOUNCE", &magnet.info_hash.to_hex()).await;
        // The magnet carries status-go's public trackers: this member ignores them (DHT only).
        let member = chs_node(&tmp.path().join("member-state"), &[], &[&addr]).await;
        let out = tmp.path().join("member-data");
        chs_fetch_index_then_ranges(&bin, &member, &magnet, &out).await;
        assert_same_messages(&bin, folder.parent().expect("parent"), &out, STATUS_GO_MESSAGES).await;
        member.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// A chs node seeding the spec vector's archive folder (status-go's layout) with the given
/// discovery: the folder, its torrent, the node, and the magnet it publishes (no `x.pe`).
async fn chs_seeder(work: &Path, trackers: &[&str], dht: &[&str]) -> (PathBuf, TorrentMeta, TorrentNode, Magnet) {
    let folder = owner_folder(&work.join("owner-data"));
    let meta = meta_of(&folder);
    let owner = chs_node(&work.join("owner-state"), trackers, dht).await;
    let (_, _, magnet) = chs_torrent::folder::seed_dir(&owner, &folder, meta.piece_length()).await.expect("seeds");
    assert!(magnet.peers.is_empty(), "no peer hint when discovery is on: {magnet}");
    (folder, meta, owner, magnet)
}

/// status-go's client downloads `magnet` (flow as status-go: index, then archives) and exits.
async fn status_go_leech(bin: &Path, magnet: &Magnet, datadir: &Path, discovery: &[&str]) -> Vec<String> {
    let magnet = magnet.to_string();
    let mut args = vec![
        "leech",
        "-datadir",
        datadir.to_str().expect("utf-8"),
        "-magnet",
        &magnet,
        "-listen-host",
        "127.0.0.1",
        "-timeout",
        "60s",
    ];
    args.extend_from_slice(discovery);
    let out = Peer::spawn(bin, "chspeer-torrent", &args).finish().await;
    assert!(out.iter().any(|l| l == "DONE"), "status-go's leecher finished: {out:?}");
    assert!(!out.iter().any(|l| l.starts_with("ADDPEERS")), "no peer was given to the leecher");
    out
}

/// Item 5: a chs seeder announced to a local tracker only; status-go's client downloads from the
/// magnet alone (its own `tr`), and status-go's extractor reads every message back. Before: the
/// seeded torrent had an empty announce list and the node no trackers, so nothing was announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_only_chs_seeder_to_status_go_member() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut tracker, url) = tracker(&bin).await;
        let (folder, meta, owner, magnet) = chs_seeder(tmp.path(), &[&url], &[]).await;
        assert_eq!(magnet.trackers, vec![url.clone()]);
        let announce = tracker.line("ANNOUNCE", &meta.info_hash().to_hex()).await;
        assert_eq!(field(&announce, "left"), "0", "announced as a seeder: {announce}");
        let leech_dir = tmp.path().join("sg-member");
        status_go_leech(&bin, &magnet, &leech_dir, &["-trackers"]).await;
        assert_same_messages(&bin, folder.parent().expect("parent"), &leech_dir, VECTOR_MESSAGES).await;
        let status = owner.status(CID).expect("seeding");
        assert!(status.uploaded_bytes >= meta.total_length(), "{status:?}");
        owner.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Item 5: the same through a local DHT node only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_only_chs_seeder_to_status_go_member() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut dht, addr) = dht_node(&bin).await;
        let (folder, meta, owner, magnet) = chs_seeder(tmp.path(), &[], &[&addr]).await;
        let port = owner.listen_addr().expect("listens").port();
        let announce = dht.line("ANNOUNCE", &meta.info_hash().to_hex()).await;
        assert_eq!(field(&announce, "peer"), format!("127.0.0.1:{port}"), "announced our listen port");
        let leech_dir = tmp.path().join("sg-member");
        status_go_leech(&bin, &magnet, &leech_dir, &["-dht-bootstrap", &addr]).await;
        assert_same_messages(&bin, folder.parent().expect("parent"), &leech_dir, VECTOR_MESSAGES).await;
        owner.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Item 5: mixed swarm. status-go's client and a chs node seed the same status-go-made archive
/// (same info hash), both announced to the local tracker only; a chs member finds both and its
/// range fetcher gets verified pieces from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_swarm_chs_member_fetches_from_status_go_and_chs_seeders() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut tracker, url) = tracker(&bin).await;
        let (folder, torrent) = status_go_archive(&bin, tmp.path()).await;
        let (_sg, magnet) = status_go_seeder(&bin, &folder, &torrent, &["-tracker", &url]).await;
        let meta = meta_of(&folder);
        assert_eq!(meta.info_hash(), magnet.info_hash, "our info dict of status-go's folder is status-go's");
        // The chs seeder seeds a copy of the folder.
        let copy = tmp.path().join("chs-owner-data").join(CID);
        std::fs::create_dir_all(&copy).expect("mkdir");
        for f in ["data", "index"] {
            std::fs::copy(folder.join(f), copy.join(f)).expect("copy");
        }
        let chs = chs_node(&tmp.path().join("chs-owner-state"), &[&url], &[]).await;
        chs.seed(CID, &copy, &meta).await.expect("chs seeds");
        let chs_port = chs.listen_addr().expect("listens").port();
        let hash = magnet.info_hash.to_hex();
        let sg_announce = tracker.line("ANNOUNCE", &hash).await;
        tracker.line("ANNOUNCE", &format!("peer=127.0.0.1:{chs_port} ")).await;
        assert_ne!(field(&sg_announce, "peer"), format!("127.0.0.1:{chs_port}"));
        let member = chs_node(&tmp.path().join("member-state"), &[&url], &[]).await;
        let out = tmp.path().join("member-data");
        let stats = chs_fetch_index_then_ranges(&bin, &member, &magnet, &out).await;
        assert_eq!(stats.peers_used, 2, "pieces came from both seeders: {stats:?}");
        assert_same_messages(&bin, folder.parent().expect("parent"), &out, STATUS_GO_MESSAGES).await;
        member.shutdown().await;
        chs.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Item 1 (uTP): a chs seeder with uTP on serves status-go's client restricted to uTP
/// (`-no-tcp`), found through the local tracker only. Before: TCP only, so it never connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utp_chs_seeder_to_status_go_member_over_utp_only() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut tracker, url) = tracker(&bin).await;
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let mut config = Config::local(tmp.path().join("owner-state"));
        config.discovery = Discovery { utp: true, ..Discovery::only(vec![url.clone()], Vec::new()) };
        let owner = TorrentNode::start(config).await.expect("node starts");
        let (_, _, magnet) = chs_torrent::folder::seed_dir(&owner, &folder, meta.piece_length()).await.expect("seeds");
        let utp = owner.listening_sockets().into_iter().find(|s| s.purpose == chs_torrent::SocketPurpose::Utp);
        assert_eq!(utp.map(|s| s.addr), owner.listen_addr(), "uTP on the listen port");
        tracker.line("ANNOUNCE", &meta.info_hash().to_hex()).await;
        let leech_dir = tmp.path().join("sg-member");
        status_go_leech(&bin, &magnet, &leech_dir, &["-trackers", "-no-tcp"]).await;
        assert_same_messages(&bin, folder.parent().expect("parent"), &leech_dir, VECTOR_MESSAGES).await;
        owner.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Waits (up to the test's timeout) until `cond` holds on the node's swarm status of `CID`.
async fn until_swarm(
    node: &TorrentNode,
    what: &str,
    cond: impl Fn(&chs_torrent::SwarmStatus) -> bool,
) -> chs_torrent::SwarmStatus {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(s) = node.swarm(CID).filter(|s| cond(s)) {
            return s;
        }
        tracing::debug!(what, swarm = ?node.swarm(CID), "waiting");
    }
}

/// Item 6: after fetching from a status-go seeder found through a local tracker only, the
/// member's swarm status lists the seeder with source `tracker`, and
/// the tracker's announce result is ok with the peers it returned. Before: no sources, no
/// announce results (librqbit kept neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_status_tracker_source_and_announce_ok() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut tracker, url) = tracker(&bin).await;
        let (folder, torrent) = status_go_archive(&bin, tmp.path()).await;
        let (mut seeder, magnet) = status_go_seeder(&bin, &folder, &torrent, &["-tracker", &url]).await;
        let seeder_addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", field(&seeder.line("LISTEN", "").await, "port")).parse().expect("addr");
        tracker.line("ANNOUNCE", &magnet.info_hash.to_hex()).await;
        let mut config = Config::local(tmp.path().join("member-state"));
        config.discovery = Discovery { magnet_trackers: true, ..Discovery::none() };
        let member = TorrentNode::start(config).await.expect("member starts");
        let out = tmp.path().join("member-data");
        let dl = member.download(CID, &magnet, &out, DownloadOptions::default()).await.expect("metadata");
        dl.fetch_index().await.expect("index");
        let during = dl.swarm();
        let peer = during.peers.iter().find(|p| p.addr == seeder_addr).unwrap_or_else(|| panic!("{during:?}"));
        assert_eq!(peer.origins, vec![chs_torrent::PeerOrigin::Tracker], "{during:?}");
        assert_eq!(during.count(chs_torrent::PeerOrigin::Dht), 0, "DHT off: {during:?}");
        assert_eq!(during.dht, None, "DHT off");
        dl.finish().await.expect("finish");
        // Seeding now: the records of the download are kept, and the tracker is announced to.
        let s = until_swarm(&member, "tracker ok", |s| s.trackers.iter().any(|t| t.url == url && t.ok >= 1)).await;
        let t = s.trackers.iter().find(|t| t.url == url).expect("tracker listed");
        assert!(t.last_ok && t.last_success.is_some() && t.last_announce.is_some(), "{t:?}");
        assert!(t.last_peers >= 1, "the tracker returned the seeder: {t:?}");
        assert_eq!((t.errors, t.last_error.as_deref()), (0, None), "{t:?}");
        assert!(s.peers.iter().any(|p| p.addr == seeder_addr && p.origins.contains(&chs_torrent::PeerOrigin::Tracker)));
        member.unseed(CID).await.expect("unseed");
        assert_eq!(member.swarm(CID), None, "forgotten with the torrent");
        member.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Item 6: the same through a local DHT node only: the seeder has source `dht`, and the member's
/// own DHT announces are answered. Before: no sources, no DHT announce counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_status_dht_source_and_announces() {
    let Some(bin) = peers_bin() else { return };
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut dht, addr) = dht_node(&bin).await;
        let (folder, torrent) = status_go_archive(&bin, tmp.path()).await;
        let (mut seeder, magnet) = status_go_seeder(&bin, &folder, &torrent, &["-dht-bootstrap", &addr]).await;
        let seeder_addr: std::net::SocketAddr =
            format!("127.0.0.1:{}", field(&seeder.line("LISTEN", "").await, "port")).parse().expect("addr");
        dht.line("ANNOUNCE", &magnet.info_hash.to_hex()).await;
        let member = chs_node(&tmp.path().join("member-state"), &[], &[&addr]).await;
        let out = tmp.path().join("member-data");
        let dl = member.download(CID, &magnet, &out, DownloadOptions::default()).await.expect("metadata");
        dl.fetch_index().await.expect("index");
        let during = dl.swarm();
        let peer = during.peers.iter().find(|p| p.addr == seeder_addr).unwrap_or_else(|| panic!("{during:?}"));
        assert_eq!(peer.origins, vec![chs_torrent::PeerOrigin::Dht], "{during:?}");
        assert!(during.trackers.is_empty(), "no tracker: {during:?}");
        dl.finish().await.expect("finish");
        let s = until_swarm(&member, "dht announce acknowledged", |s| s.dht.is_some_and(|d| d.acknowledged >= 1)).await;
        let d = s.dht.expect("dht on");
        assert!(d.sent >= d.acknowledged + d.failed, "{d:?}");
        assert!(s.peers.iter().any(|p| p.addr == seeder_addr && p.origins.contains(&chs_torrent::PeerOrigin::Dht)));
        member.shutdown().await;
    })
    .await
    .expect("test timed out");
}
