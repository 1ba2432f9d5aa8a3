//! Magnet link parsing (`chs_torrent::Magnet`): any UTF-8 input must parse or fail cleanly, and a
//! parsed link prints to a link that parses back to the same value (and prints the same again).
#![no_main]

use chs_torrent::Magnet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(magnet) = text.parse::<Magnet>() else { return };
    let printed = magnet.to_string();
    let again: Magnet = printed.parse().expect("a printed magnet parses");
    assert_eq!(again, magnet, "magnet round trip through {printed:?}");
    assert_eq!(again.to_string(), printed);
});
