//! Support code shared by the integration tests: driving the bridge binary, and the mTLS MCP test
//! server (the `mcp-test-server` workspace crate, re-exported as `support::server`).
#![allow(dead_code)]

pub mod bridge;
pub mod oauth_peer;
pub mod proxy;
pub mod softhsm;
pub use mcp_test_server as server;

use std::path::PathBuf;
use std::process::Command;

/// Path of a file in the crate's `fixtures/` directory (certificates and keys).
pub fn fixture(name: &str) -> PathBuf {
    server::fixture(name)
}

/// The variable naming a program that starts the binaries under test, for a test suite built
/// for another CPU: `MCP_TEST_RUNNER=qemu-aarch64` (words split on spaces, the binary's path and
/// arguments follow). Without binfmt_misc an emulated test cannot execute an aarch64 binary
/// itself, but it can execute the host's emulator. Unset: the binary is started directly.
pub const RUNNER_VAR: &str = "MCP_TEST_RUNNER";

/// Whether the binaries run under an emulator (the arm64 suite under qemu-user): timing and
/// memory there are the emulator's, so the few tests that measure them skip themselves.
pub fn emulated() -> bool {
    std::env::var_os(RUNNER_VAR).is_some()
}

/// A `Command` that runs `binary` directly, or through the runner in [`RUNNER_VAR`].
pub fn command(binary: &str) -> Command {
    let runner = std::env::var(RUNNER_VAR).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(binary);
            cmd
        }
        None => Command::new(binary),
    }
}
