//! Server-Sent Events encoding, with LF (TypeScript SDK) or CRLF (Python sse-starlette) line ends.

/// One SSE event as written on the wire.
#[derive(Debug, Clone, Default)]
pub(super) struct Event<'a> {
    pub id: Option<&'a str>,
    pub event: Option<&'a str>,
    /// The `data` payload; every line becomes its own `data:` field. An empty string still
    /// produces one (empty) `data:` field, as priming events need.
    pub data: &'a str,
    pub retry_ms: Option<u64>,
}

/// Encodes an event, terminated by the blank line that dispatches it.
pub(super) fn encode(event: &Event<'_>, crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if let Some(id) = event.id {
        out.push_str(&format!("id: {id}{eol}"));
    }
    if let Some(name) = event.event {
        out.push_str(&format!("event: {name}{eol}"));
    }
    for line in event.data.split('\n') {
        out.push_str(&format!("data: {line}{eol}"));
    }
    if let Some(retry) = event.retry_ms {
        out.push_str(&format!("retry: {retry}{eol}"));
    }
    out.push_str(eol);
    out
}

/// A JSON-RPC message as an SSE `message` event.
pub(super) fn message(id: Option<&str>, json: &str, crlf: bool) -> String {
    encode(
        &Event {
            id,
            event: Some("message"),
            data: json,
            retry_ms: None,
        },
        crlf,
    )
}

/// The priming event of SEP-1699: an id with empty data, plus `retry` when configured.
pub(super) fn priming(id: &str, retry_ms: Option<u64>, crlf: bool) -> String {
    encode(
        &Event {
            id: Some(id),
            event: None,
            data: "",
            retry_ms,
        },
        crlf,
    )
}

/// An SSE comment line (a keep-alive that clients ignore).
pub(super) fn comment(text: &str, crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    format!(": {text}{eol}{eol}")
}
