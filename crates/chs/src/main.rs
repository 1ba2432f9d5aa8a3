//! The `chs` command: thin argument parsing over the library crates (see README.md).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod archive_cli;
mod archive_cmd;
mod community_cmd;
mod demo_cmd;
mod history_cmd;
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
    /// A community's imported history.
    #[command(subcommand)]
    History(history_cmd::HistoryCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librqbit=error,librqbit_core=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    quiet_on_broken_pipe();
    let cli = Cli::parse();
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
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
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
