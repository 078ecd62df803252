//! The JSON-RPC messages both clients send, and the minimal reading of a reply: its id and
//! whether it is an error. The result itself is skipped, not built, so that reading a 5 MB reply
//! costs a scan and no allocation per field.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{excerpt, BenchError, Result};

/// The protocol version both clients offer.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

pub fn initialize(id: i64) -> String {
    initialize_as(id, PROTOCOL_VERSION)
}

/// initialize offering `version` (a legacy HTTP+SSE server speaks 2024-11-05).
pub fn initialize_as(id: i64, version: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}
        }
    })
    .to_string()
}

pub fn initialized() -> String {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()
}

pub fn tool_call(id: i64, name: &str, arguments: Value) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments}
    })
    .to_string()
}

pub fn echo(id: i64) -> String {
    tool_call(id, "echo", json!({"text": format!("bench {id}")}))
}

pub fn slow(id: i64, ms: u64) -> String {
    tool_call(id, "slow", json!({"ms": ms}))
}

pub fn big(id: i64, bytes: usize) -> String {
    tool_call(id, "big", json!({"bytes": bytes}))
}

pub fn ping(id: i64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string()
}

/// What a client sends when the user interrupts request `id`.
pub fn cancelled(id: i64) -> String {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": id, "reason": "bench: user interrupt"}
    })
    .to_string()
}

/// What the benchmark needs to know about a line or SSE `data:` payload.
#[derive(Deserialize)]
struct Envelope {
    id: Option<Value>,
    result: Option<IgnoredAny>,
    error: Option<Value>,
}

/// A response's id, or None for notifications and server requests (which are skipped).
/// A JSON-RPC error response is an error: every request the benchmark sends must succeed.
pub fn response_id(text: &str) -> Result<Option<i64>> {
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| BenchError::BadReply {
        what: format!("not a JSON-RPC message: {e}"),
        excerpt: excerpt(text),
    })?;
    let id = envelope.id.as_ref().and_then(Value::as_i64);
    if let Some(error) = envelope.error {
        return Err(BenchError::Rpc {
            method: format!("request {}", id.map_or("?".into(), |i| i.to_string())),
            error: error.to_string(),
        });
    }
    Ok(id.filter(|_| envelope.result.is_some()))
}
