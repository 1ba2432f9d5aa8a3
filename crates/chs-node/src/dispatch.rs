//! The magnetlink dispatcher (status-go's `dispatchMagnetlinkMessage`): one task that owns the
//! latest link of every community this node controls and publishes it on the community's pubsub
//! topic.
//!
//! Events ([`Event`]): an owner task seeded a torrent ([`Command::Seeding`]: a new clock, newer
//! than any before, is stored and the link published), a community was unseeded or left
//! ([`Command::Forget`]), peers subscribed to a pubsub topic (Waku), the re-announce timer fired,
//! shutdown. Owners reach it only through its private channel ([`Dispatcher`]), never through the
//! signal bus, so a slow observer cannot make it miss a link.
//!
//! Re-announcement: status-go sends a link only when it (re)seeds; a member that was offline then
//! learns it from a store node. We also re-send the *same* link (same clock: members that have it
//! drop it as already seen, the clock never runs ahead) when peers subscribe to the community's
//! topic, at most once per [`REANNOUNCE_MIN_GAP`] per community, so that a member that connects
//! later learns it without a store node.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chs_community::CommunityId;
use chs_waku::{NodeEvent, PublishError};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::NodeError;
use crate::fault;
use crate::services::Services;
use crate::signal::Signal;

/// Peers that subscribe within this window of each other get one re-announcement between them.
const REANNOUNCE_COALESCE: Duration = Duration::from_millis(300);
/// At most one re-announcement of a community's link per this gap (later ones are deferred).
pub const REANNOUNCE_MIN_GAP: Duration = Duration::from_secs(2);

/// What owner tasks and the node tell the dispatcher.
#[derive(Debug)]
pub(crate) enum Command {
    /// The community's archives are published: announce `links` (one per backend) with one new
    /// clock. An empty list keeps the links announced before (a backend that published nothing
    /// new) and gives them the new clock.
    Seeding { id: CommunityId, pubsub_topic: String, links: Vec<String> },
    /// The community is unseeded or left: stop re-announcing it.
    Forget { id: CommunityId },
    /// Announce the community's latest link again now (same clock); the reply is the link.
    Reannounce { id: CommunityId, reply: oneshot::Sender<Result<String, NodeError>> },
}

/// The sending side of the dispatcher's channel (unbounded: owners send one command per build).
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    tx: mpsc::UnboundedSender<Command>,
}

impl Dispatcher {
    pub(crate) fn send(&self, command: Command) {
        if self.tx.send(command).is_err() {
            tracing::debug!("dispatcher stopped: command dropped at shutdown");
        }
    }
}

/// One community's link as last announced.
#[derive(Debug, Clone)]
struct Latest {
    pubsub_topic: String,
    /// One link per backend, all sent with the same clock (`docs/backends.md`).
    links: Vec<String>,
    /// The clock it was announced with (None until the first announcement's clock is stored).
    clock: Option<u64>,
    /// When it last went out (or was attempted).
    sent_at: Option<Instant>,
    /// Whether a re-announcement is owed (peers subscribed since it went out).
    owed: bool,
}

/// What the dispatcher reacts to.
enum Event {
    Command(Command),
    Subscribed(String),
    /// The Waku event stream lagged: subscriptions may be among the lost events.
    EventsLost,
    Timer,
    Stop,
}

pub(crate) fn channel() -> (Dispatcher, mpsc::UnboundedReceiver<Command>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Dispatcher { tx }, rx)
}

pub(crate) async fn run(
    services: Arc<Services>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut events: broadcast::Receiver<NodeEvent>,
) {
    let mut latest: HashMap<CommunityId, Latest> = HashMap::new();
    // Topics with new subscribers since the last round; a burst of joining peers gives one round.
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut timer: Option<Instant> = None;
    loop {
        let event = next_event(&services, &mut commands, &mut events, timer).await;
        match event {
            Event::Stop => return,
            Event::Command(Command::Seeding { id, pubsub_topic, links }) => {
                // A link replaces the previous one of its kind; other kinds' links are kept.
                let mut merged = latest.get(&id).map(|e| e.links.clone()).unwrap_or_default();
                for link in links {
                    let kind = chs_status::classify_link(&link).ok();
                    merged.retain(|l| chs_status::classify_link(l).ok() != kind);
                    merged.push(link);
                }
                let entry = Latest { pubsub_topic, links: merged, clock: None, sent_at: None, owed: false };
                let entry = latest.entry(id).insert_entry(entry).into_mut();
                announce(&services, id, entry).await;
            }
            Event::Command(Command::Forget { id }) => {
                latest.remove(&id);
            }
            Event::Command(Command::Reannounce { id, reply }) => {
                let result = match latest.get_mut(&id) {
                    Some(entry) => {
                        announce(&services, id, entry).await;
                        Ok(entry.links.join(" "))
                    }
                    None => Err(NodeError::NothingAnnounced(id.to_string())),
                };
                let _ = reply.send(result);
            }
            Event::Subscribed(topic) => {
                subscribed.insert(topic);
                timer.get_or_insert_with(|| Instant::now() + REANNOUNCE_COALESCE);
            }
            Event::EventsLost => {
                subscribed.insert(String::new());
                timer.get_or_insert_with(|| Instant::now() + REANNOUNCE_COALESCE);
            }
            Event::Timer => {
                timer = None;
                let due = std::mem::take(&mut subscribed);
                let now = Instant::now();
                let mut round = Vec::new();
                for (id, entry) in &mut latest {
                    if due.contains("") || due.contains(&entry.pubsub_topic) {
                        entry.owed = true;
                    }
                    if !entry.owed {
                        continue;
                    }
                    match entry.sent_at.map(|t| t + REANNOUNCE_MIN_GAP) {
                        Some(allowed) if allowed > now => {
                            timer = Some(timer.map_or(allowed, |t| t.min(allowed)));
                        }
                        _ => round.push((*id, entry)),
                    }
                }
                announce_all(&services, round).await;
            }
        }
    }
}

async fn next_event(
    services: &Services,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    events: &mut broadcast::Receiver<NodeEvent>,
    timer: Option<Instant>,
) -> Event {
    let wake = timer.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    loop {
        return tokio::select! {
            biased;
            () = services.cancel.cancelled() => Event::Stop,
            command = commands.recv() => command.map_or(Event::Stop, Event::Command),
            event = events.recv() => match event {
                Ok(NodeEvent::PeerSubscribed { pubsub_topic, .. }) => Event::Subscribed(pubsub_topic),
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => Event::EventsLost,
                Err(RecvError::Closed) => Event::Stop,
            },
            () = tokio::time::sleep_until(wake), if timer.is_some() => Event::Timer,
        };
    }
}

/// Publishes `entry`'s link: the first time with a clock newer than any stored before (then
/// stored), afterwards with the same clock. Failures are logged: the next subscription or
/// seeding tries again.
async fn announce(services: &Arc<Services>, id: CommunityId, entry: &mut Latest) {
    entry.owed = false;
    entry.sent_at = Some(Instant::now());
    match publish(services, id, entry).await {
        Ok(clock) => entry.clock = Some(clock),
        Err(e) => tracing::warn!(community_id = %id, error = %e.chain(), "magnetlink not published"),
    }
}

/// Announces every community of `round` (a re-announcement round: peers subscribed) like
/// [`announce`], with one store call that builds all their messages instead of one each: a round
/// covers every community on the topic (an owner of 100 communities on the default topic
/// re-announces 100), and one call each made the last of them wait for the 99 before it.
async fn announce_all(services: &Arc<Services>, round: Vec<(CommunityId, &mut Latest)>) {
    if round.is_empty() {
        return;
    }
    let now = services.clock.now_ms();
    let channels: Vec<_> = services.config.archive.link_channels.iter().map(|c| c.channel()).collect();
    let wanted: Vec<_> = round.iter().map(|(id, e)| (*id, e.links.clone(), e.clock, e.pubsub_topic.clone())).collect();
    let built = services
        .db(move |c, s| {
            Ok(wanted
                .into_iter()
                .map(|(id, links, fixed, topic)| build(c, s, id, &links, fixed, &topic, &channels, now))
                .collect::<Vec<_>>())
        })
        .await;
    let sent_at = Instant::now();
    let mut built: Vec<Option<_>> = match built {
        Ok(built) => built.into_iter().map(Some).collect(),
        Err(e) => {
            tracing::warn!(error = %e.chain(), "magnetlinks not built for re-announcement");
            (0..round.len()).map(|_| None).collect()
        }
    };
    for ((id, entry), built) in round.into_iter().zip(built.iter_mut()) {
        entry.owed = false;
        entry.sent_at = Some(sent_at);
        let result = match built.take() {
            Some(Ok((messages, clock))) => send(services, id, entry, messages, clock).await,
            Some(Err(e)) => Err(e),
            None => continue,
        };
        match result {
            Ok(clock) => entry.clock = Some(clock),
            Err(e) => tracing::warn!(community_id = %id, error = %e.chain(), "magnetlink not published"),
        }
    }
}

/// The messages of one announcement: one per link and configured chat, all with one clock
/// (`fixed`, or a new one newer than any stored, then stored); returns them with the clock.
#[allow(clippy::too_many_arguments)]
fn build(
    c: &chs_community::Communities,
    s: &mut chs_store::Store,
    id: CommunityId,
    links: &[String],
    fixed: Option<u64>,
    pubsub_topic: &str,
    channels: &[chs_status::MagnetlinkChannel],
    now: u64,
) -> Result<(Vec<(String, chs_waku::WakuMessage)>, u64), NodeError> {
    let clock = match fixed {
        Some(clock) => clock,
        None => {
            let clock = now.max(c.archive_info(s, &id)?.magnetlink_clock.saturating_add(1));
            c.set_magnetlink_clock(s, &id, clock)?;
            clock
        }
    };
    // On a protected topic, `meta` is signed with the topic key as status-go's `Send` does
    // (wakuv2/message_publishing.go: relay.SignMessage), or relay peers drop the link.
    let community = c.get(s, &id)?;
    let signer = community.protected_topic_key().and_then(chs_community::TopicKey::private_key);
    let mut messages = Vec::new();
    for link in links {
        for channel in channels {
            let mut message = c.build_magnetlink_now_on(s, &id, link, clock, *channel)?;
            if let Some(key) = signer {
                chs_status::protected::sign_protected(&mut message, pubsub_topic, key);
            }
            messages.push((link.clone(), message));
        }
    }
    Ok((messages, clock))
}

/// Builds and publishes one message per link and configured chat, all with one clock; returns
/// the clock.
async fn publish(services: &Arc<Services>, id: CommunityId, entry: &Latest) -> Result<u64, NodeError> {
    let now = services.clock.now_ms();
    let links = entry.links.clone();
    let channels: Vec<_> = services.config.archive.link_channels.iter().map(|c| c.channel()).collect();
    let fixed = entry.clock;
    let pubsub_topic = entry.pubsub_topic.clone();
    let (messages, clock) =
        services.db(move |c, s| build(c, s, id, &links, fixed, &pubsub_topic, &channels, now)).await?;
    send(services, id, entry, messages, clock).await
}

/// Publishes `messages` (built with `clock`) on the community's topic; returns the clock.
async fn send(
    services: &Arc<Services>,
    id: CommunityId,
    entry: &Latest,
    messages: Vec<(String, chs_waku::WakuMessage)>,
    clock: u64,
) -> Result<u64, NodeError> {
    let mut result = Ok(clock);
    for (link, message) in messages {
        match services.waku.publish(&entry.pubsub_topic, message).await {
            Ok(_) => {
                services.publish(Signal::MagnetlinkPublished { community_id: id, clock, magnet_uri: link });
            }
            Err(PublishError::NoPeers { .. }) => {
                tracing::info!(community_id = %id, "no peer on the community topic yet: the magnetlink goes out when one subscribes");
            }
            Err(e) => result = Err(NodeError::Publish(e)),
        }
    }
    // After the attempt (sent, or no peer yet), with its clock stored.
    fault::point(services, "published").await;
    result
}
