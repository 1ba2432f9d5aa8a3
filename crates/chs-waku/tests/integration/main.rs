//! chs-waku integration tests: real nodes on 127.0.0.1 TCP, and a real js-waku peer when
//! `CHS_JS_WAKU_DIR` points at the installed `interop/` folder.

mod api;
mod interop;
mod line;
mod metadata;
mod peers;
mod store;
mod support;
mod validation;
