//! Integration tests of chs-status: status-go vectors, properties, capture and history.

mod archive;
mod description;
mod links;
mod properties;
mod support;
mod vectors;
