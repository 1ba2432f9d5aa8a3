//! `chs status magnetlink build|decode|topic|chat build`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::status_cli::{MagnetlinkBuildArgs, decode, magnetlink_build, topic};
use anyhow::Context as _;
use chs_status::history::{ChatMessageParams, build_chat_message};
use chs_status::{ChatKeyCache, DEFAULT_PUBSUB_TOPIC, MagnetlinkChannel};
use chs_waku_payload::{NonceSource, Padding};
use clap::{Subcommand, ValueEnum};

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum StatusCommand {
    /// Community magnetlink messages.
    #[command(subcommand)]
    Magnetlink(MagnetlinkCommand),
    /// Community chat messages.
    #[command(subcommand)]
    Chat(ChatCommand),
    /// Decodes an encoded WakuMessage (hex) as a magnetlink of a community and prints JSON.
    #[command(long_about = "Decodes an encoded WakuMessage (hex, or `-` to read it from stdin) as a \
        magnetlink of the community, checking every layer (content topic, AES-GCM with the magnetlink \
        chat keys, payload signature, ProtocolMessage, ApplicationMetadataMessage signed by the \
        community key, type 43). Prints JSON: ok, reason and detail (when rejected), clock, magnet_uri, \
        signer, message_id, and every layer with --verbose. Exits 0 when ok, 1 when the message is \
        rejected (the JSON still says why), 1 with an error message for unusable arguments.")]
    Decode {
        /// The community id (`0x` + 66 hex digits).
        #[arg(long)]
        community: String,
        /// The encoded WakuMessage as hex, or `-` for stdin.
        hex: String,
        /// The pubsub topic the message was relayed on (enters the message hash).
        #[arg(long)]
        pubsub_topic: Option<String>,
        /// Include every layer of the message.
        #[arg(long)]
        verbose: bool,
    },
    /// Prints the 4-byte topic, content topic and symmetric key of a chat id.
    Topic {
        /// The chat id (e.g. `<community id>-magnetlinks` or `<community id><channel uuid>`).
        chat_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MagnetlinkCommand {
    /// Builds the WakuMessage a control node publishes to announce a magnet link.
    #[command(long_about = "Builds the WakuMessage status-go's control node publishes to announce a magnet \
        link: CommunityMessageArchiveMagnetlink{clock, magnet_uri} in an ApplicationMetadataMessage \
        signed by the community key, in a ProtocolMessage, in a 26/WAKU2 payload signed by the identity \
        key and encrypted with the chat key, in a WakuMessage (version 1). Prints JSON (waku_message as \
        hex, content_topic, pubsub_topic, chat_id, community_id, message_id), or only the hex with --hex. \
        The private keys are never taken on the command line (the process list shows it to every user): \
        each is read from its --*-key-file (`-`: stdin, for one of them) or else from its environment \
        variable (CHS_COMMUNITY_KEY, CHS_IDENTITY_KEY).")]
    Build {
        /// File holding the community's private key (64 hex digits), or `-` for stdin. Default: $CHS_COMMUNITY_KEY.
        #[arg(long, value_name = "PATH")]
        community_key_file: Option<PathBuf>,
        /// File holding the sender's identity key (64 hex digits; signs the 26/WAKU2 payload), or `-`
        /// for stdin. Default: $CHS_IDENTITY_KEY.
        #[arg(long, value_name = "PATH")]
        identity_key_file: Option<PathBuf>,
        /// The magnet link to announce.
        #[arg(long)]
        magnet: String,
        /// The magnetlink clock (Unix milliseconds).
        #[arg(long)]
        clock: u64,
        /// Chat to send on.
        #[arg(long, value_enum, default_value_t = Channel::Magnetlinks)]
        channel: Channel,
        /// Installation id (default: a random UUID).
        #[arg(long)]
        installation_id: Option<String>,
        /// Pubsub topic to report.
        #[arg(long)]
        pubsub_topic: Option<String>,
        /// Print only the encoded WakuMessage as hex.
        #[arg(long)]
        hex: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChatCommand {
    /// Builds a status-format community chat message (text) as a WakuMessage.
    #[command(long_about = "Builds a status-format community chat message: ChatMessage (text/plain) in an \
        ApplicationMetadataMessage signed by the author, in a ProtocolMessage, in a 26/WAKU2 payload \
        signed by the author and encrypted with the channel's chat key. Prints JSON with the hex \
        WakuMessage, or with --ndjson one line in the format of `chs waku listen` (what \
        `chs store import --waku-ndjson` reads). The author's private key is never taken on the command \
        line: it is read from --author-key-file (`-`: stdin) or else from CHS_AUTHOR_KEY.")]
    Build {
        /// The community id.
        #[arg(long)]
        community: String,
        /// The channel: its uuid, or its full chat id (`<community id><uuid>`).
        #[arg(long)]
        channel: String,
        /// File holding the author's private key (64 hex digits), or `-` for stdin. Default: $CHS_AUTHOR_KEY.
        #[arg(long, value_name = "PATH")]
        author_key_file: Option<PathBuf>,
        /// Message text.
        #[arg(long)]
        text: String,
        /// Lamport clock (default: --timestamp-ms).
        #[arg(long)]
        clock: Option<u64>,
        /// When the message was sent, Unix milliseconds (default: now); also the WakuMessage timestamp.
        #[arg(long)]
        timestamp_ms: Option<u64>,
        /// Author display name.
        #[arg(long, default_value = "")]
        display_name: String,
        /// Pubsub topic (for --ndjson and the message hash).
        #[arg(long, default_value = DEFAULT_PUBSUB_TOPIC)]
        pubsub_topic: String,
        /// Print one JSON line in the `chs waku listen` format.
        #[arg(long)]
        ndjson: bool,
    },
}

/// The chat a magnetlink is sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Channel {
    /// `<id>-magnetlinks` (status-go c72f491).
    Magnetlinks,
    /// `<id>-memberUpdate` (newer status-go).
    MemberUpdate,
}

/// Reads a required private key and checks it, naming where it came from when it is unusable.
fn private_key(source: util::KeySource<'_>) -> anyhow::Result<String> {
    let key = source.required()?;
    chs_community::parse_private_key(&key)
        .with_context(|| format!("the key from {} is not a valid secp256k1 private key", source.origin()))?;
    Ok(key)
}

pub(crate) fn run(cmd: StatusCommand) -> anyhow::Result<ExitCode> {
    let cache = ChatKeyCache::new();
    match cmd {
        StatusCommand::Magnetlink(MagnetlinkCommand::Build {
            community_key_file,
            identity_key_file,
            magnet,
            clock,
            channel,
            installation_id,
            pubsub_topic,
            hex,
        }) => {
            anyhow::ensure!(magnet.starts_with("magnet:?"), "--magnet {magnet:?} is not a magnet link (magnet:?…)");
            util::one_stdin(&[
                ("--community-key-file", community_key_file.as_deref()),
                ("--identity-key-file", identity_key_file.as_deref()),
            ])?;
            let community_key = private_key(util::KeySource {
                file: community_key_file.as_deref(),
                flag: "--community-key-file",
                env: "CHS_COMMUNITY_KEY",
            })?;
            let identity_key = private_key(util::KeySource {
                file: identity_key_file.as_deref(),
                flag: "--identity-key-file",
                env: "CHS_IDENTITY_KEY",
            })?;
            let installation_id = match installation_id {
                Some(i) => i,
                None => chs_community::generate_installation_id()?,
            };
            let args = MagnetlinkBuildArgs {
                community_key_hex: &community_key,
                identity_key_hex: &identity_key,
                magnet_uri: &magnet,
                clock,
                timestamp_ns: util::now_ns(),
                installation_id: &installation_id,
                channel: match channel {
                    Channel::Magnetlinks => MagnetlinkChannel::Magnetlinks,
                    Channel::MemberUpdate => MagnetlinkChannel::MemberUpdate,
                },
                pubsub_topic: pubsub_topic.as_deref(),
            };
            let out = magnetlink_build(&args, &cache)?;
            if hex {
                println!("{}", out.waku_message);
            } else {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        StatusCommand::Decode { community, hex, pubsub_topic, verbose } => {
            let hex = util::arg_or_stdin(&hex, "the WakuMessage")?;
            let out = decode(&community, &hex, pubsub_topic.as_deref(), verbose, &cache)
                .with_context(|| format!("decoding with community {community:?}"))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(if out.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        StatusCommand::Topic { chat_id, json } => {
            anyhow::ensure!(!chat_id.is_empty(), "the chat id is empty");
            let out = topic(&chat_id, &cache);
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("chat id:       {}", out.chat_id);
                println!("topic:         {}", out.topic);
                println!("content topic: {}", out.content_topic);
                println!("key:           {}", out.key);
            }
            Ok(ExitCode::SUCCESS)
        }
        StatusCommand::Chat(ChatCommand::Build {
            community,
            channel,
            author_key_file,
            text,
            clock,
            timestamp_ms,
            display_name,
            pubsub_topic,
            ndjson,
        }) => {
            let community = util::parse_community_id(&community)?;
            let prefix = community.to_string();
            let uuid = channel.strip_prefix(&prefix).unwrap_or(&channel);
            anyhow::ensure!(!uuid.is_empty(), "--channel is empty: give the channel uuid or its chat id");
            let author_key = private_key(util::KeySource {
                file: author_key_file.as_deref(),
                flag: "--author-key-file",
                env: "CHS_AUTHOR_KEY",
            })?;
            let author = chs_community::parse_private_key(&author_key)?;
            let timestamp_ms = timestamp_ms.unwrap_or_else(|| u64::try_from(util::now_ms()).unwrap_or(0));
            let timestamp_ns = i64::try_from(timestamp_ms)
                .ok()
                .and_then(|ms| ms.checked_mul(1_000_000))
                .context("--timestamp-ms is out of range")?;
            let installation_id = chs_community::generate_installation_id()?;
            let params = ChatMessageParams {
                author: &author,
                community: &community,
                channel_uuid: uuid,
                text: &text,
                clock: clock.unwrap_or(timestamp_ms),
                timestamp_ms,
                display_name: &display_name,
                installation_id: &installation_id,
                bundle: None,
                timestamp_ns,
                padding: Padding::Random,
                nonce: NonceSource::Random,
            };
            let built = build_chat_message(&params, &cache).context("building the chat message")?;
            let message = &built.waku_message;
            if ndjson {
                let line = serde_json::json!({
                    "pubsub_topic": pubsub_topic,
                    "content_topic": message.content_topic,
                    "payload_hex": hex::encode(&message.payload),
                    "version": message.version,
                    "timestamp": message.timestamp,
                    "meta_hex": message.meta.as_ref().map(hex::encode),
                    "ephemeral": message.ephemeral,
                    "message_hash": hex::encode(chs_proto::waku::message_hash(&pubsub_topic, message)),
                });
                println!("{line}");
            } else {
                let out = serde_json::json!({
                    "waku_message": hex::encode(built.encoded()),
                    "content_topic": built.content_topic,
                    "pubsub_topic": pubsub_topic,
                    "chat_id": built.chat_id,
                    "message_id": format!("0x{}", hex::encode(built.message_id)),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
