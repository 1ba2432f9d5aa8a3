//! `chs demo`: one owner and N members in one process on loopback, with temporary SQLite files,
//! realistic status-format traffic over several simulated weeks, archives, seeding, magnetlinks,
//! downloads and imports, and a per-member verdict "history identical to owner".
//!
//! The building blocks ([`create_owner`], [`generate_history`], [`join_member`],
//! [`history_fingerprint`], [`post_live_message`]) are public for the end-to-end tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chs_community::{Communities, CommunityId, CreateOptions};
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::history::{ChatMessageParams, build_chat_message};
use chs_status::{ChatKeyCache, ChatKeyRing, Topic};
use chs_store::{Store, StoredMessage};
use chs_waku_payload::{NonceSource, Padding, SecretKey};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};

use chs_node::backend::BackendKind;
use chs_node::clock::{ManualClock, system_now_ms};
use chs_node::{Config, Node, NodeError, NodeHandle, Signal, SignalBus};

/// What can go wrong in the demo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A node failed.
    #[error("node")]
    Node(#[from] NodeError),
    /// The message store failed.
    #[error("message store")]
    Store(#[from] chs_store::StoreError),
    /// The community manager failed.
    #[error("community")]
    Community(#[from] chs_community::CommunityError),
    /// A file or folder could not be used.
    #[error("{what} {path}")]
    Io {
        /// What the demo was doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key could not be generated.
    #[error("generating a key")]
    Key(#[from] chs_waku_payload::KeyError),
    /// The wire layer refused to build a chat message.
    #[error("building a chat message")]
    Message(#[from] chs_status::envelope::BuildError),
    /// A generated message is not one status-go would archive (a bug of the demo's traffic).
    #[error("generated message does not capture: {0}")]
    NotCaptured(chs_status::RejectReason),
    /// Publishing on Waku failed.
    #[error("publishing")]
    Publish(#[from] chs_waku::PublishError),
    /// A node stopped while the demo waited for something.
    #[error("node stopped while waiting for {0}")]
    Stopped(String),
    /// A step took too long.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// A background task panicked.
    #[error("background task failed")]
    Join(#[from] tokio::task::JoinError),
    /// A configuration could not be written as TOML.
    #[error("writing the configuration")]
    Toml(#[from] toml::ser::Error),
}

impl DemoError {
    /// The message with every cause, `outer: inner: innermost`.
    #[must_use]
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        DemoError::Io { what, path: path.to_owned(), source }
    }
}

const DAY_MS: u64 = 86_400_000;
const WEEK_MS: u64 = 7 * DAY_MS;
const HOUR_MS: u64 = 3_600_000;

/// The demo community's channels.
pub const CHANNELS: [&str; 2] = ["general", "random"];

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Folder for the nodes' files (each node gets a subfolder).
    pub dir: PathBuf,
    /// Members (default 3).
    pub members: usize,
    /// Simulated weeks of history before now (default 4).
    pub weeks: u32,
    /// Chat messages per week (default 500).
    pub messages_per_week: usize,
    /// Distinct authors (default 12).
    pub authors: usize,
    /// Member debounce (default 1 s: short for a demo; the daemon's default is 20 s).
    pub debounce: Duration,
    /// After the first round, members post live messages, the simulated clock moves one week
    /// and members fetch only the new archive (default true).
    pub second_week: bool,
    /// Give up waiting for any step after this long (default 120 s).
    pub step_timeout: Duration,
    /// Distribution backends of every node (default BitTorrent). With Logos Storage, each node
    /// gets a stand-in Logos Storage node on loopback (`chs-logos-standin`), the members'
    /// stand-ins fetching from the owner's, and the nodes follow today's status-go
    /// (`generation = "2026"`: archives also hold `-memberUpdate`).
    pub backends: Vec<BackendKind>,
}

impl DemoOptions {
    /// Defaults in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DemoOptions {
            dir: dir.into(),
            members: 3,
            weeks: 4,
            messages_per_week: 500,
            authors: 12,
            debounce: Duration::from_secs(1),
            second_week: true,
            step_timeout: Duration::from_secs(120),
            backends: vec![BackendKind::Torrent],
        }
    }
}

/// What the demo reports on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DemoEvent {
    /// A step starts (free text).
    Step(String),
    /// A member node started (for progress display through [`NodeHandle::status`]).
    MemberStarted {
        /// Member number (0-based).
        index: usize,
        /// Its node.
        handle: NodeHandle,
    },
    /// A signal of a member.
    MemberSignal {
        /// Member number (0-based).
        index: usize,
        /// The signal (boxed: signals are large beside the other events).
        signal: Box<Signal>,
    },
}

/// One member's result.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// `member-<n>`.
    pub name: String,
    /// Archives imported.
    pub archives: usize,
    /// Archives fetched in the second round (1 expected: only the new week).
    pub second_round_archives: Option<usize>,
    /// Messages stored on the community's topics.
    pub messages: u64,
    /// History rows with chat text.
    pub readable: usize,
    /// Payload bytes received from peers.
    pub bytes: u64,
    /// Time from the owner's seeding to this member's import, first round.
    pub elapsed_ms: u64,
    /// Whether the member's messages equal the owner's (hash, payload, signer, time, topic).
    pub identical: bool,
}

/// The demo's result.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// The community.
    pub community_id: String,
    /// Messages in the owner's store.
    pub owner_messages: u64,
    /// Archives the owner built.
    pub owner_archives: usize,
    /// Members.
    pub members: Vec<MemberReport>,
}

impl DemoReport {
    /// Whether every member's history is identical to the owner's.
    #[must_use]
    pub fn all_identical(&self) -> bool {
        self.members.iter().all(|m| m.identical)
    }
}

/// Creates a community with [`CHANNELS`] in `<dir>/chs.db` (the owner's store); returns its id.
///
/// # Errors
/// Store errors.
pub fn create_owner(dir: &Path, name: &str) -> Result<CommunityId, DemoError> {
    std::fs::create_dir_all(dir).map_err(|e| DemoError::io("creating", dir, e))?;
    let mut store = Store::open(&dir.join("chs.db"))?;
    let communities = Communities::open(&mut store)?;
    let options = CreateOptions {
        name: name.to_owned(),
        pubsub_topic: None,
        channels: CHANNELS.iter().map(|c| (*c).to_owned()).collect(),
    };
    Ok(communities.create(&mut store, &options)?.id)
}

/// Joins `id` as a member in `<dir>/chs.db`.
///
/// # Errors
/// Store errors.
pub fn join_member(dir: &Path, id: &CommunityId) -> Result<(), DemoError> {
    std::fs::create_dir_all(dir).map_err(|e| DemoError::io("creating", dir, e))?;
    let mut store = Store::open(&dir.join("chs.db"))?;
    let communities = Communities::open(&mut store)?;
    communities.join(&mut store, id, None)?;
    Ok(())
}

/// A small deterministic generator (SplitMix64): the demo's traffic is the same on every run
/// except for keys, padding and nonces.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded generator.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }
}

const WORDS: &[&str] = &[
    "archive",
    "torrent",
    "history",
    "waku",
    "relay",
    "community",
    "member",
    "owner",
    "seed",
    "index",
    "piece",
    "magnet",
    "link",
    "week",
    "message",
    "status",
    "keycard",
    "node",
    "gossip",
    "peer",
    "store",
    "import",
    "hello",
    "thanks",
    "release",
    "desktop",
    "mobile",
    "bug",
    "fix",
    "review",
];

fn sentence(rng: &mut SplitMix) -> String {
    let n = 4 + rng.below(20);
    let mut words: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    if let Some(first) = words.first_mut() {
        *first = WORDS[rng.below(WORDS.len())];
    }
    let mut text = words.join(" ");
    text.push('.');
    text
}

/// Builds one real status-format chat message (signed AMM in a signed, encrypted 26/WAKU2
/// payload) by `author` in `channel` of `id` at `timestamp_ms`.
///
/// # Errors
/// [`DemoError`] if the wire layer refuses.
pub fn chat_message(
    id: &CommunityId,
    author: &SecretKey,
    channel: &str,
    text: &str,
    timestamp_ms: u64,
    cache: &ChatKeyCache,
) -> Result<chs_proto::waku::WakuMessage, DemoError> {
    let params = ChatMessageParams {
        author,
        community: id,
        channel_uuid: channel,
        text,
        clock: timestamp_ms,
        timestamp_ms,
        display_name: "",
        installation_id: "chs-demo",
        bundle: None,
        timestamp_ns: i64::try_from(timestamp_ms).unwrap_or(i64::MAX).saturating_mul(1_000_000),
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    Ok(build_chat_message(&params, cache)?.waku_message)
}

/// Fills the owner's store in `<dir>/chs.db` with `count` chat messages of `authors` authors
/// spread evenly over `[from_ms, to_ms)` (the first exactly at `from_ms`), each stored exactly as
/// live capture would store it.
/// Returns the number stored.
///
/// # Errors
/// Store or wire errors.
pub fn generate_history(
    dir: &Path,
    id: &CommunityId,
    from_ms: u64,
    to_ms: u64,
    count: usize,
    authors: usize,
    seed: u64,
) -> Result<usize, DemoError> {
    let mut store = Store::open(&dir.join("chs.db"))?;
    let communities = Communities::open(&mut store)?;
    let pubsub = communities.get(&store, id)?.pubsub_topic;
    let cache = ChatKeyCache::new();
    let ring = ChatKeyRing::for_channels(id, CHANNELS, &cache);
    let keys: Vec<SecretKey> = (0..authors.max(1)).map(|_| SecretKey::generate()).collect::<Result<_, _>>()?;
    let mut rng = SplitMix::new(seed);
    let span = to_ms.saturating_sub(from_ms).max(1);
    let step = span / (count.max(1) as u64);
    let mut batch = Vec::with_capacity(500);
    let mut stored = 0;
    for i in 0..count {
        // The first message sits exactly at `from_ms`, which anchors the owner's first window.
        let jitter = if step > 1 && i > 0 { rng.next_u64() % step } else { 0 };
        let ts = from_ms + (i as u64) * step + jitter;
        let author = &keys[rng.below(keys.len())];
        let channel = CHANNELS[rng.below(CHANNELS.len())];
        let message = chat_message(id, author, channel, &sentence(&mut rng), ts, &cache)?;
        let archived =
            capture_for_archive(&message, &pubsub, &ring, CapturePolicy::default()).map_err(DemoError::NotCaptured)?;
        batch.push(StoredMessage::from_archive_message(&pubsub, &archived, i64::try_from(ts).unwrap_or(0))?);
        if batch.len() == 500 {
            stored += store.insert_batch(&batch)?;
            batch.clear();
        }
    }
    stored += store.insert_batch(&batch)?;
    Ok(stored)
}

/// Posts one live chat message from a member node over Waku, on the default community pubsub topic.
///
/// # Errors
/// Wire or publish errors.
pub async fn post_live_message(
    node: &NodeHandle,
    id: &CommunityId,
    author: &SecretKey,
    text: &str,
) -> Result<(), DemoError> {
    let cache = ChatKeyCache::new();
    let message = chat_message(id, author, CHANNELS[0], text, system_now_ms(), &cache)?;
    node.waku().publish(chs_waku::DEFAULT_PUBSUB_TOPIC, message).await?;
    Ok(())
}

/// A stored message as the demo compares it: hash, payload, signer, timestamp (s), topic.
pub type MessageRow = (Vec<u8>, Vec<u8>, Vec<u8>, u64, [u8; 4]);

/// Every stored message of the community's channels, as comparable rows sorted by the key a
/// member's import gives it ([`StoredMessage::from_untrusted_archive_message`]).
///
/// # Errors
/// Store errors.
pub fn history_fingerprint(store: &Store, id: &CommunityId) -> Result<Vec<MessageRow>, NodeError> {
    let topics: Vec<[u8; 4]> =
        CHANNELS.iter().map(|c| *Topic::from_chat_id(&id.channel_chat_id(c)).as_bytes()).collect();
    let mut rows: Vec<_> = store
        .messages_in_range(&topics, 0, u64::MAX)?
        .into_iter()
        .map(|m| {
            // The key a member gives the message when it imports it from an archive (the hash of
            // its archived form), so that an owner's captured row and a member's imported row of
            // the same message compare equal.
            let key = StoredMessage::from_untrusted_archive_message(&m.pubsub_topic, &m.to_archive_message(), 0)
                .map_or_else(|_| m.hash, |r| r.hash);
            (key.to_vec(), m.payload.clone(), m.sig.clone(), m.timestamp_secs(), m.topic)
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// Waits for the first signal matching `pick`, for at most `timeout`.
///
/// # Errors
/// [`DemoError`] on timeout or when the bus closes.
pub async fn wait_for<T>(
    rx: &mut broadcast::Receiver<Signal>,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&Signal) -> Option<T>,
) -> Result<T, DemoError> {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(signal) => {
                    if let Some(t) = pick(&signal) {
                        return Ok(t);
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    return Err(DemoError::Stopped(what.to_owned()));
                }
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| DemoError::Timeout { what: what.to_owned(), timeout })?
}

/// Runs the demo.
///
/// # Errors
/// Any step failing or timing out.
pub async fn run(options: &DemoOptions, observe: &(dyn Fn(DemoEvent) + Send + Sync)) -> Result<DemoReport, DemoError> {
    let step = |s: &str| observe(DemoEvent::Step(s.to_owned()));
    let now = system_now_ms();
    let clock = ManualClock::new(now);
    let owner_dir = options.dir.join("owner");
    let id = create_owner(&owner_dir, "chs demo")?;
    // History in whole weeks ending one hour before now: the owner's catch-up builds exactly
    // `weeks` archives, and live messages fall into the next week.
    let end = now - HOUR_MS;
    let start = end - u64::from(options.weeks) * WEEK_MS;
    step(&format!(
        "community {id}: generating {} status chat messages over {} simulated weeks",
        options.messages_per_week * options.weeks as usize,
        options.weeks
    ));
    let (d, i, n, a) = (owner_dir.clone(), id, options.messages_per_week * options.weeks as usize, options.authors);
    tokio::task::spawn_blocking(move || generate_history(&d, &i, start, end, n, a, 7)).await??;

    let logos = options.backends.contains(&BackendKind::LogosStorage);
    let owner_logos = if logos { Some(start_standin(&owner_dir.join("logos-node")).await?) } else { None };
    let mut member_logos = Vec::new();
    step(&format!("starting {} members", options.members));
    let mut members = Vec::new();
    for index in 0..options.members {
        let dir = options.dir.join(format!("member-{index}"));
        join_member(&dir, &id)?;
        let mut config = Config::local(&dir);
        config.member.debounce = options.debounce;
        if let Some(owner_node) = &owner_logos {
            let node = start_standin(&dir.join("logos-node")).await?;
            node.add_peer(&owner_node.api());
            use_backends(&mut config, &options.backends, &node.api());
            member_logos.push(node);
        } else {
            config.archive.backends.clone_from(&options.backends);
        }
        let (node, rx) = start_subscribed(config, &clock).await?;
        observe(DemoEvent::MemberStarted { index, handle: node.handle() });
        members.push((node, rx));
    }
    let mut bootstrap = Vec::new();
    for (node, _) in &members {
        let addrs = node.handle().waku().listen_addrs().await.map_err(|_| NodeError::WakuStopped)?;
        bootstrap.extend(addrs.into_iter().take(1));
    }
    step("starting the owner: catch-up build, seeding, magnetlink");
    let mut owner_config = Config::local(&owner_dir);
    owner_config.waku.bootstrap = bootstrap;
    match &owner_logos {
        Some(node) => use_backends(&mut owner_config, &options.backends, &node.api()),
        None => owner_config.archive.backends.clone_from(&options.backends),
    }
    let started = Instant::now();
    let (owner, mut owner_rx) = start_subscribed(owner_config, &clock).await?;
    let archive_ids = wait_for(&mut owner_rx, options.step_timeout, "the owner's archives", |s| match s {
        Signal::HistoryArchivesCreated { archive_ids, .. } => Some(archive_ids.clone()),
        _ => None,
    })
    .await?;
    step(&format!("owner built {} archives and seeds them; members download", archive_ids.len()));

    let mut reports = Vec::new();
    for (index, (_, rx)) in members.iter_mut().enumerate() {
        let (archives, bytes) = wait_finished(rx, index, options, observe).await?;
        reports.push(MemberReport {
            name: format!("member-{index}"),
            archives,
            second_round_archives: None,
            messages: 0,
            readable: 0,
            bytes,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            identical: false,
        });
    }

    if options.second_week {
        step("members post live messages; the owner captures them");
        let mut captured = owner.handle().signals();
        for (index, (node, _)) in members.iter().enumerate() {
            let key = SecretKey::generate()?;
            post_live_message(&node.handle(), &id, &key, &format!("live hello from member-{index}")).await?;
        }
        let mut seen = 0;
        wait_for(&mut captured, options.step_timeout, "live capture", |s| {
            if let Signal::MessagesCaptured { messages, .. } = s {
                seen += messages;
            }
            (seen >= options.members).then_some(())
        })
        .await?;
        step("one simulated week later: the owner builds the new archive; members fetch only it");
        clock.advance(Duration::from_millis(WEEK_MS));
        owner.handle().trigger_archive(&id).await?;
        for (index, (_, rx)) in members.iter_mut().enumerate() {
            let (archives, bytes) = wait_finished(rx, index, options, observe).await?;
            reports[index].second_round_archives = Some(archives);
            reports[index].archives += archives;
            reports[index].bytes += bytes;
        }
    }

    step("comparing every member's history with the owner's");
    let owner_status = owner.handle().status().await?;
    let owner_archives = owner_status.first().map_or(0, |s| s.archives);
    let id2 = id;
    let (owner_rows, owner_messages) = owner
        .handle()
        .with_store(move |_, s| {
            let rows = history_fingerprint(s, &id2)?;
            let n = rows.len() as u64;
            Ok((rows, n))
        })
        .await?;
    for (index, (node, _)) in members.iter().enumerate() {
        let id2 = id;
        let (rows, readable) = node
            .handle()
            .with_store(move |c, s| {
                let rows = history_fingerprint(s, &id2)?;
                let readable =
                    c.history(s, &id2)?.iter().filter(|h| h.text.as_deref().is_some_and(|t| !t.is_empty())).count();
                Ok((rows, readable))
            })
            .await?;
        reports[index].messages = rows.len() as u64;
        reports[index].readable = readable;
        reports[index].identical = rows == owner_rows;
    }
    step("stopping nodes");
    owner.shutdown().await;
    for (node, _) in members {
        node.shutdown().await;
    }
    for node in owner_logos.into_iter().chain(member_logos) {
        node.stop().await;
    }
    Ok(DemoReport { community_id: id.to_string(), owner_messages, owner_archives, members: reports })
}

/// Starts a stand-in Logos Storage node on loopback keeping its store in `dir`.
async fn start_standin(dir: &Path) -> Result<chs_logos_standin::StandinNode, DemoError> {
    let config = chs_logos_standin::StandinConfig { data_dir: Some(dir.to_owned()), ..Default::default() };
    chs_logos_standin::StandinNode::start(config)
        .await
        .map_err(|e| DemoError::io("starting a stand-in Logos Storage node in", dir, e))
}

/// `backends` with the Logos Storage node at `api`, following today's status-go.
fn use_backends(config: &mut Config, backends: &[BackendKind], api: &str) {
    config.archive.backends = backends.to_vec();
    config.archive.generation = chs_status::Generation::Status2026;
    config.logos_storage.api = api.to_owned();
}

/// Starts a node with a receiver subscribed before it starts, so that no signal raised while it
/// starts (the owner's catch-up build and first seeding) is missed.
async fn start_subscribed(
    config: Config,
    clock: &ManualClock,
) -> Result<(Node, broadcast::Receiver<Signal>), DemoError> {
    let bus = SignalBus::default();
    let rx = bus.subscribe();
    Ok((Node::start_with_bus(config, Arc::new(clock.clone()), bus).await?, rx))
}

async fn wait_finished(
    rx: &mut broadcast::Receiver<Signal>,
    index: usize,
    options: &DemoOptions,
    observe: &(dyn Fn(DemoEvent) + Send + Sync),
) -> Result<(usize, u64), DemoError> {
    wait_for(rx, options.step_timeout, &format!("member-{index}'s download"), |s| {
        observe(DemoEvent::MemberSignal { index, signal: Box::new(s.clone()) });
        match s {
            Signal::DownloadingHistoryArchivesFinished { archives, bytes_received, .. } => {
                Some((*archives, *bytes_received))
            }
            _ => None,
        }
    })
    .await
}

/// What [`setup`] created.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// The community.
    pub community_id: String,
    /// The owner's `chs.toml`.
    pub owner_config: PathBuf,
    /// Each member's `chs.toml`.
    pub member_configs: Vec<PathBuf>,
    /// Messages in the owner's store.
    pub messages: usize,
}

/// Prepares the demo as separate node folders, each with a `chs.toml` for `chs node --config`:
/// `<dir>/owner` (the community and `weeks` of history ending an hour ago) and
/// `<dir>/member-<n>` (joined). Loopback, ephemeral ports, debounce `debounce`.
///
/// # Errors
/// Files, store or wire errors.
pub fn setup(options: &DemoOptions) -> Result<Setup, DemoError> {
    let owner_dir = options.dir.join("owner");
    let id = create_owner(&owner_dir, "chs demo")?;
    let end = system_now_ms() - HOUR_MS;
    let start = end - u64::from(options.weeks) * WEEK_MS;
    let messages = generate_history(
        &owner_dir,
        &id,
        start,
        end,
        options.messages_per_week * options.weeks as usize,
        options.authors,
        7,
    )?;
    let write = |dir: &Path, join: Vec<String>| -> Result<PathBuf, DemoError> {
        let mut config = Config::local(".");
        config.member.debounce = options.debounce;
        config.communities.join = join;
        let text = toml::to_string(&config)?;
        let path = dir.join("chs.toml");
        std::fs::write(&path, text).map_err(|e| DemoError::io("writing", &path, e))?;
        Ok(path)
    };
    let owner_config = write(&owner_dir, Vec::new())?;
    let mut member_configs = Vec::new();
    for index in 0..options.members {
        let dir = options.dir.join(format!("member-{index}"));
        join_member(&dir, &id)?;
        member_configs.push(write(&dir, vec![id.to_string()])?);
    }
    Ok(Setup { community_id: id.to_string(), owner_config, member_configs, messages })
}
