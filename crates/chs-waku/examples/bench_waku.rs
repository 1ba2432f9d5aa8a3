//! Relay benchmark: 20 chs-waku nodes on loopback (a ring plus two random links per node),
//! 1,000 messages of 1 KB from random publishers (seeded RNG); prints the delivery ratio, the
//! p50/p99 latency, the same figures for a same-run two-node chs pair (one direct hop), and the
//! anchor: 20 of status-go's own Waku nodes (`chspeer-waku`) in the same topology carrying the
//! same publishes (each publishes through its relay and prints what it receives; latencies are
//! taken where the harness reads its output), then one `BENCH_JSON {...}` line.
//!
//! The peer baseline: the same 1,000 messages published by one chs node and received by another,
//! the two linked only through a relay in the middle, which is either status-go's own Waku node
//! (`chspeer-waku`: `wakuv2.New` + `Start`, cluster 16, shard 32, `-minpeers 1`) or a chs node,
//! in interleaved rounds ([`HOP_ROUNDS`] each, medians): the ratio chs relay / status-go relay is
//! the Waku figure against a real peer. status-go's binary is looked up in `$CHS_PEERS_BIN` or
//! `../shared/peers/bin`; without it that baseline is skipped with a notice.
//!
//! Run: `cargo run --release -p chs-waku --example bench_waku`
//! (env `CHS_BENCH_INTERVAL_US`, default 1000: pause between two publishes, in µs).

// A benchmark binary reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chs_waku::{Config, ContentFilter, MessageReceiver, WakuMessage, WakuNode, timestamp_now};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};

const NODES: usize = 20;
const MESSAGES: usize = 1_000;
const PAYLOAD_SIZE: usize = 1_024;
const RANDOM_LINKS: usize = 2;
const TOPIC: &str = chs_waku::DEFAULT_PUBSUB_TOPIC;
const CONTENT_TOPIC: &str = "/chs/1/bench/proto";
const SEED: u64 = 0x5eed_0005;
/// Rounds of each relay (status-go, chs) in the peer baseline.
const HOP_ROUNDS: usize = 3;
/// How long receivers wait for stragglers after the last publish.
const DRAIN: Duration = Duration::from_secs(15);

struct Figures {
    delivered: usize,
    expected: usize,
    duplicates: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    publish_errors: usize,
    elapsed: Duration,
}

impl Figures {
    fn new(
        mut latencies: Vec<Duration>,
        delivered: usize,
        expected: usize,
        duplicates: usize,
        publish_errors: usize,
        elapsed: Duration,
    ) -> Figures {
        latencies.sort();
        Figures {
            delivered,
            expected,
            duplicates,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
            publish_errors,
            elapsed,
        }
    }

    fn ratio(&self) -> f64 {
        if self.expected == 0 { 1.0 } else { self.delivered as f64 / self.expected as f64 }
    }
}

fn payload(seq: usize) -> Vec<u8> {
    let mut payload = vec![0xab; PAYLOAD_SIZE];
    payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    payload
}

fn seq_of(payload: &[u8]) -> Option<usize> {
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_be_bytes(bytes)).ok()
}

fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * pct / 100.0).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Collects up to `expected` messages (or until `deadline`) as (seq, arrival).
async fn collect(
    mut receiver: MessageReceiver,
    expected: usize,
    deadline: tokio::time::Instant,
) -> Vec<(usize, Instant)> {
    let mut arrivals = Vec::with_capacity(expected);
    while arrivals.len() < expected {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(message)) => {
                if let Some(seq) = seq_of(&message.message.payload) {
                    arrivals.push((seq, Instant::now()));
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    arrivals
}

async fn start_nodes(count: usize) -> anyhow::Result<Vec<WakuNode>> {
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        nodes.push(WakuNode::start(Config { channel_capacity: 4096, ..Config::default() }).await?);
    }
    Ok(nodes)
}

/// Publishes `MESSAGES` messages from `publishers[seq]` and measures delivery at every other node.
async fn run(nodes: &[WakuNode], publishers: &[usize], interval: Duration) -> anyhow::Result<Figures> {
    let receivers: Vec<MessageReceiver> =
        nodes.iter().map(|node| node.messages(ContentFilter::new(TOPIC, [CONTENT_TOPIC]))).collect::<Result<_, _>>()?;
    // Generous overall deadline; receivers normally stop as soon as they have everything.
    let deadline = tokio::time::Instant::now() + interval * MESSAGES as u32 + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for (idx, receiver) in receivers.into_iter().enumerate() {
        let expected = publishers.iter().filter(|&&p| p != idx).count();
        tasks.push(tokio::spawn(collect(receiver, expected, deadline)));
    }

    let started = Instant::now();
    let mut sent_at = vec![None; MESSAGES];
    let mut publish_errors = 0;
    let mut ticker = tokio::time::interval(interval.max(Duration::from_micros(1)));
    for (seq, &publisher) in publishers.iter().enumerate() {
        ticker.tick().await;
        let message = WakuMessage {
            payload: payload(seq),
            content_topic: CONTENT_TOPIC.to_owned(),
            version: Some(0),
            timestamp: Some(timestamp_now()),
            ..WakuMessage::default()
        };
        let now = Instant::now();
        match nodes[publisher].publish(TOPIC, message).await {
            Ok(_) => sent_at[seq] = Some(now),
            Err(err) => {
                publish_errors += 1;
                println!("publish {seq} from node {publisher} failed: {err}");
            }
        }
    }
    let last_publish = Instant::now();

    let mut latencies = Vec::new();
    let mut delivered = 0;
    let mut duplicates = 0;
    let mut expected = 0;
    for (idx, task) in tasks.into_iter().enumerate() {
        let drain_deadline = tokio::time::Instant::from_std(last_publish + DRAIN);
        let arrivals = match tokio::time::timeout_at(drain_deadline, task).await {
            Ok(joined) => joined?,
            Err(_) => Vec::new(),
        };
        let mut seen = vec![false; MESSAGES];
        for (seq, arrived) in arrivals {
            if seq >= MESSAGES {
                continue;
            }
            if seen[seq] {
                duplicates += 1;
                continue;
            }
            seen[seq] = true;
            if let Some(sent) = sent_at[seq] {
                delivered += 1;
                latencies.push(arrived.saturating_duration_since(sent));
            }
        }
        expected += publishers.iter().enumerate().filter(|&(seq, &p)| p != idx && sent_at[seq].is_some()).count();
    }
    Ok(Figures::new(latencies, delivered, expected, duplicates, publish_errors, started.elapsed()))
}

fn report(name: &str, nodes: usize, figures: &Figures) {
    println!(
        "{name:>9}: {nodes:>2} nodes, delivered {}/{} ({:.2}%), duplicates {}, publish errors {}, \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, run {:.2} s",
        figures.delivered,
        figures.expected,
        figures.ratio() * 100.0,
        figures.duplicates,
        figures.publish_errors,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
        figures.max.as_secs_f64() * 1e3,
        figures.elapsed.as_secs_f64(),
    );
}

/// status-go's Waku node (`chspeer-waku`) as a relay or a mesh member: a thread reads its stdout and
/// hands every line on with the instant it was read.
struct GoRelay {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    listen: String,
    lines: std::sync::mpsc::Receiver<(Instant, String)>,
}

impl GoRelay {
    fn peers_bin() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("CHS_PEERS_BIN").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/bin"),
            std::path::PathBuf::from,
        );
        let bin = dir.join("chspeer-waku");
        bin.exists().then_some(bin)
    }

    /// Starts it and reads its lines up to READY (its TCP listen address on the way).
    fn start(bin: &std::path::Path) -> anyhow::Result<GoRelay> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(bin)
            .args(["-loglevel", "error", "-minpeers", "1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut listen = None;
        loop {
            let (_, line) = lines.recv_timeout(Duration::from_secs(30))?;
            anyhow::ensure!(!line.starts_with("FATAL"), "chspeer-waku: {line}");
            if let Some(addr) = line.strip_prefix("LISTEN ")
                && addr.contains("/tcp/")
                && !addr.contains("/ws")
            {
                listen = Some(addr.to_owned());
            }
            if line.starts_with("READY") {
                break;
            }
        }
        let listen = listen.ok_or_else(|| anyhow::anyhow!("chspeer-waku printed no LISTEN"))?;
        Ok(GoRelay { child, stdin, listen, lines })
    }

    fn command(&mut self, line: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Sends `line` and waits for the first output line starting with one of `answers` (or ERR).
    fn ask(&mut self, line: &str, answers: &[&str], timeout: Duration) -> anyhow::Result<String> {
        self.command(line)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (_, out) =
                self.lines.recv_timeout(left).map_err(|_| anyhow::anyhow!("chspeer-waku: no answer to {line:?}"))?;
            anyhow::ensure!(!out.starts_with("ERR") && !out.starts_with("FATAL"), "chspeer-waku: {line:?}: {out}");
            if answers.iter().any(|a| out.starts_with(a)) {
                return Ok(out);
            }
        }
    }

    /// `quit`, then stdin closed (either ends it), then its exit awaited.
    fn stop(mut self) {
        let _ = self.command("quit");
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// The 20-node anchor: the same topology and the same publishes over status-go's own Waku nodes,
/// each publishing through its relay (`publish-relay`) and printing every message it receives.
fn go_mesh(
    bin: &std::path::Path,
    links: &[(usize, usize)],
    publishers: &[usize],
    interval: Duration,
) -> anyhow::Result<Figures> {
    let mut nodes = (0..NODES).map(|_| GoRelay::start(bin)).collect::<anyhow::Result<Vec<_>>>()?;
    for &(from, to) in links {
        let addr = nodes[to].listen.clone();
        nodes[from].ask(&format!("dial {addr}"), &["DIALED"], Duration::from_secs(15))?;
    }
    for node in &mut nodes {
        node.ask("waitpeers 2 60", &["PEERS"], Duration::from_secs(65))?;
    }
    // Anything printed so far (dial and peer answers) is not a delivery.
    for node in &nodes {
        while node.lines.try_recv().is_ok() {}
    }
    let started = Instant::now();
    let mut sent_at = vec![None; MESSAGES];
    let mut publish_errors = 0;
    let mut next = Instant::now();
    for (seq, &publisher) in publishers.iter().enumerate() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        let now = Instant::now();
        match nodes[publisher].command(&format!("publish-relay {CONTENT_TOPIC} {} now", hex::encode(payload(seq)))) {
            Ok(()) => sent_at[seq] = Some(now),
            Err(err) => {
                publish_errors += 1;
                println!("go mesh: publish {seq} from node {publisher} failed: {err}");
            }
        }
    }
    let drain_deadline = Instant::now() + DRAIN;
    let (mut latencies, mut delivered, mut duplicates, mut expected) = (Vec::new(), 0, 0, 0);
    for (idx, node) in nodes.iter().enumerate() {
        let want = publishers.iter().enumerate().filter(|&(seq, &p)| p != idx && sent_at[seq].is_some()).count();
        expected += want;
        let mut seen = vec![false; MESSAGES];
        let mut got = 0;
        while got < want {
            let left = drain_deadline.saturating_duration_since(Instant::now());
            let Ok((arrived, line)) = node.lines.recv_timeout(left) else { break };
            if line.starts_with("ERR") {
                publish_errors += 1;
                continue;
            }
            let Some(seq) = line
                .strip_prefix("RECV ")
                .and_then(|rest| rest.split(' ').find_map(|field| field.strip_prefix("payload=")))
                .and_then(|hex_payload| hex::decode(hex_payload.get(..16)?).ok())
                .and_then(|bytes| seq_of(&bytes))
                .filter(|&seq| seq < MESSAGES && publishers[seq] != idx)
            else {
                continue;
            };
            if std::mem::replace(&mut seen[seq], true) {
                duplicates += 1;
                continue;
            }
            if let Some(sent) = sent_at[seq] {
                got += 1;
                delivered += 1;
                latencies.push(arrived.saturating_duration_since(sent));
            }
        }
    }
    let elapsed = started.elapsed();
    for node in nodes {
        node.stop();
    }
    Ok(Figures::new(latencies, delivered, expected, duplicates, publish_errors, elapsed))
}

/// One round of the peer baseline: chs publisher → relay (`go` or a third chs node) → chs receiver.
async fn hop_round(go: Option<&std::path::Path>, interval: Duration) -> anyhow::Result<Figures> {
    let ends = start_nodes(2).await?;
    let (relay_addr, go_relay, chs_relay) = match go {
        Some(bin) => {
            let relay = GoRelay::start(bin)?;
            (relay.listen.clone(), Some(relay), None)
        }
        None => {
            let relay = start_nodes(1).await?.remove(0);
            (relay.listen_addrs().await?[0].clone(), None, Some(relay))
        }
    };
    for node in &ends {
        node.dial(&relay_addr).await?;
    }
    for node in &ends {
        tokio::time::timeout(Duration::from_secs(30), node.wait_for_mesh_peers(TOPIC, 1)).await??;
    }
    let figures = run(&ends, &vec![0; MESSAGES], interval).await;
    for node in ends {
        node.shutdown().await;
    }
    if let Some(relay) = chs_relay {
        relay.shutdown().await;
    }
    if let Some(relay) = go_relay {
        relay.stop();
    }
    figures
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let interval_us: u64 = std::env::var("CHS_BENCH_INTERVAL_US").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let interval = Duration::from_micros(interval_us);
    let mut rng = StdRng::seed_from_u64(SEED);

    // Baseline: two directly connected nodes, all messages from node 0.
    let pair = start_nodes(2).await?;
    pair[0].dial(&pair[1].listen_addrs().await?[0]).await?;
    for node in &pair {
        tokio::time::timeout(Duration::from_secs(30), node.wait_for_mesh_peers(TOPIC, 1)).await??;
    }
    let baseline = run(&pair, &vec![0; MESSAGES], interval).await?;
    for node in pair {
        node.shutdown().await;
    }

    // 20 nodes: a ring plus RANDOM_LINKS random links per node (the same links and publishers for
    // chs and for the status-go anchor).
    let mut links = Vec::new();
    for idx in 0..NODES {
        links.push((idx, (idx + 1) % NODES));
        for _ in 0..RANDOM_LINKS {
            let other = rng.random_range(0..NODES);
            if other != idx {
                links.push((idx, other));
            }
        }
    }
    let publishers: Vec<usize> = (0..MESSAGES).map(|_| rng.random_range(0..NODES)).collect();
    let nodes = start_nodes(NODES).await?;
    let mut addrs = Vec::new();
    for node in &nodes {
        addrs.push(node.listen_addrs().await?[0].clone());
    }
    for &(from, to) in &links {
        nodes[from].dial(&addrs[to]).await?;
    }
    let mesh_started = Instant::now();
    for node in &nodes {
        tokio::time::timeout(Duration::from_secs(60), node.wait_for_mesh_peers(TOPIC, 2)).await??;
    }
    let mesh_time = mesh_started.elapsed();
    let mut connections = 0;
    for node in &nodes {
        connections += node.connected_peers().await?.len();
    }
    let relay = run(&nodes, &publishers, interval).await?;
    let lagged: u64 = nodes.iter().map(|node| node.stats().lagged_receivers).sum();
    for node in nodes {
        node.shutdown().await;
    }

    // The peer baseline, interleaved: status-go relay, chs relay, status-go relay, ...
    let go_bin = GoRelay::peers_bin();
    let (mut hop_go, mut hop_chs) = (Vec::new(), Vec::new());
    if go_bin.is_none() {
        println!("notice: chspeer-waku not found (set CHS_PEERS_BIN): the status-go relay baseline is skipped");
    }
    for _ in 0..HOP_ROUNDS {
        if let Some(bin) = &go_bin {
            let figures = hop_round(Some(bin), interval).await?;
            report("via s-go", 3, &figures);
            hop_go.push(figures);
        }
        let figures = hop_round(None, interval).await?;
        report("via chs", 3, &figures);
        hop_chs.push(figures);
    }
    // The 20-node anchor: status-go's nodes in the same topology, carrying the same publishes.
    let go_mesh = match &go_bin {
        Some(bin) => Some(go_mesh(bin, &links, &publishers, interval)?),
        None => None,
    };
    let delivered = |v: &[Figures]| v.iter().map(Figures::ratio).fold(f64::NAN, f64::min);
    let hop_chs_p50 = median_ms(hop_chs.iter().map(|f| f.p50).collect());
    let hop_chs_p99 = median_ms(hop_chs.iter().map(|f| f.p99).collect());
    let hop_go_p50 = median_ms(hop_go.iter().map(|f| f.p50).collect());
    let hop_go_p99 = median_ms(hop_go.iter().map(|f| f.p99).collect());
    println!(
        "relay hop (chs -> relay -> chs, medians of {HOP_ROUNDS}): chs relay p50 {hop_chs_p50:.2} ms p99 {hop_chs_p99:.2} ms; \
         status-go relay p50 {hop_go_p50:.2} ms p99 {hop_go_p99:.2} ms; ratio chs/status-go p50 x{:.2}, p99 x{:.2}",
        hop_chs_p50 / hop_go_p50,
        hop_chs_p99 / hop_go_p99
    );

    println!(
        "chs-waku relay: {MESSAGES} messages of {PAYLOAD_SIZE} B, publish interval {interval_us} µs, seed {SEED:#x}; \
         {NODES} nodes with {} links (mesh ready in {:.2} s), receiver lag losses {lagged}",
        connections / 2,
        mesh_time.as_secs_f64()
    );
    report("baseline", 2, &baseline);
    report("relay", NODES, &relay);
    if let Some(go) = &go_mesh {
        report("s-go mesh", NODES, go);
        println!(
            "ratio chs mesh / status-go mesh: p50 x{:.2}, p99 x{:.2}",
            relay.p50.as_secs_f64() / go.p50.as_secs_f64().max(1e-9),
            relay.p99.as_secs_f64() / go.p99.as_secs_f64().max(1e-9)
        );
    }
    let p99_ratio = relay.p99.as_secs_f64() / baseline.p99.as_secs_f64().max(1e-9);
    let p50_ratio = relay.p50.as_secs_f64() / baseline.p50.as_secs_f64().max(1e-9);
    println!("ratio relay/baseline: p50 x{p50_ratio:.2}, p99 x{p99_ratio:.2}; goals: delivery 100%, p99 < 1 s");
    let json = serde_json::json!({
        "bench": "waku_relay",
        "nodes": NODES,
        "messages": MESSAGES,
        "payload_bytes": PAYLOAD_SIZE,
        "publish_interval_us": interval_us,
        "seed": SEED,
        "delivery_ratio": relay.ratio(),
        "duplicates": relay.duplicates,
        "p50_ms": relay.p50.as_secs_f64() * 1e3,
        "p99_ms": relay.p99.as_secs_f64() * 1e3,
        "max_ms": relay.max.as_secs_f64() * 1e3,
        "baseline_delivery_ratio": baseline.ratio(),
        "baseline_p50_ms": baseline.p50.as_secs_f64() * 1e3,
        "baseline_p99_ms": baseline.p99.as_secs_f64() * 1e3,
        "p99_ratio": p99_ratio,
        "mesh_status_go_delivery_ratio": go_mesh.as_ref().map(Figures::ratio),
        "mesh_status_go_p50_ms": go_mesh.as_ref().map(|go| go.p50.as_secs_f64() * 1e3),
        "mesh_status_go_p99_ms": go_mesh.as_ref().map(|go| go.p99.as_secs_f64() * 1e3),
        "mesh_p99_ratio": go_mesh.as_ref().map(|go| relay.p99.as_secs_f64() / go.p99.as_secs_f64().max(1e-9)),
        "hop_rounds": HOP_ROUNDS,
        "hop_chs_delivery_ratio": delivered(&hop_chs),
        "hop_chs_p50_ms": hop_chs_p50,
        "hop_chs_p99_ms": hop_chs_p99,
        "hop_status_go_delivery_ratio": if hop_go.is_empty() { None } else { Some(delivered(&hop_go)) },
        "hop_status_go_p50_ms": if hop_go.is_empty() { None } else { Some(hop_go_p50) },
        "hop_status_go_p99_ms": if hop_go.is_empty() { None } else { Some(hop_go_p99) },
        "hop_p50_ratio": if hop_go.is_empty() { None } else { Some(hop_chs_p50 / hop_go_p50) },
        "hop_p99_ratio": if hop_go.is_empty() { None } else { Some(hop_chs_p99 / hop_go_p99) },
    });
    println!("BENCH_JSON {json}");
    Ok(())
}
