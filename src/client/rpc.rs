//! What the probe needs from a connection: send a request and get its result, send a
//! notification. A trait, so that the probe's logic (capabilities, pagination) is tested against
//! a fake without a server.

use std::fmt;

use serde_json::Value;

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No answer from the server: TLS, HTTP status, connection or timeout. The message is the
    /// transport's one-line diagnosis.
    Transport(String),
    /// The server answered with a JSON-RPC error.
    Server { code: i64, message: String },
    /// The server answered with something that is not what the method returns.
    BadResult(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transport(message) => f.write_str(message),
            CallError::Server { code, message } => {
                write!(f, "the server answered with error {code}: {message}")
            }
            CallError::BadResult(why) => write!(f, "the server's result is unusable: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One MCP connection, seen as JSON-RPC calls.
pub trait Rpc {
    /// Send request `method` with `params` and return its `result`.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError>;
    /// Send notification `method` (without params) and wait until the server accepted it.
    fn notify(&mut self, method: &str) -> Result<(), CallError>;
}
