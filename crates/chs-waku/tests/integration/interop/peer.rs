//! Drives status-go's own Waku node (`chspeer-waku` from `$CHS_PEERS_BIN`) over its line
//! protocol (see the header of `../shared/peers/src/chspeer-waku/main.go`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The folder of status-go's peers, or `None` after printing the skip notice.
#[allow(clippy::print_stdout)] // the notice `cargo xtask interop` looks for
pub(crate) fn peers_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CHS_PEERS_BIN") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            println!("skipped: {test}: set CHS_PEERS_BIN to ../shared/peers/bin (status-go's peers)");
            None
        }
    }
}

/// One running chspeer process, its stdin and its stdout lines.
pub(crate) struct GoPeer {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every line read so far.
    pub(crate) seen: Vec<String>,
}

impl GoPeer {
    /// Starts `bin/<program> args...`; stderr goes to the test output.
    pub(crate) fn spawn(bin: &std::path::Path, program: &str, name: &'static str, args: &[String]) -> GoPeer {
        let mut child = Command::new(bin.join(program))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{program} runs: {err}"));
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        GoPeer { name, child, stdin, lines, seen: Vec::new() }
    }

    /// status-go's Waku node (cluster 16, shard 32) on 127.0.0.1 with `extra` flags, started
    /// (READY seen).
    pub(crate) async fn waku(bin: &std::path::Path, name: &'static str, extra: &[&str]) -> GoPeer {
        let mut args: Vec<String> = vec!["-loglevel".into(), "warn".into()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut peer = GoPeer::spawn(bin, "chspeer-waku", name, &args);
        peer.expect("READY").await;
        peer
    }

    /// The next line, `None` at end of output.
    pub(crate) async fn next_line(&mut self) -> Option<String> {
        let line = self.lines.next_line().await.expect("read peer stdout")?;
        tracing::info!(target: "chspeer", "[{}] {line}", self.name);
        self.seen.push(line.clone());
        Some(line)
    }

    /// The next line starting with `prefix`; FATAL lines fail the test.
    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = self.next_line().await.unwrap_or_else(|| panic!("{} exited before {prefix}", self.name));
            assert!(!line.starts_with("FATAL"), "{}: {line}", self.name);
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The next line starting with `prefix` and containing `needle`.
    pub(crate) async fn expect_with(&mut self, prefix: &str, needle: &str) -> String {
        loop {
            let line = self.expect(prefix).await;
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The first already seen line starting with `prefix`, its rest.
    pub(crate) fn seen_value(&self, prefix: &str) -> String {
        self.seen
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{} printed no {prefix}", self.name))
            .trim()
            .to_owned()
    }

    /// The peer's TCP listen multiaddr with `/p2p/<id>`.
    pub(crate) fn listen_addr(&self) -> String {
        self.seen
            .iter()
            .filter_map(|line| line.strip_prefix("LISTEN "))
            .find(|addr| addr.contains("/tcp/") && !addr.contains("/ws"))
            .unwrap_or_else(|| panic!("{} printed no LISTEN", self.name))
            .to_owned()
    }

    /// The peer id it printed.
    pub(crate) fn peer_id(&self) -> String {
        self.seen_value("PEERID ")
    }

    /// Writes one command line.
    pub(crate) async fn send(&mut self, command: &str) {
        tracing::info!(target: "chspeer", "[{}] << {command}", self.name);
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("write peer stdin");
        self.stdin.flush().await.expect("flush peer stdin");
    }

    /// Sends `quit` and waits (bounded) for the process to end.
    pub(crate) async fn quit(mut self) {
        self.send("quit").await;
        let wait = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        assert!(matches!(wait, Ok(Ok(status)) if status.success()), "{} did not quit cleanly: {wait:?}", self.name);
    }
}
