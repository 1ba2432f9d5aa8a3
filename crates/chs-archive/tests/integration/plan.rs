//! Catch-up planning with fixed clocks (status-go-archives.md §10.1 step 6).

use chs_archive::{CatchUpCase, CatchUpPlan, CatchUpPolicy, MAX_SECS, Window, plan_catch_up, windows};

use crate::common::*;

const NOW: u64 = 1_700_000_000;

#[test]
fn case1_no_archive_no_messages() {
    for policy in [CatchUpPolicy::WholeIntervals, CatchUpPolicy::UpToNow] {
        let plan = plan_catch_up(None, None, NOW, WEEK, policy).expect("plan");
        assert_eq!(plan, CatchUpPlan { case: CatchUpCase::NoMessages, build_now: None, next_run_at: NOW + WEEK });
        // status-go treats a stored end date of 0 as "none".
        assert_eq!(plan_catch_up(Some(0), Some(0), NOW, WEEK, policy).expect("plan").case, CatchUpCase::NoMessages);
    }
}

#[test]
fn case2_last_archive_younger_than_interval_waits() {
    let last = NOW - 3 * DAY;
    let plan = plan_catch_up(Some(last), Some(NOW - 100 * DAY), NOW, WEEK, CatchUpPolicy::UpToNow).expect("plan");
    // status-go: AfterFunc(7d - since) builds [last, last + 7d).
    assert_eq!(plan, CatchUpPlan { case: CatchUpCase::Wait, build_now: None, next_run_at: last + WEEK });
    // At that time, exactly one window is due, under both policies.
    for policy in [CatchUpPolicy::WholeIntervals, CatchUpPolicy::UpToNow] {
        let later = plan_catch_up(Some(last), None, last + WEEK, WEEK, policy).expect("plan");
        assert_eq!(later.case, CatchUpCase::BuildNow);
        assert_eq!(later.build_now, Some(Window { from: last, to: last + WEEK }));
        assert_eq!(later.windows(WEEK).expect("windows").len(), 1);
    }
}

#[test]
fn case2_anchored_at_first_message_without_archive() {
    let first = NOW - DAY;
    let plan = plan_catch_up(None, Some(first), NOW, WEEK, CatchUpPolicy::default()).expect("plan");
    assert_eq!(plan.case, CatchUpCase::Wait);
    assert_eq!(plan.next_run_at, first + WEEK);
}

#[test]
fn case3_older_than_interval_builds_now() {
    let last = NOW - 10 * DAY;
    let status_go = plan_catch_up(Some(last), None, NOW, WEEK, CatchUpPolicy::UpToNow).expect("plan");
    assert_eq!(status_go.case, CatchUpCase::BuildNow);
    assert_eq!(status_go.build_now, Some(Window { from: last, to: NOW }));
    assert_eq!(
        status_go.windows(WEEK).expect("windows"),
        [Window { from: last, to: last + WEEK }, Window { from: last + WEEK, to: NOW }]
    );
    assert_eq!(status_go.next_run_at, NOW + WEEK);
    let whole = plan_catch_up(Some(last), None, NOW, WEEK, CatchUpPolicy::WholeIntervals).expect("plan");
    assert_eq!(whole.build_now, Some(Window { from: last, to: last + WEEK }));
    assert_eq!(whole.next_run_at, last + 2 * WEEK);
}

#[test]
fn thirty_days_offline_gives_four_archives() {
    let last = NOW - 30 * DAY;
    let plan = plan_catch_up(Some(last), None, NOW, WEEK, CatchUpPolicy::WholeIntervals).expect("plan");
    let windows = plan.windows(WEEK).expect("windows");
    assert_eq!(windows.len(), 4);
    assert!(windows.iter().all(|w| w.to - w.from == WEEK));
    assert_eq!(windows[3].to, last + 28 * DAY);
    assert_eq!(plan.next_run_at, last + 35 * DAY);
    // Building those windows from a store with messages every day gives 4 archives.
    let dir = tempdir();
    let msgs: Vec<_> = (0..30).map(|d| status_go_message(last + d * DAY + HOUR, TOPIC, d as u8)).collect();
    let range = plan.build_now.expect("range");
    let report = build(dir.path(), &msgs, &[TOPIC], range.from, range.to);
    assert_eq!(report.archives.len(), 4);
    // status-go's exact rule adds the partial last window (2 days).
    let status_go = plan_catch_up(Some(last), None, NOW, WEEK, CatchUpPolicy::UpToNow).expect("plan");
    let windows = status_go.windows(WEEK).expect("windows");
    assert_eq!(windows.len(), 5);
    assert_eq!(windows[4], Window { from: last + 28 * DAY, to: NOW });
}

#[test]
fn windows_partition_like_status_go() {
    let got: Vec<_> = windows(JAN1, JAN1 + 20 * DAY, WEEK).expect("windows").collect();
    assert_eq!(
        got,
        [
            Window { from: JAN1, to: JAN1 + WEEK },
            Window { from: JAN1 + WEEK, to: JAN1 + 2 * WEEK },
            Window { from: JAN1 + 2 * WEEK, to: JAN1 + 20 * DAY },
        ]
    );
    assert_eq!(windows(5, 5, WEEK).expect("windows").count(), 0, "from == to: no window");
    assert_eq!(windows(6, 5, WEEK).expect("windows").count(), 0, "from > to: no window");
    assert_eq!(windows(JAN1, JAN1 + 20 * DAY, WEEK).expect("windows").remaining(), 3);
    let near_max: Vec<_> = windows(MAX_SECS - 10, MAX_SECS, 7).expect("windows").collect();
    assert_eq!(
        near_max,
        [Window { from: MAX_SECS - 10, to: MAX_SECS - 3 }, Window { from: MAX_SECS - 3, to: MAX_SECS }]
    );
}
