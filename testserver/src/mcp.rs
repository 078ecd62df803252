//! The MCP server proper, independent of the transport: JSON-RPC message classification, the
//! initialize negotiation, and the methods (tools, resources, prompts, ping) with pagination.

use serde_json::{json, Value};

use super::state::State;
use super::tools;

/// Protocol versions of the handshake era this server speaks.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";
pub const SERVER_NAME: &str = "mcp-secure-remote-test-server";

/// Where a request handler sends messages other than its response.
pub(super) trait Outlet {
    /// A message related to the request being served (progress, server→client requests): on the
    /// request's own SSE stream when it has one. False if it could not be sent anywhere.
    fn related(&mut self, message: &Value) -> bool;
    /// A message unrelated to any request: on the standalone GET stream. False if none is open.
    fn unrelated(&mut self, message: &Value) -> bool;
    /// Whether the client still holds the request's response stream. Only a 2026-07-28 stream
    /// can say no (closing it is the cancellation); in the handshake era a disconnect is not a
    /// cancellation, so the default is always yes.
    fn still_connected(&mut self) -> bool {
        true
    }
    /// Writes raw bytes on the request's own response stream, bypassing the event log (for
    /// floods and malformed events). False if there is no such stream or the client is gone.
    fn raw(&mut self, _bytes: &[u8]) -> bool {
        false
    }
    /// Whether the client closed the request's own response stream (false when it has none).
    fn peer_gone(&mut self) -> bool {
        false
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone)]
pub(super) struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }
}

/// What a client sent, by JSON-RPC shape.
#[derive(Debug, Clone)]
pub(super) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A response to a server→client request.
    Response {
        id: Value,
        message: Value,
    },
    Invalid,
}

pub(super) fn classify(message: &Value) -> Incoming {
    let Some(obj) = message.as_object() else {
        return Incoming::Invalid;
    };
    let id = obj.get("id").filter(|id| id.is_string() || id.is_number());
    let method = obj.get("method").and_then(Value::as_str);
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(method)) => Incoming::Request {
            id: id.clone(),
            method: method.to_string(),
            params,
        },
        (None, Some(method)) if !obj.contains_key("id") => Incoming::Notification {
            method: method.to_string(),
            params,
        },
        (Some(id), None) if obj.contains_key("result") || obj.contains_key("error") => {
            Incoming::Response {
                id: id.clone(),
                message: message.clone(),
            }
        }
        _ => Incoming::Invalid,
    }
}

/// A JSON-RPC response object for `id`.
pub(super) fn response(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => error_body(id, e.code, &e.message),
    }
}

/// A JSON-RPC error object for an HTTP error body; `id` may be `Value::Null`.
pub(super) fn error_body(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The version answered to an initialize that offered `requested`.
pub(super) fn negotiate(requested: Option<&str>, forced: Option<&'static str>) -> String {
    if let Some(forced) = forced {
        return forced.to_string();
    }
    match requested {
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => v.to_string(),
        _ => LATEST_VERSION.to_string(),
    }
}

pub(super) fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "resources": {"subscribe": true},
            "prompts": {},
            "logging": {}
        },
        "serverInfo": {"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Test server for mcp-secure-remote."
    })
}

/// Everything a method handler may use.
pub(super) struct Call<'a> {
    pub state: &'a State,
    pub outlet: &'a mut dyn Outlet,
    /// Id of the request being served, for cancellation checks.
    pub request_id: &'a Value,
}

/// Serves one request (other than `initialize`, which the transports handle themselves).
pub(super) fn handle(call: &mut Call<'_>, method: &str, params: &Value) -> Result<Value, RpcError> {
    let page_size = call.state.opts.page_size;
    match method {
        "ping" | "logging/setLevel" => Ok(json!({})),
        // The transport notes the subscription in the session (Session::note_setup).
        "resources/subscribe" | "resources/unsubscribe" => {
            match params.get("uri").and_then(Value::as_str) {
                Some(_) => Ok(json!({})),
                None => Err(RpcError::invalid_params(format!(
                    "{method} needs params.uri"
                ))),
            }
        }
        "tools/list" => paginate("tools", tools::list(), params, page_size),
        "tools/call" => tools::call(call, params),
        "resources/list" => paginate("resources", resources(), params, page_size),
        "resources/templates/list" => paginate("resourceTemplates", templates(), params, page_size),
        "resources/read" => read_resource(params),
        "prompts/list" => paginate("prompts", prompts(), params, page_size),
        "prompts/get" => get_prompt(params),
        "initialize" => Err(RpcError::new(
            -32600,
            "initialize may only be sent once per session",
        )),
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

/// Serves one 2026-07-28 request: like `handle`, but `tools/list` also shows the modern-only tools.
pub(super) fn handle_modern(
    call: &mut Call<'_>,
    method: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    match method {
        "tools/list" => paginate(
            "tools",
            tools::modern_list(),
            params,
            call.state.opts.page_size,
        ),
        "initialize" => Err(RpcError::new(
            -32601,
            "initialize does not exist in protocol version 2026-07-28",
        )),
        _ => handle(call, method, params),
    }
}

/// Methods `handle` serves (anything else is `-32601 Method not found`).
pub(super) const METHODS: [&str; 10] = [
    "ping",
    "logging/setLevel",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "initialize",
];

/// Slices a list per `params.cursor`; cursors are opaque `"page:<offset>"` strings.
fn paginate(
    key: &str,
    items: Vec<Value>,
    params: &Value,
    page_size: Option<usize>,
) -> Result<Value, RpcError> {
    let Some(size) = page_size.filter(|s| *s > 0) else {
        return Ok(json!({ key: items }));
    };
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(c) => c
            .as_str()
            .and_then(|c| c.strip_prefix("page:"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| RpcError::invalid_params(format!("Invalid cursor: {c}")))?,
    };
    let end = (start + size).min(items.len());
    let mut result = json!({ key: items[start..end].to_vec() });
    if end < items.len() {
        result["nextCursor"] = json!(format!("page:{end}"));
    }
    Ok(result)
}

fn resources() -> Vec<Value> {
    vec![json!({
        "uri": "test://hello",
        "name": "hello",
        "description": "A greeting",
        "mimeType": "text/plain"
    })]
}

fn templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": "test://greeting/{name}",
        "name": "greeting",
        "description": "A personal greeting",
        "mimeType": "text/plain"
    })]
}

fn read_resource(params: &Value) -> Result<Value, RpcError> {
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("resources/read needs params.uri"))?;
    let text = if uri == "test://hello" {
        "Hello, world!".to_string()
    } else if let Some(name) = uri.strip_prefix("test://greeting/") {
        format!("Hello, {name}!")
    } else {
        return Err(RpcError::new(-32002, format!("Resource not found: {uri}")));
    };
    Ok(json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": text}]}))
}

fn prompts() -> Vec<Value> {
    vec![json!({
        "name": "greet",
        "description": "Greets someone",
        "arguments": [{"name": "name", "description": "Who to greet", "required": true}]
    })]
}

fn get_prompt(params: &Value) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "greet" {
        return Err(RpcError::invalid_params(format!("Unknown prompt: {name}")));
    }
    let who = params
        .pointer("/arguments/name")
        .and_then(Value::as_str)
        .unwrap_or("stranger");
    Ok(json!({
        "description": "Greets someone",
        "messages": [{"role": "user", "content": {"type": "text", "text": format!("Please greet {who}.")}}]
    }))
}
