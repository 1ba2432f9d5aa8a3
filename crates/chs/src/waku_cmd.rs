//! `chs waku listen|publish|store-query`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use chs_proto::Message as _;
use chs_waku::{Config, ContentFilter, DEFAULT_PUBSUB_TOPIC, WakuMessage, WakuNode, timestamp_now};
use clap::{Subcommand, ValueEnum};

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum WakuCommand {
    /// Runs a Waku relay node and prints every message it receives, one JSON object per line.
    #[command(long_about = "Runs a Waku relay node (11/WAKU2-RELAY on TCP) until Ctrl-C. First prints each \
        listen address as a dialable multiaddr ending in /p2p/<peer id>, one per line, then every received \
        message as one JSON object per line: pubsub_topic, content_topic, payload_hex, payload_utf8 (null \
        unless UTF-8), version, timestamp (ns), meta_hex, ephemeral, message_id, message_hash, from. \
        These lines are what `chs store import --waku-ndjson` reads.")]
    Listen {
        /// Listen address: a multiaddr (`/ip4/0.0.0.0/tcp/60000`) or `IP:PORT`.
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
        listen: String,
        /// Pubsub topic to subscribe to. Repeatable.
        #[arg(long = "pubsub-topic", default_value = DEFAULT_PUBSUB_TOPIC)]
        pubsub_topics: Vec<String>,
        /// Only print messages with this content topic. Repeatable.
        #[arg(long = "content-topic")]
        content_topics: Vec<String>,
        /// Peer to dial at start (multiaddr). Repeatable.
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Directory keeping the node key (default: a fresh key each run).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also serve store v3 (/vac/waku/store-query/3.0.0) for every message received, kept in memory.
        #[arg(long = "serve-store", alias = "store")]
        store: bool,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Connects to a peer, waits until it is subscribed to the pubsub topic, publishes one message and exits.
    #[command(long_about = "Starts a Waku relay node without a listener, dials --peer, waits until that peer \
        is subscribed to the pubsub topic (bounded by --timeout), publishes one message and exits 0 once \
        it is sent. The message is either built from --content-topic and --payload (text, or hex/base64 \
        with --encoding; version 0, timestamp now), or given whole as an encoded WakuMessage with \
        --waku-message HEX (e.g. the `waku_message` printed by `chs status magnetlink build`). Prints the \
        gossipsub message id and the 14/WAKU2 message hash.")]
    Publish {
        /// The peer to publish through (multiaddr, `…/p2p/<peer id>` recommended).
        #[arg(long)]
        peer: String,
        /// Content topic of the message.
        #[arg(long, required_unless_present = "waku_message")]
        content_topic: Option<String>,
        /// The payload (see --encoding).
        #[arg(long, required_unless_present = "waku_message", conflicts_with = "waku_message")]
        payload: Option<String>,
        /// How --payload is written.
        #[arg(long, value_enum, default_value_t = Encoding::Text)]
        encoding: Encoding,
        /// Publish this encoded WakuMessage (hex) as it is.
        #[arg(long, conflicts_with = "content_topic")]
        waku_message: Option<String>,
        /// Pubsub topic to publish on.
        #[arg(long, default_value = DEFAULT_PUBSUB_TOPIC)]
        pubsub_topic: String,
        /// Time to wait for the connection and the peer's subscription (30s, 2m, ...).
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = crate::util::parse_duration_secs)]
        timeout: u64,
        /// Print JSON (message_id, message_hash).
        #[arg(long)]
        json: bool,
    },
    /// Asks a store node for history (store v3) and prints each message as one JSON line, as `listen`.
    #[command(long_about = "Dials --peer and pages through its answer to a 13/WAKU2-STORE v3 query \
        (/vac/waku/store-query/3.0.0): the messages of --pubsub-topic with one of the --content-topic \
        (all content topics if none) whose timestamp is within [--start, --end] (ns, inclusive). Prints \
        each message once as the JSON line `chs waku listen` prints (`from` is the store node), as pages \
        arrive, then a summary (messages, pages, duplicates, time) on stderr. Every page is checked: a \
        message outside the query, a wrong hash, an oversized page, endless paging or a stalled page \
        (--timeout) ends the command with an error, after the messages already printed.")]
    StoreQuery {
        /// The store node (multiaddr ending in `/p2p/<peer id>`).
        #[arg(long)]
        peer: String,
        /// Pubsub topic of the query.
        #[arg(long, default_value = DEFAULT_PUBSUB_TOPIC)]
        pubsub_topic: String,
        /// Content topic of the query. Repeatable (at most 10).
        #[arg(long = "content-topic")]
        content_topics: Vec<String>,
        /// Earliest timestamp, Unix ns (inclusive).
        #[arg(long)]
        start: Option<i64>,
        /// Latest timestamp, Unix ns (inclusive).
        #[arg(long)]
        end: Option<i64>,
        /// Messages per page (1..=100).
        #[arg(long, default_value_t = chs_waku::store::DEFAULT_PAGE_SIZE)]
        page_size: u64,
        /// Newest first.
        #[arg(long)]
        backward: bool,
        /// Time each page (and the dial) may take (30s, 2m, ...).
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = crate::util::parse_duration_secs)]
        timeout: u64,
    },
}

/// How a payload argument is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Encoding {
    /// UTF-8 text, sent as is.
    Text,
    /// Hex digits (optional 0x).
    Hex,
    /// Standard base64.
    Base64,
}

pub(crate) fn run(cmd: WakuCommand) -> anyhow::Result<ExitCode> {
    let rt = util::runtime()?;
    match cmd {
        WakuCommand::Listen { listen, pubsub_topics, content_topics, peers, data_dir, discovery, store } => {
            rt.block_on(listen_cmd(&listen, pubsub_topics, content_topics, peers, data_dir, discovery, store))
        }
        WakuCommand::StoreQuery { peer, pubsub_topic, content_topics, start, end, page_size, backward, timeout } => {
            let query = chs_waku::store::StoreQuery::new(pubsub_topic, content_topics).with_time_range(start, end);
            let timeout = Duration::from_secs(timeout.max(1));
            let config = chs_waku::store::StoreClientConfig {
                page_size,
                forward: !backward,
                dial_timeout: timeout,
                page_timeout: timeout,
                ..chs_waku::store::StoreClientConfig::default()
            };
            rt.block_on(store_query_cmd(&to_multiaddr(&peer), &query, config))
        }
        WakuCommand::Publish { peer, content_topic, payload, encoding, waku_message, pubsub_topic, timeout, json } => {
            let message = match waku_message {
                Some(hex_text) => {
                    let bytes = util::parse_hex(&util::arg_or_stdin(&hex_text, "--waku-message")?, "--waku-message")?;
                    WakuMessage::decode(bytes.as_slice()).context("--waku-message is not an encoded WakuMessage")?
                }
                None => {
                    let content_topic = content_topic.context("--content-topic is required")?;
                    let payload = payload.context("--payload is required")?;
                    WakuMessage {
                        payload: decode_payload(&payload, encoding)?,
                        content_topic,
                        version: Some(0),
                        timestamp: Some(timestamp_now()),
                        meta: None,
                        rate_limit_proof: None,
                        ephemeral: None,
                    }
                }
            };
            rt.block_on(publish_cmd(&peer, &pubsub_topic, message, Duration::from_secs(timeout.max(1)), json))
        }
    }
}

fn decode_payload(payload: &str, encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    let bytes = match encoding {
        Encoding::Text => payload.as_bytes().to_vec(),
        Encoding::Hex => util::parse_hex(payload, "--payload")?,
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| anyhow::anyhow!("--payload is not valid base64: {e}"))?,
    };
    anyhow::ensure!(!bytes.is_empty(), "--payload is empty: Waku relays reject messages without payload");
    Ok(bytes)
}

/// `IP:PORT` becomes `/ip4|ip6/IP/tcp/PORT`; anything else is taken as a multiaddr.
fn to_multiaddr(text: &str) -> String {
    match text.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        Ok(std::net::SocketAddr::V6(a)) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
        Err(_) => text.to_owned(),
    }
}

async fn listen_cmd(
    listen: &str,
    pubsub_topics: Vec<String>,
    content_topics: Vec<String>,
    peers: Vec<String>,
    data_dir: Option<PathBuf>,
    discovery: DiscoveryArgs,
    store: bool,
) -> anyhow::Result<ExitCode> {
    let listen = to_multiaddr(listen);
    let config = discovery.apply(Config {
        data_dir,
        listen_addrs: vec![listen.clone()],
        bootstrap_peers: peers.iter().map(|p| to_multiaddr(p)).collect(),
        pubsub_topics,
        ..Config::default()
    });
    let node = WakuNode::start(config).await.with_context(|| format!("starting the Waku node on {listen}"))?;
    let filter = ContentFilter { pubsub_topic: None, content_topics, max_payload: None };
    let mut messages = node.messages(filter).context("the Waku node stopped")?;
    let store = if store { Some(ListenStore::start(&node)?) } else { None };
    for addr in node.listen_addrs().await.context("the Waku node stopped")? {
        println!("{addr}");
    }
    eprintln!("listening as {}; press Ctrl-C to stop", node.peer_id());
    let signal = crate::torrent_cmd::wait_for_shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            r = &mut signal => {
                r?;
                break;
            }
            m = messages.recv() => match m {
                Some(m) => {
                    // Stored before printed: a line seen is a message served.
                    if let Some(store) = &store {
                        store.keep(&m);
                    }
                    println!("{}", m.to_json());
                }
                None => anyhow::bail!("the Waku node stopped"),
            }
        }
    }
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn publish_cmd(
    peer: &str,
    pubsub_topic: &str,
    message: WakuMessage,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let peer = to_multiaddr(peer);
    let config = Config { listen_addrs: Vec::new(), pubsub_topics: vec![pubsub_topic.to_owned()], ..Config::default() };
    let node = WakuNode::start(config).await.context("starting the Waku node")?;
    let result = async {
        let peer_id = tokio::time::timeout(timeout, node.dial(&peer))
            .await
            .map_err(|_| anyhow::anyhow!("dialing {peer} timed out after {}s", timeout.as_secs()))??;
        tokio::time::timeout(timeout, node.wait_for_topic_peers(pubsub_topic, 1)).await.map_err(|_| {
            anyhow::anyhow!(
                "peer {peer_id} did not subscribe to {pubsub_topic} within {}s (is it on that pubsub topic?)",
                timeout.as_secs()
            )
        })??;
        let hash = chs_proto::waku::message_hash(pubsub_topic, &message);
        let id = node.publish(pubsub_topic, message).await.with_context(|| format!("publishing on {pubsub_topic}"))?;
        anyhow::Ok((id, hash))
    }
    .await;
    node.shutdown().await;
    let (id, hash) = result?;
    if json {
        println!("{}", serde_json::json!({ "message_id": id.to_string(), "message_hash": hex::encode(hash) }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("message_id: {id}");
    println!("message_hash: {}", hex::encode(hash));
    Ok(ExitCode::SUCCESS)
}

/// Discovery for `chs waku listen`: only what is given is used (nothing by default).
#[derive(Debug, clap::Args)]
pub(crate) struct DiscoveryArgs {
    /// An EIP-1459 ENR tree (`enrtree://<key>@<domain>`) to find peers in, e.g. Status' fleet
    /// `enrtree://AMOJVZX4V6EXP7NTJPMAYJYST2QP6AJXYW76IU6VGJS7UVSNDYZG4@boot.prod.status.nodes.status.im`. Repeatable.
    #[arg(long = "dns-discovery")]
    dns_discovery: Vec<String>,
    /// The nameserver for --dns-discovery (`IP:PORT`; default: the system's).
    #[arg(long)]
    nameserver: Option<std::net::SocketAddr>,
    /// Run discv5 bootstrapped from this record (`enr:…`). Repeatable.
    #[arg(long = "discv5-bootstrap")]
    discv5_bootstrap: Vec<String>,
    /// discv5's UDP port (with --discv5-bootstrap; 0: any).
    #[arg(long, default_value_t = 0)]
    discv5_port: u16,
}

impl DiscoveryArgs {
    fn apply(self, config: Config) -> Config {
        let discv5 = !self.discv5_bootstrap.is_empty();
        Config {
            peer_exchange: discv5 || !self.dns_discovery.is_empty(),
            dns_discovery: self.dns_discovery,
            nameserver: self.nameserver,
            discv5,
            discv5_port: self.discv5_port,
            discv5_bootstrap: self.discv5_bootstrap,
            ..config
        }
    }
}

/// How many received messages `chs waku listen --serve-store` keeps (the oldest go first).
const LISTEN_STORE_CAPACITY: usize = 100_000;

/// What `listen --serve-store` runs: the server and the memory store it serves from.
struct ListenStore {
    _server: chs_waku::store::StoreServer,
    store: std::sync::Arc<chs_waku::store::MemoryStore>,
}

impl ListenStore {
    /// Serves store v3 on `node` from an empty memory store.
    fn start(node: &WakuNode) -> anyhow::Result<ListenStore> {
        use chs_waku::store::{MemoryStore, StoreServer, StoreServerConfig};
        let store = std::sync::Arc::new(MemoryStore::new(LISTEN_STORE_CAPACITY));
        let server = StoreServer::start(node, store.clone(), StoreServerConfig::default())?;
        eprintln!("serving store v3 ({}) for the messages received", chs_waku::store::STORE_QUERY_PROTOCOL);
        Ok(ListenStore { _server: server, store })
    }

    /// Keeps a received message (once per hash).
    fn keep(&self, m: &chs_waku::ReceivedMessage) {
        self.store.insert(chs_waku::store::StoredMessage::new(m.pubsub_topic.clone(), m.message.clone()));
    }
}

async fn store_query_cmd(
    peer: &str,
    query: &chs_waku::store::StoreQuery,
    config: chs_waku::store::StoreClientConfig,
) -> anyhow::Result<ExitCode> {
    let node_config = Config { listen_addrs: Vec::new(), pubsub_topics: Vec::new(), ..Config::default() };
    let node = WakuNode::start(node_config).await.context("starting the Waku node")?;
    let client = chs_waku::store::StoreClient::new(&node, config);
    let mut printed = 0usize;
    let from = peer.rsplit("/p2p/").next().unwrap_or(peer);
    let result = client
        .query_with(peer, query, |page| {
            for message in page {
                println!("{}", message.to_json(from));
                printed += 1;
            }
        })
        .await;
    node.shutdown().await;
    let outcome = result.with_context(|| format!("store query to {peer} ({printed} messages printed before)"))?;
    eprintln!(
        "{printed} messages, {} pages, {} duplicates skipped, {} ms",
        outcome.pages,
        outcome.duplicates,
        outcome.elapsed.as_millis()
    );
    Ok(ExitCode::SUCCESS)
}
