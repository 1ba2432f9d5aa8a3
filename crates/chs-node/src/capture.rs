//! Live capture (control node): every message relayed on the community's channel topics is
//! decrypted, verified and stored as status-go archives it (`chs_status::archive`).
//!
//! One task per community: it waits for a message, drains what else is queued (up to
//! [`CAPTURE_BATCH`]) and writes the burst in one transaction on the blocking pool, so a busy
//! channel costs one trip to SQLite per burst, not one per message.

use std::sync::Arc;

use chs_community::Community;
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::{ChatKeyRing, Topic};
use chs_store::StoredMessage;
use chs_waku::{ContentFilter, MessageReceiver, ReceivedMessage};
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::services::{Services, next_burst};
use crate::signal::Signal;

/// At most this many messages are written per transaction.
pub(crate) const CAPTURE_BATCH: usize = 1024;

pub(crate) fn receiver(services: &Services, community: &Community) -> Result<MessageReceiver, NodeError> {
    let topics: Vec<String> =
        services.archived_chats(community).iter().map(|chat| Topic::from_chat_id(chat).content_topic()).collect();
    services
        .waku
        .messages(ContentFilter::new(community.pubsub_topic.clone(), topics))
        .map_err(|_| NodeError::WakuStopped)
}

pub(crate) async fn run(
    services: Arc<Services>,
    community: Community,
    mut rx: MessageReceiver,
    cancel: CancellationToken,
) {
    let id = community.id;
    // Chat keys cost 65,356 PBKDF2 rounds each: derive them off the async threads.
    let (s2, chats) = (Arc::clone(&services), services.archived_chats(&community));
    let ring = match services
        .blocking(move || Ok(ChatKeyRing::from_chat_ids(chats.iter().map(String::as_str), &s2.chat_keys)))
        .await
    {
        Ok(ring) => ring,
        Err(e) => {
            tracing::error!(community_id = %id, error = %e.chain(), "deriving chat keys failed; live capture is off");
            return;
        }
    };
    while let Some(burst) = next_burst(&mut rx, &cancel, CAPTURE_BATCH).await {
        let received = i64::try_from(services.clock.now_ms()).unwrap_or(i64::MAX);
        let rows: Vec<StoredMessage> = burst.iter().filter_map(|m| to_row(&id, m, &ring, received)).collect();
        if rows.is_empty() {
            continue;
        }
        let count = rows.len();
        match services.db(move |_, s| Ok(s.insert_batch(&rows)?)).await {
            Ok(_) => services.publish(Signal::MessagesCaptured { community_id: id, messages: count }),
            Err(e) => tracing::error!(community_id = %id, count, error = %e.chain(), "storing live messages failed"),
        }
    }
}

/// The stored form of a live message (or one fetched from a store node), or `None` (logged) if
/// status-go would not archive it. The row keeps the relayed form too, so that the node's store
/// server can serve it (`waku_store`).
pub(crate) fn to_row(
    id: &chs_community::CommunityId,
    message: &ReceivedMessage,
    ring: &ChatKeyRing,
    received: i64,
) -> Option<StoredMessage> {
    let archived = capture_for_archive(&message.message, &message.pubsub_topic, ring, CapturePolicy::default())
        .map_err(|reason| tracing::debug!(community_id = %id, %reason, "live message not stored"))
        .ok()?;
    let mut row = StoredMessage::from_archive_message(&message.pubsub_topic, &archived, received)
        .map_err(|e| tracing::debug!(community_id = %id, error = %e, "live message not stored"))
        .ok()?;
    crate::waku_store::keep_wire_fields(&mut row, &message.message);
    Some(row)
}
