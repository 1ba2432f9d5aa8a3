//! The `chs` command: thin argument parsing over the library crates (see README.md).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api;
mod archive_cli;
mod archive_cmd;
mod community_cmd;
mod demo_cmd;
mod history_cmd;
mod logging;
mod node_cmd;
mod status_cli;
mod status_cmd;
mod store_cmd;
mod torrent_cmd;
mod util;
mod waku_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Status Community History Service: archives of community history over BitTorrent, announced over Waku.
#[derive(Debug, Parser)]
#[command(name = "chs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level on stderr: error, warn, info, debug, trace, or a filter such as
    /// `info,chs_node=debug` [default: $RUST_LOG, else warn].
    #[arg(long, global = true, env = "CHS_LOG_LEVEL", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log line format on stderr (json: one object per line with a `timestamp`).
    #[arg(long, global = true, env = "CHS_LOG_FORMAT", value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The one-command demo: an owner and N members on loopback, history archived, announced, downloaded.
    Demo(demo_cmd::DemoArgs),
    /// Runs a node from a TOML configuration (`chs node --config chs.toml`); `status`, `init`.
    Node(node_cmd::NodeArgs),
    /// The message store (SQLite).
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// History archives (status-go's `data` and `index` files): build, inspect, verify, extract, import.
    #[command(subcommand)]
    Archive(archive_cmd::ArchiveCommand),
    /// BitTorrent: create the torrent of an archive folder, seed it, fetch a magnet link.
    #[command(subcommand)]
    Torrent(torrent_cmd::TorrentCommand),
    /// Waku relay: listen for messages, publish one.
    #[command(subcommand)]
    Waku(waku_cmd::WakuCommand),
    /// The Status wire layer: magnetlink messages, decoding, chat topics.
    #[command(subcommand)]
    Status(status_cmd::StatusCommand),
    /// Communities stored in the database: create, import a key, join, show, list.
    #[command(subcommand)]
    Community(community_cmd::CommunityCommand),
    /// The history a node holds of a community: imported from archives and captured live.
    #[command(subcommand)]
    History(history_cmd::HistoryCommand),
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    if let Err(err) = logging::init(cli.log_level.as_deref(), cli.log_format) {
        eprintln!("error: {}", error_text(&err));
        return ExitCode::from(2);
    }
    let res = match cli.command {
        Command::Demo(args) => demo_cmd::run(args),
        Command::Node(args) => node_cmd::run(args),
        Command::Store(cmd) => store_cmd::run(cmd),
        Command::Archive(cmd) => archive_cmd::run(cmd),
        Command::Torrent(cmd) => torrent_cmd::run(cmd),
        Command::Waku(cmd) => waku_cmd::run(cmd),
        Command::Status(cmd) => status_cmd::run(cmd),
        Command::Community(cmd) => community_cmd::run(cmd),
        Command::History(cmd) => history_cmd::run(cmd),
    };
    match res {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error with its causes, `outer: inner: innermost`, each text once: a cause whose text the
/// message already holds (a library that writes `"{what}: {source}"` and also returns the source
/// as the cause) is not repeated.
fn error_text(err: &anyhow::Error) -> String {
    join_causes(err.chain())
}

/// [`error_text`] for any error.
fn error_text_of(err: &(dyn std::error::Error + 'static)) -> String {
    join_causes(std::iter::successors(Some(err), |e| e.source()))
}

fn join_causes<'a>(mut chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = chain.next().map(ToString::to_string).unwrap_or_default();
    for cause in chain {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
    }
    text
}

/// `println!` panics when stdout is a closed pipe (`chs … | head`); end quietly instead, with the
/// exit status a shell gives a process killed by SIGPIPE (128 + 13).
fn quiet_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
