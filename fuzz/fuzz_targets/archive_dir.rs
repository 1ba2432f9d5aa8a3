//! A whole archive directory: `chs_archive::fuzz::directory` (input = 2-byte little-endian index
//! length, index bytes, data bytes; list, rows, verify and extract of every archive).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chs_archive::fuzz::directory(data));
