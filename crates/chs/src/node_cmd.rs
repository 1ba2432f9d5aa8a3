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
use tokio::sync::{mpsc, oneshot};

use crate::api::client::RunningNode;
use crate::api::{self, ApiError, ApiState};
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
    /// Asks the running node to archive what it stored since its last archive, now (control node).
    Build {
        /// The node's configuration.
        #[arg(long, env = "CHS_CONFIG")]
        config: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// Print JSON (the API's answer).
        #[arg(long)]
        json: bool,
    },
    /// Asks the running node to publish a community's latest magnetlink again (control node).
    Reannounce {
        /// The node's configuration.
        #[arg(long, env = "CHS_CONFIG")]
        config: PathBuf,
        /// The community id.
        #[arg(long, value_name = "ID")]
        community: String,
        /// Print JSON (the API's answer).
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
        Some(NodeCommand::Build { config, community, json }) => {
            let id = util::parse_community_id(&community)?;
            let reply = running_node(&config)?.send("POST", &format!("/api/v1/communities/{id}/build"), None)?;
            let text = format!(
                "built {} archives with {} messages for {id}; the node seeds and announces them",
                reply["archives"].as_array().map_or(0, Vec::len),
                reply["messages"]
            );
            print_reply(&reply, json, &text)
        }
        Some(NodeCommand::Reannounce { config, community, json }) => {
            let id = util::parse_community_id(&community)?;
            let reply = running_node(&config)?.send("POST", &format!("/api/v1/communities/{id}/reannounce"), None)?;
            let text =
                format!("published the magnetlink of {id} again: {}", reply["magnet_uri"].as_str().unwrap_or("?"));
            print_reply(&reply, json, &text)
        }
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

/// Adds the `timestamp` (RFC 3339, UTC, milliseconds) every event line carries.
fn stamp(value: &mut serde_json::Value) {
    if let Some(map) = value.as_object_mut() {
        map.insert("timestamp".into(), util::rfc3339_ms(util::now_ms()).into());
    }
}

fn print_line(value: &serde_json::Value) {
    let mut value = value.clone();
    if value.get("timestamp").is_none() {
        stamp(&mut value);
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
    // The API's port first: a taken port fails before anything starts, naming the setting.
    let api = if config.api.enabled { Some(ApiSetup::bind(&config).await?) } else { None };
    // Subscribed before the node starts: the catch-up build and the first seeding may be done
    // (or a fault point reached) before `start` returns, and their lines must not be lost.
    let bus = chs_node::SignalBus::default();
    let mut signals = bus.subscribe();
    let node = match Node::start_with_bus(config.clone(), Arc::new(SystemClock), bus.clone()).await {
        Ok(node) => node,
        Err(err) => return Err(start_error(err, &config)),
    };
    let handle = node.handle();
    let (api_state, mut commands, api_stop) = match api {
        Some(setup) => {
            let (state, commands, stop) = setup.serve();
            (Some(state), Some(commands), Some(stop))
        }
        None => (None, None, None),
    };
    let daemon = Daemon {
        handle: handle.clone(),
        bus,
        status_path: config.data_dir.join("status.json"),
        started_at_ms: util::now_ms(),
        api_info: match &api_state {
            Some(_) => serde_json::json!({
                "listen": api_addr(&config, &api_state),
                "token_file": std::path::absolute(config.api_token_file()).unwrap_or_else(|_| config.api_token_file()),
            }),
            None => serde_json::Value::Null,
        },
        api: api_state,
        store_config: serde_json::json!({
            "serve": config.waku.store.serve,
            "peers": config.waku.store.peers,
        }),
        catch_ups: std::sync::Mutex::default(),
    };
    let waku = handle.waku().listen_addrs().await.unwrap_or_default();
    let communities = handle.status().await?;
    if communities.is_empty() {
        tracing::warn!(
            db = %config.db_path().display(),
            "no community in the database: create one (`chs community create`), import a key (`chs community import-key`) or join one (`chs community join`)"
        );
    }
    if config.waku.bootstrap.is_empty() && communities.iter().any(|c| !c.control_node) {
        tracing::warn!(
            "no Waku peer to dial ([waku] bootstrap is empty): a member learns magnetlinks only from peers that dial it"
        );
    }
    // As for every signal below: the status file first, so a reader of the line finds it.
    daemon.write_status(true).await;
    print_line(&serde_json::json!({
        "type": "started",
        "waku": waku,
        "torrent": handle.torrent_addr().map(|a| a.to_string()),
        "api": daemon.api_info["listen"],
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
                    daemon.observe(&signal);
                    // Signals that change nothing in the status (and may come in floods: live
                    // messages, forged magnetlinks) do not rewrite it. The status is written
                    // before the line is printed, so whoever reads a line finds `status.json`
                    // at least as new as it.
                    if !matches!(
                        signal,
                        Signal::MessagesCaptured { .. } | Signal::MagnetlinkRejected { .. } | Signal::FaultPaused { .. }
                    ) {
                        daemon.write_status(true).await;
                    }
                    if let Ok(mut v) = serde_json::to_value(&signal) {
                        stamp(&mut v);
                        if let Some(api) = &daemon.api {
                            api.observe(&v);
                        }
                        print_line(&v);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "signal printer fell behind");
                    if let Some(api) = &daemon.api {
                        api.lagged(n);
                    }
                }
                Err(RecvError::Closed) => break Ok(()),
            },
            Some(command) = async { match commands.as_mut() { Some(rx) => rx.recv().await, None => None } } => {
                // The status first: whoever reads it after the answer sees the change.
                let answer = daemon.command(command).await;
                daemon.write_status(true).await;
                if let Some((reply, result)) = answer {
                    let _ = reply.send(result);
                }
            }
            _ = tick.tick() => daemon.write_status(true).await,
        }
    };
    eprintln!("shutting down");
    if let Some(stop) = api_stop {
        let _ = stop.send(());
    }
    daemon.write_status(false).await;
    node.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// `POST /api/v1/communities/{id}/build`: archives what the control node stored since its last
/// archive, up to now (as `chs archive build --community` on the node's database does), without
/// waiting for the weekly window; the node's archive task notices the changed folder within
/// `[archive] watch_interval`, seeds it and publishes the magnetlink.
async fn build_now(
    handle: &chs_node::NodeHandle,
    bus: &chs_node::SignalBus,
    id: chs_community::CommunityId,
) -> Result<serde_json::Value, ApiError> {
    use axum::http::StatusCode;
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e);
    let statuses = handle.status().await.map_err(|e| internal(e.chain()))?;
    let status = statuses
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("community {id} is not known to this node")))?;
    if !status.control_node || !status.joined {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("community {id}: this node is not its active control node"),
        ));
    }
    let (topics, wrapping) = handle
        .with_store(move |c, s| Ok((c.channel_topics(s, &id)?, c.build_wrapping(s, &id)?)))
        .await
        .map_err(|e| internal(e.chain()))?;
    let config = handle.config().clone();
    let dir = config.archive_root().join(id.to_string());
    let options = chs_archive::BuildOptions {
        interval: config.archive.interval.as_secs(),
        piece_length: u64::from(config.archive.piece_length),
        ..chs_archive::BuildOptions::new(topics, util::now_secs())
    };
    let db = config.db_path();
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<chs_archive::BuildReport> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // A second connection: reading in WAL mode does not block the node's writes.
        let store = chs_store::Store::open(&db)?;
        // An encrypted community's archives are wrapped with its newest hash-ratchet key.
        let build = |w: Option<&mut dyn chs_archive::Wrapper>| {
            chs_archive::Builder::new(&dir, options)
                .maybe_wrapper(w.map(|w| w as &mut dyn chs_archive::Wrapper))
                .run(&store)
        };
        Ok(wrapping.run(&db, build)?.0)
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(|e| internal(crate::error_text(&e)))?;
    if report.archived_until > 0 {
        let end = report.archived_until;
        handle
            .with_store(move |c, s| Ok(c.save_last_archive_end_date(s, &id, end)?))
            .await
            .map_err(|e| internal(e.chain()))?;
    }
    if let (Some(range), false) = (report.range, report.archives.is_empty()) {
        bus.publish(Signal::HistoryArchivesCreated {
            community_id: id,
            from: range.from,
            to: range.to,
            archive_ids: report.archives.iter().map(|a| a.id.clone()).collect(),
            messages: report.messages_archived,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(serde_json::json!({
        "community_id": id.to_string(),
        "archives": report.archives.iter().map(|a| serde_json::json!({
            "archive_id": a.id, "from": a.window.from, "to": a.window.to, "messages": a.messages,
        })).collect::<Vec<_>>(),
        "messages": report.messages_archived,
        "archived_until": report.archived_until,
    }))
}

fn api_addr(config: &NodeConfig, state: &Option<Arc<ApiState>>) -> String {
    state.as_ref().and_then(|s| s.local_addr()).unwrap_or(config.api.listen).to_string()
}

/// The API's socket and token, before the node starts.
struct ApiSetup {
    listener: tokio::net::TcpListener,
    token: String,
}

impl ApiSetup {
    async fn bind(config: &NodeConfig) -> anyhow::Result<ApiSetup> {
        let listener = tokio::net::TcpListener::bind(config.api.listen).await.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "cannot listen for the HTTP API on {}: set `[api] listen` in the config (or CHS_API_LISTEN, or \
                 --set api.listen='\"127.0.0.1:N\"'; port 0 picks a free one), or turn it off with `[api] enabled = false`",
                config.api.listen
            ))
        })?;
        let token = api::load_or_create_token(&config.api_token_file())?;
        Ok(ApiSetup { listener, token })
    }

    /// Starts serving; returns the state, the command receiver and the stop switch.
    fn serve(self) -> (Arc<ApiState>, mpsc::Receiver<api::Command>, oneshot::Sender<()>) {
        let (tx, rx) = mpsc::channel(16);
        let local = self.listener.local_addr().ok();
        let state = Arc::new(ApiState::new(self.token, tx, local));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(api::serve(self.listener, Arc::clone(&state), async move {
            let _ = stop_rx.await;
        }));
        (state, rx, stop_tx)
    }
}

/// `chs node status`'s store lines: serving or not, the store nodes asked, each newest catch-up.
fn print_store_status(store: &serde_json::Value) {
    if store.is_null() {
        return;
    }
    let peers = store["peers"].as_array().map(Vec::len).unwrap_or(0);
    println!(
        "  store v3: {}; catch-up from {}",
        if store["serve"] == true { "serving the message store" } else { "not serving" },
        if peers == 0 { "connected store peers".to_owned() } else { format!("{peers} configured store nodes") }
    );
    for c in store["catch_ups"].as_array().into_iter().flatten() {
        let id = c["community_id"].as_str().unwrap_or("?");
        let short = id.get(..10).unwrap_or(id);
        let result = if c["store_nodes"] == 0 {
            "no store node to ask".to_owned()
        } else if c["peer"].is_null() {
            format!(
                "failed ({})",
                c["failures"]
                    .as_array()
                    .map(|f| f.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "{} messages in {} pages from {} in {} ms{}",
                c["messages"],
                c["pages"],
                c["peer"].as_str().unwrap_or("?"),
                c["elapsed_ms"],
                if c["failed_peers"].as_u64().unwrap_or(0) > 0 {
                    format!(", {} store nodes failed first", c["failed_peers"])
                } else {
                    String::new()
                }
            )
        };
        println!("    catch-up {short}… {}: {result}", c["what"].as_str().unwrap_or("?"));
    }
}

/// What the daemon's loop works with.
struct Daemon {
    handle: chs_node::NodeHandle,
    bus: chs_node::SignalBus,
    status_path: PathBuf,
    started_at_ms: i64,
    api_info: serde_json::Value,
    api: Option<Arc<ApiState>>,
    /// `[waku.store]` as configured: served, and the store nodes given (empty: connected ones).
    store_config: serde_json::Value,
    /// The newest store catch-up per community and kind (`description`, `shard-info`, `magnetlinks`,
    /// `channels`), as its signal.
    catch_ups: std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
}

impl Daemon {
    /// The Waku peers the node knows: id, source (static, dns, discv5, peer-exchange, inbound),
    /// whether connected, shards, addresses.
    async fn waku_peers(&self) -> Vec<serde_json::Value> {
        self.handle
            .waku()
            .peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                serde_json::json!({
                    "peer_id": p.peer_id.to_string(), "source": p.source.name(), "connected": p.connected,
                    "shards": p.shards, "addrs": p.addrs, "store": p.store,
                })
            })
            .collect()
    }

    /// Keeps what the status shows of a signal: the newest store catch-up per community and kind.
    fn observe(&self, signal: &Signal) {
        if let Signal::StoreCatchUp { community_id, what, .. } = signal
            && let Ok(mut value) = serde_json::to_value(signal)
        {
            stamp(&mut value);
            if let Ok(mut map) = self.catch_ups.lock() {
                map.insert(format!("{community_id}/{what}"), value);
            }
        }
    }

    /// The `store` part of the status: configuration and the newest catch-ups.
    fn store_status(&self) -> serde_json::Value {
        let catch_ups: Vec<serde_json::Value> =
            self.catch_ups.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        serde_json::json!({
            "serve": self.store_config["serve"],
            "peers": self.store_config["peers"],
            "catch_ups": catch_ups,
        })
    }

    /// Writes `status.json` (and gives the API the same snapshot).
    async fn write_status(&self, running: bool) {
        let Ok(list) = self.handle.status().await else { return };
        let listener = self.handle.torrent_listener_stats().map(|s| {
            serde_json::json!({
                "accepted": s.accepted, "refused": s.refused, "handshake_failed": s.handshake_failed,
                "handed_over": s.handed_over,
            })
        });
        let store_server = self.handle.store_server_stats().map(|s| {
            serde_json::json!({
                "requests": s.requests, "pages_served": s.pages_served, "messages_served": s.messages_served,
                "bad_requests": s.bad_requests, "busy": s.busy, "backend_failures": s.backend_failures,
                "unread": s.unread,
            })
        });
        let value = serde_json::json!({
            "running": running,
            "pid": std::process::id(),
            "updated_at_ms": self.handle.clock().now_ms(),
            "started_at_ms": self.started_at_ms,
            "waku_peers": self.waku_peers().await,
            "store": self.store_status(),
            "listening": self.handle.listening_sockets().await,
            "torrent_listener": listener,
            "store_server": store_server,
            "api": self.api_info,
            "communities": util::with_share_urls(serde_json::to_value(&list).unwrap_or_default()),
        });
        let tmp = self.status_path.with_extension("json.tmp");
        if std::fs::write(&tmp, format!("{value:#}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, &self.status_path);
        }
        if let Some(api) = &self.api {
            api.set_snapshot(value);
        }
    }

    /// Carries out a change asked through the API; returns the answer to send once the status
    /// is rewritten (`None` when a task answers later).
    async fn command(&self, command: api::Command) -> Option<(api::Reply, Result<serde_json::Value, ApiError>)> {
        use axum::http::StatusCode;
        let parse = |text: &str| {
            chs_community::CommunityId::parse(text).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
        };
        let node_error = |e: NodeError| {
            let status = match e {
                NodeError::UnknownCommunity(_)
                | NodeError::Community(chs_community::CommunityError::UnknownCommunity(_)) => StatusCode::NOT_FOUND,
                NodeError::NotControlNode(_) | NodeError::NothingAnnounced(_) => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, crate::error_text_of(&e))
        };
        match command {
            api::Command::Join { community, reply } => {
                let result = async {
                    let id = parse(&community)?;
                    // Stored as joined if it is not yet (the CLI may have stored it already),
                    // then its tasks start at once.
                    self.handle
                        .with_store(move |c, s| {
                            if c.get(s, &id).is_err() {
                                c.join(s, &id, None)?;
                            }
                            Ok(())
                        })
                        .await
                        .map_err(node_error)?;
                    self.handle.join(&id).await.map_err(node_error)?;
                    Ok(serde_json::json!({ "community_id": community, "joined": true, "active": true }))
                }
                .await;
                Some((reply, result))
            }
            api::Command::Leave { community, reply } => {
                let result = async {
                    let id = parse(&community)?;
                    self.handle.leave(&id).await.map_err(node_error)?;
                    Ok(serde_json::json!({ "community_id": community, "left": true }))
                }
                .await;
                Some((reply, result))
            }
            api::Command::Build { community, reply } => {
                // Built off the loop (it may take a while); the answer comes when it is done.
                let (handle, bus) = (self.handle.clone(), self.bus.clone());
                tokio::spawn(async move {
                    let result = match parse(&community) {
                        Ok(id) => build_now(&handle, &bus, id).await,
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                });
                None
            }
            api::Command::Reannounce { community, reply } => {
                let result = async {
                    let id = parse(&community)?;
                    let magnet_uri = self.handle.reannounce(&id).await.map_err(node_error)?;
                    Ok(serde_json::json!({ "community_id": community, "magnet_uri": magnet_uri }))
                }
                .await;
                Some((reply, result))
            }
            api::Command::Reopen { community, reply } => {
                let result = async {
                    let id = parse(&community)?;
                    self.handle.restart(&id).await.map_err(node_error)?;
                    Ok(serde_json::json!({ "community_id": community, "restarted": true }))
                }
                .await;
                Some((reply, result))
            }
        }
    }
}

/// The node running on the data folder of the configuration `config_path`.
fn running_node(config_path: &Path) -> anyhow::Result<RunningNode> {
    let config = NodeConfig::from_file(config_path)?;
    RunningNode::find(&config.data_dir).with_context(|| {
        format!(
            "no node with its HTTP API runs on {} (start it with `chs node --config {}`; `[api] enabled` must be true)",
            config.data_dir.display(),
            config_path.display()
        )
    })
}

/// Prints an API answer: JSON, or `text`.
fn print_reply(reply: &serde_json::Value, json: bool, text: &str) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(reply)?);
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET /api/v1/status` of a running node, in the shape of `status.json`.
fn live_status(node: &RunningNode) -> anyhow::Result<serde_json::Value> {
    let s = node.get("/api/v1/status")?;
    let now = util::now_ms();
    let uptime_ms = s["node"]["uptime_seconds"].as_i64().unwrap_or(0) * 1000;
    Ok(serde_json::json!({
        "running": true,
        "pid": s["node"]["pid"],
        "updated_at_ms": now,
        "started_at_ms": now - uptime_ms,
        "waku_peers": s["peers"]["waku_list"],
        "store": s["store"],
        "listening": s["node"]["listening"],
        "torrent_listener": s["node"]["torrent_listener"],
        "store_server": s["node"]["store_server"],
        "api": { "listen": node.api.to_string(), "token_file": node.token_file },
        "communities": s["communities"],
    }))
}

fn status(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::from_file(config_path)?;
    // A running node answers through its API (live); else its status file while it runs; else
    // the database.
    let from_api = RunningNode::find(&config.data_dir).and_then(|node| match live_status(&node) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %crate::error_text(&e), "the running node's API did not answer: reading status.json");
            None
        }
    });
    let live = from_api.or_else(|| {
        std::fs::read_to_string(config.data_dir.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter(|v| v["running"].as_bool() == Some(true))
            // A node killed without shutdown leaves `running: true` behind: check its pid.
            .filter(|v| v["pid"].as_u64().is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists()))
    });
    let value = if let Some(live) = live {
        live
    } else {
        let mut store = util::open_existing_store(&config.db_path())?;
        let communities = util::communities(&mut store)?;
        chs_node::migrate_store(&mut store)?;
        let list = chs_node::community_statuses(&communities, &store, &config.archive_root(), &HashMap::new())?;
        serde_json::json!({ "running": false, "communities": util::with_share_urls(serde_json::to_value(&list)?) })
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
    if !value["waku_peers"].is_null() {
        println!("  waku peers: {} connected", api::connected_waku_peers(&value["waku_peers"]));
    }
    for p in value["waku_peers"].as_array().into_iter().flatten().filter(|p| p["connected"] == true) {
        println!(
            "    {} ({}, shards {}{})",
            p["peer_id"].as_str().unwrap_or("?"),
            p["source"].as_str().unwrap_or("?"),
            p["shards"],
            if p["store"] == true { ", store" } else { "" }
        );
    }
    print_store_status(&value["store"]);
    if let Some(l) = value["torrent_listener"].as_object() {
        println!(
            "  torrent connections: {} accepted, {} handed to a torrent, {} failed the handshake, {} refused",
            l["accepted"], l["handed_over"], l["handshake_failed"], l["refused"]
        );
    }
    if let Some(s) = value["store_server"].as_object() {
        let refused: u64 = ["bad_requests", "busy", "backend_failures", "unread"]
            .iter()
            .filter_map(|k| s.get(*k).and_then(serde_json::Value::as_u64))
            .sum();
        println!(
            "  store queries served: {} pages ({} messages) of {} queries, {refused} refused",
            s["pages_served"], s["messages_served"], s["requests"]
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
        if let Some(link) = c["share_url"].as_str() {
            println!("  link: {link}");
        }
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
        if let Some(n) = c["sealed_messages"].as_u64().filter(|&n| n > 0) {
            println!(
                "  messages kept but not readable here: {n} (hash-ratchet encrypted or segments; Status clients with the keys read them)"
            );
        }
        if let Some(note) = c["archive_wrapping"].as_str() {
            println!("  archives: {note}");
        }
        if let Some(n) = c["ratchet_keys"].as_u64().filter(|&n| n > 0) {
            println!("  hash-ratchet keys held: {n}");
        }
        if let Some(u) = c["not_imported"].as_object() {
            println!("  history not imported: {}", u["reason"].as_str().unwrap_or("?"));
            println!("    link: {}", u["magnet_uri"].as_str().unwrap_or("?"));
        }
        for f in c["failed_imports"].as_array().into_iter().flatten() {
            println!(
                "  archive {} not imported: {}",
                f["archive_id"].as_str().unwrap_or("?"),
                f["error"].as_str().unwrap_or("?")
            );
        }
        if let Some(seed) = c["seeding"].as_object() {
            println!(
                "  seeding {}: {} peers, {} uploaded",
                seed["info_hash"],
                seed["peers"],
                bytes(&seed["uploaded_bytes"])
            );
            print_swarm(&seed["swarm"]);
        }
        if let Some(d) = c["download"].as_object() {
            println!("  downloading ({}): {} of {}", d["phase"], bytes(&d["bytes_done"]), bytes(&d["bytes_total"]));
        }
    }
}

/// The seeded torrent's peers by source and announce results (issue 17 item 6).
fn print_swarm(swarm: &serde_json::Value) {
    if let Some(by) = swarm["peers_by_source"].as_object().filter(|m| !m.is_empty()) {
        let list: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("    peers by source: {}", list.join(", "));
    }
    for t in swarm["trackers"].as_array().into_iter().flatten() {
        let when = t["last_announce"]
            .as_u64()
            .map_or_else(|| "never".to_owned(), |at| format!("{} UTC", util::format_utc(at)));
        match t["last_result"].as_str() {
            Some("ok") => println!("    tracker {}: ok at {when}, {} peers", t["url"], t["last_peers"]),
            Some("error") => println!("    tracker {}: error at {when}: {}", t["url"], t["last_error"]),
            _ => println!("    tracker {}: no announce yet", t["url"]),
        }
    }
    if let Some(d) = swarm["dht"].as_object() {
        println!(
            "    dht: {} announces answered of {} sent, {} peers found",
            d["acknowledged"], d["sent"], d["peers_found"]
        );
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
const OPTIONAL_SETTINGS: &[(&str, &str)] = &[
    (
        "[torrent]",
        "# announce_addr = \"203.0.113.7:9025\"  # the public ip:port peers reach this node's BitTorrent port at, put in\n\
         #                                      # published magnet links (default: the listen address; loopback when\n\
         #                                      # listening on all interfaces, so set it on a public control node)\n\
         # data_dir = \"chs-data/archives\"      # archive folders, one per community (status-go's ArchiveDataDir)\n\
         # torrent_dir = \"chs-data/torrents\"   # .torrent files (status-go's TorrentDir)\n",
    ),
    (
        "[api]",
        "# token_file = \"chs-data/api.token\"   # bearer token of the calls that change state (default: api.token in\n\
         #                                      # data_dir, created with a random token at the first start)\n",
    ),
];

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
