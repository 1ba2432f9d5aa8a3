//! The magnetlink stack: `CommunityMessageArchiveMagnetlink` (type 43, signed by the community
//! key) in the generic envelope, built and parsed, and status-go's stateless member rule.

use chs_proto::protobuf::CommunityMessageArchiveMagnetlink;
use chs_proto::waku::WakuMessage;
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_waku_payload::{NonceSource, Padding, PublicKey, SecretKey};

use crate::envelope::{BuildError, BuiltMessage, EnvelopeParams, build_status_message, open_envelope, unwrap_status};
use crate::ids::{CommunityId, MagnetlinkChannel};
use crate::keys::{ChatKeyCache, ChatKeyRing};
use crate::layers::MessageLayers;
use crate::link::{LinkKind, UsableLinks, classify_link};
use crate::reject::RejectReason;

/// The AMM type of a magnetlink: `COMMUNITY_MESSAGE_ARCHIVE_MAGNETLINK` = 43.
pub const MAGNETLINK_TYPE: ApplicationMetadataMessageType =
    ApplicationMetadataMessageType::CommunityMessageArchiveMagnetlink;

/// What a control node needs to announce a magnetlink.
#[derive(Debug, Clone)]
pub struct MagnetlinkParams<'a> {
    /// The community private key (signs the AMM; its public key is the community id).
    pub community_key: &'a SecretKey,
    /// The control node's identity key (signs the 26/WAKU2 payload and the bundle).
    pub identity_key: &'a SecretKey,
    /// The magnet URI.
    pub magnet_uri: &'a str,
    /// Clock: Unix milliseconds.
    pub clock: u64,
    /// The control node's installation id.
    pub installation_id: &'a str,
    /// Optional bundle of the identity (see [`crate::bundle::build_bundle`]).
    pub bundle: Option<chs_proto::encryption::Bundle>,
    /// `WakuMessage.timestamp`, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Chat to send on (`-magnetlinks` by default).
    pub channel: MagnetlinkChannel,
    /// Padding source (random in production).
    pub padding: Padding,
    /// Nonce source (random in production).
    pub nonce: NonceSource,
}

/// Builds the magnetlink `WakuMessage` exactly as status-go's `dispatchMagnetlinkMessage`
/// (2024, on `-magnetlinks`) or today's `dispatchArchiveLinkMessage` (with
/// [`MagnetlinkChannel::MemberUpdate`]: `CommunityMessageArchiveLink` is the same bytes).
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_magnetlink(params: &MagnetlinkParams<'_>, cache: &ChatKeyCache) -> Result<BuiltMessage, BuildError> {
    let community = CommunityId::from_secret_key(params.community_key);
    let chat_key = cache.chat_key(&params.channel.chat_id(&community));
    let inner = CommunityMessageArchiveMagnetlink { clock: params.clock, magnet_uri: params.magnet_uri.to_owned() }
        .encode_to_vec();
    let envelope = EnvelopeParams {
        chat_key: &chat_key,
        transport_key: params.identity_key,
        installation_id: params.installation_id,
        bundle: params.bundle.clone(),
        timestamp_ns: params.timestamp_ns,
        padding: params.padding.clone(),
        nonce: params.nonce,
    };
    build_status_message(inner, MAGNETLINK_TYPE, params.community_key, &envelope)
}

/// A magnetlink that passed every layer and is signed by the community key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MagnetlinkVerdict {
    /// The community whose key signed it.
    pub community_id: CommunityId,
    /// Clock, Unix milliseconds.
    pub clock: u64,
    /// The magnet URI (opaque).
    pub magnet_uri: String,
    /// The AMM signer (or the transport signer if the AMM is unsigned): the community key.
    #[serde(serialize_with = "crate::serde_hex::key")]
    pub signer: PublicKey,
    /// Whether the AMM itself was signed (status-go also accepts an unsigned AMM whose payload
    /// the community key signed).
    pub amm_signed: bool,
    /// The 26/WAKU2 payload signer: the control node's identity.
    #[serde(serialize_with = "crate::serde_hex::key")]
    pub transport_signer: PublicKey,
    /// status-go's message id.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub message_id: [u8; 32],
    /// The chat it arrived on.
    pub chat_id: String,
    /// Every layer.
    pub layers: MessageLayers,
}

/// Parses a received `WakuMessage` as a magnetlink of `community`, trying the keys of `ring`
/// (normally [`ChatKeyRing::for_magnetlinks`]).
///
/// # Errors
/// The [`RejectReason`] of the first layer that fails: topic, version, decryption, payload,
/// signature, segment, bundle, AMM, type ≠ 43, signer ≠ community key, inner message.
pub fn parse_magnetlink(
    message: &WakuMessage,
    pubsub_topic: &str,
    community: &CommunityId,
    ring: &ChatKeyRing,
) -> Result<MagnetlinkVerdict, RejectReason> {
    let result = parse_inner(message, pubsub_topic, community, ring);
    if let Err(reason) = &result {
        tracing::debug!(community_id = %community, %reason, "magnetlink rejected");
    }
    result
}

fn parse_inner(
    message: &WakuMessage,
    pubsub_topic: &str,
    community: &CommunityId,
    ring: &ChatKeyRing,
) -> Result<MagnetlinkVerdict, RejectReason> {
    let opened = open_envelope(message, ring)?;
    let status = unwrap_status(opened.payload.data(), &opened.transport_signer)?;
    if status.amm.r#type != MAGNETLINK_TYPE as i32 {
        return Err(RejectReason::WrongType { expected: MAGNETLINK_TYPE as i32, found: status.amm.r#type });
    }
    if status.signer != *community.public_key() {
        return Err(RejectReason::NotSignedByCommunity {
            signer: status.signer.to_string(),
            community: community.to_string(),
        });
    }
    let inner = CommunityMessageArchiveMagnetlink::decode(status.amm.payload.as_slice())
        .map_err(|error| RejectReason::MalformedInner { detail: error.to_string() })?;
    let layers = MessageLayers::collect(message, pubsub_topic, &opened, &status);
    Ok(MagnetlinkVerdict {
        community_id: *community,
        clock: inner.clock,
        magnet_uri: inner.magnet_uri,
        signer: status.signer,
        amm_signed: status.amm_signer.is_some(),
        transport_signer: opened.transport_signer,
        message_id: status.message_id,
        chat_id: opened.chat_key.chat_id.clone(),
        layers,
    })
}

impl MagnetlinkVerdict {
    /// What the link names, by form ([`classify_link`]).
    ///
    /// # Errors
    /// [`RejectReason::EmptyLink`] or [`RejectReason::MalformedLink`].
    pub fn link_kind(&self) -> Result<LinkKind, RejectReason> {
        classify_link(&self.magnet_uri)
    }
}

/// What a member has stored about a community, for [`accept_magnetlink`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MagnetlinkState {
    /// Whether this node is the community's control node (it ignores its own echo).
    pub is_control_node: bool,
    /// Whether this node has joined the community.
    pub joined: bool,
    /// Stored magnetlink clock: `max(communities_archive_info.magnetlink_clock,
    /// CommunityDescription.archive_magnetlink_clock)`; 0 if none.
    pub last_clock: u64,
    /// The last magnet URI fully fetched, if any.
    pub last_uri: Option<String>,
    /// The link kinds this node's backends fetch (torrent only by default).
    pub usable_links: UsableLinks,
}

/// status-go's member rule (`HandleHistoryArchiveMagnetlinkMessage`): the signer is the community
/// key, the receiver has joined and is not the control node, `clock >= stored clock` (not `>`),
/// and the URI differs from the last one fully fetched. Beyond status-go, the link must be
/// usable by this node ([`classify_link`], [`MagnetlinkState::usable_links`]): an empty link, one
/// that is neither a magnet nor a CID, or one of a kind no backend here fetches is refused, and
/// refused before the clock rule so that the caller changes no state (status-go advances the
/// clock and drops the current seed first: a bug not copied).
///
/// # Errors
/// The first rule that fails, as a [`RejectReason`].
pub fn accept_magnetlink(
    parsed: &MagnetlinkVerdict,
    community_id: &CommunityId,
    state: &MagnetlinkState,
) -> Result<(), RejectReason> {
    if parsed.community_id != *community_id || parsed.signer != *community_id.public_key() {
        return Err(RejectReason::NotSignedByCommunity {
            signer: parsed.signer.to_string(),
            community: community_id.to_string(),
        });
    }
    if state.is_control_node {
        return Err(RejectReason::ControlNode);
    }
    if !state.joined {
        return Err(RejectReason::NotJoined);
    }
    let kind = classify_link(&parsed.magnet_uri)?;
    if !state.usable_links.allows(kind) {
        return Err(RejectReason::UnusableLink { kind, link: parsed.magnet_uri.clone() });
    }
    if parsed.clock < state.last_clock {
        return Err(RejectReason::StaleClock { clock: parsed.clock, stored: state.last_clock });
    }
    if state.last_uri.as_deref() == Some(parsed.magnet_uri.as_str()) {
        return Err(RejectReason::AlreadyFetched { magnet_uri: parsed.magnet_uri.clone() });
    }
    Ok(())
}
