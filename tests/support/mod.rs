//! Support code shared by the integration tests: driving the bridge binary, and the mTLS MCP test
//! server (the `mcp-test-server` workspace crate, re-exported as `support::server`).
#![allow(dead_code)]

pub mod bridge;
pub mod softhsm;
pub use mcp_test_server as server;

use std::path::PathBuf;

/// Path of a file in the crate's `fixtures/` directory (certificates and keys).
pub fn fixture(name: &str) -> PathBuf {
    server::fixture(name)
}
