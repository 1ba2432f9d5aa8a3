//! Time windows and catch-up planning: pure functions of fixed clocks (no I/O, no `now()`).

/// A half-open time window `[from, to)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Window {
    /// Start, inclusive.
    pub from: u64,
    /// End, exclusive.
    pub to: u64,
}

/// The largest Unix time in seconds a plan accepts: 9999-12-31 23:59:59 UTC. Anything larger is
/// a time in a finer unit given where seconds are meant (milliseconds pass it from 1978 on,
/// nanoseconds always), and planning it would mean billions of windows.
pub const MAX_SECS: u64 = 253_402_300_799;

/// The unit a number too large for Unix seconds most likely is in (by magnitude, for a time
/// between 1978 and 2286).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum TimeUnit {
    /// Unix milliseconds (≈ 1.7e12 today).
    Milliseconds,
    /// Unix microseconds (≈ 1.7e15 today).
    Microseconds,
    /// Unix nanoseconds (≈ 1.7e18 today), e.g. a Waku message timestamp.
    Nanoseconds,
}

impl TimeUnit {
    /// The unit `value` looks like, if it cannot be Unix seconds (`value > MAX_SECS`).
    #[must_use]
    pub fn guess(value: u64) -> Option<TimeUnit> {
        if value <= MAX_SECS {
            None
        } else if value < 100_000_000_000_000 {
            Some(TimeUnit::Milliseconds)
        } else if value < 100_000_000_000_000_000 {
            Some(TimeUnit::Microseconds)
        } else {
            Some(TimeUnit::Nanoseconds)
        }
    }
}

impl std::fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeUnit::Milliseconds => "milliseconds",
            TimeUnit::Microseconds => "microseconds",
            TimeUnit::Nanoseconds => "nanoseconds",
        })
    }
}

/// Planning input that can never give a useful result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The interval is 0 seconds: status-go loops forever on it (spec §15 item 26 F).
    #[error("archive interval must be at least 1 second, got 0")]
    ZeroInterval,
    /// A time is past year 9999 as Unix seconds: it is in another unit.
    #[error("{what} {value} is not Unix seconds (it would be after the year 9999): it looks like {looks_like}")]
    NotSeconds {
        /// Which input (`from`, `to`, `now`).
        what: &'static str,
        /// The value given.
        value: u64,
        /// The unit it most likely is in.
        looks_like: TimeUnit,
    },
}

/// Checks that `value` can be Unix seconds (at most [`MAX_SECS`]); `what` names it in the error.
///
/// # Errors
/// [`PlanError::NotSeconds`].
pub fn check_secs(what: &'static str, value: u64) -> Result<u64, PlanError> {
    match TimeUnit::guess(value) {
        None => Ok(value),
        Some(looks_like) => Err(PlanError::NotSeconds { what, value, looks_like }),
    }
}

/// status-go's partition of `[from, to)`: windows of `interval` seconds aligned to `from`, the last
/// one cut at `to` (status-go-archives.md §4.2). Empty when `from >= to`.
///
/// The iterator is lazy: a range of billions of windows costs nothing until walked, and
/// [`Windows::skip_to`] jumps over windows known to be empty in O(1).
///
/// # Errors
/// [`PlanError::ZeroInterval`]; [`PlanError::NotSeconds`] when `from` or `to` is past
/// [`MAX_SECS`].
pub fn windows(from: u64, to: u64, interval: u64) -> Result<Windows, PlanError> {
    if interval == 0 {
        return Err(PlanError::ZeroInterval);
    }
    check_secs("from", from)?;
    check_secs("to", to)?;
    Ok(Windows { start: from, next: from, to, interval })
}

/// Iterator over the windows of [`windows`].
#[derive(Debug, Clone)]
pub struct Windows {
    start: u64,
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

    /// Start of the next window, if any remains.
    #[must_use]
    pub fn next_start(&self) -> Option<u64> {
        (self.next < self.to).then_some(self.next)
    }

    /// How many windows were passed so far (yielded or skipped).
    #[must_use]
    pub fn passed(&self) -> u64 {
        self.next.saturating_sub(self.start).div_ceil(self.interval)
    }

    /// Skips the windows that end at or before `time`, so that the next window yielded is the one
    /// holding `time` (none if `time >= to`); returns how many windows were skipped. Windows stay
    /// aligned to `from`: the result is the same as calling `next` that many times.
    pub fn skip_to(&mut self, time: u64) -> u64 {
        if time <= self.next || self.next >= self.to {
            return 0;
        }
        if time >= self.to {
            let skipped = self.remaining();
            self.next = self.to;
            return skipped;
        }
        let skipped = (time - self.next) / self.interval;
        // `time < to`, so this stays below `to` and cannot overflow.
        self.next += skipped * self.interval;
        skipped
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum CatchUpCase {
    /// No archive and no stored message: nothing to build; check again after one interval.
    NoMessages,
    /// The last archive (or first message) is younger than one interval: wait until it is.
    Wait,
    /// One interval or more has passed: build now.
    BuildNow,
}

/// The result of [`plan_catch_up`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
/// [`PlanError::ZeroInterval`]; [`PlanError::NotSeconds`] when `now` is past [`MAX_SECS`].
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
    check_secs("now", now)?;
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
