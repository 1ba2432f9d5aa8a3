//! Archive links of both generations, told apart by form, and what each generation archives.
//!
//! status-go c72f491 (2024) sends `CommunityMessageArchiveMagnetlink{clock, magnet_uri}` on
//! `<id>-magnetlinks`; today's status-go (PRs 7312, 7486) sends the same bytes under the name
//! `CommunityMessageArchiveLink{clock, archive_link}` on `<id>-memberUpdate`
//! (`UniversalChatID`), and the link is either a BitTorrent magnet URI or the CID of a Logos
//! Storage index. status-go does not look at the form: the link goes to whichever backend runs.
//! We do ([`classify_link`]), so that a link no backend of this node can fetch is refused before
//! it changes any state.

use std::fmt;

use crate::ids::{CommunityId, MagnetlinkChannel};
use crate::reject::RejectReason;

/// What an archive link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A BitTorrent magnet URI (`magnet:?xt=urn:btih:…`): the torrent backend.
    Magnet,
    /// A CIDv1 in multibase base58btc (`z…`): a Logos Storage index.
    Cid,
}

impl LinkKind {
    /// `magnet` or `cid`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Magnet => "magnet",
            Self::Cid => "cid",
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The link kinds a member's backends can fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsableLinks {
    /// Magnet URIs (a torrent backend runs).
    pub magnet: bool,
    /// CIDs (a Logos Storage backend runs).
    pub cid: bool,
}

impl UsableLinks {
    /// Torrent only: what status-go c72f491 and a `use_torrent` build fetch.
    pub const TORRENT: Self = Self { magnet: true, cid: false };
    /// Logos Storage only: a `use_logos_storage` build.
    pub const LOGOS_STORAGE: Self = Self { magnet: false, cid: true };
    /// Both backends (beyond status-go).
    pub const BOTH: Self = Self { magnet: true, cid: true };

    /// Whether a link of `kind` is usable.
    #[must_use]
    pub const fn allows(self, kind: LinkKind) -> bool {
        match kind {
            LinkKind::Magnet => self.magnet,
            LinkKind::Cid => self.cid,
        }
    }
}

impl Default for UsableLinks {
    /// [`UsableLinks::TORRENT`].
    fn default() -> Self {
        Self::TORRENT
    }
}

/// Longest link quoted in a [`RejectReason::MalformedLink`].
const QUOTE_MAX: usize = 200;

/// Tells a magnet URI from a CID by form.
///
/// * empty (or only whitespace) → [`RejectReason::EmptyLink`];
/// * starts with `magnet:` (any case) → [`LinkKind::Magnet`] (the torrent crate parses the rest);
/// * a multibase base58btc CIDv1 (`z` + base58 of `0x01`, codec varint, multihash: code varint,
///   length varint, exactly that many digest bytes) → [`LinkKind::Cid`];
/// * anything else → [`RejectReason::MalformedLink`].
///
/// # Errors
/// [`RejectReason::EmptyLink`] or [`RejectReason::MalformedLink`].
pub fn classify_link(link: &str) -> Result<LinkKind, RejectReason> {
    if link.trim().is_empty() {
        return Err(RejectReason::EmptyLink);
    }
    if link.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:")) {
        return Ok(LinkKind::Magnet);
    }
    parse_cid(link).map(|_| LinkKind::Cid).map_err(|detail| RejectReason::MalformedLink {
        link: link.chars().take(QUOTE_MAX).collect(),
        detail: detail.to_owned(),
    })
}

/// The parts of a CIDv1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cid {
    /// Content codec (`0xcd01` codex-manifest, `0xcd02` codex-block, ...).
    pub codec: u64,
    /// Multihash function code (`0x12` = sha2-256).
    pub hash_code: u64,
    /// The digest.
    pub digest: Vec<u8>,
}

/// Parses a multibase base58btc CIDv1 (the form Logos Storage prints).
///
/// # Errors
/// What is wrong, as a static string.
pub fn parse_cid(text: &str) -> Result<Cid, &'static str> {
    let body = text.strip_prefix('z').ok_or("not multibase base58btc (no leading 'z')")?;
    let bytes = bs58::decode(body).into_vec().map_err(|_| "not base58btc")?;
    let mut rest = bytes.as_slice();
    let version = read_varint(&mut rest).ok_or("truncated CID version")?;
    if version != 1 {
        return Err("not a CIDv1");
    }
    let codec = read_varint(&mut rest).ok_or("truncated CID codec")?;
    let hash_code = read_varint(&mut rest).ok_or("truncated multihash code")?;
    let len = read_varint(&mut rest).ok_or("truncated multihash length")?;
    if usize::try_from(len).ok() != Some(rest.len()) || rest.is_empty() {
        return Err("multihash length does not match its digest");
    }
    Ok(Cid { codec, hash_code, digest: rest.to_vec() })
}

/// An unsigned LEB128 varint of at most 9 bytes (multiformats' limit).
fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

/// Which status-go a control node follows for where links go and what it archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Generation {
    /// status-go c72f491 (October 2024): links on `-magnetlinks`; archives hold the channels.
    #[default]
    #[serde(rename = "2024")]
    Status2024,
    /// Today's status-go (2026): links on `-memberUpdate`; archives hold the channels and
    /// `-memberUpdate`.
    #[serde(rename = "2026")]
    Status2026,
}

impl Generation {
    /// The chat this generation sends archive links on.
    #[must_use]
    pub const fn link_channel(self) -> MagnetlinkChannel {
        match self {
            Self::Status2024 => MagnetlinkChannel::Magnetlinks,
            Self::Status2026 => MagnetlinkChannel::MemberUpdate,
        }
    }

    /// The chat ids this generation archives for `community` with channels `channel_uuids`:
    /// the channel chats `<id><uuid>`, and for 2026 also `<id>-memberUpdate`
    /// (status-go's `GetCommunityChatsTopics` plus `UniversalChatID`).
    #[must_use]
    pub fn archived_chat_ids<'a>(
        self,
        community: &CommunityId,
        channel_uuids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut chats: Vec<String> = channel_uuids.into_iter().map(|uuid| community.channel_chat_id(uuid)).collect();
        chats.extend(self.extra_archived_chat_id(community));
        chats
    }

    /// The chat this generation archives beyond the channels: `<id>-memberUpdate` for 2026.
    #[must_use]
    pub fn extra_archived_chat_id(self, community: &CommunityId) -> Option<String> {
        (self == Self::Status2026).then(|| community.member_update_chat_id())
    }
}
