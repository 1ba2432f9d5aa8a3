//! Pubsub topics of static sharding (51/WAKU2-RELAY-SHARDING): `/waku/2/rs/<cluster>/<shard>`.

use std::fmt;
use std::str::FromStr;

/// The Status network's cluster id (`MainStatusShardCluster` in status-go).
pub const STATUS_CLUSTER_ID: u32 = 16;

/// The default shard of Status communities (`DefaultShardIndex` in status-go).
pub const DEFAULT_COMMUNITY_SHARD: u32 = 32;

/// The pubsub topic status-go uses when a community has no shard: `/waku/2/rs/16/32`.
pub use chs_proto::waku::DEFAULT_PUBSUB_TOPIC;

const STATIC_SHARD_PREFIX: &str = "/waku/2/rs/";

/// A static-sharding relay shard: cluster id and shard index.
///
/// Its pubsub topic is `/waku/2/rs/<cluster_id>/<shard>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayShard {
    /// The cluster id (16 for Status).
    pub cluster_id: u32,
    /// The shard index within the cluster (32 is Status' default community shard).
    pub shard: u32,
}

impl RelayShard {
    /// The Status default community shard, `/waku/2/rs/16/32`.
    pub const STATUS_DEFAULT: RelayShard = RelayShard { cluster_id: STATUS_CLUSTER_ID, shard: DEFAULT_COMMUNITY_SHARD };

    /// A shard from its cluster id and index.
    #[must_use]
    pub const fn new(cluster_id: u32, shard: u32) -> Self {
        Self { cluster_id, shard }
    }

    /// The pubsub topic of this shard, `/waku/2/rs/<cluster_id>/<shard>`.
    #[must_use]
    pub fn pubsub_topic(&self) -> String {
        self.to_string()
    }

    /// Parses a static-sharding pubsub topic; `None` for any other topic (named topics such as
    /// `/waku/2/default-waku/proto` included).
    #[must_use]
    pub fn from_pubsub_topic(topic: &str) -> Option<Self> {
        let rest = topic.strip_prefix(STATIC_SHARD_PREFIX)?;
        let (cluster, shard) = rest.split_once('/')?;
        Some(Self { cluster_id: parse_decimal(cluster)?, shard: parse_decimal(shard)? })
    }
}

/// Parses a plain decimal number as go-waku does (`strconv.ParseUint`): digits only, no sign.
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for RelayShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STATIC_SHARD_PREFIX}{}/{}", self.cluster_id, self.shard)
    }
}

/// The error of parsing a [`RelayShard`] from a string that is no static-sharding pubsub topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a static-sharding pubsub topic (/waku/2/rs/<cluster>/<shard>): {topic:?}")]
pub struct NotAStaticShardTopic {
    /// The string that was given.
    pub topic: String,
}

impl FromStr for RelayShard {
    type Err = NotAStaticShardTopic;

    fn from_str(topic: &str) -> Result<Self, Self::Err> {
        Self::from_pubsub_topic(topic).ok_or_else(|| NotAStaticShardTopic { topic: topic.to_owned() })
    }
}
