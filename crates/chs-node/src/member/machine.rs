//! The member's decisions for one community, without I/O and without reading a clock: which
//! accepted link to download and when (debounce), what to do when a download ends (retry with
//! backoff, or make way for a newer link), which messages whose verdict failed to judge again and
//! when. The member task ([`super::run`]) feeds it events with the time they happened and carries
//! out the [`Action`]s it returns; tests drive it with made-up instants.

use std::time::Duration;

use chs_community::PendingLink;
use tokio::time::Instant;

/// Keep at most this many messages whose verdict failed (the newest win).
pub(crate) const MAX_DEFERRED: usize = 16;
/// Verdict retries are never further apart than this.
const MAX_VERDICT_RETRY: Duration = Duration::from_secs(60);

/// How long to wait before retrying after `attempt` failures: `first`, doubling.
pub(crate) fn backoff(first: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
}

/// The member settings the machine needs (`[member]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Only the newest link of a burst is acted on: a download starts this long after the last
    /// accepted link.
    pub(crate) debounce: Duration,
    /// First retry delay (doubling).
    pub(crate) retry_backoff: Duration,
    /// Attempts per link (download or verdict) before giving up.
    pub(crate) max_attempts: u32,
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Everything fetched, imported and seeded.
    Done,
    /// Cancelled (a newer link, or shutdown).
    Cancelled,
    /// Failed with this error (the chain of causes).
    Failed(String),
}

/// What the member task must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Record the link as pending in the store (so a restart resumes it).
    SavePending(PendingLink),
    /// Start downloading the link.
    Start(PendingLink),
    /// Cancel the running download (at its next safe point).
    Cancel,
    /// Report a failed download: attempt number (1-based) and the delay before the next one
    /// (`None`: given up, or a newer link takes its place).
    DownloadFailed { link: PendingLink, error: String, attempt: u32, retry_in: Option<Duration> },
    /// Report a verdict that could not be reached (database failure), and when it is tried again.
    VerdictFailed { error: String, attempt: u32, retry_in: Option<Duration> },
}

/// A link waiting to be downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Queued {
    link: PendingLink,
    /// Failed attempts so far.
    attempt: u32,
    /// When to start it.
    at: Instant,
}

/// See the module docs. `M` is the message whose verdict is deferred.
#[derive(Debug)]
pub(crate) struct Machine<M> {
    settings: Settings,
    pending: Option<Queued>,
    /// The link being downloaded, with its failed attempts before this one.
    running: Option<(PendingLink, u32)>,
    deferred: Vec<(M, u32)>,
    verdict_retry_at: Option<Instant>,
    stopping: bool,
}

impl<M> Machine<M> {
    pub(crate) fn new(settings: Settings) -> Self {
        Machine {
            settings,
            pending: None,
            running: None,
            deferred: Vec::new(),
            verdict_retry_at: None,
            stopping: false,
        }
    }

    /// A link accepted before a restart: resumed at once.
    pub(crate) fn restored(&mut self, now: Instant, link: PendingLink) {
        self.pending = Some(Queued { link, attempt: 0, at: now });
    }

    /// A link passed the verdict at `now`.
    pub(crate) fn accepted(&mut self, now: Instant, link: PendingLink) -> Vec<Action> {
        let same = |l: &PendingLink| l.magnet_uri == link.magnet_uri;
        if self.running.as_ref().is_some_and(|(l, _)| same(l)) || self.pending.as_ref().is_some_and(|q| same(&q.link)) {
            return Vec::new();
        }
        let mut actions = vec![Action::SavePending(link.clone())];
        self.pending = Some(Queued { link, attempt: 0, at: now + self.settings.debounce });
        if self.running.is_some() && !self.stopping {
            actions.push(Action::Cancel);
        }
        actions
    }

    /// The running download ended at `now`.
    pub(crate) fn download_ended(&mut self, now: Instant, ended: Ended) -> Vec<Action> {
        let Some((link, failed_before)) = self.running.take() else {
            return Vec::new();
        };
        let Ended::Failed(error) = ended else {
            return Vec::new();
        };
        let attempt = failed_before + 1;
        let newer = self.pending.is_some();
        let retry = !newer && !self.stopping && attempt < self.settings.max_attempts;
        let retry_in = retry.then(|| backoff(self.settings.retry_backoff, attempt));
        if let Some(delay) = retry_in {
            self.pending = Some(Queued { link: link.clone(), attempt, at: now + delay });
        }
        vec![Action::DownloadFailed { link, error, attempt, retry_in }]
    }

    /// The verdict on `message` (its `attempt`-th) failed at `now` with `error`.
    pub(crate) fn verdict_failed(&mut self, now: Instant, message: M, attempt: u32, error: String) -> Vec<Action> {
        let retry = !self.stopping && attempt < self.settings.max_attempts;
        let delay = backoff(self.settings.retry_backoff, attempt).min(MAX_VERDICT_RETRY);
        if retry {
            if self.deferred.len() == MAX_DEFERRED {
                self.deferred.remove(0);
            }
            self.deferred.push((message, attempt + 1));
            let at = now + delay;
            self.verdict_retry_at = Some(self.verdict_retry_at.map_or(at, |t| t.min(at)));
        }
        vec![Action::VerdictFailed { error, attempt, retry_in: retry.then_some(delay) }]
    }

    /// What is due at `now`: a download to start, and messages to judge again (with their
    /// attempt numbers).
    pub(crate) fn poll(&mut self, now: Instant) -> (Vec<Action>, Vec<(M, u32)>) {
        let mut actions = Vec::new();
        if !self.stopping
            && self.running.is_none()
            && self.pending.as_ref().is_some_and(|q| q.at <= now)
            && let Some(q) = self.pending.take()
        {
            actions.push(Action::Start(q.link.clone()));
            self.running = Some((q.link, q.attempt));
        }
        let mut judge = Vec::new();
        if self.verdict_retry_at.is_some_and(|t| t <= now) {
            self.verdict_retry_at = None;
            judge = std::mem::take(&mut self.deferred);
        }
        (actions, judge)
    }

    /// When [`Machine::poll`] has something to do next, if ever.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let start = self.pending.as_ref().filter(|_| self.running.is_none() && !self.stopping).map(|q| q.at);
        match (start, self.verdict_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The node shuts down: cancel what runs, start nothing more (a saved pending link is
    /// resumed by the next start).
    pub(crate) fn shutdown(&mut self) -> Vec<Action> {
        self.stopping = true;
        if self.running.is_some() { vec![Action::Cancel] } else { Vec::new() }
    }

    /// Whether a download is running.
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_secs(2);
    const BACKOFF: Duration = Duration::from_secs(1);

    fn machine() -> Machine<&'static str> {
        Machine::new(Settings { debounce: DEBOUNCE, retry_backoff: BACKOFF, max_attempts: 3 })
    }

    fn link(n: u64) -> PendingLink {
        PendingLink { magnet_uri: format!("magnet:?xt=urn:btih:{n:040}"), clock: n }
    }

    fn started(actions: &[Action]) -> Option<&PendingLink> {
        actions.iter().find_map(|a| if let Action::Start(l) = a { Some(l) } else { None })
    }

    #[test]
    fn only_the_newest_link_of_a_burst_is_downloaded_after_the_debounce() {
        let t0 = Instant::now();
        let mut m = machine();
        assert_eq!(m.accepted(t0, link(1)), vec![Action::SavePending(link(1))]);
        assert_eq!(m.next_wake(), Some(t0 + DEBOUNCE));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(m.accepted(t1, link(2)), vec![Action::SavePending(link(2))]);
        // Nothing starts before the debounce of the newest link.
        assert!(m.poll(t0 + DEBOUNCE).0.is_empty());
        assert_eq!(m.next_wake(), Some(t1 + DEBOUNCE));
        let (actions, _) = m.poll(t1 + DEBOUNCE);
        assert_eq!(started(&actions), Some(&link(2)));
        assert!(m.is_running());
        // The same link again changes nothing.
        assert!(m.accepted(t1 + DEBOUNCE, link(2)).is_empty());
        assert_eq!(m.next_wake(), None);
    }

    #[test]
    fn a_failed_download_is_retried_with_doubling_backoff_then_given_up() {
        let t0 = Instant::now();
        let mut m = machine();
        m.restored(t0, link(1));
        assert_eq!(started(&m.poll(t0).0), Some(&link(1)), "a restored link starts at once");
        let mut now = t0;
        for (attempt, delay) in [(1, BACKOFF), (2, BACKOFF * 2)] {
            let actions = m.download_ended(now, Ended::Failed("peer gone".into()));
            assert_eq!(
                actions,
                vec![Action::DownloadFailed {
                    link: link(1),
                    error: "peer gone".into(),
                    attempt,
                    retry_in: Some(delay)
                }]
            );
            assert!(m.poll(now + delay - Duration::from_millis(1)).0.is_empty(), "not before the backoff");
            now += delay;
            assert_eq!(started(&m.poll(now).0), Some(&link(1)));
        }
        let actions = m.download_ended(now, Ended::Failed("peer gone".into()));
        assert!(matches!(&actions[..], [Action::DownloadFailed { attempt: 3, retry_in: None, .. }]), "{actions:?}");
        assert_eq!(m.next_wake(), None, "given up after max_attempts");
    }

    #[test]
    fn a_newer_link_during_a_download_cancels_it_and_takes_its_place() {
        let t0 = Instant::now();
        let mut m = machine();
        m.accepted(t0, link(1));
        assert!(started(&m.poll(t0 + DEBOUNCE).0).is_some());
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(m.accepted(t1, link(2)), vec![Action::SavePending(link(2)), Action::Cancel]);
        // Nothing new starts while the cancelled download winds down.
        assert!(m.poll(t1 + DEBOUNCE).0.is_empty());
        // A failure of the cancelled download is reported but not retried: the newer link wins.
        let actions = m.download_ended(t1 + DEBOUNCE, Ended::Failed("cancelled mid-way".into()));
        assert!(matches!(&actions[..], [Action::DownloadFailed { retry_in: None, .. }]), "{actions:?}");
        assert_eq!(started(&m.poll(t1 + DEBOUNCE).0), Some(&link(2)));
    }

    #[test]
    fn a_link_during_shutdown_is_saved_but_not_started() {
        let t0 = Instant::now();
        let mut m = machine();
        m.accepted(t0, link(1));
        m.poll(t0 + DEBOUNCE);
        assert_eq!(m.shutdown(), vec![Action::Cancel]);
        assert_eq!(m.accepted(t0 + DEBOUNCE, link(2)), vec![Action::SavePending(link(2))]);
        assert!(m.download_ended(t0 + DEBOUNCE, Ended::Cancelled).is_empty());
        assert!(m.poll(t0 + DEBOUNCE * 10).0.is_empty());
        assert_eq!(m.next_wake(), None);
    }

    #[test]
    fn restart_with_a_pending_link_resumes_it_without_debounce() {
        let t0 = Instant::now();
        let mut m = machine();
        assert!(m.poll(t0).0.is_empty());
        m.restored(t0, link(7));
        assert_eq!(m.next_wake(), Some(t0));
        assert_eq!(started(&m.poll(t0).0), Some(&link(7)));
        assert!(m.download_ended(t0, Ended::Done).is_empty());
        assert!(!m.is_running());
        assert_eq!(m.next_wake(), None);
    }

    #[test]
    fn failed_verdicts_are_judged_again_later_and_bounded() {
        let t0 = Instant::now();
        let mut m = machine();
        let actions = m.verdict_failed(t0, "a", 1, "database is locked".into());
        assert_eq!(
            actions,
            vec![Action::VerdictFailed { error: "database is locked".into(), attempt: 1, retry_in: Some(BACKOFF) }]
        );
        assert!(m.poll(t0).1.is_empty());
        assert_eq!(m.poll(t0 + BACKOFF).1, vec![("a", 2)]);
        // The last attempt is not deferred again.
        let actions = m.verdict_failed(t0, "a", 3, "locked".into());
        assert!(matches!(&actions[..], [Action::VerdictFailed { retry_in: None, .. }]));
        assert_eq!(m.next_wake(), None);
        for _ in 0..MAX_DEFERRED + 5 {
            m.verdict_failed(t0, "b", 1, "locked".into());
        }
        assert_eq!(m.poll(t0 + BACKOFF).1.len(), MAX_DEFERRED);
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        assert_eq!(backoff(BACKOFF, 1), BACKOFF);
        assert_eq!(backoff(BACKOFF, 3), BACKOFF * 4);
        assert_eq!(backoff(Duration::MAX, 40), Duration::MAX);
    }
}
