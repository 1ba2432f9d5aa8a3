//! The folder lock between a build and whoever reads the folder (the node's seeder, another
//! builder): a seeder never hashes a half-built folder, and two builders never truncate each
//! other's appended bytes.

use std::io;
use std::path::PathBuf;
use std::sync::mpsc;

use chs_archive::{Builder, FolderLock, MemorySource, Reader, Step, StepHook};

use crate::common::*;

/// Checks at every step of a build that no shared lock can be taken.
struct ExpectLocked {
    dir: PathBuf,
    steps: usize,
}

impl StepHook for ExpectLocked {
    fn before(&mut self, step: Step) -> io::Result<()> {
        self.steps += 1;
        let free = FolderLock::try_shared(&self.dir).map_err(io::Error::other)?;
        assert!(free.is_none(), "the folder could be read while the build was at {step:?}");
        Ok(())
    }
}

#[test]
fn a_build_holds_the_folder_lock_at_every_step_and_releases_it() {
    let root = tempdir();
    let dir = root.path().join("community");
    let messages: Vec<_> = (0..40u32).map(|i| message(JAN1 + u64::from(i) * 9 * HOUR, TOPIC, i, 30_000)).collect();
    let mut options = chs_archive::BuildOptions::new(vec![TOPIC], JAN1 + 3 * WEEK);
    options.from = Some(JAN1);
    options.size_cap = 200_000;
    let mut hook = ExpectLocked { dir: dir.clone(), steps: 0 };
    let report = Builder::new(&dir, options).hook(&mut hook).run(&MemorySource::new(messages)).expect("build");
    assert!(report.archives.len() >= 3, "several archives: {report:?}");
    assert!(hook.steps > 10, "the hook saw the build's steps: {}", hook.steps);
    let lock = FolderLock::try_shared(&dir).expect("lock").expect("free after the build");
    assert!(!lock.is_exclusive());
    drop(lock);
    // Nothing was added to the folder (the torrent covers every file in it) or beside it.
    let names = |p: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&dir), ["data", "index"]);
    assert_eq!(names(root.path()), ["community"]);
    let verified = Reader::open(&dir).expect("reader").verify(chs_archive::PIECE_LENGTH);
    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn exclusive_waits_for_readers_and_readers_wait_for_it() {
    let root = tempdir();
    let dir = root.path().to_owned();
    let reader = FolderLock::shared(&dir).expect("shared");
    let (tx, rx) = mpsc::channel();
    let writer = {
        let dir = dir.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let lock = FolderLock::exclusive(&dir, || tx.send("waiting").unwrap()).expect("exclusive");
            tx.send("locked").unwrap();
            lock
        })
    };
    // The callback runs only when the lock is busy: the reader's lock made the builder wait.
    assert_eq!(rx.recv().unwrap(), "waiting");
    drop(reader);
    assert_eq!(rx.recv().unwrap(), "locked");
    let held = writer.join().unwrap();
    assert!(held.is_exclusive());
    assert!(FolderLock::try_shared(&dir).expect("try").is_none(), "a reader must not get in during a build");
    drop(held);
    assert!(FolderLock::try_shared(&dir).expect("try").is_some());
}

#[test]
fn locking_a_missing_folder_is_a_typed_error_naming_it() {
    let root = tempdir();
    let missing = root.path().join("nope");
    let err = FolderLock::try_shared(&missing).expect_err("missing folder");
    assert_eq!(err.folder, missing);
    assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn unfinished_names_what_a_build_in_progress_or_interrupted_left_and_repair_clears_it() {
    let root = tempdir();
    let dir = root.path().join("community");
    let messages: Vec<_> = (0..10u32).map(|i| message(JAN1 + u64::from(i) * HOUR, TOPIC, i, 1_000)).collect();
    build(&dir, &messages, &[TOPIC], JAN1, JAN1 + WEEK);
    assert_eq!(Reader::open(&dir).expect("open").unfinished(), None, "a finished build");
    let data = read(&dir, "data");

    // What a build killed after appending to `data` and writing `index.tmp` leaves.
    let mut longer = data.clone();
    longer.extend_from_slice(&[7; 5_000]);
    std::fs::write(dir.join("data"), &longer).unwrap();
    std::fs::write(dir.join("index.tmp"), b"partial").unwrap();
    let why = Reader::open(&dir).expect("open").unfinished().expect("unfinished");
    assert!(why.contains("index.tmp"), "{why}");
    std::fs::remove_file(dir.join("index.tmp")).unwrap();
    let why = Reader::open(&dir).expect("open").unfinished().expect("unfinished");
    assert!(why.contains(&format!("data is {} bytes", longer.len())), "{why}");
    std::fs::write(dir.join("index.tmp"), b"partial").unwrap();

    assert_eq!(chs_archive::repair(&dir).expect("repair"), 5_000);
    assert_eq!(Reader::open(&dir).expect("open").unfinished(), None);
    assert_eq!(read(&dir, "data"), data, "the committed archives are untouched");
    assert_eq!(chs_archive::repair(&dir).expect("repair again"), 0);

    // `data` shorter than the index (status-go's crash order, §4.9): reported, nothing deleted.
    std::fs::write(dir.join("data"), &data[..data.len() / 2]).unwrap();
    let why = Reader::open(&dir).expect("open").unfinished().expect("short data");
    assert!(why.contains("the index accounts for"), "{why}");
    let err = chs_archive::repair(&dir).expect_err("cannot repair short data");
    assert!(matches!(err, chs_archive::BuildError::DataShorterThanIndex { .. }), "{err:?}");
    assert_eq!(read(&dir, "data"), data[..data.len() / 2]);
}
