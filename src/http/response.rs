//! Small readers of an HTTP response that every exchange needs.

use std::io::Read;

use ureq::http::Response;
use ureq::Body;

/// The part of an error body that is read (for its message); the rest is dropped.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The `Content-Type`, trimmed and lower-cased.
pub fn content_type(resp: &Response<Body>) -> Option<String> {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Whether the response is an event stream.
pub fn is_event_stream(resp: &Response<Body>) -> bool {
    content_type(resp).is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// Read a short body (an error page, a 202's "Accepted") to its end, at most
/// [`ERROR_BODY_LIMIT`] bytes. Reading a short body whole also lets its connection be reused.
pub fn read_short_body(resp: Response<Body>) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(ERROR_BODY_LIMIT)
        .read_to_end(&mut body);
    body
}
