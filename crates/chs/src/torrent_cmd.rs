//! `chs torrent create|seed|fetch`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chs_torrent::{DEFAULT_PIECE_LENGTH, DownloadOptions, Magnet, TorrentNode};
use clap::Subcommand;

use crate::util;

#[derive(Debug, Subcommand)]
pub(crate) enum TorrentCommand {
    /// Hashes DIR into a BitTorrent v1 torrent (as status-go does) and prints its info hash and magnet link.
    Create {
        /// The folder (e.g. an archive directory holding `data` and `index`).
        dir: PathBuf,
        /// Piece length in bytes.
        #[arg(long, default_value_t = DEFAULT_PIECE_LENGTH)]
        piece_length: u32,
        /// Also write `<TORRENT_DIR>/<name>.torrent`.
        #[arg(long)]
        torrent_dir: Option<PathBuf>,
        /// Print JSON (info_hash, magnet, name, files, total_length, pieces).
        #[arg(long)]
        json: bool,
    },
    /// Seeds DIR until Ctrl-C; prints the magnet link.
    #[command(long_about = "Seeds DIR until Ctrl-C (or SIGTERM). Prints `info hash: …`, `listening on: …` \
        and then the magnet link on a line of its own (starting with `magnet:?`). The torrent is announced \
        to the --tracker URLs (also the magnet's `tr`) and, with --dht-bootstrap, to the DHT; nothing else \
        is contacted. The magnet carries an `x.pe` peer hint: --announce-addr, or, with no tracker and no \
        DHT, this node's listen address (unless it is unspecified).")]
    Seed {
        /// The folder to seed.
        dir: PathBuf,
        /// TCP address to accept peers on (default: 127.0.0.1 on a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Piece length in bytes (must match the torrent members expect).
        #[arg(long, default_value_t = DEFAULT_PIECE_LENGTH)]
        piece_length: u32,
        /// Directory for the BitTorrent session state (default: a temporary directory).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
        /// The address other peers can dial (`x.pe` hint, announced port; port 0 = the listen port).
        #[arg(long)]
        announce_addr: Option<SocketAddr>,
        /// Print one JSON line (info_hash, listening, magnet) instead of the three text lines.
        #[arg(long)]
        json: bool,
    },
    /// Downloads a magnet link into `OUT/<name>`: the `index` first, then every file (unless --index-only).
    Fetch {
        /// The magnet link (`magnet:?xt=urn:btih:…`).
        magnet: String,
        /// Parent directory of the downloaded folder.
        #[arg(long)]
        out: PathBuf,
        /// A peer to download from (`ip:port`), in addition to the link's `x.pe` hints. Repeatable.
        #[arg(long = "peer")]
        peers: Vec<SocketAddr>,
        /// Fetch the `index` file only.
        #[arg(long)]
        index_only: bool,
        /// Directory for the BitTorrent session state (default: a temporary directory).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Time without progress before a step fails (30s, 2m, ...).
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = util::parse_duration_secs)]
        stall_timeout: u64,
        #[command(flatten)]
        discovery: DiscoveryArgs,
        /// Do not announce to the magnet link's own trackers (`tr`).
        #[arg(long)]
        no_trackers: bool,
        /// Print JSON (info_hash, folder, index_bytes, have_bytes, total_bytes).
        #[arg(long)]
        json: bool,
    },
}

/// Peer discovery of `seed` and `fetch`: only what is given here (and, for `fetch`, the magnet's
/// own `tr` and `x.pe`) is used.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DiscoveryArgs {
    /// A tracker to announce to (`udp://…` or `http://…`); for `fetch` it replaces the magnet's
    /// trackers. Repeatable.
    #[arg(long = "tracker")]
    trackers: Vec<String>,
    /// A DHT node (`HOST:PORT`): turns the DHT on, bootstrapped from these nodes only. Repeatable.
    #[arg(long = "dht-bootstrap")]
    dht_bootstrap: Vec<String>,
}

impl DiscoveryArgs {
    fn tool(&self, no_magnet_trackers: bool, announce_addr: Option<SocketAddr>) -> anyhow::Result<ToolDiscovery> {
        for t in &self.trackers {
            anyhow::ensure!(
                ["udp://", "http://", "https://"].iter().any(|s| t.starts_with(s)),
                "--tracker {t}: not a udp://, http:// or https:// tracker URL"
            );
        }
        Ok(ToolDiscovery {
            trackers: self.trackers.clone(),
            dht_bootstrap: self.dht_bootstrap.clone(),
            no_magnet_trackers,
            announce_addr,
        })
    }
}

pub(crate) fn run(cmd: TorrentCommand) -> anyhow::Result<ExitCode> {
    let rt = util::runtime()?;
    match cmd {
        TorrentCommand::Create { dir, piece_length, torrent_dir, json } => {
            rt.block_on(create(&dir, piece_length, torrent_dir.as_deref(), json))
        }
        TorrentCommand::Seed { dir, listen, piece_length, state_dir, discovery, announce_addr, json } => {
            let discovery = discovery.tool(false, announce_addr)?;
            rt.block_on(seed(&dir, listen, piece_length, state_dir.as_deref(), &discovery, json))
        }
        TorrentCommand::Fetch {
            magnet,
            out,
            peers,
            index_only,
            state_dir,
            stall_timeout,
            discovery,
            no_trackers,
            json,
        } => {
            let discovery = discovery.tool(no_trackers, None)?;
            rt.block_on(fetch(&magnet, &out, peers, index_only, state_dir.as_deref(), stall_timeout, &discovery, json))
        }
    }
}

fn check_dir(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    Ok(())
}

fn check_piece_length(piece_length: u32) -> anyhow::Result<()> {
    anyhow::ensure!(piece_length >= 16 * 1024, "--piece-length {piece_length} is too small (at least 16384)");
    Ok(())
}

async fn create(dir: &Path, piece_length: u32, torrent_dir: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    check_dir(dir)?;
    check_piece_length(piece_length)?;
    let lock = read_lock(dir).await?;
    let created = chs_torrent::folder::create(dir, piece_length, torrent_dir)
        .await
        .with_context(|| format!("creating the torrent of {}", dir.display()))?;
    drop(lock);
    let meta = &created.meta;
    if json {
        let files: Vec<serde_json::Value> =
            meta.files().iter().map(|f| serde_json::json!({ "path": f.display_path(), "length": f.length })).collect();
        let value = serde_json::json!({
            "info_hash": meta.info_hash().to_hex(),
            "magnet": created.magnet.to_string(),
            "name": meta.name(),
            "piece_length": meta.piece_length(),
            "pieces": meta.pieces().len(),
            "total_length": meta.total_length(),
            "files": files,
            "torrent_file": created.torrent_path.as_ref().map(|p| p.display().to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("info hash: {}", meta.info_hash().to_hex());
        println!(
            "name: {} ({} files, {} bytes, {} pieces)",
            meta.name(),
            meta.files().len(),
            meta.total_length(),
            meta.pieces().len()
        );
        if let Some(p) = &created.torrent_path {
            println!("torrent file: {}", p.display());
        }
        println!("{}", created.magnet);
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder's shared lock (see `chs_archive::lock`): waits for a build of it (`chs archive build`
/// or a node) to finish and keeps the next from starting while the folder is hashed, since an
/// archive folder is only consistent between builds.
async fn read_lock(dir: &Path) -> anyhow::Result<chs_archive::FolderLock> {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || match chs_archive::FolderLock::try_shared(&d)? {
        Some(lock) => Ok(lock),
        None => {
            eprintln!("{} is being built (chs archive build or a node): waiting for the build to finish", d.display());
            chs_archive::FolderLock::shared(&d)
        }
    })
    .await
    .context("locking the folder")?
    .with_context(|| format!("locking {}", dir.display()))
}

/// A state directory: the given one, or a temporary one removed when the guard drops.
fn state_dir(given: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(p) => Ok((p.to_owned(), None)),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("chs-torrent-")
                .tempdir()
                .context("creating a temporary state directory")?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

async fn seed(
    dir: &Path,
    listen: Option<SocketAddr>,
    piece_length: u32,
    state: Option<&Path>,
    discovery: &ToolDiscovery,
    json: bool,
) -> anyhow::Result<ExitCode> {
    check_dir(dir)?;
    check_piece_length(piece_length)?;
    let (state_path, guard) = state_dir(state)?;
    let mut config = node_config(&state_path, listen, discovery);
    // A temporary state directory is gone after the run: nothing to persist.
    config.persistence = guard.is_none();
    let node = TorrentNode::start(config).await.with_context(|| {
        format!("starting the BitTorrent node (listen {})", listen.map_or("127.0.0.1:0".into(), |a| a.to_string()))
    })?;
    let seeded = async {
        let _lock = read_lock(dir).await?;
        anyhow::Ok(chs_torrent::folder::seed_dir(&node, dir, piece_length).await?)
    }
    .await;
    let (created, status, magnet) = match seeded {
        Ok(v) => v,
        Err(e) => {
            node.shutdown().await;
            return Err(e).with_context(|| format!("seeding {}", dir.display()));
        }
    };
    if json {
        let info_hash = created.meta.info_hash().to_hex();
        let listening = node.listen_addr().map(|a| a.to_string());
        println!(
            "{}",
            serde_json::json!({ "info_hash": info_hash, "listening": listening, "magnet": magnet.to_string() })
        );
    } else {
        println!("info hash: {}", created.meta.info_hash().to_hex());
        if let Some(addr) = node.listen_addr() {
            println!("listening on: {addr}");
        }
        println!("{magnet}");
    }
    eprintln!(
        "seeding {} ({} of {} bytes verified); press Ctrl-C to stop",
        dir.display(),
        status.have_bytes,
        status.total_bytes
    );
    wait_for_shutdown_signal().await?;
    eprintln!("stopping");
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn fetch(
    magnet_text: &str,
    out: &Path,
    peers: Vec<SocketAddr>,
    index_only: bool,
    state: Option<&Path>,
    stall_timeout: u64,
    discovery: &ToolDiscovery,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let magnet: Magnet = magnet_text.trim().parse()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating output directory {}", out.display()))?;
    let found_by = discovery.discovery();
    anyhow::ensure!(
        !peers.is_empty()
            || !magnet.peers.is_empty()
            || found_by.dht
            || !found_by.download_trackers(&magnet.trackers).is_empty(),
        "no way to find a peer: the magnet link has no x.pe peer hint and no tracker; give --peer IP:PORT, \
         --tracker URL or --dht-bootstrap HOST:PORT"
    );
    let (state_path, guard) = state_dir(state)?;
    let mut config = node_config(&state_path, None, discovery);
    config.listen_addr = None;
    config.persistence = guard.is_none();
    let node = TorrentNode::start(config).await.context("starting the BitTorrent node")?;
    let bar = Arc::new(util::progress_bar(0, "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {msg}"));
    let progress_bar = Arc::clone(&bar);
    let opts = DownloadOptions {
        peers,
        stall_timeout: std::time::Duration::from_secs(stall_timeout.max(1)),
        progress: Some(Arc::new(move |p: chs_torrent::Progress| {
            progress_bar.set_length(p.bytes_total);
            progress_bar.set_position(p.bytes_done);
            progress_bar.set_message(format!("{} peers", p.peers));
        })),
        ..DownloadOptions::default()
    };
    let result = tokio::select! {
        r = chs_torrent::folder::fetch(&node, &magnet, out, opts, index_only) => r,
        r = wait_for_shutdown_signal() => {
            r?;
            Err(chs_torrent::Error::Cancelled)
        }
    };
    bar.finish_and_clear();
    node.shutdown().await;
    let fetched = result.with_context(|| format!("fetching {}", magnet.info_hash.to_hex()))?;
    if json {
        let value = serde_json::json!({
            "info_hash": fetched.meta.info_hash().to_hex(), "folder": fetched.folder, "index_bytes": fetched.index_len,
            "have_bytes": fetched.seeding.have_bytes, "total_bytes": fetched.seeding.total_bytes, "index_only": index_only,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("info hash: {}", fetched.meta.info_hash().to_hex());
    println!("folder: {}", fetched.folder.display());
    if let Some(len) = fetched.index_len {
        println!("index: {len} bytes");
    }
    println!(
        "fetched {} of {} bytes{}",
        fetched.seeding.have_bytes,
        fetched.seeding.total_bytes,
        if index_only { " (index only)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// The discovery options of `chs torrent seed|fetch`: a tool run uses only what it is given (it
/// never contacts a public router or tracker unasked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ToolDiscovery {
    /// `--tracker URL`: the trackers to announce to; for `fetch` they replace the magnet's.
    pub(crate) trackers: Vec<String>,
    /// `--dht-bootstrap HOST:PORT`: the DHT on, bootstrapped from these nodes only.
    pub(crate) dht_bootstrap: Vec<String>,
    /// `--no-trackers` (`fetch`): ignore the magnet's trackers.
    pub(crate) no_magnet_trackers: bool,
    /// `--announce-addr` (`seed`): the `x.pe` hint and announced port.
    pub(crate) announce_addr: Option<std::net::SocketAddr>,
}

impl ToolDiscovery {
    /// The node's `chs_torrent::Discovery`: only what was given. A magnet's own `tr` are used unless
    /// `--tracker` (which replaces them) or `--no-trackers` was given.
    pub(crate) fn discovery(&self) -> chs_torrent::Discovery {
        chs_torrent::Discovery {
            magnet_trackers: self.trackers.is_empty() && !self.no_magnet_trackers,
            announce_addr: self.announce_addr,
            ..chs_torrent::Discovery::only(self.trackers.clone(), self.dht_bootstrap.clone())
        }
    }
}

/// A node config for the CLI: loopback defaults from `chs_torrent::Config::local` with the given state
/// dir, listening on `listen` (e.g. `0.0.0.0:9025`) when given, with only the discovery given.
pub(crate) fn node_config(
    state_dir: &Path,
    listen: Option<std::net::SocketAddr>,
    discovery: &ToolDiscovery,
) -> chs_torrent::Config {
    let mut config = chs_torrent::Config::local(state_dir);
    if let Some(addr) = listen {
        config.listen_addr = Some(addr);
    }
    config.discovery = discovery.discovery();
    config
}
