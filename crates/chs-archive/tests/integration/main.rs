//! Integration tests of chs-archive (one binary, one module per area).

mod common;

mod crash;
mod golden;
mod lock;
mod logos;
mod plan;
mod props;
mod reader;
mod recover;
mod sparse;
mod spec15;
mod store;
mod wrap;
