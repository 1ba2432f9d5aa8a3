//! Unit tests: configuration parsing (including arbitrary and mutated inputs), durations, clocks.

use std::time::Duration;

use crate::config::{Config, format_duration, parse_duration};
use crate::{Clock, ManualClock};

#[test]
fn default_config_round_trips_through_toml() {
    let text = toml::to_string(&Config::default()).expect("serialises");
    assert_eq!(Config::from_toml_str(&text).expect("parses"), Config::default());
    assert_eq!(Config::from_toml_str("").expect("empty is valid"), Config::default());
    let local = Config::local("/tmp/x");
    let text = toml::to_string(&local).expect("serialises");
    assert_eq!(Config::from_toml_str(&text).expect("parses"), local);
}

/// Issue 18: `chs node` defaults to the real network as status-go (status.prod tree, discv5 on
/// UDP 9000, peer exchange); `Config::local` (tests) reaches nothing but the peers it names;
/// every discovery key parses.
#[test]
fn waku_discovery_defaults_to_the_status_fleet_and_parses() {
    let default = Config::default().waku;
    assert_eq!(default.dns_discovery, vec![chs_waku::dns::STATUS_PROD_ENRTREE.to_owned()]);
    assert!(default.discv5 && default.peer_exchange);
    assert_eq!((default.discv5_port, default.nameserver), (9000, None));
    let local = Config::local("/tmp/x").waku;
    assert!(local.dns_discovery.is_empty() && !local.discv5 && !local.peer_exchange);
    let text = "[waku]\ndns_discovery = [\"enrtree://K@nodes.example\"]\nnameserver = \"127.0.0.1:5353\"\n\
        discv5 = false\ndiscv5_port = 9001\ndiscv5_bootstrap = [\"enr:-x\"]\npeer_exchange = false\ntarget_peers = 3\n";
    let waku = Config::from_toml_str(text).expect("parses").waku;
    assert_eq!(waku.dns_discovery, vec!["enrtree://K@nodes.example".to_owned()]);
    assert_eq!(waku.nameserver, Some("127.0.0.1:5353".parse().expect("addr")));
    assert_eq!((waku.discv5, waku.discv5_port, waku.peer_exchange, waku.target_peers), (false, 9001, false, 3));
    assert_eq!(waku.discv5_bootstrap, vec!["enr:-x".to_owned()]);
    let err = Config::from_toml_str("[waku]\nnameserver = \"localhost\"").expect_err("not IP:PORT").to_string();
    assert!(err.contains("nameserver"), "{err}");
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        ("[member]\ndebounse = \"1s\"", "debounse"),
        ("[archive]\ninterval = \"0\"", "archive.interval"),
        ("[archive]\ninterval = \"3 fortnights\"", "fortnights"),
        ("[archive]\npiece_length = 10", "archive.piece_length"),
        ("[member]\nmax_attempts = 0", "member.max_attempts"),
        ("[torrent]\nport = 70000", "port"),
        ("[torrent]\nlisten_ip = \"localhost\"", "listen_ip"),
        ("[communities]\njoin = [\"0x02\"]", "communities.join"),
        ("data_dir = 3", "data_dir"),
        ("[waku]\nheartbeat = \"0\"", "waku.heartbeat"),
        ("[torrent]\ntrackers = [\"tracker.example:80\"]", "torrent.trackers"),
        ("[torrent]\ndht_bootstrap = [\"router.example\"]", "torrent.dht_bootstrap"),
        ("[torrent]\nannounce_addr = \"0.0.0.0:9025\"", "torrent.announce_addr"),
        ("[waku.store]\npage_size = 101", "waku.store.page_size"),
        ("[waku.store]\npage_size = 0", "waku.store.page_size"),
        ("[waku.store]\ntimeout = \"0\"", "waku.store.timeout"),
        ("[waku.store]\nserv = true", "serv"),
    ];
    for (text, key) in cases {
        let err = Config::from_toml_str(text).expect_err(text).to_string();
        assert!(err.contains(key), "{text:?}: {err}");
    }
}

#[test]
fn waku_store_section_parses() {
    let text = "[waku.store]\nserve = false\npeers = [\"/ip4/127.0.0.1/tcp/1/p2p/16Uiu2HAm\"]\npage_size = 20\ntimeout = \"5s\"\nlookback = \"7d\"";
    let config = Config::from_toml_str(text).expect("parses");
    let store = &config.waku.store;
    assert!(!store.serve);
    assert_eq!(store.peers.len(), 1);
    assert_eq!((store.page_size, store.timeout, store.lookback.as_secs()), (20, Duration::from_secs(5), 7 * 86_400));
    let default = Config::default().waku.store;
    assert!(default.serve && default.peers.is_empty());
    assert_eq!((default.page_size, default.lookback.as_secs()), (100, 30 * 86_400));
}

#[test]
fn durations_parse_and_print() {
    for (text, d) in [
        ("0", Duration::ZERO),
        ("250ms", Duration::from_millis(250)),
        ("20s", Duration::from_secs(20)),
        ("5m", Duration::from_secs(300)),
        ("2h", Duration::from_secs(7200)),
        ("7d", Duration::from_secs(604_800)),
        ("1w", Duration::from_secs(604_800)),
    ] {
        assert_eq!(parse_duration(text).expect(text), d);
        assert_eq!(parse_duration(&format_duration(d)).expect("printed"), d);
    }
    for bad in ["", "s", "1", "1x", "-1s", "1.5s", "99999999999999999999999s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

/// Mutated configurations (bytes flipped, inserted, deleted, lines cut) never panic the parser:
/// each is a config or a clear error (issue 8: the TOML config is outside input).
#[test]
fn mutated_configs_never_panic() {
    let base = toml::to_string(&Config::local("/data")).expect("serialises").into_bytes();
    let mut rng = SplitMix::new(42);
    let alphabet = b"[]=\"'#.,0123456789abcdefghijklmnopqrstuvwxyz_-\n \t{}\\\xff";
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut text = base.clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(text.len().max(1));
            match rng.below(4) {
                0 if !text.is_empty() => {
                    text.remove(at.min(text.len() - 1));
                }
                1 => text.insert(at, alphabet[rng.below(alphabet.len())]),
                2 if !text.is_empty() => {
                    let i = at.min(text.len() - 1);
                    text[i] = alphabet[rng.below(alphabet.len())];
                }
                _ => text.truncate(at),
            }
        }
        crate::fuzz::config(&text);
        let text = String::from_utf8_lossy(&text);
        if let Ok(config) = Config::from_toml_str(&text) {
            config.validate().expect("a parsed config is valid");
            accepted += 1;
        }
    }
    assert!(accepted > 0, "some mutations keep the config valid");
}

#[tokio::test]
async fn manual_clock_wakes_waiters_when_moved() {
    let clock = ManualClock::new(1_000);
    let waiter = {
        let clock = clock.clone();
        tokio::spawn(async move { clock.wait_until_ms(5_000).await })
    };
    clock.advance(Duration::from_millis(1_000));
    assert!(!waiter.is_finished());
    clock.set_ms(5_000);
    tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("woken").expect("task");
    assert_eq!(clock.now_secs(), 5);
}

/// A small deterministic generator (SplitMix64) for the mutation tests.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        usize::try_from((z ^ (z >> 31)) % (n.max(1) as u64)).unwrap_or(0)
    }
}

#[test]
fn config_backends_generation_link_channels_and_logos_api() {
    use crate::backend::BackendKind;
    use crate::config::{Config, ConfigError, LinkChannel};
    let default = Config::default();
    assert_eq!(default.archive.backends, vec![BackendKind::Torrent]);
    assert_eq!(default.archive.generation, chs_status::Generation::Status2024);
    assert_eq!(default.archive.link_channels, vec![LinkChannel::Magnetlinks, LinkChannel::MemberUpdate]);
    assert_eq!(default.logos_storage.api, "http://127.0.0.1:8080/api/storage/v1");
    let config = Config::from_toml_str(
        "[archive]\nbackends = [\"torrent\", \"logos-storage\"]\ngeneration = \"2026\"\nlink_channels = [\"member-update\"]\n\
         [logos_storage]\napi = \"http://127.0.0.1:8090/api/codex/v1\"\n",
    )
    .expect("parses");
    assert_eq!(config.archive.backends, vec![BackendKind::Torrent, BackendKind::LogosStorage]);
    assert_eq!(config.archive.generation, chs_status::Generation::Status2026);
    assert_eq!(config.archive.link_channels, vec![LinkChannel::MemberUpdate]);
    assert_eq!(config.logos_storage.api, "http://127.0.0.1:8090/api/codex/v1");
    let key = |text: &str| match Config::from_toml_str(text) {
        Err(ConfigError::Value { key, .. }) => key,
        other => panic!("{text}: expected a value error, got {other:?}"),
    };
    assert_eq!(key("[archive]\nbackends = []\n"), "archive.backends");
    assert_eq!(key("[archive]\nbackends = [\"torrent\", \"torrent\"]\n"), "archive.backends");
    assert_eq!(key("[archive]\nlink_channels = []\n"), "archive.link_channels");
    assert_eq!(
        key("[archive]\nbackends = [\"logos-storage\"]\n[logos_storage]\napi = \"ftp://x\"\n"),
        "logos_storage.api"
    );
    assert!(Config::from_toml_str("[archive]\nbackends = [\"ipfs\"]\n").is_err());
    assert!(Config::from_toml_str("[archive]\ngeneration = \"2025\"\n").is_err());
}

/// Issue 17 item 1: a node defaults to status-go's discovery (DHT with the public routers,
/// status-go's two trackers, uTP; no UPnP, no peer hint), passed whole into chs-torrent; the
/// loopback configuration has none; `trackers = true/false` of older files still parse.
#[test]
fn issue17_torrent_discovery_defaults_to_status_gos_and_is_passed_to_chs_torrent() {
    let default = crate::node::torrent_discovery(&Config::default().torrent);
    assert_eq!(default, chs_torrent::Discovery::status_go());
    assert_eq!(default.bootstrap_nodes().len(), chs_torrent::STATUS_DHT_ROUTERS.len());
    let local = crate::node::torrent_discovery(&Config::local("/tmp/x").torrent);
    // Loopback only: no DHT, tracker, uTP or UPnP; the peer hint is the loopback listen address.
    let loopback = chs_torrent::Discovery {
        announce_addr: Some("127.0.0.1:0".parse().expect("addr")),
        ..chs_torrent::Discovery::none()
    };
    assert_eq!(local, loopback);

    let text = "[torrent]\ndht_bootstrap = [\"127.0.0.1:6881\"]\ntrackers = [\"udp://127.0.0.1:6969/announce\"]\n\
                utp = false\nupnp = true\nannounce_addr = \"203.0.113.7:0\"\n";
    let d = crate::node::torrent_discovery(&Config::from_toml_str(text).expect("parses").torrent);
    assert!(d.dht && d.upnp && !d.utp && d.magnet_trackers);
    assert_eq!(d.bootstrap_nodes(), vec!["127.0.0.1:6881".to_owned()]);
    assert_eq!(d.trackers, vec!["udp://127.0.0.1:6969/announce".to_owned()]);
    assert_eq!(d.announce_addr, Some("203.0.113.7:0".parse().expect("addr")));

    let none = Config::from_toml_str("[torrent]\ntrackers = false\n").expect("old boolean");
    assert!(crate::node::torrent_discovery(&none.torrent).trackers.is_empty());
    assert!(!crate::node::torrent_discovery(&none.torrent).magnet_trackers);
    let two = Config::from_toml_str("[torrent]\ntrackers = true\n").expect("old boolean");
    assert_eq!(two.torrent.trackers, chs_torrent::Discovery::status_go().trackers);
}
