//! The remote MCP server as the bridge sees it: one session, over Streamable HTTP or the legacy
//! HTTP+SSE transport, chosen by the `--transport` strategy with the client's own `initialize` as
//! the probe. Every HTTP-only artefact lives here: session id, negotiated protocol version, the
//! 2026-07-28 per-message headers, same-origin redirects, SSE resumption, and the mapping of HTTP
//! failures to JSON-RPC errors for the request that caused them.

mod answers;
mod modern_era;
mod recovery;
mod streams;

use crate::sync::lock;
use answers::*;
use recovery::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use ureq::http::{Method, Response};
use ureq::Body;

use super::budget::{Budget, Held};
use super::error::TransportError;
use super::events::{pump, read_message, EventStream, Limits, Message, Pumped};
use super::exchange::{Exchange, Waits};
use super::legacy::{LegacyLink, LinkHandlers};
use super::session::Session;
use super::sink::Sink;
use super::stop::Stop;
use super::tool_filter::ToolFilter;
use super::tool_headers::ToolHeaders;
use crate::config::{Config, TransportStrategy, Url};
use crate::http::cancel;
use crate::http::encoding::decoded_body;
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
/// The longest value mirrored into an `Mcp-Name`/`Mcp-Param-*` header. Proxies commonly refuse
/// header lines over 8 KiB (nginx's default `large_client_header_buffers`), and the whole head
/// must fit ureq's 16 KiB output buffer.
const MAX_MIRRORED_VALUE: usize = 4096;
/// The start of the ids of the bridge's own requests (followed by a per-process random part).
const BRIDGE_ID_PREFIX: &str = "mcp-secure-remote:";

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
    session: Session,
    mode: Mode,
}

pub struct Remote {
    config: Arc<Config>,
    exchange: Exchange,
    limits: Limits,
    sink: Arc<dyn Sink>,
    /// Shutdown as the owner sees it: every wait here watches it.
    stop: Arc<Stop>,
    /// Held while the legacy SSE stream is first opened (`--transport sse-first`/`sse-only`), so
    /// that concurrent first messages wait for one connection instead of opening several.
    prepared: Mutex<bool>,
    state: Mutex<State>,
    listener_started: AtomicBool,
    /// Serialises session replays.
    replay_lock: Mutex<()>,
    /// Waiters for responses to the bridge's own requests, by exact id. A client id that merely
    /// looks like one of them (same prefix) is the client's: only ids in this map are the bridge's.
    internal: Mutex<HashMap<Id, mpsc::SyncSender<Vec<u8>>>>,
    /// 2026-07-28 `x-mcp-header` parameters learned from `tools/list`.
    tool_headers: ToolHeaders,
    /// `--ignore-tool` / `--allow-tool`.
    tool_filter: ToolFilter,
    /// Numbers the bridge's own requests.
    next_internal: std::sync::atomic::AtomicU64,
    /// A random part of the bridge's own ids, so that no client id can be one by accident.
    id_nonce: u64,
}

/// What happened to a request sent over Streamable HTTP.
enum Sent {
    Done,
    /// The server looks like a legacy HTTP+SSE server (and the strategy allows falling back).
    FallBack(String),
}

impl Remote {
    pub fn new(
        config: Arc<Config>,
        http: Http,
        sink: Arc<dyn Sink>,
        stop: Arc<Stop>,
        budget: Arc<Budget>,
    ) -> Arc<Self> {
        let mode = match config.transport {
            TransportStrategy::HttpOnly => Mode::Streamable,
            _ => Mode::Undecided,
        };
        Arc::new(Self {
            state: Mutex::new(State {
                endpoint: config.url.clone(),
                session: Session::default(),
                mode,
            }),
            limits: Limits {
                max_message: config.max_message,
                budget,
            },
            exchange: Exchange::new(Arc::clone(&config), http.clone())
                .with_auth(crate::oauth::authorizer_for(&config, &http, &stop)),
            tool_filter: ToolFilter::new(&config.tools),
            config,
            sink,
            stop,
            prepared: Mutex::new(false),
            listener_started: AtomicBool::new(false),
            replay_lock: Mutex::new(()),
            internal: Mutex::new(HashMap::new()),
            tool_headers: ToolHeaders::default(),
            next_internal: std::sync::atomic::AtomicU64::new(0),
            id_nonce: random_u64(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// For `sse-first`/`sse-only`: open the legacy SSE stream before the first message is sent
    /// (once; later calls return at once). With `sse-first`, a 400/404/405 answer switches to
    /// Streamable HTTP instead. Runs on the thread that sends the first message, never the
    /// dispatcher's.
    pub fn prepare(self: &Arc<Self>) -> Result<(), TransportError> {
        let mut prepared = lock(&self.prepared);
        if *prepared {
            return Ok(());
        }
        self.open_legacy_first()?;
        *prepared = true;
        Ok(())
    }

    fn open_legacy_first(self: &Arc<Self>) -> Result<(), TransportError> {
        if !matches!(self.state().mode, Mode::Undecided) {
            return Ok(());
        }
        match self.config.transport {
            TransportStrategy::SseFirst | TransportStrategy::SseOnly => {}
            _ => return Ok(()),
        }
        match self.connect_legacy() {
            Ok(link) => {
                self.state().mode = Mode::Legacy(link);
                Ok(())
            }
            Err(f) if self.config.transport == TransportStrategy::SseFirst && f.may_fall_back() => {
                log::debug!(
                    "legacy SSE refused ({}); using Streamable HTTP",
                    f.message()
                );
                self.state().mode = Mode::Streamable;
                Ok(())
            }
            Err(f) => Err(f),
        }
    }

    /// Send a client request and see it answered: the server's response, or one error frame.
    /// Runs on a worker thread; returns the failure (already answered) for the caller's policy.
    pub fn request(self: &Arc<Self>, frame: Vec<u8>, info: &FrameInfo) -> Option<TransportError> {
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
    ) -> Option<TransportError> {
        let id = info.id.clone()?;
        match info.method.as_deref() {
            Some("tools/call") => {
                // A call without a readable name is the server's to refuse.
                let name = info.name.as_deref().unwrap_or_default();
                if info.name.is_some() && !self.tool_filter.allows(name) {
                    // Never sent: the server would run it, and the user asked for it to be hidden.
                    let message = self.tool_filter.refusal(name);
                    log::info!("request {}: {message}", id.to_json());
                    let frame =
                        jsonrpc::error_response(Some(&id), jsonrpc::INVALID_PARAMS, &message, None);
                    self.sink.fail_with(&id, frame);
                    return None;
                }
            }
            Some("tools/list") => self.tool_filter.expect_list(&id),
            _ => {}
        }
        let outcome = self
            .prepare()
            .and_then(|()| self.try_request(&frame, info, &id, answered));
        if outcome.is_err() {
            // No answer from the server is coming: stop watching for a listing.
            self.tool_filter.forget(&id);
        }
        match outcome {
            Ok(()) => None,
            // Shutting down: the client closed stdin and waits for no answer; stay quiet.
            Err(_) if self.stop.is_stopped() => None,
            // The client cancelled it: no answer is owed (a late one would be dropped anyway).
            Err(_) if cancel::current_is_cancelled() => {
                log::debug!("request {} ended by its cancellation", id.to_json());
                None
            }
            Err(failure) => {
                match failure.server_frame() {
                    Some(_) => self.sink.fail_with(&id, failure.answer(&id)),
                    None => self.sink.fail(&id, failure.code(), failure.message()),
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
    ) -> Result<(), TransportError> {
        let is_initialize = info.method.as_deref() == Some("initialize");
        let modern = modern::is_modern_request(info);
        if modern {
            // The authorization extensions the bridge runs for the client are declared too.
            let declared = self
                .exchange
                .authorizer()
                .and_then(|auth| auth.declare_extensions(frame));
            let frame = declared.as_deref().unwrap_or(frame);
            return self.modern_request(frame, info, id, answered);
        }
        self.state().session.client_request(info, frame);
        let mode = self.state().mode.clone();
        match mode {
            Mode::Legacy(link) if !modern => {
                let link = self.live_legacy_link(link, is_initialize)?;
                link.post(&self.exchange, frame, Some(id))
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
                        let link = self.connect_legacy().map_err(|legacy| {
                            legacy.with_context(|m| {
                                format!("{why}, and the legacy HTTP+SSE fallback failed too ({m})")
                            })
                        })?;
                        self.state().mode = Mode::Legacy(Arc::clone(&link));
                        link.post(&self.exchange, frame, Some(id))
                    }
                }
            }
        }
    }

    /// Send a notification or a response (to a server request) and wait until it is accepted.
    pub fn send(self: &Arc<Self>, frame: Vec<u8>, info: &FrameInfo) -> Result<(), TransportError> {
        self.prepare()?;
        let mode = self.state().mode.clone();
        let generation = self.state().session.generation;
        let mut result = match mode {
            Mode::Legacy(link) if !modern::is_modern_request(info) => {
                link.post(&self.exchange, &frame, None)
            }
            _ => self.post_accepted(&frame, info),
        };
        if matches!(&result, Err(f) if f.session_gone()) && !self.stop.is_closing() {
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
    fn post_accepted(&self, frame: &[u8], info: &FrameInfo) -> Result<(), TransportError> {
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
        Err(TransportError::Http {
            status: Some(status),
            message: format!(
                "server refused the message with HTTP {status}: {}",
                excerpt(&frame)
            ),
            frame: None,
            session_gone: sent_session && is_session_gone(status, &body),
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
    ) -> Result<Sent, TransportError> {
        let headers = self.post_headers(info, frame);
        let sent_session = headers.iter().any(|(k, _)| k == "Mcp-Session-Id");
        let resp = self.post(frame, &headers, None)?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp).unwrap_or_default();
        if info.method.as_deref() == Some("initialize") && (200..300).contains(&status) {
            self.adopt_session(&resp);
        }
        match status {
            202 => Err(TransportError::BadResponse(
                "server accepted the request (HTTP 202) but sent no response".into(),
            )),
            200..=299 if ct.starts_with("text/event-stream") => {
                let mut stream = EventStream::new(decoded_body(resp), &self.limits);
                if may_fall_back {
                    // A legacy server may answer the POST with its SSE stream: first event `endpoint`.
                    return self.pump_first_checking_legacy(&mut stream, id, answered);
                }
                self.finish_stream(&mut stream, id, modern::is_modern_request(info), answered)
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
                Err(TransportError::BadResponse(format!(
                            "server answered HTTP {status} with content type '{ct}' instead of JSON or an event stream: {shown}"
                        )))
            }
            _ => {
                let challenge = www_authenticate(&resp);
                let body = read_short_body(resp);
                let frame = error_frame(
                    id,
                    status,
                    Some(&ct),
                    challenge.as_deref(),
                    &body,
                    self.exchange.sends_user_authorization(),
                );
                if let Some(why) = proxy_certificate_complaint(&body, &self.config) {
                    // nginx & co. answer a missing or bad client certificate with an HTML 400:
                    // a setup error, not a reason to try another transport.
                    return Err(TransportError::CertificateRefused {
                        status,
                        message: why,
                    });
                }
                if may_fall_back && matches!(status, 400 | 404 | 405) && !is_modern_error(&body) {
                    return Ok(Sent::FallBack(format!(
                        "server answered the initialize POST with {}",
                        http_error_message(status, &frame)
                    )));
                }
                Err(TransportError::Http {
                    status: Some(status),
                    message: (http_error_message(status, &frame)),
                    frame: Some(frame.clone()),
                    session_gone: sent_session && is_session_gone(status, &body),
                })
            }
        }
    }

    fn deliver_json(&self, resp: Response<Body>, id: &Id) -> Result<(), TransportError> {
        let message = read_message(decoded_body(resp), &self.limits)
            .map_err(|e| TransportError::BadResponse(e.to_string()))?;
        match self.deliver(message) {
            Some(info) if info.kind == Kind::Response && info.id.as_ref() == Some(id) => Ok(()),
            Some(_) => Err(TransportError::BadResponse(
                "server's JSON reply does not answer this request".into(),
            )),
            None => Err(TransportError::BadResponse(
                "server's JSON reply is not JSON-RPC".into(),
            )),
        }
    }

    /// Classify a frame from the server, learn from it, and hand it to the sink (or to the
    /// bridge's own request that waits for it).
    pub(super) fn deliver(&self, message: Message) -> Option<FrameInfo> {
        let Message { frame, held } = message;
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
            frame = self.tool_filter.absorb(info.id.as_ref(), frame);
            let waiter = info
                .id
                .as_ref()
                .and_then(|id| lock(&self.internal).remove(id));
            if let Some(tx) = waiter {
                let _ = tx.try_send(frame);
                return Some(info);
            }
        }
        self.sink.deliver(frame, held, &info);
        Some(info)
    }

    /// A fresh id for a request of the bridge's own (`what` says what for, in logs).
    pub(super) fn internal_id(&self, what: &str) -> Id {
        let n = self.next_internal.fetch_add(1, Ordering::Relaxed);
        Id::Str(format!(
            "{BRIDGE_ID_PREFIX}{:016x}:{what}-{n}",
            self.id_nonce
        ))
    }

    /// Open the legacy HTTP+SSE link: its messages come back here, its lost requests fail.
    pub(super) fn connect_legacy(self: &Arc<Self>) -> Result<Arc<LegacyLink>, TransportError> {
        let remote = Arc::downgrade(self);
        let sink = Arc::clone(&self.sink);
        let handlers = LinkHandlers {
            deliver: Box::new(move |message| remote.upgrade()?.deliver(message)),
            fail: Box::new(move |id| {
                sink.fail(
                    id,
                    jsonrpc::STREAM_ENDED,
                    "the server's SSE stream closed before the response",
                )
            }),
        };
        LegacyLink::connect(
            &self.exchange,
            &self.limits,
            Arc::clone(&self.stop),
            handlers,
        )
    }

    /// Learn the negotiated protocol version from the initialize result, before the client sees it.
    fn observe_response(&self, frame: &[u8], info: &FrameInfo) {
        let mut state = self.state();
        if !state.session.response(info, frame) {
            return;
        }
        let transport = match state.mode {
            Mode::Legacy(_) => "legacy HTTP+SSE",
            _ => "Streamable HTTP",
        };
        if matches!(state.mode, Mode::Undecided) {
            state.mode = Mode::Streamable;
        }
        log::info!(
            "connected to {} over {transport} (protocol {})",
            self.config.url,
            state
                .session
                .protocol_version
                .as_deref()
                .unwrap_or("unknown")
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
            self.state().session.id = Some(sid.to_string());
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
        // The 2026-07-28 mirrored headers belong to that era: a modern message, or one sent
        // before any handshake-era session negotiated its version. In a 2025 session they are
        // noise at best, and a 20 kB resource URI in `Mcp-Name` broke the request.
        let modern = modern::is_modern_request(info);
        if modern || self.state().session.protocol_version.is_none() {
            let mut mirrored: Vec<(String, String)> = modern::standard_headers(info)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if modern && info.method.as_deref() == Some("tools/call") {
                if let Some(tool) = &info.name {
                    mirrored.extend(self.tool_headers.param_headers(tool, frame));
                }
            }
            headers.extend(mirrored.into_iter().filter(|(name, value)| {
                // A value too long for a header is left out: the body carries it anyway, and a
                // request whose body is fine is never refused by the bridge for a header.
                let fits = value.len() <= MAX_MIRRORED_VALUE;
                if !fits {
                    log::debug!(
                        "{name} left out: its value is {} bytes (more than {MAX_MIRRORED_VALUE})",
                        value.len()
                    );
                }
                fits
            }));
        }
        headers
    }

    /// Session id and negotiated version, for every request after initialize (POST, GET, DELETE).
    fn session_headers(&self) -> Vec<(String, String)> {
        self.state().session.headers()
    }

    /// POST to the endpoint, following same-origin 307/308 redirects (the endpoint moves with them).
    fn post(
        &self,
        body: &[u8],
        headers: &[(String, String)],
        recv_timeout: Option<Duration>,
    ) -> Result<Response<Body>, TransportError> {
        let url = self.state().endpoint.clone();
        let waits = Waits {
            response: recv_timeout,
            per_read: None,
        };
        let (resp, final_url) = self
            .exchange
            .follow(Method::POST, &url, headers, body, waits)?;
        if final_url != url {
            self.state().endpoint = final_url;
        }
        Ok(resp)
    }

    /// End the session: DELETE it (Streamable HTTP with a session id; 405 is fine).
    pub fn close(&self, timeout: Duration) {
        let (mode, has_session, url) = {
            let s = self.state();
            (s.mode.clone(), s.session.id.is_some(), s.endpoint.clone())
        };
        if !matches!(mode, Mode::Streamable) || !has_session {
            return;
        }
        let headers = self.session_headers();
        let waits = Waits::response(timeout);
        match self
            .exchange
            .once(Method::DELETE, &url, &headers, (), waits)
        {
            Ok(resp) => log::debug!("session closed (HTTP {})", resp.status().as_u16()),
            Err(f) => log::debug!("could not close the session: {}", f.message()),
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

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The OAuth authorization obtained for this server, for the test client's report.
    pub fn authorization(&self) -> Option<crate::oauth::authorizer::Status> {
        self.exchange.authorizer().and_then(|a| a.status())
    }

    /// Tools hidden from the listings so far (`--ignore-tool`/`--allow-tool`), for the report.
    pub fn hidden_tools(&self) -> Vec<String> {
        self.tool_filter.hidden()
    }
}

/// 64 random bits from the standard library's per-process hash keys (seeded by the OS).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}
