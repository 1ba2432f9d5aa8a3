//! `chs node --config chs.toml` (the daemon), `chs node status`, `chs node init`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chs_node::config::Override;
use chs_node::{ConfigError, Node, NodeConfig, NodeError, Signal, SystemClock};
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
    Every line carries a `timestamp` (RFC 3339, UTC). \
    Logs go to stderr (--log-level, --log-format). `<data_dir>/status.json` holds the per-community state while \
    the node runs (`chs node status`).\n\n\
    Settings: the --config file, then environment variables CHS_<SECTION>_<KEY> (CHS_TORRENT_PORT=9026, \
    CHS_DATA_DIR=/var/lib/chs, CHS_WAKU_LISTEN='[\"/ip4/0.0.0.0/tcp/60001\"]'), then --data-dir and --set NAME=VALUE \
    (a later one wins).")]
pub(crate) struct NodeArgs {
    #[command(subcommand)]
    command: Option<NodeCommand>,
    /// The TOML configuration (see `chs node init`).
    #[arg(long, env = "CHS_CONFIG")]
    config: Option<PathBuf>,
    /// The node's data folder (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Sets one setting over the file's, e.g. `--set torrent.port=9026`. Repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    settings: Vec<String>,
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
    /// Writes a configuration file with every setting spelled out (the optional ones commented).
    Init {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        config: PathBuf,
        /// The node's data folder (relative to the config file).
        #[arg(long, default_value = "chs-data")]
        data_dir: PathBuf,
        /// Print JSON (the file written and the settings).
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(NodeCommand::Status { config, json }) => status(&config, json),
        Some(NodeCommand::Init { config, data_dir, json }) => init(&config, data_dir, json),
        None => {
            let path = args.config.context(
                "`chs node` needs --config FILE or CHS_CONFIG=FILE (write one with `chs node init --config FILE`)",
            )?;
            let mut overrides = env_overrides(std::env::vars_os())?;
            if let Some(dir) = &args.data_dir {
                overrides.push(Override {
                    key: "data_dir".into(),
                    value: toml::Value::String(dir.display().to_string()).to_string(),
                    origin: "--data-dir".into(),
                });
            }
            for setting in &args.settings {
                let (key, value) = setting
                    .split_once('=')
                    .with_context(|| format!("--set {setting:?}: expected NAME=VALUE, e.g. torrent.port=9026"))?;
                overrides.push(Override {
                    key: key.trim().to_owned(),
                    value: value.trim().to_owned(),
                    origin: format!("--set {setting}"),
                });
            }
            let mut config = NodeConfig::from_file_with_overrides(&path, &overrides).map_err(|e| match e {
                ConfigError::Read { .. } => anyhow::Error::new(e)
                    .context(format!("--config {}: no such file? write one with `chs node init`", path.display())),
                other => anyhow::Error::new(other),
            })?;
            config.waku.bootstrap.extend(args.bootstrap);
            // Crash tests only: stop at this step so that the test can kill -9 the process there.
            config.pause_at = std::env::var("CHS_PAUSE_AT").ok().filter(|p| !p.is_empty());
            util::runtime()?.block_on(daemon(config))
        }
    }
}

/// The settings `CHS_<SECTION>_<KEY>` environment variables give: `CHS_TORRENT_PORT` is
/// `torrent.port`, `CHS_DATA_DIR` is `data_dir`. Only variables naming a section of the
/// configuration (or a top-level setting) are read, so `CHS_LOG_LEVEL` or `CHS_COMMUNITY_KEY` are
/// not settings; an unknown key in a known section is an error naming the variable.
fn env_overrides(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> anyhow::Result<Vec<Override>> {
    let defaults = toml::Table::try_from(NodeConfig::default()).context("listing the settings")?;
    let mut sections: Vec<&str> = defaults.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k.as_str()).collect();
    sections.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut overrides = Vec::new();
    let mut vars: Vec<_> = vars.filter_map(|(k, v)| Some((k.into_string().ok()?, v))).collect();
    vars.sort();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("CHS_") else { continue };
        let rest = rest.to_ascii_lowercase();
        let key = if let Some(section) = sections.iter().find(|s| rest.starts_with(&format!("{s}_"))) {
            format!("{section}.{}", &rest[section.len() + 1..])
        } else if defaults.get(&rest).is_some_and(|v| !v.is_table()) {
            rest
        } else {
            continue;
        };
        let value = value.into_string().map_err(|_| anyhow::anyhow!("{name} is not valid UTF-8"))?;
        overrides.push(Override { key, value, origin: name });
    }
    Ok(overrides)
}

fn print_line(value: &serde_json::Value) {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        map.insert("timestamp".into(), util::rfc3339_ms(util::now_ms()).into());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The start-up error, with the setting that fixes it when a port is taken.
fn start_error(err: NodeError, config: &NodeConfig) -> anyhow::Error {
    let in_use = crate::error_text_of(&err).contains("in use");
    let hint = match &err {
        NodeError::Torrent(_) if in_use => Some(format!(
            "the BitTorrent port {}:{} is taken by another process: set `[torrent] port` in the config \
             (or CHS_TORRENT_PORT, or --set torrent.port=N; 0 picks a free port)",
            config.torrent.listen_ip, config.torrent.port
        )),
        NodeError::WakuStart(chs_waku::StartError::Listen { addr, .. }) => Some(format!(
            "cannot listen for Waku on {addr}: set `[waku] listen` in the config (or CHS_WAKU_LISTEN, or \
             --set 'waku.listen=[\"/ip4/0.0.0.0/tcp/N\"]')"
        )),
        _ => None,
    };
    let err = anyhow::Error::new(err);
    match hint {
        Some(hint) => err.context(hint),
        None => err.context("starting the node"),
    }
}

async fn daemon(config: NodeConfig) -> anyhow::Result<ExitCode> {
    let status_path = config.data_dir.join("status.json");
    // Subscribed before the node starts: the catch-up build and the first seeding may be done
    // (or a fault point reached) before `start` returns, and their lines must not be lost.
    let bus = chs_node::SignalBus::default();
    let mut signals = bus.subscribe();
    let node = match Node::start_with_bus(config.clone(), Arc::new(SystemClock), bus).await {
        Ok(node) => node,
        Err(err) => return Err(start_error(err, &config)),
    };
    let handle = node.handle();
    let started_at_ms = util::now_ms();
    let waku = handle.waku().listen_addrs().await.unwrap_or_default();
    let communities = handle.status().await?;
    // As for every signal below: the status file first, so a reader of the line finds it.
    write_status(&handle, &status_path, true, started_at_ms).await;
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
                        Signal::MessageCaptured { .. } | Signal::MagnetlinkRejected { .. } | Signal::FaultPaused { .. }
                    ) {
                        write_status(&handle, &status_path, true, started_at_ms).await;
                    }
                    if let Ok(v) = serde_json::to_value(&signal) {
                        print_line(&v);
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "signal printer fell behind"),
                Err(RecvError::Closed) => break Ok(()),
            },
            _ = tick.tick() => write_status(&handle, &status_path, true, started_at_ms).await,
        }
    };
    eprintln!("shutting down");
    write_status(&handle, &status_path, false, started_at_ms).await;
    node.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn write_status(handle: &chs_node::NodeHandle, path: &Path, running: bool, started_at_ms: i64) {
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
        "started_at_ms": started_at_ms,
        "waku_peers": handle.waku().connected_peers().await.map(|p| p.len()).unwrap_or(0),
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
    print_status(&value, &config);
    Ok(ExitCode::SUCCESS)
}

/// `chs node status` as text: times as dates and spans, sizes in bytes units, owner-only and
/// member-only lines only for their role.
fn print_status(value: &serde_json::Value, config: &NodeConfig) {
    let running = value["running"].as_bool() == Some(true);
    let now_ms = util::now_ms();
    let ms_ago = |ms: i64| util::human_duration(u64::try_from(now_ms.saturating_sub(ms) / 1000).unwrap_or(0));
    match value["started_at_ms"].as_i64() {
        Some(start) if running => println!(
            "node: running (pid {}, up {}, status from {} ago)",
            value["pid"],
            ms_ago(start),
            ms_ago(value["updated_at_ms"].as_i64().unwrap_or(now_ms))
        ),
        _ if running => println!("node: running (pid {})", value["pid"]),
        _ => println!("node: not running"),
    }
    for socket in value["listening"].as_array().into_iter().flatten() {
        println!("  listening: {}", socket.as_str().unwrap_or("?"));
    }
    if let Some(peers) = value["waku_peers"].as_u64() {
        println!("  waku peers: {peers}");
    }
    if let Some(l) = value["torrent_listener"].as_object() {
        println!(
            "  torrent connections: {} accepted, {} handed to a torrent, {} failed the handshake, {} refused",
            l["accepted"], l["handed_over"], l["handshake_failed"], l["refused"]
        );
    }
    let communities = value["communities"].as_array().map(Vec::as_slice).unwrap_or_default();
    if communities.is_empty() {
        println!(
            "no communities: create one (`chs community create`), import a key (`chs community import-key`) or join one (`chs community join`)"
        );
    }
    let bytes = |v: &serde_json::Value| util::human_bytes(v.as_u64().unwrap_or(0));
    let date = |secs: u64| if secs == 0 { "never".to_owned() } else { format!("{} UTC", util::format_utc(secs)) };
    for c in communities {
        let owner = c["control_node"].as_bool() == Some(true);
        let role = if owner { "control node" } else { "member" };
        let name = c["name"].as_str().filter(|n| !n.is_empty()).unwrap_or("unnamed");
        let joined = if c["joined"].as_bool() == Some(false) { ", left" } else { "" };
        println!("{} {name} ({role}{joined})", c["id"].as_str().unwrap_or("?"));
        println!("  archives: {}   stored messages: {}", c["archives"], c["stored_messages"]);
        let last_end = c["last_archive_end"].as_u64().unwrap_or(0);
        if owner {
            println!("  last archive ends: {}", date(last_end));
            if running && last_end > 0 {
                let next = last_end.saturating_add(config.archive.interval.as_secs());
                println!(
                    "  next archive due: {} (then every {})",
                    date(next),
                    chs_node::config::format_duration(config.archive.interval)
                );
            }
        } else {
            println!("  archives downloaded: {} (imported {})", c["downloaded_archives"], c["imported_archives"]);
            if let Some(p) = c["pending_magnetlink"].as_str() {
                println!("  pending magnet link: {p}");
            }
        }
        if let Some(clock) = c["magnetlink_clock"].as_u64().filter(|&m| m > 0) {
            println!("  newest magnetlink: {}", date(clock / 1000));
        }
        if c["refused_messages"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  refused at import: {} messages on topics of other communities {}",
                c["refused_messages"], c["refused_topics"]
            );
        }
        if let Some(seed) = c["seeding"].as_object() {
            println!(
                "  seeding {}: {} peers, {} uploaded",
                seed["info_hash"],
                seed["peers"],
                bytes(&seed["uploaded_bytes"])
            );
        }
        if let Some(d) = c["download"].as_object() {
            println!("  downloading ({}): {} of {}", d["phase"], bytes(&d["bytes_done"]), bytes(&d["bytes_total"]));
        }
    }
}

fn init(path: &Path, data_dir: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!path.exists(), "{} exists; not overwriting it", path.display());
    let config = NodeConfig { data_dir, ..NodeConfig::default() };
    let text = init_text(&config)?;
    std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    if json {
        let settings = toml::Table::try_from(&config).context("serialising the default configuration")?;
        let value = serde_json::json!({ "config": path, "settings": settings });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings without a value by default, written commented out under their section (TOML has
/// no "unset"), with what they are for.
const OPTIONAL_SETTINGS: &[(&str, &str)] = &[(
    "[torrent]",
    "# announce_addr = \"203.0.113.7:9025\"  # the public ip:port peers reach this node's BitTorrent port at, put in\n\
         #                                      # published magnet links (default: the listen address; loopback when\n\
         #                                      # listening on all interfaces, so set it on a public control node)\n\
         # data_dir = \"chs-data/archives\"      # archive folders, one per community (status-go's ArchiveDataDir)\n\
         # torrent_dir = \"chs-data/torrents\"   # .torrent files (status-go's TorrentDir)\n",
)];

/// `chs node init`'s file: every setting with its default, the optional ones commented.
fn init_text(config: &NodeConfig) -> anyhow::Result<String> {
    let mut text = toml::to_string(config).context("serialising the default configuration")?;
    for (section, lines) in OPTIONAL_SETTINGS {
        let header = format!("{section}\n");
        if let Some(at) = text.find(&header) {
            text.insert_str(at + header.len(), lines);
        }
    }
    Ok(text)
}
