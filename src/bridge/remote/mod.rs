//! The remote MCP server as the bridge sees it: one session, over Streamable HTTP or the legacy
//! HTTP+SSE transport, chosen by the `--transport` strategy with the client's own `initialize` as
//! the probe. Every HTTP-only artefact lives here: session id, negotiated protocol version, the
//! 2026-07-28 per-message headers, same-origin redirects, SSE resumption, and the mapping of HTTP
//! failures to JSON-RPC errors for the request that caused them.

mod answers;
mod modern_era;
mod recovery;
mod streams;

use answers::*;
use recovery::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use ureq::http::{Method, Request, Response};
use ureq::{AsSendBody, Body};

use super::legacy::LegacyLink;
use super::pump::{pump, EventStream, Pumped, StreamEnd, MAX_MESSAGE};
use super::sink::Sink;
use super::tool_headers::ToolHeaders;
use crate::config::{Config, TransportStrategy, Url};
use crate::http::cancel::{self, CancelHandle};
use crate::http::diagnose::{diagnose, Severity};
use crate::http::encoding::{decoded_body, read_limited};
use crate::http::response::{
    content_type, error_frame, is_event_stream, read_short_body, www_authenticate,
};
use crate::http::Http;
use crate::jsonrpc::{self, FrameInfo, Id, Kind};
use crate::modern;

/// How long a notification or response POST may take to be accepted (202).
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a POST's response stream is resumed with GET + Last-Event-ID.
const MAX_RESUMES: u32 = 10;
/// A listening stream silent for this long is presumed dead (a peer that vanished without a FIN,
/// a NAT that forgot the flow) and is reconnected with Last-Event-ID. Servers that send keep-alive
/// comments never hit it; for a silent but healthy server it costs one reconnect per period.
const LISTEN_IDLE_BOUND: Duration = Duration::from_secs(300);
/// Session replays per request before its failure is reported.
const MAX_SESSION_REPLAYS: u32 = 2;
/// Ids of the bridge's own requests: strings no MCP client generates, so they cannot collide.
pub const BRIDGE_ID_PREFIX: &str = "mcp-secure-remote:";
/// Same-origin redirects followed per request.
const MAX_REDIRECTS: u32 = 5;

/// A failed exchange, ready to become the JSON-RPC error of the request that caused it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: i64,
    pub message: String,
    pub severity: Severity,
    /// The HTTP status, when the server answered with one.
    pub status: Option<u16>,
    /// A complete error frame built from the server's error body (keeps its code/message/data).
    pub frame: Option<Vec<u8>>,
    /// The server no longer knows the session this request carried (404, or TypeScript's 400).
    pub session_gone: bool,
}

impl Failure {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            severity: Severity::Transient,
            status: None,
            frame: None,
            session_gone: false,
        }
    }
}

#[derive(Clone)]
enum Mode {
    /// Nothing has answered yet (the transport is chosen by the first initialize).
    Undecided,
    Streamable,
    Legacy(Arc<LegacyLink>),
}

struct State {
    /// The Streamable HTTP endpoint (moves with same-origin redirects).
    endpoint: Url,
    session_id: Option<String>,
    /// The version the initialize *result* negotiated.
    protocol_version: Option<String>,
    /// Id of the initialize request in flight (the client's, or a replay), to read its result.
    initialize_id: Option<Id>,
    /// The client's initialize, replayed when the server loses the session.
    client_initialize: Option<Vec<u8>>,
    /// `result.capabilities` + `serverInfo` of the last initialize, to notice changes on replay.
    server_identity: Option<String>,
    /// Counts sessions, so that concurrent requests that find the session gone replay once.
    generation: u64,
    mode: Mode,
}

pub struct Remote {
    config: Arc<Config>,
    http: Http,
    sink: Arc<dyn Sink>,
    state: Mutex<State>,
    listener_started: AtomicBool,
    /// Serialises session replays.
    replay_lock: Mutex<()>,
    /// Waiters for responses to the bridge's own requests (ids starting with BRIDGE_ID_PREFIX).
    internal: Mutex<HashMap<Id, mpsc::Sender<Vec<u8>>>>,
    /// 2026-07-28 `x-mcp-header` parameters learned from `tools/list`.
    tool_headers: ToolHeaders,
    /// Modern requests in flight, cancellable by closing their connection.
    cancels: Mutex<HashMap<Id, Arc<CancelHandle>>>,
    /// Numbers the bridge's own requests.
    next_internal: std::sync::atomic::AtomicU64,
}

/// What happened to a request sent over Streamable HTTP.
enum Sent {
    Done,
    /// The server looks like a legacy HTTP+SSE server (and the strategy allows falling back).
    FallBack(String),
}

impl Remote {
    pub fn new(config: Arc<Config>, http: Http, sink: Arc<dyn Sink>) -> Arc<Self> {
        let mode = match config.transport {
            TransportStrategy::HttpOnly => Mode::Streamable,
            _ => Mode::Undecided,
        };
        Arc::new(Self {
            state: Mutex::new(State {
                endpoint: config.url.clone(),
                session_id: None,
                protocol_version: None,
                initialize_id: None,
                client_initialize: None,
                server_identity: None,
                generation: 0,
                mode,
            }),
            config,
            http,
            sink,
            listener_started: AtomicBool::new(false),
            replay_lock: Mutex::new(()),
            internal: Mutex::new(HashMap::new()),
            tool_headers: ToolHeaders::default(),
            cancels: Mutex::new(HashMap::new()),
            next_internal: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `sse-first`/`sse-only`: open the legacy SSE stream before the first message is sent.
    /// With `sse-first`, a 400/404/405 answer switches to Streamable HTTP instead.
    pub fn prepare(self: &Arc<Self>) -> Result<(), Failure> {
        if !matches!(self.state().mode, Mode::Undecided) {
            return Ok(());
        }
        match self.config.transport {
            TransportStrategy::SseFirst | TransportStrategy::SseOnly => {}
            _ => return Ok(()),
        }
        match LegacyLink::connect(self) {
            Ok(link) => {
                self.state().mode = Mode::Legacy(link);
                Ok(())
            }
            Err(f)
                if self.config.transport == TransportStrategy::SseFirst
                    && matches!(f.status, Some(400 | 404 | 405)) =>
            {
                log::debug!("legacy SSE refused ({}); using Streamable HTTP", f.message);
                self.state().mode = Mode::Streamable;
                Ok(())
            }
            Err(f) => Err(f),
        }
    }

    /// Send a client request and see it answered: the server's response, or one error frame.
    /// Runs on a worker thread; returns the failure (already answered) for the caller's policy.
    pub fn request(self: &Arc<Self>, frame: Vec<u8>, info: &FrameInfo) -> Option<Failure> {
        self.request_then(frame, info, &|| {})
    }

    /// [`Remote::request`], calling `answered` as soon as the response was delivered: the worker
    /// may then keep reading the rest of the stream (so that its connection can be reused) without
    /// counting as a request in flight.
    pub fn request_then(
        self: &Arc<Self>,
        frame: Vec<u8>,
        info: &FrameInfo,
        answered: &dyn Fn(),
    ) -> Option<Failure> {
        let id = info.id.clone()?;
        match self.try_request(&frame, info, &id, answered) {
            Ok(()) => None,
            // Shutting down: the client closed stdin and waits for no answer; stay quiet.
            Err(_) if self.sink.stopped() => None,
            Err(failure) => {
                match &failure.frame {
                    Some(f) => self.sink.fail_with(&id, f.clone()),
                    None => self.sink.fail(&id, failure.code, &failure.message),
                }
                Some(failure)
            }
        }
    }

    fn try_request(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        answered: &dyn Fn(),
    ) -> Result<(), Failure> {
        let is_initialize = info.method.as_deref() == Some("initialize");
        if is_initialize {
            let mut state = self.state();
            state.initialize_id = Some(id.clone());
            state.client_initialize = Some(frame.to_vec());
        }
        let modern = is_modern(info);
        if modern {
            return self.modern_request(frame, info, id, answered);
        }
        let mode = self.state().mode.clone();
        match mode {
            Mode::Legacy(link) if !modern => {
                let link = self.live_legacy_link(link, is_initialize)?;
                link.post(self, frame, Some(id))
            }
            _ => {
                let may_fall_back = is_initialize
                    && !modern
                    && matches!(self.state().mode, Mode::Undecided)
                    && self.config.transport == TransportStrategy::HttpFirst;
                match self.post_with_session_recovery(frame, info, id, may_fall_back, answered)? {
                    Sent::Done => Ok(()),
                    Sent::FallBack(why) => {
                        log::info!("{why}: trying the legacy HTTP+SSE transport");
                        // If the fallback fails too, the POST's answer is the more telling error.
                        let link = LegacyLink::connect(self).map_err(|legacy| Failure {
                            message: format!(
                                "{why}, and the legacy HTTP+SSE fallback failed too ({})",
                                legacy.message
                            ),
                            ..legacy
                        })?;
                        self.state().mode = Mode::Legacy(Arc::clone(&link));
                        link.post(self, frame, Some(id))
                    }
                }
            }
        }
    }

    /// Send a notification or a response (to a server request) and wait until it is accepted.
    pub fn send(self: &Arc<Self>, frame: Vec<u8>, info: &FrameInfo) -> Result<(), Failure> {
        let mode = self.state().mode.clone();
        let generation = self.state().generation;
        let mut result = match mode {
            Mode::Legacy(link) if !is_modern(info) => link.post(self, &frame, None),
            _ => self.post_accepted(&frame, info),
        };
        if matches!(&result, Err(f) if f.session_gone) {
            log::info!("the server lost the session; starting a new one");
            self.reinitialize(generation)?;
            // The replay already sent notifications/initialized.
            if info.method.as_deref() != Some("notifications/initialized") {
                result = self.post_accepted(&frame, info);
            }
        }
        if info.method.as_deref() == Some("notifications/initialized") && result.is_ok() {
            self.start_listener();
        }
        result
    }

    /// POST a notification/response over Streamable HTTP: expect 202 (any 2xx is accepted).
    fn post_accepted(&self, frame: &[u8], info: &FrameInfo) -> Result<(), Failure> {
        let headers = self.post_headers(info, frame);
        let sent_session = headers.iter().any(|(k, _)| k == "Mcp-Session-Id");
        let resp = self.post(frame, &headers, Some(ACCEPT_TIMEOUT))?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        // Read the (empty) body to its end so that the connection can be reused.
        let body = read_short_body(resp);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let frame = jsonrpc::error_from_http(&Id::Num(0), status, ct.as_deref(), &body);
        Err(Failure {
            status: Some(status),
            session_gone: sent_session && is_session_gone(status, &body),
            ..Failure::new(
                jsonrpc::HTTP_ERROR,
                format!(
                    "server refused the message with HTTP {status}: {}",
                    excerpt(&frame)
                ),
            )
        })
    }

    /// POST a request over Streamable HTTP and deliver its reply.
    fn post_request(
        &self,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        may_fall_back: bool,
        answered: &dyn Fn(),
    ) -> Result<Sent, Failure> {
        let headers = self.post_headers(info, frame);
        let sent_session = headers.iter().any(|(k, _)| k == "Mcp-Session-Id");
        let resp = self.post(frame, &headers, None)?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp).unwrap_or_default();
        if info.method.as_deref() == Some("initialize") && (200..300).contains(&status) {
            self.adopt_session(&resp);
        }
        match status {
            202 => Err(Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                "server accepted the request (HTTP 202) but sent no response",
            )),
            200..=299 if ct.starts_with("text/event-stream") => {
                let mut stream = EventStream::new(decoded_body(resp));
                if may_fall_back {
                    // A legacy server may answer the POST with its SSE stream: first event `endpoint`.
                    return self.pump_first_checking_legacy(&mut stream, id, answered);
                }
                self.finish_stream(&mut stream, id, is_modern(info), answered)
                    .map(|()| Sent::Done)
            }
            200..=299 if ct.starts_with("application/json") => {
                self.deliver_json(resp, id).map(|()| Sent::Done)
            }
            200..=299 => {
                let body = read_short_body(resp);
                let shown = excerpt(&jsonrpc::error_from_http(id, status, Some(&ct), &body));
                let shown = shown
                    .split_once(": ")
                    .map_or("", |(_, rest)| rest)
                    .to_string();
                Err(Failure {
                    status: Some(status),
                    ..Failure::new(
                        jsonrpc::BAD_SERVER_RESPONSE,
                        format!(
                            "server answered HTTP {status} with content type '{ct}' instead of JSON or an event stream: {shown}"
                        ),
                    )
                })
            }
            _ => {
                let challenge = www_authenticate(&resp);
                let body = read_short_body(resp);
                let frame = error_frame(id, status, Some(&ct), challenge.as_deref(), &body);
                if let Some(why) = proxy_certificate_complaint(&body, &self.config) {
                    // nginx & co. answer a missing or bad client certificate with an HTML 400:
                    // a setup error, not a reason to try another transport.
                    return Err(Failure {
                        status: Some(status),
                        severity: Severity::Setup,
                        ..Failure::new(jsonrpc::HTTP_ERROR, why)
                    });
                }
                if may_fall_back && matches!(status, 400 | 404 | 405) && !is_modern_error(&body) {
                    return Ok(Sent::FallBack(format!(
                        "server answered the initialize POST with {}",
                        http_error_message(status, &frame)
                    )));
                }
                Err(Failure {
                    status: Some(status),
                    session_gone: sent_session && is_session_gone(status, &body),
                    frame: Some(frame.clone()),
                    ..Failure::new(jsonrpc::HTTP_ERROR, http_error_message(status, &frame))
                })
            }
        }
    }

    fn deliver_json(&self, resp: Response<Body>, id: &Id) -> Result<(), Failure> {
        let body = read_limited(decoded_body(resp), MAX_MESSAGE as u64).map_err(|e| {
            Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                format!("cannot read the server's JSON response: {e}"),
            )
        })?;
        match self.deliver(body) {
            Some(info) if info.kind == Kind::Response && info.id.as_ref() == Some(id) => Ok(()),
            Some(_) => Err(Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                "server's JSON reply does not answer this request",
            )),
            None => Err(Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                "server's JSON reply is not JSON-RPC",
            )),
        }
    }

    /// Classify a frame from the server, learn from it, and hand it to the sink.
    pub(super) fn deliver(&self, frame: Vec<u8>) -> Option<FrameInfo> {
        let info = match jsonrpc::classify(&frame) {
            Ok(info) => info,
            Err(e) => {
                log::warn!("dropping a message from the server that is not JSON-RPC: {e}");
                return None;
            }
        };
        let mut frame = frame;
        if info.kind == Kind::Response {
            self.observe_response(&frame, &info);
            frame = self.tool_headers.absorb(info.id.as_ref(), frame);
            if let Some(Id::Str(s)) = &info.id {
                if s.starts_with(BRIDGE_ID_PREFIX) {
                    let waiter = self
                        .internal
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(info.id.as_ref()?);
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(frame);
                        }
                        None => {
                            log::debug!("dropping a late answer to the bridge's own request {s}")
                        }
                    }
                    return Some(info);
                }
            }
        }
        self.sink.deliver(frame, &info);
        Some(info)
    }

    /// Learn the negotiated protocol version from the initialize result, before the client sees it.
    fn observe_response(&self, frame: &[u8], info: &FrameInfo) {
        let mut state = self.state();
        if state.initialize_id.is_none() || state.initialize_id != info.id {
            return;
        }
        state.initialize_id = None;
        if info.error_code.is_some() {
            return;
        }
        let transport = match state.mode {
            Mode::Legacy(_) => "legacy HTTP+SSE",
            _ => "Streamable HTTP",
        };
        if matches!(state.mode, Mode::Undecided) {
            state.mode = Mode::Streamable;
        }
        state.protocol_version = jsonrpc::initialize_result_version(frame);
        state.server_identity = serde_json::from_slice::<serde_json::Value>(frame)
            .ok()
            .map(|v| {
                format!(
                    "{}{}",
                    v["result"]["capabilities"], v["result"]["serverInfo"]
                )
            });
        log::info!(
            "connected to {} over {transport} (protocol {})",
            self.config.url,
            state.protocol_version.as_deref().unwrap_or("unknown")
        );
    }

    fn adopt_session(&self, resp: &Response<Body>) {
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        if let Some(sid) = sid {
            log::debug!("session established");
            self.state().session_id = Some(sid.to_string());
        }
    }

    /// Headers of a Streamable HTTP POST for this message.
    fn post_headers(&self, info: &FrameInfo, frame: &[u8]) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "Accept".to_string(),
                "application/json, text/event-stream".to_string(),
            ),
        ];
        match info
            .meta_protocol_version
            .as_deref()
            .filter(|v| modern::is_modern_version(v))
        {
            Some(version) => headers.push(("MCP-Protocol-Version".into(), version.to_string())),
            None => headers.extend(self.session_headers()),
        }
        headers.extend(
            modern::standard_headers(info)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        if is_modern(info) && info.method.as_deref() == Some("tools/call") {
            if let Some(tool) = &info.name {
                headers.extend(self.tool_headers.param_headers(tool, frame));
            }
        }
        headers
    }

    /// Session id and negotiated version, for every request after initialize (POST, GET, DELETE).
    fn session_headers(&self) -> Vec<(String, String)> {
        let state = self.state();
        let mut headers = Vec::new();
        if let Some(sid) = &state.session_id {
            headers.push(("Mcp-Session-Id".to_string(), sid.clone()));
        }
        if let Some(v) = &state.protocol_version {
            headers.push(("MCP-Protocol-Version".to_string(), v.clone()));
        }
        headers
    }

    /// POST to the endpoint, following same-origin 307/308 redirects (the endpoint moves with them).
    fn post(
        &self,
        body: &[u8],
        headers: &[(String, String)],
        recv_timeout: Option<Duration>,
    ) -> Result<Response<Body>, Failure> {
        let mut url = self.state().endpoint.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.exchange(Method::POST, &url, headers, body, recv_timeout)?;
            match redirect_target(&resp, &url)? {
                None => return Ok(resp),
                Some(next) => {
                    log::debug!("following redirect to {next}");
                    self.state().endpoint = next.clone();
                    url = next;
                }
            }
        }
        Err(Failure::new(
            jsonrpc::HTTP_ERROR,
            format!("too many redirects from {url}"),
        ))
    }

    /// One HTTP exchange with the user's extra headers; failures are diagnosed.
    pub(super) fn exchange<S: AsSendBody>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        body: S,
        recv_timeout: Option<Duration>,
    ) -> Result<Response<Body>, Failure> {
        self.exchange_with(method, url, headers, body, recv_timeout, None)
    }

    /// [`Remote::exchange`] with a bound on each read (`per_read`): an idle bound for streams.
    fn exchange_with<S: AsSendBody>(
        &self,
        method: Method,
        url: &Url,
        headers: &[(String, String)],
        body: S,
        recv_timeout: Option<Duration>,
        per_read: Option<Duration>,
    ) -> Result<Response<Body>, Failure> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(url.full.as_str());
        for (name, value) in headers.iter().chain(self.config.headers.iter()) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(body).map_err(|e| {
            Failure::new(
                jsonrpc::TRANSPORT_ERROR,
                format!("cannot build the HTTP request: {e}"),
            )
        })?;
        let request = self
            .http
            .agent
            .configure_request(request)
            .timeout_recv_response(recv_timeout)
            .timeout_per_read(per_read)
            .build();
        log::debug!("{method} {url}");
        self.http.agent.run(request).map_err(|e| {
            let d = diagnose(&e, &self.config);
            Failure {
                severity: d.severity,
                ..Failure::new(jsonrpc::TRANSPORT_ERROR, d.message)
            }
        })
    }

    /// End the session: DELETE it (Streamable HTTP with a session id; 405 is fine).
    pub fn close(&self, timeout: Duration) {
        let (mode, has_session, url) = {
            let s = self.state();
            (s.mode.clone(), s.session_id.is_some(), s.endpoint.clone())
        };
        if !matches!(mode, Mode::Streamable) || !has_session {
            return;
        }
        let headers = self.session_headers();
        match self.exchange(Method::DELETE, &url, &headers, (), Some(timeout)) {
            Ok(resp) => log::debug!("session closed (HTTP {})", resp.status().as_u16()),
            Err(f) => log::debug!("could not close the session: {}", f.message),
        }
    }

    /// The transport in use, for the test client's report: `Streamable HTTP`, `legacy HTTP+SSE`,
    /// or `undecided` while nothing has answered yet.
    pub fn transport_name(&self) -> &'static str {
        match self.state().mode {
            Mode::Undecided => "undecided",
            Mode::Streamable => "Streamable HTTP",
            Mode::Legacy(_) => "legacy HTTP+SSE",
        }
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }
}

/// A modern (2026-07-28) message: stateless, sent with its own headers, never via legacy SSE.
fn is_modern(info: &FrameInfo) -> bool {
    info.meta_protocol_version
        .as_deref()
        .is_some_and(modern::is_modern_version)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
