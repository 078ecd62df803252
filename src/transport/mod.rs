//! MCP over HTTP, shared by the bridge and the test client. Nothing here knows about stdio: what
//! the server sends goes to a [`Sink`] (the bridge's stdout writer, or the test client's inbox).
//!
//! The pieces, in the order a request meets them:
//! - [`remote::Remote`]: the one small interface the dispatcher and the test client use
//!   (`prepare`, `request` → [`remote::Outcome`], `send`, `close`). It chooses the transport
//!   (`--transport`, with the client's own `initialize` as the probe) and maps every failure to
//!   the JSON-RPC error of the request that caused it.
//! - One type per transport, side by side: [`streamable::Streamable`] (POST a message, read its
//!   JSON or SSE answer, resume with GET + `Last-Event-ID`, the GET listening stream, 2026-07-28
//!   requests) and [`legacy::LegacyLink`] (the HTTP+SSE transport of 2024-11-05). Neither calls
//!   the other or the front.
//! - [`exchange::Exchange`]: one HTTP call (extra headers, the [`cookies`] jar, timeouts,
//!   same-origin redirects, the diagnosis of a failed connection). Both transports send
//!   through it.
//! - [`inbox::Inbox`]: where both transports deliver what the server sends; it learns from it
//!   (the [`session::Session`], tool schemas, hidden tools) and hands it to the [`Sink`].
//! - [`renew`]: a new session when the server lost the old one, the same over both transports.
//! - [`error::TransportError`]: why an exchange failed; the one place that says whether to try
//!   the other transport, whether it is a setup error, and which JSON-RPC error it becomes.
//! - [`events`]: reading a body within the bounds: SSE events or a JSON body, room reserved in
//!   the [`budget::Budget`] before each read, `retry:` capped.
//! - [`stop::Stop`]: shutdown as every wait sees it (closing after EOF, stopped after it).
//!
//! One request, `tools/call` over Streamable HTTP (see each function for the details):
//! ```text
//! bridge::dispatcher::Dispatcher::start (a worker)
//!   └► Remote::request ─► Remote::send_request ─► Streamable::request (session recovery loop)
//!        └► Streamable::post_request ─► Exchange::follow (POST, redirects, diagnosis)
//!             └► 200 text/event-stream ─► Streams::finish ─► events::pump ─► Inbox::deliver ─► Sink
//!   ◄─ Outcome::Answered(tail): the worker frees the slot, then drains the tail
//! ```

pub mod budget;
pub mod cookies;
pub mod error;
pub mod events;
pub mod exchange;
pub mod inbox;
pub mod legacy;
pub mod remote;
pub mod renew;
pub mod session;
pub mod sink;
pub mod stop;
pub mod streamable;
pub mod tool_filter;
pub mod tool_headers;

pub use error::TransportError;
pub use remote::Remote;
pub use sink::Sink;
