//! The community as a Status client sees it: the signed `CommunityDescription` (AMM type 25,
//! `COMMUNITY_DESCRIPTION`) and the signed `CommunityPublicShardInfo` (AMM type 79), parsed,
//! verified and built.
//!
//! Read from status-go c72f491:
//! - The control node publishes the description with `SkipEncryptionLayer` (a bare AMM in the
//!   26/WAKU2 payload) on chat `IDString()` over the community's pubsub topic
//!   (`protocol/messenger_communities.go` `publishOrg`).
//! - A receiver takes the community id from `description.ID` (or the signer for old
//!   communities), requires the signer to be the control node (the community key unless the
//!   community has an owner token, whose on-chain holder is the control node: chs takes that key
//!   from the operator, [`description_from_amm_with`]) and `ValidateCommunityDescription`
//!   (`protocol/communities/manager.go` `HandleCommunityDescriptionMessage`,
//!   `protocol/communities/validator.go`).
//! - `Community.Encrypted()` is "has a `BECOME_MEMBER` token permission"
//!   (`protocol/communities/community.go:1178-1180`); an encrypted community moves its chats,
//!   members and categories into `privateData` (`community_description_encryption.go`), so a
//!   reader without the hash-ratchet key sees no channels ([`Description::channels_hidden`]).
//! - The shard is not in the description: `SetCommunityShard` publishes a
//!   `CommunityPublicShardInfo` (signature by the community key over the encoded
//!   `PublicShardInfo`) on chat `<id>-shard-info` over `/waku/2/rs/16/64`
//!   (`protocol/messenger_community_shard.go`); receivers keep it only if its clock is strictly
//!   newer (`persistence.go` `SaveCommunityShard`). The topic key travels only to members, encrypted
//!   (`COMMUNITY_SHARD_KEY`), so chs takes it from configuration.
//!
//! The clock rules (description: older refused, equal re-applied; shard: strictly newer) are applied
//! by the community crate; this module is pure.

use chs_proto::protobuf::{
    ApplicationMetadataMessage, ChatIdentity, CommunityChat, CommunityDescription, CommunityPermissions,
    CommunityPublicShardInfo, CommunityTokenPermission, PublicShardInfo, Shard as ShardProto,
};
use chs_proto::waku::WakuMessage;
use chs_proto::{ApplicationMetadataMessageType, Message as _};
use chs_waku_payload::{PublicKey, SecretKey, keccak256};

use crate::amm::sign_amm;
use crate::envelope::{BuildError, BuiltMessage, EnvelopeParams, open_envelope, unwrap_status};
use crate::ids::{CommunityId, Topic};
use crate::keys::{ChatKey, ChatKeyCache, ChatKeyRing};
use crate::reject::RejectReason;

/// The AMM type of a community description: `COMMUNITY_DESCRIPTION`.
pub const DESCRIPTION_TYPE: ApplicationMetadataMessageType = ApplicationMetadataMessageType::CommunityDescription;
/// The AMM type of a public shard info: `COMMUNITY_PUBLIC_SHARD_INFO`.
pub const SHARD_INFO_TYPE: ApplicationMetadataMessageType = ApplicationMetadataMessageType::CommunityPublicShardInfo;
/// The chat-id suffix of the shard info (status-go `CommunityShardInfoTopicPrefix()`).
pub const SHARD_INFO_SUFFIX: &str = "-shard-info";
/// The pubsub topic the shard info is always sent on (status-go `DefaultNonProtectedPubsubTopic()`).
pub const NON_PROTECTED_PUBSUB_TOPIC: &str = "/waku/2/rs/16/64";
/// status-go's `CommunityTokenPermission_BECOME_MEMBER`.
pub const BECOME_MEMBER: i32 = 2;
/// status-go's `CommunityTokenPermission_BECOME_TOKEN_OWNER`.
pub const BECOME_TOKEN_OWNER: i32 = 6;
/// status-go's `CommunityPermissions_UNKNOWN_ACCESS` (refused by its validator).
const UNKNOWN_ACCESS: i32 = 0;

/// `<id>-shard-info` (status-go `transport.CommunityShardInfoTopic`).
#[must_use]
pub fn shard_info_chat_id(community: &CommunityId) -> String {
    format!("{community}{SHARD_INFO_SUFFIX}")
}

/// A Waku static shard (status-go `shard.Shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Cluster id (16 for Status).
    pub cluster: u16,
    /// Shard index.
    pub index: u16,
}

impl Shard {
    /// status-go's default community shard, `/waku/2/rs/16/32`.
    pub const DEFAULT: Shard = Shard { cluster: 16, index: 32 };

    /// `/waku/2/rs/<cluster>/<index>`.
    #[must_use]
    pub fn pubsub_topic(&self) -> String {
        format!("/waku/2/rs/{}/{}", self.cluster, self.index)
    }

    /// The shard of a `/waku/2/rs/<cluster>/<index>` topic, if it is one.
    #[must_use]
    pub fn from_pubsub_topic(topic: &str) -> Option<Shard> {
        let rest = topic.strip_prefix("/waku/2/rs/")?;
        let (cluster, index) = rest.split_once('/')?;
        Some(Shard { cluster: cluster.parse().ok()?, index: index.parse().ok()? })
    }

    /// status-go's `FromProtobuff`: `uint16` casts of the two `int32`s. Values outside `u16` are
    /// refused here instead of being truncated.
    fn from_proto(proto: &ShardProto) -> Result<Shard, RejectReason> {
        let convert = |v: i32| u16::try_from(v).ok();
        match (convert(proto.cluster), convert(proto.index)) {
            (Some(cluster), Some(index)) => Ok(Shard { cluster, index }),
            _ => Err(RejectReason::InvalidDescription {
                detail: format!("shard {}/{} is out of range", proto.cluster, proto.index),
            }),
        }
    }
}

/// A channel of the community.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Channel {
    /// The channel uuid (the key of `CommunityDescription.chats`).
    pub uuid: String,
    /// `<community id><uuid>`.
    pub chat_id: String,
    /// Display name (`ChatIdentity.display_name`).
    pub name: String,
    /// Whether a token permission gates viewing it (status-go `channelEncrypted`: its messages are
    /// hash-ratchet encrypted).
    pub token_gated: bool,
}

impl Channel {
    /// The channel's 4-byte topic.
    #[must_use]
    pub fn topic(&self) -> Topic {
        Topic::from_chat_id(&self.chat_id)
    }
}

/// What chs keeps of a verified description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Description {
    /// The community.
    pub community_id: CommunityId,
    /// The description clock.
    pub clock: u64,
    /// `identity.display_name`.
    pub name: String,
    /// `identity.description`.
    pub about: String,
    /// The channels, by uuid.
    pub channels: Vec<Channel>,
    /// True when the community is encrypted and its channels are only in `privateData`: the
    /// channel list is then unknown, not empty.
    pub channels_hidden: bool,
    /// status-go `Community.Encrypted()`: a `BECOME_MEMBER` token permission exists.
    pub encrypted: bool,
    /// `permissions.access` (1 auto-accept, 3 manual accept).
    pub access: i32,
    /// Number of token permissions.
    pub token_permissions: usize,
    /// Field 9: `archive_magnetlink_clock` (2024) / `archive_link_clock` (2026).
    pub archive_link_clock: u64,
}

impl Description {
    /// The channel chat ids.
    #[must_use]
    pub fn chat_ids(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.chat_id.clone()).collect()
    }
}

/// A verified `CommunityPublicShardInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ShardInfo {
    /// The community.
    pub community_id: CommunityId,
    /// Its clock (the description clock when the shard was set).
    pub clock: u64,
    /// The shard; `None` = back to the default shard.
    pub shard: Option<Shard>,
}

/// The [`ChatKeyRing`] of the description chat.
#[must_use]
pub fn description_ring(community: &CommunityId, cache: &ChatKeyCache) -> ChatKeyRing {
    ChatKeyRing::from_chat_ids([community.description_chat_id().as_str()], cache)
}

/// The [`ChatKeyRing`] of the shard-info chat.
#[must_use]
pub fn shard_info_ring(community: &CommunityId, cache: &ChatKeyCache) -> ChatKeyRing {
    ChatKeyRing::from_chat_ids([shard_info_chat_id(community).as_str()], cache)
}

/// Parses a received `WakuMessage` as the description of `community` signed by its key, and
/// applies status-go's `ValidateCommunityDescription`. The clock rule is the caller's.
///
/// # Errors
/// The [`RejectReason`] of the first failed layer; [`RejectReason::NotSignedByCommunity`] for a
/// forged description; [`RejectReason::InvalidDescription`] for one status-go's validator refuses.
pub fn parse_description(
    message: &WakuMessage,
    community: &CommunityId,
    ring: &ChatKeyRing,
) -> Result<Description, RejectReason> {
    parse_description_with(message, community, ring, None)
}

/// [`parse_description`] with the control node the operator configured for `community`
/// (`control_node`), which then signs instead of the community key (an owner-token community:
/// see [`description_from_amm_with`]).
///
/// # Errors
/// As [`parse_description`]; [`RejectReason::NotControlNode`].
pub fn parse_description_with(
    message: &WakuMessage,
    community: &CommunityId,
    ring: &ChatKeyRing,
    control_node: Option<&PublicKey>,
) -> Result<Description, RejectReason> {
    let opened = open_envelope(message, ring)?;
    let status = unwrap_status(opened.payload.data(), &opened.transport_signer)?;
    description_from_amm_with(&status.amm, &status.signer, community, control_node)
}

/// The description carried by an AMM already unwrapped (signer = AMM signer, or the transport
/// signer if the AMM is unsigned): what `community_description_protocol_message` of a
/// request-to-join response also holds.
///
/// # Errors
/// As [`parse_description`].
pub fn description_from_amm(
    amm: &ApplicationMetadataMessage,
    signer: &PublicKey,
    community: &CommunityId,
) -> Result<Description, RejectReason> {
    description_from_amm_with(amm, signer, community, None)
}

/// [`description_from_amm`] with the control node the operator configured for `community`.
///
/// status-go (`HandleCommunityDescriptionMessage`) requires the signer to be the community's
/// control node: the community key, unless the community has an owner token
/// (`HasTokenOwnership`: a `BECOME_TOKEN_OWNER` permission with a contract on a chain), whose
/// holder, read from the chain, is the control node. chs cannot read the chain: a configured
/// `control_node` stands for it and must sign; without one the community key must (status-go
/// keeps a known community's control node until the chain says otherwise), and a description of
/// an owner-token community signed by another key is refused as [`RejectReason::NotControlNode`].
///
/// # Errors
/// As [`description_from_amm`]; [`RejectReason::NotControlNode`].
pub fn description_from_amm_with(
    amm: &ApplicationMetadataMessage,
    signer: &PublicKey,
    community: &CommunityId,
    control_node: Option<&PublicKey>,
) -> Result<Description, RejectReason> {
    if amm.r#type != DESCRIPTION_TYPE as i32 {
        return Err(RejectReason::WrongType { expected: DESCRIPTION_TYPE as i32, found: amm.r#type });
    }
    let proto = CommunityDescription::decode(amm.payload.as_slice())
        .map_err(|error| RejectReason::MalformedInner { detail: error.to_string() })?;
    check_control_node(signer, community, token_owner_chain_id(&proto), control_node)?;
    if !proto.id.is_empty() && !proto.id.eq_ignore_ascii_case(&community.to_string()) {
        return Err(RejectReason::NotSignedByCommunity { signer: proto.id, community: community.to_string() });
    }
    validate(&proto)?;
    Ok(view(community, &proto))
}

/// The chain of `proto`'s owner token (status-go `CommunityDescriptionTokenOwnerChainID`): the
/// first chain id of a `BECOME_TOKEN_OWNER` permission's token criteria; 0 if none.
#[must_use]
pub fn token_owner_chain_id(proto: &CommunityDescription) -> u64 {
    proto
        .token_permissions
        .values()
        .filter(|p| p.r#type == BECOME_TOKEN_OWNER)
        .flat_map(|p| &p.token_criteria)
        .find_map(|c| c.contract_addresses.keys().next().copied())
        .unwrap_or(0)
}

/// The signer rule of [`description_from_amm_with`].
fn check_control_node(
    signer: &PublicKey,
    community: &CommunityId,
    chain_id: u64,
    control_node: Option<&PublicKey>,
) -> Result<(), RejectReason> {
    let expected = control_node.unwrap_or(community.public_key());
    if signer == expected {
        return Ok(());
    }
    if control_node.is_none() && chain_id == 0 {
        return Err(RejectReason::NotSignedByCommunity {
            signer: signer.to_string(),
            community: community.to_string(),
        });
    }
    Err(not_control_node(signer, chain_id, control_node))
}

fn not_control_node(signer: &PublicKey, chain_id: u64, control_node: Option<&PublicKey>) -> RejectReason {
    RejectReason::NotControlNode {
        signer: signer.to_string(),
        chain_id,
        expected: control_node.map_or_else(
            || "none configured: its owner is on chain, `chs community control-node` sets it".to_owned(),
            |key| format!("the configured {key}"),
        ),
    }
}

/// status-go's `ValidateCommunityDescription` on the fields chs decodes (tags, members and
/// bloom filters are not decoded: their checks are skipped).
fn validate(proto: &CommunityDescription) -> Result<(), RejectReason> {
    let invalid = |detail: &str| Err(RejectReason::InvalidDescription { detail: detail.to_owned() });
    match &proto.permissions {
        None => return invalid("no community permissions"),
        Some(p) if p.access == UNKNOWN_ACCESS => return invalid("unknown community access"),
        Some(_) => {}
    }
    for category in proto.categories.values() {
        if category.category_id.is_empty() || category.name.is_empty() {
            return invalid("category without id or name");
        }
    }
    for (uuid, chat) in &proto.chats {
        match &chat.permissions {
            None => return invalid("channel without permissions"),
            Some(p) if p.access == UNKNOWN_ACCESS => return invalid("channel with unknown access"),
            Some(_) => {}
        }
        if !chat.category_id.is_empty() && !proto.categories.contains_key(&chat.category_id) {
            return invalid("channel in an unknown category");
        }
        if chat.identity.is_none() {
            return Err(RejectReason::InvalidDescription { detail: format!("channel {uuid} without identity") });
        }
    }
    Ok(())
}

fn view(community: &CommunityId, proto: &CommunityDescription) -> Description {
    let gated_chats: std::collections::BTreeSet<&str> = proto
        .token_permissions
        .values()
        .filter(|p| p.r#type == 3 || p.r#type == 4)
        .flat_map(|p| p.chat_ids.iter().map(String::as_str))
        .collect();
    let channels = proto
        .chats
        .iter()
        .map(|(uuid, chat)| {
            let chat_id = community.channel_chat_id(uuid);
            Channel {
                uuid: uuid.clone(),
                name: chat.identity.as_ref().map(|i| i.display_name.clone()).unwrap_or_default(),
                token_gated: gated_chats.contains(chat_id.as_str()),
                chat_id,
            }
        })
        .collect::<Vec<_>>();
    let encrypted = proto.token_permissions.values().any(|p| p.r#type == BECOME_MEMBER);
    Description {
        community_id: *community,
        clock: proto.clock,
        name: proto.identity.as_ref().map(|i| i.display_name.clone()).unwrap_or_default(),
        about: proto.identity.as_ref().map(|i| i.description.clone()).unwrap_or_default(),
        channels_hidden: channels.is_empty() && !proto.private_data.is_empty(),
        channels,
        encrypted,
        access: proto.permissions.as_ref().map_or(0, |p| p.access),
        token_permissions: proto.token_permissions.len(),
        archive_link_clock: proto.archive_magnetlink_clock,
    }
}

/// Parses a received `WakuMessage` as the public shard info of `community`: signature over the
/// payload by the community key (`verifyCommunitySignature`), `community_id` matching.
///
/// # Errors
/// The first failed layer; [`RejectReason::NotControlNode`] when `chainId > 0` (the owner is on
/// chain: use [`parse_shard_info_with`]); [`RejectReason::InvalidDescription`] when the shard is
/// out of range.
pub fn parse_shard_info(
    message: &WakuMessage,
    community: &CommunityId,
    ring: &ChatKeyRing,
) -> Result<ShardInfo, RejectReason> {
    parse_shard_info_with(message, community, ring, None)
}

/// [`parse_shard_info`] with the control node the operator configured for `community`: with
/// `chainId > 0` status-go checks the signature against the owner read from that chain
/// (`verifyCommunitySignature`); chs checks it against `control_node`, and refuses it without
/// one ([`RejectReason::NotControlNode`]).
///
/// # Errors
/// As [`parse_shard_info`].
pub fn parse_shard_info_with(
    message: &WakuMessage,
    community: &CommunityId,
    ring: &ChatKeyRing,
    control_node: Option<&PublicKey>,
) -> Result<ShardInfo, RejectReason> {
    let opened = open_envelope(message, ring)?;
    let status = unwrap_status(opened.payload.data(), &opened.transport_signer)?;
    if status.amm.r#type != SHARD_INFO_TYPE as i32 {
        return Err(RejectReason::WrongType { expected: SHARD_INFO_TYPE as i32, found: status.amm.r#type });
    }
    let signed = CommunityPublicShardInfo::decode(status.amm.payload.as_slice())
        .map_err(|error| RejectReason::MalformedInner { detail: error.to_string() })?;
    let signer = PublicKey::recover(&keccak256(&signed.payload), &signed.signature)
        .map_err(|error| RejectReason::BadAmmSignature { detail: error.to_string() })?;
    let info = PublicShardInfo::decode(signed.payload.as_slice())
        .map_err(|error| RejectReason::MalformedInner { detail: error.to_string() })?;
    // With `chainId == 0` the community key signs, whatever is configured; with `chainId > 0`
    // only the owner does (status-go asks the chain every time, no community-key fallback).
    if info.chain_id > 0 && control_node.is_none() {
        return Err(not_control_node(&signer, info.chain_id, None));
    }
    check_control_node(&signer, community, info.chain_id, control_node.filter(|_| info.chain_id > 0))?;
    if info.community_id != community.as_bytes() {
        return Err(RejectReason::NotSignedByCommunity {
            signer: format!("0x{}", hex::encode(&info.community_id)),
            community: community.to_string(),
        });
    }
    let shard = info.shard.as_ref().map(Shard::from_proto).transpose()?;
    Ok(ShardInfo { community_id: *community, clock: info.clock, shard })
}

/// What a control node (or a test) needs to publish a description.
#[derive(Debug, Clone)]
pub struct DescriptionParams<'a> {
    /// The community key (signs the AMM).
    pub community_key: &'a SecretKey,
    /// Signs the 26/WAKU2 payload (status-go: the sender's identity).
    pub transport_key: &'a SecretKey,
    /// The clock.
    pub clock: u64,
    /// Community name.
    pub name: &'a str,
    /// Channels: (uuid, name).
    pub channels: &'a [(String, String)],
    /// Whether to add a `BECOME_MEMBER` token permission (an encrypted community).
    pub encrypted: bool,
    /// Field 9.
    pub archive_link_clock: u64,
    /// `WakuMessage.timestamp`, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// An owner-token community: a `BECOME_TOKEN_OWNER` permission on this chain, and the AMM
    /// signed by this control-node key instead of the community key.
    pub owner_token: Option<(u64, &'a SecretKey)>,
}

/// Builds the description `WakuMessage` as status-go's `publishOrg` does (bare AMM, auto-accept,
/// every channel auto-accept with an identity).
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_description(params: &DescriptionParams<'_>, cache: &ChatKeyCache) -> Result<BuiltMessage, BuildError> {
    let community = CommunityId::from_secret_key(params.community_key);
    let access = Some(CommunityPermissions { ens_only: false, private: false, access: 1 });
    let chats = params
        .channels
        .iter()
        .map(|(uuid, name)| {
            let chat = CommunityChat {
                permissions: access,
                identity: Some(ChatIdentity { display_name: name.clone(), ..ChatIdentity::default() }),
                ..CommunityChat::default()
            };
            (uuid.clone(), chat)
        })
        .collect();
    let token_permissions = if params.encrypted {
        let permission = CommunityTokenPermission {
            id: "member".to_owned(),
            r#type: BECOME_MEMBER,
            token_criteria: Vec::new(),
            chat_ids: Vec::new(),
            is_private: false,
        };
        [("member".to_owned(), permission)].into_iter().collect()
    } else {
        std::collections::BTreeMap::new()
    };
    let mut token_permissions = token_permissions;
    if let Some((chain_id, _)) = params.owner_token {
        let criteria = chs_proto::protobuf::TokenCriteria {
            contract_addresses: [(chain_id, "0x0000000000000000000000000000000000000001".to_owned())].into(),
        };
        let permission = CommunityTokenPermission {
            id: "owner".to_owned(),
            r#type: BECOME_TOKEN_OWNER,
            token_criteria: vec![criteria],
            chat_ids: Vec::new(),
            is_private: false,
        };
        token_permissions.insert("owner".to_owned(), permission);
    }
    let proto = CommunityDescription {
        clock: params.clock,
        permissions: access,
        identity: Some(ChatIdentity { display_name: params.name.to_owned(), ..ChatIdentity::default() }),
        chats,
        archive_magnetlink_clock: params.archive_link_clock,
        token_permissions,
        id: community.to_string(),
        ..CommunityDescription::default()
    };
    let signer = params.owner_token.map_or(params.community_key, |(_, key)| key);
    let amm = sign_amm(proto.encode_to_vec(), DESCRIPTION_TYPE, signer);
    let chat_key = cache.chat_key(&community.description_chat_id());
    build_bare(&amm, signer, params.transport_key, &chat_key, params.timestamp_ns)
}

/// Builds the `CommunityPublicShardInfo` `WakuMessage` of `sendPublicCommunityShardInfo` (to be
/// published on [`NON_PROTECTED_PUBSUB_TOPIC`]).
///
/// # Errors
/// [`BuildError`] if the payload cannot be encoded.
pub fn build_shard_info(
    community_key: &SecretKey,
    transport_key: &SecretKey,
    clock: u64,
    shard: Option<Shard>,
    timestamp_ns: i64,
    cache: &ChatKeyCache,
) -> Result<BuiltMessage, BuildError> {
    let community = CommunityId::from_secret_key(community_key);
    let payload = PublicShardInfo {
        clock,
        community_id: community.as_bytes().to_vec(),
        shard: shard.map(|s| ShardProto { cluster: i32::from(s.cluster), index: i32::from(s.index) }),
        chain_id: 0,
    }
    .encode_to_vec();
    let signature = community_key.sign_prehash(&keccak256(&payload)).to_vec();
    let inner = CommunityPublicShardInfo { signature, payload }.encode_to_vec();
    let amm = sign_amm(inner, SHARD_INFO_TYPE, community_key);
    let chat_key = cache.chat_key(&shard_info_chat_id(&community));
    build_bare(&amm, community_key, transport_key, &chat_key, timestamp_ns)
}

/// `SkipEncryptionLayer` (how status-go sends descriptions and shard infos): the AMM bytes go
/// straight into the 26/WAKU2 payload, encrypted with `chat_key` and signed with `transport_key`,
/// with random padding and nonce. `author` is the key the AMM was signed with.
///
/// # Errors
/// [`BuildError`] if the envelope cannot be built.
pub fn build_bare(
    amm: &ApplicationMetadataMessage,
    author: &SecretKey,
    transport_key: &SecretKey,
    chat_key: &ChatKey,
    timestamp_ns: i64,
) -> Result<BuiltMessage, BuildError> {
    let params = EnvelopeParams {
        chat_key,
        transport_key,
        installation_id: "",
        bundle: None,
        timestamp_ns,
        padding: chs_waku_payload::Padding::Random,
        nonce: chs_waku_payload::NonceSource::Random,
    };
    crate::envelope::build_bare_amm(amm, &author.public_key(), &params)
}
