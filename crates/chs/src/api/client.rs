//! The CLI's side of the API: finding a running node from its data folder (`status.json`) and a
//! small HTTP/1.1 client for its loopback API (one request per connection, no TLS).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// A node running on a data folder, as its `status.json` says.
#[derive(Debug, Clone)]
pub(crate) struct RunningNode {
    /// Its pid.
    pub(crate) pid: u64,
    /// Where its API listens.
    pub(crate) api: SocketAddr,
    /// Its bearer token file.
    pub(crate) token_file: PathBuf,
}

impl RunningNode {
    /// The node running on `data_dir`, if one is (its status file says so, its pid is alive and
    /// it serves the API).
    pub(crate) fn find(data_dir: &Path) -> Option<RunningNode> {
        let text = std::fs::read_to_string(data_dir.join("status.json")).ok()?;
        let status: serde_json::Value = serde_json::from_str(&text).ok()?;
        if status["running"] != true {
            return None;
        }
        let pid = status["pid"].as_u64()?;
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return None;
        }
        let api = status["api"]["listen"].as_str()?.parse().ok()?;
        let token_file = PathBuf::from(status["api"]["token_file"].as_str()?);
        Some(RunningNode { pid, api, token_file })
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.call("GET", path, None)
    }

    /// A call that changes state (with the token), `body` as JSON.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        self.call(method, path, Some(body.cloned().unwrap_or(serde_json::Value::Null)))
    }

    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> anyhow::Result<serde_json::Value> {
        let token = match body {
            Some(_) => Some(
                std::fs::read_to_string(&self.token_file)
                    .with_context(|| {
                        format!("reading the node's API token {} ([api] token_file)", self.token_file.display())
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let body_text = body.filter(|b| !b.is_null()).map(|b| b.to_string());
        let (status, text) = request(self.api, method, path, token.as_deref(), body_text.as_deref())
            .with_context(|| format!("calling the running node's API at {} (pid {})", self.api, self.pid))?;
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        anyhow::ensure!(
            (200..300).contains(&status),
            "the running node (pid {}) answered {status}: {}",
            self.pid,
            value["error"].as_str().map_or_else(|| value.to_string(), str::to_owned)
        );
        Ok(value)
    }
}

/// One HTTP/1.1 request; returns the status code and the body.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("not an HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status: u16 =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status code in the HTTP response")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else { break };
        let after = &rest[eol + 2..];
        if size == 0 || after.len() < size {
            break;
        }
        out.extend_from_slice(&after[..size]);
        rest = after[size..].strip_prefix(b"\r\n").unwrap_or(&after[size..]);
    }
    out
}
