//! Process-level tests of `chs archive|torrent|waku|status|community|history` and the captured
//! formats of `chs store import`: each runs the real binary; network tests use loopback TCP and
//! synchronise on printed lines.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::path::Path;

use support::{Proc, TIMEOUT, p, run, run_env};

/// Sample topics and a range covering the whole sample file (2024-10-24 .. 2024-11-05).
const SAMPLE_TOPICS: [&str; 3] = ["0x1980b7cb", "0x8e636111", "/waku/1/0xd4740ba8/rfc26"];
const FROM: &str = "1729728000";
const TO: &str = "1730937600";

const COMMUNITY_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const IDENTITY_KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const AUTHOR_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";
/// A valid community id that is not the one of `COMMUNITY_KEY` (the secp256k1 generator).
const OTHER_COMMUNITY: &str = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// A store filled with the sample file and its archives built into `<dir>/arch`.
fn sample_archives(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("chs.db");
    run(["store", "import", "--ndjson", support::SAMPLE, "--db", p(&db)]).ok();
    let arch = dir.join("arch");
    let mut args =
        vec!["archive", "build", "--db", p(&db), "--dir", p(&arch), "--from", FROM, "--to", TO, "--interval", "7d"];
    for t in SAMPLE_TOPICS {
        args.extend(["--topic", t]);
    }
    let out = run(&args).ok();
    assert!(out.stdout.contains("built 2 archives with 60 messages"), "{}", out.stdout);
    assert!(out.stdout.contains("oversized messages skipped: 0"), "{}", out.stdout);
    arch
}

fn inspect(arch: &Path) -> Vec<serde_json::Value> {
    run(["archive", "inspect", "--json", p(arch)]).ok().json().as_array().expect("array").clone()
}

#[test]
fn archive_build_inspect_verify_extract_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let arch = sample_archives(dir.path());
    let rows = inspect(&arch);
    assert_eq!(rows.len(), 2);
    let counts: Vec<u64> = rows.iter().map(|r| r["message_count"].as_u64().unwrap()).collect();
    assert_eq!(counts.iter().sum::<u64>(), 60);
    assert_eq!(rows[0]["from"], 1_729_728_000u64);
    assert_eq!(rows[0]["to"], 1_730_332_800u64);
    assert_eq!(rows[1]["from"], 1_730_332_800u64);
    assert_eq!(rows[0]["offset"], 0);
    assert_eq!(rows[1]["offset"], rows[0]["size"]);
    for r in &rows {
        assert_eq!(r["size"].as_u64().unwrap() % 102_400, 0, "{r}");
        assert_eq!(r["topics"], serde_json::json!(["0x1980b7cb", "0x8e636111", "0xd4740ba8"]));
        assert!(r["id"].as_str().unwrap().starts_with("0x") && r["id"].as_str().unwrap().len() == 66);
    }

    let out = run(["archive", "verify", p(&arch)]).ok();
    assert!(out.stdout.contains("ok: 2 archives, 60 messages"), "{}", out.stdout);

    // Every sample message comes back exactly once, with its payload, in time order.
    let sample: Vec<serde_json::Value> =
        std::fs::read_to_string(support::SAMPLE).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut extracted = Vec::new();
    for (row, count) in rows.iter().zip(&counts) {
        let out = run(["archive", "extract", p(&arch), "--ndjson", "--id", row["id"].as_str().unwrap()]).ok();
        let lines: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len() as u64, *count);
        extracted.extend(lines);
    }
    archive_extract_all_is_every_archive_in_data_order(&arch, &extracted);
    let ts: Vec<u64> = extracted.iter().map(|m| m["timestamp"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "time order: {ts:?}");
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    };
    let mut want: Vec<(u64, String)> = sample
        .iter()
        .map(|m| {
            (
                m["timestamp"].as_u64().unwrap() / 1_000_000_000,
                format!("0x{}", hex::encode(b64(m["payload"].as_str().unwrap()))),
            )
        })
        .collect();
    let mut got: Vec<(u64, String)> = extracted
        .iter()
        .map(|m| (m["timestamp"].as_u64().unwrap(), m["payload"].as_str().unwrap().to_owned()))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // A second build over the same range resumes after the last archive: nothing new.
    let db = dir.path().join("chs.db");
    let out = run(["archive", "build", "--db", p(&db), "--dir", p(&arch), "--to", TO, "--topic", "0x1980b7cb"]).ok();
    assert!(out.stdout.contains("built 0 archives"), "{}", out.stdout);
    assert_eq!(inspect(&arch).len(), 2);

    // Text inspect has one row per archive.
    let out = run(["archive", "inspect", p(&arch)]).ok();
    assert!(
        out.stdout.contains(rows[0]["id"].as_str().unwrap()) && out.stdout.contains("2 archives"),
        "{}",
        out.stdout
    );
}

#[test]
fn archive_verify_fails_on_corrupted_data_naming_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let arch = sample_archives(dir.path());
    let rows = inspect(&arch);
    let first = rows[0]["id"].as_str().unwrap().to_owned();
    let size = rows[0]["size"].as_u64().unwrap();

    // A non-zero byte in the first archive's padding.
    let data_path = arch.join("data");
    let mut data = std::fs::read(&data_path).unwrap();
    data[usize::try_from(size).unwrap() - 1] = 7;
    std::fs::write(&data_path, &data).unwrap();
    let out = run(["archive", "verify", p(&arch)]).failed();
    assert!(out.stderr.contains(&format!("bad archive {first}")), "{}", out.stderr);
    assert!(out.stderr.contains("padding byte"), "{}", out.stderr);
    assert!(out.stderr.contains("verification of"), "{}", out.stderr);

    // A truncated data file: the second archive lies outside it.
    data.truncate(usize::try_from(size).unwrap() + 10);
    std::fs::write(&data_path, &data).unwrap();
    let out = run(["archive", "verify", p(&arch)]).failed();
    let second = rows[1]["id"].as_str().unwrap();
    assert!(out.stderr.contains(&format!("bad archive {second}")), "{}", out.stderr);
    assert!(out.stderr.contains("outside"), "{}", out.stderr);
}

#[test]
fn archive_errors_are_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = run(["archive", "verify", p(&missing)]).failed();
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    let out = run(["archive", "inspect", p(dir.path())]).failed();
    assert!(out.stderr.contains("no index file"), "{}", out.stderr);
    let out = run(["archive", "build", "--db", p(&missing), "--dir", p(dir.path()), "--topic", "0x01020304"]).failed();
    assert!(out.stderr.contains("no store at"), "{}", out.stderr);
    let out = run(["archive", "build", "--db", "x", "--dir", "y", "--topic", "nothex"]).failed();
    assert!(out.stderr.contains("invalid topic"), "{}", out.stderr);
    let out =
        run(["archive", "build", "--db", "x", "--dir", "y", "--topic", "0x01020304", "--interval", "0d"]).failed();
    assert!(out.stderr.contains("invalid duration"), "{}", out.stderr);
    let arch = sample_archives(dir.path());
    let out = run(["archive", "extract", p(&arch), "--id", "0x1234"]).failed();
    assert!(out.stderr.contains("no archive 0x1234"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn torrent_create_prints_the_info_hash_chs_torrent_computes() {
    let dir = tempfile::tempdir().unwrap();
    let arch = sample_archives(dir.path());
    let meta = chs_torrent::TorrentMeta::from_dir(&arch, chs_torrent::DEFAULT_PIECE_LENGTH).unwrap();
    let expected = meta.info_hash().to_hex();

    let v = run(["torrent", "create", "--json", p(&arch)]).ok().json();
    assert_eq!(v["info_hash"], expected.as_str());
    let magnet: chs_torrent::Magnet = v["magnet"].as_str().unwrap().parse().unwrap();
    assert_eq!(magnet.info_hash.to_hex(), expected);
    assert_eq!(magnet.display_name.as_deref(), Some("arch"));
    assert_eq!(v["total_length"], meta.total_length());

    let out = run(["torrent", "create", p(&arch)]).ok();
    let line = out.stdout.lines().find(|l| l.starts_with("magnet:?")).expect("a magnet line");
    assert!(line.starts_with(&format!("magnet:?xt=urn:btih:{expected}&dn=arch")), "{line}");
    assert!(out.stdout.contains(&format!("info hash: {expected}")), "{}", out.stdout);

    let out = run(["torrent", "create", p(&dir.path().join("missing"))]).failed();
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);
    let out = run(["torrent", "fetch", "magnet:?dn=x", "--out", p(dir.path())]).failed();
    assert!(out.stderr.contains("invalid magnet link"), "{}", out.stderr);
}

/// `chs torrent create` on a folder a build holds waits for the build and hashes what it left, not
/// the half-built folder (the folder lock of `chs_archive::lock`).
#[test]
fn torrent_create_waits_for_a_build_of_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let arch = sample_archives(dir.path());
    let before = chs_torrent::TorrentMeta::from_dir(&arch, chs_torrent::DEFAULT_PIECE_LENGTH).unwrap();
    let build = chs_archive::FolderLock::exclusive(&arch, || {}).unwrap();
    let mut create = support::Proc::spawn(["torrent", "create", "--json", p(&arch)]);
    create.wait_stderr(support::TIMEOUT, "waiting for the build to finish");
    // What the build still writes while it holds the folder.
    let mut data = std::fs::OpenOptions::new().append(true).open(arch.join("data")).unwrap();
    std::io::Write::write_all(&mut data, &[0; 1000]).unwrap();
    drop(data);
    drop(build);
    let out = create.finish(support::TIMEOUT).ok();
    let after = chs_torrent::TorrentMeta::from_dir(&arch, chs_torrent::DEFAULT_PIECE_LENGTH).unwrap();
    assert_ne!(before.info_hash(), after.info_hash());
    assert_eq!(out.json()["info_hash"], after.info_hash().to_hex().as_str(), "hashed after the build");
}

#[test]
fn torrent_seed_and_fetch_between_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let arch = sample_archives(dir.path());
    let mut seeder = Proc::spawn(["torrent", "seed", p(&arch)]);
    let listen = seeder.wait_line(TIMEOUT, |l| l.starts_with("listening on: "));
    let peer = listen.trim_start_matches("listening on: ").to_owned();
    let magnet = seeder.wait_line(TIMEOUT, |l| l.starts_with("magnet:?"));
    assert!(magnet.contains("&x.pe="), "the magnet carries the seeder's peer hint: {magnet}");

    // Index only, then everything, each through --peer.
    let index_out = dir.path().join("index-only");
    let out = run(["torrent", "fetch", &magnet, "--out", p(&index_out), "--peer", &peer, "--index-only"]).ok();
    assert!(out.stdout.contains("index:"), "{}", out.stdout);
    assert_eq!(std::fs::read(index_out.join("arch/index")).unwrap(), std::fs::read(arch.join("index")).unwrap());

    let out_dir = dir.path().join("member");
    let out = run(["torrent", "fetch", &magnet, "--out", p(&out_dir), "--peer", &peer]).ok();
    assert!(out.stdout.contains("fetched 205028 of 205028 bytes"), "{}", out.stdout);
    for f in ["data", "index"] {
        assert_eq!(std::fs::read(out_dir.join("arch").join(f)).unwrap(), std::fs::read(arch.join(f)).unwrap(), "{f}");
    }
    seeder.kill();

    // What was fetched verifies as an archive directory.
    run(["archive", "verify", p(&out_dir.join("arch"))]).ok();
}

#[test]
fn waku_listen_prints_what_waku_publish_sends() {
    let mut listener = Proc::spawn(["waku", "listen", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let addr = listener.wait_line(TIMEOUT, |l| l.starts_with("/ip4/127.0.0.1/tcp/"));
    assert!(addr.contains("/p2p/16Uiu2"), "{addr}");

    let out =
        run(["waku", "publish", "--peer", &addr, "--content-topic", "/toy/1/chat/proto", "--payload", "hello waku"])
            .ok();
    let hash = out.stdout.lines().find_map(|l| l.strip_prefix("message_hash: ")).expect("message_hash line").to_owned();
    let line = listener.wait_line(TIMEOUT, |l| l.starts_with('{'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["payload_utf8"], "hello waku");
    assert_eq!(v["content_topic"], "/toy/1/chat/proto");
    assert_eq!(v["pubsub_topic"], "/waku/2/rs/16/32");
    assert_eq!(v["message_hash"], hash.as_str());

    // Hex payload.
    run([
        "waku",
        "publish",
        "--peer",
        &addr,
        "--content-topic",
        "/toy/1/chat/proto",
        "--encoding",
        "hex",
        "--payload",
        "0x00ff10",
    ])
    .ok();
    let line = listener.wait_line(TIMEOUT, |l| l.starts_with('{'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["payload_hex"], "00ff10");

    let out =
        run(["waku", "publish", "--peer", &addr, "--content-topic", "/t", "--encoding", "hex", "--payload", "xyz"])
            .failed();
    assert!(out.stderr.contains("--payload is not valid hex"), "{}", out.stderr);
    listener.kill();
}

/// The keys go in the environment: no command takes a private key on the command line.
fn build_magnetlink(magnet: &str) -> serde_json::Value {
    run_env(
        ["status", "magnetlink", "build", "--magnet", magnet, "--clock", "1700000000000"],
        [("CHS_COMMUNITY_KEY", COMMUNITY_KEY), ("CHS_IDENTITY_KEY", IDENTITY_KEY)],
    )
    .ok()
    .json()
}

#[test]
fn status_magnetlink_build_then_decode_round_trip() {
    let magnet = "magnet:?xt=urn:btih:4dd517a000d060e4e95dc70ab9dcfccc62599037&dn=c1";
    let built = build_magnetlink(magnet);
    let community = built["community_id"].as_str().unwrap().to_owned();
    let hex_msg = built["waku_message"].as_str().unwrap().to_owned();
    assert_eq!(built["pubsub_topic"], "/waku/2/rs/16/32");
    assert_eq!(built["chat_id"], format!("{community}-magnetlinks"));

    let v = run(["status", "decode", "--community", &community, &hex_msg]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["clock"], 1_700_000_000_000u64);
    assert_eq!(v["magnet_uri"], magnet);
    assert_eq!(v["signer"], community.as_str());
    assert!(v.get("layers").is_none());
    let v = run(["status", "decode", "--verbose", "--community", &community, &hex_msg]).ok().json();
    assert!(v["layers"].is_object(), "{v}");

    // The wrong community: a rejection with a reason, not a crash.
    let out = run(["status", "decode", "--community", OTHER_COMMUNITY, &hex_msg]).failed();
    let v = out.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["reason"], "unknown_topic");
    assert!(v["detail"].as_str().unwrap().contains("topic"), "{v}");

    // Topic of the magnetlink chat agrees with the content topic of the message.
    let t = run(["status", "topic", "--json", &format!("{community}-magnetlinks")]).ok().json();
    assert_eq!(t["content_topic"], built["content_topic"]);

    let out = run(["status", "decode", "--community", &community, "zz"]).failed();
    assert!(out.stderr.contains("not hex"), "{}", out.stderr);
    let out = run(["status", "decode", "--community", "bogus", &hex_msg]).failed();
    assert!(out.stderr.contains("invalid community id"), "{}", out.stderr);
    let out = run_env(
        ["status", "magnetlink", "build", "--magnet", magnet, "--clock", "1"],
        [("CHS_COMMUNITY_KEY", "00"), ("CHS_IDENTITY_KEY", IDENTITY_KEY)],
    )
    .failed();
    assert!(
        out.stderr.contains("the key from CHS_COMMUNITY_KEY is not a valid secp256k1 private key"),
        "{}",
        out.stderr
    );
    let out = run_env(
        ["status", "magnetlink", "build", "--magnet", magnet, "--clock", "1"],
        [("CHS_IDENTITY_KEY", IDENTITY_KEY)],
    )
    .failed();
    assert!(
        out.stderr.contains("--community-key-file") && out.stderr.contains("CHS_COMMUNITY_KEY"),
        "names where the key may come from: {}",
        out.stderr
    );
}

fn create_community(db: &Path) -> serde_json::Value {
    run(["community", "create", "--db", p(db), "--name", "Test community", "--json"]).ok().json()
}

#[test]
fn community_create_show_join_list() {
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner.db");
    let created = create_community(&owner);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["control_node"], true);
    assert_eq!(created["name"], "Test community");
    assert_eq!(created["channels"].as_array().unwrap().len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&owner).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the database holds the private key");
    }

    let shown = run(["community", "show", "--db", p(&owner), "--json", &id]).ok().json();
    assert_eq!(shown, created);
    assert!(!serde_json::to_string(&shown).unwrap().contains("private"), "no key in the output");

    let member = dir.path().join("member.db");
    let joined = run(["community", "join", "--db", p(&member), "--json", &id]).ok().json();
    assert_eq!(joined["id"], id.as_str());
    assert_eq!(joined["control_node"], false);
    assert_eq!(joined["joined"], true);
    assert_eq!(joined["magnetlinks_chat"], created["magnetlinks_chat"]);

    let list = run(["community", "list", "--db", p(&member), "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = run(["community", "list", "--db", p(&owner)]).ok();
    assert!(out.stdout.contains(&id) && out.stdout.contains("control node"), "{}", out.stdout);

    // import-key of a known key makes a member the control node.
    let key_file = dir.path().join("community.key");
    std::fs::write(&key_file, format!("{COMMUNITY_KEY}\n")).unwrap();
    let k = run(["community", "import-key", "--db", p(&member), "--json", "--community-key-file", p(&key_file)])
        .ok()
        .json();
    assert_eq!(k["control_node"], true);

    let out = run(["community", "show", "--db", p(&owner), OTHER_COMMUNITY]).failed();
    assert!(out.stderr.contains("is not known"), "{}", out.stderr);
    let out = run(["community", "show", "--db", p(&dir.path().join("none.db")), &id]).failed();
    assert!(out.stderr.contains("no store at"), "{}", out.stderr);
    std::fs::write(&key_file, "1234").unwrap();
    let out = run(["community", "import-key", "--db", p(&owner), "--community-key-file", p(&key_file)]).failed();
    assert!(out.stderr.contains("invalid private key"), "{}", out.stderr);
    let out = run(["community", "join", "--db", p(&member), "0x12"]).failed();
    assert!(out.stderr.contains("invalid community id"), "{}", out.stderr);

    // The control node of an owner-token community: given at join (or later), shown, cleared.
    let control = "0x0355b357f831a3b28a5e5a3103d102cc24dd056091b7f5af5db9ae3691822ed39c";
    let owned = dir.path().join("owned.db");
    let args: [&str; 9] =
        ["community", "join", "--db", p(&owned), "--community", &id, "--control-node", control, "--json"];
    assert_eq!(run(args).ok().json()["control_node_key"], control);
    let shown = run(["community", "show", "--db", p(&owned), "--community", &id]).ok();
    assert!(shown.stdout.contains(&format!("control node: {control}")), "{}", shown.stdout);
    let cleared = run(["community", "control-node", "--db", p(&owned), "--community", &id, "--clear", "--json"]).ok();
    assert_eq!(cleared.json()["control_node_key"], serde_json::Value::Null);
    let out = run(["community", "control-node", "--db", p(&owned), "--community", &id, "0x1234"]).failed();
    assert!(out.stderr.contains("invalid public key"), "{}", out.stderr);
}

/// Builds `n` chat messages of `community` on its first channel as `chs waku listen` lines.
fn chat_lines(community: &serde_json::Value, texts: &[&str], first_ms: u64) -> String {
    let id = community["id"].as_str().unwrap();
    let channel = community["channels"][0]["chat_id"].as_str().unwrap();
    let mut out = String::new();
    for (i, text) in texts.iter().enumerate() {
        let ts = (first_ms + 3_600_000 * i as u64).to_string();
        let built = run_env(
            [
                "status",
                "chat",
                "build",
                "--community",
                id,
                "--channel",
                channel,
                "--text",
                text,
                "--timestamp-ms",
                &ts,
                "--ndjson",
            ],
            [("CHS_AUTHOR_KEY", AUTHOR_KEY)],
        )
        .ok();
        out.push_str(&built.stdout);
    }
    out
}

#[test]
fn history_show_after_archive_import_of_captured_chat_messages() {
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner.db");
    let community = create_community(&owner);
    let id = community["id"].as_str().unwrap().to_owned();

    // Captured traffic: three chat messages (written out of order), one of a foreign community,
    // one garbage line.
    let mut capture = chat_lines(&community, &["second", "third"], 1_729_756_800_000);
    capture.push_str(&chat_lines(&community, &["first"], 1_729_750_000_000));
    let foreign = serde_json::json!({ "id": OTHER_COMMUNITY, "channels": [{ "chat_id": "abc" }] });
    capture.push_str(&chat_lines(&foreign, &["not ours"], 1_729_750_000_000));
    capture.push_str("this is not json\n");
    let capture_path = dir.path().join("capture.ndjson");
    std::fs::write(&capture_path, capture).unwrap();
    let out =
        run(["store", "import", "--db", p(&owner), "--waku-ndjson", p(&capture_path), "--community", &id]).failed();
    assert!(out.stdout.contains("imported 3 messages"), "{}", out.stdout);
    assert!(out.stdout.contains("not stored, unknown_topic: 1"), "{}", out.stdout);
    assert!(out.stderr.contains("capture.ndjson:5: skipped"), "{}", out.stderr);

    let arch = dir.path().join("archives").join(&id);
    let out =
        run(["archive", "build", "--db", p(&owner), "--dir", p(&arch), "--community", &id, "--from", FROM, "--to", TO])
            .ok();
    assert!(out.stdout.contains("built 1 archives with 3 messages"), "{}", out.stdout);
    let shown = run(["community", "show", "--db", p(&owner), "--json", &id]).ok().json();
    assert_eq!(shown["archive_info"]["last_archive_end_date"], 1_730_937_600u64);

    // The member joins, imports the archives and reads the history.
    let member = dir.path().join("member.db");
    run(["community", "join", "--db", p(&member), &id]).ok();
    let empty = run(["history", "show", "--db", p(&member), "--community", &id, "--json"]).ok().json();
    assert_eq!(empty, serde_json::json!([]), "nothing imported yet");
    let out = run(["archive", "import", p(&arch), "--db", p(&member), "--community", &id]).ok();
    assert!(out.stdout.contains("1 archives imported, 0 failed"), "{}", out.stdout);

    let history = run(["history", "show", "--db", p(&member), "--community", &id, "--json"]).ok().json();
    let rows = history.as_array().unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first", "second", "third"]);
    assert!(rows.iter().all(|r| r["type_name"] == "CHAT_MESSAGE" && r["author"] == rows[0]["author"]));
    assert_eq!(rows[0]["timestamp"], 1_729_750_000u64);
    let out = run(["history", "show", "--db", p(&member), "--community", &id]).ok();
    assert!(out.stdout.contains("2024-10-24 06:06:40") && out.stdout.contains("first"), "{}", out.stdout);
    assert!(out.stdout.contains("3 messages"), "{}", out.stdout);

    let out = run(["history", "show", "--db", p(&member), "--community", OTHER_COMMUNITY]).failed();
    assert!(out.stderr.contains("is not known"), "{}", out.stderr);
}

/// Issue 21: a community's status.app link (status-go `ShareCommunityURLWithChatKey`) is shown
/// by `community show`, and the link the Status app shares names the community wherever an id
/// is taken.
#[test]
fn community_status_app_link_is_shown_and_accepted_as_the_community() {
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner.db");
    let id = create_community(&owner)["id"].as_str().unwrap().to_owned();
    let shown = run(["community", "show", "--db", p(&owner), "--community", &id, "--json"]).ok().json();
    let link = shown["share_url"].as_str().unwrap_or_else(|| panic!("no share_url: {shown}")).to_owned();
    assert!(link.starts_with("https://status.app/c#zQ3sh"), "{link}");
    let text = run(["community", "show", "--db", p(&owner), "--community", &id]).ok();
    assert!(text.stdout.contains(&format!("link:         {link}")), "{}", text.stdout);

    // A member joins with the link the app copies (with its data part), and names it by the key.
    let member = dir.path().join("member.db");
    let key = link.rsplit('#').next().unwrap();
    let with_data = format!("https://status.app/c/G74AgK0ObFNmYT-WC_Jcc9KfSjHX#{key}");
    let joined = run(["community", "join", "--db", p(&member), "--community", &with_data, "--json"]).ok().json();
    assert_eq!(joined["id"], id.as_str(), "{joined}");
    let history = run(["history", "show", "--db", p(&member), "--community", key, "--json"]).ok().json();
    assert_eq!(history, serde_json::json!([]));
    let out = run(["community", "show", "--db", p(&member), "--community", "https://status.app/u#zQ3shbad"]).failed();
    assert!(out.stderr.contains("status.app link"), "{}", out.stderr);
}

/// Issue 21: `history show` on an owner printed 0 (it read imported history only). It now lists
/// what the owner captured on its channels, takes the node's --config (as `node status` does),
/// and filters with --since, --channel and --limit.
#[test]
fn history_show_lists_an_owners_captured_messages_with_since_channel_limit_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chs.toml");
    run(["node", "init", "--config", p(&config), "--data-dir", "data"]).ok();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let db = dir.path().join("data").join("chs.db");
    let (first, second) = ("11111111-2222-4333-8444-555555555555", "66666666-7777-4888-8999-aaaaaaaaaaaa");
    let community =
        run(["community", "create", "--db", p(&db), "--channel", first, "--channel", second, "--json"]).ok().json();
    let id = community["id"].as_str().unwrap().to_owned();
    let chat_of = |uuid: &str| {
        let chats = community["channels"].as_array().unwrap();
        chats.iter().map(|c| c["chat_id"].as_str().unwrap().to_owned()).find(|c| c.ends_with(uuid)).unwrap()
    };
    let mut capture = String::new();
    for (chat, text, ms) in [
        (chat_of(first), "old", 1_729_750_000_000u64),
        (chat_of(first), "one", 1_729_760_000_000),
        (chat_of(second), "two", 1_729_770_000_000),
        (chat_of(first), "three", 1_729_780_000_000),
    ] {
        let ts = ms.to_string();
        let line = run_env(
            [
                "status",
                "chat",
                "build",
                "--community",
                &id,
                "--channel",
                &chat,
                "--text",
                text,
                "--timestamp-ms",
                &ts,
                "--ndjson",
            ],
            [("CHS_AUTHOR_KEY", AUTHOR_KEY)],
        )
        .ok();
        capture.push_str(&line.stdout);
    }
    let capture_path = dir.path().join("capture.ndjson");
    std::fs::write(&capture_path, capture).unwrap();
    run(["store", "import", "--db", p(&db), "--waku-ndjson", p(&capture_path), "--community", &id]).ok();

    let texts = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["history", "show", "--config", p(&config), "--community", &id, "--json"];
        args.extend_from_slice(extra);
        let rows = run(args).ok().json();
        rows.as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(texts(&[]), ["old", "one", "two", "three"], "the owner's captured history, in time order");
    assert_eq!(texts(&["--since", "1729760000"]), ["one", "two", "three"]);
    assert_eq!(texts(&["--channel", first]), ["old", "one", "three"]);
    assert_eq!(texts(&["--channel", &chat_of(second)]), ["two"]);
    assert_eq!(texts(&["--limit", "2"]), ["two", "three"], "the newest ones");
    assert_eq!(texts(&["--channel", first, "--since", "1729755000", "--limit", "1"]), ["three"]);
    // A duration back from now: the messages of 2024 are older than a day.
    assert!(texts(&["--since", "1d"]).is_empty());
    // --db reads the same.
    let out = run(["history", "show", "--db", p(&db), "--community", &id]).ok();
    assert!(out.stdout.contains("three") && out.stdout.contains("4 messages"), "{}", out.stdout);
    let out = run(["history", "show", "--config", p(&config), "--community", &id, "--since", "soon"]).failed();
    assert!(out.stderr.contains("--since soon"), "{}", out.stderr);
}

#[test]
fn store_import_waku_hex_decodes_with_the_community_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("owner.db");
    let community = create_community(&db);
    let id = community["id"].as_str().unwrap();
    let channel = community["channels"][0]["chat_id"].as_str().unwrap();
    let chat = run_env(
        ["status", "chat", "build", "--community", id, "--channel", channel, "--text", "hi"],
        [("CHS_AUTHOR_KEY", AUTHOR_KEY)],
    )
    .ok()
    .json();
    // A magnetlink of another community is not a channel message of this one.
    let magnetlink = build_magnetlink("magnet:?xt=urn:btih:4dd517a000d060e4e95dc70ab9dcfccc62599037");
    let file = dir.path().join("capture.hex");
    std::fs::write(
        &file,
        format!(
            "{}\n\n{}\n{}\n",
            chat["waku_message"].as_str().unwrap(),
            magnetlink["waku_message"].as_str().unwrap(),
            chat["waku_message"].as_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(["store", "import", "--db", p(&db), "--waku-hex", p(&file), "--community", id]).ok();
    assert!(out.stdout.contains("imported 1 messages (1 already stored, 1 not decodable"), "{}", out.stdout);
    assert!(out.stdout.contains("unknown_topic: 1"), "{}", out.stdout);
    let stats = run(["store", "stats", "--json", "--db", p(&db)]).ok().json();
    assert_eq!(stats["messages"], 1);
    assert_eq!(stats["content_topics"][chat["content_topic"].as_str().unwrap()], 1);

    let out = run(["store", "import", "--db", p(&db), "--waku-hex", p(&file)]).failed();
    assert!(out.stderr.contains("--community"), "{}", out.stderr);
    let out = run(["store", "import", "--db", p(&db), "--waku-hex", p(&file), "--community", OTHER_COMMUNITY]).failed();
    assert!(out.stderr.contains("is not known"), "{}", out.stderr);
}

#[test]
fn waku_listen_output_is_what_store_import_captures() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("owner.db");
    let community = create_community(&db);
    let id = community["id"].as_str().unwrap().to_owned();
    let channel = community["channels"][0]["chat_id"].as_str().unwrap().to_owned();

    let mut listener = Proc::spawn(["waku", "listen"]);
    let addr = listener.wait_line(TIMEOUT, |l| l.starts_with('/'));
    // A real chat message (timestamp now, so relay validation accepts it), published whole.
    let chat = run_env(
        ["status", "chat", "build", "--community", &id, "--channel", &channel, "--text", "over the wire"],
        [("CHS_AUTHOR_KEY", AUTHOR_KEY)],
    )
    .ok()
    .json();
    let out = run(["waku", "publish", "--peer", &addr, "--waku-message", chat["waku_message"].as_str().unwrap()]).ok();
    assert!(out.stdout.contains("message_id: "), "{}", out.stdout);
    let line = listener.wait_line(TIMEOUT, |l| l.starts_with('{'));
    listener.kill();

    let capture = dir.path().join("listen.ndjson");
    std::fs::write(&capture, format!("{line}\n")).unwrap();
    let out = run(["store", "import", "--db", p(&db), "--waku-ndjson", p(&capture), "--community", &id]).ok();
    assert!(out.stdout.contains("imported 1 messages (0 already stored, 0 not decodable"), "{}", out.stdout);
    let stats = run(["store", "stats", "--json", "--db", p(&db)]).ok().json();
    assert_eq!(stats["content_topics"][chat["content_topic"].as_str().unwrap()], 1);
}

#[test]
fn waku_store_query_pages_through_what_waku_listen_store_received() {
    let mut listener = Proc::spawn(["waku", "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--serve-store"]);
    let addr = listener.wait_line(TIMEOUT, |l| l.starts_with("/ip4/127.0.0.1/tcp/"));
    let mut printed = Vec::new();
    for (topic, payload) in
        [("/toy/1/chat/proto", "one"), ("/toy/1/other/proto", "two"), ("/toy/1/chat/proto", "three")]
    {
        run(["waku", "publish", "--peer", &addr, "--content-topic", topic, "--payload", payload]).ok();
        printed.push(support::json(&listener.wait_line(TIMEOUT, |l| l.starts_with('{'))));
    }

    // Page size 1: two pages for the two chat messages, each printed once, as `listen` printed it.
    let out =
        run(["waku", "store-query", "--peer", &addr, "--content-topic", "/toy/1/chat/proto", "--page-size", "1"]).ok();
    let got: Vec<serde_json::Value> = out.stdout.lines().map(support::json).collect();
    let want: Vec<&serde_json::Value> = printed.iter().filter(|v| v["content_topic"] == "/toy/1/chat/proto").collect();
    assert_eq!(got.len(), 2, "{}", out.stdout);
    for (got, want) in got.iter().zip(want) {
        for key in ["pubsub_topic", "content_topic", "payload_hex", "timestamp", "message_hash", "message_id"] {
            assert_eq!(got[key], want[key], "{key}");
        }
    }
    assert!(out.stderr.contains("2 messages, 2 pages"), "{}", out.stderr);

    // A time range that holds nothing: no line, success.
    let out = run(["waku", "store-query", "--peer", &addr, "--start", "1", "--end", "2"]).ok();
    assert_eq!(out.stdout, "");
    // An inverted range is refused before anything is sent.
    let out = run(["waku", "store-query", "--peer", &addr, "--start", "2", "--end", "1"]).failed();
    assert!(out.stderr.contains("invalid store query"), "{}", out.stderr);
    listener.kill();
}

/// `chs archive extract DIR --all` prints what `--id` prints for each archive, in data order;
/// without `--id` or `--all` it is refused.
fn archive_extract_all_is_every_archive_in_data_order(arch: &std::path::Path, one_by_one: &[serde_json::Value]) {
    let out = run(["archive", "extract", p(arch), "--all", "--ndjson"]).ok();
    let all: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(all, one_by_one);
    let out = run(["archive", "extract", p(arch), "--all"]).ok();
    assert!(out.stdout.ends_with(&format!("{} messages\n", one_by_one.len())), "{}", out.stdout);
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("archive 0x")).count(), 2, "{}", out.stdout);
    run(["archive", "extract", p(arch), "--ndjson"]).failed();
}
