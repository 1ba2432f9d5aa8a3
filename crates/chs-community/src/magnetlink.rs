//! Magnetlink messages: building them (control node) and the stateful member rule (receiving).
//! Every wire-level step is `chs-status`'s; this module adds the stored state.

use chs_proto::waku::WakuMessage;
use chs_status::{CommunityId, MagnetlinkChannel, RejectReason};
use chs_waku_payload::{NonceSource, Padding};
use serde::Serialize;

/// How to build a magnetlink message beyond its content.
#[derive(Debug, Clone, Default)]
pub struct MagnetlinkOptions {
    /// The control node's installation id (status-go uses a UUID; free-form).
    pub installation_id: String,
    /// `WakuMessage.timestamp` in Unix ns; `None` for now.
    pub timestamp_ns: Option<i64>,
    /// Chat to send on: `-magnetlinks` (default, status-go c72f491) or `-memberUpdate` (newer).
    pub channel: MagnetlinkChannel,
    /// 26/WAKU2 padding (random by default; fixed only to reproduce vectors).
    pub padding: Padding,
    /// AES-GCM nonce (random by default; fixed only to reproduce vectors).
    pub nonce: NonceSource,
}

/// What a member does with a received magnetlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Download it: signed by the community key, clock not older than the stored one, not the
    /// last fully fetched URI. The stored clock was raised to `clock`.
    Accepted {
        /// The community.
        community_id: CommunityId,
        /// The magnetlink clock (ms).
        clock: u64,
        /// The magnet URI.
        magnet_uri: String,
    },
    /// Ignore it, for this reason (logged and counted).
    Rejected(RejectReason),
}

impl Verdict {
    /// Whether the magnetlink was accepted.
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted { .. })
    }
}

/// Now, Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The message's magnetlink topic among `communities`' (`-magnetlinks` / `-memberUpdate`) on
/// the same pubsub topic, if any.
pub(crate) fn find_community<'a>(
    message: &WakuMessage,
    pubsub_topic: &str,
    communities: &'a [crate::Community],
) -> Result<&'a crate::Community, RejectReason> {
    let topic = chs_status::Topic::parse_content_topic(&message.content_topic)
        .map_err(|_| RejectReason::BadContentTopic { content_topic: message.content_topic.clone() })?;
    communities
        .iter()
        .find(|c| c.pubsub_topic == pubsub_topic && chs_status::ids::magnetlink_topics(&c.id).contains(&topic))
        .ok_or_else(|| RejectReason::UnknownTopic { topic: topic.to_string() })
}
