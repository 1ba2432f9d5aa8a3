//! Archive links of both generations (status-go-2026.md): the 2024 magnetlink vector read under
//! today's names, a 2026-style link on `-memberUpdate`, magnet and CID told apart by form.

use chs_proto::Message as _;
use chs_proto::protobuf::{CommunityMessageArchiveLink, CommunityMessageArchiveMagnetlink};
use chs_proto::waku::WakuMessage;
use chs_status::link::{Cid, parse_cid};
use chs_status::{
    ChatKeyRing, DEFAULT_PUBSUB_TOPIC, Generation, LinkKind, MagnetlinkChannel, MagnetlinkState, RejectKind, Topic,
    UsableLinks, accept_magnetlink, build_magnetlink, classify_link, parse_magnetlink,
};

use crate::support::*;

/// A Logos Storage manifest CID built from its parts: CIDv1, codec codex-manifest (0xcd01),
/// sha2-256 multihash of `seed`, multibase base58btc.
pub(crate) fn logos_cid(seed: &[u8]) -> String {
    use sha2::Digest as _;
    let mut bytes = vec![0x01, 0x81, 0x9a, 0x03, 0x12, 0x20];
    bytes.extend_from_slice(&sha2::Sha256::digest(seed));
    format!("z{}", bs58::encode(bytes).into_string())
}

fn joined(usable: UsableLinks) -> MagnetlinkState {
    MagnetlinkState { joined: true, usable_links: usable, ..MagnetlinkState::default() }
}

#[test]
fn links_2024_vector_reads_as_todays_archive_link() {
    let bytes = unhex(field("magnetlink_message"));
    let today = CommunityMessageArchiveLink::decode(bytes.as_slice()).expect("decode");
    let then = CommunityMessageArchiveMagnetlink::decode(bytes.as_slice()).expect("decode");
    assert_eq!((today.clock, today.archive_link.as_str()), (then.clock, then.magnet_uri.as_str()));
    assert_eq!(today.encode_to_vec(), bytes, "same bytes, new names");
    assert_eq!(classify_link(&today.archive_link), Ok(LinkKind::Magnet));

    let community = community_id();
    let message = WakuMessage::decode(unhex(field("waku_message")).as_slice()).expect("decode");
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let verdict = parse_magnetlink(&message, DEFAULT_PUBSUB_TOPIC, &community, &ring).expect("parsed");
    assert_eq!(verdict.link_kind(), Ok(LinkKind::Magnet));
    assert_eq!(accept_magnetlink(&verdict, &community, &joined(UsableLinks::TORRENT)), Ok(()));
    assert_eq!(accept_magnetlink(&verdict, &community, &joined(UsableLinks::BOTH)), Ok(()));
    assert_eq!(
        accept_magnetlink(&verdict, &community, &joined(UsableLinks::LOGOS_STORAGE)).map_err(|r| r.kind()),
        Err(RejectKind::UnusableLink),
        "a magnet is of no use to a Logos-Storage-only member"
    );
}

#[test]
fn links_2026_cid_on_member_update_is_produced_and_parsed() {
    let (community_key, identity) = (community_key(), identity_key());
    let community = community_id();
    let cid = logos_cid(b"index");
    let mut params = vector_params(&community_key, &identity);
    params.magnet_uri = &cid;
    params.channel = Generation::Status2026.link_channel();
    let built = build_magnetlink(&params, cache()).expect("build");
    let member_update = Topic::from_chat_id(&community.member_update_chat_id());
    assert_eq!(built.content_topic, member_update.content_topic());
    assert_eq!(built.waku_message.content_topic, member_update.content_topic());

    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let verdict = parse_magnetlink(&built.waku_message, DEFAULT_PUBSUB_TOPIC, &community, &ring).expect("parsed");
    assert_eq!(verdict.chat_id, community.member_update_chat_id());
    assert_eq!(verdict.magnet_uri, cid);
    assert_eq!(verdict.link_kind(), Ok(LinkKind::Cid));
    let check = |usable| accept_magnetlink(&verdict, &community, &joined(usable)).map_err(|r| r.kind());
    assert_eq!(check(UsableLinks::TORRENT), Err(RejectKind::UnusableLink), "a CID on a torrent-only member");
    assert_eq!(check(UsableLinks::LOGOS_STORAGE), Ok(()));
    assert_eq!(check(UsableLinks::BOTH), Ok(()));

    // A 2026 magnet link on -memberUpdate is what a torrent member takes.
    params.magnet_uri = field("magnet_uri");
    let built = build_magnetlink(&params, cache()).expect("build");
    let verdict = parse_magnetlink(&built.waku_message, DEFAULT_PUBSUB_TOPIC, &community, &ring).expect("parsed");
    assert_eq!(verdict.chat_id, community.member_update_chat_id());
    assert_eq!(accept_magnetlink(&verdict, &community, &joined(UsableLinks::TORRENT)), Ok(()));
}

#[test]
fn links_empty_link_is_refused_with_a_reason() {
    let (community_key, identity) = (community_key(), identity_key());
    let community = community_id();
    let mut params = vector_params(&community_key, &identity);
    params.magnet_uri = "";
    params.channel = MagnetlinkChannel::MemberUpdate;
    let built = build_magnetlink(&params, cache()).expect("build");
    let ring = ChatKeyRing::for_magnetlinks(&community, cache());
    let verdict = parse_magnetlink(&built.waku_message, DEFAULT_PUBSUB_TOPIC, &community, &ring).expect("parsed");
    for usable in [UsableLinks::TORRENT, UsableLinks::LOGOS_STORAGE, UsableLinks::BOTH] {
        assert_eq!(
            accept_magnetlink(&verdict, &community, &joined(usable)).map_err(|r| r.kind()),
            Err(RejectKind::EmptyLink)
        );
    }
}

#[test]
fn links_magnet_and_cid_told_apart_by_form() {
    let kind = |link: &str| classify_link(link).map_err(|r| r.kind());
    assert_eq!(kind(""), Err(RejectKind::EmptyLink));
    assert_eq!(kind("  \n"), Err(RejectKind::EmptyLink));
    assert_eq!(kind(field("magnet_uri")), Ok(LinkKind::Magnet));
    assert_eq!(kind("MAGNET:?xt=urn:btih:aa"), Ok(LinkKind::Magnet));
    let cid = logos_cid(b"x");
    assert!(cid.starts_with("zDv"), "codex-manifest CIDs print as zDv…: {cid}");
    assert_eq!(kind(&cid), Ok(LinkKind::Cid));
    let parsed: Cid = parse_cid(&cid).expect("cid");
    assert_eq!((parsed.codec, parsed.hash_code, parsed.digest.len()), (0xcd01, 0x12, 32));
    // Not CIDs: CIDv0, a truncated CID, a CID with trailing bytes, base58 junk, base32 multibase.
    assert_eq!(kind("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), Err(RejectKind::MalformedLink));
    assert_eq!(kind(&cid[..cid.len() - 3]), Err(RejectKind::MalformedLink));
    let mut long = bs58::decode(&cid[1..]).into_vec().expect("b58");
    long.push(0);
    assert_eq!(kind(&format!("z{}", bs58::encode(long).into_string())), Err(RejectKind::MalformedLink));
    assert_eq!(kind("z0OIl"), Err(RejectKind::MalformedLink));
    assert_eq!(kind("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"), Err(RejectKind::MalformedLink));
    assert_eq!(kind("https://example.org/x"), Err(RejectKind::MalformedLink));
}

#[test]
fn links_generation_sets_channel_and_archived_chats() {
    let community = community_id();
    assert_eq!(Generation::Status2024.link_channel(), MagnetlinkChannel::Magnetlinks);
    assert_eq!(Generation::Status2026.link_channel(), MagnetlinkChannel::MemberUpdate);
    assert_eq!(
        Generation::Status2024.archived_chat_ids(&community, ["a", "b"]),
        vec![community.channel_chat_id("a"), community.channel_chat_id("b")]
    );
    assert_eq!(
        Generation::Status2026.archived_chat_ids(&community, ["a"]),
        vec![community.channel_chat_id("a"), community.member_update_chat_id()]
    );
    let ring = ChatKeyRing::for_archive(&community, ["a"], Generation::Status2026, cache());
    assert!(ring.get(&Topic::from_chat_id(&community.member_update_chat_id())).is_some());
    assert_eq!(ring.len(), 2);
    assert_eq!(ChatKeyRing::for_archive(&community, ["a"], Generation::Status2024, cache()).len(), 1);
}
