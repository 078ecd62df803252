//! MCP 2026-07-28 ("modern", stateless) requests on `/mcp`, served beside the handshake era like
//! the Python SDK server does: no session, per-request `_meta` version, the header checks of
//! `modern_headers`, `server/discover`, `subscriptions/listen`, and cancellation by closing the
//! response stream (recorded so tests can assert it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::faults::{self, PostFault};
use super::http::{reply, HttpConn, Next, Request, Response};
use super::mcp::{self, Call, Incoming, Outlet, RpcError};
use super::modern_headers::{self, META_CLIENT_CAPABILITIES};
use super::sse;
use super::state::State;
use super::tools;

/// The modern protocol versions this server speaks.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];

/// JSON-RPC error codes introduced by 2026-07-28.
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// `_meta` keys of modern results and subscription notifications.
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// How often an idle `subscriptions/listen` stream checks that the client is still there, and how
/// often it sends a keep-alive comment.
const LISTEN_CHECK: Duration = Duration::from_millis(100);
const LISTEN_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Whether an `MCP-Protocol-Version` header names a modern version (dates sort as strings).
pub(super) fn is_modern_header(req: &Request) -> bool {
    req.header("mcp-protocol-version")
        .is_some_and(|v| v.trim() >= MODERN_VERSIONS[0])
}

fn error_response(
    status: u16,
    id: &Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut body = mcp::error_body(id, code, message);
    if let Some(data) = data {
        body["error"]["data"] = data;
    }
    Response::json(status, &body)
}

fn server_info() -> Value {
    json!({"name": mcp::SERVER_NAME, "version": env!("CARGO_PKG_VERSION")})
}

/// The methods of the revision this server serves besides `server/discover` and
/// `subscriptions/listen` (2026-07-28 dropped `ping` and `logging/setLevel`; `initialize` is
/// the handshake era's).
const MODERN_METHODS: [&str; 7] = [
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
];

/// Results that carry caching hints (SEP-2549: `ttlMs` and `cacheScope` are required on them).
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
];

/// `ttlMs` of cacheable results: 0, immediately stale, because tests change the tool list at will.
const CACHE_TTL_MS: u64 = 0;

/// Adds what every modern result of `method` carries: `resultType`, the server's info in
/// `_meta`, and for cacheable results `ttlMs` and `cacheScope` (private: nothing is shared
/// between authorisation contexts).
fn complete(method: &str, mut result: Value) -> Value {
    if let Some(obj) = result.as_object_mut() {
        if CACHEABLE.contains(&method) {
            obj.entry("ttlMs").or_insert_with(|| json!(CACHE_TTL_MS));
            obj.entry("cacheScope").or_insert_with(|| json!("private"));
        }
        obj.entry("resultType").or_insert_with(|| json!("complete"));
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(META_SERVER_INFO.to_string(), server_info());
        }
    }
    result
}

/// The server's identity travels in `_meta` (added by `complete`), as the revision has it.
fn discover_result() -> Value {
    complete(
        "server/discover",
        json!({
            "supportedVersions": MODERN_VERSIONS,
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {},
                "prompts": {}
            },
            "instructions": "Test server for mcp-secure-remote (2026-07-28 mode)."
        }),
    )
}

/// Serves a POST whose body declares `version` in `params._meta`.
pub(super) fn post(
    state: &Arc<State>,
    http: &mut HttpConn,
    req: &Request,
    message: &Value,
    version: &str,
) -> Next {
    let incoming = mcp::classify(message);
    match faults::take(state, &incoming, false) {
        Some(PostFault::Respond(response)) => return reply(http, req, response),
        Some(PostFault::Drop) => return Next::Drop,
        Some(PostFault::CloseAfterPriming) | None => {}
    }
    let request_id = match &incoming {
        Incoming::Request { id, .. } => id.clone(),
        _ => Value::Null,
    };
    if !MODERN_VERSIONS.contains(&version) {
        let data = json!({"supported": MODERN_VERSIONS, "requested": version});
        let message = format!("Unsupported protocol version: {version}");
        let response = error_response(
            400,
            &request_id,
            UNSUPPORTED_PROTOCOL_VERSION,
            &message,
            Some(data),
        );
        return reply(http, req, response);
    }
    let (method, params) = match &incoming {
        Incoming::Request { method, params, .. } | Incoming::Notification { method, params } => {
            (Some(method.as_str()), params)
        }
        Incoming::Response { .. } => (None, &Value::Null),
        Incoming::Invalid => {
            let response = error_response(400, &Value::Null, -32600, "Invalid Request", None);
            return reply(http, req, response);
        }
    };
    if let Err(why) = modern_headers::check(req, version, method, params, &tools::modern_list()) {
        let message = format!("Header mismatch: {why}");
        let response = error_response(400, &request_id, HEADER_MISMATCH, &message, None);
        return reply(http, req, response);
    }
    let Incoming::Request { id, method, params } = incoming else {
        // Notifications and responses need no answer (and 2026-07-28 has no server requests).
        return reply(http, req, Response::empty(202));
    };
    if params
        .pointer("/_meta")
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .is_none()
    {
        let message = format!("Invalid params: _meta[\"{META_CLIENT_CAPABILITIES}\"] is required");
        return reply(http, req, error_response(400, &id, -32602, &message, None));
    }
    match method.as_str() {
        "server/discover" => {
            let body = mcp::response(&id, Ok(discover_result()));
            reply(http, req, Response::json(200, &body))
        }
        "subscriptions/listen" => listen(state, http, &id, &params),
        m if !MODERN_METHODS.contains(&m) => {
            let response = error_response(404, &id, -32601, "Method not found", None);
            reply(http, req, response)
        }
        _ => answer(state, http, req, id, &method, &params),
    }
}

fn sse_headers() -> Vec<(String, String)> {
    vec![
        ("Content-Type".to_string(), "text/event-stream".to_string()),
        ("Cache-Control".to_string(), "no-cache".to_string()),
        ("X-Accel-Buffering".to_string(), "no".to_string()),
    ]
}

/// Answers a request, as JSON (`json_response`) or as an SSE stream carrying progress and then
/// the response. A client that closes the stream before the response is recorded as a cancellation.
fn answer(
    state: &Arc<State>,
    http: &mut HttpConn,
    req: &Request,
    id: Value,
    method: &str,
    params: &Value,
) -> Next {
    if state.opts.json_response {
        let mut outlet = NoStream;
        let outcome = serve(state, &mut outlet, &id, method, params);
        return reply(http, req, Response::json(200, &mcp::response(&id, outcome)));
    }
    if http.start_stream(200, &sse_headers()).is_err() {
        return Next::Close;
    }
    let mut outlet = StreamOutlet {
        http: &mut *http,
        crlf: state.opts.crlf,
        gone: false,
    };
    let outcome = serve(state, &mut outlet, &id, method, params);
    let delivered =
        !outlet.gone && !outlet.http.client_gone() && outlet.related(&mcp::response(&id, outcome));
    if !delivered {
        state.record_cancelled_stream(&id);
        return Next::Close;
    }
    match http.end_stream() {
        Ok(()) if req.keep_alive => Next::KeepAlive,
        _ => Next::Close,
    }
}

fn serve(
    state: &State,
    outlet: &mut dyn Outlet,
    id: &Value,
    method: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    let mut call = Call {
        state,
        outlet,
        request_id: id,
    };
    mcp::handle_modern(&mut call, method, params).map(|result| complete(method, result))
}

/// `subscriptions/listen`: acknowledges, sends one `notifications/tools/list_changed`, then holds
/// the stream open (with keep-alive comments) until the client closes it or the server stops.
fn listen(state: &Arc<State>, http: &mut HttpConn, id: &Value, params: &Value) -> Next {
    if http.start_stream(200, &sse_headers()).is_err() {
        return Next::Close;
    }
    let crlf = state.opts.crlf;
    let meta = json!({ META_SUBSCRIPTION_ID: id });
    let acknowledged = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": meta, "notifications": params.get("notifications").cloned().unwrap_or(json!({}))}
    });
    let changed = json!({
        "jsonrpc": "2.0",
        "method": "notifications/tools/list_changed",
        "params": {"_meta": meta}
    });
    let mut outlet = StreamOutlet {
        http,
        crlf,
        gone: false,
    };
    outlet.related(&acknowledged);
    outlet.related(&changed);
    let mut next_keep_alive = Instant::now() + LISTEN_KEEP_ALIVE;
    loop {
        if state.stopping() {
            let _ = outlet.http.end_stream();
            return Next::Close;
        }
        if outlet.gone || outlet.http.client_gone() {
            state.record_cancelled_stream(id);
            return Next::Close;
        }
        if Instant::now() >= next_keep_alive {
            let comment = sse::comment("keep-alive", crlf);
            if outlet.http.write_chunk(comment.as_bytes()).is_err() {
                outlet.gone = true;
            }
            next_keep_alive = Instant::now() + LISTEN_KEEP_ALIVE;
        }
        std::thread::sleep(LISTEN_CHECK);
    }
}

/// A modern request's own SSE response stream. It is the only way to reach the client: there is
/// no standalone stream in 2026-07-28.
struct StreamOutlet<'a> {
    http: &'a mut HttpConn,
    crlf: bool,
    /// The client closed the stream (a write failed or the socket reads EOF).
    gone: bool,
}

impl Outlet for StreamOutlet<'_> {
    fn related(&mut self, message: &Value) -> bool {
        if !self.gone {
            let event = sse::message(None, &message.to_string(), self.crlf);
            self.gone = self.http.write_chunk(event.as_bytes()).is_err();
        }
        !self.gone
    }

    fn unrelated(&mut self, _message: &Value) -> bool {
        false
    }

    fn still_connected(&mut self) -> bool {
        if !self.gone {
            let comment = sse::comment("keep-alive", self.crlf);
            self.gone =
                self.http.client_gone() || self.http.write_chunk(comment.as_bytes()).is_err();
        }
        !self.gone
    }
}

/// For JSON answers: nothing but the response reaches the client.
struct NoStream;

impl Outlet for NoStream {
    fn related(&mut self, _message: &Value) -> bool {
        false
    }

    fn unrelated(&mut self, _message: &Value) -> bool {
        false
    }
}
