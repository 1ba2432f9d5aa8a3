//! The community description and public shard info: built as status-go's `publishOrg` and
//! `sendPublicCommunityShardInfo` do, parsed and verified; forged ones refused.

use chs_proto::Message as _;
use chs_proto::protobuf::{ChatIdentity, CommunityChat, CommunityDescription, CommunityPermissions};
use chs_status::amm::sign_amm;
use chs_status::description::{
    DESCRIPTION_TYPE, DescriptionParams, NON_PROTECTED_PUBSUB_TOPIC, build_description, build_shard_info,
    description_from_amm, description_ring, parse_description, parse_shard_info, parse_shard_info_with,
    shard_info_ring,
};
use chs_status::{CommunityId, RejectKind, Shard};
use chs_waku_payload::{SecretKey, keccak256};

use crate::support::{cache, community_id, community_key, identity_key};

fn channels() -> Vec<(String, String)> {
    vec![("uuid-a".to_owned(), "general".to_owned()), ("uuid-b".to_owned(), "dev".to_owned())]
}

fn params<'a>(key: &'a SecretKey, identity: &'a SecretKey, channels: &'a [(String, String)]) -> DescriptionParams<'a> {
    DescriptionParams {
        community_key: key,
        transport_key: identity,
        clock: 7,
        name: "chs test",
        channels,
        encrypted: false,
        archive_link_clock: 1_700_000_000_000,
        timestamp_ns: 1,
        owner_token: None,
    }
}

#[test]
fn description_round_trip_keeps_channels_name_and_archive_clock() {
    let (key, identity, chans) = (community_key(), identity_key(), channels());
    let built = build_description(&params(&key, &identity, &chans), cache()).expect("build");
    let id = community_id();
    assert_eq!(built.chat_id, id.to_string(), "sent on the IDString() chat");
    let parsed = parse_description(&built.waku_message, &id, &description_ring(&id, cache())).expect("parse");
    assert_eq!((parsed.clock, parsed.name.as_str(), parsed.archive_link_clock), (7, "chs test", 1_700_000_000_000));
    let names: Vec<_> = parsed.channels.iter().map(|c| (c.uuid.as_str(), c.name.as_str())).collect();
    assert_eq!(names, [("uuid-a", "general"), ("uuid-b", "dev")]);
    assert_eq!(parsed.channels[0].chat_id, format!("{id}uuid-a"));
    assert!(!parsed.encrypted && !parsed.channels_hidden);
}

#[test]
fn description_signed_by_another_key_is_refused() {
    let (forger, identity, chans) =
        (SecretKey::from_bytes(&keccak256(b"forger")).expect("key"), identity_key(), channels());
    // The forger's description, encrypted for the real community's chat: only the AMM signature
    // tells them apart.
    let id = community_id();
    let proto = CommunityDescription {
        clock: 99,
        permissions: Some(CommunityPermissions { access: 1, ..CommunityPermissions::default() }),
        id: id.to_string(),
        ..CommunityDescription::default()
    };
    let amm = sign_amm(proto.encode_to_vec(), DESCRIPTION_TYPE, &forger);
    let refused = description_from_amm(&amm, &forger.public_key(), &id).expect_err("forged");
    assert_eq!(refused.kind(), RejectKind::NotSignedByCommunity);
    // A real description of the forger's own community does not pass as ours either.
    let built = build_description(&params(&forger, &identity, &chans), cache()).expect("build");
    let refused = parse_description(&built.waku_message, &id, &description_ring(&id, cache())).expect_err("other");
    assert_eq!(refused.kind(), RejectKind::UnknownTopic, "another community's description chat");
}

#[test]
fn description_naming_another_community_is_refused() {
    let key = community_key();
    let other = CommunityId::from_secret_key(&SecretKey::from_bytes(&keccak256(b"other")).expect("key"));
    let proto = CommunityDescription {
        clock: 1,
        permissions: Some(CommunityPermissions { access: 1, ..CommunityPermissions::default() }),
        id: other.to_string(),
        ..CommunityDescription::default()
    };
    let amm = sign_amm(proto.encode_to_vec(), DESCRIPTION_TYPE, &key);
    let refused = description_from_amm(&amm, &key.public_key(), &community_id()).expect_err("other id");
    assert_eq!(refused.kind(), RejectKind::NotSignedByCommunity);
}

#[test]
fn description_failing_status_go_validation_is_refused() {
    let key = community_key();
    let id = community_id();
    let chat = CommunityChat {
        permissions: Some(CommunityPermissions { access: 1, ..CommunityPermissions::default() }),
        identity: None,
        ..CommunityChat::default()
    };
    let cases = [
        CommunityDescription { clock: 1, ..CommunityDescription::default() },
        CommunityDescription {
            clock: 1,
            permissions: Some(CommunityPermissions::default()),
            ..CommunityDescription::default()
        },
        CommunityDescription {
            clock: 1,
            permissions: Some(CommunityPermissions { access: 1, ..CommunityPermissions::default() }),
            chats: [("c".to_owned(), chat)].into_iter().collect(),
            ..CommunityDescription::default()
        },
    ];
    for proto in cases {
        let amm = sign_amm(proto.encode_to_vec(), DESCRIPTION_TYPE, &key);
        let refused = description_from_amm(&amm, &key.public_key(), &id).expect_err("invalid");
        assert_eq!(refused.kind(), RejectKind::InvalidDescription, "{proto:?}");
    }
}

#[test]
fn encrypted_description_hides_channels_instead_of_removing_them() {
    let key = community_key();
    let id = community_id();
    let proto = CommunityDescription {
        clock: 3,
        permissions: Some(CommunityPermissions { access: 3, ..CommunityPermissions::default() }),
        identity: Some(ChatIdentity { display_name: "gated".to_owned(), ..ChatIdentity::default() }),
        token_permissions: [(
            "p".to_owned(),
            chs_proto::protobuf::CommunityTokenPermission { id: "p".to_owned(), r#type: 2, ..Default::default() },
        )]
        .into_iter()
        .collect(),
        private_data: [("key-1".to_owned(), vec![1, 2, 3])].into_iter().collect(),
        ..CommunityDescription::default()
    };
    let amm = sign_amm(proto.encode_to_vec(), DESCRIPTION_TYPE, &key);
    let parsed = description_from_amm(&amm, &key.public_key(), &id).expect("valid");
    assert!(parsed.encrypted, "a BECOME_MEMBER permission makes it encrypted");
    assert!(parsed.channels.is_empty() && parsed.channels_hidden);
}

#[test]
fn shard_info_round_trip_and_forgery() {
    let (key, identity) = (community_key(), identity_key());
    let id = community_id();
    let shard = Shard { cluster: 16, index: 128 };
    let built = build_shard_info(&key, &identity, 12, Some(shard), 1, cache()).expect("build");
    assert_eq!(built.chat_id, format!("{id}-shard-info"));
    let ring = shard_info_ring(&id, cache());
    let info = parse_shard_info(&built.waku_message, &id, &ring).expect("parse");
    assert_eq!((info.clock, info.shard), (12, Some(shard)));
    assert_eq!(shard.pubsub_topic(), "/waku/2/rs/16/128");
    assert_eq!(Shard::from_pubsub_topic("/waku/2/rs/16/128"), Some(shard));
    assert_eq!(Shard::from_pubsub_topic(NON_PROTECTED_PUBSUB_TOPIC), Some(Shard { cluster: 16, index: 64 }));

    // Signed by another key but claiming our community: refused.
    let forger = SecretKey::from_bytes(&keccak256(b"forger")).expect("key");
    let signed_by = |signer: &SecretKey, chain_id: u64| {
        let payload = chs_proto::protobuf::PublicShardInfo {
            clock: 13,
            community_id: id.as_bytes().to_vec(),
            shard: Some(chs_proto::protobuf::Shard { cluster: 16, index: 5 }),
            chain_id,
        }
        .encode_to_vec();
        let signature = signer.sign_prehash(&keccak256(&payload)).to_vec();
        let inner = chs_proto::protobuf::CommunityPublicShardInfo { signature, payload }.encode_to_vec();
        let amm = sign_amm(inner, chs_status::description::SHARD_INFO_TYPE, &key);
        let chat_key = cache().chat_key(&chs_status::description::shard_info_chat_id(&id));
        chs_status::description::build_bare(&amm, &key, &identity, &chat_key, 1).expect("build").waku_message
    };
    // A configured control node does not sign for a community without a chain owner.
    let with_control = Some(forger.public_key());
    let refused_too = parse_shard_info_with(&signed_by(&forger, 0), &id, &ring, with_control.as_ref());
    assert_eq!(refused_too.expect_err("forged").kind(), RejectKind::NotSignedByCommunity);
    // With `chainId > 0` (an owner token): the configured control node signs; without one, refused.
    let owned = signed_by(&forger, 1);
    assert_eq!(parse_shard_info(&owned, &id, &ring).expect_err("no control node").kind(), RejectKind::NotControlNode);
    let info = parse_shard_info_with(&owned, &id, &ring, with_control.as_ref()).expect("the control node signs");
    assert_eq!(info.clock, 13);
    let other = parse_shard_info_with(&signed_by(&key, 1), &id, &ring, with_control.as_ref());
    assert_eq!(other.expect_err("not the control node").kind(), RejectKind::NotControlNode);
    let refused = parse_shard_info(&signed_by(&forger, 0), &id, &ring).expect_err("forged");
    assert_eq!(refused.kind(), RejectKind::NotSignedByCommunity);
}
