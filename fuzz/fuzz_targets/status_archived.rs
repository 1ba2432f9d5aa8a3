//! The history reader (`chs_status::fuzz::archived`): the input as an archived `WakuMessage`, and
//! as the payload of one with a valid `sig`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chs_status::fuzz::archived(data));
