//! Issue item 8, "bad input hangs": a build's cost follows the messages, not the time span, and
//! timestamps that cannot be seconds are refused with what they look like.

use std::sync::mpsc;
use std::time::Duration;

use chs_archive::{
    BuildError, BuildOptions, BuildReport, Builder, MAX_SECS, MemorySource, PlanError, TimeUnit, Window, plan_catch_up,
    windows,
};
use chs_store::{Store, StoredMessage};
use sha1::Digest as _;

use crate::common::*;

const YEAR: u64 = 365 * DAY;

/// Runs `f` on a thread and fails the test if it has not finished within `deadline`.
fn within<T: Send + 'static>(deadline: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(deadline).unwrap_or_else(|_| panic!("{what} did not finish within {deadline:?}"))
}

fn stored(messages: &[chs_proto::protobuf::WakuMessage]) -> Vec<StoredMessage> {
    messages
        .iter()
        .map(|m| StoredMessage::from_archive_message("/waku/2/rs/16/32", m, 1).expect("stored message"))
        .collect()
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

#[test]
fn bad_input_hangs_100_years_with_two_messages_builds_within_a_deadline() {
    let db = tempdir();
    let db_path = db.path().join("store.db");
    let first = JAN1 + 5 * HOUR;
    let last = JAN1 + 99 * YEAR + 17;
    {
        let mut store = Store::open(&db_path).expect("store");
        store.insert_batch(&stored(&[message(first, TOPIC, 1, 200), message(last, TOPIC, 2, 300)])).expect("insert");
    }
    let out = tempdir();
    let dir = out.path().to_owned();
    // One-second windows over 100 years: 3.15e9 windows, 2 of them with a message.
    let report = within(Duration::from_secs(20), "a 100-year build of 2 messages", move || {
        let store = Store::open(&db_path).expect("store");
        let mut options = BuildOptions::new(vec![TOPIC], JAN1 + 100 * YEAR);
        options.interval = 1;
        Builder::new(&dir, options).run(&store).expect("build")
    });
    let windows: Vec<Window> = report.archives.iter().map(|a| a.window).collect();
    assert_eq!(windows, [Window { from: first, to: first + 1 }, Window { from: last, to: last + 1 }]);
    assert_eq!(report.messages_archived, 2);
    assert_eq!(report.windows_scanned, JAN1 + 100 * YEAR - first, "every window of the range is accounted for");
    assert_eq!(report.windows_empty, report.windows_scanned - 2);
    assert_eq!(report.archived_until, JAN1 + 100 * YEAR);
}

/// The archives of a sparse history (long empty stretches, a message on another topic inside one,
/// an explicit `from` long before the first message) are byte for byte those the window-by-window
/// builder produced: the digests below were taken from it (commit 51b424f).
#[test]
fn bad_input_hangs_skipping_empty_windows_keeps_the_archives_identical() {
    let other = [7, 7, 7, 7];
    let msgs = vec![
        message(JAN1 + 3 * HOUR, TOPIC, 1, 120),
        message(JAN1 + 3 * HOUR, TOPIC, 2, 80),
        message(JAN1 + 2 * DAY, TOPIC, 3, 500),
        message(JAN1 + 3 * YEAR, other, 4, 50),
        message(JAN1 + 10 * YEAR + 5 * DAY, TOPIC, 5, 70),
        message(JAN1 + 10 * YEAR + 9 * DAY, TOPIC, 6, 90),
        message(JAN1 + 10 * YEAR + 30 * DAY - 1, TOPIC, 7, 90),
    ];
    // from, to, sha1(data), sha1(index), windows scanned, windows empty
    type Case = (Option<u64>, u64, &'static str, &'static str, u64, u64);
    let cases: [Case; 2] = [
        (
            None,
            JAN1 + 10 * YEAR + 30 * DAY,
            "25a1f2c4611f18447ef62e7d288818b96e36c020",
            "a3b1a06cccdb6741dc4654bd510e77d2d0bcbf32",
            526,
            523,
        ),
        (
            Some(JAN1 - 50 * WEEK),
            JAN1 + 10 * YEAR + 30 * DAY + 3,
            "2cc4be6cdea83ee48644ebaddbf88c4c2254b1d6",
            "e088105628e4cf5b02fa37e2d88bf58c75bf30ca",
            576,
            573,
        ),
    ];
    for (from, to, data_sha1, index_sha1, scanned, empty) in cases {
        let dir = tempdir();
        let mut options = BuildOptions::new(vec![TOPIC], to);
        options.from = from;
        let report: BuildReport =
            Builder::new(dir.path(), options).run(&MemorySource::new(msgs.clone())).expect("build");
        assert_eq!(sha1_hex(&read(dir.path(), "data")), data_sha1);
        assert_eq!(sha1_hex(&read(dir.path(), "index")), index_sha1);
        assert_eq!((report.windows_scanned, report.windows_empty), (scanned, empty));
    }
}

#[test]
fn bad_input_hangs_times_that_cannot_be_seconds_are_refused_by_unit() {
    let ns = 1_790_000_001_000_000_000;
    let err = windows(JAN1, ns, WEEK).expect_err("nanoseconds refused");
    assert_eq!(err, PlanError::NotSeconds { what: "to", value: ns, looks_like: TimeUnit::Nanoseconds });
    assert!(err.to_string().contains("looks like nanoseconds"), "{err}");
    let ms = 1_790_000_001_000;
    let err = windows(ms, ms + 1, WEEK).expect_err("milliseconds refused");
    assert_eq!(err, PlanError::NotSeconds { what: "from", value: ms, looks_like: TimeUnit::Milliseconds });
    assert!(err.to_string().contains("looks like milliseconds"), "{err}");
    assert_eq!(TimeUnit::guess(1_790_000_001_000_000), Some(TimeUnit::Microseconds));
    assert_eq!(TimeUnit::guess(MAX_SECS), None);
    assert_eq!(TimeUnit::guess(MAX_SECS + 1), Some(TimeUnit::Milliseconds));
    assert!(matches!(
        plan_catch_up(None, Some(JAN1), ns, WEEK, chs_archive::CatchUpPolicy::default()),
        Err(PlanError::NotSeconds { what: "now", looks_like: TimeUnit::Nanoseconds, .. })
    ));

    // The builder refuses it before touching the folder, even with nothing to archive.
    let dir = tempdir();
    let msgs = vec![message(JAN1, TOPIC, 1, 10)];
    let err = within(Duration::from_secs(20), "a build to a nanosecond time", {
        let path = dir.path().to_owned();
        move || Builder::new(&path, BuildOptions::new(vec![TOPIC], ns)).run(&MemorySource::new(msgs)).err()
    })
    .expect("refused");
    assert!(
        matches!(err, BuildError::Plan(PlanError::NotSeconds { looks_like: TimeUnit::Nanoseconds, .. })),
        "{err:?}"
    );
    assert!(!dir.path().join("data").exists() && !dir.path().join("index").exists());
}

#[test]
fn bad_input_hangs_skip_to_lands_where_iterating_does() {
    for (from, to, interval) in [(JAN1, JAN1 + 20 * DAY + 5, WEEK), (3, 100, 7), (0, 10, 1), (5, 6, 100)] {
        let all: Vec<Window> = windows(from, to, interval).expect("windows").collect();
        for time in (from.saturating_sub(2))..(to + 3).min(from + 40 * DAY) {
            let mut skipping = windows(from, to, interval).expect("windows");
            let skipped = skipping.skip_to(time);
            let expected: Vec<Window> = all.iter().copied().filter(|w| w.to > time).collect();
            assert_eq!(skipped as usize, all.len() - expected.len(), "skip_to({time}) in [{from}, {to}) / {interval}");
            assert_eq!(skipping.passed() as usize, skipped as usize);
            assert_eq!(skipping.collect::<Vec<_>>(), expected, "skip_to({time}) in [{from}, {to}) / {interval}");
            if time > to {
                break;
            }
        }
    }
}
