//! Support code shared by the integration tests: the mTLS MCP test server and fixture paths.
#![allow(dead_code)]

pub mod bridge;
pub mod server;

use std::path::PathBuf;

/// Path of a file in the crate's `fixtures/` directory (certificates and keys).
pub fn fixture(name: &str) -> PathBuf {
    server::fixture(name)
}
