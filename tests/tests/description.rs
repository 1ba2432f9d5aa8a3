//! Issue 19 item 4: a chs control node follows its community as Status clients see it, against
//! status-go's own Waku nodes (`chspeer-waku` from `$CHS_PEERS_BIN`, one per shard) on loopback.
//!
//! status-go's nodes relay what the community's control node would send (the description on the
//! community shard, the public shard info on `/waku/2/rs/16/64`, chat messages, forgeries); the
//! bytes are built with `chs_status` exactly as status-go's `publishOrg`,
//! `sendPublicCommunityShardInfo` and `relay.SignMessage` build them. `chspeer-waku` cannot be given
//! a protected-topic key (no flag in its harness), so status-go's node relays the new shard
//! unvalidated; the `meta` chs publishes there is checked with go-waku's signed-topic validator
//! rule (`chs_status::protected::verify_protected`, reproduced from go-waku's vectors), and chs's
//! own validator is exercised by status-go's node publishing a bad and a good `meta`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)] // a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::Stdio;

use chs_community::{Communities, TopicKey};
use chs_demo::wait_for;
use chs_node::{ManualClock, Signal};
use chs_proto::waku::WakuMessage;
use chs_status::description::{DescriptionParams, build_description, build_shard_info};
use chs_status::history::{ChatMessageParams, build_chat_message};
use chs_status::{ChatKeyCache, ChatKeyRing, Shard, Topic};
use chs_store::Store;
use chs_waku_payload::{NonceSource, Padding, SecretKey};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

mod support;
use support::{HOUR_MS, STEP, forged_description, now_ms, owner_with_history, start_subscribed};

const NEW_SHARD: Shard = Shard { cluster: 16, index: 200 };

/// status-go's Waku node on one shard, driven over its line protocol.
struct GoWaku {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    addr: String,
}

impl GoWaku {
    async fn start(bin: &Path, shard: u16, dial: Option<&str>) -> GoWaku {
        let mut args = vec!["-loglevel".to_owned(), "error".to_owned(), "-shard".to_owned(), shard.to_string()];
        if let Some(addr) = dial {
            args.extend(["-dial".to_owned(), addr.to_owned()]);
        }
        let mut child = Command::new(bin.join("chspeer-waku"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("chspeer-waku runs");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut go = GoWaku { _child: child, stdin, lines, addr: String::new() };
        go.addr = go.expect("LISTEN ").await.trim_start_matches("LISTEN ").to_owned();
        go.expect("READY").await;
        go
    }

    async fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = self.lines.next_line().await.expect("stdout").expect("chspeer-waku exited");
            assert!(!line.starts_with("FATAL") && !line.starts_with("ERR"), "chspeer-waku: {line}");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    async fn send(&mut self, command: &str) {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn wait_peers(&mut self) {
        self.send("waitpeers 1 60").await;
        self.expect("PEERS ").await;
    }

    /// Publishes `message` through go-waku's relay as it is (timestamp and `meta` included).
    async fn publish(&mut self, message: &WakuMessage) {
        let meta = message.meta.as_deref().filter(|m| !m.is_empty()).map_or_else(|| "-".to_owned(), hex::encode);
        let command = format!(
            "publish-relay {} {} {} {meta} {}",
            message.content_topic,
            hex::encode(&message.payload),
            message.timestamp.unwrap_or(0),
            message.version.unwrap_or(0)
        );
        self.send(&command).await;
        self.expect("PUBLISHED ").await;
    }
}

/// One `RECV` line as a WakuMessage and its pubsub topic.
fn parse_recv(line: &str) -> (String, WakuMessage) {
    let field =
        |name: &str| line.split(' ').find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap_or_default().to_owned();
    let message = WakuMessage {
        payload: hex::decode(field("payload")).unwrap(),
        content_topic: field("contentTopic"),
        version: Some(field("version").parse().unwrap()),
        timestamp: Some(field("timestamp").parse().unwrap()),
        meta: Some(hex::decode(field("meta")).unwrap()),
        ephemeral: Some(field("ephemeral") == "true"),
        rate_limit_proof: None,
    };
    (field("pubsub"), message)
}

fn peers_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("CHS_PEERS_BIN").map(PathBuf::from);
    if dir.is_none() {
        println!(
            "skipped: description_shard_and_protected_topic_are_followed: set CHS_PEERS_BIN to ../shared/peers/bin"
        );
    }
    dir
}

fn now_ns() -> i64 {
    i64::try_from(now_ms()).unwrap() * 1_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn description_shard_and_protected_topic_are_followed() {
    let Some(bin) = peers_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let owner_dir = dir.path().join("owner");
    let id = owner_with_history(&owner_dir, "follow", now_ms() - HOUR_MS, 20, 2, 19);
    let topic_key = SecretKey::generate().unwrap();
    let (community_key, channel_a) = {
        let mut store = Store::open(&owner_dir.join("chs.db")).unwrap();
        let communities = Communities::open(&mut store).unwrap();
        communities.set_topic_key(&mut store, &id, Some(&TopicKey::Private(topic_key.clone()))).unwrap();
        let community = communities.get(&store, &id).unwrap();
        let uuid = community.chats[0].strip_prefix(&id.to_string()).unwrap().to_owned();
        (community.private_key().unwrap().clone(), uuid)
    };
    let cache = ChatKeyCache::new();
    let identity = SecretKey::generate().unwrap();
    let description = |key: &SecretKey, clock: u64, channels: &[(String, String)]| {
        let params = DescriptionParams {
            community_key: key,
            transport_key: &identity,
            clock,
            name: "followed",
            channels,
            encrypted: false,
            archive_link_clock: 0,
            timestamp_ns: now_ns(),
            owner_token: None,
        };
        build_description(&params, &cache).unwrap().waku_message
    };
    let channel_b = "b0b0b0b0-0000-4000-8000-000000000000".to_owned();
    let channel_c = "c0c0c0c0-0000-4000-8000-000000000000".to_owned();

    // status-go's nodes on the default community shard and on the unprotected shard 64.
    let mut go32 = GoWaku::start(&bin, 32, None).await;
    let mut go64 = GoWaku::start(&bin, 64, None).await;
    let clock = ManualClock::new(now_ms());
    let (owner, mut signals) =
        start_subscribed(&owner_dir, &clock, vec![go32.addr.clone(), go64.addr.clone()], None).await;
    let chs_addr = owner.handle().waku().listen_addrs().await.unwrap().remove(0);

    // 1. A description adding channel B, relayed by status-go on the community shard.
    go32.wait_peers().await;
    let two = [(channel_a.clone(), "general".to_owned()), (channel_b.clone(), "news".to_owned())];
    go32.publish(&description(&community_key, 2, &two)).await;
    let added = wait_for(&mut signals, STEP, "description applied", |s| match s {
        Signal::CommunityDescriptionRejected { reason, .. } => panic!("refused: {reason}"),
        Signal::CommunityDescriptionApplied { clock: 2, added, .. } => Some(added.clone()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(added, vec![format!("{id}{channel_b}")]);

    // 2. The shard info moving the community to shard 200, relayed by status-go on shard 64.
    go64.wait_peers().await;
    go64.publish(
        &build_shard_info(&community_key, &identity, 3, Some(NEW_SHARD), now_ns(), &cache).unwrap().waku_message,
    )
    .await;
    let moved_to = wait_for(&mut signals, STEP, "moved", |s| match s {
        Signal::CommunityShardMoved { to, .. } => Some(to.clone()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(moved_to, NEW_SHARD.pubsub_topic());
    // The restarted owner seeds its archives again (its tasks now run on the new shard).
    wait_for(&mut signals, STEP, "seeding on the new shard", |s| {
        matches!(s, Signal::HistoryArchivesSeeding { .. }).then_some(())
    })
    .await
    .unwrap();

    // 3. status-go's node on the new shard: the magnetlink reaches it with a valid `meta`.
    let mut go200 = GoWaku::start(&bin, NEW_SHARD.index, Some(&chs_addr)).await;
    go200.wait_peers().await;
    let magnetlink_topics = chs_status::ids::magnetlink_content_topics(&id);
    let (pubsub, link) = loop {
        let line = go200.expect("RECV ").await;
        let (pubsub, message) = parse_recv(&line);
        if magnetlink_topics.contains(&message.content_topic) {
            break (pubsub, message);
        }
    };
    assert_eq!(pubsub, NEW_SHARD.pubsub_topic());
    chs_status::protected::verify_protected(&link, &pubsub, &topic_key.public_key(), now_ns())
        .expect("meta validates as go-waku's signed-topic validator checks it");
    let ring = ChatKeyRing::for_magnetlinks(&id, &cache);
    let parsed = chs_status::parse_magnetlink(&link, &pubsub, &id, &ring).expect("a valid magnetlink");
    assert!(parsed.magnet_uri.starts_with("magnet:"));

    // 4. Capture on the new channel, on the protected shard: a bad `meta` is dropped, a good one kept.
    let chat = |text: &str| {
        let author = SecretKey::generate().unwrap();
        let params = ChatMessageParams {
            community: &id,
            channel_uuid: &channel_b,
            author: &author,
            clock: now_ms(),
            timestamp_ms: now_ms(),
            text,
            display_name: "member",
            installation_id: "i",
            bundle: None,
            timestamp_ns: now_ns(),
            padding: Padding::Random,
            nonce: NonceSource::Random,
        };
        build_chat_message(&params, &cache).unwrap().waku_message
    };
    let mut forged_meta = chat("bad meta");
    chs_status::protected::sign_protected(&mut forged_meta, &pubsub, &SecretKey::generate().unwrap());
    go200.publish(&forged_meta).await;
    let mut signed = chat("good meta");
    chs_status::protected::sign_protected(&mut signed, &pubsub, &topic_key);
    go200.publish(&signed).await;
    let captured_now = wait_for(&mut signals, STEP, "capture on channel B", |s| match s {
        Signal::MessagesCaptured { messages, .. } => Some(*messages),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(captured_now, 1);
    assert_eq!(owner.handle().waku().stats().topic_validator, 1, "the bad meta was refused by the validator");

    // 5. A forged description (another key, a far higher clock, channel B removed), then the
    //    real next one: the forgery changed nothing, or the real clock 4 would be stale.
    let forger = SecretKey::generate().unwrap();
    let mut forged = forged_description(&cache, &id, &forger, 100, now_ns());
    chs_status::protected::sign_protected(&mut forged, &pubsub, &topic_key);
    go200.publish(&forged).await;
    let refused = wait_for(&mut signals, STEP, "forgery refused", |s| match s {
        Signal::CommunityDescriptionRejected { reason, .. } => Some(reason.clone()),
        Signal::CommunityDescriptionApplied { .. } => panic!("forged description applied: {s:?}"),
        _ => None,
    })
    .await
    .unwrap();
    assert!(refused.contains("sign"), "{refused}");
    let three = [two[0].clone(), two[1].clone(), (channel_c.clone(), "dev".to_owned())];
    let mut real = description(&community_key, 4, &three);
    chs_status::protected::sign_protected(&mut real, &pubsub, &topic_key);
    go200.publish(&real).await;
    let (added, removed) = wait_for(&mut signals, STEP, "the real description", |s| match s {
        Signal::CommunityDescriptionApplied { clock: 4, added, removed, .. } => Some((added.clone(), removed.clone())),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!((added, removed.len()), (vec![format!("{id}{channel_c}")], 0));

    owner.shutdown().await;
    // What `chs community show` prints comes from here.
    let mut store = Store::open(&owner_dir.join("chs.db")).unwrap();
    let communities = Communities::open(&mut store).unwrap();
    let info = communities.info(&store, &id).unwrap();
    let described = info.description.expect("a description");
    assert_eq!((described.clock, described.name.as_str(), described.channels.len()), (4, "followed", 3));
    assert_eq!(info.pubsub_topic, NEW_SHARD.pubsub_topic());
    assert_eq!(info.shard_info.expect("shard info").shard, Some(NEW_SHARD));
    let b_topic = *Topic::from_chat_id(&format!("{id}{channel_b}")).as_bytes();
    let captured = store.messages_in_range(&[b_topic], 0, u64::MAX / 2).unwrap();
    assert_eq!(captured.len(), 1, "only the message with a valid meta was captured");
}
