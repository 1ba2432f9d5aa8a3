//! Live capture (control node): every message relayed on the community's channel topics is
//! decrypted, verified and stored as status-go archives it (`chs_status::archive`).

use std::sync::Arc;

use chs_community::Community;
use chs_status::archive::{CapturePolicy, capture_for_archive};
use chs_status::{ChatKeyRing, Topic};
use chs_store::StoredMessage;
use chs_waku::{ContentFilter, MessageReceiver};

use crate::clock::system_now_ms;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::Shared;
use crate::signal::Signal;

pub(crate) fn receiver(shared: &Shared, community: &Community) -> Result<MessageReceiver, NodeError> {
    let topics: Vec<String> = community.chats.iter().map(|chat| Topic::from_chat_id(chat).content_topic()).collect();
    shared.waku.messages(ContentFilter::new(community.pubsub_topic.clone(), topics)).map_err(|_| NodeError::WakuStopped)
}

pub(crate) async fn run(shared: Arc<Shared>, community: Community, mut rx: MessageReceiver, cancel: CancellationToken) {
    let community_id = community.id.to_string();
    // Chat keys cost 65,356 PBKDF2 rounds each: derive them off the async threads.
    let (s2, chats) = (Arc::clone(&shared), community.chats.clone());
    let ring = match tokio::task::spawn_blocking(move || {
        ChatKeyRing::from_chat_ids(chats.iter().map(String::as_str), &s2.chat_keys)
    })
    .await
    {
        Ok(ring) => ring,
        Err(e) => {
            tracing::error!(%community_id, error = %e, "deriving chat keys failed; live capture is off");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
        };
        let archived =
            match capture_for_archive(&message.message, &message.pubsub_topic, &ring, CapturePolicy::default()) {
                Ok(a) => a,
                Err(reason) => {
                    tracing::debug!(%community_id, %reason, "live message not stored");
                    continue;
                }
            };
        let received = i64::try_from(system_now_ms()).unwrap_or(i64::MAX);
        let stored = match StoredMessage::from_archive_message(&message.pubsub_topic, &archived, received) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%community_id, error = %e, "live message not stored");
                continue;
            }
        };
        match shared.db(move |_, s| Ok(s.insert_batch(&[stored])?)).await {
            Ok(_) => shared.bus.publish(Signal::MessageCaptured { community_id: community_id.clone() }),
            Err(e) => tracing::error!(%community_id, error = %e.chain(), "storing a live message failed"),
        }
    }
}
