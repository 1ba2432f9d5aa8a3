//! Integration tests of `chs-torrent`: real librqbit sessions and real TCP on 127.0.0.1.

mod hostile;
mod interop;
mod loopback;
mod security;
mod util;
