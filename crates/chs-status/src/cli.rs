//! What the `chs status …` commands print, as serialisable results (the binary parses
//! arguments, reads the clock and prints the JSON; this module stays pure).

use chs_proto::Message as _;
use chs_proto::waku::WakuMessage;
use chs_waku_payload::{KeyError, NonceSource, Padding, SecretKey};

use crate::envelope::BuildError;
use crate::ids::{CommunityId, DEFAULT_PUBSUB_TOPIC, IdError, MagnetlinkChannel};
use crate::keys::{ChatKeyCache, ChatKeyRing};
use crate::layers::MessageLayers;
use crate::magnetlink::{MagnetlinkParams, build_magnetlink, parse_magnetlink};
use crate::reject::RejectReason;

/// A bad command-line argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// An argument is not hex.
    #[error("{what} is not hex")]
    Hex {
        /// Which argument.
        what: &'static str,
    },
    /// A key argument is not a valid key.
    #[error("{what} is not a valid secp256k1 key")]
    Key {
        /// Which argument.
        what: &'static str,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The community id is invalid.
    #[error("invalid community id")]
    CommunityId(#[source] IdError),
    /// Building failed.
    #[error("cannot build the message")]
    Build(#[source] BuildError),
}

fn parse_hex(text: &str, what: &'static str) -> Result<Vec<u8>, CliError> {
    let digits = text.trim().strip_prefix("0x").unwrap_or_else(|| text.trim());
    hex::decode(digits).map_err(|_| CliError::Hex { what })
}

fn parse_secret(text: &str, what: &'static str) -> Result<SecretKey, CliError> {
    SecretKey::from_bytes(&parse_hex(text, what)?).map_err(|source| CliError::Key { what, source })
}

/// Arguments of `chs status magnetlink build`.
#[derive(Debug, Clone)]
pub struct MagnetlinkBuildArgs<'a> {
    /// The community key, hex (from `--community-key-file` or `CHS_COMMUNITY_KEY`).
    pub community_key_hex: &'a str,
    /// The identity key, hex (from `--identity-key-file` or `CHS_IDENTITY_KEY`).
    pub identity_key_hex: &'a str,
    /// `--magnet URI`.
    pub magnet_uri: &'a str,
    /// `--clock MS`.
    pub clock: u64,
    /// Now, Unix nanoseconds (read by the binary).
    pub timestamp_ns: i64,
    /// Installation id to put in the `ProtocolMessage`.
    pub installation_id: &'a str,
    /// Chat to send on.
    pub channel: MagnetlinkChannel,
    /// Pubsub topic (`None` = `/waku/2/rs/16/32`).
    pub pubsub_topic: Option<&'a str>,
}

/// Output of `chs status magnetlink build`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MagnetlinkBuildOutput {
    /// The encoded `WakuMessage`, lowercase hex.
    pub waku_message: String,
    /// Its content topic.
    pub content_topic: String,
    /// The pubsub topic to publish it on.
    pub pubsub_topic: String,
    /// The chat id.
    pub chat_id: String,
    /// The community id.
    pub community_id: CommunityId,
    /// status-go's message id, `0x` hex.
    pub message_id: String,
}

/// `chs status magnetlink build`.
///
/// # Errors
/// [`CliError`] for bad arguments.
pub fn magnetlink_build(
    args: &MagnetlinkBuildArgs<'_>,
    cache: &ChatKeyCache,
) -> Result<MagnetlinkBuildOutput, CliError> {
    let community_key = parse_secret(args.community_key_hex, "the community key")?;
    let identity_key = parse_secret(args.identity_key_hex, "the identity key")?;
    let params = MagnetlinkParams {
        community_key: &community_key,
        identity_key: &identity_key,
        magnet_uri: args.magnet_uri,
        clock: args.clock,
        installation_id: args.installation_id,
        bundle: None,
        timestamp_ns: args.timestamp_ns,
        channel: args.channel,
        padding: Padding::Random,
        nonce: NonceSource::Random,
    };
    let built = build_magnetlink(&params, cache).map_err(CliError::Build)?;
    Ok(MagnetlinkBuildOutput {
        waku_message: hex::encode(built.encoded()),
        content_topic: built.content_topic,
        pubsub_topic: args.pubsub_topic.unwrap_or(DEFAULT_PUBSUB_TOPIC).to_owned(),
        chat_id: built.chat_id,
        community_id: CommunityId::from_secret_key(&community_key),
        message_id: format!("0x{}", hex::encode(built.message_id)),
    })
}

/// Output of `chs status decode`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecodeOutput {
    /// Whether the message is a valid magnetlink of the community.
    pub ok: bool,
    /// The reject reason's name, when not ok.
    pub reason: Option<&'static str>,
    /// The reject reason in words, when not ok.
    pub detail: Option<String>,
    /// Clock, Unix milliseconds.
    pub clock: Option<u64>,
    /// The magnet URI.
    pub magnet_uri: Option<String>,
    /// The signer, `0x` + compressed hex.
    pub signer: Option<String>,
    /// status-go's message id.
    pub message_id: Option<String>,
    /// Every layer (with `--verbose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<MessageLayers>,
}

impl DecodeOutput {
    fn rejected(reason: &RejectReason) -> Self {
        Self {
            ok: false,
            reason: Some(reason.kind().as_str()),
            detail: Some(reason.to_string()),
            clock: None,
            magnet_uri: None,
            signer: None,
            message_id: None,
            layers: None,
        }
    }
}

/// `chs status decode --community ID HEX`: parses an encoded `WakuMessage` as a magnetlink of
/// the community (listening on both magnetlink chats). A rejection is `ok: false`, not an error.
///
/// # Errors
/// [`CliError`] if the community id or the hex is invalid.
pub fn decode(
    community: &str,
    waku_message_hex: &str,
    pubsub_topic: Option<&str>,
    verbose: bool,
    cache: &ChatKeyCache,
) -> Result<DecodeOutput, CliError> {
    let community = CommunityId::parse(community.trim()).map_err(CliError::CommunityId)?;
    let bytes = parse_hex(waku_message_hex, "the WakuMessage")?;
    let message = match WakuMessage::decode(bytes.as_slice()) {
        Ok(message) => message,
        Err(error) => {
            return Ok(DecodeOutput::rejected(&RejectReason::MalformedWakuMessage { detail: error.to_string() }));
        }
    };
    let ring = ChatKeyRing::for_magnetlinks(&community, cache);
    let pubsub_topic = pubsub_topic.unwrap_or(DEFAULT_PUBSUB_TOPIC);
    Ok(match parse_magnetlink(&message, pubsub_topic, &community, &ring) {
        Ok(verdict) => DecodeOutput {
            ok: true,
            reason: None,
            detail: None,
            clock: Some(verdict.clock),
            magnet_uri: Some(verdict.magnet_uri),
            signer: Some(verdict.signer.to_string()),
            message_id: Some(format!("0x{}", hex::encode(verdict.message_id))),
            layers: verbose.then_some(verdict.layers),
        },
        Err(reason) => DecodeOutput::rejected(&reason),
    })
}

/// Output of `chs status topic CHAT_ID`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopicOutput {
    /// The chat id.
    pub chat_id: String,
    /// `0x` + 8 hex digits.
    pub topic: String,
    /// `/waku/1/0x…/rfc26`.
    pub content_topic: String,
    /// The symmetric key, `0x` hex.
    pub key: String,
}

/// `chs status topic CHAT_ID`.
#[must_use]
pub fn topic(chat_id: &str, cache: &ChatKeyCache) -> TopicOutput {
    let chat_key = cache.chat_key(chat_id);
    TopicOutput {
        chat_id: chat_id.to_owned(),
        topic: chat_key.topic.to_string(),
        content_topic: chat_key.content_topic(),
        key: format!("0x{}", hex::encode(chat_key.key.as_bytes())),
    }
}
