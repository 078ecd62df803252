//! MCP over HTTP, shared by the bridge and the test client. Nothing here knows about stdio: what
//! the server sends goes to a [`Sink`] (the bridge's stdout writer, or the test client's inbox).
//!
//! The pieces, in the order a request meets them:
//! - [`remote::Remote`]: the front. Chooses the transport (`--transport`, with the client's own
//!   `initialize` as the probe), keeps the [`session::Session`], and maps every failure to the
//!   JSON-RPC error of the request that caused it.
//! - [`error::TransportError`]: why an exchange failed; the one place that says whether to try
//!   the other transport, whether it is a setup error, and which JSON-RPC error it becomes.
//! - [`session::Session`]: the handshake-era session as pure state (id, negotiated version, the
//!   initialize to replay, subscriptions and log level to restore). No I/O; unit-tested.
//! - Streamable HTTP lives in `remote` itself (POST a message, read its JSON or SSE answer,
//!   resume with GET + `Last-Event-ID`, the GET listening stream, 2026-07-28 requests);
//!   [`legacy::LegacyLink`] is the HTTP+SSE transport of 2024-11-05. The legacy link never calls
//!   back into `Remote`: it is handed a delivery function and a way to fail what it carried.
//! - [`exchange::Exchange`]: one HTTP call (extra headers, the [`cookies`] jar, timeouts,
//!   same-origin redirects, the diagnosis of a failed connection). Both transports send
//!   through it.
//! - [`events`]: reading a body within the bounds: SSE events or a JSON body, room reserved in
//!   the [`budget::Budget`] before each read, `retry:` capped.
//! - [`stop::Stop`]: shutdown as every wait sees it (closing after EOF, stopped after it).
//!
//! One request, `tools/call` over Streamable HTTP:
//! ```text
//! Remote::request_then ─► Session::client_request (learns what it sets up)
//!   └► post_request ─► Exchange::follow (POST, redirects, diagnosis)
//!        └► 200 text/event-stream ─► events::pump ─► Remote::deliver ─► Sink::deliver
//!             (stream closed early with an event id) ─► GET + Last-Event-ID, after `retry:`
//!        └► 404 on a known session ─► recovery: replay initialize, restore, send again
//!        └► any failure ─► TransportError ─► Sink::fail (one error frame with the request's id)
//! ```

pub mod budget;
pub mod cookies;
pub mod error;
pub mod events;
pub mod exchange;
pub mod legacy;
pub mod remote;
pub mod session;
pub mod sink;
pub mod stop;
pub mod tool_filter;
pub mod tool_headers;

pub use error::TransportError;
pub use remote::Remote;
pub use sink::Sink;
