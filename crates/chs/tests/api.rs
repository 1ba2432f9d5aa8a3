//! Issue 21: a real owner and a real member, driven only through the HTTP API and the CLI (which
//! talks to a running node through it): status, metrics, the status page, join, build now,
//! reannounce, leave, the token on every call that changes state.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run, run_env};

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let length = if method == "GET" { String::new() } else { "Content-Length: 0\r\n".to_owned() };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}{length}\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path, None);
    assert_eq!(status, 200, "{path}: {body}");
    json(&body)
}

/// The value of one sample of `GET /metrics` (0 when absent).
fn owner_metric(addr: SocketAddr, sample: &str) -> u64 {
    let (_, text) = http(addr, "GET", "/metrics", None);
    text.lines().find_map(|l| l.strip_prefix(sample)?.trim().parse().ok()).unwrap_or(0)
}

fn api_addr(started: &serde_json::Value) -> SocketAddr {
    started["api"].as_str().unwrap_or_else(|| panic!("no api address: {started}")).parse().unwrap()
}

/// A member node folder made with `chs node init` (no community yet).
fn member_config(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("chs.toml");
    run(["node", "init", "--config", p(&config)]).ok();
    support::offline_config(&config);
    p(&config).to_owned()
}

/// Loopback, free ports (discovery is off in the file: `member_config`).
const MEMBER_SETTINGS: [&str; 10] = [
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

#[test]
fn owner_and_member_driven_through_the_http_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 2, 40);
    let id = setup["community_id"].as_str().unwrap().to_owned();
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let owner_db = Path::new(&owner_cfg).with_file_name("chs.db");

    // The owner notices a folder changed by "build now" within a second.
    let mut owner = Proc::spawn(["node", "--config", &owner_cfg, "--set", "archive.watch_interval=\"1s\""]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let owner_api = api_addr(&started);
    let owner_waku = started["waku"][0].as_str().unwrap().to_owned();
    let created = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesCreated")));
    let built_first = created["archive_ids"].as_array().unwrap().len();
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding"));

    let status = get_json(owner_api, "/api/v1/status");
    assert_eq!(status["communities"][0]["id"], id.as_str(), "{status}");
    assert_eq!(status["communities"][0]["control_node"], true);
    assert_eq!(status["communities"][0]["archives"], built_first);
    assert!(status["node"]["uptime_seconds"].is_u64() && status["peers"]["waku"].is_u64(), "{status}");
    let (code, metrics) = http(owner_api, "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(metrics.contains(&format!("chs_archives_built_total{{community=\"{id}\"}} {built_first}")), "{metrics}");
    assert!(metrics.contains("# TYPE chs_download_duration_seconds histogram"), "{metrics}");
    // Issue 21: the build's duration, and the store v3 server's counters (it serves by default).
    assert!(
        metrics.contains(&format!("chs_archive_build_duration_seconds_count{{community=\"{id}\"}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains("chs_store_server_requests_total 0"), "{metrics}");
    assert!(metrics.contains("chs_store_server_refused_total{reason=\"busy\"} 0"), "{metrics}");
    assert!(status["node"]["store_server"]["pages_served"].is_u64(), "{status}");
    let (code, page) = http(owner_api, "GET", "/", None);
    assert!(code == 200 && page.contains("<title>chs node</title>"), "{code} {page}");
    // Calls that change state need the token.
    let (code, body) = http(owner_api, "POST", &format!("/api/v1/communities/{id}/build"), None);
    assert_eq!(code, 401, "{body}");
    let (code, body) = http(owner_api, "POST", &format!("/api/v1/communities/{id}/build"), Some("wrong"));
    assert_eq!(code, 401, "{body}");

    // A member with no community, told to join through the CLI while it runs.
    let member_cfg = member_config(&dir.path().join("member"));
    let member_db = dir.path().join("member/chs-data/chs.db");
    let member_args = |cfg: &str| {
        let mut args = vec!["node".to_owned(), "--config".to_owned(), cfg.to_owned()];
        args.extend(MEMBER_SETTINGS.iter().map(|s| (*s).to_owned()));
        args.extend(["--bootstrap".to_owned(), owner_waku.clone()]);
        args
    };
    let mut member = Proc::spawn(member_args(&member_cfg));
    let member_started = json(&member.wait_line(TIMEOUT, |l| is_type(l, "started")));
    assert_eq!(member_started["communities"], serde_json::json!([]));
    let joined = run(["community", "join", "--json", "--db", p(&member_db), "--community", &id]).ok().json();
    assert_eq!(joined["joined"], true, "{joined}");
    assert_eq!(joined["active"], true, "joined without a restart: {joined}");
    let member_status = run(["node", "status", "--json", "--config", &member_cfg]).ok().json();
    assert_eq!(member_status["communities"][0]["id"], id.as_str(), "{member_status}");
    let member_api = api_addr(&member_started);
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!(done["archives"], built_first, "{done}");
    let status = get_json(member_api, "/api/v1/status");
    assert_eq!(status["communities"][0]["imported_archives"], built_first, "{status}");
    // Issue 17 item 6: the seeded torrent's peers by source, in the HTTP status as in
    // `chs node status --json`: the member found the owner somehow, the owner saw it come in.
    let swarm = &status["communities"][0]["seeding"]["swarm"];
    let by_source = swarm["peers_by_source"].as_object().unwrap_or_else(|| panic!("{status}"));
    assert!(!by_source.is_empty() && swarm["peers"].as_array().is_some_and(|p| !p.is_empty()), "{status}");
    assert!(swarm["trackers"].is_array(), "{swarm}");
    // The owner's status is its snapshot, rewritten every 5 s: poll it (the condition) until then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let owner_status = get_json(owner_api, "/api/v1/status");
        let owner_swarm = &owner_status["communities"][0]["seeding"]["swarm"];
        if owner_swarm["peers_by_source"]["incoming"].as_u64().is_some_and(|n| n >= 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the owner never shows the member as incoming: {owner_status}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // A new message in the owner's store, then "build now" through the CLI.
    let info = run(["community", "show", "--json", "--db", p(&owner_db), "--community", &id]).ok().json();
    let channel = info["channels"][0]["chat_id"].as_str().unwrap().to_owned();
    // Archives end before the current second (a message may still arrive in it): the message is
    // dated a second back, but not before the owner's last archive.
    let now_secs = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sent_at = (now_secs() - 1).max(created["to"].as_u64().unwrap());
    let sent_at_ms = (sent_at * 1000).to_string();
    let line = run_env(
        [
            "status",
            "chat",
            "build",
            "--ndjson",
            "--community",
            &id,
            "--channel",
            &channel,
            "--text",
            "built on request",
            "--timestamp-ms",
            &sent_at_ms,
        ],
        [("CHS_AUTHOR_KEY", "1111111111111111111111111111111111111111111111111111111111111111")],
    )
    .ok()
    .stdout;
    let capture = dir.path().join("capture.ndjson");
    std::fs::write(&capture, line).unwrap();
    run(["store", "import", "--db", p(&owner_db), "--waku-ndjson", p(&capture), "--community", &id]).ok();
    // Only if the owner's first archive ended this very second: wait for the next one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now_secs() <= sent_at {
        assert!(std::time::Instant::now() < deadline, "the clock does not move");
        std::thread::yield_now();
    }
    // The weekly window is not over: "build now" archives the stored messages since the last
    // archive all the same (the new one among them).
    let built = run(["node", "build", "--json", "--config", &owner_cfg, "--community", &id]).ok().json();
    assert_eq!(built["archives"].as_array().map(Vec::len), Some(1), "{built}");
    let created = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesCreated")));
    assert_eq!(created["messages"], built["messages"], "{created}");
    let done = json(&member.wait_line(TIMEOUT, |l| is_type(l, "downloadingHistoryArchivesFinished")));
    assert_eq!(done["archives"], 1, "only the new archive is fetched: {done}");
    let history = run(["history", "show", "--json", "--db", p(&member_db), "--community", &id]).ok().json();
    assert!(history.as_array().unwrap().iter().any(|m| m["text"] == "built on request"), "{history}");
    let (_, metrics) = http(member_api, "GET", "/metrics", None);
    assert!(metrics.contains(&format!("chs_downloads_total{{community=\"{id}\",result=\"finished\"}} 2")), "{metrics}");
    assert!(metrics.contains(&format!("chs_download_duration_seconds_count{{community=\"{id}\"}} 2")), "{metrics}");

    // Reannounce through the CLI: the owner publishes its latest link again (same clock; a member
    // that has it drops the replay).
    let published_before = owner_metric(owner_api, &format!("chs_magnetlinks_published_total{{community=\"{id}\"}}"));
    let again = run(["node", "reannounce", "--json", "--config", &owner_cfg, "--community", &id]).ok().json();
    let magnet = again["magnet_uri"].as_str().unwrap().to_owned();
    assert!(magnet.starts_with("magnet:?"), "{again}");
    // Published lines of that link may still be queued from before: read until the count grows.
    loop {
        owner.wait_line(TIMEOUT, |l| is_type(l, "magnetlinkPublished") && l.contains(&magnet));
        let sample = format!("chs_magnetlinks_published_total{{community=\"{id}\"}}");
        if owner_metric(owner_api, &sample) > published_before {
            break;
        }
    }
    let events = get_json(owner_api, "/api/v1/events?limit=5");
    assert!(events.as_array().unwrap().iter().any(|e| e["type"] == "magnetlinkPublished"), "{events}");

    // Leave through the CLI: the running member stops seeding at once.
    let left = run(["community", "leave", "--json", "--db", p(&member_db), "--community", &id]).ok().json();
    assert_eq!(left["left"], true, "{left}");
    member.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesUnseeded"));
    let status = get_json(member_api, "/api/v1/status");
    assert_eq!(status["communities"][0]["joined"], false, "{status}");
    member.kill();
    owner.kill();
}
