//! `chs history show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chs_community::HistoryRecord;
use chs_node::NodeConfig;
use clap::Subcommand;

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// Prints the history this node holds of a community in time order: time, author, text.
    #[command(long_about = "Prints the history this node holds of a community, in time order (archived \
        timestamp, then clock, then hash): the messages imported from archives (a member: `chs archive \
        import` or the node's downloads) and the messages stored live on the community's channels (a \
        control node: what it captured and archives), each once. History rows left pending by a deferred \
        import are decoded first. The database is the node's (--config, the `chs node` configuration) or \
        --db. --since keeps messages from a time on (Unix seconds, or a duration back from now: 7d), \
        --channel those of one channel (its uuid or chat id), --limit the newest N. The text output has \
        one line per message: UTC time, shortened author key, and the chat text (or [TYPE] for other \
        message types); --json prints every field (message_hash, timestamp, author, amm_type, \
        type_name, clock, sent_at_ms, chat_id, text).")]
    Show {
        /// The node's configuration (its database is read).
        #[arg(long, required_unless_present = "db", conflicts_with = "db")]
        config: Option<PathBuf>,
        /// SQLite database (instead of --config).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// Only messages from this time on: Unix seconds, or a duration back from now (90m, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only messages of this channel: its uuid, or its chat id (community id + uuid).
        #[arg(long, value_name = "CHANNEL")]
        channel: Option<String>,
        /// At most this many messages: the newest ones.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `--since`: Unix seconds, or a duration back from `now`.
fn parse_since(text: &str, now: u64) -> anyhow::Result<u64> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let back = util::parse_duration_secs(text)
        .map_err(|e| anyhow::anyhow!("--since {text}: neither Unix seconds nor a duration ({e})"))?;
    Ok(now.saturating_sub(back))
}

/// The database of `--config` or `--db`.
fn database(config: Option<&Path>, db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match (config, db) {
        (_, Some(db)) => Ok(db),
        (Some(path), None) => {
            let config = NodeConfig::from_file(path).with_context(|| format!("--config {}", path.display()))?;
            Ok(config.db_path())
        }
        (None, None) => anyhow::bail!("give --config FILE (the node's configuration) or --db FILE"),
    }
}

/// Whether `record` is of `channel` (a uuid, or a whole chat id).
fn of_channel(record: &HistoryRecord, channel: &str) -> bool {
    record.chat_id == channel || (record.chat_id.len() > channel.len() && record.chat_id.ends_with(channel))
}

pub(crate) fn run(cmd: HistoryCommand) -> anyhow::Result<ExitCode> {
    let HistoryCommand::Show { config, db, community, since, channel, limit, json } = cmd;
    let id = util::parse_community_id(&community)?;
    let since = since.as_deref().map(|s| parse_since(s, util::now_secs())).transpose()?.unwrap_or(0);
    let db = database(config.as_deref(), db)?;
    let mut store = util::open_existing_store(&db)?;
    let communities = util::communities(&mut store)?;
    let mut history = communities.node_history(&mut store, &id, since)?;
    if let Some(channel) = &channel {
        history.retain(|r| of_channel(r, channel));
    }
    if let Some(limit) = limit {
        history.drain(..history.len().saturating_sub(limit));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &history {
        let author = match (r.author.get(..12), r.author.get(r.author.len().saturating_sub(6)..)) {
            _ if r.author.is_empty() => "?".to_owned(),
            (Some(head), Some(tail)) if r.author.len() > 20 => format!("{head}…{tail}"),
            _ => r.author.clone(),
        };
        let text = match &r.text {
            Some(t) => t.clone(),
            None => format!("[{}]", r.type_name),
        };
        println!("{}  {author}  {text}", util::format_utc(r.timestamp));
    }
    println!("{} messages", history.len());
    Ok(ExitCode::SUCCESS)
}
