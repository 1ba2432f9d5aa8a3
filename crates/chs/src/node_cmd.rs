//! `chs node --config chs.toml` (the daemon), `chs node status`, `chs node init`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chs_node::{Node, NodeConfig, Signal, SystemClock};
use clap::{Args, Subcommand};
use tokio::sync::broadcast::error::RecvError;

use crate::util;

/// The daemon and its helpers.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(long_about = "Runs a chs node until Ctrl-C or SIGTERM: for every community this node controls \
    (created with `chs community create` in the node's database), builds the missed and then weekly archives, \
    seeds the latest torrent and publishes its magnetlink over Waku, and stores live community messages; for \
    every joined community, downloads and imports the archives announced by the control node, then seeds them.\n\n\
    stdout: one JSON line `{\"type\":\"started\",...}` with the node's Waku and BitTorrent addresses, then one \
    JSON line per signal (e.g. `historyArchivesSeeding`, `downloadingHistoryArchivesFinished`). \
    Logs go to stderr (RUST_LOG=info for more). `<data_dir>/status.json` holds the per-community state while \
    the node runs (`chs node status`).")]
pub(crate) struct NodeArgs {
    #[command(subcommand)]
    command: Option<NodeCommand>,
    /// The TOML configuration (see `chs node init`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Extra Waku peers to dial at start (multiaddr with /p2p/...). Repeatable.
    #[arg(long)]
    bootstrap: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Prints the per-community state of a node (running or not).
    Status {
        /// The node's configuration.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Writes a configuration file with every default spelled out.
    Init {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        config: PathBuf,
        /// The node's data folder (relative to the config file).
        #[arg(long, default_value = "chs-data")]
        data_dir: PathBuf,
    },
}

pub(crate) fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(NodeCommand::Status { config, json }) => status(&config, json),
        Some(NodeCommand::Init { config, data_dir }) => init(&config, data_dir),
        None => {
            let path =
                args.config.context("`chs node` needs --config FILE (write one with `chs node init --config FILE`)")?;
            let mut config = NodeConfig::from_file(&path)?;
            config.waku.bootstrap.extend(args.bootstrap);
            // Crash tests only: stop at this step so that the test can kill -9 the process there.
            config.pause_at = std::env::var("CHS_PAUSE_AT").ok().filter(|p| !p.is_empty());
            util::runtime()?.block_on(daemon(config))
        }
    }
}

fn print_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

async fn daemon(config: NodeConfig) -> anyhow::Result<ExitCode> {
    let status_path = config.data_dir.join("status.json");
    // Subscribed before the node starts: the catch-up build and the first seeding may be done
    // (or a fault point reached) before `start` returns, and their lines must not be lost.
    let bus = chs_node::SignalBus::default();
    let mut signals = bus.subscribe();
    let node = Node::start_with_bus(config, Arc::new(SystemClock), bus).await.context("starting the node")?;
    let handle = node.handle();
    let waku = handle.waku().listen_addrs().await.unwrap_or_default();
    let communities = handle.status().await?;
    // As for every signal below: the status file first, so a reader of the line finds it.
    write_status(&handle, &status_path, true).await;
    print_line(&serde_json::json!({
        "type": "started",
        "waku": waku,
        "torrent": handle.torrent_addr().map(|a| a.to_string()),
        "communities": communities.iter().map(|c| serde_json::json!({
            "id": c.id, "name": c.name, "control_node": c.control_node, "joined": c.joined,
        })).collect::<Vec<_>>(),
    }));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    // Made once: a signal stream made anew each turn of the loop misses a SIGTERM that arrives
    // while the loop handles something else (seen: a node busy with its start-up build and
    // seeding ignored a SIGTERM for good).
    let shutdown = crate::torrent_cmd::wait_for_shutdown_signal();
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            r = &mut shutdown => break r,
            s = signals.recv() => match s {
                Ok(signal) => {
                    // Signals that change nothing in the status (and may come in floods: live
                    // messages, forged magnetlinks) do not rewrite it. The status is written
                    // before the line is printed, so whoever reads a line finds `status.json`
                    // at least as new as it.
                    if !matches!(
                        signal,
                        Signal::MessagesCaptured { .. } | Signal::MagnetlinkRejected { .. } | Signal::FaultPaused { .. }
                    ) {
                        write_status(&handle, &status_path, true).await;
                    }
                    if let Ok(v) = serde_json::to_value(&signal) {
                        print_line(&v);
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "signal printer fell behind"),
                Err(RecvError::Closed) => break Ok(()),
            },
            _ = tick.tick() => write_status(&handle, &status_path, true).await,
        }
    };
    eprintln!("shutting down");
    write_status(&handle, &status_path, false).await;
    node.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn write_status(handle: &chs_node::NodeHandle, path: &Path, running: bool) {
    let Ok(list) = handle.status().await else { return };
    let listener = handle.torrent_listener_stats().map(|s| {
        serde_json::json!({
            "accepted": s.accepted, "refused": s.refused, "handshake_failed": s.handshake_failed,
            "handed_over": s.handed_over,
        })
    });
    let value = serde_json::json!({
        "running": running,
        "pid": std::process::id(),
        "updated_at_ms": handle.clock().now_ms(),
        "listening": handle.listening_sockets().await,
        "torrent_listener": listener,
        "communities": list,
    });
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, format!("{value:#}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn status(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::from_file(config_path)?;
    let live = std::fs::read_to_string(config.data_dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter(|v| v["running"].as_bool() == Some(true))
        // A node killed without shutdown leaves `running: true` behind: check its pid.
        .filter(|v| v["pid"].as_u64().is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists()));
    let value = if let Some(live) = live {
        live
    } else {
        let mut store = util::open_existing_store(&config.db_path())?;
        let communities = util::communities(&mut store)?;
        chs_node::migrate_store(&mut store)?;
        let list = chs_node::community_statuses(&communities, &store, &config.archive_root(), &HashMap::new())?;
        serde_json::json!({ "running": false, "communities": list })
    };
    if json {
        println!("{value:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("node: {}", if value["running"].as_bool() == Some(true) { "running" } else { "not running" });
    for socket in value["listening"].as_array().into_iter().flatten() {
        println!("  listening: {}", socket.as_str().unwrap_or("?"));
    }
    if let Some(l) = value["torrent_listener"].as_object() {
        println!(
            "  torrent connections: {} accepted, {} handed to a torrent, {} failed the handshake, {} refused",
            l["accepted"], l["handed_over"], l["handshake_failed"], l["refused"]
        );
    }
    for c in value["communities"].as_array().into_iter().flatten() {
        let role = if c["control_node"].as_bool() == Some(true) { "control node" } else { "member" };
        println!("{} ({}, {role})", c["id"].as_str().unwrap_or("?"), c["name"].as_str().unwrap_or(""));
        println!("  archives: {}   stored messages: {}", c["archives"], c["stored_messages"]);
        println!("  last archive end: {}   magnetlink clock: {}", c["last_archive_end"], c["magnetlink_clock"]);
        println!("  downloaded archives: {} (imported {})", c["downloaded_archives"], c["imported_archives"]);
        if c["refused_messages"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  refused at import: {} messages on topics of other communities {}",
                c["refused_messages"], c["refused_topics"]
            );
        }
        if let Some(seed) = c["seeding"].as_object() {
            println!(
                "  seeding {}: {} peers, {} bytes uploaded",
                seed["info_hash"], seed["peers"], seed["uploaded_bytes"]
            );
        }
        if let Some(d) = c["download"].as_object() {
            println!("  downloading ({}): {}/{} bytes", d["phase"], d["bytes_done"], d["bytes_total"]);
        }
        if let Some(p) = c["pending_magnetlink"].as_str() {
            println!("  pending magnet link: {p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn init(path: &Path, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!path.exists(), "{} exists; not overwriting it", path.display());
    let config = NodeConfig { data_dir, ..NodeConfig::default() };
    let text = toml::to_string(&config).context("serialising the default configuration")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
