//! Following the community as a Status client sees it (issue 19): one task per held community
//! (control node and member alike) reads its signed description (on the community's pubsub topic,
//! chat `IDString()`) and its public shard info (on `/waku/2/rs/16/64`, chat `<id>-shard-info`),
//! and lets `chs-community` verify and apply them with status-go's clock rules.
//!
//! Events: `Description` and `Shard` (a relayed message on either chat), `Stop`. When the
//! channel set changed or the community moved to another shard, the task asks the supervisor to
//! restart the community's tasks ([`Command::Restart`]): they are started again from the stored
//! community, so capture follows the new channels from that moment and every task (capture,
//! member, owner announcements, this one) runs on the new pubsub topic.

use std::sync::Arc;

use chs_community::{CommunityId, DescriptionOutcome, ShardOutcome};
use chs_status::Topic;
use chs_status::description::{NON_PROTECTED_PUBSUB_TOPIC, shard_info_chat_id};
use chs_waku::{ContentFilter, MessageReceiver, ReceivedMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::Command;
use crate::services::Services;
use crate::signal::Signal;

/// A description or shard info is small; a queue this long absorbs a burst of re-publications.
const QUEUE: usize = 64;

/// The two receivers of a community's follow task.
pub(crate) struct Receivers {
    description: MessageReceiver,
    shard: MessageReceiver,
}

/// Opens the receivers of `community` (before its pubsub topics are subscribed, so nothing is
/// missed).
pub(crate) fn receivers(services: &Services, community: &chs_community::Community) -> Result<Receivers, NodeError> {
    let description_topic = Topic::from_chat_id(&community.id.description_chat_id()).content_topic();
    let shard_topic = Topic::from_chat_id(&shard_info_chat_id(&community.id)).content_topic();
    let open = |pubsub: &str, topic: String| {
        services
            .waku
            .messages_with_capacity(ContentFilter::new(pubsub.to_owned(), [topic]), QUEUE)
            .map_err(|_| NodeError::WakuStopped)
    };
    Ok(Receivers {
        description: open(&community.pubsub_topic, description_topic)?,
        shard: open(NON_PROTECTED_PUBSUB_TOPIC, shard_topic)?,
    })
}

/// Registers go-waku's signed-topic validator on the community's pubsub topic when it is on its
/// own shard with a topic key ([`chs_community::Community::protected_topic_key`]): relayed messages there whose `meta` does not validate are rejected (status-go
/// `subscribeToCommunityShard` does the same when it holds the key).
pub(crate) fn protect(services: &Services, community: &chs_community::Community) {
    let Some(key) = community.protected_topic_key() else { return };
    let public = key.public_key();
    let validator: chs_waku::TopicValidator = Arc::new(move |message, pubsub_topic, now_ns| {
        chs_status::protected::verify_protected(message, pubsub_topic, &public, now_ns).is_ok()
    });
    services.waku.set_topic_validator(&community.pubsub_topic, Some(validator));
    tracing::info!(community_id = %community.id, pubsub_topic = %community.pubsub_topic, "protected topic: meta validated");
}

enum Event {
    Description(ReceivedMessage),
    Shard(ReceivedMessage),
    Stop,
}

pub(crate) async fn run(
    services: Arc<Services>,
    id: CommunityId,
    mut receivers: Receivers,
    supervisor: mpsc::Sender<Command>,
    cancel: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Stop,
            m = receivers.description.recv() => m.map_or(Event::Stop, Event::Description),
            m = receivers.shard.recv() => m.map_or(Event::Stop, Event::Shard),
        };
        let restart = match event {
            Event::Stop => return,
            Event::Description(m) => description(&services, id, m).await,
            Event::Shard(m) => shard(&services, id, m).await,
        };
        if restart {
            // The supervisor cancels this task with the others and starts them again.
            let _ = supervisor.send(Command::Restart(id)).await;
        }
    }
}

/// Applies a description; true if the channel set changed.
pub(crate) async fn description(services: &Arc<Services>, id: CommunityId, m: ReceivedMessage) -> bool {
    let outcome = services.db(move |c, s| Ok(c.receive_description(s, &id, &m.message)?)).await;
    match outcome {
        Ok(outcome @ DescriptionOutcome::Applied { .. }) => {
            let changed = outcome.channels_changed();
            if let DescriptionOutcome::Applied { clock, added, removed } = outcome {
                services.publish(Signal::CommunityDescriptionApplied { community_id: id, clock, added, removed });
            }
            changed
        }
        Ok(DescriptionOutcome::Rejected(reason)) => {
            services.publish(Signal::CommunityDescriptionRejected { community_id: id, reason: reason.to_string() });
            false
        }
        Err(e) => {
            tracing::error!(community_id = %id, error = %e.chain(), "applying a community description failed");
            false
        }
    }
}

/// Applies a shard info; true if the community moved.
pub(crate) async fn shard(services: &Arc<Services>, id: CommunityId, m: ReceivedMessage) -> bool {
    let outcome = services.db(move |c, s| Ok(c.receive_shard_info(s, &id, &m.message)?)).await;
    match outcome {
        Ok(ShardOutcome::Moved { from, to }) => {
            services.publish(Signal::CommunityShardMoved { community_id: id, from, to });
            true
        }
        Ok(ShardOutcome::Unchanged) => false,
        Ok(ShardOutcome::Rejected(reason)) => {
            services.publish(Signal::CommunityDescriptionRejected { community_id: id, reason: reason.to_string() });
            false
        }
        Err(e) => {
            tracing::error!(community_id = %id, error = %e.chain(), "applying a community shard info failed");
            false
        }
    }
}
