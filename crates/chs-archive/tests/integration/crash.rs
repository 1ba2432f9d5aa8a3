//! Crash safety (spec §15 item 10 F): a failure between any two steps, or a real `kill -9`, leaves a
//! directory that the next build repairs and completes, byte-identical to an uninterrupted build.

use std::io::{self, BufRead as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use chs_archive::{BuildError, BuildOptions, Builder, MemorySource, PIECE_LENGTH, Reader, Step, StepHook};
use chs_proto::protobuf::WakuMessage;

use crate::common::*;

const CHILD_DIR: &str = "CHS_ARCHIVE_CRASH_CHILD_DIR";
const CHILD_AT: &str = "CHS_ARCHIVE_CRASH_CHILD_AT";
const MARKER: &str = "CHS-ARCHIVE-CRASH-REACHED";

fn messages() -> Vec<WakuMessage> {
    (0..36u32)
        .map(|i| message(JAN1 + u64::from(i) * 18 * HOUR + 7, TOPIC, i, 20_000 + (i as usize * 7_777) % 40_000))
        .collect()
}

fn options(from: u64, to: u64) -> BuildOptions {
    let mut options = BuildOptions::new(vec![TOPIC], to);
    options.from = Some(from);
    options.size_cap = 100_000;
    options
}

/// The first run (one window), already committed before the interrupted run starts.
fn prepare(dir: &Path) {
    Builder::new(dir, options(JAN1, JAN1 + WEEK)).run(&MemorySource::new(messages())).expect("first run");
}

/// The run that gets interrupted: resumes after the first window, up to four weeks.
fn second_run(dir: &Path, hook: &mut dyn StepHook) -> Result<chs_archive::BuildReport, BuildError> {
    Builder::new(dir, options(JAN1, JAN1 + 4 * WEEK)).hook(hook).run(&MemorySource::new(messages()))
}

/// Fails at the `fail_at`-th step (counting from 0) and records the steps seen.
#[derive(Default)]
struct FailAt {
    fail_at: Option<usize>,
    steps: Vec<Step>,
}

impl StepHook for FailAt {
    fn before(&mut self, step: Step) -> io::Result<()> {
        self.steps.push(step);
        if Some(self.steps.len() - 1) == self.fail_at { Err(io::Error::other("injected failure")) } else { Ok(()) }
    }
}

/// The bytes an uninterrupted run produces.
fn reference() -> (Vec<u8>, Vec<u8>, Vec<Step>, Vec<u8>) {
    let dir = tempdir();
    prepare(dir.path());
    let before = read(dir.path(), "data");
    let mut counter = FailAt::default();
    second_run(dir.path(), &mut counter).expect("clean run");
    (read(dir.path(), "data"), read(dir.path(), "index"), counter.steps, before)
}

fn assert_consistent(dir: &Path, data_before: &[u8]) {
    let data = read(dir, "data");
    assert_eq!(&data[..data_before.len()], data_before, "earlier bytes unchanged");
    let reader = Reader::open(dir).expect("open");
    let report = reader.verify(PIECE_LENGTH);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(!dir.join("index.tmp").exists() || dir.join("index").exists());
}

#[test]
fn spec15_item10_failure_injected_at_every_step() {
    let (ref_data, ref_index, steps, data_before) = reference();
    assert!(steps.len() >= 20, "the scenario covers several archives and commits: {steps:?}");
    assert!(steps.contains(&Step::RenameIndex) && steps.contains(&Step::SyncDir));
    for (fail_at, expected_step) in steps.iter().enumerate() {
        let dir = tempdir();
        prepare(dir.path());
        let mut hook = FailAt { fail_at: Some(fail_at), ..FailAt::default() };
        let err = second_run(dir.path(), &mut hook).expect_err("injected");
        match err {
            BuildError::Io { step, .. } => assert_eq!(step, *expected_step, "failure {fail_at}"),
            other => panic!("failure {fail_at}: unexpected {other:?}"),
        }
        assert_consistent(dir.path(), &data_before);
        // A second failure, at the first step of the repairing run, changes nothing either.
        let mut hook = FailAt { fail_at: Some(0), ..FailAt::default() };
        let _ = second_run(dir.path(), &mut hook);
        assert_consistent(dir.path(), &data_before);
        let report = second_run(dir.path(), &mut FailAt::default()).expect("repairing run");
        assert!(read(dir.path(), "data") == ref_data, "failure at step {fail_at} ({expected_step:?}): data differs");
        assert_eq!(read(dir.path(), "index"), ref_index, "failure at step {fail_at}: index differs");
        assert!(!dir.path().join("index.tmp").exists());
        let _ = report;
    }
}

#[test]
fn repair_truncates_unaccounted_data_and_stale_temp_index() {
    let dir = tempdir();
    prepare(dir.path());
    let committed = read(dir.path(), "data");
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.path().join("data")).expect("open");
    file.write_all(&[0xab; 12_345]).expect("append junk");
    std::fs::write(dir.path().join("index.tmp"), b"half an index").expect("stale tmp");
    assert_eq!(Reader::open(dir.path()).expect("open").verify(PIECE_LENGTH).stray_files, ["index.tmp"]);
    assert_eq!(Reader::open(dir.path()).expect("open").verify(PIECE_LENGTH).trailing_bytes, 12_345);
    let report = second_run(dir.path(), &mut FailAt::default()).expect("run");
    assert_eq!(report.repaired_bytes, 12_345);
    assert_eq!(&read(dir.path(), "data")[..committed.len()], &committed[..]);
    assert!(!dir.path().join("index.tmp").exists());
    let verify = Reader::open(dir.path()).expect("open").verify(PIECE_LENGTH);
    assert!(verify.is_ok() && verify.stray_files.is_empty() && verify.trailing_bytes == 0, "{verify:?}");
}

#[test]
fn data_shorter_than_index_is_refused() {
    let dir = tempdir();
    prepare(dir.path());
    let file = std::fs::OpenOptions::new().write(true).open(dir.path().join("data")).expect("open");
    file.set_len(PIECE_LENGTH).expect("truncate");
    let err = second_run(dir.path(), &mut FailAt::default()).expect_err("refused");
    assert!(matches!(err, BuildError::DataShorterThanIndex { data_len: PIECE_LENGTH, .. }), "{err:?}");
}

/// The child side of [`killed_child_process`]: runs the interrupted build and blocks at step `at`.
fn child_main(dir: &str, at: &str) {
    struct BlockAt(Option<usize>, usize);
    impl StepHook for BlockAt {
        fn before(&mut self, step: Step) -> io::Result<()> {
            let n = self.1;
            self.1 += 1;
            if self.0.is_none_or(|at| at == n) {
                let mut out = io::stdout().lock();
                writeln!(out, "{MARKER} {n} {step:?}")?;
                out.flush()?;
                if self.0.is_some() {
                    // Block until killed: the parent holds stdin open and never writes.
                    let mut line = String::new();
                    io::stdin().read_line(&mut line)?;
                }
            }
            Ok(())
        }
    }
    let mut hook = BlockAt(at.parse().ok(), 0);
    let _ = second_run(Path::new(dir), &mut hook);
}

/// A real child process, killed with SIGKILL at each step (and once while running freely), then
/// the directory is repaired and completed by this process.
#[test]
fn killed_child_process() {
    if let (Ok(dir), Ok(at)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_AT)) {
        child_main(&dir, &at);
        return;
    }
    let (ref_data, ref_index, steps, data_before) = reference();
    let exe = std::env::current_exe().expect("test binary");
    let kill_points: Vec<String> =
        (0..steps.len()).step_by(3).map(|n| n.to_string()).chain(["free".to_owned()]).collect();
    for at in kill_points {
        let dir = tempdir();
        prepare(dir.path());
        let mut child = Command::new(&exe)
            .args(["crash::killed_child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_AT, &at)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        // Read on a thread so that a child that never reaches the kill point fails the test
        // (after a generous deadline) instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test name ... " on the same line first.
                if let Some(pos) = line.find(MARKER) {
                    let _ = tx.send(Some(line[pos + MARKER.len()..].trim().to_owned()));
                    return;
                }
            }
            let _ = tx.send(None);
        });
        let reached = rx.recv_timeout(std::time::Duration::from_secs(120));
        let Ok(Some(reached)) = reached else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child never reached kill point {at}: {reached:?}");
        };
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        if at != "free" {
            assert!(!status.success(), "kill point {at}: the child was killed ({status})");
        }
        assert_consistent(dir.path(), &data_before);
        second_run(dir.path(), &mut FailAt::default()).expect("repairing run");
        assert!(read(dir.path(), "data") == ref_data, "killed at {reached}: data differs");
        assert_eq!(read(dir.path(), "index"), ref_index, "killed at {reached}: index differs");
    }
}
