//! What the `chs status …` commands print, as serialisable results (the binary parses
//! arguments, reads the clock and prints the JSON; this module stays pure).

use chs_proto::Message as _;
use chs_proto::waku::WakuMessage;
use chs_waku_payload::{KeyError, NonceSource, Padding, SecretKey};

use chs_status::RejectReason;
use chs_status::envelope::BuildError;
use chs_status::ids::{CommunityId, DEFAULT_PUBSUB_TOPIC, IdError, MagnetlinkChannel};
use chs_status::keys::{ChatKeyCache, ChatKeyRing};
use chs_status::layers::MessageLayers;
use chs_status::magnetlink::{MagnetlinkParams, build_magnetlink, parse_magnetlink};

/// A bad command-line argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CliError {
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
pub(crate) struct MagnetlinkBuildArgs<'a> {
    /// The community key, hex (from `--community-key-file` or `CHS_COMMUNITY_KEY`).
    pub(crate) community_key_hex: &'a str,
    /// The identity key, hex (from `--identity-key-file` or `CHS_IDENTITY_KEY`).
    pub(crate) identity_key_hex: &'a str,
    /// `--magnet URI`.
    pub(crate) magnet_uri: &'a str,
    /// `--clock MS`.
    pub(crate) clock: u64,
    /// Now, Unix nanoseconds (read by the binary).
    pub(crate) timestamp_ns: i64,
    /// Installation id to put in the `ProtocolMessage`.
    pub(crate) installation_id: &'a str,
    /// Chat to send on.
    pub(crate) channel: MagnetlinkChannel,
    /// Pubsub topic (`None` = `/waku/2/rs/16/32`).
    pub(crate) pubsub_topic: Option<&'a str>,
}

/// Output of `chs status magnetlink build`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MagnetlinkBuildOutput {
    /// The encoded `WakuMessage`, lowercase hex.
    pub(crate) waku_message: String,
    /// Its content topic.
    pub(crate) content_topic: String,
    /// The pubsub topic to publish it on.
    pub(crate) pubsub_topic: String,
    /// The chat id.
    pub(crate) chat_id: String,
    /// The community id.
    pub(crate) community_id: CommunityId,
    /// status-go's message id, `0x` hex.
    pub(crate) message_id: String,
}

/// `chs status magnetlink build`.
///
/// # Errors
/// [`CliError`] for bad arguments.
pub(crate) fn magnetlink_build(
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
pub(crate) struct DecodeOutput {
    /// Whether the message is a valid magnetlink of the community.
    pub(crate) ok: bool,
    /// The reject reason's name, when not ok.
    pub(crate) reason: Option<&'static str>,
    /// The reject reason in words, when not ok.
    pub(crate) detail: Option<String>,
    /// Clock, Unix milliseconds.
    pub(crate) clock: Option<u64>,
    /// The magnet URI.
    pub(crate) magnet_uri: Option<String>,
    /// The signer, `0x` + compressed hex.
    pub(crate) signer: Option<String>,
    /// status-go's message id.
    pub(crate) message_id: Option<String>,
    /// Every layer (with `--verbose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) layers: Option<MessageLayers>,
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
pub(crate) fn decode(
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
pub(crate) struct TopicOutput {
    /// The chat id.
    pub(crate) chat_id: String,
    /// `0x` + 8 hex digits.
    pub(crate) topic: String,
    /// `/waku/1/0x…/rfc26`.
    pub(crate) content_topic: String,
    /// The symmetric key, `0x` hex.
    pub(crate) key: String,
}

/// `chs status topic CHAT_ID`.
#[must_use]
pub(crate) fn topic(chat_id: &str, cache: &ChatKeyCache) -> TopicOutput {
    let chat_key = cache.chat_key(chat_id);
    TopicOutput {
        chat_id: chat_id.to_owned(),
        topic: chat_key.topic.to_string(),
        content_topic: chat_key.content_topic(),
        key: format!("0x{}", hex::encode(chat_key.key.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use chs_status::{CommunityId, DEFAULT_PUBSUB_TOPIC, MagnetlinkChannel, Topic};

    use super::*;

    fn cache() -> &'static ChatKeyCache {
        static CACHE: std::sync::OnceLock<ChatKeyCache> = std::sync::OnceLock::new();
        CACHE.get_or_init(ChatKeyCache::new)
    }

    fn key(label: &str) -> SecretKey {
        SecretKey::from_bytes(&chs_waku_payload::keccak256(label.as_bytes())).expect("key")
    }

    #[test]
    fn cli_build_decode_and_topic() {
        let community_key = key("c9");
        let identity = key("i9");
        let args = MagnetlinkBuildArgs {
            community_key_hex: &hex::encode(community_key.to_bytes()),
            identity_key_hex: &format!("0x{}", hex::encode(identity.to_bytes())),
            magnet_uri: "magnet:?xt=urn:btih:cc",
            clock: 1234,
            timestamp_ns: 1,
            installation_id: "chs",
            channel: MagnetlinkChannel::Magnetlinks,
            pubsub_topic: None,
        };
        let built = magnetlink_build(&args, cache()).expect("build");
        assert_eq!(built.pubsub_topic, DEFAULT_PUBSUB_TOPIC);
        let community = CommunityId::from_secret_key(&community_key);
        assert_eq!(built.content_topic, Topic::from_chat_id(&community.magnetlinks_chat_id()).content_topic());
        let decoded = decode(&community.to_string(), &built.waku_message, None, true, cache()).expect("decode");
        assert!(decoded.ok);
        assert_eq!(decoded.clock, Some(1234));
        assert_eq!(decoded.signer.as_deref(), Some(community.to_string().as_str()));
        assert_eq!(decoded.message_id.as_deref(), Some(built.message_id.as_str()));
        let json = serde_json::to_value(&decoded).expect("json");
        assert_eq!(json["layers"]["amm_type"], 43);
        let terse = decode(&community.to_string(), &built.waku_message, None, false, cache()).expect("decode");
        assert!(serde_json::to_value(&terse).expect("json").get("layers").is_none());

        let other = CommunityId::from_secret_key(&key("c10"));
        let rejected = decode(&other.to_string(), &built.waku_message, None, false, cache()).expect("decode");
        assert!(!rejected.ok);
        assert_eq!(rejected.reason, Some("unknown_topic"));
        let garbage = decode(&community.to_string(), "ffff", None, false, cache()).expect("decode");
        assert_eq!(garbage.reason, Some("malformed_waku_message"));
        assert!(matches!(decode("nope", "00", None, false, cache()), Err(CliError::CommunityId(_))));
        assert!(matches!(decode(&community.to_string(), "zz", None, false, cache()), Err(CliError::Hex { .. })));
        let bad_key = MagnetlinkBuildArgs { community_key_hex: "00", ..args };
        assert!(matches!(magnetlink_build(&bad_key, cache()), Err(CliError::Key { what: "the community key", .. })));

        let topic = topic("status", cache());
        assert_eq!(topic.topic, "0xcd423760");
        assert_eq!(topic.content_topic, "/waku/1/0xcd423760/rfc26");
        assert_eq!(topic.key, "0x36224048e42c49e5c59c57bba5024fbb8822d6b4ee6ac5fbefd8b77f5323ecc4");
    }
}
