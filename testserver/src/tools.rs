//! The test server's tools: each exercises one bridge path (plain result, progress, large body,
//! server→client request, standalone-stream notification, tool error, pagination filler), plus
//! the 2026-07-28 tools whose arguments are mirrored into `Mcp-Param-*` headers.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::mcp::{Call, RpcError};

/// Number of filler tools `tool-1`…`tool-N`, so that small page sizes give several pages.
const FILLER_TOOLS: usize = 5;
/// Upper bounds on client-chosen sizes, so that no input can exhaust memory or overflow.
const MAX_BIG_BYTES: u64 = 64 * 1024 * 1024;
const MAX_STEPS: u64 = 10_000;
/// How long `ask` waits for the client's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `slow` checks that the client still holds the response stream (2026-07-28: closing
/// it is the cancellation).
const LIVENESS_CHECK: Duration = Duration::from_millis(100);

/// The text `big {bytes}` returns: `bytes` characters cycling through `a`–`z` and `0`–`9`.
pub fn big_text(bytes: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..bytes)
        .map(|i| ALPHABET[i % ALPHABET.len()] as char)
        .collect()
}

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required}
    })
}

/// All tools, in `tools/list` order.
pub(super) fn list() -> Vec<Value> {
    let mut tools = vec![
        tool("echo", "Returns its text", json!({"text": {"type": "string"}}), &["text"]),
        tool(
            "add",
            "Adds two numbers",
            json!({"a": {"type": "number"}, "b": {"type": "number"}}),
            &["a", "b"],
        ),
        tool(
            "slow",
            "Sleeps `ms` milliseconds, sending `steps` progress notifications when given a progressToken",
            json!({"ms": {"type": "integer"}, "steps": {"type": "integer"}}),
            &[],
        ),
        tool(
            "big",
            "Returns one text content of exactly `bytes` characters",
            json!({"bytes": {"type": "integer"}}),
            &["bytes"],
        ),
        tool(
            "ask",
            "Asks the client (elicitation/create, or sampling/createMessage with kind=sampling) and returns its answer",
            json!({"kind": {"type": "string", "enum": ["elicitation", "sampling"]}}),
            &[],
        ),
        tool(
            "notify",
            "Sends notifications/message on the standalone GET stream",
            json!({}),
            &[],
        ),
        tool("fail", "Always returns a tool error (isError)", json!({}), &[]),
    ];
    for n in 1..=FILLER_TOOLS {
        tools.push(tool(
            &format!("tool-{n}"),
            "Filler for pagination tests",
            json!({}),
            &[],
        ));
    }
    tools
}

/// The tools only modern (2026-07-28) `tools/list` results show, after the legacy ones. The legacy
/// list stays unchanged so that handshake-era tests keep their tool count.
fn modern_only() -> Vec<Value> {
    vec![
        json!({
            "name": "region_echo",
            "description": "Returns its arguments; region, count and flag are mirrored into Mcp-Param-* headers",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "count": {"type": "integer", "x-mcp-header": "Count"},
                    "flag": {"type": "boolean", "x-mcp-header": "Flag"},
                    "text": {"type": "string"}
                }
            }
        }),
        json!({
            "name": "bad_header_tool",
            "description": "Carries an invalid x-mcp-header annotation (on a number): clients must drop it from tools/list",
            "inputSchema": {
                "type": "object",
                "properties": {"ratio": {"type": "number", "x-mcp-header": "Ratio"}}
            }
        }),
    ]
}

/// All tools of a modern `tools/list`, in order.
pub(super) fn modern_list() -> Vec<Value> {
    let mut tools = list();
    tools.extend(modern_only());
    tools
}

fn text_result(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}]})
}

fn error_result(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": true})
}

/// Serves `tools/call`.
pub(super) fn call(call: &mut Call<'_>, params: &Value) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let progress_token = params.pointer("/_meta/progressToken").cloned();
    match name {
        "echo" => {
            let text = args.get("text").and_then(Value::as_str).unwrap_or("");
            Ok(text_result(text))
        }
        "add" => add(&args),
        "slow" => slow(call, &args, progress_token),
        "big" => {
            let bytes = args.get("bytes").and_then(Value::as_u64).unwrap_or(0);
            if bytes > MAX_BIG_BYTES {
                return Err(RpcError::invalid_params(format!(
                    "big: at most {MAX_BIG_BYTES} bytes"
                )));
            }
            Ok(text_result(big_text(bytes as usize)))
        }
        "ask" => ask(call, &args),
        "notify" => {
            let note = json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "info", "logger": "test-server", "data": "notified"}
            });
            call.outlet.unrelated(&note);
            Ok(text_result("notified"))
        }
        "fail" => Ok(error_result("tool failed on purpose")),
        // Unlisted tools (tools/list keeps its count): a server that misbehaves on purpose.
        "hang" => hang(call),
        "flood" => flood(call, &args),
        "endless_event" => endless_event(call),
        "region_echo" => Ok(text_result(args.to_string())),
        "bad_header_tool" => Ok(text_result(format!("bad_header_tool called with {args}"))),
        filler if filler.starts_with("tool-") && list().iter().any(|t| t["name"] == filler) => {
            Ok(text_result(format!("{filler} called")))
        }
        _ => Err(RpcError::invalid_params(format!("Unknown tool: {name}"))),
    }
}

/// How often `hang` checks whether the client closed its response stream.
const HANG_CHECK: Duration = Duration::from_millis(25);

/// Never answers, not even after a cancellation (as the TypeScript SDK may): holds the response
/// stream until the client closes it (recorded in `abandoned_streams`) or the server stops.
fn hang(call: &mut Call<'_>) -> Result<Value, RpcError> {
    loop {
        if call.state.stopping() {
            return Err(RpcError::new(-32603, "server stopping"));
        }
        if call.outlet.peer_gone() {
            call.state.record_abandoned_stream(call.request_id);
            return Err(RpcError::new(-32800, "client closed the stream"));
        }
        std::thread::sleep(HANG_CHECK);
    }
}

/// Sends numbered `notifications/message` (`params.data.seq` = 0, 1, 2, …, each carrying
/// `pad` bytes of padding, default 16 KiB) on the request's stream as fast as the client takes
/// them, until the client hangs up or the server stops; never answers. Not logged for replay,
/// so that the server's memory stays flat however long it runs.
fn flood(call: &mut Call<'_>, args: &Value) -> Result<Value, RpcError> {
    let pad = args
        .get("pad")
        .and_then(Value::as_u64)
        .unwrap_or(16 * 1024)
        .min(1 << 20);
    // Built once: only the number changes from one notification to the next.
    let head = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"flood","data":{"pad":""#;
    let middle = format!(r#"{}","seq":"#, "p".repeat(pad as usize));
    let eol = if call.state.opts.crlf { "\r\n" } else { "\n" };
    let mut seq: u64 = 0;
    while !call.state.stopping() {
        let event = format!("event: message{eol}data: {head}{middle}{seq}}}}}}}{eol}{eol}");
        if !call.outlet.raw(event.as_bytes()) {
            break;
        }
        seq += 1;
    }
    Err(RpcError::new(-32603, "flood ended"))
}

/// Starts one SSE event and never finishes it: `data:` lines of 64 KiB without the blank line
/// that would dispatch the event, until the client hangs up or the server stops.
fn endless_event(call: &mut Call<'_>) -> Result<Value, RpcError> {
    let line = format!("data: {}\n", "x".repeat(64 * 1024));
    while !call.state.stopping() {
        if !call.outlet.raw(line.as_bytes()) {
            break;
        }
    }
    Err(RpcError::new(-32603, "endless event ended"))
}

fn add(args: &Value) -> Result<Value, RpcError> {
    let (Some(a), Some(b)) = (args.get("a"), args.get("b")) else {
        return Err(RpcError::invalid_params("add needs arguments a and b"));
    };
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => json!(x.wrapping_add(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => json!(x + y),
            _ => return Err(RpcError::invalid_params("add needs numbers")),
        },
    };
    Ok(text_result(format!("The sum of {a} and {b} is {sum}.")))
}

/// Sleeps in small slices so that stop(), cancellation and (on modern streams) a client closing
/// the response stream take effect quickly. Returns false if interrupted.
fn sleep_interruptibly(call: &mut Call<'_>, total: Duration) -> bool {
    let deadline = Instant::now() + total;
    let mut next_liveness_check = Instant::now() + LIVENESS_CHECK;
    loop {
        if call.state.stopping() || call.state.is_cancelled(call.request_id) {
            return false;
        }
        if Instant::now() >= next_liveness_check {
            if !call.outlet.still_connected() {
                return false;
            }
            next_liveness_check = Instant::now() + LIVENESS_CHECK;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

fn slow(
    call: &mut Call<'_>,
    args: &Value,
    progress_token: Option<Value>,
) -> Result<Value, RpcError> {
    let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(1000);
    let steps = args
        .get("steps")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(MAX_STEPS);
    let slice = Duration::from_millis(ms) / (steps.max(1) as u32);
    for step in 1..=steps.max(1) {
        if !sleep_interruptibly(call, slice) {
            return Err(RpcError::new(-32800, "Request cancelled"));
        }
        if let (Some(token), true) = (&progress_token, step <= steps) {
            let progress = json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": token, "progress": step, "total": steps, "message": format!("step {step} of {steps}")}
            });
            call.outlet.related(&progress);
        }
    }
    Ok(text_result("slow done"))
}

fn ask(call: &mut Call<'_>, args: &Value) -> Result<Value, RpcError> {
    let id = json!(call.state.next_server_request_id());
    let request = if args.get("kind").and_then(Value::as_str) == Some("sampling") {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "sampling/createMessage",
            "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": "Say hello"}}],
                "maxTokens": 16
            }
        })
    } else {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "elicitation/create",
            "params": {
                "message": "Please confirm",
                "requestedSchema": {
                    "type": "object",
                    "properties": {"confirm": {"type": "boolean"}},
                    "required": ["confirm"]
                }
            }
        })
    };
    let reply = call.state.expect_reply(&id);
    if !call.outlet.related(&request) {
        return Ok(error_result("no stream to send the server request on"));
    }
    let deadline = Instant::now() + ASK_TIMEOUT;
    loop {
        if call.state.stopping() || call.state.is_cancelled(call.request_id) {
            return Err(RpcError::new(-32800, "Request cancelled"));
        }
        match reply.recv_timeout(Duration::from_millis(20)) {
            Ok(answer) => {
                return Ok(match (answer.get("result"), answer.get("error")) {
                    (Some(result), _) => text_result(result.to_string()),
                    (None, Some(error)) => {
                        error_result(format!("client answered with an error: {error}"))
                    }
                    (None, None) => error_result("client answer had neither result nor error"),
                });
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
            Err(_) => return Ok(error_result("client did not answer the server request")),
        }
    }
}
