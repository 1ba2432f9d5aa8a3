//! Security issue items owned by the torrent layer: the listener survives a port scan (item 2),
//! a node opens only the sockets its configuration asks for (item 9), a corrupt librqbit session
//! file is set aside (item 6).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chs_torrent::{
    Config, DownloadOptions, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES_PER_IP, Magnet, SocketProtocol, SocketPurpose,
    TorrentNode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::util::{ARCHIVE_SIZE, CID, TEST_TIMEOUT, init_tracing, meta_of, node, owner_folder, seeding_owner};

/// The scanners' source addresses: other loopback addresses than the member's (127.0.0.1), like
/// scans from other hosts. One holds idle connections, the other sends garbage.
const IDLE_SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const GARBAGE_SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// How long the fresh fetch may take after the scan (a failure condition, not a sleep).
const FETCH_DEADLINE: Duration = Duration::from_secs(5);
/// A refused connection is closed by the seeder within this time ("at once").
const REFUSE_DEADLINE: Duration = Duration::from_secs(2);

async fn connect_from(src: Ipv4Addr, to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind((src, 0).into()).ok()?;
    timeout(Duration::from_secs(2), socket.connect(to)).await.ok()?.ok()
}

/// Waits until the seeder closes `s` (EOF or reset); false if it is still open at `deadline`.
async fn closed_by_seeder(mut s: TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// How many of `streams` the seeder closes before `deadline`.
async fn count_closed(streams: Vec<TcpStream>, deadline: tokio::time::Instant) -> usize {
    let tasks: Vec<_> = streams.into_iter().map(|s| tokio::spawn(closed_by_seeder(s, deadline))).collect();
    let mut closed = 0;
    for t in tasks {
        closed += usize::from(t.await.expect("task"));
    }
    closed
}

/// Issue item 2: 500 idle and 50 garbage connections to the seeder's port (an ordinary port
/// scan); a fresh member then fetches metadata, the index and one archive within
/// [`FETCH_DEADLINE`]. Garbage is refused at once, idle connections beyond the per-IP bound are
/// refused at once, and the rest are closed after the handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item2_listener_survives_idle_and_garbage_connections() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_folder, meta, owner) = seeding_owner(tmp.path()).await;
        let port = owner.local_peer_addr().expect("owner listens");

        let idle = spawn_all((0..500).map(|_| connect_from(IDLE_SCANNER, port)).collect()).await;
        let idle: Vec<TcpStream> = idle.into_iter().flatten().collect();
        let garbage = (0..50)
            .map(|i| async move {
                let mut s = connect_from(GARBAGE_SCANNER, port).await?;
                // Not a BitTorrent handshake: an HTTP probe, or 200 bytes of noise.
                let probe = if i % 2 == 0 { b"GET / HTTP/1.0\r\n\r\n".to_vec() } else { vec![0xAB; 200] };
                s.write_all(&probe).await.ok()?;
                Some(s)
            })
            .collect();
        let garbage: Vec<TcpStream> = spawn_all(garbage).await.into_iter().flatten().collect();
        eprintln!("scanners hold {} idle and {} garbage connections", idle.len(), garbage.len());

        let member = node(&tmp.path().join("member-state")).await;
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(port);
        let started = Instant::now();
        let fetch = async {
            let dl = member
                .download(CID, &magnet, &tmp.path().join("member-data"), DownloadOptions::default())
                .await
                .expect("metadata");
            dl.fetch_index().await.expect("index");
            let range = ARCHIVE_SIZE..2 * ARCHIVE_SIZE;
            dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("range");
        };
        timeout(FETCH_DEADLINE, fetch).await.unwrap_or_else(|_| {
            panic!("fetch after the scan took longer than {FETCH_DEADLINE:?}; listener: {:?}", owner.listener_stats())
        });
        eprintln!("fetch after the scan: {:?}; listener: {:?}", started.elapsed(), owner.listener_stats());

        let n_garbage = garbage.len();
        let closed = count_closed(garbage, tokio::time::Instant::now() + REFUSE_DEADLINE).await;
        assert_eq!(closed, n_garbage, "garbage connections still open after {REFUSE_DEADLINE:?}");
        let n_idle = idle.len();
        let closed = count_closed(idle, tokio::time::Instant::now() + HANDSHAKE_TIMEOUT + REFUSE_DEADLINE).await;
        assert_eq!(closed, n_idle, "idle connections still open after the handshake timeout");

        let stats = owner.listener_stats();
        eprintln!("listener after the scan: {stats:?}");
        assert!(stats.handed_over >= 1, "{stats:?}");
        assert!(stats.handshake_failed >= 1, "no garbage reached the handshake check: {stats:?}");
        assert!(stats.refused >= (n_idle - MAX_PENDING_HANDSHAKES_PER_IP) as u64, "{stats:?}");
        // Every scanner connection was refused or failed its check (the member's own connections
        // count too, hence `>=`).
        assert!(stats.refused + stats.handshake_failed >= (n_idle + n_garbage) as u64, "{stats:?}");
    })
    .await
    .expect("test timed out");
}

/// Issue 22 (50 members behind one address): a member whose first metadata connection is
/// refused by the seeder's per-IP bound of pending handshakes asks again within a few seconds
/// once the bound frees, instead of waiting out its metadata time-out. The bound is filled by
/// idle connections from the member's own address (127.0.0.1); they are closed as soon as the
/// seeder has refused the member once. librqbit asked each address once: here (no DHT, no
/// tracker) the resolution failed at once, with the DHT or trackers on it waited for other
/// addresses until the time-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_metadata_connection_is_tried_again() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_folder, meta, owner) = seeding_owner(tmp.path()).await;
        let port = owner.local_peer_addr().expect("owner listens");
        let member_ip = Ipv4Addr::LOCALHOST;

        let idle = spawn_all((0..MAX_PENDING_HANDSHAKES_PER_IP).map(|_| connect_from(member_ip, port)).collect()).await;
        let idle: Vec<TcpStream> = idle.into_iter().flatten().collect();
        assert_eq!(idle.len(), MAX_PENDING_HANDSHAKES_PER_IP, "could not open the idle connections");
        // Every slot is taken once the seeder has accepted them all.
        let deadline = Instant::now() + REFUSE_DEADLINE;
        while owner.listener_stats().accepted < MAX_PENDING_HANDSHAKES_PER_IP as u64 {
            assert!(
                Instant::now() < deadline,
                "seeder did not accept the idle connections: {:?}",
                owner.listener_stats()
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused_before = owner.listener_stats().refused;

        let member = node(&tmp.path().join("member-state")).await;
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(port);
        // One attempt with a long time-out: only a retry inside the magnet resolution can finish
        // well before it.
        let metadata_timeout = Duration::from_secs(30);
        let opts = DownloadOptions { metadata_timeout, max_attempts: 1, ..DownloadOptions::default() };
        let started = Instant::now();
        let data = tmp.path().join("member-data");
        let fetch = tokio::spawn(async move { member.download(CID, &magnet, &data, opts).await.map(|_| ()) });

        let deadline = Instant::now() + REFUSE_DEADLINE;
        while owner.listener_stats().refused == refused_before {
            assert!(Instant::now() < deadline, "the member was not refused: {:?}", owner.listener_stats());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused_at = started.elapsed();
        drop(idle);

        let result = fetch.await.expect("fetch task");
        let took = started.elapsed();
        eprintln!("refused at {refused_at:?}, metadata after {took:?}; listener: {:?}", owner.listener_stats());
        result.expect("metadata after the bound freed");
        assert!(
            took < Duration::from_secs(10),
            "metadata took {took:?}: the refused connection was not tried again (time-out {metadata_timeout:?})"
        );
    })
    .await
    .expect("test timed out");
}

async fn spawn_all<F: std::future::Future + Send + 'static>(futs: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// Inodes of the UDP sockets this process holds: `/proc/self/net/udp{,6}` inodes that are also
/// open file descriptors of this process (nextest runs each test in its own process).
fn own_udp_sockets() -> HashSet<u64> {
    let mut fds: HashSet<u64> = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
        if let Ok(target) = std::fs::read_link(entry.path())
            && let Some(inode) =
                target.to_str().and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        {
            fds.insert(inode);
        }
    }
    let mut udp = HashSet::new();
    for table in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ...
            if let Some(inode) = line.split_whitespace().nth(9).and_then(|i| i.parse::<u64>().ok())
                && fds.contains(&inode)
            {
                udp.insert(inode);
            }
        }
    }
    udp
}

/// Issue item 9: with DHT, LSD and trackers off, starting a node binds no UDP socket, and the node
/// lists exactly its TCP listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_node_without_dht_and_trackers_binds_no_udp_socket() {
    init_tracing();
    let tmp = tempfile::tempdir().expect("tempdir");
    let before = own_udp_sockets();
    let config = Config::local(tmp.path());
    assert_eq!(config.discovery, chs_torrent::Discovery::none());
    let node = TorrentNode::start(config).await.expect("node starts");
    let after = own_udp_sockets();
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "the node bound UDP sockets (inodes {new:?}) though DHT, LSD and trackers are off");
    let sockets = node.listening_sockets();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0].protocol, SocketProtocol::Tcp);
    assert_eq!(sockets[0].purpose, SocketPurpose::PeerListener);
    assert_eq!(Some(sockets[0].addr), node.listen_addr());
    node.shutdown().await;
}

/// Issue item 9, the other side: with trackers on, the tracker client's UDP socket is bound and
/// listed (no tracker is configured, so nothing is sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item9_node_with_trackers_lists_its_udp_socket() {
    init_tracing();
    let tmp = tempfile::tempdir().expect("tempdir");
    let before = own_udp_sockets();
    let mut config = Config::local(tmp.path());
    config.discovery.magnet_trackers = true;
    let node = TorrentNode::start(config).await.expect("node starts");
    let new = own_udp_sockets().difference(&before).count();
    let sockets = node.listening_sockets();
    let udp: Vec<_> = sockets.iter().filter(|s| s.protocol == SocketProtocol::Udp).collect();
    assert_eq!(udp.len(), new, "listed {sockets:?}, bound {new} UDP sockets");
    assert_eq!(udp.len(), 1);
    assert_eq!(udp[0].purpose, SocketPurpose::Trackers);
    node.shutdown().await;
}

/// Issue item 6: a corrupt `session/session.json` is set aside with a warning, the node starts
/// with a fresh session and the seeded torrent is restored from its folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item6_corrupt_session_file_is_set_aside() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("state");
        let folder = owner_folder(&tmp.path().join("data"));
        let meta = meta_of(&folder);
        let first = node(&state).await;
        first.seed(CID, &folder, &meta).await.expect("seeds");
        first.shutdown().await;
        drop(first);
        let session_dir = state.join("session");
        let file = session_dir.join("session.json");
        assert!(file.exists(), "librqbit wrote no {}", file.display());
        std::fs::write(&file, b"{\"torrents\": {\"0\": trunc").expect("corrupt the session file");

        let second = match TorrentNode::start(Config::local(&state)).await {
            Ok(n) => n,
            Err(e) => panic!("the node did not start with a corrupt session file: {e}"),
        };
        let aside: Vec<_> = std::fs::read_dir(&session_dir)
            .expect("session dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("session.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "corrupt file not set aside: {aside:?}");
        let kept = std::fs::read(session_dir.join(&aside[0])).expect("read set-aside file");
        assert_eq!(kept, b"{\"torrents\": {\"0\": trunc");
        // The seed was restored from its folder: nothing is lost.
        let status = second.status(CID).expect("seed restored");
        assert_eq!((status.info_hash, status.have_bytes), (meta.info_hash(), meta.total_length()));
        second.seed(CID, &folder, &meta).await.expect("seeds again after the fresh start");
        second.shutdown().await;
    })
    .await
    .expect("test timed out");
}
