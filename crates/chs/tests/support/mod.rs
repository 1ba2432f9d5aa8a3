//! Running the real `chs` binary: children are killed on drop, every wait is bounded, and
//! synchronisation is on output lines (never on sleeps).

#![allow(dead_code, clippy::unwrap_used)] // a panic is a test failure

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous bound on any single child process step.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn chs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chs"))
}

enum Event {
    Line(String),
    OutEof,
    /// More stderr text was appended to [`Proc::stderr`].
    ErrText,
    ErrEof,
}

/// A running `chs` process.
pub(crate) struct Proc {
    child: Child,
    events: Receiver<Event>,
    stderr: Arc<Mutex<String>>,
    stdout_seen: Vec<String>,
    out_eof: bool,
    err_eof: bool,
    what: String,
}

/// What a finished process printed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    pub(crate) fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn failed(self) -> Self {
        assert!(!self.status.success(), "expected failure\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Proc {
    pub(crate) fn spawn<I, S>(args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Proc::spawn_env(args, [] as [(&str, &str); 0])
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub(crate) fn spawn_env<I, S, E, K, V>(args: I, envs: E) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = chs();
        cmd.args(args).envs(envs);
        Proc::spawn_command(cmd)
    }

    /// Runs `cmd` (stdin closed, stdout and stderr read), e.g. `chs` under a shell that sets its
    /// umask ([`chs_with_umask`]).
    pub(crate) fn spawn_command(mut cmd: Command) -> Proc {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let (tx, events) = channel();
        let stdout = child.stdout.take().expect("stdout piped");
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if out_tx.send(Event::Line(line)).is_err() {
                    return;
                }
            }
            let _ = out_tx.send(Event::OutEof);
        });
        let mut stderr_pipe = child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                        let _ = tx.send(Event::ErrText);
                    }
                }
            }
            let _ = tx.send(Event::ErrEof);
        });
        Proc { child, events, stderr, stdout_seen: Vec::new(), out_eof: false, err_eof: false, what }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        panic!("{why}: {}\nstdout so far:\n{}\nstderr:\n{}", self.what, self.stdout_seen.join("\n"), self.stderr())
    }

    /// The next output event before `deadline` (or a failure naming `waiting_for`), after its
    /// bookkeeping: a stdout line is kept in `stdout_seen`, an end of stream is recorded.
    fn next_event(&mut self, deadline: Instant, waiting_for: &str) -> Event {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match self.events.recv_timeout(left) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => self.fail(&format!("timed out waiting for {waiting_for}")),
            Err(RecvTimeoutError::Disconnected) => self.fail("output readers ended"),
        };
        match &event {
            Event::Line(line) => self.stdout_seen.push(line.clone()),
            Event::OutEof => self.out_eof = true,
            Event::ErrEof => self.err_eof = true,
            Event::ErrText => {}
        }
        event
    }

    /// Waits (bounded by `timeout`) for the next stdout line matching `pred`.
    pub(crate) fn wait_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline, "a line") {
                Event::Line(line) if pred(&line) => return line,
                Event::OutEof => self.fail("stdout closed before the expected line"),
                _ => {}
            }
        }
    }

    /// Waits (bounded by `timeout`) until stderr contains `text`.
    pub(crate) fn wait_stderr(&mut self, timeout: Duration, text: &str) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(text) {
            if let Event::ErrEof = self.next_event(deadline, text)
                && !self.stderr().contains(text)
            {
                self.fail(&format!("stderr closed without {text:?}"));
            }
        }
    }

    /// Waits (bounded) until the process closed stdout and stderr, then for its exit.
    pub(crate) fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        while !(self.out_eof && self.err_eof) {
            self.next_event(deadline, "the process to end");
        }
        let status = self.child.wait().expect("waiting for the child");
        let mut stdout = self.stdout_seen.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Finished { status, stdout, stderr: self.stderr() }
    }

    /// Kills the process (e.g. a seeder) and waits for it.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `chs ARGS` with extra environment variables (e.g. a private key) to completion (bounded
/// by [`TIMEOUT`]).
pub(crate) fn run_env<I, S, E, K, V>(args: I, envs: E) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    Proc::spawn_env(args, envs).finish(TIMEOUT)
}

/// `chs ARGS` run by `sh` after `umask UMASK` (e.g. `022`, the usual default, under which files
/// are created readable by everyone unless the program asks for less).
pub(crate) fn chs_with_umask<I, S>(umask: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("umask {umask} && exec \"$0\" \"$@\"")).arg(env!("CARGO_BIN_EXE_chs")).args(args);
    cmd
}

/// Runs `chs ARGS` to completion (bounded by [`TIMEOUT`]).
pub(crate) fn run<I, S>(args: I) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Proc::spawn(args).finish(TIMEOUT)
}

pub(crate) fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

pub(crate) const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample-messages.ndjson");

/// A JSON line the child printed.
pub(crate) fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Whether `line` is a JSON signal of type `t`.
pub(crate) fn is_type(line: &str, t: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["type"] == t)
}

/// `chs demo --setup DIR` (debounce 0): an owner folder with `weeks × per_week` stored messages and
/// `members` member folders, each with its `chs.toml`; returns the printed JSON.
pub(crate) fn demo_setup(dir: &Path, members: usize, weeks: u32, per_week: usize) -> serde_json::Value {
    let (members, weeks, per_week) = (members.to_string(), weeks.to_string(), per_week.to_string());
    run([
        "demo",
        "--setup",
        p(dir),
        "--members",
        &members,
        "--weeks",
        &weeks,
        "--messages-per-week",
        &per_week,
        "--debounce",
        "0",
        "--json",
    ])
    .ok()
    .json()
}

/// The `chs` subcommand paths below `path` (from the "Commands:" sections of `--help`).
pub(crate) fn subcommands(path: &[String], out: &mut Vec<Vec<String>>) {
    let help = run(path.iter().map(String::as_str).chain(["--help"])).ok().stdout;
    out.push(path.to_vec());
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            let Some(name) = line.strip_prefix("  ").and_then(|l| l.split_whitespace().next()) else { break };
            if name != "help" {
                let mut sub = path.to_vec();
                sub.push(name.to_owned());
                subcommands(&sub, out);
            }
        }
    }
}

/// Turns off, in a `chs node init` file, every way the node would reach the real network
/// (DHT, trackers, DNS discovery, discv5, peer exchange): tests never leave the machine.
pub(crate) fn offline_config(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("read the config");
    let mut out = String::new();
    let mut changed = 0;
    for line in text.lines() {
        let key = line.split(" = ").next().unwrap_or("");
        let replaced = match key {
            "dht" | "discv5" | "peer_exchange" => Some(format!("{key} = false")),
            "trackers" | "dns_discovery" => Some(format!("{key} = []")),
            _ => None,
        };
        if let Some(r) = replaced {
            changed += 1;
            out.push_str(&r);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert_eq!(changed, 5, "the settings `chs node init` writes changed: {text}");
    std::fs::write(path, out).expect("write the config");
}
