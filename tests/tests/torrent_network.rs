//! Issue 17, end to end: a `chs node` member meets status-go's BitTorrent client (anacrolix v1.41
//! configured as status-go's, `../shared/peers/bin/chspeer-torrent`) through a local tracker only,
//! with no peer hint anywhere. Run when `CHS_PEERS_BIN` is set (`cargo xtask interop`);
//! otherwise the test prints a `skipped:` line and returns.

mod support;

mod interop {
    use std::path::{Path, PathBuf};
    use std::process::Stdio;

    use chs_community::Communities;
    use chs_demo::{history_fingerprint, join_member, wait_for};
    use chs_node::{ManualClock, NodeConfig, Signal};
    use tokio::io::{AsyncBufReadExt, BufReader, Lines};
    use tokio::process::{Child, ChildStdout, Command};

    use super::support::{
        HOUR_MS, STEP, first_addr, forged_magnetlink, now_ms, owner_with_history, start_config, waku_peer,
    };

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

    /// `chspeer-torrent ARGS`, its stdout lines.
    fn chspeer(bin: &Path, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut child = Command::new(bin.join("chspeer-torrent"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chspeer-torrent");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        (child, lines)
    }

    /// The next line starting with `prefix` and containing `needle` (bounded by [`STEP`]).
    async fn line(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str, needle: &str) -> String {
        tokio::time::timeout(STEP, async {
            loop {
                let l = lines.next_line().await.expect("read").expect("chspeer-torrent exited");
                assert!(!l.starts_with("FATAL"), "{l}");
                if l.starts_with(prefix) && l.contains(needle) {
                    return l;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {prefix} line"))
    }

    fn field(line: &str, key: &str) -> String {
        let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {line}"));
        line[at + key.len() + 1..].split(' ').next().unwrap_or_default().to_owned()
    }

    /// A chs owner builds its community's archives and stops; status-go's client seeds that folder,
    /// announced to a local tracker only, and the owner's magnetlink for status-go's magnet (its
    /// `tr` the local tracker, no `x.pe`) reaches a `chs node` member over Waku. The member, whose
    /// `[torrent] trackers` is that tracker, finds the seeder there, downloads the index and the
    /// archives and imports the owner's history. Before: the member's range fetcher dialled only
    /// `x.pe` and configured peers (`NoPeers`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn chs_node_member_downloads_status_go_seeded_archive_found_by_tracker_only() {
        let Some(bin) = peers_bin() else { return };
        member_downloads_status_go_seeded_archive(&bin, Discovery::Tracker).await;
    }

    /// The same through a local DHT node only: the seeder announces there, the member's
    /// `[torrent] dht_bootstrap` is that node and its `trackers` empty (so the public trackers in
    /// status-go's magnet are not contacted).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn chs_node_member_downloads_status_go_seeded_archive_found_by_dht_only() {
        let Some(bin) = peers_bin() else { return };
        member_downloads_status_go_seeded_archive(&bin, Discovery::Dht).await;
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Discovery {
        Tracker,
        Dht,
    }

    async fn member_downloads_status_go_seeded_archive(bin: &Path, discovery: Discovery) {
        let bin = bin.to_owned();
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(now_ms());
        let owner_dir = dir.path().join("owner");
        let id = owner_with_history(&owner_dir, "status-go seeded", now_ms() - HOUR_MS, 40, 3, 7);

        // The owner builds and seeds once, then leaves: only status-go's client will serve.
        let (owner, mut owner_signals) = start_config(NodeConfig::local(&owner_dir), &clock).await;
        wait_for(&mut owner_signals, STEP, "the owner's seeding", |s| {
            matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(())
        })
        .await
        .expect("owner seeds");
        let owner_rows = owner.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("rows");
        owner.shutdown().await;
        let key = {
            let mut store = chs_store::Store::open(&owner_dir.join("chs.db")).expect("owner db");
            let communities = Communities::open(&mut store).expect("communities");
            communities.get(&store, &id).expect("community").private_key().expect("control node").clone()
        };

        let (_rendezvous, mut rendezvous_out, rendezvous) = if discovery == Discovery::Tracker {
            let (c, mut out) = chspeer(&bin, &["tracker", "-listen", "127.0.0.1:0", "-interval", "2s"]);
            let url = field(&line(&mut out, "TRACKER", "").await, "udp");
            (c, out, url)
        } else {
            let (c, mut out) = chspeer(&bin, &["dht-node", "-listen", "127.0.0.1:0"]);
            let addr = field(&line(&mut out, "DHTNODE", "").await, "addr");
            (c, out, addr)
        };
        let flag = if discovery == Discovery::Tracker { "-tracker" } else { "-dht-bootstrap" };
        let archives = NodeConfig::local(&owner_dir).archive_root();
        let name = id.to_string();
        let seed = ["seed", "-datadir", archives.to_str().expect("utf-8"), "-name", &name, "-listen-host", "127.0.0.1"];
        let (_seeder, mut seeder_out) = chspeer(&bin, &[&seed[..], &[flag, &rendezvous]].concat());
        let seeder_addr = format!("127.0.0.1:{}", field(&line(&mut seeder_out, "LISTEN", "").await, "port"));
        let magnet = line(&mut seeder_out, "MAGNET ", "").await.trim_start_matches("MAGNET ").to_owned();
        line(&mut seeder_out, "SEEDING", "").await;
        assert!(!magnet.contains("x.pe"), "status-go's magnet has no peer hint: {magnet}");
        let hash = magnet.split("btih:").nth(1).and_then(|h| h.get(..40)).expect("info hash").to_lowercase();
        line(&mut rendezvous_out, "ANNOUNCE", &hash).await;

        let member_dir = dir.path().join("member");
        join_member(&member_dir, &id).expect("join");
        let mut config = NodeConfig::local(&member_dir);
        if discovery == Discovery::Tracker {
            config.torrent.trackers = vec![rendezvous.clone()];
        } else {
            config.torrent.dht = true;
            config.torrent.dht_bootstrap = vec![rendezvous.clone()];
        }
        let (member, mut signals) = start_config(config, &clock).await;
        let publisher = waku_peer(first_addr(&member).await).await;
        publisher
            .publish(chs_waku::DEFAULT_PUBSUB_TOPIC, forged_magnetlink(&id, &key, &magnet, now_ms()))
            .await
            .expect("publishes the owner's magnetlink");
        let downloaded = wait_for(&mut signals, STEP, "the download", |s| match s {
            Signal::DownloadingHistoryArchivesFinished { archives, .. } => Some(*archives),
            _ => None,
        })
        .await
        .expect("downloaded from status-go's seeder");
        assert!(downloaded >= 1, "{downloaded} archives");
        let member_rows = member.handle().with_store(move |_, s| history_fingerprint(s, &id)).await.expect("rows");
        assert!(!member_rows.is_empty(), "the member imported history");
        assert!(member_rows.iter().all(|r| owner_rows.contains(r)), "every imported message is the owner's");
        // Issue 17 item 6: the member's status shows the seeder with the source that found it,
        // and the tracker's announce result (ok, with the seeder among the peers it returned).
        let status = member.handle().status().await.expect("status");
        let swarm = &status.iter().find(|c| c.id == id).and_then(|c| c.seeding.clone()).expect("seeding").swarm;
        let source = if discovery == Discovery::Tracker { "tracker" } else { "dht" };
        let seeder = swarm.peers.iter().find(|p| p.addr == seeder_addr).unwrap_or_else(|| panic!("{swarm:?}"));
        assert_eq!(seeder.sources, vec![source.to_owned()], "{swarm:?}");
        assert!(swarm.peers_by_source.get(source).is_some_and(|n| *n >= 1), "{swarm:?}");
        if discovery == Discovery::Tracker {
            let t = swarm.trackers.iter().find(|t| t.url == rendezvous).unwrap_or_else(|| panic!("{swarm:?}"));
            assert!(t.ok >= 1 && t.last_success.is_some() && t.last_peers >= 1, "{t:?}");
            assert!(swarm.dht.is_none(), "DHT off: {swarm:?}");
        } else {
            assert!(swarm.trackers.is_empty() && swarm.dht.is_some(), "{swarm:?}");
        }
        publisher.shutdown().await;
        member.shutdown().await;
    }
}
