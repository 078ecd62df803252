//! Checks that the 2026-07-28 per-request HTTP headers (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`, `Mcp-Param-*`) mirror the JSON-RPC body, as a modern server must.
//!
//! Written independently of the bridge's own derivation (`src/modern.rs`): reusing it here would
//! let an encoding bug on one side hide the same bug on the other.

use base64ct::{Base64, Encoding};
use serde_json::Value;

use super::http::Request;

/// `_meta` key carrying a modern request's protocol version.
pub(super) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities (required on every modern request).
pub(super) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The modern protocol version a message declares in `params._meta`, if it declares one.
pub(super) fn declared_version(message: &Value) -> Option<&str> {
    message
        .get("params")?
        .get("_meta")?
        .get(META_VERSION)?
        .as_str()
}

/// Decodes a header value that may use the `=?base64?<b64>?=` form; `None` for a malformed
/// encoded form, or a plain value that is not visible ASCII (such values must be encoded).
pub(super) fn decode(value: &str) -> Option<String> {
    if let Some(b64) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        let bytes = Base64::decode_vec(b64).ok()?;
        return String::from_utf8(bytes).ok();
    }
    value
        .bytes()
        .all(|b| (0x20..=0x7E).contains(&b) || b == b'\t')
        .then(|| value.to_string())
}

/// Checks one header against the value the body implies (`None`: the header must be absent).
fn expect_header(req: &Request, name: &str, expected: Option<&str>) -> Result<(), String> {
    let got = req.header(name);
    match (got, expected) {
        (None, None) => Ok(()),
        (Some(got), None) => Err(format!(
            "header {name}: {got:?} is present but the body has no value for it"
        )),
        (None, Some(want)) => Err(format!("header {name} is missing (body has {want:?})")),
        (Some(got), Some(want)) => match decode(got) {
            Some(decoded) if decoded == want => Ok(()),
            Some(decoded) => Err(format!(
                "header {name}: {got:?} (decoded {decoded:?}) does not match the body's {want:?}"
            )),
            None => Err(format!(
                "header {name}: {got:?} is neither plain ASCII nor a valid =?base64?…?= value"
            )),
        },
    }
}

/// The header text a tool argument must be mirrored as; `None` when absent or null. `Err` for a
/// value of a type that cannot be mirrored (the tool's annotation is invalid: nothing to check).
fn mirrored(value: Option<&Value>) -> Result<Option<String>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(()),
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against the arguments, for every property
/// of the tool's `inputSchema` annotated with `x-mcp-header` on a primitive, non-`number` type.
fn check_param_headers(req: &Request, params: &Value, tools: &[Value]) -> Result<(), String> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let Some(tool) = tools.iter().find(|t| t["name"] == name) else {
        return Ok(()); // unknown tools fail later, as a tool error
    };
    let Some(properties) = tool
        .pointer("/inputSchema/properties")
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
    for (property, schema) in properties {
        let Some(header) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let mirrorable = matches!(
            schema.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        );
        if !mirrorable {
            continue; // an invalid annotation: clients drop such tools, nothing to enforce
        }
        let Ok(expected) = mirrored(arguments.get(property)) else {
            continue;
        };
        expect_header(req, &format!("mcp-param-{header}"), expected.as_deref())?;
    }
    Ok(())
}

/// Checks every header of a modern POST against its body; `Err` carries the HeaderMismatch
/// message. `method` is `None` for a response. `tools` is the modern tool list (for `x-mcp-header`).
pub(super) fn check(
    req: &Request,
    version: &str,
    method: Option<&str>,
    params: &Value,
    tools: &[Value],
) -> Result<(), String> {
    match req.header("mcp-protocol-version").map(str::trim) {
        Some(v) if v == version => {}
        Some(v) => {
            return Err(format!(
                "MCP-Protocol-Version header {v:?} does not match the body's {version:?}"
            ))
        }
        None => {
            return Err(format!(
                "MCP-Protocol-Version header is missing (body has {version:?})"
            ))
        }
    }
    let Some(method) = method else {
        return Ok(());
    };
    match req.header("mcp-method") {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(format!(
                "Mcp-Method header {m:?} does not match the body's {method:?}"
            ))
        }
        None => {
            return Err(format!(
                "Mcp-Method header is missing (body has {method:?})"
            ))
        }
    }
    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let name = params.get(field).and_then(Value::as_str);
        if name.is_none() {
            return Ok(()); // malformed params: the method itself reports -32602
        }
        expect_header(req, "mcp-name", name)?;
    }
    if method == "tools/call" {
        check_param_headers(req, params, tools)?;
    }
    Ok(())
}
