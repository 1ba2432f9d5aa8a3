//! Owner and members on loopback: seeding, index then ranges, §1.9, restarts, replacement, errors.

use std::time::Duration;

use chs_torrent::{Config, DownloadOptions, Error, Magnet, Phase, TorrentNode};
use tokio::time::timeout;

use crate::util::{
    ARCHIVE_SIZE, CID, TEST_TIMEOUT, init_tracing, meta_of, node, owner_folder, recorder, seeding_owner, vector_dir,
};

fn magnet_for(node: &TorrentNode, meta: &chs_torrent::TorrentMeta) -> Magnet {
    Magnet::for_meta(meta, &[]).with_peer(node.local_peer_addr().expect("owner listens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_fetches_index_then_one_of_three_archives() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner = node(&tmp.path().join("owner-state")).await;
        let status = owner.seed(CID, &folder, &meta).await.expect("owner seeds");
        assert_eq!(status.have_bytes, meta.total_length());

        let member = node(&tmp.path().join("member-state")).await;
        let (progress, events) = recorder();
        let opts = DownloadOptions { progress: Some(progress), ..DownloadOptions::default() };
        // The peer comes only from the magnet's x.pe hint.
        let dl = member
            .download(CID, &magnet_for(&owner, &meta), &tmp.path().join("member-data"), opts)
            .await
            .expect("metadata");
        assert_eq!(dl.meta(), &meta);
        let index = dl.fetch_index().await.expect("index");
        assert_eq!(index, std::fs::read(vector_dir().join("index")).expect("vector index"));

        // Archive 2 of 3: bytes [102400, 204800) of `data`.
        let range = ARCHIVE_SIZE..2 * ARCHIVE_SIZE;
        let stats = dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("range");
        assert_eq!(stats.pieces_fetched, 1);
        assert!(
            stats.bytes_received as f64 <= 1.05 * ARCHIVE_SIZE as f64,
            "received {} bytes for one {ARCHIVE_SIZE}-byte archive",
            stats.bytes_received
        );
        let got = dl.read_range("data", range.clone()).await.expect("read");
        let want = std::fs::read(folder.join("data")).expect("owner data");
        assert_eq!(got, want[range.start as usize..range.end as usize]);
        // The other archives were not fetched (the sparse file holds zeros there).
        for other in [0..ARCHIVE_SIZE, 2 * ARCHIVE_SIZE..3 * ARCHIVE_SIZE] {
            let bytes = dl.read_range("data", other).await.expect("read");
            assert!(bytes.iter().all(|b| *b == 0));
        }

        let ranges: Vec<_> =
            events.lock().expect("lock").iter().filter(|p| p.phase == Phase::Ranges).copied().collect();
        let last = ranges.last().expect("range progress events");
        assert_eq!((last.bytes_done, last.bytes_total), (ARCHIVE_SIZE, ARCHIVE_SIZE));
        assert!(last.peers >= 1);

        // The member seeds what it has; a second member gets archive 2 from it alone.
        let member_status = dl.finish().await.expect("member seeds");
        assert_eq!(member_status.info_hash, meta.info_hash());
        assert!(member_status.have_bytes >= ARCHIVE_SIZE);
        owner.shutdown().await;
        let member2 = node(&tmp.path().join("member2-state")).await;
        let dl2 = member2
            .download(CID, &magnet_for(&member, &meta), &tmp.path().join("member2-data"), DownloadOptions::default())
            .await
            .expect("metadata from member");
        let stats2 = dl2.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("range from member");
        assert_eq!(stats2.pieces_fetched, 1);
        assert_eq!(dl2.read_range("data", range.clone()).await.expect("read"), got);
    })
    .await
    .expect("test timed out");
}

/// deps-and-peers.md §1.9: once the selected files are finished and the seeder's connection is
/// gone (here: the seeder restarts), librqbit never dials that peer again, so selecting more files
/// would hang; `fetch_files` pauses and unpauses the torrent to rebuild the peer list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_data_after_index_despite_finished_peer_pitfall() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner_state = tmp.path().join("owner-state");
        // A fixed port so that the restarted seeder is reachable at the address the member knows.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let owner_config = Config { listen_addr: Some(([127, 0, 0, 1], port).into()), ..Config::local(&owner_state) };
        let owner = TorrentNode::start(owner_config.clone()).await.expect("owner");
        owner.seed(CID, &folder, &meta).await.expect("owner seeds");
        let member = node(&tmp.path().join("member-state")).await;
        let opts = DownloadOptions { stall_timeout: Duration::from_secs(10), ..DownloadOptions::default() };
        let dl = member
            .download(CID, &magnet_for(&owner, &meta), &tmp.path().join("member-data"), opts)
            .await
            .expect("metadata");
        dl.fetch_index().await.expect("index");

        owner.shutdown().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while dl.live_peers() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "member still sees the stopped seeder");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let owner = TorrentNode::start(owner_config).await.expect("owner restarts");
        let status = owner.seed(CID, &folder, &meta).await.expect("owner re-seeds after restart");
        assert_eq!(status.have_bytes, meta.total_length());

        dl.fetch_files(&["data"]).await.expect("data after index (needs the §1.9 workaround)");
        let got = std::fs::read(dl.receiving_folder().join("data")).expect("data");
        assert_eq!(got, std::fs::read(folder.join("data")).expect("owner data"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_reseed_and_resume_without_refetching() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner_state = tmp.path().join("owner-state");
        let owner = node(&owner_state).await;
        owner.seed(CID, &folder, &meta).await.expect("seeds");
        owner.shutdown().await;

        // Restart: the torrent comes back from persistence, re-verified, under the same key.
        let owner = node(&owner_state).await;
        assert_eq!(owner.seeded(CID), Some(meta.info_hash()));
        let status = owner.seed(CID, &folder, &meta).await.expect("re-seed is idempotent");
        assert_eq!(status.have_bytes, meta.total_length());

        let member_state = tmp.path().join("member-state");
        let member_data = tmp.path().join("member-data");
        let range = 2 * ARCHIVE_SIZE..3 * ARCHIVE_SIZE;
        {
            let member = node(&member_state).await;
            let dl = member
                .download(CID, &magnet_for(&owner, &meta), &member_data, DownloadOptions::default())
                .await
                .expect("metadata");
            let stats = dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("range");
            assert_eq!(stats.pieces_fetched, 1);
            member.shutdown().await;
        }
        let member = node(&member_state).await;
        let dl = member
            .download(CID, &magnet_for(&owner, &meta), &member_data, DownloadOptions::default())
            .await
            .expect("metadata again");
        let stats = dl.fetch_ranges("data", &[range.clone(), 0..ARCHIVE_SIZE]).await.expect("ranges");
        assert_eq!(stats.pieces_already_present, 1, "the verified archive is not fetched again");
        assert_eq!(stats.pieces_fetched, 1);
        assert_eq!(stats.bytes_received, ARCHIVE_SIZE);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_torrent_of_a_key_unseeds_the_old_one_and_keeps_files() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (folder, old_meta, owner) = seeding_owner(tmp.path()).await;

        // A new archive is appended and the index rewritten: a new torrent for the same key.
        let mut data = std::fs::read(folder.join("data")).expect("data");
        data.extend(std::iter::repeat_n(7u8, ARCHIVE_SIZE as usize));
        std::fs::write(folder.join("data"), &data).expect("append");
        std::fs::write(folder.join("index"), b"new index").expect("index");
        let new_meta = meta_of(&folder);
        assert_ne!(new_meta.info_hash(), old_meta.info_hash());
        let status = owner.seed(CID, &folder, &new_meta).await.expect("seeds new");
        assert_eq!(status.info_hash, new_meta.info_hash());
        assert_eq!(owner.seeded(CID), Some(new_meta.info_hash()));
        assert!(folder.join("data").exists() && folder.join("index").exists());

        // The old torrent is no longer served: fetching its metadata fails.
        let member = node(&tmp.path().join("member-state")).await;
        let opts =
            DownloadOptions { metadata_timeout: Duration::from_secs(2), max_attempts: 1, ..DownloadOptions::default() };
        let old = member.download(CID, &magnet_for(&owner, &old_meta), &tmp.path().join("m"), opts.clone()).await;
        assert!(old.is_err(), "old torrent must be unseeded");
        let new = member.download(CID, &magnet_for(&owner, &new_meta), &tmp.path().join("m"), opts).await;
        assert!(new.is_ok(), "new torrent is served: {new:?}");

        assert_eq!(owner.unseed(CID).await.expect("unseed"), Some(new_meta.info_hash()));
        assert_eq!(owner.seeded(CID), None);
        assert!(folder.join("data").exists());
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner = node(&tmp.path().join("owner-state")).await;

        // Local data that does not match the torrent.
        std::fs::write(folder.join("index"), vec![0u8; 308]).expect("corrupt");
        let err = owner.seed(CID, &folder, &meta).await.expect_err("mismatch");
        assert!(matches!(err, Error::DataMismatch { .. }), "{err:?}");
        assert_eq!(owner.seeded(CID), None);
        assert!(matches!(owner.seed("a\tb", &folder, &meta).await, Err(Error::InvalidKey(_))));

        let member = node(&tmp.path().join("member-state")).await;
        let no_peer = Magnet::for_meta(&meta, &[]);
        let err = member.download(CID, &no_peer, tmp.path(), DownloadOptions::default()).await.expect_err("no peers");
        assert!(matches!(err, Error::NoPeers), "{err:?}");

        // A peer that accepts TCP but never answers: metadata times out after the retries.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let opts = DownloadOptions {
            peers: vec![silent_addr],
            metadata_timeout: Duration::from_millis(500),
            max_attempts: 2,
            backoff: Duration::from_millis(10),
            ..DownloadOptions::default()
        };
        let err = member.download(CID, &no_peer, tmp.path(), opts.clone()).await.expect_err("timeout");
        assert!(matches!(err, Error::Timeout(..)), "{err:?}");

        // Cancellation wins over waiting.
        opts.cancel.cancel();
        let err = member.download(CID, &no_peer, tmp.path(), opts).await.expect_err("cancelled");
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        holder.abort();
    })
    .await
    .expect("test timed out");
}

/// The calls behind `chs torrent create|seed|fetch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_create_seed_fetch_round_trip() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let created =
            chs_torrent::folder::create(&folder, chs_torrent::DEFAULT_PIECE_LENGTH, Some(&tmp.path().join("torrents")))
                .await
                .expect("create");
        assert_eq!(created.meta.info_hash().to_hex(), "354fe196816674e0a5d4fbaf2d0a07d805ffa30f");
        assert!(created.magnet.to_string().contains("&tr=udp%3A%2F%2Ftracker.opentrackr.org%3A1337%2Fannounce"));
        assert!(created.torrent_path.as_ref().is_some_and(|p| p.exists()));

        let owner = node(&tmp.path().join("owner-state")).await;
        let (_, status, magnet) =
            chs_torrent::folder::seed_dir(&owner, &folder, chs_torrent::DEFAULT_PIECE_LENGTH).await.expect("seed");
        assert_eq!(status.have_bytes, status.total_bytes);
        assert_eq!(magnet.peers, vec![owner.local_peer_addr().expect("addr")]);

        let member = node(&tmp.path().join("member-state")).await;
        let link: Magnet = magnet.to_string().parse().expect("printed magnet parses");
        let out = tmp.path().join("out");
        let index_only = chs_torrent::folder::fetch(&member, &link, &out, DownloadOptions::default(), true)
            .await
            .expect("index only");
        assert_eq!(index_only.index_len, Some(308));
        assert_eq!(index_only.seeding.have_bytes, 308);
        let full =
            chs_torrent::folder::fetch(&member, &link, &out, DownloadOptions::default(), false).await.expect("all");
        assert_eq!(full.seeding.have_bytes, full.meta.total_length());
        for f in ["data", "index"] {
            assert_eq!(
                std::fs::read(full.folder.join(f)).expect("ours"),
                std::fs::read(folder.join(f)).expect("theirs")
            );
        }
    })
    .await
    .expect("test timed out");
}

/// status-go-archives.md §15 item 20: status-go's request-to-join path starts a new download
/// without unseeding the key's old torrent (both map to the same files). Ours receives the new
/// one in a staging folder, keeps seeding the old one from its untouched files meanwhile, and
/// replaces it when the new one is swapped in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec15_item20_new_download_for_a_key_drops_its_old_torrent() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (folder, old_meta, owner) = seeding_owner(tmp.path()).await;
        let member = node(&tmp.path().join("member-state")).await;
        let member_data = tmp.path().join("member-data");
        let dl = member
            .download(CID, &magnet_for(&owner, &old_meta), &member_data, DownloadOptions::default())
            .await
            .expect("old");
        dl.fetch_index().await.expect("index");
        dl.finish().await.expect("member seeds old");
        assert_eq!(member.seeded(CID), Some(old_meta.info_hash()));

        let old_index = std::fs::read(folder.join("index")).expect("index");
        std::fs::write(folder.join("index"), b"a newer index").expect("index");
        let new_meta = meta_of(&folder);
        owner.seed(CID, &folder, &new_meta).await.expect("owner seeds new");
        let dl = member
            .download(CID, &magnet_for(&owner, &new_meta), &member_data, DownloadOptions::default())
            .await
            .expect("new");
        assert_eq!(member.seeded(CID), Some(old_meta.info_hash()), "the old torrent seeds until the swap");
        assert_ne!(dl.receiving_folder(), dl.folder(), "received in a staging folder");
        assert_eq!(std::fs::read(dl.folder().join("index")).expect("old index"), old_index);
        assert_eq!(dl.fetch_index().await.expect("new index"), b"a newer index");
        assert_eq!(dl.finish().await.expect("member seeds new").info_hash, new_meta.info_hash());
        assert_eq!(member.seeded(CID), Some(new_meta.info_hash()));
        assert_eq!(std::fs::read(member_data.join(CID).join("index")).expect("new index"), b"a newer index");
        assert!(!member_data.join(chs_torrent::STAGING_DIR).join(format!("{CID}.{}", new_meta.info_hash())).exists());
    })
    .await
    .expect("test timed out");
}

/// status-go-archives.md §15 item 28: status-go members never re-seed after a restart. Ours do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec15_item28_member_reseeds_after_restart() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (folder, meta, owner) = seeding_owner(tmp.path()).await;
        let member_state = tmp.path().join("member-state");
        let member = node(&member_state).await;
        let dl = member
            .download(CID, &magnet_for(&owner, &meta), &tmp.path().join("member-data"), DownloadOptions::default())
            .await
            .expect("metadata");
        dl.fetch_ranges("data", std::slice::from_ref(&(0..ARCHIVE_SIZE))).await.expect("range");
        dl.finish().await.expect("seeds");
        member.shutdown().await;
        owner.shutdown().await;

        let member = node(&member_state).await;
        assert_eq!(member.seeded(CID), Some(meta.info_hash()));
        // A new member fetches archive 1 from the restarted member alone.
        let other = node(&tmp.path().join("other-state")).await;
        let dl = other
            .download(CID, &magnet_for(&member, &meta), &tmp.path().join("other-data"), DownloadOptions::default())
            .await
            .expect("metadata from restarted member");
        let stats = dl
            .fetch_ranges("data", std::slice::from_ref(&(0..ARCHIVE_SIZE)))
            .await
            .expect("range from restarted member");
        assert_eq!(stats.pieces_fetched, 1);
        let want = std::fs::read(folder.join("data")).expect("data");
        assert_eq!(dl.read_range("data", 0..ARCHIVE_SIZE).await.expect("read"), want[..ARCHIVE_SIZE as usize]);
    })
    .await
    .expect("test timed out");
}

/// Found by `bench_load` (one owner seeding 100 communities at start): librqbit's JSON
/// persistence gave concurrent adds the same torrent id, so most seeds got another torrent's
/// handle and failed with `Shutdown` (and had recorded the key as seeded). Every concurrent seed
/// must succeed, each key seeding its own torrent, and each torrent must be served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_seeds_of_many_keys_each_seed_their_own_torrent() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let owner = node(&tmp.path().join("owner-state")).await;
        let mut seeds = tokio::task::JoinSet::new();
        let mut metas = Vec::new();
        for i in 0..32 {
            // The folder name is the torrent name, so each key has its own info hash.
            let key = format!("key-{i}");
            let folder = tmp.path().join("owner-data").join(&key);
            std::fs::create_dir_all(&folder).expect("mkdir");
            for f in ["data", "index"] {
                std::fs::copy(vector_dir().join(f), folder.join(f)).expect("copy vector file");
            }
            let meta = meta_of(&folder);
            metas.push((key.clone(), meta.clone()));
            let owner = owner.clone();
            seeds.spawn(async move { (key.clone(), owner.seed(&key, &folder, &meta).await) });
        }
        while let Some(joined) = seeds.join_next().await {
            let (key, result) = joined.expect("seed task");
            let status = result.unwrap_or_else(|e| panic!("seeding {key}: {e}"));
            assert_eq!(status.have_bytes, status.total_bytes, "{key}");
        }
        for (key, meta) in &metas {
            let status = owner.status(key).unwrap_or_else(|| panic!("{key} has a status"));
            assert_eq!(status.info_hash, meta.info_hash(), "{key}");
        }
        // Each torrent is really served: a member fetches the metadata of a few of them.
        let member = node(&tmp.path().join("member-state")).await;
        for (key, meta) in metas.iter().step_by(8) {
            let opts = DownloadOptions { max_attempts: 1, ..DownloadOptions::default() };
            let download = member.download(key, &magnet_for(&owner, meta), &tmp.path().join("member-data"), opts).await;
            assert_eq!(download.expect("metadata is served").meta().info_hash(), meta.info_hash(), "{key}");
        }
    })
    .await
    .expect("test timed out");
}

/// Issue item 4, crash safety: a download of a newer torrent cut short (dropped without
/// `finish` or `discard`, as a crash does) and a restart leave the seeded folder and torrent as
/// they were; the next download of the same torrent resumes its staging folder and swaps it in,
/// and a staging folder of another torrent of the same name is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_download_cut_short_leaves_the_seeded_folder_and_resumes() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (folder, old_meta, owner) = seeding_owner(tmp.path()).await;
        let member_state = tmp.path().join("member-state");
        let member = node(&member_state).await;
        let member_data = tmp.path().join("member-data");
        let dl = member
            .download(CID, &magnet_for(&owner, &old_meta), &member_data, DownloadOptions::default())
            .await
            .expect("old");
        dl.fetch_index().await.expect("index");
        dl.fetch_ranges("data", std::slice::from_ref(&(0..3 * ARCHIVE_SIZE))).await.expect("data");
        dl.finish().await.expect("member seeds old");
        let live = member_data.join(CID);
        let before = (std::fs::read(live.join("data")).expect("data"), std::fs::read(live.join("index")).expect("i"));

        std::fs::write(folder.join("index"), b"a newer index").expect("index");
        let new_meta = meta_of(&folder);
        owner.seed(CID, &folder, &new_meta).await.expect("owner seeds new");
        let staging_root = member_data.join(chs_torrent::STAGING_DIR);
        let other = staging_root.join(format!("{CID}.{}", "ab".repeat(20)));
        std::fs::create_dir_all(&other).expect("a staging folder of another torrent");
        let dl = member
            .download(CID, &magnet_for(&owner, &new_meta), &member_data, DownloadOptions::default())
            .await
            .expect("new");
        assert!(!other.exists(), "another torrent's staging folder is deleted");
        assert_eq!(dl.fetch_index().await.expect("new index"), b"a newer index");
        let staging = dl.receiving_folder().to_owned();
        drop(dl); // the crash: no finish, no discard
        member.shutdown().await;

        let member = node(&member_state).await;
        assert_eq!(member.seeded(CID), Some(old_meta.info_hash()), "the old torrent seeds after the restart");
        let after = (std::fs::read(live.join("data")).expect("data"), std::fs::read(live.join("index")).expect("i"));
        assert!(after == before, "the seeded folder is byte-identical");
        assert!(staging.join("index").exists(), "the staging folder is left for a resume");

        let dl = member
            .download(CID, &magnet_for(&owner, &new_meta), &member_data, DownloadOptions::default())
            .await
            .expect("new again");
        assert_eq!(dl.receiving_folder(), staging, "the same staging folder is resumed");
        assert_eq!(dl.fetch_index().await.expect("new index"), b"a newer index");
        let status = dl.finish().await.expect("swap");
        assert_eq!(status.info_hash, new_meta.info_hash());
        assert_eq!(status.have_bytes, status.total_bytes, "data came from the copy of the old folder");
        assert_eq!(std::fs::read(live.join("index")).expect("index"), b"a newer index");
        assert_eq!(std::fs::read(live.join("data")).expect("data"), before.0);
        assert_eq!(std::fs::read_dir(&staging_root).expect("staging root").count(), 0, "staging cleaned");
        owner.shutdown().await;
        member.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Waits (up to the test's timeout) until `cond` holds on `node`'s swarm status of `CID`.
async fn until_swarm(node: &TorrentNode, cond: impl Fn(&chs_torrent::SwarmStatus) -> bool) -> chs_torrent::SwarmStatus {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(s) = node.swarm(CID).filter(|s| cond(s)) {
            return s;
        }
    }
}

/// Issue 17 item 6: trackers that cannot be reached show an error result each: a UDP tracker
/// that never answers (librqbit's 10 s connect timeout) and an HTTP tracker on a closed port
/// (connection refused). Before: no announce results at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_status_unreachable_trackers_show_errors() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp bind").local_addr().expect("addr");
        let udp = format!("udp://{}/announce", silent.local_addr().expect("addr"));
        let http = format!("http://{closed}/announce");
        let mut config = Config::local(tmp.path().join("owner-state"));
        config.discovery = chs_torrent::Discovery::only(vec![udp.clone(), http.clone()], Vec::new());
        let owner = TorrentNode::start(config).await.expect("node starts");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        owner.seed(CID, &folder, &meta_of(&folder)).await.expect("seeds");
        let s = until_swarm(&owner, |s| s.trackers.len() == 2 && s.trackers.iter().all(|t| t.errors >= 1)).await;
        for t in &s.trackers {
            assert!(t.url == udp || t.url == http, "{t:?}");
            assert!(!t.last_ok && t.ok == 0 && t.last_success.is_none(), "{t:?}");
            assert!(t.last_error.as_deref().is_some_and(|e| !e.is_empty()) && t.last_error_at.is_some(), "{t:?}");
        }
        assert_eq!(s.dht, None, "DHT off");
        owner.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 17 item 6: a peer from the magnet's `x.pe` shows with source `hint` at the member, and
/// the member with source `incoming` at the owner. Before: no sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_status_hint_and_incoming_sources() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let folder = owner_folder(&tmp.path().join("owner-data"));
        let meta = meta_of(&folder);
        let owner = node(&tmp.path().join("owner-state")).await;
        owner.seed(CID, &folder, &meta).await.expect("owner seeds");
        let member = node(&tmp.path().join("member-state")).await;
        let magnet = magnet_for(&owner, &meta);
        let dl = member
            .download(CID, &magnet, &tmp.path().join("member"), DownloadOptions::default())
            .await
            .expect("metadata");
        dl.fetch_index().await.expect("index");
        let s = dl.swarm();
        let owner_addr = owner.local_peer_addr().expect("listens");
        let p = s.peers.iter().find(|p| p.addr == owner_addr).unwrap_or_else(|| panic!("{s:?}"));
        assert_eq!(p.origins, vec![chs_torrent::PeerOrigin::Hint], "{s:?}");
        assert_eq!(s.count(chs_torrent::PeerOrigin::Hint), 1);
        let o = until_swarm(&owner, |s| s.count(chs_torrent::PeerOrigin::Incoming) >= 1).await;
        assert!(o.peers.iter().all(|p| p.origins == vec![chs_torrent::PeerOrigin::Incoming]), "{o:?}");
        member.shutdown().await;
        owner.shutdown().await;
    })
    .await
    .expect("test timed out");
}
