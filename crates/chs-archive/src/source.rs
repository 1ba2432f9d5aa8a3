//! Where the builder reads messages from: the [`MessageSource`] trait, an in-memory source, and
//! the implementation for the SQLite message store.

use chs_proto::protobuf::WakuMessage;

use crate::Topic;

/// The error a [`MessageSource`] reports for its own failures (e.g. SQLite errors).
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a scan of a [`MessageSource`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError<E> {
    /// The source failed.
    #[error("message source failed")]
    Source(#[source] SourceError),
    /// The callback returned an error; the scan stopped there.
    #[error("scan callback failed")]
    Callback(#[source] E),
}

/// A time-ordered source of status-go archived messages (`protobuf.WakuMessage`, timestamp in seconds).
pub trait MessageSource {
    /// Calls `f` for every message on one of `topics` with `from_secs <= timestamp < to_secs`, in
    /// `timestamp, topic, insertion` order (spec §15 items 8/9 F: filtered by topic, ordered),
    /// streaming: the source must not hold the whole range in memory.
    ///
    /// # Errors
    /// [`ScanError::Source`] on the source's failure, [`ScanError::Callback`] with `f`'s error.
    fn for_each_in_range<E>(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        f: &mut dyn FnMut(WakuMessage) -> Result<(), E>,
    ) -> Result<(), ScanError<E>>;

    /// Timestamp (seconds) of the oldest message on `topics`, if any.
    ///
    /// # Errors
    /// The source's failure.
    fn first_timestamp_secs(&self, topics: &[Topic]) -> Result<Option<u64>, SourceError>;

    /// Timestamp (seconds) of the first message on `topics` at or after `from_secs`, if any: the
    /// builder jumps over the empty windows before it, so a build costs what its messages cost,
    /// not what its time span does.
    ///
    /// The default stops a [`MessageSource::for_each_in_range`] scan at its first message.
    ///
    /// # Errors
    /// The source's failure.
    fn next_timestamp_secs(&self, topics: &[Topic], from_secs: u64) -> Result<Option<u64>, SourceError> {
        /// The first message's timestamp, carried out of the scan as its "error".
        struct Found(u64);
        match self.for_each_in_range(topics, from_secs, u64::MAX, &mut |msg: WakuMessage| Err(Found(msg.timestamp))) {
            Ok(()) => Ok(None),
            Err(ScanError::Callback(Found(timestamp))) => Ok(Some(timestamp)),
            Err(ScanError::Source(err)) => Err(err),
        }
    }
}

/// An in-memory [`MessageSource`] (tests, and callers that already hold the messages).
///
/// Unlike status-go's in-memory path (`CreateHistoryArchiveTorrentFromMessages`), it applies the
/// topic filter (spec §15 item 8 F).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    /// Sorted by `(timestamp, topic)`, stable in insertion order.
    messages: Vec<WakuMessage>,
}

impl MemorySource {
    /// A source holding `messages` (any order; sorted here, ties kept in the given order).
    #[must_use]
    pub fn new(mut messages: Vec<WakuMessage>) -> Self {
        messages.sort_by(|a, b| (a.timestamp, &a.topic).cmp(&(b.timestamp, &b.topic)));
        MemorySource { messages }
    }

    /// The messages, in scan order.
    #[must_use]
    pub fn messages(&self) -> &[WakuMessage] {
        &self.messages
    }
}

impl MessageSource for MemorySource {
    fn for_each_in_range<E>(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        f: &mut dyn FnMut(WakuMessage) -> Result<(), E>,
    ) -> Result<(), ScanError<E>> {
        let start = self.messages.partition_point(|m| m.timestamp < from_secs);
        for msg in self.messages[start..].iter().take_while(|m| m.timestamp < to_secs) {
            if topics.iter().any(|t| t[..] == msg.topic[..]) {
                f(msg.clone()).map_err(ScanError::Callback)?;
            }
        }
        Ok(())
    }

    fn first_timestamp_secs(&self, topics: &[Topic]) -> Result<Option<u64>, SourceError> {
        Ok(self.messages.iter().find(|m| topics.iter().any(|t| t[..] == m.topic[..])).map(|m| m.timestamp))
    }
}

/// The SQLite message store, read with [`chs_store::Store::for_each_archived_in_range`]: the
/// field mapping of [`chs_store::StoredMessage::to_archive_message`], only the archived columns.
/// Behind the `store` feature (on by default).
#[cfg(feature = "store")]
impl MessageSource for chs_store::Store {
    fn for_each_in_range<E>(
        &self,
        topics: &[Topic],
        from_secs: u64,
        to_secs: u64,
        f: &mut dyn FnMut(WakuMessage) -> Result<(), E>,
    ) -> Result<(), ScanError<E>> {
        chs_store::Store::for_each_archived_in_range(self, topics, from_secs, to_secs, |archived| {
            f(archived).map(|()| std::ops::ControlFlow::Continue(()))
        })
        .map_err(|err| match err {
            chs_store::ScanError::Store(err) => ScanError::Source(Box::new(err)),
            chs_store::ScanError::Callback(err) => ScanError::Callback(err),
        })
    }

    fn first_timestamp_secs(&self, topics: &[Topic]) -> Result<Option<u64>, SourceError> {
        chs_store::Store::first_timestamp_secs(self, topics).map_err(|err| Box::new(err) as SourceError)
    }
}
