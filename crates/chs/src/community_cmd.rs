//! `chs community create|import-key|show|join|leave|topic-key|control-node|ratchet-key|list`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chs_community::{CommunityInfo, CreateOptions};
use clap::Subcommand;

use crate::api::client::RunningNode;
use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum CommunityCommand {
    /// Creates a community with a fresh key: this node becomes its control node.
    #[command(long_about = "Creates a community: generates its secp256k1 key and stores it in the database \
        (in clear: a new database file is created with mode 0600), with one channel (random uuid) \
        unless --channel is given. Prints the community id, its chats and their topics.")]
    Create {
        /// SQLite database (created if absent).
        #[arg(long)]
        db: PathBuf,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Pubsub topic of the community's traffic.
        #[arg(long)]
        pubsub_topic: Option<String>,
        /// Channel uuid to create. Repeatable (default: one random channel).
        #[arg(long = "channel")]
        channels: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stores a community from its private key: this node becomes its control node.
    #[command(long_about = "Stores a community from its private key (64 hex digits): this node becomes its \
        control node. The key is never taken on the command line (the process list shows it to every \
        user): it is read from --community-key-file PATH (`-`: stdin), else from the environment \
        variable CHS_COMMUNITY_KEY, else from stdin.")]
    ImportKey {
        /// SQLite database (created if absent).
        #[arg(long)]
        db: PathBuf,
        /// File holding the private key (64 hex digits), or `-` for stdin. Default: $CHS_COMMUNITY_KEY, else stdin.
        #[arg(long, value_name = "PATH")]
        community_key_file: Option<PathBuf>,
        /// Display name (for a community not stored yet).
        #[arg(long, default_value = "")]
        name: String,
        /// Channel uuid (for a community not stored yet). Repeatable.
        #[arg(long = "channel")]
        channels: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows a stored community: id, chats, topics, archive bookkeeping (never the key).
    Show {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID", required_unless_present = "id")]
        community: Option<String>,
        /// The community id, positional (the old spelling, kept for scripts).
        #[arg(hide = true, conflicts_with = "community")]
        id: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Joins a community as a member: stores its id (no key).
    Join {
        /// SQLite database (created if absent).
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID", required_unless_present = "id")]
        community: Option<String>,
        /// The community id, positional (the old spelling, kept for scripts).
        #[arg(hide = true, conflicts_with = "community")]
        id: Option<String>,
        /// Pubsub topic of the community's traffic.
        #[arg(long)]
        pubsub_topic: Option<String>,
        /// The control node of an owner-token community (its public key, 66 or 130 hex digits):
        /// status-go reads it from the chain; chs accepts the descriptions it signs.
        /// A public key, so it may be given on the command line (no `KEY` value name: those are
        /// for files holding private keys).
        #[arg(long, value_name = "HEX")]
        control_node: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Leaves a community: a running node stops its tasks and unseeds it; stored messages and
    /// archives are kept (a control node keeps its key).
    Leave {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sets the key of the community's protected pubsub topic (its own shard): with the private
    /// key this node signs `meta` of what it publishes there; with either key it accepts only
    /// messages whose `meta` validates (go-waku's signed-topic validator).
    #[command(long_about = "Sets the protected-topic key of a community (status-go gives it to members \
        in the request-to-join response; it is not in the public description). 64 hex digits = the \
        private key (sign and validate), 66 or 130 hex digits = the public key (validate only). Read \
        from --topic-key-file PATH (`-`: stdin), else CHS_TOPIC_KEY, else stdin; never from the \
        command line. --clear removes it. A running node applies it at its next restart.")]
    TopicKey {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// File holding the key, or `-` for stdin. Default: $CHS_TOPIC_KEY, else stdin.
        #[arg(long, value_name = "PATH", conflicts_with = "clear")]
        topic_key_file: Option<PathBuf>,
        /// Remove the key.
        #[arg(long)]
        clear: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sets the control node of an owner-token community: the public key whose signature its
    /// descriptions (and shard infos with a chain id) must carry. status-go reads it from the
    /// owner token's chain; chs cannot, so the operator gives it. Without one, descriptions of an
    /// owner-token community signed by any key but the community key are refused.
    ControlNode {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// The control node's public key (66 or 130 hex digits, `0x` optional).
        #[arg(value_name = "PUBLIC_HEX", required_unless_present = "clear", conflicts_with = "clear")]
        key: Option<String>,
        /// Remove it (the community key signs again).
        #[arg(long)]
        clear: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The community's hash-ratchet keys (an encrypted, token-gated community): a control node
    /// wraps its archives and index with the newest, as status-go does; a member opens wrapped
    /// ones.
    #[command(subcommand)]
    RatchetKey(RatchetKeyCommand),
    /// Lists the stored communities.
    List {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// Print JSON (an array of what `show --json` prints).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RatchetKeyCommand {
    /// Stores a hash-ratchet key of the community (status-go's `hash_ratchet_encryption` row:
    /// 32-byte key and its timestamp; the group id is the community id).
    #[command(long_about = "Stores a hash-ratchet key of the community. status-go keeps it in \
        hash_ratchet_encryption (key, key_timestamp) with the community id as group id; a Status \
        client gets it in the community's key exchange. The key (64 hex digits) is never taken on the \
        command line (the process list shows it to every user): it is read from --key-file PATH \
        (`-`: stdin), else from CHS_RATCHET_KEY, else from stdin. --timestamp is status-go's \
        key_timestamp in Unix milliseconds (the key id is derived from it: it must be exact). \
        A control node of an encrypted community wraps its next archives and index with its newest \
        key; a member opens wrapped histories with any key held. A member that kept a history it \
        could not open re-opens it from the files it keeps (a running node at once, else at its \
        next start). Prints the key id, never the key.")]
    Add {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// status-go's key timestamp, Unix milliseconds.
        #[arg(long, value_name = "MS")]
        timestamp: u64,
        /// File holding the key (64 hex digits), or `-` for stdin. Default: $CHS_RATCHET_KEY, else stdin.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the community's hash-ratchet keys: key id, timestamp, last sequence number used
    /// (never the keys).
    List {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: CommunityCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CommunityCommand::Create { db, name, pubsub_topic, channels, json } => {
            check_channels(&channels)?;
            let mut store = util::open_or_create_private_store(&db)?;
            let communities = util::communities(&mut store)?;
            let community = communities.create(&mut store, &CreateOptions { name, pubsub_topic, channels })?;
            print_info(&communities.info(&store, &community.id)?, json)
        }
        CommunityCommand::ImportKey { db, community_key_file, name, channels, json } => {
            check_channels(&channels)?;
            let source = util::KeySource {
                file: community_key_file.as_deref(),
                flag: "--community-key-file",
                env: "CHS_COMMUNITY_KEY",
            };
            let key = match source.read()? {
                Some(key) => key,
                None => util::arg_or_stdin("-", "the private key")?,
            };
            let mut store = util::open_or_create_private_store(&db)?;
            let communities = util::communities(&mut store)?;
            let community =
                communities.import_key(&mut store, &key, &CreateOptions { name, pubsub_topic: None, channels })?;
            print_info(&communities.info(&store, &community.id)?, json)
        }
        CommunityCommand::Show { db, community, id, json } => {
            let id = util::parse_community_id(&community.or(id).unwrap_or_default())?;
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            print_info(&communities.info(&store, &id)?, json)
        }
        CommunityCommand::Join { db, community, id, pubsub_topic, control_node, json } => {
            let id = util::parse_community_id(&community.or(id).unwrap_or_default())?;
            let control_node = control_node.as_deref().map(chs_community::parse_public_key).transpose()?;
            if let Some(node) = running_node(&db) {
                anyhow::ensure!(
                    pubsub_topic.is_none(),
                    "--pubsub-topic: a running node (pid {}) joins on the community's default topic; stop it to join with another",
                    node.pid
                );
                let reply = node.send(
                    "POST",
                    "/api/v1/communities",
                    Some(&serde_json::json!({ "community_id": id.to_string() })),
                )?;
                if let Some(key) = &control_node {
                    // The node reads it from the database at each description it checks.
                    let mut store = util::open_existing_store(&db)?;
                    util::communities(&mut store)?.set_control_node(&mut store, &id, Some(key))?;
                }
                return print_node_reply(&reply, json, &node, "joined");
            }
            let mut store = util::open_or_create_private_store(&db)?;
            let communities = util::communities(&mut store)?;
            let community = communities.join(&mut store, &id, pubsub_topic.as_deref())?;
            if let Some(key) = &control_node {
                communities.set_control_node(&mut store, &id, Some(key))?;
            }
            print_info(&communities.info(&store, &community.id)?, json)
        }
        CommunityCommand::ControlNode { db, community, key, clear, json } => {
            let id = util::parse_community_id(&community)?;
            let key = if clear { None } else { key.as_deref().map(chs_community::parse_public_key).transpose()? };
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            communities.set_control_node(&mut store, &id, key.as_ref())?;
            print_info(&communities.info(&store, &id)?, json)
        }
        CommunityCommand::Leave { db, community, json } => {
            let id = util::parse_community_id(&community)?;
            if let Some(node) = running_node(&db) {
                let reply = node.send("DELETE", &format!("/api/v1/communities/{id}"), None)?;
                return print_node_reply(&reply, json, &node, "left");
            }
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            communities.get(&store, &id)?;
            communities.leave(&mut store, &id)?;
            if json {
                println!("{}", serde_json::json!({ "community_id": id.to_string(), "left": true }));
            } else {
                println!("left {id} (its messages and archives are kept)");
            }
            Ok(ExitCode::SUCCESS)
        }
        CommunityCommand::TopicKey { db, community, topic_key_file, clear, json } => {
            let id = util::parse_community_id(&community)?;
            let key = if clear {
                None
            } else {
                let source =
                    util::KeySource { file: topic_key_file.as_deref(), flag: "--topic-key-file", env: "CHS_TOPIC_KEY" };
                let text = match source.read()? {
                    Some(key) => key,
                    None => util::arg_or_stdin("-", "the topic key")?,
                };
                Some(chs_community::TopicKey::parse(&text)?)
            };
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            communities.set_topic_key(&mut store, &id, key.as_ref())?;
            print_info(&communities.info(&store, &id)?, json)
        }
        CommunityCommand::RatchetKey(cmd) => ratchet_key(cmd),
        CommunityCommand::List { db, json } => list(&db, json),
    }
}

fn ratchet_key(cmd: RatchetKeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RatchetKeyCommand::Add { db, community, timestamp, key_file, json } => {
            let id = util::parse_community_id(&community)?;
            let source = util::KeySource { file: key_file.as_deref(), flag: "--key-file", env: "CHS_RATCHET_KEY" };
            let text = match source.read()? {
                Some(key) => key,
                None => util::arg_or_stdin("-", "the hash-ratchet key")?,
            };
            let digits = text.strip_prefix("0x").unwrap_or(&text);
            let key = hex::decode(digits)
                .map_err(|e| anyhow::anyhow!("the hash-ratchet key is not hex ({e}): expected 64 hex digits"))?;
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            let added = communities.add_ratchet_key(&mut store, &id, timestamp, &key)?;
            // A running node reads the keys at each build and download; a history it kept
            // unopened is re-opened by restarting the community's tasks (the link is pending).
            let node = if added.reopened.is_some() { running_node(&db) } else { None };
            if let Some(node) = &node {
                node.send("POST", &format!("/api/v1/communities/{id}/reopen"), None)?;
            }
            if json {
                let mut value = serde_json::to_value(&added)?;
                value["community_id"] = serde_json::json!(id.to_string());
                value["running_node_pid"] = serde_json::json!(node.as_ref().map(|n| n.pid));
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            let k = &added.key;
            println!(
                "{} hash-ratchet key {} (timestamp {}) of {id}",
                if added.new { "stored" } else { "already held:" },
                k.key_id,
                k.timestamp
            );
            if let Some(link) = &added.reopened {
                match &node {
                    Some(node) => println!(
                        "re-opening the kept history {link}: the running node (pid {}) acts on it now",
                        node.pid
                    ),
                    None => println!("the kept history {link} is re-opened at the node's next start"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RatchetKeyCommand::List { db, community, json } => {
            let id = util::parse_community_id(&community)?;
            let mut store = util::open_existing_store(&db)?;
            let communities = util::communities(&mut store)?;
            communities.get(&store, &id)?;
            let keys = communities.ratchet_keys(&store, &id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            for k in &keys {
                println!("{}  timestamp {}  last seq_no {}", k.key_id, k.timestamp, k.last_seq_no);
            }
            println!("{} hash-ratchet keys", keys.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The node running on the data folder holding `db`, if any: changes then go through its API, so
/// that it acts on them (and does not overwrite them).
fn running_node(db: &Path) -> Option<RunningNode> {
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    RunningNode::find(dir)
}

fn print_node_reply(reply: &serde_json::Value, json: bool, node: &RunningNode, verb: &str) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    let id = reply["community_id"].as_str().unwrap_or("?");
    println!("{verb} {id}: the running node (pid {}) acts on it now", node.pid);
    Ok(ExitCode::SUCCESS)
}

fn check_channels(channels: &[String]) -> anyhow::Result<()> {
    for c in channels {
        anyhow::ensure!(!c.trim().is_empty(), "--channel must not be empty");
    }
    Ok(())
}

fn list(db: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut store = util::open_existing_store(db)?;
    let communities = util::communities(&mut store)?;
    let infos: Vec<CommunityInfo> = communities
        .list(&store)?
        .iter()
        .map(|c| communities.info(&store, &c.id))
        .collect::<Result<_, _>>()
        .context("reading the communities")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(ExitCode::SUCCESS);
    }
    for info in &infos {
        println!(
            "{}  {:<12} {}{}",
            info.id,
            if info.control_node { "control node" } else { "member" },
            if info.joined { "" } else { "(left) " },
            info.name
        );
    }
    println!("{} communities", infos.len());
    Ok(ExitCode::SUCCESS)
}

/// What the node knows from the community's signed description and shard info.
fn print_description(info: &CommunityInfo) {
    match &info.description {
        None => println!("description:  none received yet (channels as configured)"),
        Some(d) => {
            println!("description clock: {} (applied at {} ms)", d.clock, d.received_at_ms);
            if !d.about.is_empty() {
                println!("about:        {}", d.about);
            }
            println!("encrypted:    {}", if d.encrypted { "yes (a BECOME_MEMBER token permission)" } else { "no" });
            println!("access:       {}  token permissions: {}", d.access, d.token_permissions);
            println!("archive link clock (field 9): {}", d.archive_link_clock);
            if d.channels_hidden {
                println!("channels:     hidden in privateData (encrypted; the known channels are kept)");
            }
            for c in &d.channels {
                println!("  channel {} {:?}{}", c.uuid, c.name, if c.token_gated { " (token-gated)" } else { "" });
            }
        }
    }
    match &info.shard_info {
        None => println!("shard:        no shard info received (pubsub topic as configured)"),
        Some(s) => println!(
            "shard:        {} (shard info clock {})",
            s.shard.map_or_else(|| "default".to_owned(), |s| s.pubsub_topic()),
            s.clock
        ),
    }
    for k in &info.ratchet_keys {
        println!("hash-ratchet key: {} (timestamp {}, last seq_no {})", k.key_id, k.timestamp, k.last_seq_no);
    }
    if let Some(note) = &info.archive_wrapping {
        println!("archives:     {note}");
    }
    if let Some(key) = &info.control_node_key {
        println!("control node: {key} (configured: signs the descriptions of this owner-token community)");
    }
    match &info.topic_key {
        None => println!("protected topic key: none"),
        Some(k) => println!(
            "protected topic key: {k} ({})",
            if info.topic_key_signs { "private: signs meta and validates" } else { "public: validates" }
        ),
    }
}

fn print_info(info: &CommunityInfo, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("community:    {}", info.id);
    println!("name:         {}", info.name);
    println!("role:         {}", if info.control_node { "control node (private key stored)" } else { "member" });
    println!("joined:       {}", info.joined);
    println!("link:         {}", info.share_url);
    println!("pubsub topic: {}", info.pubsub_topic);
    let chat = |label: &str, c: &chs_community::ChatInfo| {
        println!("{label:<13} {}  topic {}  {}", c.chat_id, c.topic, c.content_topic);
    };
    chat("description:", &info.description_chat);
    chat("magnetlinks:", &info.magnetlinks_chat);
    chat("memberUpdate:", &info.member_update_chat);
    for c in &info.channels {
        chat("channel:", c);
    }
    print_description(info);
    let a = &info.archive_info;
    println!("magnetlink clock: {}", a.magnetlink_clock);
    println!("last magnet uri:  {}", if a.last_magnetlink_uri.is_empty() { "-" } else { &a.last_magnetlink_uri });
    println!("last archive end: {}", a.last_archive_end_date);
    for r in &info.archives {
        println!(
            "archive {} [{} .. {}) {}{}",
            r.archive_id,
            r.from,
            r.to,
            if r.imported { "imported" } else { "downloaded" },
            r.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
