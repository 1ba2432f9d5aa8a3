//! `chs waku listen` as a real process against status-go's own Waku node (`chspeer-waku`) and
//! go-ethereum's ENR tree signer and DNS server (`chspeer-enrtree`), all on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a panic is a test failure; the skip notice and figures go to stdout

mod support;

mod interop {
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Instant;

    use crate::support::{Proc, TIMEOUT, chs};

    fn peers_bin(test: &str) -> Option<PathBuf> {
        let dir = std::env::var_os("CHS_PEERS_BIN").map(PathBuf::from);
        if dir.is_none() {
            println!("skipped: {test}: set CHS_PEERS_BIN to ../shared/peers/bin (status-go's peers)");
        }
        dir
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// The one-shot tool uses the discovery it is given: an ENR tree on a loopback nameserver
    /// names status-go's node, and `chs waku listen --dns-discovery URL --nameserver IP:PORT`
    /// connects to it (status-go sees chs connect and keeps it).
    #[test]
    fn waku_listen_dns_discovery_connects_to_status_go() {
        let Some(bin) = peers_bin("waku_listen_dns_discovery_connects_to_status_go") else { return };
        let mut go = Proc::spawn_command({
            let mut cmd = Command::new(bin.join("chspeer-waku"));
            cmd.args(["-stay-on-eof", "-exit-after", "110s", "-loglevel", "error"]);
            cmd
        });
        let enr = go.wait_line(TIMEOUT, |l| l.starts_with("ENR ")).trim_start_matches("ENR ").to_owned();
        go.wait_line(TIMEOUT, |l| l == "READY");
        let nameserver = format!("127.0.0.1:{}", free_port());
        let mut tree = Proc::spawn_command({
            let mut cmd = Command::new(bin.join("chspeer-enrtree"));
            cmd.args(["serve", "-listen", &nameserver, "-domain", "nodes.example", "-run-for", "110s", &enr]);
            cmd
        });
        let url = tree.wait_line(TIMEOUT, |l| l.starts_with("URL ")).trim_start_matches("URL ").to_owned();
        tree.wait_line(TIMEOUT, |l| l.starts_with("SERVING"));

        let started = Instant::now();
        let mut listen = Proc::spawn_command({
            let mut cmd = chs();
            cmd.args(["waku", "listen", "--dns-discovery", &url, "--nameserver", &nameserver]);
            cmd
        });
        let addr = listen.wait_line(TIMEOUT, |l| l.starts_with("/ip4/"));
        let chs_id = addr.rsplit('/').next().unwrap().to_owned();
        go.wait_line(TIMEOUT, |l| l.starts_with("CONNECTED ") && l.contains(&chs_id));
        println!("figure: chs waku listen --dns-discovery, start to connected: {} ms", started.elapsed().as_millis());
        tree.wait_line(TIMEOUT, |l| l.starts_with("QUERY") && l.contains("found=true"));
        listen.kill();
        go.kill();
        tree.kill();
    }

    /// `chs node` with `[waku] dns_discovery` and `nameserver` (here a loopback tree; by
    /// default Status' fleet) finds status-go's node and connects to it, with no bootstrap peer.
    #[test]
    fn node_waku_dns_discovery_connects_to_status_go() {
        let Some(bin) = peers_bin("node_waku_dns_discovery_connects_to_status_go") else { return };
        let mut go = Proc::spawn_command({
            let mut cmd = Command::new(bin.join("chspeer-waku"));
            cmd.args(["-stay-on-eof", "-exit-after", "110s", "-loglevel", "error"]);
            cmd
        });
        let go_id = go.wait_line(TIMEOUT, |l| l.starts_with("PEERID ")).trim_start_matches("PEERID ").to_owned();
        let enr = go.wait_line(TIMEOUT, |l| l.starts_with("ENR ")).trim_start_matches("ENR ").to_owned();
        go.wait_line(TIMEOUT, |l| l == "READY");
        let nameserver = format!("127.0.0.1:{}", free_port());
        let mut tree = Proc::spawn_command({
            let mut cmd = Command::new(bin.join("chspeer-enrtree"));
            cmd.args(["serve", "-listen", &nameserver, "-domain", "nodes.example", "-run-for", "110s", &enr]);
            cmd
        });
        let url = tree.wait_line(TIMEOUT, |l| l.starts_with("URL ")).trim_start_matches("URL ").to_owned();
        tree.wait_line(TIMEOUT, |l| l.starts_with("SERVING"));

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("chs.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\n[torrent]\nenabled = false\nport = 0\nlisten_ip = \"127.0.0.1\"\n\
                 [waku]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\ndns_discovery = [\"{url}\"]\nnameserver = \"{nameserver}\"\n\
                 discv5 = false\npeer_exchange = false\n"
            ),
        )
        .unwrap();
        let started = Instant::now();
        let mut node = Proc::spawn(["node", "--config", config.to_str().unwrap()]);
        let line = node.wait_line(TIMEOUT, |l| l.contains("\"started\""));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let chs_id = value["waku"][0].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        go.wait_line(TIMEOUT, |l| l.starts_with("CONNECTED ") && l.contains(&chs_id));
        println!("figure: chs node [waku] dns_discovery, start to connected: {} ms", started.elapsed().as_millis());
        // `chs node status` names the peer, its source and shards (status.json is rewritten
        // every 5 s: a condition checked until the deadline).
        let deadline = Instant::now() + TIMEOUT;
        let peer = loop {
            let out =
                crate::support::run(["node", "status", "--config", config.to_str().unwrap(), "--json"]).ok().json();
            let found = out["waku_peers"].as_array().into_iter().flatten().find(|p| p["connected"] == true).cloned();
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "no connected waku peer in status: {out}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        };
        assert_eq!(peer["source"], "dns", "{peer}");
        assert_eq!(peer["peer_id"], go_id.as_str(), "{peer}");
        let text = crate::support::run(["node", "status", "--config", config.to_str().unwrap()]).ok();
        assert!(text.stdout.contains("waku peers: 1 connected"), "{}", text.stdout);
        node.kill();
        go.kill();
        tree.kill();
    }
}
