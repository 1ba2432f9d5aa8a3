//! `chs demo`: the whole system in one process (see `chs_demo`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use chs_demo::{DemoEvent, DemoOptions};
use chs_node::Signal;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use chs_node::backend::BackendKind;

use crate::util;

/// Arguments of `chs demo`.
#[derive(Debug, Args)]
#[command(long_about = "Starts, in one process, a community owner and N members on loopback (real Waku relay \
    and BitTorrent over TCP, temporary SQLite files), generates realistic status-format chat traffic over \
    several simulated weeks, builds the archives, seeds them, publishes the signed magnetlink, and shows the \
    members downloading and importing. Members then post live messages, the simulated clock moves one week, \
    and members fetch only the new archive. Ends with a table per member.\n\n\
    With --setup DIR, only prepares DIR/owner and DIR/member-N with a chs.toml each, to run as separate \
    processes with `chs node --config`.")]
pub(crate) struct DemoArgs {
    /// Members.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// Simulated weeks of history.
    #[arg(long, default_value_t = 4)]
    weeks: u32,
    /// Chat messages per week.
    #[arg(long, default_value_t = 500)]
    messages_per_week: usize,
    /// Member debounce (e.g. 0, 500ms, 20s).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    debounce: Duration,
    /// Keep the nodes' files in DIR (default: a temporary folder, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Only prepare node folders with configs in DIR and exit.
    #[arg(long, conflicts_with = "keep")]
    setup: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Distribution backend: torrent, logos-storage (stand-in Logos Storage nodes on loopback,
    /// today's status-go wire) or both.
    #[arg(long, default_value = "torrent", value_parser = ["torrent", "logos-storage", "both"])]
    backend: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    chs_node::config::parse_duration(text)
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match (&args.setup, &args.keep) {
        (Some(d), _) | (None, Some(d)) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        (None, None) => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_owned()
        }
    };
    let mut options = DemoOptions::new(&dir);
    options.members = args.members;
    options.weeks = args.weeks;
    options.messages_per_week = args.messages_per_week;
    options.debounce = args.debounce;
    options.backends = match args.backend.as_str() {
        "logos-storage" => vec![BackendKind::LogosStorage],
        "both" => vec![BackendKind::Torrent, BackendKind::LogosStorage],
        _ => vec![BackendKind::Torrent],
    };
    anyhow::ensure!(
        args.setup.is_none() || options.backends == [BackendKind::Torrent],
        "--setup prepares BitTorrent nodes only (a Logos Storage node cannot be installed here)"
    );
    anyhow::ensure!(options.members >= 1, "--members must be at least 1");
    anyhow::ensure!(options.weeks >= 1, "--weeks must be at least 1");
    if args.setup.is_some() {
        let setup = chs_demo::setup(&options)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&setup)?);
        } else {
            println!("community {}: {} messages in the owner's store", setup.community_id, setup.messages);
            println!("owner:   chs node --config {}", setup.owner_config.display());
            for m in &setup.member_configs {
                println!("member:  chs node --config {} --bootstrap <owner's waku address>", m.display());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let multi = MultiProgress::new();
    if !util::stderr_is_terminal() || args.json {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let steps = multi.add(ProgressBar::new_spinner());
    steps.enable_steady_tick(Duration::from_millis(120));
    let style = ProgressStyle::with_template("{prefix:>9} {bar:30} {pos:>2}/{len:2} archives  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bars: Mutex<HashMap<usize, ProgressBar>> = Mutex::new(HashMap::new());
    let json = args.json;
    let observe = |event: DemoEvent| {
        let mut bars = bars.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            DemoEvent::Step(text) => {
                steps.set_message(text.clone());
                if !json && multi.is_hidden() {
                    eprintln!("• {text}");
                } else if !json {
                    let _ = multi.println(format!("• {text}"));
                }
            }
            DemoEvent::MemberStarted { index, .. } => {
                let bar =
                    multi.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(format!("member-{index}")));
                bar.set_message("waiting for a magnetlink");
                bars.insert(index, bar);
            }
            DemoEvent::MemberSignal { index, signal } => {
                let Some(bar) = bars.get(&index) else { return };
                match *signal {
                    Signal::MagnetlinkAccepted { clock, .. } => {
                        bar.set_message(format!("magnetlink accepted (clock {clock})"))
                    }
                    Signal::HistoryArchiveIndexFetched { missing, archives, .. } => {
                        bar.set_length(bar.position() + missing as u64);
                        bar.set_message(format!("index: {archives} archives, {missing} missing"));
                    }
                    Signal::ImportingHistoryArchiveMessages { messages, .. } => {
                        bar.inc(1);
                        bar.set_message(format!("imported {messages} messages"));
                    }
                    Signal::DownloadingHistoryArchivesFinished { bytes_received, .. } => {
                        bar.set_message(format!("done, {bytes_received} bytes received; seeding"));
                    }
                    Signal::HistoryArchiveDownloadFailed { error, .. } => bar.set_message(format!("retrying: {error}")),
                    _ => {}
                }
            }
            _ => {}
        }
    };
    let report = util::runtime()?.block_on(chs_demo::run(&options, &observe))?;
    steps.finish_and_clear();
    for bar in bars.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values() {
        bar.finish();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!("community {}", report.community_id);
        println!("owner: {} messages in {} archives", report.owner_messages, report.owner_archives);
        println!();
        println!(
            "{:<10} {:>8} {:>13} {:>9} {:>9} {:>11} {:>8}  history identical to owner",
            "member", "archives", "new-week only", "messages", "readable", "bytes", "time"
        );
        for m in &report.members {
            println!(
                "{:<10} {:>8} {:>13} {:>9} {:>9} {:>11} {:>7.2}s  {}",
                m.name,
                m.archives,
                m.second_round_archives
                    .map_or_else(|| "-".to_owned(), |n| if n == 1 { "yes".to_owned() } else { format!("no ({n})") }),
                m.messages,
                m.readable,
                m.bytes,
                m.elapsed_ms as f64 / 1000.0,
                if m.identical { "yes" } else { "NO" }
            );
        }
    }
    Ok(if report.all_identical() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
