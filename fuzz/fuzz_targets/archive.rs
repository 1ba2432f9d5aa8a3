//! One archive: `chs_archive::fuzz::archive`, plus the invariant decode → encode → decode is stable.
#![no_main]

use chs_archive::format::decode_archive;
use chs_proto::Message as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    chs_archive::fuzz::archive(data);
    if let Ok(archive) = decode_archive(data) {
        let again = decode_archive(&archive.encode_to_vec());
        assert_eq!(again.as_ref(), Ok(&archive), "archive re-encoding does not decode to the same archive");
    }
});
