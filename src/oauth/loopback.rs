//! The RFC 8252 §7.3 loopback redirect listener: where the browser lands after the sign-in.
//!
//! It binds the literal `127.0.0.1` (never the name `localhost`, which resolves to `::1` first on
//! many systems while the listener sits on IPv4: mcp-remote PR #259, apify/mcpc#174), serves plain
//! HTTP/1.1 to a handful of browser connections at once and hands back the query of the one `GET`
//! on the callback path. It checks nothing of OAuth (`state`, `iss`, `error` are the caller's):
//! a response that the caller rejects leaves the listener as it was, so it may `wait` again.
//!
//! Browsers open speculative connections that never carry a request, and ask for
//! `/favicon.ico` before or after the page: so connections are read side by side without
//! blocking, each with a size cap and a time budget, and anything but the callback gets a 404.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The path of the redirect URI handed out by [`Listener::ephemeral`].
const CALLBACK_PATH: &str = "/callback";
/// The longest request head accepted. A callback URL carries `code`, `state` and `iss`, a few
/// hundred bytes with the usual servers; browsers add about 1 KiB of headers.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection may take to send its request head (speculative connections that never
/// send one are dropped after it).
const CONNECTION_BUDGET: Duration = Duration::from_secs(10);
/// Connections read side by side; the oldest is dropped to make room for a new one.
const MAX_CONNECTIONS: usize = 16;
/// The longest sleep between two looks at the sockets and at `stopped()`: far below the 100 ms
/// in which a stop must be noticed.
const POLL: Duration = Duration::from_millis(20);
/// How long, and how much, a closing connection's remaining input is read before it is closed.
const LINGER: Duration = Duration::from_millis(50);
const LINGER_BYTES: usize = 64 * 1024;
/// How long writing a response may block (it is a few hundred bytes: the socket buffer takes it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound loopback listener and the redirect URI that leads to it.
pub struct Listener {
    sockets: Vec<TcpListener>,
    redirect_uri: String,
    path: String,
    port: u16,
}

/// The query parameters of the redirect, decoded (`application/x-www-form-urlencoded`).
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub params: Vec<(String, String)>,
}

impl Callback {
    /// The first value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Names only: the values include the authorization code.
impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("Callback").field("names", &names).finish()
    }
}

#[derive(Debug)]
pub enum LoopbackError {
    /// `--oauth-redirect-uri` is not a loopback `http` URI this listener can serve.
    BadRedirectUri { uri: String, reason: &'static str },
    /// The fixed port of `--oauth-redirect-uri` is taken.
    PortInUse { port: u16, uri: String },
    /// Any other failure to listen.
    Bind { addr: SocketAddr, source: io::Error },
    /// The deadline passed before the browser came back.
    TimedOut,
    /// `stopped()` became true.
    Stopped,
}

impl fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRedirectUri { uri, reason } => write!(
                f,
                "--oauth-redirect-uri {uri} cannot be served here: {reason} \
                 (expected http://127.0.0.1:PORT/PATH or http://localhost:PORT/PATH)"
            ),
            Self::PortInUse { port, uri } => write!(
                f,
                "port {port} of --oauth-redirect-uri {uri} is in use by another program: \
                 stop that program, or register and configure a redirect URI with a free port"
            ),
            Self::Bind { addr, source } => write!(
                f,
                "cannot listen on {addr} for the sign-in redirect: {source}"
            ),
            Self::TimedOut => write!(
                f,
                "the browser sign-in did not finish in time (no redirect reached the loopback \
                 listener): retry, and finish the sign-in in the browser"
            ),
            Self::Stopped => write!(
                f,
                "the browser sign-in was abandoned: the bridge is stopping"
            ),
        }
    }
}

impl std::error::Error for LoopbackError {}

/// Which loopback addresses a redirect URI's host stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hosts {
    V4,
    V6,
    /// `localhost`: the browser may try either, so both are served.
    Both,
}

impl Listener {
    /// Ephemeral port (port 0), path "/callback".
    pub fn ephemeral() -> Result<Listener, LoopbackError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let socket = bind(addr, None)?;
        let port = local_port(&socket, addr)?;
        Ok(Listener {
            sockets: vec![socket],
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
            path: CALLBACK_PATH.to_owned(),
            port,
        })
    }

    /// Exactly the port and path of a pre-registered `http://127.0.0.1:PORT/path` or
    /// `http://localhost:PORT/path` redirect URI (`http://[::1]:PORT/path` too). A busy port is an
    /// error naming the port and the flag (--oauth-redirect-uri).
    pub fn for_redirect_uri(uri: &str) -> Result<Listener, LoopbackError> {
        let (hosts, port, path) = parse_redirect_uri(uri)?;
        let mut sockets = Vec::new();
        if hosts != Hosts::V6 {
            sockets.push(bind(
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                Some(uri),
            )?);
        }
        if hosts != Hosts::V4 {
            let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            match bind(addr, Some(uri)) {
                Ok(socket) => sockets.push(socket),
                // A host without IPv6 (common in containers): browsers then reach `localhost`
                // over IPv4 only, which the first socket serves.
                Err(LoopbackError::Bind { source, .. }) if hosts == Hosts::Both => {
                    log::debug!("not listening on {addr} as well: {source}");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Listener {
            sockets,
            redirect_uri: uri.to_owned(),
            path,
            port,
        })
    }

    /// The redirect_uri to send: `http://127.0.0.1:PORT/callback` (or the configured one verbatim).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve requests until one GET on the callback path arrives (favicon and other paths get
    /// 404; each request read with a size cap and a per-connection time budget), answer it with a
    /// tiny HTML page ("you can close this tab"), and return its query parameters. Returns
    /// Err(TimedOut) at `deadline` and Err(Stopped) soon (<= 100 ms) after `stopped()` becomes
    /// true. No state/iss checking here: the caller may call `wait` again after rejecting one.
    pub fn wait(
        &self,
        deadline: Instant,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Callback, LoopbackError> {
        let mut connections: Vec<Connection> = Vec::new();
        loop {
            if stopped() {
                return Err(LoopbackError::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LoopbackError::TimedOut);
            }
            let mut busy = self.accept_into(&mut connections);
            let mut index = 0;
            while index < connections.len() {
                match connections[index].poll() {
                    Poll::Waiting { progressed } => {
                        busy |= progressed;
                        index += 1;
                    }
                    Poll::Gone => {
                        connections.swap_remove(index);
                    }
                    Poll::TooLarge => {
                        let mut connection = connections.swap_remove(index);
                        connection.respond(&Response::TooLarge);
                    }
                    Poll::Head(head) => {
                        let mut connection = connections.swap_remove(index);
                        busy = true;
                        match route(&head, &self.path) {
                            Route::Callback(params) => {
                                let callback = Callback { params };
                                let page = if callback.get("error").is_some() {
                                    Response::Refused
                                } else {
                                    Response::Done
                                };
                                connection.respond(&page);
                                return Ok(callback);
                            }
                            Route::Answer(response) => connection.respond(&response),
                        }
                    }
                }
            }
            if !busy {
                std::thread::sleep(POLL.min(deadline.saturating_duration_since(now)));
            }
        }
    }

    /// Take every pending connection; true if there was one.
    fn accept_into(&self, connections: &mut Vec<Connection>) -> bool {
        let mut accepted = false;
        for socket in &self.sockets {
            loop {
                match socket.accept() {
                    Ok((stream, _)) => {
                        accepted = true;
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        if connections.len() >= MAX_CONNECTIONS {
                            connections.remove(0);
                        }
                        connections.push(Connection::new(stream));
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    // A peer that gave up before we accepted, or a signal: try the next one.
                    Err(error)
                        if matches!(
                            error.kind(),
                            ErrorKind::ConnectionAborted
                                | ErrorKind::ConnectionReset
                                | ErrorKind::Interrupted
                        ) => {}
                    // Out of descriptors or the like: look again after the usual pause.
                    Err(error) => {
                        log::debug!("loopback listener: accept failed: {error}");
                        break;
                    }
                }
            }
        }
        accepted
    }
}

fn bind(addr: SocketAddr, uri: Option<&str>) -> Result<TcpListener, LoopbackError> {
    let socket = TcpListener::bind(addr).map_err(|source| match uri {
        Some(uri) if source.kind() == ErrorKind::AddrInUse => LoopbackError::PortInUse {
            port: addr.port(),
            uri: uri.to_owned(),
        },
        _ => LoopbackError::Bind { addr, source },
    })?;
    socket
        .set_nonblocking(true)
        .map_err(|source| LoopbackError::Bind { addr, source })?;
    Ok(socket)
}

fn local_port(socket: &TcpListener, addr: SocketAddr) -> Result<u16, LoopbackError> {
    socket
        .local_addr()
        .map(|local| local.port())
        .map_err(|source| LoopbackError::Bind { addr, source })
}

/// The hosts, port and path of a pre-registered redirect URI, or why it cannot be served.
fn parse_redirect_uri(uri: &str) -> Result<(Hosts, u16, String), LoopbackError> {
    let bad = |reason| LoopbackError::BadRedirectUri {
        uri: uri.to_owned(),
        reason,
    };
    let url = url::Url::parse(uri).map_err(|_| bad("it is not a URL"))?;
    if url.scheme() != "http" {
        return Err(bad(
            "only http:// loopback redirect URIs can be received by the bridge",
        ));
    }
    let hosts = match url.host() {
        Some(url::Host::Ipv4(ip)) if ip == Ipv4Addr::LOCALHOST => Hosts::V4,
        Some(url::Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Hosts::V6,
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => Hosts::Both,
        _ => return Err(bad("its host is not 127.0.0.1, [::1] or localhost")),
    };
    // `Url` hides an explicit default port (":80"); it is still port 80.
    let port = url.port().unwrap_or(80);
    if port == 0 {
        return Err(bad("port 0 is not a port a server can have registered"));
    }
    if url.fragment().is_some() {
        return Err(bad(
            "a redirect URI must not have a #fragment (RFC 6749 §3.1.2)",
        ));
    }
    Ok((hosts, port, url.path().to_owned()))
}

/// One accepted browser connection, read without blocking until its request head is complete.
struct Connection {
    stream: TcpStream,
    head: Vec<u8>,
    started: Instant,
}

enum Poll {
    Waiting { progressed: bool },
    Head(Vec<u8>),
    TooLarge,
    Gone,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Connection {
            stream,
            head: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Read what has arrived; the complete head once it has.
    fn poll(&mut self) -> Poll {
        let mut chunk = [0u8; 4096];
        let mut progressed = false;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Poll::Gone,
                Ok(read) => {
                    progressed = true;
                    self.head.extend_from_slice(&chunk[..read]);
                    match head_end(&self.head) {
                        Some(end) if end <= MAX_REQUEST => {
                            self.head.truncate(end);
                            return Poll::Head(std::mem::take(&mut self.head));
                        }
                        _ if self.head.len() > MAX_REQUEST => return Poll::TooLarge,
                        _ => {}
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Poll::Gone,
            }
        }
        if self.started.elapsed() > CONNECTION_BUDGET {
            Poll::Gone
        } else {
            Poll::Waiting { progressed }
        }
    }

    /// Write `response` and close; a browser that went away meanwhile changes nothing.
    fn respond(&mut self, response: &Response) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = self.stream.write_all(response.bytes().as_bytes());
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.linger();
    }

    /// Read (and drop) what the peer is still sending, briefly: closing a socket with unread
    /// input sends a reset, which can destroy the response before the browser reads it (an
    /// oversized head, a POST body).
    fn linger(&mut self) {
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    }
}

/// Where the head of a request ends (after its blank line).
fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// The redirect: its decoded query.
    Callback(Vec<(String, String)>),
    /// Anything else, answered and forgotten.
    Answer(Response),
}

#[derive(Debug, PartialEq, Eq)]
enum Response {
    /// The redirect arrived.
    Done,
    /// The redirect arrived with `error`.
    Refused,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    TooLarge,
}

/// What a request head asks for. Pure, so it is tested on byte strings.
fn route(head: &[u8], callback_path: &str) -> Route {
    let line_end = head
        .windows(2)
        .position(|window| window == b"\r\n")
        .unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::Answer(Response::BadRequest);
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::Answer(Response::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::Answer(Response::BadRequest);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != callback_path {
        return Route::Answer(Response::NotFound);
    }
    if method != "GET" {
        return Route::Answer(Response::MethodNotAllowed);
    }
    let params = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Route::Callback(params)
}

impl Response {
    /// The whole HTTP response. The pages echo nothing from the request (no markup injection),
    /// and forbid scripts, referrers and caching: the address bar holds the authorization code.
    fn bytes(&self) -> String {
        let (status, body) = match self {
            Self::Done => (
                "200 OK",
                "mcp-secure-remote received the sign-in. You can close this tab.",
            ),
            Self::Refused => (
                "200 OK",
                "The authorization server reported an error; the bridge's log says which. \
                 You can close this tab.",
            ),
            Self::BadRequest => ("400 Bad Request", "Bad request."),
            Self::NotFound => ("404 Not Found", "Not found."),
            Self::MethodNotAllowed => ("405 Method Not Allowed", "Method not allowed."),
            Self::TooLarge => ("431 Request Header Fields Too Large", "Request too large."),
        };
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-secure-remote</title>\
             </head><body><p>{body}</p></body></html>\n"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
             Content-Security-Policy: default-src 'none'\r\nConnection: close\r\n\r\n{html}",
            html.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Route {
        Route::Callback(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn route_decodes_the_callback_query() {
        let head = b"GET /callback?code=a%2Bb+c&state=x%26y&iss=https%3A%2F%2Fas HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(
            route(head, "/callback"),
            params(&[("code", "a+b c"), ("state", "x&y"), ("iss", "https://as")])
        );
    }

    #[test]
    fn route_keeps_repeated_and_empty_parameters_for_the_caller_to_judge() {
        assert_eq!(
            route(b"GET /cb?state=1&state=2&code= HTTP/1.0\r\n\r\n", "/cb"),
            params(&[("state", "1"), ("state", "2"), ("code", "")])
        );
        assert_eq!(route(b"GET /cb HTTP/1.1\r\n\r\n", "/cb"), params(&[]));
    }

    #[test]
    fn route_answers_everything_else_without_ending_the_wait() {
        let cases: [(&[u8], Response); 7] = [
            (b"GET /favicon.ico HTTP/1.1\r\n\r\n", Response::NotFound),
            (
                b"GET /callbackx?code=1 HTTP/1.1\r\n\r\n",
                Response::NotFound,
            ),
            (b"GET /callback/ HTTP/1.1\r\n\r\n", Response::NotFound),
            (
                b"POST /callback?code=1 HTTP/1.1\r\n\r\n",
                Response::MethodNotAllowed,
            ),
            (
                b"GET http://127.0.0.1/callback HTTP/1.1\r\n\r\n",
                Response::BadRequest,
            ),
            (b"GET /callback HTTP/2\r\n\r\n", Response::BadRequest),
            (b"\xff\xfe /callback HTTP/1.1\r\n\r\n", Response::BadRequest),
        ];
        for (head, expected) in cases {
            assert_eq!(
                route(head, "/callback"),
                Route::Answer(expected),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn redirect_uris_the_listener_can_serve() {
        assert_eq!(
            parse_redirect_uri("http://127.0.0.1:8123/oauth/cb").ok(),
            Some((Hosts::V4, 8123, "/oauth/cb".to_owned()))
        );
        assert_eq!(
            parse_redirect_uri("http://LOCALHOST:8123").ok(),
            Some((Hosts::Both, 8123, "/".to_owned()))
        );
        assert_eq!(
            parse_redirect_uri("http://[::1]:8123/cb?x=1").ok(),
            Some((Hosts::V6, 8123, "/cb".to_owned()))
        );
        assert_eq!(
            parse_redirect_uri("http://127.0.0.1:80/cb").ok(),
            Some((Hosts::V4, 80, "/cb".to_owned()))
        );
    }

    #[test]
    fn redirect_uris_refused_with_the_reason() {
        for (uri, words) in [
            ("https://127.0.0.1:8123/cb", "only http://"),
            ("http://example.com:8123/cb", "host is not"),
            ("http://127.0.0.2:8123/cb", "host is not"),
            ("http://127.0.0.1:0/cb", "port 0"),
            ("http://127.0.0.1:8123/cb#x", "#fragment"),
            ("127.0.0.1:8123/cb", "not a URL"),
            ("not a url", "not a URL"),
        ] {
            let message = match parse_redirect_uri(uri) {
                Err(error) => error.to_string(),
                Ok(parsed) => panic!("{uri} accepted as {parsed:?}"),
            };
            assert!(message.contains(words), "{uri}: {message}");
            assert!(message.contains("--oauth-redirect-uri"), "{message}");
        }
    }

    #[test]
    fn callback_debug_shows_names_not_values() {
        let callback = Callback {
            params: vec![("code".into(), "secret-code".into())],
        };
        assert_eq!(callback.get("code"), Some("secret-code"));
        assert_eq!(callback.get("state"), None);
        let shown = format!("{callback:?}");
        assert!(
            shown.contains("code") && !shown.contains("secret-code"),
            "{shown}"
        );
    }

    #[test]
    fn responses_have_exact_content_length() {
        for response in [Response::Done, Response::Refused, Response::NotFound] {
            let text = response.bytes();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
            assert!(
                head.contains(&format!("Content-Length: {}\r\n", body.len())),
                "{head}"
            );
        }
    }
}
