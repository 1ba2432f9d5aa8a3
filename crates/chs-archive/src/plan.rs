//! Time windows and catch-up planning: pure functions of fixed clocks (no I/O, no `now()`).

use serde::Serialize;

/// A half-open time window `[from, to)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub from: u64,
    /// End, exclusive.
    pub to: u64,
}

/// Planning input that can never give a useful result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The interval is 0 seconds: status-go loops forever on it (spec §15 item 26 F).
    #[error("archive interval must be at least 1 second, got 0")]
    ZeroInterval,
}

/// status-go's partition of `[from, to)`: windows of `interval` seconds aligned to `from`, the last
/// one cut at `to` (status-go-archives.md §4.2). Empty when `from >= to`.
///
/// # Errors
/// [`PlanError::ZeroInterval`].
pub fn windows(from: u64, to: u64, interval: u64) -> Result<Windows, PlanError> {
    if interval == 0 {
        return Err(PlanError::ZeroInterval);
    }
    Ok(Windows { next: from, to, interval })
}

/// Iterator over the windows of [`windows`].
#[derive(Debug, Clone)]
pub struct Windows {
    next: u64,
    to: u64,
    interval: u64,
}

impl Windows {
    /// How many windows remain.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        if self.next >= self.to { 0 } else { (self.to - self.next).div_ceil(self.interval) }
    }
}

impl Iterator for Windows {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        if self.next >= self.to {
            return None;
        }
        let window = Window { from: self.next, to: self.next.saturating_add(self.interval).min(self.to) };
        self.next = window.to;
        Some(window)
    }
}

/// How a node that has been away for more than one interval catches up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum CatchUpPolicy {
    /// Build only whole intervals now (`[last, last + k·interval)`), and the next one when it is
    /// complete: every archive is exactly one interval long and aligned to the first archive, and
    /// "30 days offline" gives 4 archives (RFC 61's example). Scheduling drift cannot produce
    /// extra short windows (status-go's ticker drift, §10.2).
    #[default]
    WholeIntervals,
    /// status-go's exact rule (`InitHistoryArchiveTasks`, §10.1): build `[last, now)` at once,
    /// including a last partial window.
    UpToNow,
}

/// Which of status-go's three start-up cases applies (status-go-archives.md §10.1 step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CatchUpCase {
    /// No archive and no stored message: nothing to build; check again after one interval.
    NoMessages,
    /// The last archive (or first message) is younger than one interval: wait until it is.
    Wait,
    /// One interval or more has passed: build now.
    BuildNow,
}

/// The result of [`plan_catch_up`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatchUpPlan {
    /// Which case applied.
    pub case: CatchUpCase,
    /// The range to build now (pass it to the builder), if any.
    pub build_now: Option<Window>,
    /// When (Unix seconds) to plan again; at that time the next range is due.
    pub next_run_at: u64,
}

impl CatchUpPlan {
    /// The windows of [`CatchUpPlan::build_now`] with `interval` (empty if nothing is due).
    ///
    /// # Errors
    /// [`PlanError::ZeroInterval`].
    pub fn windows(&self, interval: u64) -> Result<Vec<Window>, PlanError> {
        match self.build_now {
            Some(range) => Ok(windows(range.from, range.to, interval)?.collect()),
            None => Ok(Vec::new()),
        }
    }
}

/// Plans what to archive at `now`.
///
/// `last_archive_end` is the end of the last built range (status-go's
/// `last_message_archive_end_date`; 0 counts as none), `first_message` the oldest stored message
/// on the community's topics: status-go anchors the first archive there (§10.1 step 5).
///
/// # Errors
/// [`PlanError::ZeroInterval`].
pub fn plan_catch_up(
    last_archive_end: Option<u64>,
    first_message: Option<u64>,
    now: u64,
    interval: u64,
    policy: CatchUpPolicy,
) -> Result<CatchUpPlan, PlanError> {
    if interval == 0 {
        return Err(PlanError::ZeroInterval);
    }
    let last = last_archive_end.filter(|t| *t > 0).or(first_message.filter(|t| *t > 0));
    let Some(last) = last else {
        return Ok(CatchUpPlan {
            case: CatchUpCase::NoMessages,
            build_now: None,
            next_run_at: now.saturating_add(interval),
        });
    };
    let since = now.saturating_sub(last);
    if since < interval {
        return Ok(CatchUpPlan {
            case: CatchUpCase::Wait,
            build_now: None,
            next_run_at: last.saturating_add(interval),
        });
    }
    let plan = match policy {
        CatchUpPolicy::UpToNow => CatchUpPlan {
            case: CatchUpCase::BuildNow,
            build_now: Some(Window { from: last, to: now }),
            next_run_at: now.saturating_add(interval),
        },
        CatchUpPolicy::WholeIntervals => {
            let whole = since / interval;
            let end = last.saturating_add(whole.saturating_mul(interval));
            CatchUpPlan {
                case: CatchUpCase::BuildNow,
                build_now: Some(Window { from: last, to: end }),
                next_run_at: end.saturating_add(interval),
            }
        }
    };
    Ok(plan)
}
