//! Issue 21: the status page in a real headless browser (Debian's `chromium`, installed by
//! .ci/run): it loads, shows the community of a running owner, and, kept open, shows an archive
//! built on request without being reloaded (the browser is driven over the DevTools protocol).

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// A headless chromium showing one page, driven over the DevTools protocol (a WebSocket to the
/// page's target; the minimal client below speaks only what the test needs).
struct LiveBrowser {
    child: std::process::Child,
    socket: TcpStream,
    next_id: u64,
}

impl Drop for LiveBrowser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:`port`: the body (DevTools answers HTTP/1.1 with a Content-Length
/// and keeps the connection open).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(TIMEOUT)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

impl LiveBrowser {
    fn open(url: &str, profile: &Path) -> LiveBrowser {
        let child = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium (Debian package `chromium`, installed by .ci/run)");
        // Chromium writes the port it listens on into the profile once it accepts connections.
        let active = profile.join("DevToolsActivePort");
        let port: u16 = wait_until(|| std::fs::read_to_string(&active).ok()?.lines().next()?.trim().parse().ok());
        let ws = wait_until(|| {
            let list: serde_json::Value = serde_json::from_str(&http_get(port, "/json/list")?).ok()?;
            let page = list.as_array()?.iter().find(|t| t["type"] == "page" && t["url"] == url)?;
            page["webSocketDebuggerUrl"].as_str().map(str::to_owned)
        });
        let path = &ws[ws.find("/devtools/").unwrap_or_else(|| panic!("a DevTools WebSocket URL: {ws}"))..];
        let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 101 "), "DevTools WebSocket upgrade: {status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        LiveBrowser { child, socket, next_id: 0 }
    }

    fn send_text(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mask = [0x5a, 0x17, 0xc3, 0x81];
        let mut frame = vec![0x81];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | u8::try_from(n).unwrap()),
            n @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.socket.write_all(&frame).unwrap();
    }

    /// One whole text message (continuation frames joined; other frames skipped).
    fn read_text(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.socket.read_exact(&mut head).unwrap();
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.socket.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.socket.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            self.socket.read_exact(&mut payload).unwrap();
            let opcode = head[0] & 0x0f;
            if opcode == 0x1 || opcode == 0x0 {
                message.extend_from_slice(&payload);
                if head[0] & 0x80 != 0 {
                    return String::from_utf8(message).unwrap();
                }
            }
        }
    }

    /// The value of the JavaScript `expression` in the page (as JSON).
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = serde_json::json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true}});
        self.send_text(&call.to_string());
        loop {
            let reply: serde_json::Value = serde_json::from_str(&self.read_text()).unwrap();
            if reply["id"] == id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    }

    /// Evaluates `expression` until `done` holds of its value (the page polls the node every 2 s).
    fn wait_for(&mut self, expression: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let value = self.eval(expression);
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "the page never showed it; last: {value}");
            // Asks again after the page's next poll could have run (the condition is checked each time).
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `f()` once it is `Some`, within [`TIMEOUT`].
fn wait_until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "chromium's DevTools endpoint never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    // The community's status.app link.
    assert!(page.contains("href=\"https://status.app/c#zQ3sh"), "the status.app link: {page}");

    // The page stays open from here on: what follows must reach it by its own polling.
    let first = created["archive_ids"].as_array().unwrap().len();
    let mut live = LiveBrowser::open(&url, &dir.path().join("profile-live"));
    let cell = "document.querySelector('td.archives') && document.querySelector('td.archives').textContent";
    live.wait_for(cell, |v| v.as_str() == Some(first.to_string().as_str()));
    live.eval("window.chsNotReloaded = true");

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

    let total = (first + 1).to_string();
    live.wait_for(cell, |v| v.as_str() == Some(total.as_str()));
    let timeline = live.wait_for("document.getElementById('timeline').textContent", |v| {
        v.as_str().is_some_and(|t| t.contains("(1 archives, 1 messages)"))
    });
    assert!(timeline.as_str().unwrap().contains("built"), "{timeline}");
    assert_eq!(live.eval("window.chsNotReloaded === true"), true, "the page updated itself, without a reload");
    drop(live);
    owner.kill();
}
