//! Security item 9: `chs node status` lists every socket a running node listens on, and a node
//! whose configuration turns DHT and trackers off listens on no UDP socket.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

use support::{Proc, TIMEOUT, demo_setup, is_type, json, run};

/// The UDP sockets of process `pid` (inodes in `/proc/PID/net/udp{,6}` owned by its fds).
fn udp_sockets_of(pid: u32) -> Vec<String> {
    let inodes: std::collections::BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    ["udp", "udp6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|line| line.split_whitespace().nth(9).is_some_and(|inode| inodes.contains(inode)))
        .collect()
}

#[test]
fn node_status_lists_every_listening_socket_and_no_udp_when_off() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 1, 20);
    let config = setup["owner_config"].as_str().unwrap().to_owned();
    let mut owner = Proc::spawn(["node", "--config", &config]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let torrent = started["torrent"].as_str().unwrap().to_owned();
    let waku = started["waku"][0].as_str().unwrap().to_owned();
    // The status file is written before the `started` line is printed.
    let status = run(["node", "status", "--config", &config, "--json"]).ok().json();
    let listening: Vec<&str> = status["listening"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(listening.contains(&format!("tcp {torrent} bittorrent peers").as_str()), "{listening:?}");
    assert!(listening.contains(&format!("waku {waku}").as_str()), "{listening:?}");
    assert!(!listening.iter().any(|s| s.starts_with("udp")), "{listening:?}");
    assert_eq!(udp_sockets_of(owner.pid()), Vec::<String>::new(), "no UDP socket with DHT and trackers off");
    let text = run(["node", "status", "--config", &config]).ok().stdout;
    assert!(text.contains(&format!("listening: tcp {torrent} bittorrent peers")), "{text}");
    owner.kill();
}
