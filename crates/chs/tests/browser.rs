//! Issue 21: the status page in a real headless browser (Debian's `chromium`, installed by
//! .ci/run): it loads, shows the community of a running owner, and shows an archive built on
//! request.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::path::Path;

use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run, run_env};

/// The page's DOM after its scripts ran (chromium `--dump-dom` after a virtual-time budget).
fn rendered(url: &str, profile: &Path) -> String {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium (Debian package `chromium`, installed by .ci/run)");
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_page_shows_a_running_owner_and_its_new_archive_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 1, 20);
    let id = setup["community_id"].as_str().unwrap().to_owned();
    let owner_cfg = setup["owner_config"].as_str().unwrap().to_owned();
    let owner_db = Path::new(&owner_cfg).with_file_name("chs.db");
    let mut owner = Proc::spawn(["node", "--config", &owner_cfg, "--set", "archive.watch_interval=\"1s\""]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let url = format!("http://{}/", started["api"].as_str().unwrap());
    let created = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesCreated")));
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding"));

    let page = rendered(&url, &dir.path().join("profile-1"));
    assert!(page.contains(&format!("data-community=\"{id}\"")), "the owner's community row: {page}");
    assert!(page.contains("control node"), "{page}");
    let archives_cell = format!("<td class=\"archives\">{}</td>", created["archive_ids"].as_array().unwrap().len());
    assert!(page.contains(&archives_cell), "{archives_cell} in {page}");

    // A new message, archived on request: the page shows the built archive and the new count.
    let info = run(["community", "show", "--json", "--db", p(&owner_db), "--community", &id]).ok().json();
    let channel = info["channels"][0]["chat_id"].as_str().unwrap().to_owned();
    let now_secs = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sent_at = (now_secs() - 1).max(created["to"].as_u64().unwrap());
    let sent_at_ms = (sent_at * 1000).to_string();
    let args = ["status", "chat", "build", "--ndjson", "--community", &id, "--channel", &channel, "--text", "page"];
    let line = run_env(
        args.into_iter().chain(["--timestamp-ms", &sent_at_ms]),
        [("CHS_AUTHOR_KEY", "2222222222222222222222222222222222222222222222222222222222222222")],
    )
    .ok()
    .stdout;
    let capture = dir.path().join("capture.ndjson");
    std::fs::write(&capture, line).unwrap();
    run(["store", "import", "--db", p(&owner_db), "--waku-ndjson", p(&capture), "--community", &id]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while now_secs() <= sent_at {
        assert!(std::time::Instant::now() < deadline, "the clock does not move");
        std::thread::yield_now();
    }
    let built = run(["node", "build", "--json", "--config", &owner_cfg, "--community", &id]).ok().json();
    let new_id = built["archives"][0]["archive_id"].as_str().unwrap().to_owned();
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesCreated") && l.contains(&new_id));
    owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding"));

    let page = rendered(&url, &dir.path().join("profile-2"));
    let total = created["archive_ids"].as_array().unwrap().len() + 1;
    assert!(page.contains(&format!("<td class=\"archives\">{total}</td>")), "{total} archives in {page}");
    assert!(page.contains("(1 archives, 1 messages)"), "the built archive in the timeline: {page}");
    owner.kill();
}
