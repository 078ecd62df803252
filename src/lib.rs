//! mcp-secure-remote: a stdio <-> remote MCP bridge that authenticates with a TLS client certificate.
//!
//! The library holds everything the two binaries share (the proxy `mcp-secure-remote` and the test
//! client `mcp-secure-remote-client`): configuration, TLS, the HTTP agent and the MCP transports.

pub mod bridge;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub(crate) mod hygiene;
pub mod jsonrpc;
pub(crate) mod logging;
pub(crate) mod modern;
pub mod oauth;
pub(crate) mod sse;
pub mod startup;
pub(crate) mod sync;
pub mod tls;
pub(crate) mod transport;
