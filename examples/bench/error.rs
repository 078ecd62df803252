//! Why a benchmark run could not finish. Each Display says what went wrong and what to do.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub enum BenchError {
    /// An environment variable of the benchmark has a value it cannot use.
    Usage(String),
    /// The release bridge binary is not where we look for it.
    BridgeMissing(PathBuf),
    /// The in-process test server did not start.
    Server(String),
    /// The bridge process could not be started.
    Spawn(PathBuf, std::io::Error),
    /// Writing to the bridge's stdin failed (it probably exited).
    BridgeStdin(std::io::Error, String),
    /// The bridge printed nothing in time, or closed its stdout.
    BridgeSilent { waited: Duration, stderr: String },
    /// The bridge did not exit after its stdin closed.
    BridgeHung(Duration),
    /// A reply line (from the bridge or the server) was not the JSON-RPC response expected.
    BadReply { what: String, excerpt: String },
    /// A request was answered with a JSON-RPC error.
    Rpc { method: String, error: String },
    /// The direct client could not be configured (flags, TLS files, agent).
    DirectSetup(String),
    /// The direct client's HTTP exchange failed.
    Http { what: String, detail: String },
    /// /proc/<pid>/status could not be read or lacked the memory lines.
    Proc(u32, String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Usage(why) => write!(f, "{why}"),
            BenchError::BridgeMissing(path) => write!(
                f,
                "bridge binary not found at {}: run `cargo build --release` first \
                 (or set BENCH_BRIDGE to the binary)",
                path.display()
            ),
            BenchError::Server(why) => write!(f, "the test server did not start: {why}"),
            BenchError::Spawn(path, e) => {
                write!(f, "cannot start the bridge {}: {e}", path.display())
            }
            BenchError::BridgeStdin(e, stderr) => write!(
                f,
                "cannot write to the bridge's stdin ({e}); it probably exited. Its stderr:\n{stderr}"
            ),
            BenchError::BridgeSilent { waited, stderr } => write!(
                f,
                "the bridge gave no answer within {} ms. Its stderr:\n{stderr}",
                waited.as_millis()
            ),
            BenchError::BridgeHung(waited) => write!(
                f,
                "the bridge did not exit within {} ms of stdin EOF (it was killed)",
                waited.as_millis()
            ),
            BenchError::BadReply { what, excerpt } => {
                write!(f, "unexpected reply ({what}): {excerpt}")
            }
            BenchError::Rpc { method, error } => {
                write!(f, "{method} was answered with a JSON-RPC error: {error}")
            }
            BenchError::DirectSetup(why) => write!(f, "cannot set up the direct client: {why}"),
            BenchError::Http { what, detail } => write!(f, "direct {what} failed: {detail}"),
            BenchError::Proc(pid, why) => {
                write!(f, "cannot read the memory of process {pid}: {why}")
            }
        }
    }
}

impl std::error::Error for BenchError {}

pub type Result<T> = std::result::Result<T, BenchError>;

/// The first bytes of a possibly huge line, for error messages.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}
