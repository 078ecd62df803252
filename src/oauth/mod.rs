//! MCP authorization (OAuth 2.1): the flow and the I/O it is handed.
//!
//! The I/O building blocks each do one thing and know nothing of OAuth itself: the RFC 8252
//! loopback redirect listener, the browser launcher, the token stores and the lock that lets one
//! bridge process log in for every process that talks to the same server.

pub mod browser;
pub mod lock;
pub mod loopback;
pub mod store;
