//! JSON-RPC 2.0 frame facts and bridge-made error frames, without re-serializing anything.
//!
//! The bridge forwards every message byte-exact; it only needs to know what a frame is (request,
//! notification, response), its id, its method and a few MCP-specific params. [`classify`] reads
//! those through borrowed probe structs: everything else in the frame is skipped by serde_json
//! (iteratively, so deep nesting cannot overflow the stack) and never copied into a tree, so a
//! 5 MB tool result costs one scan, not an allocation per value.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

/// JSON-RPC: the frame is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the frame is JSON but not a valid request object (batches included, see [`FrameError::Batch`]).
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: method not found (a 2026-07-28 server answers it with HTTP 404).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: invalid params (a 2026-07-28 server uses it for a missing `_meta`).
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: internal error.
pub const INTERNAL_ERROR: i64 = -32603;

/// MCP 2026-07-28: the HTTP headers do not match the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the request lacks a client capability the server requires.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the server does not implement the requested protocol version (`data.supported`).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

// Errors the bridge itself reports to the stdio client, in place of the response the server could
// not deliver. They stay inside -32000..-32019, the implementation-defined part of the server-error
// range; -32020..-32099 is reserved by MCP for protocol-defined errors.
//
// | code   | name                | meaning                                                          |
// |--------|---------------------|------------------------------------------------------------------|
// | -32000 | TRANSPORT_ERROR     | connection to the server failed or broke (DNS, refused, reset)   |
// | -32001 | HTTP_ERROR          | the server answered with an HTTP error and no JSON-RPC error body |
// | -32002 | STREAM_ENDED        | the response stream ended (after any reconnects) with no response |
// | -32005 | SESSION_LOST        | the server ended the session and a new one could not be started  |
// | -32006 | BAD_SERVER_RESPONSE | the server's answer was unusable (content type, JSON, too large) |
// | -32007 | BRIDGE_SHUTTING_DOWN| the bridge is exiting and abandoned the request                  |

/// Bridge: the connection to the server failed or broke (DNS, refused, reset).
pub const TRANSPORT_ERROR: i64 = -32000;
/// Bridge: the server answered with an HTTP error status and no JSON-RPC error body.
pub const HTTP_ERROR: i64 = -32001;
/// Bridge: the response stream ended (after any allowed reconnects) without the response.
pub const STREAM_ENDED: i64 = -32002;
/// Bridge: the server ended the session and a new one could not be established.
pub const SESSION_LOST: i64 = -32005;
/// Bridge: the server's answer could not be used (unexpected content type, invalid JSON, too large).
pub const BAD_SERVER_RESPONSE: i64 = -32006;
/// Bridge: the bridge is shutting down and abandoned the request.
pub const BRIDGE_SHUTTING_DOWN: i64 = -32007;

/// How many characters of a non-JSON-RPC error body go into the error message.
const EXCERPT_CHARS: usize = 200;
/// How much of an error body is examined at all; the excerpt comes from its start.
const EXCERPT_SCAN_BYTES: usize = 16 * 1024;

/// What kind of JSON-RPC message a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and a non-null `id`: expects a response.
    Request,
    /// Has `method` and no `id`: gets no response.
    Notification,
    /// Has `result` or `error` and no `method`.
    Response,
}

/// A JSON-RPC request id. `0` is an ordinary id (the TypeScript client starts there).
///
/// MCP allows strings and integers. JSON-RPC also allows other numbers (`1.5`, `1e3`,
/// integers beyond `i64`); those are kept as their exact JSON text in [`Id::RawNumber`] and
/// compared textually, so `1.0` and `1` are different ids. Servers echo the id they received,
/// usually in the same spelling; a server that re-spells such an id will not be matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Num(i64),
    Str(String),
    /// A number that is not an `i64` integer, as its JSON text (e.g. `1.5`, `18446744073709551615`).
    RawNumber(String),
}

impl Id {
    /// The id as JSON text, ready to be placed in a frame.
    pub fn to_json(&self) -> String {
        match self {
            Id::Num(n) => n.to_string(),
            Id::Str(s) => serde_json::Value::String(s.clone()).to_string(),
            Id::RawNumber(text) => text.clone(),
        }
    }

    /// Parses an id from its JSON text; `Ok(None)` for `null`.
    fn from_raw(raw: &RawValue) -> Result<Option<Id>, FrameError> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map(|s| Some(Id::Str(s)))
                .map_err(|e| FrameError::InvalidJsonRpc(format!("unreadable id: {e}"))),
            Some(b'-' | b'0'..=b'9') => Ok(Some(match text.parse::<i64>() {
                Ok(n) => Id::Num(n),
                Err(_) => Id::RawNumber(text.to_owned()),
            })),
            _ if text == "null" => Ok(None),
            _ => Err(FrameError::InvalidJsonRpc(format!(
                "id must be a string or a number, not {}",
                json_type_name(text)
            ))),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// The facts the bridge needs about one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub kind: Kind,
    /// The id; `None` for notifications and for error responses with a missing or `null` id.
    pub id: Option<Id>,
    /// The method of a request or notification.
    pub method: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` when present: it marks a
    /// 2026-07-28 ("modern") request.
    pub meta_protocol_version: Option<String>,
    /// For `tools/call` and `prompts/get`: `params.name`; for `resources/read`: `params.uri`.
    pub name: Option<String>,
    /// For `notifications/cancelled`: `params.requestId`.
    pub cancelled_request_id: Option<Id>,
    /// For error responses: `error.code` (when it is an integer).
    pub error_code: Option<i64>,
}

impl FrameInfo {
    /// Whether this is an error response.
    pub fn is_error(&self) -> bool {
        self.error_code.is_some()
    }
}

/// Why a frame could not be classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not valid JSON (or not UTF-8); the message says where.
    NotJson(String),
    /// A JSON array: a JSON-RPC batch, which MCP no longer allows (removed in 2025-06-18).
    Batch,
    /// Valid JSON but not an object (a string, number, ...).
    NotObject,
    /// An object that is not a valid JSON-RPC message; the reason says why.
    InvalidJsonRpc(String),
}

impl FrameError {
    /// The JSON-RPC error code to answer this frame with.
    pub fn code(&self) -> i64 {
        match self {
            FrameError::NotJson(_) => PARSE_ERROR,
            _ => INVALID_REQUEST,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NotJson(msg) => write!(f, "message is not valid JSON: {msg}"),
            FrameError::Batch => f.write_str(
                "message is a JSON-RPC batch (array); MCP does not support batches since \
                 2025-06-18: send one message per line",
            ),
            FrameError::NotObject => f.write_str("message is not a JSON object"),
            FrameError::InvalidJsonRpc(reason) => {
                write!(f, "message is not a valid JSON-RPC 2.0 message: {reason}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Deserializes a field that is present, even when its value is `null` (plain `Option` would
/// turn `null` into `None`, and `"id": null` must be told apart from a missing id).
fn present<'de, D>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: Deserializer<'de>,
{
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// The top level of a frame. Unknown members (`jsonrpc` included) are skipped without copying.
#[derive(Deserialize)]
struct FrameProbe<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// The few `params` members the bridge reads. Raw values, so that an unexpected type in one of
/// them makes that fact unknown instead of making the whole frame unreadable.
#[derive(Deserialize)]
struct ParamsProbe<'a> {
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    uri: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "requestId")]
    request_id: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetaProbe<'a> {
    #[serde(default, borrow, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<&'a RawValue>,
}

/// A JSON-RPC error object, as the bridge relays it.
#[derive(Deserialize)]
struct ErrorProbe<'a> {
    code: i64,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// Only the error code, read leniently (a non-integer code is "no code").
#[derive(Deserialize)]
struct ErrorCodeProbe<'a> {
    #[serde(default, borrow)]
    code: Option<&'a RawValue>,
}

/// Classifies one frame (one line from the client, or one message from the server).
pub fn classify(frame: &[u8]) -> Result<FrameInfo, FrameError> {
    let text = std::str::from_utf8(frame)
        .map_err(|e| FrameError::NotJson(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    match text
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .as_bytes()
        .first()
    {
        Some(b'{') => {}
        Some(b'[') => {
            return match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => Err(FrameError::Batch),
                Err(e) => Err(FrameError::NotJson(e.to_string())),
            }
        }
        _ => {
            return match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => Err(FrameError::NotObject),
                Err(e) => Err(FrameError::NotJson(e.to_string())),
            }
        }
    }
    let probe: FrameProbe = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => FrameError::InvalidJsonRpc(e.to_string()),
        _ => FrameError::NotJson(e.to_string()),
    })?;

    if let Some(method) = probe.method {
        if probe.result.is_some() || probe.error.is_some() {
            return Err(FrameError::InvalidJsonRpc(
                "a message cannot have both `method` and `result`/`error`".to_owned(),
            ));
        }
        let (kind, id) = match probe.id {
            None => (Kind::Notification, None),
            Some(raw) => match Id::from_raw(raw)? {
                Some(id) => (Kind::Request, Some(id)),
                None => {
                    return Err(FrameError::InvalidJsonRpc(
                        "request id must not be null".to_owned(),
                    ))
                }
            },
        };
        let mut info = FrameInfo {
            kind,
            id,
            method: Some(method.into_owned()),
            meta_protocol_version: None,
            name: None,
            cancelled_request_id: None,
            error_code: None,
        };
        if let Some(params) = probe.params {
            read_params(params, &mut info);
        }
        return Ok(info);
    }

    let (id, error_code) = match (probe.result, probe.error) {
        (Some(_), Some(_)) => {
            return Err(FrameError::InvalidJsonRpc(
                "a response cannot have both `result` and `error`".to_owned(),
            ))
        }
        (None, None) => {
            return Err(FrameError::InvalidJsonRpc(
                "no `method`, `result` or `error` member".to_owned(),
            ))
        }
        (Some(_), None) => match probe.id.map(Id::from_raw).transpose()?.flatten() {
            Some(id) => (Some(id), None),
            None => {
                return Err(FrameError::InvalidJsonRpc(
                    "a result response needs a non-null id".to_owned(),
                ))
            }
        },
        (None, Some(error)) => {
            // Error responses may carry a null or missing id (the request id was unreadable).
            let id = probe.id.map(Id::from_raw).transpose()?.flatten();
            if !error.get().starts_with('{') {
                return Err(FrameError::InvalidJsonRpc(
                    "`error` must be an object".to_owned(),
                ));
            }
            let code = serde_json::from_str::<ErrorCodeProbe>(error.get())
                .ok()
                .and_then(|probe| probe.code)
                .and_then(|code| code.get().parse::<i64>().ok());
            (id, Some(code.unwrap_or(INTERNAL_ERROR)))
        }
    };
    Ok(FrameInfo {
        kind: Kind::Response,
        id,
        method: None,
        meta_protocol_version: None,
        name: None,
        cancelled_request_id: None,
        error_code,
    })
}

/// Fills in the MCP facts found in `params`. Leniency is deliberate: a frame whose params are
/// odd is still forwarded, and the server is the one to reject it.
fn read_params(params: &RawValue, info: &mut FrameInfo) {
    if !params.get().starts_with('{') {
        return; // positional (array) params carry none of these facts
    }
    let Ok(probe) = serde_json::from_str::<ParamsProbe>(params.get()) else {
        return;
    };
    info.meta_protocol_version = probe
        .meta
        .and_then(|meta| serde_json::from_str::<MetaProbe>(meta.get()).ok())
        .and_then(|meta| meta.protocol_version)
        .and_then(raw_string);
    info.name = match info.method.as_deref() {
        Some("tools/call" | "prompts/get") => probe.name.and_then(raw_string),
        Some("resources/read") => probe.uri.and_then(raw_string),
        _ => None,
    };
    if info.method.as_deref() == Some("notifications/cancelled") {
        info.cancelled_request_id = probe
            .request_id
            .and_then(|raw| Id::from_raw(raw).ok().flatten());
    }
}

/// The string a raw JSON value holds, or `None` when it is not a string.
fn raw_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

fn json_type_name(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'"') => "a string",
        _ => "a number",
    }
}

/// The ids of a frame that [`classify`] refused, read wherever they can be: the `id` of an
/// object whatever else is wrong with it, the id of each element of a batch, the id at the start
/// of a line cut at the size bound. Empty when none can be read: only then may the error answer
/// carry `id: null` (JSON-RPC 2.0 §5).
pub fn recover_ids(frame: &[u8]) -> Vec<Id> {
    // A cut line may end inside a UTF-8 sequence: read up to the last whole character.
    let text = match std::str::from_utf8(frame) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&frame[..e.valid_up_to()]).unwrap_or_default(),
    };
    let text = text.trim_start_matches([' ', '\t', '\r', '\n']);
    match text.as_bytes().first() {
        Some(b'{') => id_of_object(text).into_iter().collect(),
        Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(text)
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|element| id_of_object(element.get()))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The `id` member of a JSON object, read member by member so that anything after it (a wrong
/// type, the end of a cut line) does not matter.
fn id_of_object(text: &str) -> Option<Id> {
    use serde::de::{MapAccess, Visitor};
    use std::cell::Cell;

    struct IdSeeker<'s, 'de>(&'s Cell<Option<&'de RawValue>>);

    impl<'de> Visitor<'de> for IdSeeker<'_, 'de> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON-RPC object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "id" {
                    self.0.set(Some(map.next_value::<&'de RawValue>()?));
                    return Ok(());
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let found = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    // The error that follows the id (if any) is what classify already reported.
    let _ = de.deserialize_map(IdSeeker(&found));
    let raw = found.get()?;
    // A number that ends where the text ends may have been cut (`12` of `123`): not readable.
    let end = raw.get().as_ptr() as usize - text.as_ptr() as usize + raw.get().len();
    if end == text.len() && !raw.get().ends_with('"') {
        return None;
    }
    Id::from_raw(raw).ok().flatten()
}

/// The raw `result` of a response frame, or `None` when the frame is not a result response.
pub fn result_raw(frame: &[u8]) -> Option<&RawValue> {
    #[derive(Deserialize)]
    struct ResultOnly<'a> {
        #[serde(default, borrow)]
        result: Option<&'a RawValue>,
    }
    serde_json::from_slice::<ResultOnly>(frame).ok()?.result
}

/// `result.protocolVersion` of an `initialize` response: the negotiated version, which the
/// bridge sends as `MCP-Protocol-Version` on every later request.
pub fn initialize_result_version(frame: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct InitializeResult<'a> {
        #[serde(default, borrow, rename = "protocolVersion")]
        protocol_version: Option<&'a RawValue>,
    }
    let result = result_raw(frame)?;
    serde_json::from_str::<InitializeResult>(result.get())
        .ok()?
        .protocol_version
        .and_then(raw_string)
}

/// `params.arguments` of a `tools/call` request as a JSON tree, for mirroring annotated arguments
/// into `Mcp-Param-*` headers. Only call this for tools that have such annotations: it copies the
/// arguments. `None` when absent, or when nested deeper than serde_json's limit of 128 levels.
pub fn tool_call_arguments(frame: &[u8]) -> Option<serde_json::Value> {
    #[derive(Deserialize)]
    struct ParamsOnly<'a> {
        #[serde(default, borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct ArgumentsOnly<'a> {
        #[serde(default, borrow)]
        arguments: Option<&'a RawValue>,
    }
    let params = serde_json::from_slice::<ParamsOnly>(frame).ok()?.params?;
    let arguments = serde_json::from_str::<ArgumentsOnly>(params.get())
        .ok()?
        .arguments?;
    serde_json::from_str(arguments.get()).ok()
}

/// Builds an error response frame: compact JSON on one line, no trailing newline.
/// `id` `None` gives `"id":null`. `data` is copied as is, except that raw line breaks (which in
/// JSON text can only be insignificant whitespace) become spaces, so the frame stays on one line.
pub fn error_response(
    id: Option<&Id>,
    code: i64,
    message: &str,
    data: Option<&RawValue>,
) -> Vec<u8> {
    let id = id.map_or_else(|| "null".to_owned(), Id::to_json);
    let message = serde_json::Value::String(message.to_owned()).to_string();
    let mut frame =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}"#)
            .into_bytes();
    if let Some(data) = data {
        frame.extend_from_slice(br#","data":"#);
        frame.extend(
            data.get()
                .bytes()
                .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
    }
    frame.extend_from_slice(b"}}");
    frame
}

/// Builds the error frame for the client's request `id` from an HTTP error answer.
///
/// When the body (JSON, or the first event of an SSE body) is a JSON-RPC error, its `code`,
/// `message` and `data` are kept: MCP clients depend on them (e.g. `-32022` carries
/// `data.supported`), and servers send such bodies with `"id": null`. Otherwise the error is
/// [`HTTP_ERROR`] with message `HTTP <status> from server: <excerpt>` and data `{"httpStatus":N}`;
/// the excerpt is the body's start, HTML tags removed, control characters removed, whitespace
/// collapsed, at most 200 characters.
pub fn error_from_http(id: &Id, status: u16, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    let json_body: Cow<[u8]> = if content_type.starts_with("text/event-stream") {
        Cow::Owned(first_sse_data(body).into_bytes())
    } else {
        Cow::Borrowed(body)
    };
    if let Some(frame) = relay_jsonrpc_error(id, &json_body) {
        return frame;
    }
    let html = content_type.contains("html") || body.trim_ascii_start().starts_with(b"<");
    let excerpt = body_excerpt(body, html);
    let message = if excerpt.is_empty() {
        format!("HTTP {status} from server (empty body)")
    } else {
        format!("HTTP {status} from server: {excerpt}")
    };
    let data = format!(r#"{{"httpStatus":{status}}}"#);
    let data = RawValue::from_string(data).ok();
    error_response(Some(id), HTTP_ERROR, &message, data.as_deref())
}

/// The data of the first event of an SSE body (empty when there is none).
fn first_sse_data(body: &[u8]) -> String {
    let mut parser = crate::sse::SseParser::new(body.len().max(1));
    let mut items = Vec::new();
    // A parse error can only be "too large", impossible with this bound; whatever was parsed is used.
    let _ = parser.feed(body, &mut items);
    let _ = parser.feed(b"\n\n", &mut items); // dispatch an event the server did not terminate
    items
        .into_iter()
        .find_map(|item| match item {
            crate::sse::SseItem::Event(event) => Some(event.data),
            crate::sse::SseItem::Retry(_) => None,
        })
        .unwrap_or_default()
}

/// When `body` is a JSON-RPC message with an error object, the same error re-addressed to `id`.
fn relay_jsonrpc_error(id: &Id, body: &[u8]) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    struct ErrorOnly<'a> {
        #[serde(borrow)]
        error: ErrorProbe<'a>,
    }
    let body = serde_json::from_slice::<ErrorOnly>(body.trim_ascii()).ok()?;
    Some(error_response(
        Some(id),
        body.error.code,
        &body.error.message,
        body.error.data,
    ))
}

/// A short, printable, one-line excerpt of an error body.
fn body_excerpt(body: &[u8], html: bool) -> String {
    let head = &body[..body.len().min(EXCERPT_SCAN_BYTES)];
    let text = String::from_utf8_lossy(head);
    let text = if html {
        Cow::Owned(strip_html(&text))
    } else {
        text
    };
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut excerpt = String::new();
    for (count, word) in cleaned.split_whitespace().enumerate() {
        if count > 0 {
            excerpt.push(' ');
        }
        excerpt.push_str(word);
        if excerpt.chars().count() > EXCERPT_CHARS {
            break;
        }
    }
    if excerpt.chars().count() > EXCERPT_CHARS {
        excerpt = excerpt.chars().take(EXCERPT_CHARS).collect();
        excerpt.push('…');
    }
    excerpt
}

/// Roughly turns HTML into its visible text: tags removed, `<script>`/`<style>` contents
/// dropped, the most common entities decoded. Good enough for a one-line error excerpt.
fn strip_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        text.push(' ');
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = ""; // an unterminated tag runs to the end of the excerpt
            break;
        };
        let tag_name: String = after[..gt]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &after[gt + 1..];
        if tag_name == "script" || tag_name == "style" {
            let closing = format!("</{tag_name}");
            rest = match rest.to_ascii_lowercase().find(&closing) {
                // ASCII lowercasing keeps byte offsets, so the index is valid in `rest`.
                Some(index) => &rest[index..],
                None => "",
            };
        }
    }
    text.push_str(rest);
    for (entity, replacement) in [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ] {
        if text.contains(entity) {
            text = text.replace(entity, replacement);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn info(frame: &str) -> FrameInfo {
        classify(frame.as_bytes()).unwrap()
    }

    fn parse(frame: &[u8]) -> Value {
        serde_json::from_slice(frame).unwrap()
    }

    #[test]
    fn id_zero_is_a_request_id() {
        let info = info(r#"{"method":"initialize","params":{},"jsonrpc":"2.0","id":0}"#);
        assert_eq!(info.kind, Kind::Request);
        assert_eq!(info.id, Some(Id::Num(0)));
        assert_eq!(info.method.as_deref(), Some("initialize"));
    }

    #[test]
    fn string_negative_and_large_ids() {
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":"a\"b","method":"m"}"#).id,
            Some(Id::Str("a\"b".into()))
        );
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":-7,"method":"m"}"#).id,
            Some(Id::Num(-7))
        );
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"m"}"#).id,
            Some(Id::Num(i64::MAX))
        );
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"m"}"#).id,
            Some(Id::RawNumber("18446744073709551616".into()))
        );
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#).id,
            Some(Id::RawNumber("1.5".into()))
        );
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":1e3,"method":"m"}"#).id,
            Some(Id::RawNumber("1e3".into()))
        );
    }

    #[test]
    fn id_to_json_round_trips() {
        for id in [
            Id::Num(0),
            Id::Num(-3),
            Id::Str("x\n\u{e9}".into()),
            Id::RawNumber("1.5".into()),
        ] {
            let frame = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{}}}}"#, id.to_json());
            assert_eq!(info(&frame).id, Some(id));
        }
    }

    #[test]
    fn rejects_ids_of_other_types() {
        for id in ["true", "{}", "[1]"] {
            let frame = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            assert!(
                matches!(
                    classify(frame.as_bytes()),
                    Err(FrameError::InvalidJsonRpc(_))
                ),
                "{id}"
            );
        }
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":null,"method":"m"}"#),
            Err(FrameError::InvalidJsonRpc(_))
        ));
    }

    #[test]
    fn notification_has_no_id() {
        let info = info(r#"{"method":"notifications/initialized","jsonrpc":"2.0"}"#);
        assert_eq!(info.kind, Kind::Notification);
        assert_eq!(info.id, None);
    }

    #[test]
    fn result_response() {
        let info = info(r#"{"result":{"tools":[]},"jsonrpc":"2.0","id":3}"#);
        assert_eq!(info.kind, Kind::Response);
        assert_eq!(info.id, Some(Id::Num(3)));
        assert!(!info.is_error());
    }

    #[test]
    fn null_result_is_still_a_response() {
        assert_eq!(
            info(r#"{"jsonrpc":"2.0","id":1,"result":null}"#).kind,
            Kind::Response
        );
    }

    #[test]
    fn error_response_with_and_without_id() {
        let with_id = info(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#,
        );
        assert_eq!(
            (with_id.kind, with_id.id, with_id.error_code),
            (Kind::Response, Some(Id::Num(1)), Some(-32601))
        );
        let null_id = info(r#"{"error":{"code":-32000,"message":"Bad Request"},"id":null}"#);
        assert_eq!((null_id.id, null_id.error_code), (None, Some(-32000)));
        let no_id = info(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"x"}}"#);
        assert_eq!((no_id.id, no_id.error_code), (None, Some(-32700)));
        // A malformed code still marks the frame as an error.
        assert_eq!(
            info(r#"{"id":1,"error":{"code":"x"}}"#).error_code,
            Some(INTERNAL_ERROR)
        );
    }

    #[test]
    fn invalid_shapes_are_reported() {
        for frame in [
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","result":{}}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":"boom"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"id":1,"id":2,"method":"m"}"#,
        ] {
            assert!(
                matches!(
                    classify(frame.as_bytes()),
                    Err(FrameError::InvalidJsonRpc(_))
                ),
                "{frame}"
            );
        }
    }

    #[test]
    fn batches_non_objects_and_non_json_are_distinct() {
        assert_eq!(
            classify(br#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#),
            Err(FrameError::Batch)
        );
        assert_eq!(classify(b" []"), Err(FrameError::Batch));
        assert_eq!(classify(b"42"), Err(FrameError::NotObject));
        assert_eq!(classify(br#""s""#), Err(FrameError::NotObject));
        assert!(matches!(
            classify(b"{\"id\":1,"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(classify(b"[1,"), Err(FrameError::NotJson(_))));
        assert!(matches!(classify(b""), Err(FrameError::NotJson(_))));
        assert!(matches!(classify(b"hello"), Err(FrameError::NotJson(_))));
        assert_eq!(FrameError::NotJson(String::new()).code(), PARSE_ERROR);
        assert_eq!(FrameError::Batch.code(), INVALID_REQUEST);
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let err = classify(b"{\"id\":1,\"method\":\"\xFF\"}").unwrap_err();
        assert!(
            matches!(err, FrameError::NotJson(ref m) if m.contains("UTF-8")),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_or_ok_but_never_a_crash() {
        let depth = 200_000;
        let mut frame = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"x":"#);
        frame.push_str(&"[".repeat(depth));
        frame.push_str(&"]".repeat(depth));
        frame.push_str("}}");
        // Skipped members are scanned iteratively: classification works.
        assert_eq!(info(&frame).id, Some(Id::Num(1)));
        let mut deep_object = String::from(r#"{"id":1,"result":"#);
        deep_object.push_str(&r#"{"a":"#.repeat(depth));
        deep_object.push_str(&"}".repeat(depth));
        assert!(classify(deep_object.as_bytes()).is_err()); // truncated on purpose
                                                            // Building a tree hits serde_json's recursion limit and reports an error.
        let mut call =
            String::from(r#"{"id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":"#);
        call.push_str(&"[".repeat(depth));
        call.push_str(&"]".repeat(depth));
        call.push_str("}}}");
        assert_eq!(info(&call).name.as_deref(), Some("t"));
        assert_eq!(tool_call_arguments(call.as_bytes()), None);
    }

    #[test]
    fn reads_names_for_tools_prompts_and_resources() {
        assert_eq!(
            info(
                r#"{"id":1,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1}}}"#
            )
            .name
            .as_deref(),
            Some("get-sum")
        );
        assert_eq!(
            info(r#"{"id":1,"method":"prompts/get","params":{"name":"r\u00e9sum\u00e9 \u4e16"}}"#)
                .name
                .as_deref(),
            Some("résumé 世")
        );
        assert_eq!(
            info(r#"{"id":1,"method":"resources/read","params":{"uri":"file:///a b","name":"ignored"}}"#).name.as_deref(),
            Some("file:///a b")
        );
        assert_eq!(
            info(r#"{"id":1,"method":"tools/list","params":{"name":"x"}}"#).name,
            None
        );
        // Odd params make the fact unknown, not the frame unreadable.
        assert_eq!(
            info(r#"{"id":1,"method":"tools/call","params":{"name":5}}"#).name,
            None
        );
        assert_eq!(
            info(r#"{"id":1,"method":"tools/call","params":[1,2]}"#).name,
            None
        );
    }

    #[test]
    fn reads_modern_meta_protocol_version() {
        let frame = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        assert_eq!(
            info(frame).meta_protocol_version.as_deref(),
            Some("2026-07-28")
        );
        let legacy = r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp","version":"0.1.0"}}}"#;
        assert_eq!(info(legacy).meta_protocol_version, None);
    }

    #[test]
    fn reads_cancelled_request_id() {
        let frame = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0,"reason":"x"}}"#;
        let info = info(frame);
        assert_eq!(info.kind, Kind::Notification);
        assert_eq!(info.cancelled_request_id, Some(Id::Num(0)));
        let string_id =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"abc"}}"#;
        assert_eq!(
            classify(string_id.as_bytes()).unwrap().cancelled_request_id,
            Some(Id::Str("abc".into()))
        );
    }

    #[test]
    fn error_response_is_compact_single_line_json() {
        let frame = error_response(
            Some(&Id::Num(0)),
            SESSION_LOST,
            "no answer in 60 s\n(\"quoted\")",
            None,
        );
        assert!(!frame.contains(&b'\n'));
        assert_eq!(
            parse(&frame),
            json!({"jsonrpc":"2.0","id":0,"error":{"code":-32005,"message":"no answer in 60 s\n(\"quoted\")"}})
        );
        let null_id = error_response(None, PARSE_ERROR, "bad", None);
        assert_eq!(parse(&null_id)["id"], Value::Null);
    }

    #[test]
    fn error_response_keeps_data_on_one_line() {
        let data =
            RawValue::from_string("{\n  \"supported\": [\"2026-07-28\"]\n}".to_owned()).unwrap();
        let frame = error_response(
            Some(&Id::Str("x".into())),
            UNSUPPORTED_PROTOCOL_VERSION,
            "m",
            Some(&data),
        );
        assert!(!frame.contains(&b'\n'));
        assert_eq!(
            parse(&frame)["error"]["data"],
            json!({"supported":["2026-07-28"]})
        );
    }

    #[test]
    fn http_error_with_jsonrpc_body_keeps_code_message_and_data() {
        let body = br#"{"error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}"#;
        let frame = error_from_http(&Id::Num(1), 400, Some("application/json"), body);
        assert_eq!(
            parse(&frame),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Bad Request: Server not initialized"}})
        );
        let body = b"{\"jsonrpc\":\"2.0\",\n \"error\":{\"code\":-32022,\"message\":\"Unsupported\",\"data\":{\"supported\":[\"2025-11-25\"]}}}\n";
        let frame = error_from_http(&Id::Str("r".into()), 400, None, body);
        assert!(!frame.contains(&b'\n'));
        assert_eq!(
            parse(&frame),
            json!({"jsonrpc":"2.0","id":"r","error":{"code":-32022,"message":"Unsupported","data":{"supported":["2025-11-25"]}}})
        );
    }

    #[test]
    fn http_error_with_jsonrpc_error_in_sse_body() {
        let body = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32020,\"message\":\"Header mismatch\"}}\r\n\r\n";
        let frame = error_from_http(&Id::Num(4), 400, Some("text/event-stream"), body);
        assert_eq!(
            parse(&frame)["error"],
            json!({"code":-32020,"message":"Header mismatch"})
        );
    }

    #[test]
    fn http_error_with_html_login_page() {
        let body = b"<!DOCTYPE html>\n<html><head><title>Sign in</title><style>body{color:red}</style>\
<script>var a = '<b>';</script></head>\n<body><h1>Please&nbsp;log in</h1>\r\n<p>Tom &amp; Jerry</p></body></html>";
        let frame = error_from_http(&Id::Num(2), 403, Some("text/html; charset=utf-8"), body);
        let value = parse(&frame);
        assert_eq!(value["id"], json!(2));
        assert_eq!(value["error"]["code"], json!(HTTP_ERROR));
        assert_eq!(
            value["error"]["message"],
            json!("HTTP 403 from server: Sign in Please log in Tom & Jerry")
        );
        assert_eq!(value["error"]["data"], json!({"httpStatus":403}));
    }

    #[test]
    fn http_error_with_empty_body() {
        let frame = error_from_http(&Id::Num(2), 502, None, b"");
        assert_eq!(
            parse(&frame)["error"]["message"],
            json!("HTTP 502 from server (empty body)")
        );
    }

    #[test]
    fn http_error_with_non_jsonrpc_json_and_control_chars() {
        let frame = error_from_http(
            &Id::Num(2),
            401,
            Some("application/json"),
            b"{\"detail\":\"Not\x07 authenticated\"}",
        );
        assert_eq!(
            parse(&frame)["error"]["message"],
            json!("HTTP 401 from server: {\"detail\":\"Not authenticated\"}")
        );
        let frame = error_from_http(&Id::Num(2), 500, None, b"line1\r\n\tline2\x00\xFF end");
        assert_eq!(
            parse(&frame)["error"]["message"],
            json!("HTTP 500 from server: line1 line2 \u{FFFD} end")
        );
    }

    #[test]
    fn http_error_with_huge_body_is_truncated() {
        let body = "word ".repeat(2_000_000);
        let frame = error_from_http(&Id::Num(9), 500, Some("text/plain"), body.as_bytes());
        let message = parse(&frame)["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.starts_with("HTTP 500 from server: word word"));
        assert!(message.ends_with('…'));
        assert!(message.chars().count() <= "HTTP 500 from server: ".len() + EXCERPT_CHARS + 1);
    }

    #[test]
    fn initialize_result_version_reads_negotiated_version() {
        let frame = br#"{"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"s","version":"1"}},"jsonrpc":"2.0","id":0}"#;
        assert_eq!(
            initialize_result_version(frame).as_deref(),
            Some("2025-03-26")
        );
        assert_eq!(
            initialize_result_version(br#"{"id":0,"error":{"code":1,"message":"x"}}"#),
            None
        );
        assert_eq!(initialize_result_version(b"nonsense"), None);
    }

    #[test]
    fn tool_call_arguments_are_extracted() {
        let frame = br#"{"id":4,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":"x"}}}"#;
        assert_eq!(tool_call_arguments(frame), Some(json!({"a":1,"b":"x"})));
        assert_eq!(
            tool_call_arguments(br#"{"id":4,"method":"tools/call","params":{"name":"t"}}"#),
            None
        );
    }

    #[test]
    fn result_raw_is_borrowed_from_the_frame() {
        let frame = br#"{"id":1,"result":{"x":[1,2]}}"#;
        assert_eq!(result_raw(frame).map(RawValue::get), Some(r#"{"x":[1,2]}"#));
    }
}
