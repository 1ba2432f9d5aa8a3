//! Why a received message was rejected, and counters per reason.

use std::collections::BTreeMap;

/// Why a received message is not acted on. Each variant names the layer that failed.
///
/// Rejections are data, not errors of the caller: log them once and count them
/// ([`RejectCounters`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RejectReason {
    /// The bytes are not a 14/WAKU2 `WakuMessage` protobuf.
    #[error("not a WakuMessage protobuf: {detail}")]
    MalformedWakuMessage {
        /// Decoder message.
        detail: String,
    },
    /// The content topic is not `/waku/1/0x<hex>/rfc26` (status-go drops it silently).
    #[error("content topic {content_topic:?} is not /waku/1/0x<hex>/rfc26")]
    BadContentTopic {
        /// The content topic found.
        content_topic: String,
    },
    /// The topic belongs to none of the chats we hold keys for.
    #[error("topic {topic} is not one of the expected chats")]
    UnknownTopic {
        /// `0x` + 8 hex digits.
        topic: String,
    },
    /// The Waku message version is not 1 (status-go sends only version 1).
    #[error("WakuMessage version {version:?} is not 1")]
    WrongVersion {
        /// The version found (`None` = absent, i.e. 0).
        version: Option<u32>,
    },
    /// AES-256-GCM fails with the chat key: another chat's key, or altered bytes.
    #[error("payload does not decrypt with the chat key")]
    Undecryptable,
    /// The decrypted 26/WAKU2-PAYLOAD is truncated or malformed.
    #[error("26/WAKU2-PAYLOAD is malformed: {detail}")]
    MalformedPayload {
        /// What is wrong.
        detail: String,
    },
    /// The 26/WAKU2-PAYLOAD signature is malformed or recovers no key.
    #[error("26/WAKU2-PAYLOAD signature is invalid: {detail}")]
    BadPayloadSignature {
        /// What is wrong.
        detail: String,
    },
    /// The 26/WAKU2-PAYLOAD is not signed; status-go drops such messages.
    #[error("26/WAKU2-PAYLOAD is not signed")]
    UnsignedPayload,
    /// An archived message's `sig` is not a 65-byte uncompressed public key.
    #[error("archived sig ({len} bytes) is not an uncompressed secp256k1 public key")]
    BadArchivedSig {
        /// Length of `sig`.
        len: usize,
    },
    /// A segment of a segmented message; reassembly is not implemented yet.
    #[error(
        "segmented message (segment {index} of {segments_count}, parity {parity_segments_count}) is not supported yet"
    )]
    Segmented {
        /// Data segment index.
        index: u32,
        /// Number of data segments (0 for a parity segment).
        segments_count: u32,
        /// Number of parity segments.
        parity_segments_count: u32,
    },
    /// A segment that cannot be reassembled (inconsistent counts, hash mismatch).
    #[error("segment cannot be reassembled: {detail}")]
    BadSegment {
        /// What is wrong.
        detail: String,
    },
    /// The `ProtocolMessage` holds a hash-ratchet or 1:1 encrypted message, unreadable here.
    #[error("ProtocolMessage carries an encrypted message, not a public one")]
    EncryptedMessage,
    /// A bundle in the `ProtocolMessage` does not verify; status-go loses the whole message.
    #[error("ProtocolMessage bundle does not verify: {detail}")]
    BadBundle {
        /// What is wrong.
        detail: String,
    },
    /// The `ApplicationMetadataMessage` is truncated or malformed.
    #[error("ApplicationMetadataMessage is malformed: {detail}")]
    MalformedAmm {
        /// What is wrong.
        detail: String,
    },
    /// The `ApplicationMetadataMessage` signature is malformed or recovers no key.
    #[error("ApplicationMetadataMessage signature is invalid: {detail}")]
    BadAmmSignature {
        /// What is wrong.
        detail: String,
    },
    /// The `ApplicationMetadataMessage` type is not the expected one.
    #[error("message type {found} is not the expected {expected}")]
    WrongType {
        /// The expected type.
        expected: i32,
        /// The type found.
        found: i32,
    },
    /// The signer is not the community key (or the magnetlink is for another community).
    #[error("signed by {signer}, not by the community key {community}")]
    NotSignedByCommunity {
        /// Compressed signer key, `0x`-hex.
        signer: String,
        /// The community id expected.
        community: String,
    },
    /// The inner message (magnetlink, chat message) is truncated or malformed.
    #[error("inner message is malformed: {detail}")]
    MalformedInner {
        /// What is wrong.
        detail: String,
    },
    /// Member rule: the receiver has not joined the community.
    #[error("not joined to the community")]
    NotJoined,
    /// Member rule: the receiver is the community's control node (its own echo).
    #[error("receiver is the control node")]
    ControlNode,
    /// Member rule: the clock is older than the stored magnetlink clock.
    #[error("clock {clock} is older than the stored {stored}")]
    StaleClock {
        /// Clock of the message.
        clock: u64,
        /// Stored clock.
        stored: u64,
    },
    /// Member rule: this URI was already fully fetched.
    #[error("magnet URI was already fetched")]
    AlreadyFetched {
        /// The URI.
        magnet_uri: String,
    },
    /// The archive link is empty (today's status-go torrent control node may broadcast one: its
    /// `GetHistoryArchiveLink` reads a `last_archive_link` the torrent backend never writes).
    #[error("archive link is empty")]
    EmptyLink,
    /// The archive link is neither a magnet URI nor a CID.
    #[error("archive link {link:?} is neither a magnet URI nor a CID: {detail}")]
    MalformedLink {
        /// The link (truncated to 200 characters).
        link: String,
        /// What is wrong.
        detail: String,
    },
    /// The archive link is of a kind no backend of this node can fetch (a CID on a torrent-only
    /// member, a magnet on a Logos-Storage-only member).
    #[error("archive link is a {kind}, which no backend of this node fetches")]
    UnusableLink {
        /// `magnet` or `cid`.
        kind: crate::link::LinkKind,
        /// The link.
        link: String,
    },
    /// An owner-token community (status-go `HasTokenOwnership`: a `BECOME_TOKEN_OWNER` permission
    /// on a chain, or a shard info with `chainId > 0`) records its control node on chain, which
    /// chs cannot read: the operator configures it (`chs community control-node`). Signed by
    /// another key, or with none configured.
    #[error("owner-token community (chain {chain_id}): signed by {signer}, not by its control node ({expected})")]
    NotControlNode {
        /// Compressed signer key, `0x`-hex.
        signer: String,
        /// The chain the owner token is on (0: none, a control node was configured).
        chain_id: u64,
        /// What was expected: the configured control node, or that none is configured.
        expected: String,
    },
    /// A community description or shard info that status-go's validation refuses
    /// (`ValidateCommunityDescription`, an unverifiable chain owner, a bad shard).
    #[error("invalid community description: {detail}")]
    InvalidDescription {
        /// What is wrong.
        detail: String,
    },
}

/// The variant of a [`RejectReason`] without its details: a counter key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RejectKind {
    MalformedWakuMessage,
    BadContentTopic,
    UnknownTopic,
    WrongVersion,
    Undecryptable,
    MalformedPayload,
    BadPayloadSignature,
    UnsignedPayload,
    BadArchivedSig,
    Segmented,
    BadSegment,
    EncryptedMessage,
    BadBundle,
    MalformedAmm,
    BadAmmSignature,
    WrongType,
    NotSignedByCommunity,
    MalformedInner,
    NotJoined,
    ControlNode,
    StaleClock,
    AlreadyFetched,
    EmptyLink,
    MalformedLink,
    UnusableLink,
    NotControlNode,
    InvalidDescription,
}

impl RejectKind {
    /// The snake-case name, as in the JSON `reason` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedWakuMessage => "malformed_waku_message",
            Self::BadContentTopic => "bad_content_topic",
            Self::UnknownTopic => "unknown_topic",
            Self::WrongVersion => "wrong_version",
            Self::Undecryptable => "undecryptable",
            Self::MalformedPayload => "malformed_payload",
            Self::BadPayloadSignature => "bad_payload_signature",
            Self::UnsignedPayload => "unsigned_payload",
            Self::BadArchivedSig => "bad_archived_sig",
            Self::Segmented => "segmented",
            Self::BadSegment => "bad_segment",
            Self::EncryptedMessage => "encrypted_message",
            Self::BadBundle => "bad_bundle",
            Self::MalformedAmm => "malformed_amm",
            Self::BadAmmSignature => "bad_amm_signature",
            Self::WrongType => "wrong_type",
            Self::NotSignedByCommunity => "not_signed_by_community",
            Self::MalformedInner => "malformed_inner",
            Self::NotJoined => "not_joined",
            Self::ControlNode => "control_node",
            Self::StaleClock => "stale_clock",
            Self::AlreadyFetched => "already_fetched",
            Self::EmptyLink => "empty_link",
            Self::MalformedLink => "malformed_link",
            Self::UnusableLink => "unusable_link",
            Self::NotControlNode => "not_control_node",
            Self::InvalidDescription => "invalid_description",
        }
    }
}

impl RejectReason {
    /// The counter key of this reason.
    #[must_use]
    pub const fn kind(&self) -> RejectKind {
        match self {
            Self::MalformedWakuMessage { .. } => RejectKind::MalformedWakuMessage,
            Self::BadContentTopic { .. } => RejectKind::BadContentTopic,
            Self::UnknownTopic { .. } => RejectKind::UnknownTopic,
            Self::WrongVersion { .. } => RejectKind::WrongVersion,
            Self::Undecryptable => RejectKind::Undecryptable,
            Self::MalformedPayload { .. } => RejectKind::MalformedPayload,
            Self::BadPayloadSignature { .. } => RejectKind::BadPayloadSignature,
            Self::UnsignedPayload => RejectKind::UnsignedPayload,
            Self::BadArchivedSig { .. } => RejectKind::BadArchivedSig,
            Self::Segmented { .. } => RejectKind::Segmented,
            Self::BadSegment { .. } => RejectKind::BadSegment,
            Self::EncryptedMessage => RejectKind::EncryptedMessage,
            Self::BadBundle { .. } => RejectKind::BadBundle,
            Self::MalformedAmm { .. } => RejectKind::MalformedAmm,
            Self::BadAmmSignature { .. } => RejectKind::BadAmmSignature,
            Self::WrongType { .. } => RejectKind::WrongType,
            Self::NotSignedByCommunity { .. } => RejectKind::NotSignedByCommunity,
            Self::MalformedInner { .. } => RejectKind::MalformedInner,
            Self::NotJoined => RejectKind::NotJoined,
            Self::ControlNode => RejectKind::ControlNode,
            Self::StaleClock { .. } => RejectKind::StaleClock,
            Self::AlreadyFetched { .. } => RejectKind::AlreadyFetched,
            Self::EmptyLink => RejectKind::EmptyLink,
            Self::MalformedLink { .. } => RejectKind::MalformedLink,
            Self::UnusableLink { .. } => RejectKind::UnusableLink,
            Self::NotControlNode { .. } => RejectKind::NotControlNode,
            Self::InvalidDescription { .. } => RejectKind::InvalidDescription,
        }
    }
}

/// Counts of accepted messages and of rejections by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RejectCounters {
    /// Messages that passed.
    pub accepted: u64,
    /// Rejections per reason.
    pub rejected: BTreeMap<RejectKind, u64>,
}

impl RejectCounters {
    /// Empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one accepted message.
    pub fn record_accepted(&mut self) {
        self.accepted += 1;
    }

    /// Counts one rejection.
    pub fn record_rejected(&mut self, reason: &RejectReason) {
        *self.rejected.entry(reason.kind()).or_default() += 1;
    }

    /// Counts the outcome of an operation and passes it through.
    pub fn record<T>(&mut self, outcome: Result<T, RejectReason>) -> Result<T, RejectReason> {
        match &outcome {
            Ok(_) => self.record_accepted(),
            Err(reason) => self.record_rejected(reason),
        }
        outcome
    }

    /// Rejections of one kind.
    #[must_use]
    pub fn rejected(&self, kind: RejectKind) -> u64 {
        self.rejected.get(&kind).copied().unwrap_or(0)
    }

    /// All rejections.
    #[must_use]
    pub fn total_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }
}
