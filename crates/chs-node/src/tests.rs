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
