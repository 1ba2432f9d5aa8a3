//! The backends over real components: stand-in Logos Storage nodes on 127.0.0.1 (HTTP), archive
//! folders built by `chs-archive` in temp dirs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chs_archive::{BuildOptions, Builder, MemorySource, Reader, WakuMessage};
use chs_community::CommunityId;
use chs_logos::{ClientConfig, LogosClient, LogosError};
use chs_logos_standin::{StandinConfig, StandinNode};

use super::*;

const TOPIC: [u8; 4] = [0xa4, 0xab, 0xdf, 0x64];
const WEEK: u64 = 7 * 24 * 3600;
const START: u64 = 1_704_067_200; // 2024-01-01

fn community() -> CommunityId {
    "0x03cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2".parse().expect("id")
}

fn message(ts: u64, n: u8) -> WakuMessage {
    WakuMessage {
        sig: vec![4; 65],
        timestamp: ts,
        topic: TOPIC.to_vec(),
        payload: vec![n; 10],
        padding: vec![],
        hash: vec![n; 32],
        third_party_id: String::new(),
    }
}

/// Builds the windows of `weeks` weeks of one message each into `dir` (appending).
fn build(dir: &Path, weeks: u64) {
    build_wrapped(dir, weeks, None);
}

/// [`build`], wrapping with `wrapper` if given (an encrypted community).
fn build_wrapped(dir: &Path, weeks: u64, wrapper: Option<&mut dyn chs_archive::Wrapper>) {
    let messages: Vec<_> = (0..weeks).map(|w| message(START + w * WEEK + 60, u8::try_from(w).expect("w"))).collect();
    let options =
        BuildOptions { from: Some(START), interval: WEEK, ..BuildOptions::new(vec![TOPIC], START + weeks * WEEK) };
    Builder::new(dir, options).maybe_wrapper(wrapper).run(&MemorySource::new(messages)).expect("build");
}

fn client(api: &str, timeout: Duration) -> LogosClient {
    LogosClient::new(ClientConfig {
        api: api.to_owned(),
        index_timeout: timeout,
        fetch_timeout: timeout,
        request_timeout: timeout,
        poll_interval: Duration::from_millis(20),
        ..ClientConfig::default()
    })
    .expect("client")
}

fn backend(node: &StandinNode, state: &Path) -> LogosBackend {
    LogosBackend::new(client(&node.api(), Duration::from_secs(5)), LogosBackendConfig { state_dir: state.to_owned() })
}

/// Two stand-in nodes (the member's knows the owner's) and a backend on each, state under `tmp`.
async fn owner_and_member(tmp: &Path) -> (StandinNode, StandinNode, LogosBackend, LogosBackend) {
    let (owner_node, member_node) = (
        StandinNode::start(StandinConfig::default()).await.expect("owner"),
        StandinNode::start(StandinConfig::default()).await.expect("member"),
    );
    member_node.add_peer(&owner_node.api());
    let owner = backend(&owner_node, &tmp.join("owner-state"));
    let member = backend(&member_node, &tmp.join("member-state"));
    (owner_node, member_node, owner, member)
}

#[tokio::test]
async fn backend_logos_owner_to_member_and_index_replacement() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("archives");
    build(&dir, 2);
    let (owner_node, member_node, owner, member) = owner_and_member(tmp.path()).await;
    let id = community();

    let first = owner.publish(&id, &dir, PublishOptions::default()).await.expect("publish");
    assert!(first.changed);
    assert_eq!(chs_status::classify_link(&first.link), Ok(chs_status::LinkKind::Cid));
    assert_eq!(owner.status(&id).link.as_deref(), Some(first.link.as_str()));
    assert_eq!(owner_node.cids().len(), 3, "two archives and the index");
    // Nothing new: the same link, nothing uploaded.
    assert_eq!(
        owner.publish(&id, &dir, PublishOptions::default()).await.expect("again"),
        Published { link: first.link.clone(), changed: false, replaced: false }
    );

    let mut fetch = member.open(&id, &first.link, FetchOptions::default()).await.expect("open");
    let index = fetch.index().await.expect("index");
    assert_eq!(index.len(), 2);
    let ids: Vec<String> = index.keys().cloned().collect();
    let fetched = fetch.archives(&ids).await.expect("archives");
    let reader = Reader::open(&dir).expect("reader");
    for archive in &fetched {
        let remote = &index[&archive.id];
        let local = reader.entries().iter().find(|e| e.from() == remote.metadata.from).expect("same window");
        assert_eq!(archive.bytes, reader.read_raw(&local.id).expect("raw"), "the archive's bytes, no padding");
        assert_ne!(archive.id, local.id, "Logos ids hash the Logos entry, not the torrent one");
    }
    fetch.finish().await.expect("finish");
    assert!(member_node.holds(&first.link), "the member's node keeps the index");

    // A third window: a new index with all three, the old index CID removed, archive CIDs kept.
    build(&dir, 3);
    let second = owner.publish(&id, &dir, PublishOptions::default()).await.expect("publish");
    assert!(second.changed && second.link != first.link);
    assert!(!owner_node.holds(&first.link), "status-go removes the previous index CID");
    let mut fetch = member.open(&id, &second.link, FetchOptions::default()).await.expect("open");
    let index = fetch.index().await.expect("index");
    assert_eq!(index.len(), 3);
    let have: std::collections::BTreeSet<String> = ids.into_iter().collect();
    let missing: Vec<String> = index.keys().filter(|k| !have.contains(*k)).cloned().collect();
    assert_eq!(missing.len(), 1, "nothing new is a set comparison: only the third window is missing");
    let got = fetch.archives(&missing).await.expect("archives");
    assert_eq!(got.len(), 1);
    assert_eq!(index[&got[0].id].metadata.from, START + 2 * WEEK);
}

/// Issue 19 gap 3: status-go wraps an encrypted community's Logos Storage index with its
/// hash-ratchet key. A member without the key is told so (`Sealed`, naming the wrapping), keeps
/// what it can (the index CID: the archives' CIDs are inside it) and its node holds and serves it
/// once the fetch finishes, as the BitTorrent backend keeps a sealed torrent.
#[tokio::test]
async fn backend_logos_member_keeps_a_sealed_index() {
    use chs_proto::Message as _;
    use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};
    let tmp = tempfile::tempdir().expect("tmp");
    let (owner_node, member_node) = (
        StandinNode::start(StandinConfig::default()).await.expect("owner"),
        StandinNode::start(StandinConfig::default()).await.expect("member"),
    );
    member_node.add_peer(&owner_node.api());
    let mut wrapped = ProtocolMessage { installation_id: "owner-install".to_owned(), ..ProtocolMessage::default() };
    wrapped.encrypted_message.insert(
        "none".to_owned(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader { seq_no: 7, group_id: vec![2; 33], key_id: vec![3; 32], ..HrHeader::default() }),
            payload: vec![0xee; 300],
            ..EncryptedMessageProtocol::default()
        },
    );
    let bytes = wrapped.encode_to_vec();
    let link = client(&owner_node.api(), Duration::from_secs(5)).upload(bytes.clone(), true).await.expect("upload");
    let member = backend(&member_node, &tmp.path().join("member-state"));

    let mut fetch = member.open(&community(), &link, FetchOptions::default()).await.expect("open");
    let description = match fetch.index().await {
        Err(BackendError::Sealed { description }) => description,
        Err(other) => panic!("not sealed: {other}"),
        Ok(index) => panic!("opened: {} archives", index.len()),
    };
    assert!(description.contains("seq 7") && description.contains("owner-install"), "{description}");
    let len = u64::try_from(bytes.len()).expect("len");
    assert_eq!(fetch.keep_sealed().await.expect("kept"), (len, len));
    fetch.finish().await.expect("finish");
    assert!(member_node.holds(&link), "the member's node keeps and serves the sealed index");
}

/// Issue 19 item 3: a member holding the community's hash-ratchet key opens a wrapped Logos
/// Storage index (status-go's encrypted community: the index and each archive are
/// `BuildHashRatchetMessage` output) and reads each archive unwrapped; with another key only,
/// the index stays sealed and the description says why.
#[tokio::test]
async fn backend_logos_member_with_the_key_opens_a_wrapped_index_and_archives() {
    use chs_archive::logos::{LogosStorageWakuMessageArchiveIndex, encode_logos_index, logos_entry};
    use chs_archive::{WakuMessageArchive, WakuMessageArchiveMetadata};
    use chs_proto::Message as _;
    use chs_status::hash_ratchet::{Chain, RatchetKey, wrap};
    use chs_waku_payload::NonceSource;
    let tmp = tempfile::tempdir().expect("tmp");
    let (owner_node, member_node) = (
        StandinNode::start(StandinConfig::default()).await.expect("owner"),
        StandinNode::start(StandinConfig::default()).await.expect("member"),
    );
    member_node.add_peer(&owner_node.api());
    let owner = client(&owner_node.api(), Duration::from_secs(5));
    let key = RatchetKey::new(community().as_bytes().to_vec(), 1_733_356_800_123, vec![7; 32], None).expect("key");
    let mut chain = Chain::default();
    let metadata =
        WakuMessageArchiveMetadata { version: 1, from: START, to: START + WEEK, content_topic: vec![TOPIC.to_vec()] };
    let archive =
        WakuMessageArchive { version: 1, metadata: Some(metadata.clone()), messages: vec![message(START + 60, 1)] };
    let plain_archive = archive.encode_to_vec();
    let wrapped_archive = wrap(&key, &mut chain, "owner", &plain_archive, &NonceSource::Random).expect("wrap");
    let cid = owner.upload(wrapped_archive, true).await.expect("upload archive");
    let (archive_id, entry) = logos_entry(metadata, &cid);
    let mut index = LogosStorageWakuMessageArchiveIndex::default();
    index.archives.insert(archive_id.clone(), entry);
    let wrapped_index =
        wrap(&key, &mut chain, "owner", &encode_logos_index(&index), &NonceSource::Random).expect("wrap");
    let link = owner.upload(wrapped_index, true).await.expect("upload index");
    let member = backend(&member_node, &tmp.path().join("member-state"));

    let other = RatchetKey::new(community().as_bytes().to_vec(), 1_733_356_800_133, vec![8; 32], None).expect("key");
    let options = |keys: Vec<RatchetKey>| FetchOptions { ratchet_keys: keys, ..FetchOptions::default() };
    let mut fetch = member.open(&community(), &link, options(vec![other])).await.expect("open");
    match fetch.index().await {
        Err(BackendError::Sealed { description }) => {
            assert!(description.contains("none of the 1 hash-ratchet keys held opens it"), "{description}");
        }
        other => panic!("not sealed: {other:?}"),
    }
    fetch.discard().await.expect("discard");

    let mut fetch = member.open(&community(), &link, options(vec![key])).await.expect("open");
    let opened = fetch.index().await.expect("the wrapped index opens");
    assert_eq!(opened.keys().collect::<Vec<_>>(), [&archive_id]);
    let got = fetch.archives(std::slice::from_ref(&archive_id)).await.expect("archives");
    assert_eq!(got[0].bytes, plain_archive, "the archive is read unwrapped");
    fetch.finish().await.expect("finish");
}

/// A test [`chs_archive::Wrapper`]: status-go's hash ratchet with one in-memory chain.
struct TestRatchet {
    key: chs_status::hash_ratchet::RatchetKey,
    chain: Arc<std::sync::Mutex<chs_status::hash_ratchet::Chain>>,
}

impl TestRatchet {
    fn wrap_bytes(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut chain = self.chain.lock().expect("chain");
        let nonce = chs_waku_payload::NonceSource::Random;
        chs_status::hash_ratchet::wrap(&self.key, &mut chain, "owner", plaintext, &nonce).expect("wrap")
    }
}

impl chs_archive::Wrapper for TestRatchet {
    fn wrap(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, chs_archive::WrapError> {
        Ok(self.wrap_bytes(plaintext))
    }

    fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, chs_archive::WrapError> {
        chs_community::ratchet::open(std::slice::from_ref(&self.key), wrapped)
    }
}

/// Issue 19 item 3, Logos Storage owner: a control node holding the key of an encrypted
/// community has a wrapped folder; it publishes the archives as wrapped (what status-go uploads)
/// and wraps its Logos Storage index too, and merges the next publication into the wrapped
/// previous index. A member with the key reads every archive plain; one without it finds the
/// index sealed.
#[tokio::test]
async fn backend_logos_owner_with_the_key_publishes_a_wrapped_folder_and_index() {
    use chs_status::hash_ratchet::{Chain, RatchetKey};
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("archives");
    let key = RatchetKey::new(community().as_bytes().to_vec(), 1_733_356_800_123, vec![7; 32], None).expect("key");
    let chain = Arc::new(std::sync::Mutex::new(Chain::default()));
    let wrapped_build = |weeks: u64| {
        let mut wrapper = TestRatchet { key: key.clone(), chain: Arc::clone(&chain) };
        build_wrapped(&dir, weeks, Some(&mut wrapper));
    };
    wrapped_build(2);
    let (owner_node, _member_node, owner, member) = owner_and_member(tmp.path()).await;
    let id = community();
    let wrap = Arc::new(TestRatchet { key: key.clone(), chain: Arc::clone(&chain) });
    let options = || PublishOptions {
        step: None,
        ratchet: Some(PublishRatchet {
            keys: vec![key.clone()],
            wrap: {
                let wrap = Arc::clone(&wrap);
                Arc::new(move |bytes: &[u8]| Ok(wrap.wrap_bytes(bytes)))
            },
        }),
    };
    // Without the keys the wrapped folder cannot even be read: the old behaviour.
    assert!(owner.publish(&id, &dir, PublishOptions::default()).await.is_err(), "a wrapped folder needs the keys");

    let first = owner.publish(&id, &dir, options()).await.expect("publish");
    let index_bytes = owner_node_bytes(&owner_node, &first.link).await;
    assert!(chs_archive::hash_ratchet_wrapping(&index_bytes).is_some(), "the Logos Storage index is wrapped");

    let keyed = |keys: Vec<RatchetKey>| FetchOptions { ratchet_keys: keys, ..FetchOptions::default() };
    let mut sealed = member.open(&id, &first.link, FetchOptions::default()).await.expect("open");
    assert!(matches!(sealed.index().await, Err(BackendError::Sealed { .. })), "no key: sealed");
    sealed.discard().await.expect("discard");

    // The next window: merged into the wrapped previous index.
    wrapped_build(3);
    let second = owner.publish(&id, &dir, options()).await.expect("publish again");
    assert!(second.changed && second.link != first.link);
    let mut fetch = member.open(&id, &second.link, keyed(vec![key.clone()])).await.expect("open");
    let index = fetch.index().await.expect("the wrapped index opens with the key");
    assert_eq!(index.len(), 3, "the previous wrapped index was opened and merged");
    let ids: Vec<String> = index.keys().cloned().collect();
    let got = fetch.archives(&ids).await.expect("archives");
    let reader =
        Reader::open_with(&dir, &mut chs_community::ratchet::RatchetOpener(vec![key.clone()])).expect("reader");
    let mut plain: Vec<Vec<u8>> = reader
        .entries()
        .iter()
        .map(|e| {
            chs_community::ratchet::open(std::slice::from_ref(&key), &reader.read_raw(&e.id).expect("raw"))
                .expect("opens")
        })
        .collect();
    let mut fetched: Vec<Vec<u8>> = got.into_iter().map(|a| a.bytes).collect();
    plain.sort();
    fetched.sort();
    assert_eq!(fetched, plain, "each archive is read unwrapped: the folder's archives");
    fetch.finish().await.expect("finish");
}

/// The bytes a stand-in node holds for `cid`.
async fn owner_node_bytes(node: &StandinNode, cid: &str) -> Vec<u8> {
    client(&node.api(), Duration::from_secs(5)).get_local(cid).await.expect("held").to_vec()
}

#[tokio::test]
async fn backend_logos_missing_archive_stalled_node_and_owner_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("archives");
    build(&dir, 2);
    let owner_store = tmp.path().join("owner-node");
    let owner_config = || StandinConfig { data_dir: Some(owner_store.clone()), ..StandinConfig::default() };
    let owner_node = StandinNode::start(owner_config()).await.expect("owner");
    let member_node = StandinNode::start(StandinConfig::default()).await.expect("member");
    member_node.add_peer(&owner_node.api());
    let state = tmp.path().join("owner-state");
    let id = community();
    let link = backend(&owner_node, &state).publish(&id, &dir, PublishOptions::default()).await.expect("publish").link;

    // Restart of the owner (node and backend): the index is read back from the node, nothing new.
    owner_node.stop().await;
    let owner_node = StandinNode::start(owner_config()).await.expect("owner again");
    member_node.add_peer(&owner_node.api());
    let owner = backend(&owner_node, &state);
    assert_eq!(
        owner.publish(&id, &dir, PublishOptions::default()).await.expect("republish"),
        Published { link: link.clone(), changed: false, replaced: false }
    );

    // A missing archive: deleted from the only node that had it.
    let member = LogosBackend::new(
        client(&member_node.api(), Duration::from_millis(400)),
        LogosBackendConfig { state_dir: tmp.path().join("member-state") },
    );
    let mut fetch = member.open(&id, &link, FetchOptions::default()).await.expect("open");
    let index = fetch.index().await.expect("index");
    let (gone_id, gone) = index.iter().next().map(|(k, v)| (k.clone(), v.location.clone())).expect("entry");
    let Location::Cid(gone_cid) = gone else { panic!("a Logos index locates archives by CID") };
    owner.client().delete(&gone_cid).await.expect("delete");
    let error = fetch.archives(std::slice::from_ref(&gone_id)).await.expect_err("missing");
    assert!(matches!(error, BackendError::Logos(LogosError::NotFound { .. })), "{error:?}");

    // A stalled owner node: the index fetch times out (after status-go's one retry).
    // A fresh member node, so that the index is not local already.
    let fresh = StandinNode::start(StandinConfig::default()).await.expect("fresh");
    fresh.add_peer(&owner_node.api());
    let other = LogosBackend::new(
        client(&fresh.api(), Duration::from_millis(300)),
        LogosBackendConfig { state_dir: tmp.path().join("member2-state") },
    );
    owner_node.set_stalled(true);
    let mut fetch = other.open(&id, &link, FetchOptions::default()).await.expect("open");
    let error = fetch.index().await.expect_err("stalled");
    assert!(matches!(error, BackendError::Logos(ref e) if e.is_timeout()), "{error:?}");
    owner_node.set_stalled(false);
}

#[tokio::test]
async fn backend_links_go_to_the_backend_of_their_kind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let node = StandinNode::start(StandinConfig::default()).await.expect("node");
    let logos: Arc<dyn DistributionBackend> = Arc::new(backend(&node, tmp.path()));
    let backends = vec![logos];
    let cid = chs_logos_standin::cid_of(b"x");
    assert_eq!(backend_for(&backends, &cid).map(|b| b.kind()), Some(BackendKind::LogosStorage));
    assert!(backend_for(&backends, "magnet:?xt=urn:btih:aa").is_none(), "no torrent backend here");
    assert!(backend_for(&backends, "").is_none());
    let error =
        backends[0].open(&community(), "magnet:?xt=urn:btih:aa", FetchOptions::default()).await.expect_err("wrong");
    assert!(matches!(error, BackendError::WrongLink { kind: Some(chs_status::LinkKind::Magnet), .. }));
    assert_eq!(usable_links(&[BackendKind::Torrent]), chs_status::UsableLinks::TORRENT);
    assert_eq!(usable_links(&[BackendKind::Torrent, BackendKind::LogosStorage]), chs_status::UsableLinks::BOTH);
}

fn torrent_backend(node: chs_torrent::TorrentNode, root: &Path, peers: Vec<std::net::SocketAddr>) -> TorrentBackend {
    TorrentBackend::new(
        node,
        TorrentBackendConfig {
            piece_length: chs_torrent::DEFAULT_PIECE_LENGTH,
            torrent_dir: root.join("torrents"),
            archive_root: root.join("archives"),
            peers,
            metadata_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(20),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_torrent_owner_to_member_through_the_trait() {
    let tmp = tempfile::tempdir().expect("tmp");
    let id = community();
    let dir = tmp.path().join("owner/archives").join(id.to_string());
    build(&dir, 2);
    let owner_node = chs_torrent::TorrentNode::start(chs_torrent::Config::local(tmp.path().join("owner/state")))
        .await
        .expect("owner torrent node");
    let member_node = chs_torrent::TorrentNode::start(chs_torrent::Config::local(tmp.path().join("member/state")))
        .await
        .expect("member torrent node");
    let owner_addr = owner_node.listen_addr().expect("listening");
    let owner: Arc<dyn DistributionBackend> =
        Arc::new(torrent_backend(owner_node.clone(), &tmp.path().join("owner"), Vec::new()));
    let member: Arc<dyn DistributionBackend> =
        Arc::new(torrent_backend(member_node.clone(), &tmp.path().join("member"), vec![owner_addr]));

    let published = owner.publish(&id, &dir, PublishOptions::default()).await.expect("publish");
    assert!(published.changed);
    assert_eq!(chs_status::classify_link(&published.link), Ok(chs_status::LinkKind::Magnet));
    assert!(
        !owner.publish(&id, &dir, PublishOptions::default()).await.expect("again").changed,
        "same folder, same torrent"
    );

    let backends = vec![Arc::clone(&member)];
    let chosen = backend_for(&backends, &published.link).expect("the torrent backend takes a magnet");
    let mut fetch = chosen.open(&id, &published.link, FetchOptions::default()).await.expect("open");
    let index = fetch.index().await.expect("index");
    let reader = Reader::open(&dir).expect("reader");
    assert_eq!(index.len(), reader.entries().len());
    let wanted: Vec<String> = index.keys().take(1).cloned().collect();
    let fetched = fetch.archives(&wanted).await.expect("archives");
    assert_eq!(fetched[0].bytes, reader.read_raw(&wanted[0]).expect("raw"), "torrent ids are the folder's ids");
    assert!(matches!(fetch.archives(&["0xnot-there".to_owned()]).await, Err(BackendError::NotInIndex(_))));
    fetch.finish().await.expect("finish");
    assert!(member.status(&id).link.is_some(), "the member seeds what it fetched");
    member.retain(&id, &published.link).await.expect("retained");
    member.remove(&id).await.expect("unseed");
    assert_eq!(member.status(&id), BackendStatus::default());
    owner_node.shutdown().await;
    member_node.shutdown().await;
}
