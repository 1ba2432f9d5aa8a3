//! Fault injection for crash tests: with [`Config::pause_at`](crate::Config::pause_at)
//! set to one of the points below, the node raises [`Signal::FaultPaused`] when it reaches that
//! point and then stops there for good, so that a test can `kill -9` the process at exactly that
//! step. `chs node` sets it from the `CHS_PAUSE_AT` environment variable; nothing in TOML does.
//!
//! Points of a control node, in order: `build:<n>` (before the builder's `n`-th I/O step, counted
//! from 0 in each build), `built` (archives written, end date not saved), `end-saved` (end date
//! saved, torrent not made), `torrent-written` (`.torrent` written, not seeded), `seeded` (seeded,
//! signal not raised), `published` (magnetlink published on Waku).
//! Points of a member: `metadata` (torrent metadata fetched and validated, index not requested),
//! `index-fetch` (the index download is running), `data` (the data download is running: some but
//! not all of its bytes are on disk), `import` (before the first archive's import transaction).

use std::io;

use chs_archive::{Step, StepHook};

use tokio_util::sync::CancellationToken;

use crate::services::Services;
use crate::signal::{Signal, SignalBus};

/// Whether `point` is the configured pause point.
pub(crate) fn is_at(pause_at: Option<&str>, point: &str) -> bool {
    pause_at == Some(point)
}

/// The named point of an async step: when it is the configured one, raises the signal and never
/// returns; otherwise returns at once.
pub(crate) async fn point(shared: &Services, point: &str) {
    if is_at(shared.config.pause_at.as_deref(), point) {
        shared.bus.publish(Signal::FaultPaused { point: point.to_owned() });
        std::future::pending::<()>().await;
    }
}

/// Raises the signal and blocks this thread for good (synchronous contexts: the builder's step
/// hook, progress callbacks). The signal is sent from a fresh thread so that the subscriber's
/// wake-up goes to the runtime's shared queue, not to the local slot of a worker about to block.
pub(crate) fn pause_blocking(bus: &SignalBus, point: &str) -> ! {
    let (bus, point) = (bus.clone(), point.to_owned());
    let _ = std::thread::spawn(move || bus.publish(Signal::FaultPaused { point })).join();
    loop {
        std::thread::park();
    }
}

/// The archive builder's hook: stops the build at its next safe point (before an I/O step) once
/// the node shuts down, and pauses before the `build:<n>` step.
pub(crate) struct BuildPause {
    bus: SignalBus,
    at: Option<u64>,
    seen: u64,
    cancel: CancellationToken,
}

impl BuildPause {
    pub(crate) fn new(bus: &SignalBus, pause_at: Option<&str>, cancel: CancellationToken) -> BuildPause {
        let at = pause_at.and_then(|p| p.strip_prefix("build:")).and_then(|n| n.parse().ok());
        BuildPause { bus: bus.clone(), at, seen: 0, cancel }
    }
}

impl StepHook for BuildPause {
    fn before(&mut self, step: Step) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            // The builder is crash-safe at every step: the next build resumes from here.
            tracing::info!(?step, "shutting down: the archive build stops here");
            return Err(io::Error::new(io::ErrorKind::Interrupted, "the node is shutting down"));
        }
        let n = self.seen;
        self.seen += 1;
        if self.at == Some(n) {
            tracing::warn!(?step, n, "fault injection: pausing before this build step");
            pause_blocking(&self.bus, &format!("build:{n}"));
        }
        Ok(())
    }
}
