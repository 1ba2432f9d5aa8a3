//! Time as the node sees it: the system clock, or a manual clock for demos and tests
//! ("30 days offline" without waiting 30 days).

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A source of Unix time that tasks can wait on.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + Debug {
    /// Now, Unix milliseconds.
    fn now_ms(&self) -> u64;

    /// Returns once [`Clock::now_ms`] is at least `deadline_ms`.
    async fn wait_until_ms(&self, deadline_ms: u64);

    /// Now, Unix seconds.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// Unix ms of the system clock (0 before 1970).
#[must_use]
pub fn system_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }

    async fn wait_until_ms(&self, deadline_ms: u64) {
        loop {
            let now = system_now_ms();
            if now >= deadline_ms {
                return;
            }
            // Re-check at least once a minute: the machine may have slept or the clock jumped.
            tokio::time::sleep(Duration::from_millis((deadline_ms - now).min(60_000))).await;
        }
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`], [`ManualClock::set_ms`]).
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    #[must_use]
    pub fn new(start_ms: u64) -> Self {
        ManualClock { now: watch::Sender::new(start_ms) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }

    /// Sets the clock (it may go backwards: tests of clock skew).
    pub fn set_ms(&self, now_ms: u64) {
        self.now.send_replace(now_ms);
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    async fn wait_until_ms(&self, deadline_ms: u64) {
        let mut rx = self.now.subscribe();
        // The sender lives in `self`, so `wait_for` only ends when the deadline is reached.
        let _ = rx.wait_for(|now| *now >= deadline_ms).await;
    }
}
