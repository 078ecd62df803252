//! MCP over HTTP, shared by the bridge and the test client: the remote session over Streamable
//! HTTP or the legacy HTTP+SSE transport, and where the frames it receives go ([`Sink`]).

pub mod budget;
pub mod events;
pub mod exchange;
pub mod legacy;
pub mod remote;
pub mod session;
pub mod sink;
pub mod stop;
pub mod tool_headers;

pub use remote::{Failure, Remote};
pub use sink::Sink;
