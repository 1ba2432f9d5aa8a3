//! Issue 20: the owner and member roles know distribution backends only through
//! `chs_node::backend::DistributionBackend`. A backend the node does not make (a folder on disk
//! that "publishes" by copying the archive folder under its content hash, in a temp dir) fills
//! the BitTorrent slot of a node whose torrent session is off; the owner publishes through it and
//! the member downloads and imports through it over real Waku, and a broken link is discarded by
//! the member's one discard-on-error step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chs_community::CommunityId;
use chs_demo::{join_member, wait_for};
use chs_node::backend::{
    BackendError, BackendKind, BackendStatus, DistributionBackend, Fetch, FetchOptions, Location, PublishOptions,
    Published, RemoteArchive, RemoteIndex,
};
use chs_node::{ManualClock, Node, NodeConfig, Signal, SignalBus};
use sha1::{Digest, Sha1};
use tokio::sync::broadcast;

mod support;
use support::{HOUR_MS, STEP, first_addr, now_ms, owner_with_history, waku_peer};

/// What a [`FolderBackend`] did, for the test to read.
#[derive(Debug, Default)]
struct Log {
    published: Vec<String>,
    finished: Vec<String>,
    discarded: Vec<String>,
}

/// A distribution backend of the BitTorrent kind (its links are magnet-shaped: the info hash is
/// the SHA-1 of `index` + `data`) over a shared folder `net/<hash>/`.
#[derive(Debug)]
struct FolderBackend {
    net: PathBuf,
    log: Arc<Mutex<Log>>,
    last: Mutex<BTreeMap<String, String>>,
}

impl FolderBackend {
    fn new(net: &Path) -> (Arc<Self>, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        (Arc::new(FolderBackend { net: net.to_owned(), log: Arc::clone(&log), last: Mutex::default() }), log)
    }
}

fn hash_of(link: &str) -> Option<&str> {
    let start = link.find("btih:")? + 5;
    link.get(start..start + 40)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackendError + '_ {
    move |source| BackendError::State { path: path.to_owned(), source }
}

#[async_trait::async_trait]
impl DistributionBackend for FolderBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Torrent
    }

    async fn publish(&self, community: &CommunityId, dir: &Path, _: PublishOptions) -> Result<Published, BackendError> {
        let index = std::fs::read(dir.join("index")).map_err(io(dir))?;
        let data = std::fs::read(dir.join("data")).map_err(io(dir))?;
        let hash: String = Sha1::new()
            .chain_update(&index)
            .chain_update(&data)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let to = self.net.join(&hash);
        std::fs::create_dir_all(&to).map_err(io(&to))?;
        std::fs::write(to.join("index"), index).map_err(io(&to))?;
        std::fs::write(to.join("data"), data).map_err(io(&to))?;
        let link = format!("magnet:?xt=urn:btih:{hash}&dn={community}");
        let previous = self.last.lock().expect("lock").insert(community.to_string(), hash.clone());
        let changed = previous.as_deref() != Some(hash.as_str());
        self.log.lock().expect("lock").published.push(link.clone());
        Ok(Published { link, changed, replaced: previous.is_some() && changed })
    }

    async fn open(&self, _: &CommunityId, link: &str, _: FetchOptions) -> Result<Box<dyn Fetch>, BackendError> {
        let hash = hash_of(link).ok_or(BackendError::WrongLink { backend: "folder", kind: None })?;
        let dir = self.net.join(hash);
        if !dir.is_dir() {
            return Err(BackendError::Refused(format!("nothing published as {hash}")));
        }
        Ok(Box::new(FolderFetch { dir, link: link.to_owned(), index: RemoteIndex::new(), log: Arc::clone(&self.log) }))
    }

    async fn retain(&self, _: &CommunityId, _: &str) -> Result<(), BackendError> {
        Ok(())
    }

    async fn remove(&self, community: &CommunityId) -> Result<(), BackendError> {
        self.last.lock().expect("lock").remove(&community.to_string());
        Ok(())
    }

    fn status(&self, community: &CommunityId) -> BackendStatus {
        let link = self.last.lock().expect("lock").get(&community.to_string()).cloned();
        BackendStatus { link, held: 0, peers: 0 }
    }
}

#[derive(Debug)]
struct FolderFetch {
    dir: PathBuf,
    link: String,
    index: RemoteIndex,
    log: Arc<Mutex<Log>>,
}

#[async_trait::async_trait]
impl Fetch for FolderFetch {
    async fn index(&mut self) -> Result<RemoteIndex, BackendError> {
        let bytes = std::fs::read(self.dir.join("index")).map_err(io(&self.dir))?;
        let index = chs_archive::format::decode_index(&bytes)?;
        self.index = index
            .archives
            .into_iter()
            .map(|(id, m)| {
                let location = Location::Range { offset: m.offset, size: m.size, padding: m.padding };
                (id, RemoteArchive { metadata: m.metadata.unwrap_or_default(), location })
            })
            .collect();
        Ok(self.index.clone())
    }

    async fn fetch(&mut self, _: &[String]) -> Result<Option<u64>, BackendError> {
        Ok(None)
    }

    async fn read(&mut self, id: &str) -> Result<Vec<u8>, BackendError> {
        let Some(&Location::Range { offset, size, padding }) = self.index.get(id).map(|a| &a.location) else {
            return Err(BackendError::NotInIndex(vec![id.to_owned()]));
        };
        let data = std::fs::read(self.dir.join("data")).map_err(io(&self.dir))?;
        let range = usize::try_from(offset).expect("offset")..usize::try_from(offset + size - padding).expect("end");
        Ok(data[range].to_vec())
    }

    async fn finish(self: Box<Self>) -> Result<(), BackendError> {
        self.log.lock().expect("lock").finished.push(self.link.clone());
        Ok(())
    }

    async fn discard(self: Box<Self>) -> Result<(), BackendError> {
        self.log.lock().expect("lock").discarded.push(self.link.clone());
        Ok(())
    }
}

/// A loopback node on `dir` without a torrent session, `backend` in its BitTorrent slot.
async fn start(
    dir: &Path,
    clock: &ManualClock,
    bootstrap: Vec<String>,
    backend: Arc<FolderBackend>,
) -> (Node, broadcast::Receiver<Signal>) {
    let mut config = NodeConfig::local(dir);
    config.torrent.enabled = false;
    config.waku.bootstrap = bootstrap;
    config.member.max_attempts = 1;
    assert_eq!(config.archive.backends, vec![BackendKind::Torrent]);
    let bus = SignalBus::default();
    let signals = bus.subscribe();
    let node = Node::start_with_backends(config, Arc::new(clock.clone()), bus, vec![backend]).await.expect("node");
    (node, signals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backend_trait_owner_and_member_use_any_backend_in_the_torrent_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = dir.path().join("net");
    let clock = ManualClock::new(now_ms());
    let owner_dir = dir.path().join("owner");
    let id = owner_with_history(&owner_dir, "folder backend", now_ms() - HOUR_MS, 40, 3, 7);
    let member_dir = dir.path().join("member");
    join_member(&member_dir, &id).expect("join");
    let (member_backend, member_log) = FolderBackend::new(&net);
    let (member, mut signals) = start(&member_dir, &clock, Vec::new(), member_backend).await;
    let member_addr = first_addr(&member).await;
    let (owner_backend, owner_log) = FolderBackend::new(&net);
    let (owner, _) = start(&owner_dir, &clock, vec![member_addr.clone()], owner_backend).await;

    let (link, archives) = wait_for(&mut signals, STEP, "the download through the folder backend", |s| match s {
        Signal::DownloadingHistoryArchivesFinished { magnet_uri, archives, .. } => {
            Some((magnet_uri.clone(), *archives))
        }
        Signal::HistoryArchiveDownloadFailed { error, .. } => panic!("download failed: {error}"),
        _ => None,
    })
    .await
    .expect("downloaded");
    assert_eq!(archives, 2);
    assert_eq!(owner_log.lock().expect("lock").published.last(), Some(&link), "the owner published through it");
    assert_eq!(member_log.lock().expect("lock").finished, vec![link.clone()], "the member fetched through it");
    let status = member.handle().status().await.expect("status");
    assert_eq!(status[0].imported_archives, 2);
    owner.shutdown().await;

    // A signed link whose index is garbage: the member's one discard-on-error step discards it
    // through the backend, whatever the backend.
    let broken = net.join("0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(&broken).expect("broken");
    std::fs::write(broken.join("index"), b"\xff\xff not an index").expect("index");
    std::fs::write(broken.join("data"), b"").expect("data");
    let uri = format!("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn={id}");
    let message = {
        let mut store = chs_store::Store::open(&owner_dir.join("chs.db")).expect("store");
        let communities = chs_community::Communities::open(&mut store).expect("communities");
        communities.build_magnetlink_now(&mut store, &id, &uri, now_ms()).expect("magnetlink")
    };
    let peer = waku_peer(member_addr).await;
    peer.publish(chs_waku::DEFAULT_PUBSUB_TOPIC, message).await.expect("publish");
    let error = wait_for(&mut signals, STEP, "the failed download", |s| match s {
        Signal::HistoryArchiveDownloadFailed { magnet_uri, error, .. } if *magnet_uri == uri => Some(error.clone()),
        _ => None,
    })
    .await
    .expect("failed");
    assert!(error.contains("archive decode"), "{error}");
    assert_eq!(member_log.lock().expect("lock").discarded, vec![uri], "discarded once, through the backend");
    peer.shutdown().await;
    member.shutdown().await;
}
