//! The magnetlink dispatcher: on `HistoryArchivesSeeding` of a community this node controls,
//! build the signed magnetlink message and publish it on the community's pubsub topic
//! (status-go's `dispatchMagnetlinkMessage`). The latest link of each community is published
//! again when peers subscribe to that topic (once per burst of subscriptions), so members that
//! connect later (or restart) still learn it; members ignore a link they have fetched already.

use std::collections::HashSet;
use std::sync::Arc;

use chs_community::CommunityId;
use chs_waku::{NodeEvent, PublishError};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::error::NodeError;
use crate::fault;
use crate::node::{Shared, lock};
use crate::signal::Signal;

/// Peers that subscribe within this window of each other get one re-announcement between them.
const REANNOUNCE_COALESCE: std::time::Duration = std::time::Duration::from_millis(300);

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut signals: broadcast::Receiver<Signal>,
    mut events: broadcast::Receiver<NodeEvent>,
) {
    // Topics with new subscribers since the last re-announcement; a burst of joining peers
    // (or a lagged event stream) gives one round, not one per peer.
    let mut topics: HashSet<String> = HashSet::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    loop {
        let wake = flush_at.unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            signal = signals.recv() => match signal {
                Ok(Signal::HistoryArchivesSeeding { community_id, magnet_uri, control_node: true }) => {
                    lock(&shared.latest_magnet).insert(community_id.clone(), magnet_uri.clone());
                    tokio::spawn(publish_logged(Arc::clone(&shared), community_id, magnet_uri));
                }
                Ok(Signal::HistoryArchivesUnseeded { community_id }) => {
                    lock(&shared.latest_magnet).remove(&community_id);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "dispatcher fell behind the signal bus"),
                Err(RecvError::Closed) => return,
            },
            event = events.recv() => match event {
                Ok(NodeEvent::PeerSubscribed { pubsub_topic, .. }) => {
                    topics.insert(pubsub_topic);
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + REANNOUNCE_COALESCE);
                }
                Err(RecvError::Lagged(_)) => {
                    // Subscriptions may be among the lost events: re-announce everything.
                    topics.insert(String::new());
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + REANNOUNCE_COALESCE);
                }
                Ok(_) => {}
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(wake), if flush_at.is_some() => {
                flush_at = None;
                let due = std::mem::take(&mut topics);
                let latest: Vec<(String, String)> =
                    lock(&shared.latest_magnet).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let shared2 = Arc::clone(&shared);
                tokio::spawn(async move {
                    for (community_id, magnet_uri) in latest {
                        let wanted = due.contains("")
                            || community_topic(&shared2, &community_id).await.is_ok_and(|t| due.contains(&t));
                        if wanted {
                            publish_logged(Arc::clone(&shared2), community_id, magnet_uri).await;
                        }
                    }
                });
            }
        }
    }
}

async fn community_topic(shared: &Shared, community_id: &str) -> Result<String, NodeError> {
    if let Some(topic) = lock(&shared.pubsub_topics).get(community_id) {
        return Ok(topic.clone());
    }
    let id = CommunityId::parse(community_id).map_err(|e| NodeError::UnknownCommunity(e.to_string()))?;
    shared.db(move |c, s| Ok(c.get(s, &id)?.pubsub_topic)).await
}

async fn publish_logged(shared: Arc<Shared>, community_id: String, magnet_uri: String) {
    match publish(&shared, &community_id, &magnet_uri).await {
        Ok(()) => {}
        Err(e) => tracing::warn!(%community_id, error = %e.chain(), "magnetlink not published"),
    }
}

/// Builds and publishes the magnetlink of `community_id` with a clock newer than any before.
async fn publish(shared: &Arc<Shared>, community_id: &str, magnet_uri: &str) -> Result<(), NodeError> {
    let id = CommunityId::parse(community_id).map_err(|e| NodeError::UnknownCommunity(e.to_string()))?;
    let now = shared.clock.now_ms();
    let uri = magnet_uri.to_owned();
    let topic = community_topic(shared, community_id).await?;
    let (message, clock) = shared
        .db(move |c, s| {
            let info = c.archive_info(s, &id)?;
            let clock = now.max(info.magnetlink_clock.saturating_add(1));
            let message = c.build_magnetlink_now(s, &id, &uri, clock)?;
            c.set_magnetlink_clock(s, &id, clock)?;
            Ok((message, clock))
        })
        .await?;
    let result = match shared.waku.publish(&topic, message).await {
        Ok(_) => {
            shared.bus.publish(Signal::MagnetlinkPublished {
                community_id: community_id.to_owned(),
                clock,
                magnet_uri: magnet_uri.to_owned(),
            });
            Ok(())
        }
        Err(PublishError::NoPeers { .. }) => {
            tracing::info!(%community_id, "no peer on the community topic yet: the magnetlink goes out when one subscribes");
            Ok(())
        }
        Err(e) => Err(NodeError::Task(format!("publishing the magnetlink: {e}"))),
    };
    // After the attempt (sent, or no peer yet), with its clock stored.
    fault::point(shared, "published").await;
    result
}
