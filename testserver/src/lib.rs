//! A real MCP server for the bridge's integration tests (and the runnable demo endpoint): HTTPS on
//! 127.0.0.1 requiring client certificates from the fixtures' CA, serving Streamable HTTP at `/mcp`
//! and legacy HTTP+SSE at `/sse` + `/message`, with knobs and injectable faults that reproduce the
//! behaviours of the real reference servers (see shared/notes/mcp-transports.md §2.4–2.6, §3, §4).
//!
//! Std threads only: an acceptor thread, one thread per connection, and workers for requests
//! answered off-connection. `stop()` (or drop) shuts every socket down and joins every thread.
#![allow(dead_code)]

mod conn;
mod faults;
mod http;
mod legacy;
mod mcp;
mod modern;
mod modern_headers;
mod pump;
mod socket;
mod sse;
mod state;
mod streamable;
mod tls;
mod tools;

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use state::State;

#[allow(unused_imports)] // used by some test crates, not all
pub use mcp::{LATEST_VERSION, SERVER_NAME, SUPPORTED_VERSIONS};
#[allow(unused_imports)]
pub use modern::MODERN_VERSIONS;
#[allow(unused_imports)]
pub use tools::big_text;

/// Path of a file in the project's `fixtures/` directory (beside this crate's directory).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join(name)
}

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS 1.2/1.3; a client certificate signed by `client_ca` is mandatory (the default).
    RequireClientCert,
    /// TLS 1.2/1.3; a client certificate is verified if sent, but not required.
    OptionalClientCert,
    /// No TLS at all: `http://` URLs.
    PlainHttp,
    /// Like `RequireClientCert`, but TLS 1.2 only.
    Tls12Only,
}

/// How `GET /mcp` (the standalone stream) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStream {
    /// An SSE stream (the default); a second concurrent one per session gets 409.
    Sse,
    /// This HTTP status with a JSON-RPC error body (405 per spec; real servers also send
    /// 400/404/406/409).
    Status(u16),
}

/// How a `server/discover` request (the 2026-07-28 probe) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoverMode {
    /// HTTP 400 `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Server not
    /// initialized"}}`, as the TypeScript server-everything does (the default).
    Http400IdNull,
    /// HTTP 200 with a JSON-RPC `-32601 Method not found` error carrying the request id, with or
    /// without a session.
    MethodNotFound,
}

/// Server behaviour. `Default` is a spec-following, TypeScript-SDK-like server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Default `RequireClientCert`.
    pub tls: TlsMode,
    /// Fixture names; defaults `server.crt`, `server.key`, `ca.crt`.
    pub server_cert: &'static str,
    pub server_key: &'static str,
    pub client_ca: &'static str,
    /// Answer POSTed requests with `application/json` instead of `text/event-stream` (default
    /// false). Progress and server→client requests then go on the standalone GET stream, if open.
    pub json_response: bool,
    /// End SSE lines with CRLF like Python's sse-starlette (default false: LF).
    pub crlf: bool,
    /// Start each SSE stream with a priming event: `id: <stream>-0`, empty `data:` and `retry:`
    /// when `retry_ms` is set (default true).
    pub priming: bool,
    /// `retry:` value of priming events (default none).
    pub retry_ms: Option<u64>,
    /// Issue `Mcp-Session-Id` on initialize and require it afterwards (default true). When false,
    /// the server is stateless: no session checks, DELETE gets 405.
    pub sessions: bool,
    /// Status for an unknown or deleted session: 404 (spec, Python) or 400 (TypeScript). Default 404.
    pub unknown_session_status: u16,
    /// Default `GetStream::Sse`.
    pub get_stream: GetStream,
    /// Serve Streamable HTTP at `/mcp` (default true). When false, POST `/mcp` gets
    /// `streamable_off_status` and GET `/mcp` serves the legacy SSE stream (if `legacy_sse`).
    pub streamable: bool,
    /// Default 405 (Starlette); TypeScript/express gives 404. Also used for any request to `/sse`
    /// other than GET.
    pub streamable_off_status: u16,
    /// Serve legacy HTTP+SSE at `GET /sse` + `POST /message?sessionId=` (default true).
    pub legacy_sse: bool,
    /// Answer any request to `/mcp` with `307 Location: https://<host>/mcp/` and serve at `/mcp/`
    /// (Starlette's redirect_slashes). Default false.
    pub redirect_slash: bool,
    /// Paginate tools/resources/templates/prompts lists with opaque `nextCursor`s (default none).
    pub page_size: Option<usize>,
    /// Default `DiscoverMode::Http400IdNull`.
    pub discover: DiscoverMode,
    /// Answer every initialize with this version instead of echoing a supported offer.
    pub negotiate_version: Option<&'static str>,
    /// Also serve 2026-07-28 ("modern", stateless) requests on `/mcp`, recognised by
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, as the Python SDK server does
    /// (default false). They need no session; their headers must mirror the body (else 400
    /// `-32020`); a GET or DELETE with a modern `MCP-Protocol-Version` gets 405.
    pub modern: bool,
    /// Legacy `GET /sse` sends its `endpoint` event (default true). When false the stream opens
    /// and stays silent: a server that never tells the client where to POST.
    pub legacy_endpoint_event: bool,
    /// Also serve the legacy SSE stream on `GET /mcp` when the GET carries no `Mcp-Session-Id`
    /// (default false), so that one URL serves legacy SSE (GET) and Streamable HTTP / 2026-07-28
    /// (POST): both eras of one bridge against one endpoint.
    pub legacy_get_on_mcp: bool,
    /// Appended to the query of the legacy `endpoint` event (`/message?sessionId=<id>&<this>`),
    /// e.g. `next=https://x` (default none).
    pub legacy_endpoint_query: Option<&'static str>,
    /// Apache's `KeepAliveTimeout` (default none: connections stay open). A request that arrives
    /// on a connection idle at least this long is dropped unread and the connection cut: what a
    /// client sees when its request crosses the server's keep-alive close on the wire, made
    /// deterministic. A connection idle for five times as long is closed.
    pub keep_alive_timeout: Option<Duration>,
    /// Announce `keep_alive_timeout` in a `Keep-Alive: timeout=N` header on every response, as
    /// Apache does (default false: nginx and HAProxy send none).
    pub keep_alive_hint: bool,
    /// How long each accepted connection waits before its TLS handshake starts (default none):
    /// a slow machine or a loaded terminator, where reaching the server takes longer than the
    /// bridge's 1 s EOF grace (as the first handshake does under qemu-user).
    pub handshake_delay: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tls: TlsMode::RequireClientCert,
            server_cert: "server.crt",
            server_key: "server.key",
            client_ca: "ca.crt",
            json_response: false,
            crlf: false,
            priming: true,
            retry_ms: None,
            sessions: true,
            unknown_session_status: 404,
            get_stream: GetStream::Sse,
            streamable: true,
            streamable_off_status: 405,
            legacy_sse: true,
            redirect_slash: false,
            page_size: None,
            discover: DiscoverMode::Http400IdNull,
            negotiate_version: None,
            modern: false,
            legacy_endpoint_event: true,
            legacy_get_on_mcp: false,
            legacy_endpoint_query: None,
            keep_alive_timeout: None,
            keep_alive_hint: false,
            handshake_delay: None,
        }
    }
}

/// A misbehaviour injected with `TestServer::inject`, consumed by the first request it applies to.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next POST carrying a JSON-RPC request (on `/mcp` or `/message`) gets this answer.
    Status {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// The next POST whose message (request or notification) has this method gets this answer.
    StatusFor {
        method: &'static str,
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// The next POST carrying a request to `/mcp` gets an SSE stream with only the priming event
    /// (and `retry:`), which then ends. The request is still served: its response (and any progress)
    /// is delivered once to a GET with `Last-Event-ID: <priming id>`.
    CloseAfterPriming,
    /// The next POST carrying a JSON-RPC request gets exactly this answer: status, headers
    /// (`WWW-Authenticate`, `Content-Encoding`, …) and raw body bytes, as a misconfigured proxy or
    /// an OAuth-protected server would send it.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// The next POST carrying a request: the connection is cut without any response.
    DropConnection,
    /// Forget all Streamable HTTP sessions now (their GET streams end); the next request with a
    /// session id gets `unknown_session_status`.
    ExpireSessions,
    /// End every open standalone (and resumed) GET stream now, cleanly: a SEP-1699
    /// server-initiated disconnect. Sessions stay, and a GET with `Last-Event-ID` resumes.
    EndGetStreams,
    /// Like `ExpireSessions`, but the open GET streams stay open (and silent): the client learns
    /// of the loss only from its next POST.
    ExpireSessionsSilently,
    /// End every legacy `GET /sse` stream now, cleanly (its session is forgotten).
    EndLegacyStreams,
    /// The next legacy `GET /sse` stream ends cleanly right after its `endpoint` event (its
    /// session is forgotten): a server that restarts just as the client connects.
    EndNextLegacyStreamAfterEndpoint,
    /// The next POST (`/mcp` or `/message`) whose message has this method is never answered: the
    /// server holds it until the client hangs up or the server stops.
    HoldFor { method: &'static str },
    /// The next POST whose message has this method is served only after `ms` milliseconds.
    DelayFor { method: &'static str, ms: u64 },
}

/// One HTTP request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Query string pairs, not percent-decoded.
    pub query: Vec<(String, String)>,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Common name of the client certificate the connection presented.
    pub client_cert_cn: Option<String>,
    /// When the request (head and body) had arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON-RPC `method` of the body, if any.
    pub fn rpc_method(&self) -> Option<String> {
        self.json()?.get("method")?.as_str().map(str::to_string)
    }
}

/// What a client set up in a session (see `TestServer::session_setup`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetup {
    /// Subscribed resource uris, sorted.
    pub subscriptions: Vec<String>,
    /// The level of the last `logging/setLevel`.
    pub log_level: Option<String>,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// A fixture file is missing or unreadable.
    Fixture(PathBuf, String),
    /// rustls refused the configuration.
    Tls(String),
    /// The port could not be bound.
    Bind(u16, std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Fixture(path, why) => write!(
                f,
                "cannot load fixture {}: {why} (generate fixtures with scripts/make-fixtures.sh)",
                path.display()
            ),
            StartError::Tls(why) => write!(f, "invalid TLS configuration: {why}"),
            StartError::Bind(port, e) => write!(f, "cannot listen on 127.0.0.1:{port}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running test server; stops on `stop()` or drop.
pub struct TestServer {
    state: Arc<State>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts on a free port of 127.0.0.1. Panics if fixtures are missing.
    pub fn start(opts: ServerOptions) -> TestServer {
        TestServer::start_on(0, opts)
    }

    /// Starts on a given port (0 = any), e.g. to restart a server where a bridge expects it.
    pub fn start_on(port: u16, opts: ServerOptions) -> TestServer {
        TestServer::try_start_on(port, opts).unwrap_or_else(|e| panic!("test server: {e}"))
    }

    /// Like `start_on`, but returns the error.
    pub fn try_start_on(port: u16, opts: ServerOptions) -> Result<TestServer, StartError> {
        let tls = tls::server_config(&opts)?;
        let listener =
            TcpListener::bind(("127.0.0.1", port)).map_err(|e| StartError::Bind(port, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(port, e))?;
        let state = Arc::new(State::new(opts, addr.port()));
        let acceptor_state = Arc::clone(&state);
        let acceptor = std::thread::Builder::new()
            .name("mcp-test-server-accept".into())
            .spawn(move || accept_loop(acceptor_state, listener, tls))
            .map_err(|e| StartError::Bind(port, e))?;
        Ok(TestServer {
            state,
            addr,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:{port}{path}` (`http://` for `PlainHttp`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.state.opts.tls == TlsMode::PlainHttp {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.port())
    }

    pub fn options(&self) -> &ServerOptions {
        &self.state.opts
    }

    /// Every HTTP request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// The requests received after the first `first` (cheap to poll in a long test).
    pub fn requests_from(&self, first: usize) -> Vec<RecordedRequest> {
        self.state.requests_from(first)
    }

    /// Waits until a request matching `pred` has arrived; returns it, or `None` after `timeout`.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> Option<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.requests().into_iter().find(|r| pred(r)) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Completed TLS handshakes (accepted connections for `PlainHttp`), to assert connection reuse.
    pub fn handshakes(&self) -> usize {
        self.state.handshakes.load(Ordering::SeqCst)
    }

    /// Ids of the live Streamable HTTP sessions (`""` is the implicit one when sessions are off).
    pub fn active_sessions(&self) -> Vec<String> {
        self.state.session_ids()
    }

    /// Ids of 2026-07-28 requests (including `subscriptions/listen`) whose SSE response stream
    /// the client closed before the response was sent: the modern way to cancel.
    pub fn cancelled_streams(&self) -> Vec<serde_json::Value> {
        self.state.cancelled_streams()
    }

    /// Ids of handshake-era requests held by the `hang` tool whose response stream the client
    /// closed (the server never answers them; closing the stream is all a client can do).
    pub fn abandoned_streams(&self) -> Vec<serde_json::Value> {
        self.state.abandoned_streams()
    }

    /// Client connections open right now (accepted and not yet closed by either side).
    pub fn open_connections(&self) -> usize {
        self.state.open_connections()
    }

    /// What the client set up in a Streamable HTTP session: its `resources/subscribe` uris
    /// (minus the unsubscribed ones) and its last `logging/setLevel` level. `None` if no such session.
    pub fn session_setup(&self, session: &str) -> Option<SessionSetup> {
        self.state.session_setup(session)
    }

    /// Sends `notifications/resources/updated` for `uri` on the GET stream of every session that
    /// subscribed to it; returns how many streams it was sent on.
    pub fn update_resource(&self, uri: &str) -> usize {
        let note = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": uri}
        });
        self.state
            .subscribed_sessions(uri)
            .iter()
            .filter(|s| self.state.send_listening(s, &note.to_string()))
            .count()
    }

    /// Sends `message` on the GET stream of every session that has one open; returns how many.
    pub fn send_on_get_streams(&self, message: &serde_json::Value) -> usize {
        self.state
            .session_ids()
            .iter()
            .filter(|s| self.state.send_listening(s, &message.to_string()))
            .count()
    }

    /// Queues a fault; `ExpireSessions`, `EndGetStreams` and `EndLegacyStreams` take effect
    /// immediately.
    pub fn inject(&self, fault: Fault) {
        self.state.inject(fault);
    }

    /// Closes the listener and all connections, and joins every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.state.begin_shutdown();
        // Wake the acceptor out of accept(); it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        self.state.begin_shutdown();
        self.state.join_all();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(state: Arc<State>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    loop {
        let accepted = listener.accept();
        if state.stopping() {
            return;
        }
        let Ok((sock, _peer)) = accepted else {
            // e.g. out of file descriptors: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let conn_id = state.next_number();
        match sock.try_clone() {
            Ok(clone) => state.track_socket(conn_id, clone),
            Err(_) => continue,
        }
        let conn_state = Arc::clone(&state);
        let tls = tls.clone();
        if !state.spawn(move || conn::serve(conn_state, tls, sock, conn_id)) {
            state.untrack_socket(conn_id);
        }
    }
}
