//! The magnetlink parser of a fixed community (`chs_status::fuzz::magnetlink`): the input as a
//! `WakuMessage`, as the data of a valid signed payload, and as a raw payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chs_status::fuzz::magnetlink(data));
