//! Following the description and shard info in the store (real SQLite file): clock rules,
//! channel set, archive clock, forged messages, topic keys.

use chs_status::description::{DescriptionParams, build_description, build_shard_info};
use chs_status::{ChatKeyCache, RejectKind, Shard};

use super::*;

const COMMUNITY_SK: &str = "c6cbd7d76bc5baca530c875663711b947efa6a86a900a9e8645ce32e5821484e";

fn open() -> (tempfile::TempDir, Store, Communities) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("chs.db")).unwrap();
    let communities = Communities::open(&mut store).unwrap();
    (dir, store, communities)
}

fn channels(names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| (format!("uuid-{n}"), (*n).to_owned())).collect()
}

fn description(key: &SecretKey, clock: u64, chans: &[(String, String)], archive_clock: u64) -> WakuMessage {
    let identity = generate_key().unwrap();
    let params = DescriptionParams {
        community_key: key,
        transport_key: &identity,
        clock,
        name: "followed",
        channels: chans,
        encrypted: false,
        archive_link_clock: archive_clock,
        timestamp_ns: 1,
        owner_token: None,
    };
    build_description(&params, &ChatKeyCache::new()).unwrap().waku_message
}

fn member() -> (tempfile::TempDir, Store, Communities, SecretKey, CommunityId) {
    let (dir, mut store, communities) = open();
    let key = parse_private_key(COMMUNITY_SK).unwrap();
    let id = CommunityId::from_secret_key(&key);
    communities.join(&mut store, &id, None).unwrap();
    (dir, store, communities, key, id)
}

#[test]
fn description_sets_channels_name_and_raises_archive_clock() {
    let (_dir, mut store, communities, key, id) = member();
    let outcome =
        communities.receive_description(&mut store, &id, &description(&key, 5, &channels(&["a", "b"]), 900)).unwrap();
    let DescriptionOutcome::Applied { clock: 5, added, removed } = outcome else { panic!("{outcome:?}") };
    assert_eq!((added.len(), removed.len()), (2, 0));
    let community = communities.get(&store, &id).unwrap();
    assert_eq!(community.name, "followed");
    assert_eq!(community.chats, vec![format!("{id}uuid-a"), format!("{id}uuid-b")]);
    assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 900);

    // A channel added, one removed: the chats follow exactly.
    let outcome =
        communities.receive_description(&mut store, &id, &description(&key, 6, &channels(&["b", "c"]), 800)).unwrap();
    assert_eq!(
        outcome,
        DescriptionOutcome::Applied {
            clock: 6,
            added: vec![format!("{id}uuid-c")],
            removed: vec![format!("{id}uuid-a")]
        }
    );
    assert_eq!(communities.channel_topics(&store, &id).unwrap().len(), 2);
    assert_eq!(communities.archive_info(&store, &id).unwrap().magnetlink_clock, 900, "never lowered");
    let stored = communities.description(&store, &id).unwrap().unwrap();
    assert_eq!((stored.clock, stored.archive_link_clock, stored.channels.len()), (6, 800, 2));
}

#[test]
fn older_description_is_refused_and_equal_clock_is_applied_again() {
    let (_dir, mut store, communities, key, id) = member();
    communities.receive_description(&mut store, &id, &description(&key, 10, &channels(&["a"]), 0)).unwrap();
    let older = communities.receive_description(&mut store, &id, &description(&key, 9, &channels(&["x"]), 0)).unwrap();
    assert!(matches!(older, DescriptionOutcome::Rejected(RejectReason::StaleClock { clock: 9, stored: 10 })));
    let equal =
        communities.receive_description(&mut store, &id, &description(&key, 10, &channels(&["a", "b"]), 0)).unwrap();
    assert!(equal.channels_changed(), "status-go re-processes an identical clock");
    assert_eq!(communities.get(&store, &id).unwrap().chats.len(), 2);
    assert_eq!(communities.description_counts().rejected(RejectKind::StaleClock), 1);
}

#[test]
fn forged_description_changes_nothing() {
    let (_dir, mut store, communities, key, id) = member();
    communities.receive_description(&mut store, &id, &description(&key, 3, &channels(&["a"]), 0)).unwrap();
    let before = communities.info(&store, &id).unwrap();
    // A forger's description re-encrypted on our description chat: AMM signed by the wrong key.
    let forger = generate_key().unwrap();
    let proto = chs_proto::protobuf::CommunityDescription {
        clock: 100,
        permissions: Some(chs_proto::protobuf::CommunityPermissions { access: 1, ..Default::default() }),
        id: id.to_string(),
        archive_magnetlink_clock: 5_000,
        ..Default::default()
    };
    let amm = chs_status::amm::sign_amm(
        chs_proto::Message::encode_to_vec(&proto),
        chs_status::description::DESCRIPTION_TYPE,
        &forger,
    );
    let chat_key = ChatKeyCache::new().chat_key(&id.description_chat_id());
    let identity = generate_key().unwrap();
    let forged = chs_status::description::build_bare(&amm, &forger, &identity, &chat_key, 1).unwrap().waku_message;
    let outcome = communities.receive_description(&mut store, &id, &forged).unwrap();
    assert!(matches!(outcome, DescriptionOutcome::Rejected(RejectReason::NotSignedByCommunity { .. })), "{outcome:?}");
    assert_eq!(communities.info(&store, &id).unwrap(), before);
}

/// Issue 19 gap 2: an owner-token community (a `BECOME_TOKEN_OWNER` permission on chain 1) whose
/// control node moved to another key. status-go reads that key from the chain; chs takes it from
/// the operator (`set_control_node`): descriptions it signs are applied, others refused with a
/// counted `NotControlNode`, also while none is configured. The configured key survives a reopen.
#[test]
fn owner_token_description_is_accepted_from_the_configured_control_node_only() {
    let (dir, mut store, communities, key, id) = member();
    let control = generate_key().unwrap();
    let identity = generate_key().unwrap();
    let owner_token = |signer: &SecretKey, clock: u64, chans: &[(String, String)]| {
        let params = DescriptionParams {
            community_key: &key,
            transport_key: &identity,
            clock,
            name: "owned",
            channels: chans,
            encrypted: false,
            archive_link_clock: 0,
            timestamp_ns: 1,
            owner_token: Some((1, signer)),
        };
        build_description(&params, &ChatKeyCache::new()).unwrap().waku_message
    };
    let refused_kind = |outcome: &DescriptionOutcome| match outcome {
        DescriptionOutcome::Rejected(reason) => Some(reason.kind()),
        DescriptionOutcome::Applied { .. } => None,
    };

    // None configured: signed by the new control node, refused (and not as a forgery of the
    // community key: the reason names the chain).
    let outcome =
        communities.receive_description(&mut store, &id, &owner_token(&control, 3, &channels(&["a"]))).unwrap();
    assert_eq!(refused_kind(&outcome), Some(RejectKind::NotControlNode), "{outcome:?}");
    assert!(outcome_text(&outcome).contains("chain 1"), "{outcome:?}");

    communities.set_control_node(&mut store, &id, Some(&control.public_key())).unwrap();
    let outcome =
        communities.receive_description(&mut store, &id, &owner_token(&control, 4, &channels(&["a", "b"]))).unwrap();
    assert!(matches!(&outcome, DescriptionOutcome::Applied { clock: 4, added, .. } if added.len() == 2), "{outcome:?}");

    // Another key (the community key included: the owner moved) is refused, nothing changes.
    let before = communities.info(&store, &id).unwrap();
    for other in [generate_key().unwrap(), key.clone()] {
        let outcome =
            communities.receive_description(&mut store, &id, &owner_token(&other, 9, &channels(&["x"]))).unwrap();
        assert_eq!(refused_kind(&outcome), Some(RejectKind::NotControlNode), "{outcome:?}");
    }
    assert_eq!(communities.info(&store, &id).unwrap(), before);
    let counts = communities.description_counts();
    assert_eq!(counts.rejected.get(&RejectKind::NotControlNode), Some(&3), "{counts:?}");
    assert_eq!(before.control_node_key, Some(control.public_key().to_string()));

    drop(store);
    let mut store = Store::open(&dir.path().join("chs.db")).unwrap();
    let reopened = Communities::open(&mut store).unwrap();
    assert_eq!(reopened.control_node(&store, &id).unwrap(), Some(control.public_key()));
    reopened.set_control_node(&mut store, &id, None).unwrap();
    assert_eq!(reopened.control_node(&store, &id).unwrap(), None);
}

fn outcome_text(outcome: &DescriptionOutcome) -> String {
    match outcome {
        DescriptionOutcome::Rejected(reason) => reason.to_string(),
        DescriptionOutcome::Applied { .. } => String::new(),
    }
}

#[test]
fn shard_info_moves_the_pubsub_topic_with_strictly_newer_clocks() {
    let (_dir, mut store, communities, key, id) = member();
    let identity = generate_key().unwrap();
    let cache = ChatKeyCache::new();
    let shard = Shard { cluster: 16, index: 200 };
    let info = |clock, shard| build_shard_info(&key, &identity, clock, shard, 1, &cache).unwrap().waku_message;
    let moved = communities.receive_shard_info(&mut store, &id, &info(4, Some(shard))).unwrap();
    assert_eq!(
        moved,
        ShardOutcome::Moved { from: DEFAULT_PUBSUB_TOPIC.to_owned(), to: "/waku/2/rs/16/200".to_owned() }
    );
    assert_eq!(communities.get(&store, &id).unwrap().pubsub_topic, "/waku/2/rs/16/200");
    let same = communities.receive_shard_info(&mut store, &id, &info(4, None)).unwrap();
    assert!(matches!(same, ShardOutcome::Rejected(RejectReason::StaleClock { .. })), "equal clock: status-go keeps");
    let back = communities.receive_shard_info(&mut store, &id, &info(5, None)).unwrap();
    assert_eq!(back, ShardOutcome::Moved { from: "/waku/2/rs/16/200".to_owned(), to: DEFAULT_PUBSUB_TOPIC.to_owned() });
    assert_eq!(communities.shard_info(&store, &id).unwrap().unwrap().shard, None);
}

#[test]
fn topic_key_signing_or_public_is_stored_and_shown_without_the_secret() {
    let (_dir, mut store, communities, _key, id) = member();
    let secret = generate_key().unwrap();
    let private = TopicKey::parse(&hex::encode(secret.to_bytes())).unwrap();
    communities.set_topic_key(&mut store, &id, Some(&private)).unwrap();
    let info = communities.info(&store, &id).unwrap();
    let public_hex = format!("0x{}", hex::encode(secret.public_key().to_compressed()));
    assert_eq!((info.topic_key.as_deref(), info.topic_key_signs), (Some(public_hex.as_str()), true));
    assert!(communities.topic_key(&store, &id).unwrap().unwrap().private_key().is_some());
    let public = TopicKey::parse(&public_hex).unwrap();
    communities.set_topic_key(&mut store, &id, Some(&public)).unwrap();
    assert!(!communities.info(&store, &id).unwrap().topic_key_signs);
    assert!(TopicKey::parse("0x1234").is_err());
}
