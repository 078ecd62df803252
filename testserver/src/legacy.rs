//! The legacy HTTP+SSE transport (2024-11-05), shaped like the TypeScript SDK's: `GET /sse` sends an
//! `endpoint` event naming `/message?sessionId=<id>`; POSTs there get `202 Accepted` (text) and
//! every response travels back as an SSE `message` event.

use std::sync::Arc;

use serde_json::Value;

use super::faults::{self, PostFault};
use super::http::{reply, HttpConn, Next, Request, Response};
use super::mcp::{self, Call, Incoming, Outlet};
use super::pump;
use super::sse;
use super::state::{Outbound, State};
use super::Fault;

/// Path of the POST endpoint announced in the `endpoint` event.
const MESSAGE_PATH: &str = "/message";

/// Serves `GET /sse`: announces the POST endpoint, then relays the session's outbox.
pub(super) fn sse_stream(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    let id = state.new_token();
    let outbox = state.open_legacy(&id);
    let headers = [
        ("Content-Type".to_string(), "text/event-stream".to_string()),
        ("Cache-Control".to_string(), "no-cache".to_string()),
    ];
    let endpoint = sse::encode(
        &sse::Event {
            event: Some("endpoint"),
            data: &match state.opts.legacy_endpoint_query {
                Some(extra) => format!("{MESSAGE_PATH}?sessionId={id}&{extra}"),
                None => format!("{MESSAGE_PATH}?sessionId={id}"),
            },
            ..sse::Event::default()
        },
        state.opts.crlf,
    );
    let end_after_endpoint = state
        .take_fault(|f| matches!(f, Fault::EndNextLegacyStreamAfterEndpoint))
        .is_some();
    // Without the endpoint event (legacy_endpoint_event off) the stream opens and stays silent.
    let next = if http.start_stream(200, &headers).is_ok()
        && (!state.opts.legacy_endpoint_event || http.write_chunk(endpoint.as_bytes()).is_ok())
    {
        if end_after_endpoint {
            state.close_legacy(&id);
            let _ = http.end_stream();
            return Next::Close;
        }
        pump::pump(state, http, &outbox)
    } else {
        Next::Close
    };
    state.close_legacy(&id);
    match next {
        Next::KeepAlive if req.keep_alive => Next::KeepAlive,
        Next::KeepAlive => Next::Close,
        other => other,
    }
}

/// Serves `POST /message?sessionId=<id>`.
pub(super) fn message(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    let Some(session) = req.query_param("sessionId").map(str::to_string) else {
        return reply(
            http,
            req,
            Response::text(400, "Missing sessionId parameter"),
        );
    };
    if state.with_legacy(&session, |_| ()).is_none() {
        return reply(http, req, Response::text(404, "Session not found"));
    }
    let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
        return reply(http, req, Response::text(400, "Invalid message: not JSON"));
    };
    let incoming = mcp::classify(&message);
    if let Some(next) = faults::hold_or_delay(state, http, &incoming) {
        return next;
    }
    match faults::take(state, &incoming, false) {
        Some(PostFault::Respond(response)) => return reply(http, req, response),
        Some(PostFault::Drop) => return Next::Drop,
        Some(PostFault::CloseAfterPriming) | None => {}
    }
    let accepted = Response::text(202, "Accepted");
    match incoming {
        Incoming::Notification { method, params } => {
            match method.as_str() {
                "notifications/initialized" => {
                    state.with_legacy(&session, |s| s.initialized = true);
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
            // Acknowledge first; the answer travels on the SSE stream, from a worker, so that slow
            // tools and server→client requests do not block this connection.
            let next = reply(http, req, accepted);
            let worker_state = Arc::clone(state);
            state.spawn(move || serve_request(&worker_state, &session, id, &method, &params));
            next
        }
        Incoming::Invalid => reply(
            http,
            req,
            Response::text(400, "Invalid message: not JSON-RPC"),
        ),
    }
}

fn serve_request(state: &State, session: &str, id: Value, method: &str, params: &Value) {
    let mut outlet = LegacyOutlet { state, session };
    let outcome = if method == "initialize" {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        Ok(mcp::initialize_result(&mcp::negotiate(
            requested,
            state.opts.negotiate_version,
        )))
    } else if method != "ping"
        && !state
            .with_legacy(session, |s| s.initialized)
            .unwrap_or(false)
    {
        Err(mcp::RpcError::new(
            -32000,
            "Bad Request: request received before notifications/initialized",
        ))
    } else {
        mcp::handle(
            &mut Call {
                state,
                outlet: &mut outlet,
                request_id: &id,
            },
            method,
            params,
        )
    };
    if !state.is_cancelled(&id) {
        outlet.related(&mcp::response(&id, outcome));
    }
}

/// Everything goes on the session's one SSE stream.
struct LegacyOutlet<'a> {
    state: &'a State,
    session: &'a str,
}

impl Outlet for LegacyOutlet<'_> {
    fn related(&mut self, message: &Value) -> bool {
        let out = Outbound {
            id: None,
            data: message.to_string(),
        };
        self.state
            .with_legacy(self.session, |s| s.outbox.send(out).is_ok())
            .unwrap_or(false)
    }

    fn unrelated(&mut self, message: &Value) -> bool {
        self.related(message)
    }
}
