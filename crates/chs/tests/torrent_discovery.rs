//! `chs torrent seed|fetch` finding status-go's BitTorrent client (anacrolix v1.41 configured as
//! status-go's, `../shared/peers/bin/chspeer-torrent`) with no peer hint: through a local tracker
//! or a local DHT node only, all on 127.0.0.1. Run when `CHS_PEERS_BIN` is set (`cargo xtask
//! interop`, `.ci/run`); otherwise each test prints a `skipped:` line and returns.

#![allow(clippy::unwrap_used)] // a panic is a test failure

mod support;

mod interop {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::support::{self, Proc, TIMEOUT, p, run};

    /// The archive folder's name: a community id, as status-go names it.
    const CID: &str = "0x020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

    // The skip notice must reach the test log.
    #[allow(clippy::print_stderr)]
    fn peers_bin() -> Option<PathBuf> {
        match std::env::var_os("CHS_PEERS_BIN") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => {
                eprintln!("skipped: set CHS_PEERS_BIN to ../shared/peers/bin to run the status-go interop tests");
                None
            }
        }
    }

    fn peer(bin: &Path, name: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new(bin.join(name));
        cmd.args(args);
        Proc::spawn_command(cmd)
    }

    /// The value of `key=` in a line.
    fn field(line: &str, key: &str) -> String {
        let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {line}"));
        line[at + key.len() + 1..].split(' ').next().unwrap_or_default().to_owned()
    }

    /// A chs-built archive folder `<parent>/<CID>` of the sample messages (2 archives, 60 messages).
    fn chs_archive(parent: &Path) -> PathBuf {
        std::fs::create_dir_all(parent).unwrap();
        let db = parent.join("chs.db");
        run(["store", "import", "--ndjson", support::SAMPLE, "--db", p(&db)]).ok();
        let dir = parent.join(CID);
        let mut args = vec!["archive", "build", "--db", p(&db), "--dir", p(&dir)];
        args.extend(["--from", "1729728000", "--to", "1730937600", "--interval", "7d"]);
        for t in ["0x1980b7cb", "0x8e636111", "/waku/1/0xd4740ba8/rfc26"] {
            args.extend(["--topic", t]);
        }
        let out = run(&args).ok();
        assert!(out.stdout.contains("with 60 messages"), "{}", out.stdout);
        dir
    }

    /// status-go's extractor over `<datadir>/<CID>`: the messages it reads.
    fn extract(bin: &Path, datadir: &Path) -> Vec<String> {
        let hex = CID.trim_start_matches("0x");
        let out = peer(bin, "chspeer-archive", &["extract", "-datadir", p(datadir), "-community", hex]).finish(TIMEOUT);
        let mut msgs: Vec<String> = out.stdout.lines().filter(|l| l.starts_with("MSG ")).map(str::to_owned).collect();
        msgs.sort();
        msgs
    }

    /// `chs torrent seed --dht-bootstrap` (a local DHT node only) of a chs-built archive; status-go's
    /// client downloads it from the printed magnet alone (no `x.pe`, no `-peer`), and status-go's
    /// extractor reads back all 60 messages. Before: `chs torrent seed` had no DHT, its torrent no
    /// announce, and its magnet a loopback `x.pe` hint as the only way to it.
    #[test]
    fn chs_torrent_seed_dht_only_to_status_go_leech() {
        let Some(bin) = peers_bin() else { return };
        let dir = tempfile::tempdir().unwrap();
        let folder = chs_archive(&dir.path().join("owner"));
        let mut dht = peer(&bin, "chspeer-torrent", &["dht-node", "-listen", "127.0.0.1:0"]);
        let node = field(&dht.wait_line(TIMEOUT, |l| l.starts_with("DHTNODE")), "addr");
        let mut seeder = Proc::spawn(["torrent", "seed", p(&folder), "--dht-bootstrap", &node]);
        let magnet = seeder.wait_line(TIMEOUT, |l| l.starts_with("magnet:?"));
        assert!(!magnet.contains("x.pe="), "no peer hint when the DHT is on: {magnet}");
        assert!(!magnet.contains("tr="), "no tracker was given: {magnet}");
        let hash =
            run(["torrent", "create", p(&folder), "--json"]).ok().json()["info_hash"].as_str().unwrap().to_owned();
        dht.wait_line(TIMEOUT, |l| l.starts_with("ANNOUNCE") && l.contains(&hash));

        let leech_dir = dir.path().join("status-go");
        let args = ["leech", "-datadir", p(&leech_dir), "-magnet", &magnet, "-dht-bootstrap", &node];
        let leech =
            peer(&bin, "chspeer-torrent", &[&args[..], &["-listen-host", "127.0.0.1", "-timeout", "60s"]].concat())
                .finish(TIMEOUT);
        assert!(leech.stdout.lines().any(|l| l == "DONE"), "{}", leech.stdout);
        assert!(!leech.stdout.contains("ADDPEERS"), "no peer was given: {}", leech.stdout);
        let want = extract(&bin, folder.parent().unwrap());
        assert_eq!(want.len(), 60, "status-go reads our archives");
        assert_eq!(extract(&bin, &leech_dir), want, "status-go reads the same messages from its download");
        seeder.kill();
    }

    /// status-go's archive creator and client seed, announced to a local tracker only (the magnet's
    /// `tr`); `chs torrent fetch MAGNET` with no `--peer` finds it through that tracker and gets
    /// every byte. Before: `fetch` refused a magnet without `x.pe` ("no peer to download from").
    #[test]
    fn status_go_seeder_tracker_only_to_chs_torrent_fetch() {
        let Some(bin) = peers_bin() else { return };
        let dir = tempfile::tempdir().unwrap();
        let mut tracker = peer(&bin, "chspeer-torrent", &["tracker", "-listen", "127.0.0.1:0", "-interval", "2s"]);
        let url = field(&tracker.wait_line(TIMEOUT, |l| l.starts_with("TRACKER")), "udp");
        // status-go's creator makes the archive of a chs-built archive's messages.
        let chs_folder = chs_archive(&dir.path().join("chs"));
        let msgs: Vec<serde_json::Value> = extract(&bin, chs_folder.parent().unwrap())
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l.splitn(3, ' ').nth(2).unwrap()).unwrap())
            .collect();
        let json = dir.path().join("msgs.json");
        std::fs::write(&json, serde_json::to_vec(&msgs).unwrap()).unwrap();
        let (data, torrents) = (dir.path().join("sg-data"), dir.path().join("sg-torrents"));
        let hex = CID.trim_start_matches("0x");
        let create = [
            "create",
            "-datadir",
            p(&data),
            "-torrentdir",
            p(&torrents),
            "-community",
            hex,
            "-messages",
            p(&json),
            "-start",
            "1729728000",
            "-end",
            "1730937600",
            "-partition",
            "168h",
        ];
        let made = peer(&bin, "chspeer-archive", &create).finish(TIMEOUT);
        assert!(made.stdout.contains("MAGNET"), "{}", made.stdout);
        let torrent = torrents.join(format!("{CID}.torrent"));
        let seed =
            ["seed", "-datadir", p(&data), "-torrent", p(&torrent), "-listen-host", "127.0.0.1", "-tracker", &url];
        let mut seeder = peer(&bin, "chspeer-torrent", &seed);
        let magnet = seeder.wait_line(TIMEOUT, |l| l.starts_with("MAGNET ")).trim_start_matches("MAGNET ").to_owned();
        seeder.wait_line(TIMEOUT, |l| l == "SEEDING");
        assert!(!magnet.contains("x.pe="), "{magnet}");
        let hash = field(&magnet.replace("xt=urn:btih:", "xt="), "xt").split('&').next().unwrap().to_owned();
        tracker.wait_line(TIMEOUT, |l| l.starts_with("ANNOUNCE") && l.contains(&hash));

        let out = dir.path().join("member");
        let fetched = run(["torrent", "fetch", &magnet, "--out", p(&out)]).ok();
        assert!(fetched.stdout.contains("index:"), "{}", fetched.stdout);
        for f in ["data", "index"] {
            assert_eq!(
                std::fs::read(out.join(CID).join(f)).unwrap(),
                std::fs::read(data.join(CID).join(f)).unwrap(),
                "{f}"
            );
        }
        assert_eq!(extract(&bin, &out).len(), msgs.len(), "status-go reads what chs fetched");
        seeder.kill();
    }
}
