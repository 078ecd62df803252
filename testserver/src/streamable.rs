//! MCP Streamable HTTP (2025-03-26 … 2025-11-25) at `/mcp`: POST (JSON or SSE answers, priming,
//! server→client requests), GET (standalone stream, `Last-Event-ID` resumption), DELETE, with the
//! session, protocol-version, Accept and Origin checks real servers make.

use std::sync::Arc;

use serde_json::Value;

use super::faults::{self, PostFault};
use super::http::{reply, HttpConn, Next, Request, Response};
use super::mcp::{self, Call, Incoming, Outlet, RpcError};
use super::modern;
use super::modern_headers;
use super::pump;
use super::sse;
use super::state::{Resume, State};
use super::{DiscoverMode, GetStream};

/// JSON-RPC error body with a null id, as servers send for HTTP-level rejections.
fn rejection(status: u16, message: &str) -> Response {
    Response::json(status, &mcp::error_body(&Value::Null, -32000, message))
}

/// Headers every response of a session carries.
fn session_headers(state: &State, session: &str) -> Vec<(String, String)> {
    if state.opts.sessions && !session.is_empty() {
        vec![("Mcp-Session-Id".to_string(), session.to_string())]
    } else {
        Vec::new()
    }
}

fn sse_headers(state: &State, session: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Content-Type".to_string(), "text/event-stream".to_string()),
        ("Cache-Control".to_string(), "no-cache".to_string()),
    ];
    headers.extend(session_headers(state, session));
    headers
}

pub(super) fn handle(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    if req.header("origin").is_some() {
        return reply(http, req, rejection(403, "Forbidden: Origin not allowed"));
    }
    if state.opts.modern && req.method != "POST" && modern::is_modern_header(req) {
        // 2026-07-28 is POST only: no standalone stream, no session to delete.
        let response = rejection(
            405,
            "Method Not Allowed: protocol version 2026-07-28 is POST only",
        );
        return reply(http, req, response.header("Allow", "POST"));
    }
    match req.method.as_str() {
        "POST" => post(state, http, req),
        "GET" => get(state, http, req),
        "DELETE" => delete(state, http, req),
        _ => reply(
            http,
            req,
            rejection(405, "Method not allowed.").header("Allow", "GET, POST, DELETE"),
        ),
    }
}

/// The session a non-initialize request belongs to (`""` when sessions are off), after checking
/// `Mcp-Session-Id` and `MCP-Protocol-Version`; or the rejection to send.
fn session_for(state: &State, req: &Request) -> Result<String, Response> {
    let header_version = req.header("mcp-protocol-version").map(str::trim);
    if !state.opts.sessions {
        if let Some(v) = header_version {
            if !mcp::SUPPORTED_VERSIONS.contains(&v) {
                return Err(rejection(
                    400,
                    &format!("Bad Request: Unsupported protocol version: {v}"),
                ));
            }
        }
        state.ensure_implicit_session(header_version.unwrap_or(mcp::LATEST_VERSION));
        return Ok(String::new());
    }
    let Some(id) = req.header("mcp-session-id") else {
        return Err(rejection(
            400,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    let Some(negotiated) = state.with_session(id, |s| s.protocol_version.clone()) else {
        return Err(rejection(
            state.opts.unknown_session_status,
            "Session not found",
        ));
    };
    match header_version {
        Some(v) if v != negotiated => Err(rejection(
            400,
            &format!("Bad Request: Unsupported protocol version: {v} (negotiated {negotiated})"),
        )),
        // From 2025-06-18 on, the header is mandatory on every request after initialize.
        None if negotiated.as_str() >= "2025-06-18" => Err(rejection(
            400,
            &format!(
                "Bad Request: MCP-Protocol-Version header is required (negotiated {negotiated})"
            ),
        )),
        _ => Ok(id.to_string()),
    }
}

fn post(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    let accept = req.header("accept").unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return reply(
            http,
            req,
            rejection(
                406,
                "Not Acceptable: Client must accept both application/json and text/event-stream",
            ),
        );
    }
    if !req
        .header("content-type")
        .unwrap_or("")
        .contains("application/json")
    {
        return reply(
            http,
            req,
            rejection(
                415,
                "Unsupported Media Type: Content-Type must be application/json",
            ),
        );
    }
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        let body = mcp::error_body(&Value::Null, -32700, "Parse error: Invalid JSON");
        return reply(http, req, Response::json(400, &body));
    };
    if message.is_array() {
        let body = mcp::error_body(
            &Value::Null,
            -32600,
            "Invalid Request: batches are not supported",
        );
        return reply(http, req, Response::json(400, &body));
    }
    if state.opts.modern {
        if let Some(version) = modern_headers::declared_version(&message) {
            let version = version.to_string();
            return modern::post(state, http, req, &message, &version);
        }
    }
    let incoming = mcp::classify(&message);
    if let Some(next) = faults::hold_or_delay(state, http, &incoming) {
        return next;
    }
    let mut close_after_priming = false;
    match faults::take(state, &incoming, true) {
        Some(PostFault::Respond(response)) => return reply(http, req, response),
        Some(PostFault::Drop) => return Next::Drop,
        Some(PostFault::CloseAfterPriming) => close_after_priming = true,
        None => {}
    }

    if let Incoming::Request { id, method, params } = &incoming {
        if method == "initialize" {
            let requested = params.get("protocolVersion").and_then(Value::as_str);
            let version = mcp::negotiate(requested, state.opts.negotiate_version);
            let session = if state.opts.sessions {
                state.new_token()
            } else {
                String::new()
            };
            state.create_session(&session, &version);
            let result = mcp::initialize_result(&version);
            return answer(
                state,
                http,
                req,
                &session,
                id.clone(),
                close_after_priming,
                move |_| Ok(result),
            );
        }
        if method == "server/discover" {
            return match state.opts.discover {
                DiscoverMode::Http400IdNull => reply(
                    http,
                    req,
                    rejection(400, "Bad Request: Server not initialized"),
                ),
                // Answered like any unknown method, whatever the session state.
                DiscoverMode::MethodNotFound => {
                    let body = mcp::error_body(id, -32601, "Method not found");
                    reply(http, req, Response::json(200, &body))
                }
            };
        }
    }

    let session = match session_for(state, req) {
        Ok(session) => session,
        Err(response) => return reply(http, req, response),
    };
    let accepted = Response::empty(202);
    let accepted = session_headers(state, &session)
        .into_iter()
        .fold(accepted, |r, (k, v)| r.header(&k, v));
    match incoming {
        Incoming::Notification { method, params } => {
            match method.as_str() {
                "notifications/initialized" => {
                    state.with_session(&session, |s| s.initialized = true);
                }
                "notifications/cancelled" => {
                    if let Some(id) = params.get("requestId") {
                        state.cancel(id);
                    }
                }
                _ => {}
            }
            reply(http, req, accepted)
        }
        Incoming::Response { id, message } => {
            state.deliver_reply(&id, message);
            reply(http, req, accepted)
        }
        Incoming::Request { id, method, params } => {
            let initialized = state
                .with_session(&session, |s| s.initialized)
                .unwrap_or(false);
            if !initialized && method != "ping" {
                let body = mcp::error_body(
                    &id,
                    -32000,
                    "Bad Request: request received before notifications/initialized",
                );
                return reply(http, req, Response::json(400, &body));
            }
            state.with_session(&session, |s| s.note_setup(&method, &params));
            answer(
                state,
                http,
                req,
                &session,
                id,
                close_after_priming,
                move |call| mcp::handle(call, &method, &params),
            )
        }
        Incoming::Invalid => {
            let body = mcp::error_body(&Value::Null, -32600, "Invalid Request");
            reply(http, req, Response::json(400, &body))
        }
    }
}

/// Answers a request: as one JSON object, as an SSE stream, or (CloseAfterPriming) as a primed SSE
/// stream that closes at once while the work goes on and its events wait for a resuming GET.
fn answer(
    state: &Arc<State>,
    http: &mut HttpConn,
    req: &Request,
    session: &str,
    id: Value,
    close_after_priming: bool,
    work: impl FnOnce(&mut Call<'_>) -> Result<Value, RpcError> + Send + 'static,
) -> Next {
    if state.opts.json_response && !close_after_priming {
        let mut outlet = ListeningOutlet { state, session };
        let outcome = work(&mut Call {
            state,
            outlet: &mut outlet,
            request_id: &id,
        });
        let mut response = Response::json(200, &mcp::response(&id, outcome));
        for (k, v) in session_headers(state, session) {
            response = response.header(&k, v);
        }
        return reply(http, req, response);
    }

    let Some(stream) = state.open_stream(session) else {
        return reply(
            http,
            req,
            rejection(state.opts.unknown_session_status, "Session not found"),
        );
    };
    // A client that closed the connection before the stream could even start (a cancel that
    // arrived while this thread was still on its way here) abandoned the stream just as much as
    // one that closes it later: record it, or a test of cancellations sees a leak that is not.
    if http
        .start_stream(200, &sse_headers(state, session))
        .is_err()
    {
        state.record_abandoned_stream(&id);
        return Next::Close;
    }
    let crlf = state.opts.crlf;
    if state.opts.priming || close_after_priming {
        let priming = sse::priming(&format!("{stream}-0"), state.opts.retry_ms, crlf);
        if http.write_chunk(priming.as_bytes()).is_err() {
            state.record_abandoned_stream(&id);
            return Next::Close;
        }
    }

    if close_after_priming {
        let closed = http.end_stream();
        let worker_state = Arc::clone(state);
        let session = session.to_string();
        state.spawn(move || {
            let state = &*worker_state;
            let mut outlet = StreamOutlet {
                state,
                session: &session,
                stream,
                live: None,
            };
            let outcome = work(&mut Call {
                state,
                outlet: &mut outlet,
                request_id: &id,
            });
            if !state.is_cancelled(&id) {
                outlet.related(&mcp::response(&id, outcome));
            }
        });
        return match closed {
            Ok(()) if req.keep_alive => Next::KeepAlive,
            _ => Next::Close,
        };
    }

    let mut outlet = StreamOutlet {
        state,
        session,
        stream,
        live: Some(http),
    };
    let outcome = work(&mut Call {
        state,
        outlet: &mut outlet,
        request_id: &id,
    });
    if !state.is_cancelled(&id) {
        outlet.related(&mcp::response(&id, outcome));
    }
    let ended = match outlet.live {
        Some(http) => http.end_stream().is_ok(),
        None => false,
    };
    if ended && req.keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Sends related messages on a POST's SSE stream; every event is also logged for replay. Once
/// the client is gone (or the stream was closed on purpose) events are only logged, and reach the
/// client through a `Last-Event-ID` GET.
struct StreamOutlet<'a> {
    state: &'a State,
    session: &'a str,
    stream: u64,
    live: Option<&'a mut HttpConn>,
}

impl Outlet for StreamOutlet<'_> {
    fn related(&mut self, message: &Value) -> bool {
        let data = message.to_string();
        let Some(id) = self.state.log_event(self.session, self.stream, &data) else {
            return false;
        };
        if let Some(http) = self.live.as_deref_mut() {
            let event = sse::message(Some(&id), &data, self.state.opts.crlf);
            if http.write_chunk(event.as_bytes()).is_err() {
                self.live = None;
            }
        }
        true
    }

    fn unrelated(&mut self, message: &Value) -> bool {
        self.state
            .send_listening(self.session, &message.to_string())
    }

    fn raw(&mut self, bytes: &[u8]) -> bool {
        let Some(http) = self.live.as_deref_mut() else {
            return false;
        };
        if http.write_chunk(bytes).is_err() {
            self.live = None;
            return false;
        }
        true
    }

    fn peer_gone(&mut self) -> bool {
        match self.live.as_deref_mut() {
            Some(http) => http.client_gone(),
            None => true,
        }
    }
}

/// For JSON answers: anything besides the response can only go on the standalone GET stream.
struct ListeningOutlet<'a> {
    state: &'a State,
    session: &'a str,
}

impl Outlet for ListeningOutlet<'_> {
    fn related(&mut self, message: &Value) -> bool {
        self.unrelated(message)
    }

    fn unrelated(&mut self, message: &Value) -> bool {
        self.state
            .send_listening(self.session, &message.to_string())
    }
}

fn get(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    if let GetStream::Status(status) = state.opts.get_stream {
        let mut response = rejection(status, "Method not allowed.");
        if status == 405 {
            response = response.header("Allow", "POST, DELETE");
        }
        return reply(http, req, response);
    }
    if !req
        .header("accept")
        .unwrap_or("")
        .contains("text/event-stream")
    {
        return reply(
            http,
            req,
            rejection(406, "Not Acceptable: Client must accept text/event-stream"),
        );
    }
    let session = match session_for(state, req) {
        Ok(session) => session,
        Err(response) => return reply(http, req, response),
    };
    let crlf = state.opts.crlf;

    if let Some(last_event_id) = req.header("last-event-id") {
        let (replay, outbox, listening) = match state.resume(&session, last_event_id) {
            None => {
                let status = state.opts.unknown_session_status;
                return reply(http, req, rejection(status, "Session not found"));
            }
            Some(Resume::UnknownEvent) => {
                return reply(
                    http,
                    req,
                    rejection(400, "Bad Request: unknown Last-Event-ID"),
                );
            }
            Some(Resume::Stream {
                replay,
                rx,
                listening,
            }) => (replay, rx, listening),
        };
        if http
            .start_stream(200, &sse_headers(state, &session))
            .is_err()
        {
            return Next::Close;
        }
        let mut next = Next::KeepAlive;
        for out in &replay {
            if !pump::write(http, out, crlf) {
                next = Next::Close;
                break;
            }
        }
        if next == Next::KeepAlive {
            next = pump::pump(state, http, &outbox);
        }
        if let Some(token) = listening {
            state.close_listening(&session, token);
        }
        return keep_if(next, req);
    }

    let (stream, token, outbox) = match open_listening_patiently(state, &session) {
        None => {
            let status = state.opts.unknown_session_status;
            return reply(http, req, rejection(status, "Session not found"));
        }
        Some(Err(())) => {
            return reply(
                http,
                req,
                rejection(409, "Conflict: Only one SSE stream is allowed per session"),
            );
        }
        Some(Ok(opened)) => opened,
    };
    let mut next = Next::Close;
    if http
        .start_stream(200, &sse_headers(state, &session))
        .is_ok()
    {
        let primed = !state.opts.priming
            || http
                .write_chunk(
                    sse::priming(&format!("{stream}-0"), state.opts.retry_ms, crlf).as_bytes(),
                )
                .is_ok();
        if primed {
            next = pump::pump(state, http, &outbox);
        }
    }
    state.close_listening(&session, token);
    keep_if(next, req)
}

/// Opens the standalone stream, giving an existing one a moment to turn out dead: a client that
/// reconnects right after its stream broke must not get 409 because the server noticed late.
#[allow(clippy::type_complexity)]
fn open_listening_patiently(
    state: &State,
    session: &str,
) -> Option<Result<(u64, u64, std::sync::mpsc::Receiver<super::state::Outbound>), ()>> {
    let deadline = std::time::Instant::now() + pump::IDLE_CHECK * 3;
    loop {
        match state.open_listening(session) {
            Some(Err(())) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            other => return other,
        }
    }
}

fn keep_if(next: Next, req: &Request) -> Next {
    match next {
        Next::KeepAlive if req.keep_alive => Next::KeepAlive,
        Next::KeepAlive => Next::Close,
        other => other,
    }
}

fn delete(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    if !state.opts.sessions {
        return reply(
            http,
            req,
            rejection(405, "Method not allowed.").header("Allow", "GET, POST"),
        );
    }
    match session_for(state, req) {
        Ok(session) => {
            state.remove_session(&session);
            reply(http, req, Response::empty(200))
        }
        Err(response) => reply(http, req, response),
    }
}
