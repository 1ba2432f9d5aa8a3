//! `chs node` and `chs demo` as real processes: the daemon announces, a member killed with
//! SIGKILL in the middle of its import resumes after a restart and ends with the whole history
//! (issue 7 e2e (e)); bad configuration is a clear error; SIGTERM shuts down cleanly.

mod support;

use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run};

/// Starts `chs node` on the owner's config; returns it, once it seeds, with its Waku address.
fn owner_seeding(owner_cfg: &str) -> (Proc, String) {
    let mut owner = Proc::spawn(["node", "--config", owner_cfg]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let owner_addr = started["waku"][0].as_str().expect("the owner listens on Waku").to_owned();
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding"));
    (owner, owner_addr)
}

#[test]
fn member_killed_mid_import_resumes_after_restart_and_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 4, 300);
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let member_cfg = setup["member_configs"][0].as_str().unwrap().to_owned();

    let (owner, owner_addr) = owner_seeding(&owner_cfg);

    let mut member = Proc::spawn(["node", "--config", &member_cfg, "--bootstrap", &owner_addr]);
    let index = json(&member.wait_line(TIMEOUT, |l| is_type(l, "historyArchiveIndexFetched")));
    assert_eq!((index["archives"].as_u64(), index["missing"].as_u64()), (Some(4), Some(4)));
    // SIGKILL right after the first archive is imported: the others are not.
    member.wait_line(TIMEOUT, |l| is_type(l, "historyArchiveDownloaded"));
    member.kill();

    let mut member = Proc::spawn(["node", "--config", &member_cfg, "--bootstrap", &owner_addr]);
    let index = json(&member.wait_line(TIMEOUT, |l| is_type(l, "historyArchiveIndexFetched")));
    let missing = index["missing"].as_u64().unwrap();
    assert!(missing < 4, "the restarted member fetches only what it lacks, not all again: {index}");
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!(done["archives"].as_u64(), Some(missing));

    let member_status = run(["node", "status", "--config", &member_cfg, "--json"]).ok().json();
    let owner_status = run(["node", "status", "--config", &owner_cfg, "--json"]).ok().json();
    assert_eq!(member_status["running"], true);
    let (m, o) = (&member_status["communities"][0], &owner_status["communities"][0]);
    assert_eq!(m["imported_archives"], 4, "{m}");
    assert_eq!(m["stored_messages"], o["stored_messages"], "member {m}\nowner {o}");
    assert_eq!(o["stored_messages"], 1200);
    assert!(m["pending_magnetlink"].is_null(), "{m}");

    // SIGTERM: a clean shutdown that records `running: false`.
    let status = std::process::Command::new("kill").args(["-TERM", &member.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let finished = member.finish(TIMEOUT);
    assert!(finished.status.success(), "{finished:?}");
    let member_status = run(["node", "status", "--config", &member_cfg, "--json"]).ok().json();
    assert_eq!(member_status["running"], false);
    assert_eq!(member_status["communities"][0]["imported_archives"], 4);
    owner.kill();
    // Killed with SIGKILL, the owner's status file is stale: `status` notices.
    let owner_status = run(["node", "status", "--config", &owner_cfg, "--json"]).ok().json();
    assert_eq!(owner_status["running"], false);
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("chs.toml");
    std::fs::write(&cfg, "data_dir = \".\"\n[member]\ndebounse = \"20s\"\n").unwrap();
    let out = run(["node", "--config", p(&cfg)]).failed();
    assert!(out.stderr.contains("debounse"), "names the unknown key: {}", out.stderr);
    std::fs::write(&cfg, "[archive]\ninterval = \"7 parsecs\"\n").unwrap();
    let out = run(["node", "--config", p(&cfg)]).failed();
    assert!(out.stderr.contains("parsecs") && out.stderr.contains("interval"), "{}", out.stderr);
    std::fs::write(&cfg, "[communities]\njoin = [\"0x1234\"]\n").unwrap();
    let out = run(["node", "--config", p(&cfg)]).failed();
    assert!(out.stderr.contains("communities.join"), "{}", out.stderr);
    let out = run(["node", "--config", p(&dir.path().join("missing.toml"))]).failed();
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
    // `init` writes a file that loads back.
    let fresh = dir.path().join("fresh.toml");
    run(["node", "init", "--config", p(&fresh)]).ok();
    let text = std::fs::read_to_string(&fresh).unwrap();
    assert!(text.contains("debounce = \"20s\""), "{text}");
    run(["node", "init", "--config", p(&fresh)]).failed();
}

#[test]
fn demo_runs_and_reports_identical_history() {
    let out =
        run(["demo", "--members", "2", "--weeks", "2", "--messages-per-week", "40", "--debounce", "0", "--json"]).ok();
    let report = out.json();
    assert_eq!(report["owner_archives"], 3);
    for m in report["members"].as_array().unwrap() {
        assert_eq!(m["identical"], true, "{m}");
        assert_eq!(m["second_round_archives"], 1, "{m}");
    }
}

/// Issue 18 item 7: `chs node status` shows the store side. The owner serves store v3 (the
/// default), the member has no store node configured (the default): it catches up from the
/// connected peer that announces store v3, and its status, JSON and text, shows that peer as a
/// store peer and the catch-up with its result.
#[test]
fn node_status_shows_store_peers_and_catch_up_results() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 2, 20);
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let member_cfg = setup["member_configs"][0].as_str().unwrap().to_owned();
    let (owner, owner_addr) = owner_seeding(&owner_cfg);

    let mut member = Proc::spawn(["node", "--config", &member_cfg, "--bootstrap", &owner_addr]);
    // The description and the shard info are caught up first (issue 19), then the magnetlinks.
    let caught = json(&member.wait_line(TIMEOUT, |l| is_type(l, "storeCatchUp") && json(l)["what"] == "magnetlinks"));
    assert_eq!(caught["failed_peers"], 0, "{caught}");
    assert_eq!(caught["store_nodes"], 1, "{caught}");
    let peer = caught["peer"].as_str().expect("a store node answered").to_owned();
    let owner_id = owner_addr.rsplit("/p2p/").next().unwrap();
    assert!(peer.ends_with(owner_id), "{peer} is the owner {owner_addr}");

    let status = run(["node", "status", "--config", &member_cfg, "--json"]).ok().json();
    assert_eq!(status["store"]["serve"], true, "{status}");
    let catch_ups = status["store"]["catch_ups"].as_array().expect("catch-ups");
    let kinds: Vec<&str> = catch_ups.iter().filter_map(|c| c["what"].as_str()).collect();
    assert_eq!(kinds.len(), 3, "description, shard info and magnetlinks: {status}");
    for kind in ["description", "shard-info", "magnetlinks"] {
        assert!(kinds.contains(&kind), "{kind} in {status}");
    }
    assert!(catch_ups.iter().all(|c| c["peer"] == peer.as_str()), "{status}");
    let owner_peer = status["waku_peers"].as_array().unwrap().iter().find(|p| p["peer_id"] == owner_id).cloned();
    assert_eq!(owner_peer.expect("the owner is a peer")["store"], true, "{status}");
    let text = run(["node", "status", "--config", &member_cfg]).ok().stdout;
    assert!(text.contains("store v3: serving the message store; catch-up from connected store peers"), "{text}");
    assert!(text.contains("catch-up 0x") && text.contains(&format!("from {peer}")), "{text}");
    assert!(text.contains(", store)"), "{text}");
    member.kill();
    owner.kill();
}
