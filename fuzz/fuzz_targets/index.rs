//! `index` files: `chs_archive::fuzz::index` (decode, rows, verify, extract against empty data),
//! plus the invariant decode → encode → decode is stable.
#![no_main]

use chs_archive::format::{decode_index, encode_index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chs_archive::fuzz::index(data);
    if let Ok(index) = decode_index(data) {
        let again = decode_index(&encode_index(&index));
        assert_eq!(again.as_ref(), Ok(&index), "index re-encoding does not decode to the same index");
    }
});
