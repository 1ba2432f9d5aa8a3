//! `chs history show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// Prints a community's imported history in time order: time, author, text.
    #[command(long_about = "Prints the community's history imported from archives (`chs archive import`), \
        in time order (archived timestamp, then clock, then hash). History rows left pending by a \
        deferred import are decoded first. The text output has one line per message: UTC time, \
        shortened author key, and the chat text (or [TYPE] for other message types); --json prints \
        every field (message_hash, timestamp, author, amm_type, type_name, clock, sent_at_ms, chat_id, text).")]
    Show {
        /// SQLite database.
        #[arg(long)]
        db: PathBuf,
        /// The community id.
        #[arg(long)]
        community: String,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: HistoryCommand) -> anyhow::Result<ExitCode> {
    let HistoryCommand::Show { db, community, json } = cmd;
    let id = util::parse_community_id(&community)?;
    let mut store = util::open_existing_store(&db)?;
    let communities = util::communities(&mut store)?;
    let history = communities.history(&mut store, &id)?;
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
