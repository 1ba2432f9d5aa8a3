//! Issue 19 items 3 and 4: encrypted (token-gated) communities. A chs owner captures, stores and
//! archives hash-ratchet-encrypted and segmented channel messages exactly as status-go does
//! (after Waku's symmetric layer, before Status' own layers are removed), and status-go's own
//! extractor reads them back; a member given a history it cannot open keeps and seeds it and
//! says why in `chs node status`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a panic is a test failure; the skip notice goes to stdout

mod support;

use chs_proto::Message as _;
use chs_proto::encryption::{EncryptedMessageProtocol, HrHeader, ProtocolMessage};
use chs_proto::protobuf::SegmentMessage;
use chs_status::ChatKey;
use chs_waku_payload::{EncodeOptions, NonceSource, Padding, SecretKey, keccak256};

/// A message as the owner's node should archive it (status-go's archived `WakuMessage`), in the
/// JSON shape `chspeer-archive extract` prints; `hash` is filled in from the publisher.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    timestamp: u64,
    topic: String,
    payload: String,
    sig: String,
    padding: String,
    hash: String,
}

/// One message to publish: its content topic, 26/WAKU2 payload, timestamp (ns) and what the
/// owner archives of it.
struct Outgoing {
    content_topic: String,
    waku_payload: Vec<u8>,
    timestamp_ns: i64,
    expected: Expected,
}

/// Seals `data` (the Status layers) for the channel `chat` as status-go's transport does: a
/// 26/WAKU2 v1 payload signed by `author`, AES-256-GCM with the channel key.
fn seal(chat: &ChatKey, author: &SecretKey, data: &[u8], timestamp_ns: i64) -> Outgoing {
    let options = EncodeOptions { signing_key: Some(author), padding: Padding::Random, nonce: NonceSource::Random };
    let waku_payload = chs_waku_payload::encode_symmetric(data, &chat.key, &options).unwrap();
    let opened = chs_waku_payload::decode_symmetric(&waku_payload, &chat.key).unwrap();
    assert_eq!(opened.data(), data);
    let timestamp = u64::try_from(timestamp_ns / 1_000_000_000).unwrap();
    Outgoing {
        content_topic: chat.content_topic(),
        waku_payload: waku_payload.clone(),
        timestamp_ns,
        expected: Expected {
            timestamp,
            topic: format!("0x{}", hex::encode(chat.topic.as_bytes())),
            payload: hex::encode(data),
            sig: hex::encode(author.public_key().to_uncompressed()),
            padding: hex::encode(opened.padding()),
            hash: String::new(),
        },
    }
}

/// status-go's `BuildHashRatchetMessage` output for `ciphertext` (the AES-GCM-sealed AMM, which
/// chs never opens): `{"none": {HR header, payload}}`, no bundle.
fn hash_ratchet(group: &[u8], seq_no: u32, ciphertext: Vec<u8>) -> Vec<u8> {
    let mut message = ProtocolMessage {
        installation_id: "2f4e7d0a-9d6c-4a8e-b1f5-3c2d1e0f9a8b".into(),
        ..ProtocolMessage::default()
    };
    message.encrypted_message.insert(
        "none".into(),
        EncryptedMessageProtocol {
            hr_header: Some(HrHeader {
                deprecated_key_id: 1_733_300_000,
                seq_no,
                group_id: group.to_vec(),
                key_id: keccak256(b"community key").to_vec(),
                ..HrHeader::default()
            }),
            payload: ciphertext,
            ..EncryptedMessageProtocol::default()
        },
    );
    message.encode_to_vec()
}

/// status-go's `segmentMessage` (`protocol/common/message_segmentation.go`): pieces of at most
/// `segment_size` bytes, each a `SegmentMessage` with the Keccak-256 of the whole payload; no
/// parity segments for two pieces (`floor(2 × 0.125) = 0`).
fn segments(whole: &[u8], segment_size: usize) -> Vec<Vec<u8>> {
    let hash = keccak256(whole).to_vec();
    let count = u32::try_from(whole.len().div_ceil(segment_size)).unwrap();
    whole
        .chunks(segment_size)
        .enumerate()
        .map(|(i, piece)| {
            SegmentMessage {
                entire_message_hash: hash.clone(),
                index: u32::try_from(i).unwrap(),
                segments_count: count,
                payload: piece.to_vec(),
                ..SegmentMessage::default()
            }
            .encode_to_vec()
        })
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Waits (bounded) until the wall clock is past second `secs`: archives end before the current
/// second, and a community's first window starts at its creation second.
fn wait_past(secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now_secs() <= secs {
        assert!(std::time::Instant::now() < deadline, "the clock does not move");
        std::thread::yield_now();
    }
}

mod interop {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::process::Command;

    use chs_status::history::{ChatMessageParams, build_chat_message};
    use chs_status::{ChatKey, ChatKeyCache, CommunityId};
    use chs_waku_payload::{NonceSource, Padding, SecretKey};

    use super::{Expected, Outgoing, hash_ratchet, now_secs, seal, segments, wait_past};
    use crate::support::{Proc, TIMEOUT, is_type, json, p, run};

    fn peers_bin(test: &str) -> Option<PathBuf> {
        let dir = std::env::var_os("CHS_PEERS_BIN").map(PathBuf::from);
        if dir.is_none() {
            println!("skipped: {test}: set CHS_PEERS_BIN to ../shared/peers/bin (status-go's peers)");
        }
        dir
    }

    /// status-go's segment size for its 1 MiB Waku limit: `MaxMessageSize / 4 * 3`.
    const SEGMENT_SIZE: usize = 786_432;

    /// Item 4: status-go's Waku node publishes, on a chs owner's channel, a plain chat message,
    /// a hash-ratchet-encrypted one (a token-gated community) and a large hash-ratchet message
    /// in two segments. The owner captures all four Waku messages, archives them ("build now"),
    /// and status-go's own `ExtractMessagesFromHistoryArchive` reads exactly those four back,
    /// field for field (payload as it arrived after Waku's layer, signer, padding, hash).
    #[test]
    fn status_go_extracts_plain_segmented_and_hash_ratchet_messages_from_a_chs_owner() {
        let test = "status_go_extracts_plain_segmented_and_hash_ratchet_messages_from_a_chs_owner";
        let Some(bin) = peers_bin(test) else { return };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("chs.toml");
        run(["node", "init", "--config", p(&config)]).ok();
        crate::support::offline_config(&config);
        let db = dir.path().join("chs-data/chs.db");
        let created = run(["community", "create", "--db", p(&db), "--name", "Gated", "--json"]).ok().json();
        let id: CommunityId = created["id"].as_str().unwrap().parse().unwrap();
        let chat_id = created["channels"][0]["chat_id"].as_str().unwrap().to_owned();
        let chat = ChatKey::derive(&chat_id);
        // Messages are dated after the community's creation second.
        wait_past(now_secs());
        let ts = i64::try_from(now_secs()).unwrap() * 1_000_000_000;

        let author = SecretKey::from_bytes(&[0x42; 32]).unwrap();
        let cache = ChatKeyCache::new();
        let plain = build_chat_message(
            &ChatMessageParams {
                author: &author,
                community: &id,
                channel_uuid: chat_id.strip_prefix(&id.to_string()).unwrap(),
                text: "plain text in an open channel",
                clock: 1,
                timestamp_ms: u64::try_from(ts / 1_000_000).unwrap(),
                display_name: "alice",
                installation_id: "alice-device",
                bundle: None,
                timestamp_ns: ts,
                padding: Padding::Random,
                nonce: NonceSource::Random,
            },
            &cache,
        )
        .unwrap();
        let plain_data = chs_waku_payload::decode_symmetric(&plain.waku_message.payload, &chat.key).unwrap();
        let mut outgoing = vec![seal(&chat, &author, plain_data.data(), ts)];
        let group = id.as_bytes();
        outgoing.push(seal(&chat, &author, &hash_ratchet(group, 7, vec![0xc1; 180]), ts + 1));
        let large = hash_ratchet(group, 8, (0..900_000u32).map(|i| (i % 251) as u8).collect());
        let pieces = segments(&large, SEGMENT_SIZE);
        assert_eq!(pieces.len(), 2);
        for piece in &pieces {
            outgoing.push(seal(&chat, &author, piece, ts + 2));
        }

        // status-go's Waku node publishes them once chs is its relay peer on the shard.
        let commands = dir.path().join("go-commands");
        let mut script = String::from("waitpeers 1 100\n");
        for m in &outgoing {
            script +=
                &format!("publish-relay {} {} {} - 1\n", m.content_topic, hex::encode(&m.waku_payload), m.timestamp_ns);
        }
        std::fs::write(&commands, script).unwrap();
        // The commands come on stdin (`Proc` closes it): a shell redirects it from the file.
        let mut go = Proc::spawn_command({
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "exec \"$0\" -stay-on-eof -exit-after 170s -loglevel error < \"$1\""]);
            cmd.arg(bin.join("chspeer-waku")).arg(&commands);
            cmd
        });
        let go_addr = go.wait_line(TIMEOUT, |l| l.starts_with("LISTEN ")).trim_start_matches("LISTEN ").to_owned();
        go.wait_line(TIMEOUT, |l| l == "READY");

        // The owner's magnet names its torrent address (no tracker, no DHT on loopback).
        let mut args = vec!["node", "--config", p(&config), "--bootstrap", &go_addr];
        args.extend(["--set", "torrent.announce_addr=\"127.0.0.1:0\""]);
        args.extend(super::LOOPBACK);
        let mut owner = Proc::spawn(args);
        let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
        let owner_waku = started["waku"][0].as_str().unwrap().to_owned();
        go.wait_line(TIMEOUT, |l| l.starts_with("PEERS n="));
        let mut expected = BTreeSet::new();
        for mut m in outgoing.into_iter().map(|m: Outgoing| m.expected) {
            let line = go.wait_line(TIMEOUT, |l| l.starts_with("PUBLISHED hash=") || l.starts_with("ERR"));
            m.hash = line.strip_prefix("PUBLISHED hash=0x").unwrap_or_else(|| panic!("{line}")).to_owned();
            expected.insert(m);
        }
        let mut captured = 0;
        while captured < expected.len() {
            let line = owner.wait_line(TIMEOUT, |l| is_type(l, "messagesCaptured"));
            captured += usize::try_from(json(&line)["messages"].as_u64().unwrap()).unwrap();
        }
        assert_eq!(captured, expected.len(), "every Waku message of the channel is stored");

        wait_past(u64::try_from(ts / 1_000_000_000).unwrap());
        let built =
            run(["node", "build", "--json", "--config", p(&config), "--community", &id.to_string()]).ok().json();
        assert_eq!(built["messages"], expected.len(), "{built}");

        let extract = Command::new(bin.join("chspeer-archive"))
            .args(["extract", "-datadir", p(&dir.path().join("chs-data/archives")), "-community", &id.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&extract.stdout);
        assert!(extract.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&extract.stderr));
        let got: BTreeSet<Expected> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("MSG "))
            .map(|l| {
                let v = json(l.split_once(' ').unwrap().1);
                assert_eq!(v["thirdPartyId"], "", "{v}");
                let s = |k: &str| v[k].as_str().unwrap().to_owned();
                Expected {
                    timestamp: v["timestamp"].as_u64().unwrap(),
                    topic: s("topic"),
                    payload: s("payload"),
                    sig: s("sig"),
                    padding: s("padding"),
                    hash: s("hash"),
                }
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "status-go extracted {} messages:\n{stdout}", got.len());
        assert!(got == expected, "status-go's extraction differs from what was sent");
        go.kill();

        // A chs member of the same community imports those archives: the plain message is in
        // its history, the three others are kept and counted as sealed (needing the keys).
        let member_dir = dir.path().join("member");
        std::fs::create_dir_all(&member_dir).unwrap();
        let member_config = member_dir.join("chs.toml");
        run(["node", "init", "--config", p(&member_config)]).ok();
        crate::support::offline_config(&member_config);
        let member_db = member_dir.join("chs-data/chs.db");
        run(["community", "join", "--db", p(&member_db), &id.to_string()]).ok();
        let mut args = vec!["node", "--config", p(&member_config), "--bootstrap", &owner_waku];
        args.extend(super::LOOPBACK);
        let mut member = Proc::spawn(args);
        let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
        assert_eq!(done["messages"], expected.len(), "{done}");
        let status = run(["node", "status", "--json", "--config", p(&member_config)]).ok().json();
        assert_eq!(status["communities"][0]["sealed_messages"], expected.len() - 1, "{status}");
        let text = run(["node", "status", "--config", p(&member_config)]).ok().stdout;
        assert!(text.contains("messages kept but not readable here: 3"), "{text}");
        let history =
            run(["history", "show", "--json", "--db", p(&member_db), "--community", &id.to_string()]).ok().json();
        let texts: Vec<&str> = history.as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
        assert_eq!(texts, ["plain text in an open channel"], "{history}");
        member.kill();
        owner.kill();
    }
}

/// Settings that keep a node on loopback (discovery is off in the file: `support::offline_config`
/// after each `chs node init`): loopback listeners, free ports, no debounce.
const LOOPBACK: [&str; 10] = [
    "--set",
    "torrent.listen_ip=\"127.0.0.1\"",
    "--set",
    "torrent.port=0",
    "--set",
    "waku.listen=[\"/ip4/127.0.0.1/tcp/0\"]",
    "--set",
    "api.listen=\"127.0.0.1:0\"",
    "--set",
    "member.debounce=\"0s\"",
];

const COMMUNITY_KEY: &str = "5555555555555555555555555555555555555555555555555555555555555555";
const IDENTITY_KEY: &str = "6666666666666666666666666666666666666666666666666666666666666666";

/// The magnetlink of the community of [`COMMUNITY_KEY`] for `magnet` at `clock`, as its control
/// node publishes it (`chs status magnetlink build --json`: `community_id`, `waku_message`).
fn magnetlink(magnet: &str, clock: u64) -> serde_json::Value {
    let keys = [("CHS_COMMUNITY_KEY", COMMUNITY_KEY), ("CHS_IDENTITY_KEY", IDENTITY_KEY)];
    support::run_env(["status", "magnetlink", "build", "--magnet", magnet, "--clock", &clock.to_string()], keys)
        .ok()
        .json()
}

/// The id of the community of [`COMMUNITY_KEY`].
fn community_id() -> String {
    magnetlink("magnet:?xt=urn:btih:4dd517a000d060e4e95dc70ab9dcfccc62599037", 1)["community_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A member node of `id` in `dir/member` on loopback, started: the process, its configuration
/// and its database, and its Waku address.
fn start_member(dir: &std::path::Path, id: &str) -> (support::Proc, std::path::PathBuf, std::path::PathBuf, String) {
    use support::{Proc, TIMEOUT, is_type, json, p, run};
    let member_dir = dir.join("member");
    std::fs::create_dir_all(&member_dir).unwrap();
    let config = member_dir.join("chs.toml");
    run(["node", "init", "--config", p(&config)]).ok();
    crate::support::offline_config(&config);
    let db = member_dir.join("chs-data/chs.db");
    run(["community", "join", "--db", p(&db), id]).ok();
    let mut args = vec!["node", "--config", p(&config)];
    args.extend(LOOPBACK);
    let mut member = Proc::spawn(args);
    let started = json(&member.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let waku = started["waku"][0].as_str().unwrap().to_owned();
    (member, config, db, waku)
}

/// Publishes the community's link to `magnet`, clocked now, to the node at `waku`.
fn announce(magnet: &str, waku: &str) {
    let now_ms =
        u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let link = magnetlink(magnet, now_ms);
    support::run(["waku", "publish", "--peer", waku, "--waku-message", link["waku_message"].as_str().unwrap()]).ok();
}

/// Item 3: a status-go owner of an encrypted community seeds an archive folder whose `index`
/// and archives are wrapped with the community's hash-ratchet key. A chs member fetches the
/// link, cannot open the index (it holds no key), and still keeps and seeds the whole torrent;
/// it records why nothing was imported, and `chs node status` says so, also after the node has
/// stopped (the reason is in the database), never an empty history without a word.
#[test]
fn member_keeps_and_seeds_a_wrapped_history_and_says_why_in_status() {
    use support::{Proc, TIMEOUT, is_type, json, p, run};

    let dir = tempfile::tempdir().unwrap();
    let id = community_id();
    let group: Vec<u8> = hex::decode(id.trim_start_matches("0x")).unwrap();

    // status-go's folder for an encrypted community: one wrapped archive padded to a piece, and
    // a wrapped index (each `proto.Marshal(BuildHashRatchetMessage(community id, bytes).Message)`).
    let folder = dir.path().join("status-go").join(&id);
    std::fs::create_dir_all(&folder).unwrap();
    let archive = hash_ratchet(&group, 11, vec![0xa7; 3_000]);
    let mut data = archive.clone();
    data.resize(102_400, 0);
    std::fs::write(folder.join("data"), &data).unwrap();
    let index = hash_ratchet(&group, 12, vec![0x1d; 140]);
    std::fs::write(folder.join("index"), &index).unwrap();
    let mut seeder = Proc::spawn(["torrent", "seed", p(&folder), "--json"]);
    let seeded = json(&seeder.wait_line(TIMEOUT, |l| l.contains("\"magnet\"")));
    let magnet = seeded["magnet"].as_str().unwrap().to_owned();
    let info_hash = seeded["info_hash"].as_str().unwrap().to_owned();

    let (mut member, config, _, member_waku) = start_member(dir.path(), &id);
    announce(&magnet, &member_waku);

    let unopened = json(&member.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesNotImported")));
    assert_eq!(unopened["magnet_uri"], magnet.as_str(), "{unopened}");
    let reason = unopened["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("hash-ratchet"), "{reason}");
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!((done["archives"].as_u64(), done["messages"].as_u64()), (Some(0), Some(0)), "{done}");
    // The whole torrent is kept, byte for byte.
    let kept = dir.path().join("member/chs-data/archives").join(&id);
    assert_eq!(std::fs::read(kept.join("index")).unwrap(), index);
    assert_eq!(std::fs::read(kept.join("data")).unwrap(), data);

    let status = run(["node", "status", "--json", "--config", p(&config)]).ok().json();
    let community = &status["communities"][0];
    assert_eq!(community["not_imported"]["magnet_uri"], magnet.as_str(), "{status}");
    assert_eq!(community["not_imported"]["reason"], reason.as_str(), "{status}");
    assert_eq!(community["last_magnetlink_uri"], magnet.as_str(), "fetched, not retried in a loop: {status}");
    assert_eq!(community["seeding"]["info_hash"], info_hash.as_str(), "{status}");
    let text = run(["node", "status", "--config", p(&config)]).ok().stdout;
    assert!(text.contains("history not imported") && text.contains("hash-ratchet"), "{text}");
    member.kill();
    seeder.kill();

    // Persisted: a stopped node's status reads it from the database.
    let text = run(["node", "status", "--config", p(&config)]).ok().stdout;
    assert!(text.contains("history not imported") && text.contains("hash-ratchet"), "{text}");
}

/// `chs community ratchet-key add|list`: the key comes from a file (or the environment), never
/// the command line, and is never printed; bad hex, a wrong length, a timestamp in seconds and
/// an unknown community are refused with a clear message; `show` lists the key and, on the
/// control node of an encrypted community without one, that its archives are written plain.
#[test]
fn ratchet_key_add_and_list_from_the_command_line() {
    use support::{p, run, run_env};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chs.db");
    let created = run(["community", "create", "--db", p(&db), "--json"]).ok().json();
    let id = created["id"].as_str().unwrap().to_owned();
    let key_hex = "5a".repeat(32);
    let key_file = dir.path().join("ratchet.key");
    let add = |file: &std::path::Path, ts: &str, community: &str| {
        run([
            "community",
            "ratchet-key",
            "add",
            "--db",
            p(&db),
            "--community",
            community,
            "--timestamp",
            ts,
            "--key-file",
            p(file),
        ])
    };
    std::fs::write(&key_file, "zz").unwrap();
    assert!(add(&key_file, "1733356800123", &id).failed().stderr.contains("not hex"));
    std::fs::write(&key_file, "5a".repeat(31)).unwrap();
    assert!(add(&key_file, "1733356800123", &id).failed().stderr.contains("31 bytes, expected 32"));
    std::fs::write(&key_file, format!("{key_hex}\n")).unwrap();
    assert!(add(&key_file, "1733356800", &id).failed().stderr.contains("not Unix milliseconds"));
    let other = "0x03cab365fcbb92f82b9c47ceaa27d654268606dea9cd658e369abf5c3fc59d0fa2";
    assert!(add(&key_file, "1733356800123", other).failed().stderr.contains("is not known"));
    let added = add(&key_file, "1733356800123", &id).ok();
    let group = hex::decode(id.trim_start_matches("0x")).unwrap();
    let key_id = chs_status::hash_ratchet::key_id(&group, 1_733_356_800_123, &hex::decode(&key_hex).unwrap());
    assert!(added.stdout.contains(&hex::encode(key_id)) && !added.stdout.contains(&key_hex), "{}", added.stdout);
    // From the environment too; the same key again changes nothing.
    let again = run_env(
        [
            "community",
            "ratchet-key",
            "add",
            "--db",
            p(&db),
            "--community",
            &id,
            "--timestamp",
            "1733356800123",
            "--json",
        ],
        [("CHS_RATCHET_KEY", key_hex.as_str())],
    )
    .ok()
    .json();
    assert_eq!(again["new"], false, "{again}");
    let listed = run(["community", "ratchet-key", "list", "--db", p(&db), "--community", &id, "--json"]).ok();
    assert!(!listed.stdout.contains(&key_hex));
    assert_eq!(listed.json()[0]["key_id"], format!("0x{}", hex::encode(key_id)));
    assert_eq!(listed.json()[0]["timestamp"], 1_733_356_800_123_u64);
    let shown = run(["community", "show", "--db", p(&db), "--community", &id]).ok().stdout;
    assert!(
        shown.contains(&format!("hash-ratchet key: 0x{}", hex::encode(key_id))) && !shown.contains(&key_hex),
        "{shown}"
    );
    let help = run(["community", "ratchet-key", "add", "--help"]).ok().stdout;
    assert!(help.contains("--key-file") && !help.contains("--key <"), "{help}");
}

/// Item 3, the key arriving later: a member that kept a wrapped history it could not open is
/// given the key with `chs community ratchet-key add` while its node runs; the CLI asks the node
/// (`POST /api/v1/communities/{id}/reopen`), which re-opens the kept torrent in place and imports
/// it without downloading anything again; `chs node status` no longer says "not imported".
#[test]
fn adding_the_key_to_a_running_member_imports_the_kept_history() {
    use chs_archive::{BuildOptions, Builder, MemorySource, WakuMessage, WrapError, Wrapper};
    use chs_status::hash_ratchet::{Chain, RatchetKey, unwrap, wrap};
    use support::{Proc, TIMEOUT, is_type, json, p, run};

    /// status-go's owner: every archive and the index wrapped with the group's key, in turn.
    struct Owner(RatchetKey, Chain);
    impl Wrapper for Owner {
        fn wrap(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
            wrap(&self.0, &mut self.1, "owner-install", plaintext, &NonceSource::Random)
                .map_err(|e| WrapError(e.to_string()))
        }
        fn unwrap(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
            unwrap(std::slice::from_ref(&self.0), wrapped).map(|u| u.plaintext).map_err(|e| WrapError(e.to_string()))
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let id = community_id();
    let group: Vec<u8> = hex::decode(id.trim_start_matches("0x")).unwrap();
    const TS: u64 = 1_733_356_800_123;
    let key = RatchetKey::new(group, TS, vec![0x5a; 32], None).unwrap();
    let (start, week) = (1_704_067_200_u64, 7 * 24 * 3600_u64);
    let topic = [0xa4, 0xab, 0xdf, 0x64];
    let messages: Vec<WakuMessage> = (0..3u8)
        .map(|n| WakuMessage {
            sig: vec![4; 65],
            timestamp: start + 60 * u64::from(n + 1),
            topic: topic.to_vec(),
            payload: vec![n; 40],
            padding: vec![],
            hash: vec![n; 32],
            third_party_id: String::new(),
        })
        .collect();
    let folder = dir.path().join("status-go").join(&id);
    let options = BuildOptions { from: Some(start), interval: week, ..BuildOptions::new(vec![topic], start + week) };
    let mut owner = Owner(key.clone(), Chain::default());
    Builder::new(&folder, options).wrapper(&mut owner).run(&MemorySource::new(messages)).unwrap();
    assert!(chs_archive::hash_ratchet_wrapping(&std::fs::read(folder.join("index")).unwrap()).is_some());
    let mut seeder = Proc::spawn(["torrent", "seed", p(&folder), "--json"]);
    let magnet = json(&seeder.wait_line(TIMEOUT, |l| l.contains("\"magnet\"")))["magnet"].as_str().unwrap().to_owned();

    let (mut member, config, db, member_waku) = start_member(dir.path(), &id);
    announce(&magnet, &member_waku);
    member.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesNotImported"));
    let kept = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!(kept["archives"], 0, "{kept}");
    seeder.kill();

    let key_file = dir.path().join("ratchet.key");
    std::fs::write(&key_file, hex::encode(key.material())).unwrap();
    let added = run([
        "community",
        "ratchet-key",
        "add",
        "--db",
        p(&db),
        "--community",
        &id,
        "--timestamp",
        &TS.to_string(),
        "--key-file",
        p(&key_file),
    ])
    .ok()
    .stdout;
    assert!(added.contains("the running node (pid"), "{added}");
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!((done["archives"].as_u64(), done["messages"].as_u64()), (Some(1), Some(3)), "{done}");
    assert_eq!(done["bytes_received"], 0, "opened from the kept files (the seeder is gone): {done}");
    let status = run(["node", "status", "--json", "--config", p(&config)]).ok().json();
    let community = &status["communities"][0];
    assert!(community["not_imported"].is_null(), "{status}");
    assert_eq!(community["imported_archives"], 1, "{status}");
    assert_eq!(community["ratchet_keys"], 1, "{status}");
    member.kill();
}
