//! Validation of WakuMessages received over relay (and of our own before publishing).
//!
//! Structural faults (bad protobuf, empty content topic or payload, oversized message, `meta`
//! longer than 64 bytes, a negative timestamp) are gossipsub `Reject`s: the sender broke the
//! protocol. Timestamps outside the configured window are `Ignore`d: a skewed clock is not
//! proof of malice, so the forwarding peer is not penalised.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chs_proto::Message as _;
use chs_proto::waku::WakuMessage;

/// The largest `meta` attribute allowed by 14/WAKU2-MESSAGE.
pub const MAX_META_LEN: usize = 64;

/// Default maximum size of an encoded WakuMessage: 1 MiB (status-go's `DefaultMaxMessageSize`,
/// js-waku's cap).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// Limits applied to incoming messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationConfig {
    /// Largest accepted encoded WakuMessage, in bytes.
    pub max_message_size: usize,
    /// How far in the future a timestamp may be; `None` disables the check.
    pub max_future_skew: Option<Duration>,
    /// How old a timestamp may be; `None` disables the check.
    pub max_age: Option<Duration>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_future_skew: Some(Duration::from_secs(5 * 60)),
            max_age: Some(Duration::from_secs(24 * 60 * 60)),
        }
    }
}

/// What gossipsub is told to do with a message that failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Drop it and penalise the peer that forwarded it.
    Reject,
    /// Drop it without penalty.
    Ignore,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not a WakuMessage protobuf.
    #[error("malformed WakuMessage protobuf: {0}")]
    Malformed(String),
    /// The encoded message is larger than [`ValidationConfig::max_message_size`].
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Encoded size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// `content_topic` is empty.
    #[error("empty content topic")]
    EmptyContentTopic,
    /// `payload` is empty (js-waku rejects these as well).
    #[error("empty payload")]
    EmptyPayload,
    /// `meta` is longer than [`MAX_META_LEN`] bytes.
    #[error("meta of {len} bytes exceeds {MAX_META_LEN} bytes")]
    MetaTooLong {
        /// Length of the `meta` attribute.
        len: usize,
    },
    /// The timestamp is negative.
    #[error("negative timestamp {timestamp_ns} ns")]
    NegativeTimestamp {
        /// The timestamp found.
        timestamp_ns: i64,
    },
    /// The timestamp lies further in the future than allowed.
    #[error("timestamp {skew:?} in the future")]
    TimestampInFuture {
        /// How far ahead of our clock it is.
        skew: Duration,
    },
    /// The timestamp is older than allowed.
    #[error("timestamp {age:?} old")]
    TimestampTooOld {
        /// How far behind our clock it is.
        age: Duration,
    },
    /// The validator registered for the pubsub topic refused it (e.g. a protected topic's `meta`
    /// signature: go-waku's validator returns false, which gossipsub treats as a reject).
    #[error("refused by the validator of pubsub topic {pubsub_topic}")]
    TopicValidator {
        /// The pubsub topic.
        pubsub_topic: String,
    },
}

/// A validator for one pubsub topic (go-waku `RegisterTopicValidator`): given the decoded
/// message, its pubsub topic and the current Unix time in nanoseconds, true to accept. It runs on
/// the node's event loop: it must be quick and must not block.
pub type TopicValidator = std::sync::Arc<dyn Fn(&WakuMessage, &str, i64) -> bool + Send + Sync>;

/// The validators per pubsub topic, shared by the handles and the event loop.
#[derive(Clone, Default)]
pub(crate) struct TopicValidators(
    pub(crate) std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, TopicValidator>>>,
);

impl std::fmt::Debug for TopicValidators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guard = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_set().entries(guard.keys()).finish()
    }
}

/// Runs the validator of `pubsub_topic`, if one is registered.
pub(crate) fn check_topic(
    validators: &TopicValidators,
    message: &WakuMessage,
    pubsub_topic: &str,
    now_ns: i64,
) -> Result<(), Rejection> {
    let guard = validators.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    match guard.get(pubsub_topic) {
        Some(validator) if !validator(message, pubsub_topic, now_ns) => {
            Err(Rejection::TopicValidator { pubsub_topic: pubsub_topic.to_owned() })
        }
        _ => Ok(()),
    }
}

impl Rejection {
    /// The gossipsub verdict for this reason.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        match self {
            Rejection::TimestampInFuture { .. } | Rejection::TimestampTooOld { .. } => Verdict::Ignore,
            _ => Verdict::Reject,
        }
    }

    /// A short stable name of the reason, used as the counter name and in logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Oversized { .. } => "oversized",
            Rejection::EmptyContentTopic => "empty_content_topic",
            Rejection::EmptyPayload => "empty_payload",
            Rejection::MetaTooLong { .. } => "meta_too_long",
            Rejection::NegativeTimestamp { .. } => "negative_timestamp",
            Rejection::TimestampInFuture { .. } => "timestamp_in_future",
            Rejection::TimestampTooOld { .. } => "timestamp_too_old",
            Rejection::TopicValidator { .. } => "topic_validator",
        }
    }
}

/// Decodes and checks the bytes of a relayed WakuMessage against `config`, with `now_ns` the
/// current Unix time in nanoseconds. Never panics.
///
/// # Errors
/// The first [`Rejection`] found.
pub fn validate_bytes(bytes: &[u8], now_ns: i64, config: &ValidationConfig) -> Result<WakuMessage, Rejection> {
    if bytes.len() > config.max_message_size {
        return Err(Rejection::Oversized { size: bytes.len(), max: config.max_message_size });
    }
    let message = WakuMessage::decode(bytes).map_err(|err| Rejection::Malformed(err.to_string()))?;
    validate_message(&message, now_ns, config)?;
    Ok(message)
}

/// Checks a decoded WakuMessage (everything but the size) against `config`.
///
/// # Errors
/// The first [`Rejection`] found.
pub fn validate_message(message: &WakuMessage, now_ns: i64, config: &ValidationConfig) -> Result<(), Rejection> {
    if message.content_topic.is_empty() {
        return Err(Rejection::EmptyContentTopic);
    }
    if message.payload.is_empty() {
        return Err(Rejection::EmptyPayload);
    }
    if let Some(meta) = &message.meta
        && meta.len() > MAX_META_LEN
    {
        return Err(Rejection::MetaTooLong { len: meta.len() });
    }
    if let Some(timestamp_ns) = message.timestamp {
        if timestamp_ns < 0 {
            return Err(Rejection::NegativeTimestamp { timestamp_ns });
        }
        let delta = i128::from(timestamp_ns) - i128::from(now_ns);
        let delta_duration = duration_from_nanos(delta.unsigned_abs());
        if delta > 0 {
            if let Some(max) = config.max_future_skew
                && delta_duration > max
            {
                return Err(Rejection::TimestampInFuture { skew: delta_duration });
            }
        } else if let Some(max) = config.max_age
            && delta_duration > max
        {
            return Err(Rejection::TimestampTooOld { age: delta_duration });
        }
    }
    Ok(())
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and fits a u32.
    let sub_nanos = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub_nanos)
}

/// Counters of the node, shared between the event loop and the handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) empty_content_topic: AtomicU64,
    pub(crate) empty_payload: AtomicU64,
    pub(crate) meta_too_long: AtomicU64,
    pub(crate) negative_timestamp: AtomicU64,
    pub(crate) timestamp_in_future: AtomicU64,
    pub(crate) timestamp_too_old: AtomicU64,
    pub(crate) topic_validator: AtomicU64,
    pub(crate) lagged_receivers: AtomicU64,
    pub(crate) peers_rejected: AtomicU64,
    pub(crate) metadata_unsupported: AtomicU64,
    pub(crate) pings_ok: AtomicU64,
    pub(crate) pings_failed: AtomicU64,
    pub(crate) peers_unresponsive: AtomicU64,
    pub(crate) dials: AtomicU64,
    pub(crate) dials_failed: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) px_served: AtomicU64,
    pub(crate) px_peers: AtomicU64,
    pub(crate) px_bad_records: AtomicU64,
}

impl Counters {
    pub(crate) fn count_rejection(&self, rejection: &Rejection) {
        let counter = match rejection {
            Rejection::Malformed(_) => &self.malformed,
            Rejection::Oversized { .. } => &self.oversized,
            Rejection::EmptyContentTopic => &self.empty_content_topic,
            Rejection::EmptyPayload => &self.empty_payload,
            Rejection::MetaTooLong { .. } => &self.meta_too_long,
            Rejection::NegativeTimestamp { .. } => &self.negative_timestamp,
            Rejection::TimestampInFuture { .. } => &self.timestamp_in_future,
            Rejection::TimestampTooOld { .. } => &self.timestamp_too_old,
            Rejection::TopicValidator { .. } => &self.topic_validator,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            received: get(&self.received),
            accepted: get(&self.accepted),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            empty_content_topic: get(&self.empty_content_topic),
            empty_payload: get(&self.empty_payload),
            meta_too_long: get(&self.meta_too_long),
            negative_timestamp: get(&self.negative_timestamp),
            timestamp_in_future: get(&self.timestamp_in_future),
            timestamp_too_old: get(&self.timestamp_too_old),
            topic_validator: get(&self.topic_validator),
            lagged_receivers: get(&self.lagged_receivers),
            peers_rejected: get(&self.peers_rejected),
            metadata_unsupported: get(&self.metadata_unsupported),
            pings_ok: get(&self.pings_ok),
            pings_failed: get(&self.pings_failed),
            peers_unresponsive: get(&self.peers_unresponsive),
            dials: get(&self.dials),
            dials_failed: get(&self.dials_failed),
            inbound_refused: get(&self.inbound_refused),
            px_served: get(&self.px_served),
            px_peers: get(&self.px_peers),
            px_bad_records: get(&self.px_bad_records),
        }
    }
}

/// A snapshot of the node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Relay messages handed to validation.
    pub received: u64,
    /// Messages accepted and delivered to receivers.
    pub accepted: u64,
    /// Rejected: not a WakuMessage protobuf.
    pub malformed: u64,
    /// Rejected: larger than the configured maximum.
    pub oversized: u64,
    /// Rejected: empty content topic.
    pub empty_content_topic: u64,
    /// Rejected: empty payload.
    pub empty_payload: u64,
    /// Rejected: `meta` over 64 bytes.
    pub meta_too_long: u64,
    /// Rejected: negative timestamp.
    pub negative_timestamp: u64,
    /// Ignored: timestamp too far in the future.
    pub timestamp_in_future: u64,
    /// Ignored: timestamp too old.
    pub timestamp_too_old: u64,
    /// Rejected by the pubsub topic's validator (a protected topic's `meta`).
    pub topic_validator: u64,
    /// Messages that a slow [`crate::MessageReceiver`] missed.
    pub lagged_receivers: u64,
    /// Peers disconnected because their 66/WAKU2-METADATA showed another cluster or no common shard.
    pub peers_rejected: u64,
    /// Peers that do not speak 66/WAKU2-METADATA (tolerated, e.g. js-waku).
    pub metadata_unsupported: u64,
    /// Our pings (`/ipfs/ping/1.0.0`) that a peer answered.
    pub pings_ok: u64,
    /// Our pings that failed or timed out.
    pub pings_failed: u64,
    /// Peers disconnected after `max_ping_failures` failed pings in a row.
    pub peers_unresponsive: u64,
    /// Dials started by the peer manager (bootstrap, discovered and reconnecting peers).
    pub dials: u64,
    /// Of those, dials that failed.
    pub dials_failed: u64,
    /// Inbound connections closed because `max_peers` were connected.
    pub inbound_refused: u64,
    /// Peer-exchange requests we answered.
    pub px_served: u64,
    /// New peers learnt through peer exchange.
    pub px_peers: u64,
    /// Invalid records in peer-exchange responses.
    pub px_bad_records: u64,
}

impl Stats {
    /// All messages not accepted, whatever the reason.
    #[must_use]
    pub fn not_accepted(&self) -> u64 {
        self.malformed
            + self.oversized
            + self.empty_content_topic
            + self.empty_payload
            + self.meta_too_long
            + self.negative_timestamp
            + self.timestamp_in_future
            + self.timestamp_too_old
            + self.topic_validator
    }
}
