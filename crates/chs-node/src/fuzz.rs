//! Fuzz entry point (the `config` cargo-fuzz target of `cargo xtask fuzz`): arbitrary bytes as a
//! node's TOML configuration. Must never panic; a configuration that loads must survive a round
//! trip through the TOML that `chs node init` writes.

use crate::config::Config;

/// Parses `bytes` (as UTF-8) with [`Config::from_toml_str`]; when that succeeds, writes the
/// configuration back to TOML and checks that it loads again to the same value.
///
/// # Panics
/// When the round trip fails: that is the bug the fuzzer looks for.
pub fn config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(config) = Config::from_toml_str(text) else { return };
    let written = toml::to_string(&config).unwrap_or_else(|e| panic!("a loaded configuration does not serialise: {e}"));
    let again = Config::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("the written configuration does not load: {e}\n{written}"));
    assert_eq!(again, config, "round trip changed the configuration:\n{written}");
}
