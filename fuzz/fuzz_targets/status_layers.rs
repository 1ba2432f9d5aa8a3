//! The Status layers on raw payload data (`chs_status::fuzz::status_layers`): segments,
//! `ProtocolMessage`, bundles, `ApplicationMetadataMessage`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chs_status::fuzz::status_layers(data));
