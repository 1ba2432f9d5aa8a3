//! Security item 2, at the process level: a port scan of a running `chs node` (hundreds of idle
//! connections and garbage) must not stop a member from fetching its torrent.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a panic is a test failure

mod support;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use support::{Proc, TIMEOUT, demo_setup, is_type, json, p, run};

/// A connection to `to` from the loopback address `from` (so the scan does not share the
/// member's source address, as on the internet).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Option<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(from, 0)).into()).ok()?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5)).ok()?;
    Some(socket.into())
}

#[test]
fn port_scan_of_a_running_node_does_not_stop_a_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let setup = demo_setup(dir.path(), 1, 2, 40);
    let config = setup["owner_config"].as_str().unwrap().to_owned();
    let mut owner = Proc::spawn(["node", "--config", &config]);
    let started = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "started")));
    let port: SocketAddr = started["torrent"].as_str().unwrap().parse().unwrap();
    let seeding = json(&owner.wait_line(TIMEOUT, |l| is_type(l, "historyArchivesSeeding")));
    let magnet = seeding["magnet_uri"].as_str().unwrap().to_owned();

    // The scan: 500 idle connections and 50 that send something that is not BitTorrent.
    let idle: Vec<TcpStream> = (0..500).filter_map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 2), port)).collect();
    let garbage: Vec<TcpStream> = (0..50)
        .filter_map(|i| {
            let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 3), port)?;
            let probe: &[u8] = if i % 2 == 0 { b"GET / HTTP/1.0\r\n\r\n" } else { &[0xab; 200] };
            s.write_all(probe).ok()?;
            Some(s)
        })
        .collect();
    eprintln!("scan holds {} idle and {} garbage connections", idle.len(), garbage.len());
    assert!(idle.len() >= 400 && garbage.len() >= 40, "the scan could not connect");

    // A member's fetch, while the scan's connections are still open: before the fix it failed
    // ("input address stream exhausted") for minutes.
    let out = dir.path().join("fetched");
    let fetch = Proc::spawn(["torrent", "fetch", &magnet, "--out", p(&out), "--stall-timeout", "20s", "--no-trackers"])
        .finish(Duration::from_secs(60))
        .ok();
    eprintln!("{}", fetch.stdout);
    let id = setup["community_id"].as_str().unwrap();
    let owner_folder = std::path::Path::new(&config).parent().unwrap().join("archives").join(id);
    for f in ["data", "index"] {
        assert_eq!(
            std::fs::read(out.join(id).join(f)).unwrap(),
            std::fs::read(owner_folder.join(f)).unwrap(),
            "{f} differs from the owner's"
        );
    }
    drop((idle, garbage));

    // The node counted the refusals, as `chs node status` shows them (its status file is
    // rewritten every 5 s: polled until the counters appear, within a deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listener = loop {
        let status = run(["node", "status", "--config", &config, "--json"]).ok().json();
        let listener = status["torrent_listener"].clone();
        if listener["handed_over"].as_u64().unwrap_or(0) > 0 || std::time::Instant::now() > deadline {
            break listener;
        }
        std::thread::sleep(Duration::from_millis(200)); // poll interval, not a synchronisation
    };
    assert!(listener["handed_over"].as_u64().unwrap() > 0, "{listener}");
    assert!(listener["refused"].as_u64().unwrap() > 0, "{listener}");
    assert!(listener["handshake_failed"].as_u64().unwrap() > 0, "{listener}");
    owner.kill();
}
