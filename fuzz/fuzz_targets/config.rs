//! The node's TOML configuration (`chs_node::fuzz::config`): any input loads or fails with an
//! error, and a configuration that loads survives a round trip through the TOML it writes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chs_node::fuzz::config(data));
