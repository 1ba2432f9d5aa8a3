//! The `chs` command: thin argument parsing over the library crates (see README.md).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod store_cmd;

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
    /// The message store (SQLite).
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Store(cmd) => store_cmd::run(cmd),
    };
    match res {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
