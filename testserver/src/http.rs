//! Hand-written HTTP/1.1 server side: request parsing (Content-Length and chunked bodies, keep-alive)
//! and response writing (fixed-length, or chunked for SSE with a flush after every event).
//!
//! It is written by hand, not taken from a crate, so that the test server controls every byte the
//! bridge sees: exact headers, chunk boundaries, abrupt closes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::socket::{Socket, STOP_POLL};

/// Longest request head (request line + headers) accepted; longer is answered 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted; larger is answered 413.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A byte stream to one client: plain TCP, or TLS over TCP.
pub(super) trait Wire: Read + Write + Send {
    /// The TCP socket underneath, for timeouts.
    fn socket(&self) -> &TcpStream;
    /// Ends the connection politely (TLS close_notify where there is TLS), then shuts the socket.
    fn close(&mut self);
}

impl Wire for Socket {
    fn socket(&self) -> &TcpStream {
        self.tcp()
    }
    fn close(&mut self) {
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Wire for StreamOwned<ServerConnection, Socket> {
    fn socket(&self) -> &TcpStream {
        self.sock.tcp()
    }
    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
        let _ = self.sock.tcp().shutdown(Shutdown::Both);
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub(super) enum HttpError {
    /// The client broke the protocol; answer with this status and close.
    Malformed(u16, String),
    /// The connection failed (reset, TLS error, shutdown).
    Io(io::Error),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(status, why) => write!(f, "malformed request ({status}): {why}"),
            HttpError::Io(e) => write!(f, "connection error: {e}"),
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

fn malformed(why: impl Into<String>) -> HttpError {
    HttpError::Malformed(400, why.into())
}

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded `key=value` pairs of the query string (no percent-decoding: ids are plain hex).
    pub query: Vec<(String, String)>,
    /// Header names are lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the client asked to keep the connection open after this request.
    pub keep_alive: bool,
}

impl Request {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A complete (non-streamed) response.
#[derive(Debug, Clone)]
pub(super) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::empty(status)
            .header("Content-Type", content_type)
            .body(body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::with_body(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::with_body(status, "text/plain; charset=utf-8", text)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

/// Reason phrase for the status line.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// One client connection: a buffered reader for requests plus the writers for responses.
pub(super) struct HttpConn {
    wire: Box<dyn Wire>,
    buf: Vec<u8>,
    /// `Keep-Alive: timeout=N` on every response head.
    keep_alive_hint: Option<u64>,
    /// When the last response's final write began: the client cannot have the whole answer
    /// before this, so an idle time counted from here is never shorter than the client's.
    last_answer_began: Option<Instant>,
}

impl HttpConn {
    pub fn new(wire: Box<dyn Wire>) -> HttpConn {
        HttpConn {
            wire,
            buf: Vec::new(),
            keep_alive_hint: None,
            last_answer_began: None,
        }
    }

    /// When the last complete answer began to be written (see `last_answer_began`), once: the
    /// next request's answer sets it again.
    pub fn take_last_answer_began(&mut self) -> Option<Instant> {
        self.last_answer_began.take()
    }

    pub fn announce_keep_alive(&mut self, seconds: u64) {
        self.keep_alive_hint = Some(seconds);
    }

    /// Waits up to `limit` for the client's next bytes; false when none came or it closed.
    pub fn wait_for_data(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut arrived = !self.buf.is_empty();
        while !arrived {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            // Shorter than STOP_POLL, so that the socket returns the timeout to us.
            let step = left.min(STOP_POLL / 2);
            if self.wire.socket().set_read_timeout(Some(step)).is_err() {
                break;
            }
            match self.fill() {
                Ok(0) => break,
                Ok(_) => arrived = true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = self.wire.socket().set_read_timeout(Some(STOP_POLL));
        arrived
    }

    /// Reads more bytes into the buffer; `Ok(0)` on end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.wire.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS peer that vanishes without close_notify is just a closed connection here.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one CRLF- (or LF-) terminated line, without its terminator.
    fn read_line(&mut self, limit: usize) -> Result<Option<String>, HttpError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|_| malformed("request head is not UTF-8"));
            }
            if self.buf.len() > limit {
                return Err(HttpError::Malformed(431, "request head too large".into()));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(malformed("connection closed in the middle of a line"))
                };
            }
        }
    }

    fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(malformed("connection closed in the middle of the body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads the next request; `Ok(None)` when the client closed the connection between requests.
    pub fn read_request(&mut self) -> Result<Option<Request>, HttpError> {
        // Tolerate stray empty lines between requests (RFC 9112 §2.2).
        let request_line = loop {
            match self.read_line(MAX_HEAD_BYTES)? {
                None => return Ok(None),
                Some(line) if line.is_empty() => continue,
                Some(line) => break line,
            }
        };
        let mut parts = request_line.split(' ');
        let (method, target, version) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => {
                    (m, t, v)
                }
                _ => return Err(malformed(format!("bad request line {request_line:?}"))),
            };
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(malformed(format!("unsupported HTTP version {version:?}"))),
        };
        let method = method.to_string();
        let (path, query) = split_target(target);

        let mut headers = Vec::new();
        let mut head_len = request_line.len();
        loop {
            let line = self
                .read_line(MAX_HEAD_BYTES)?
                .ok_or_else(|| malformed("connection closed in the request head"))?;
            if line.is_empty() {
                break;
            }
            head_len += line.len();
            if head_len > MAX_HEAD_BYTES {
                return Err(HttpError::Malformed(431, "request head too large".into()));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed(format!("header line without a colon: {line:?}")))?;
            if name.is_empty() || name.contains(' ') || name.contains('\t') {
                return Err(malformed(format!("bad header name {name:?}")));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut request = Request {
            method,
            path,
            query,
            headers,
            body: Vec::new(),
            keep_alive: true,
        };
        let connection = request
            .header("connection")
            .unwrap_or("")
            .to_ascii_lowercase();
        request.keep_alive = if http10 {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };

        if request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            self.wire.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.wire.flush()?;
        }
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        request.body = if chunked {
            self.read_chunked_body()?
        } else if let Some(len) = request.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| malformed(format!("bad Content-Length {len:?}")))?;
            if len > MAX_BODY_BYTES {
                return Err(HttpError::Malformed(413, "body too large".into()));
            }
            self.read_exact_bytes(len)?
        } else {
            Vec::new()
        };
        Ok(Some(request))
    }

    fn read_chunked_body(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let size_line = self
                .read_line(1024)?
                .ok_or_else(|| malformed("connection closed in a chunk size line"))?;
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| malformed(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailer fields, up to the empty line; ignored.
                loop {
                    let line = self
                        .read_line(MAX_HEAD_BYTES)?
                        .ok_or_else(|| malformed("connection closed in chunked trailer"))?;
                    if line.is_empty() {
                        return Ok(body);
                    }
                }
            }
            if size > MAX_BODY_BYTES - body.len() {
                return Err(HttpError::Malformed(413, "body too large".into()));
            }
            body.extend(self.read_exact_bytes(size)?);
            let end = self.read_exact_bytes(2)?;
            if end != b"\r\n" {
                return Err(malformed("chunk not followed by CRLF"));
            }
        }
    }

    fn write_head(&mut self, status: u16, headers: &[(String, String)]) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(seconds) = self.keep_alive_hint {
            head.push_str(&format!("Keep-Alive: timeout={seconds}\r\n"));
        }
        head.push_str("\r\n");
        self.wire.write_all(head.as_bytes())
    }

    /// Writes a complete response with Content-Length.
    pub fn write_response(&mut self, response: &Response, close: bool) -> io::Result<()> {
        self.last_answer_began = Some(Instant::now());
        let mut headers = response.headers.clone();
        headers.push(("Content-Length".into(), response.body.len().to_string()));
        if close {
            headers.push(("Connection".into(), "close".into()));
        }
        self.write_head(response.status, &headers)?;
        self.wire.write_all(&response.body)?;
        self.wire.flush()
    }

    /// Starts a chunked response (for SSE); follow with `write_chunk` and `end_stream`.
    pub fn start_stream(&mut self, status: u16, headers: &[(String, String)]) -> io::Result<()> {
        let mut headers = headers.to_vec();
        headers.push(("Transfer-Encoding".into(), "chunked".into()));
        self.write_head(status, &headers)?;
        self.wire.flush()
    }

    /// Writes one chunk and flushes it, so each SSE event reaches the client at once.
    pub fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(()); // an empty chunk would end the body
        }
        self.wire
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        self.wire.write_all(data)?;
        self.wire.write_all(b"\r\n")?;
        self.wire.flush()
    }

    /// Ends a chunked body cleanly; the connection stays usable for the next request.
    pub fn end_stream(&mut self) -> io::Result<()> {
        self.last_answer_began = Some(Instant::now());
        self.wire.write_all(b"0\r\n\r\n")?;
        self.wire.flush()
    }

    /// Whether the client has closed the connection; used by idle SSE streams to notice a gone
    /// client. Waits at most a millisecond. Bytes that did arrive are kept for the next request.
    pub fn client_gone(&mut self) -> bool {
        if self
            .wire
            .socket()
            .set_read_timeout(Some(Duration::from_millis(1)))
            .is_err()
        {
            return true;
        }
        let gone = match self.fill() {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let _ = self.wire.socket().set_read_timeout(Some(STOP_POLL));
        gone
    }

    pub fn close(&mut self) {
        self.wire.close();
    }

    /// Cuts the connection without a word (no TLS close_notify), as a crashing server would.
    pub fn abort(&mut self) {
        let _ = self.wire.socket().shutdown(std::net::Shutdown::Both);
    }
}

/// Splits a request target into path and query pairs.
fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    (path.to_string(), pairs)
}

/// What the connection does after a request has been served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Read the next request on this connection.
    KeepAlive,
    /// Close politely.
    Close,
    /// Close abruptly: no response, no TLS close_notify (fault injection).
    Drop,
}

/// Writes a complete response and says whether the connection can carry another request.
pub(super) fn reply(http: &mut HttpConn, request: &Request, response: Response) -> Next {
    match http.write_response(&response, !request.keep_alive) {
        Ok(()) if request.keep_alive => Next::KeepAlive,
        _ => Next::Close,
    }
}
