//! MCP 2026-07-28 ("modern") per-message HTTP headers: `Mcp-Method`, `Mcp-Name` and the
//! `Mcp-Param-*` headers that tools request with `x-mcp-header` annotations.
//!
//! The stdio client never sees HTTP, so the bridge derives these headers from each message body.
//! Pure functions over frames and schemas; the rules are those of the 2026-07-28 specification,
//! `basic/transports/streamable-http.mdx` ("Request Metadata") and `server/tools.mdx` (`x-mcp-header`).

use std::borrow::Cow;
use std::fmt;

use base64ct::{Base64, Encoding};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::http::is_tchar;
use crate::jsonrpc::{FrameInfo, Kind};

/// Protocol versions known to be modern (stateless, header-mirroring).
#[cfg(test)]
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// The first modern protocol version; every later date version is assumed to be modern too.
pub const FIRST_MODERN_VERSION: &str = "2026-07-28";

/// Header carrying the request's `method`.
pub const MCP_METHOD: &str = "Mcp-Method";
/// Header carrying `params.name` (tools/call, prompts/get) or `params.uri` (resources/read).
pub const MCP_NAME: &str = "Mcp-Name";
/// Prefix of the headers mirroring `x-mcp-header`-annotated tool arguments.
pub const MCP_PARAM_PREFIX: &str = "Mcp-Param-";
/// The schema keyword annotating a tool argument to be mirrored into a header.
pub const X_MCP_HEADER: &str = "x-mcp-header";

/// The sentinel around a base64-encoded header value. Case-sensitive, as the spec requires.
const ENCODED_PREFIX: &str = "=?base64?";
const ENCODED_SUFFIX: &str = "?=";

/// Whether `version` is a modern (2026-07-28 or later) protocol version. Versions are
/// `YYYY-MM-DD` dates, so later means lexicographically greater; anything that does not start
/// with such a date is not considered modern.
/// A modern (2026-07-28) message: stateless, sent with its own headers, never via legacy SSE.
pub fn is_modern_request(info: &crate::jsonrpc::FrameInfo) -> bool {
    info.meta_protocol_version
        .as_deref()
        .is_some_and(is_modern_version)
}

pub fn is_modern_version(version: &str) -> bool {
    let Some(date) = version.get(..10) else {
        return false;
    };
    let looks_like_date = date.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    looks_like_date && date >= FIRST_MODERN_VERSION
}

/// Encodes a value for `Mcp-Name` / `Mcp-Param-*`: as is when it is plain header-safe ASCII
/// (0x20..0x7E, no leading or trailing space, not itself shaped like the sentinel), otherwise
/// `=?base64?<standard base64 of the UTF-8 bytes>?=`. Tabs are encoded too: RFC 9110 allows
/// them, but encoding is always understood by the server and sidesteps trimming proxies.
pub fn encode_header_value(value: &str) -> String {
    let plain_ascii = value.bytes().all(|b| (0x20..=0x7E).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with(ENCODED_PREFIX) && value.ends_with(ENCODED_SUFFIX);
    if plain_ascii && !padded && !looks_encoded {
        value.to_owned()
    } else {
        format!(
            "{ENCODED_PREFIX}{}{ENCODED_SUFFIX}",
            Base64::encode_string(value.as_bytes())
        )
    }
}

/// The inverse of [`encode_header_value`] (for test servers and diagnostics): `None` when the
/// sentinel form holds invalid base64 or invalid UTF-8. The bridge only encodes; kept beside
/// the encoder to test it.
#[cfg(test)]
pub fn decode_header_value(value: &str) -> Option<Cow<'_, str>> {
    let encoded = value
        .strip_prefix(ENCODED_PREFIX)
        .and_then(|rest| rest.strip_suffix(ENCODED_SUFFIX));
    match encoded {
        None => Some(Cow::Borrowed(value)),
        Some(b64) => {
            let bytes = Base64::decode_vec(b64).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
    }
}

/// The standard headers of one message: `Mcp-Method` for requests and notifications, and
/// `Mcp-Name` for `tools/call`, `prompts/get` and `resources/read`. Harmless for older
/// servers, so the bridge may send them in every era. The method is encoded like the other
/// values, so an exotic method cannot produce an invalid header.
pub fn standard_headers(info: &FrameInfo) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if matches!(info.kind, Kind::Request | Kind::Notification) {
        if let Some(method) = &info.method {
            headers.push((MCP_METHOD, encode_header_value(method)));
        }
        if let Some(name) = &info.name {
            headers.push((MCP_NAME, encode_header_value(name)));
        }
    }
    headers
}

/// One validated `x-mcp-header` annotation of a tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderParam {
    /// The annotation's value: the header is `Mcp-Param-{name}`.
    pub name: String,
    /// The chain of `properties` keys from the schema root to the annotated property
    /// (one element for a top-level argument).
    pub path: Vec<String>,
}

impl HeaderParam {
    /// The full header name, `Mcp-Param-{name}`.
    pub fn header_name(&self) -> String {
        format!("{MCP_PARAM_PREFIX}{}", self.name)
    }
}

/// Why a tool's `x-mcp-header` annotations are invalid; such a tool must be dropped from
/// `tools/list`. `property` is the dotted `properties` path of the annotated property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidToolHeaders {
    /// The annotation is not a JSON string.
    NotAString { property: String },
    /// The annotation is the empty string.
    Empty { property: String },
    /// The annotation is not an RFC 9110 token (letters, digits and ``!#$%&'*+-.^_`|~``).
    NotToken { property: String, name: String },
    /// Two annotations differ only in letter case (header names are case-insensitive).
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    /// The annotated property is not declared as exactly one of string, integer, boolean.
    NotPrimitive {
        property: String,
        name: String,
        found: String,
    },
    /// The annotation is reached through something other than a chain of `properties`
    /// (items, anyOf, $defs, the root itself, ...). `location` is a JSON pointer.
    Unreachable { location: String },
    /// The schema is nested too deeply to be examined and mentions `x-mcp-header`.
    SchemaTooDeep,
}

impl fmt::Display for InvalidToolHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidToolHeaders::NotAString { property } => {
                write!(f, "x-mcp-header on property `{property}` is not a string")
            }
            InvalidToolHeaders::Empty { property } => {
                write!(f, "x-mcp-header on property `{property}` is empty")
            }
            InvalidToolHeaders::NotToken { property, name } => write!(
                f,
                "x-mcp-header {name:?} on property `{property}` is not a valid HTTP header name token"
            ),
            InvalidToolHeaders::Duplicate {
                name,
                first,
                second,
            } => write!(
                f,
                "x-mcp-header {name:?} is used by both `{first}` and `{second}` (names are case-insensitive)"
            ),
            InvalidToolHeaders::NotPrimitive {
                property,
                name,
                found,
            } => write!(
                f,
                "x-mcp-header {name:?} is on property `{property}` of type {found}; only string, \
                 integer and boolean properties may be mirrored"
            ),
            InvalidToolHeaders::Unreachable { location } => write!(
                f,
                "x-mcp-header at {location} is not reachable from the schema root through \
                 `properties` only"
            ),
            InvalidToolHeaders::SchemaTooDeep => f.write_str(
                "inputSchema is nested too deeply to check its x-mcp-header annotations",
            ),
        }
    }
}

impl std::error::Error for InvalidToolHeaders {}

/// Validates a tool's `inputSchema` and returns its header parameters (empty when it has none).
pub fn header_params(input_schema: &Value) -> Result<Vec<HeaderParam>, InvalidToolHeaders> {
    let mut walker = SchemaWalker {
        pointer: Vec::new(),
        params: Vec::new(),
    };
    walker.schema(input_schema, Some(&mut Vec::new()))?;
    Ok(walker.params)
}

/// Walks every schema inside `inputSchema`, so that an annotation anywhere is either collected
/// (when reached through `properties` only) or reported as unreachable.
struct SchemaWalker {
    /// JSON pointer segments of the node being visited, for error messages.
    pointer: Vec<String>,
    params: Vec<HeaderParam>,
}

impl SchemaWalker {
    /// Visits a schema. `path` is the `properties` chain leading here, or `None` when the node
    /// is reached some other way.
    fn schema(
        &mut self,
        node: &Value,
        path: Option<&mut Vec<String>>,
    ) -> Result<(), InvalidToolHeaders> {
        let Value::Object(members) = node else {
            if let Value::Array(items) = node {
                self.each_element(items)?;
            }
            return Ok(());
        };
        let mut path = path;
        if let Some(annotation) = members.get(X_MCP_HEADER) {
            match path.as_deref() {
                Some(path) if !path.is_empty() => self.collect(annotation, node, path)?,
                _ => {
                    return Err(InvalidToolHeaders::Unreachable {
                        location: self.pointer_to(X_MCP_HEADER),
                    })
                }
            }
        }
        for (key, value) in members {
            match key.as_str() {
                // Values that are data, not schemas: an object in them is not an annotation.
                X_MCP_HEADER | "const" | "enum" | "default" | "examples" => {}
                "properties" => {
                    let Value::Object(properties) = value else {
                        continue;
                    };
                    self.pointer.push(key.clone());
                    for (name, child) in properties {
                        self.pointer.push(name.clone());
                        match path.as_deref_mut() {
                            Some(path) => {
                                path.push(name.clone());
                                let result = self.schema(child, Some(path));
                                path.pop();
                                result?;
                            }
                            None => self.schema(child, None)?,
                        }
                        self.pointer.pop();
                    }
                    self.pointer.pop();
                }
                // Keywords whose value maps names to schemas.
                "$defs" | "definitions" | "patternProperties" | "dependentSchemas" => {
                    self.pointer.push(key.clone());
                    if let Value::Object(named) = value {
                        for (name, child) in named {
                            self.pointer.push(name.clone());
                            self.schema(child, None)?;
                            self.pointer.pop();
                        }
                    }
                    self.pointer.pop();
                }
                // Everything else (items, anyOf, not, if, additionalProperties, unknown
                // extensions, ...) may hold schemas, none of them statically reachable.
                _ => {
                    self.pointer.push(key.clone());
                    self.schema(value, None)?;
                    self.pointer.pop();
                }
            }
        }
        Ok(())
    }

    fn each_element(&mut self, items: &[Value]) -> Result<(), InvalidToolHeaders> {
        for (index, item) in items.iter().enumerate() {
            self.pointer.push(index.to_string());
            self.schema(item, None)?;
            self.pointer.pop();
        }
        Ok(())
    }

    fn pointer_to(&self, last: &str) -> String {
        let mut pointer = String::new();
        for segment in self.pointer.iter().map(String::as_str).chain([last]) {
            pointer.push('/');
            pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        pointer
    }

    /// Validates one reachable annotation on the property schema `node` at `path`.
    fn collect(
        &mut self,
        annotation: &Value,
        node: &Value,
        path: &[String],
    ) -> Result<(), InvalidToolHeaders> {
        let property = path.join(".");
        let Value::String(name) = annotation else {
            return Err(InvalidToolHeaders::NotAString { property });
        };
        if name.is_empty() {
            return Err(InvalidToolHeaders::Empty { property });
        }
        if !name.bytes().all(is_tchar) {
            return Err(InvalidToolHeaders::NotToken {
                property,
                name: name.clone(),
            });
        }
        primitive_type(node).map_err(|found| InvalidToolHeaders::NotPrimitive {
            property: property.clone(),
            name: name.clone(),
            found,
        })?;
        if let Some(existing) = self
            .params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            return Err(InvalidToolHeaders::Duplicate {
                name: name.clone(),
                first: existing.path.join("."),
                second: property,
            });
        }
        self.params.push(HeaderParam {
            name: name.clone(),
            path: path.to_vec(),
        });
        Ok(())
    }
}

/// Ok when the property's type is exactly one permitted primitive; otherwise a description of
/// what was found. A one-element type array (`["string"]`) is the same as the plain name; any
/// nullable form (`["string","null"]`, OpenAPI's `nullable: true`) is refused.
fn primitive_type(property_schema: &Value) -> Result<(), String> {
    if property_schema.get("nullable") == Some(&Value::Bool(true)) {
        return Err("nullable".to_owned());
    }
    let declared = match property_schema.get("type") {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Array(names)) if names.len() == 1 => names[0].as_str(),
        _ => None,
    };
    match declared {
        Some("string" | "integer" | "boolean") => Ok(()),
        _ => Err(match property_schema.get("type") {
            None => "(none declared)".to_owned(),
            Some(found) => found.to_string(),
        }),
    }
}

/// The `Mcp-Param-*` headers of one `tools/call`: for each parameter, the argument at its path,
/// converted (integer → decimal, boolean → `true`/`false`, string → encoded). An argument that
/// is null or absent gives no header. The body is what the server compares against, so a
/// value of an unexpected type is mirrored as what it is (a number as its decimal text);
/// arrays and objects cannot be mirrored and are skipped.
pub fn param_headers(params: &[HeaderParam], arguments: &Value) -> Vec<(String, String)> {
    params
        .iter()
        .filter_map(|param| {
            let value = param
                .path
                .iter()
                .try_fold(arguments, |node, key| node.get(key))?;
            header_text(value).map(|text| (param.header_name(), text))
        })
        .collect()
}

fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(encode_header_value(text)),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            // 42.0 in the body of an integer argument: the spec compares numerically, send 42.
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                // In range and integral, so the conversion is exact.
                (f as i64).to_string()
            }
            _ => number.to_string(),
        }),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A tool removed from a `tools/list` result, with the reason (log it as a warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedTool {
    pub name: Option<String>,
    pub reason: InvalidToolHeaders,
}

impl fmt::Display for RejectedTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        write!(
            f,
            "removed tool `{name}` from the tools/list result: {}",
            self.reason
        )
    }
}

/// The outcome of [`filter_tools_list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolsListFiltered<'a> {
    /// The frame to forward: the original bytes when no tool was removed, otherwise the same
    /// frame with only the `tools` array rewritten (every other byte kept).
    pub frame: Cow<'a, [u8]>,
    /// Every kept, named tool with its header parameters (often none), for the bridge's cache.
    pub tools: Vec<(String, Vec<HeaderParam>)>,
    /// The tools removed, with reasons.
    pub rejected: Vec<RejectedTool>,
}

/// The frame given to [`filter_tools_list`] has no `result.tools` array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAToolsListResult;

impl fmt::Display for NotAToolsListResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the frame is not a tools/list result (no result.tools array); forward it unchanged",
        )
    }
}

impl std::error::Error for NotAToolsListResult {}

/// Removes the tools with invalid `x-mcp-header` annotations from a `tools/list` result frame
/// and reports the header parameters of the others.
pub fn filter_tools_list(frame: &[u8]) -> Result<ToolsListFiltered<'_>, NotAToolsListResult> {
    #[derive(Deserialize)]
    struct ResultOnly<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct ToolsOnly<'a> {
        #[serde(borrow)]
        tools: &'a RawValue,
    }
    let result = serde_json::from_slice::<ResultOnly>(frame)
        .map_err(|_| NotAToolsListResult)?
        .result;
    let tools_raw = serde_json::from_str::<ToolsOnly>(result.get())
        .map_err(|_| NotAToolsListResult)?
        .tools;
    let tool_list =
        serde_json::from_str::<Vec<&RawValue>>(tools_raw.get()).map_err(|_| NotAToolsListResult)?;

    let mut kept: Vec<&RawValue> = Vec::with_capacity(tool_list.len());
    let mut filtered = ToolsListFiltered {
        frame: Cow::Borrowed(frame),
        tools: Vec::new(),
        rejected: Vec::new(),
    };
    for tool in tool_list {
        let (name, verdict) = examine_tool(tool);
        match verdict {
            Ok(params) => {
                kept.push(tool);
                if let Some(name) = name {
                    filtered.tools.push((name, params));
                }
            }
            Err(reason) => filtered.rejected.push(RejectedTool { name, reason }),
        }
    }
    if !filtered.rejected.is_empty() {
        filtered.frame = Cow::Owned(splice_tools(frame, tools_raw, &kept)?);
    }
    Ok(filtered)
}

/// A tool's name and the verdict on its annotations.
fn examine_tool(tool: &RawValue) -> (Option<String>, Result<Vec<HeaderParam>, InvalidToolHeaders>) {
    #[derive(Deserialize)]
    struct ToolProbe<'a> {
        #[serde(default, borrow)]
        name: Option<&'a RawValue>,
        #[serde(default, borrow, rename = "inputSchema")]
        input_schema: Option<&'a RawValue>,
    }
    let Ok(probe) = serde_json::from_str::<ToolProbe>(tool.get()) else {
        // Not an object with readable members: not ours to judge, forward it.
        return (None, Ok(Vec::new()));
    };
    let name = probe
        .name
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let Some(schema_raw) = probe.input_schema else {
        return (name, Ok(Vec::new()));
    };
    let verdict = match serde_json::from_str::<Value>(schema_raw.get()) {
        Ok(schema) => header_params(&schema),
        // Deeper than serde_json's recursion limit. Without any possible spelling of the
        // keyword (escapes included) it cannot carry annotations, so it is harmless.
        Err(_) if !schema_raw.get().contains(X_MCP_HEADER) && !schema_raw.get().contains('\\') => {
            Ok(Vec::new())
        }
        Err(_) => Err(InvalidToolHeaders::SchemaTooDeep),
    };
    (name, verdict)
}

/// `frame` with the `tools` array (the slice `tools_raw` borrows from it) replaced by `kept`.
pub(crate) fn splice_tools(
    frame: &[u8],
    tools_raw: &RawValue,
    kept: &[&RawValue],
) -> Result<Vec<u8>, NotAToolsListResult> {
    // `tools_raw` borrows from `frame`: its offset is the distance between the two pointers.
    let start = (tools_raw.get().as_ptr() as usize)
        .checked_sub(frame.as_ptr() as usize)
        .ok_or(NotAToolsListResult)?;
    let end = start + tools_raw.get().len();
    if end > frame.len() {
        return Err(NotAToolsListResult);
    }
    let mut rewritten = Vec::with_capacity(frame.len());
    rewritten.extend_from_slice(&frame[..start]);
    rewritten.push(b'[');
    for (index, tool) in kept.iter().enumerate() {
        if index > 0 {
            rewritten.push(b',');
        }
        rewritten.extend_from_slice(tool.get().as_bytes());
    }
    rewritten.push(b']');
    rewritten.extend_from_slice(&frame[end..]);
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::classify;
    use serde_json::json;

    fn params_of(schema: Value) -> Result<Vec<HeaderParam>, InvalidToolHeaders> {
        header_params(&schema)
    }

    fn param(name: &str, path: &[&str]) -> HeaderParam {
        HeaderParam {
            name: name.to_owned(),
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn modern_versions() {
        assert!(is_modern_version("2026-07-28"));
        assert!(is_modern_version("2027-01-01"));
        assert!(MODERN_VERSIONS.iter().all(|v| is_modern_version(v)));
        for legacy in [
            "2025-11-25",
            "2025-06-18",
            "2025-03-26",
            "2024-11-05",
            "",
            "zzzz-zz-zz",
            "2026-7-28",
        ] {
            assert!(!is_modern_version(legacy), "{legacy}");
        }
    }

    #[test]
    fn encodes_values_like_the_spec_examples() {
        assert_eq!(encode_header_value("us-west1"), "us-west1");
        assert_eq!(
            encode_header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(encode_header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(
            encode_header_value("line1\nline2"),
            "=?base64?bGluZTEKbGluZTI=?="
        );
        assert_eq!(
            encode_header_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
    }

    #[test]
    fn encoding_edge_cases() {
        assert_eq!(encode_header_value("inner space ok"), "inner space ok");
        assert_eq!(
            encode_header_value("file:///projects/myapp/config.json"),
            "file:///projects/myapp/config.json"
        );
        assert_eq!(encode_header_value(""), "");
        assert!(encode_header_value("trailing ").starts_with("=?base64?"));
        assert!(encode_header_value(" leading").starts_with("=?base64?"));
        assert!(encode_header_value("tab\there").starts_with("=?base64?"));
        assert!(encode_header_value("nul\0").starts_with("=?base64?"));
        assert!(encode_header_value("del\x7f").starts_with("=?base64?"));
        assert!(encode_header_value("caf\u{e9}").starts_with("=?base64?"));
        // Only the exact, case-sensitive sentinel shape is ambiguous.
        assert_eq!(encode_header_value("=?BASE64?x?="), "=?BASE64?x?=");
        assert_eq!(encode_header_value("=?base64?x"), "=?base64?x");
        for value in [
            "Hello, 世界",
            " padded ",
            "=?base64?literal?=",
            "a\r\nb",
            "plain",
            "",
        ] {
            assert_eq!(
                decode_header_value(&encode_header_value(value)).as_deref(),
                Some(value)
            );
        }
        assert_eq!(decode_header_value("=?base64?!!!?="), None);
    }

    #[test]
    fn standard_headers_for_each_method() {
        let call = classify(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}"#,
        )
        .unwrap();
        assert_eq!(
            standard_headers(&call),
            vec![
                (MCP_METHOD, "tools/call".to_owned()),
                (MCP_NAME, "get_weather".to_owned())
            ]
        );
        let read = classify(br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a b/\u00e9"}}"#).unwrap();
        assert_eq!(
            standard_headers(&read),
            vec![
                (MCP_METHOD, "resources/read".to_owned()),
                (MCP_NAME, encode_header_value("file:///a b/é"))
            ]
        );
        let prompt =
            classify(br#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":" x"}}"#)
                .unwrap();
        assert_eq!(
            standard_headers(&prompt)[1],
            (MCP_NAME, "=?base64?IHg=?=".to_owned())
        );
        let list = classify(br#"{"jsonrpc":"2.0","id":0,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            standard_headers(&list),
            vec![(MCP_METHOD, "tools/list".to_owned())]
        );
        let note = classify(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            standard_headers(&note),
            vec![(MCP_METHOD, "notifications/initialized".to_owned())]
        );
        let response = classify(br#"{"jsonrpc":"2.0","id":0,"result":{}}"#).unwrap();
        assert!(standard_headers(&response).is_empty());
    }

    #[test]
    fn collects_spec_example_annotation() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "description": "The region", "x-mcp-header": "Region"},
                "query": {"type": "string"}
            },
            "required": ["region", "query"]
        });
        assert_eq!(params_of(schema), Ok(vec![param("Region", &["region"])]));
    }

    #[test]
    fn collects_integer_boolean_and_nested_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer", "x-mcp-header": "Count"},
                "dry": {"type": ["boolean"], "x-mcp-header": "Dry-Run"},
                "options": {"type": "object", "properties": {
                    "tenant": {"type": "string", "x-mcp-header": "Tenant_ID"}
                }}
            }
        });
        let mut found = params_of(schema).unwrap();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            found,
            vec![
                param("Count", &["count"]),
                param("Dry-Run", &["dry"]),
                param("Tenant_ID", &["options", "tenant"]),
            ]
        );
    }

    #[test]
    fn schema_without_annotations_has_no_params() {
        assert_eq!(params_of(json!({"type": "object"})), Ok(vec![]));
        assert_eq!(params_of(json!(true)), Ok(vec![]));
        // A property *named* x-mcp-header is not an annotation, nor is one inside data keywords.
        let schema = json!({"type": "object", "properties": {
            "x-mcp-header": {"type": "string"},
            "a": {"type": "object", "default": {"x-mcp-header": "A"}, "examples": [{"x-mcp-header": "B"}],
                  "enum": [{"x-mcp-header": "C"}], "const": {"x-mcp-header": "D"}}
        }});
        assert_eq!(params_of(schema), Ok(vec![]));
    }

    #[test]
    fn rejects_empty_and_non_string_annotations() {
        let empty = json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}});
        assert_eq!(
            params_of(empty),
            Err(InvalidToolHeaders::Empty {
                property: "a".into()
            })
        );
        let number = json!({"properties": {"a": {"type": "string", "x-mcp-header": 5}}});
        assert_eq!(
            params_of(number),
            Err(InvalidToolHeaders::NotAString {
                property: "a".into()
            })
        );
    }

    #[test]
    fn rejects_non_token_names() {
        for bad in [
            "Has Space",
            "Colon:",
            "CR\r",
            "LF\n",
            "Tab\t",
            "R\u{e9}gion",
            "a/b",
            "(x)",
            "\"q\"",
        ] {
            let schema = json!({"properties": {"a": {"type": "string", "x-mcp-header": bad}}});
            assert!(
                matches!(params_of(schema), Err(InvalidToolHeaders::NotToken { .. })),
                "{bad:?}"
            );
        }
        let all_tchars = "!#$%&'*+-.^_`|~09AZaz";
        let schema = json!({"properties": {"a": {"type": "string", "x-mcp-header": all_tchars}}});
        assert!(params_of(schema).is_ok());
    }

    #[test]
    fn rejects_case_insensitive_duplicates() {
        let schema = json!({"properties": {
            "a": {"type": "string", "x-mcp-header": "Region"},
            "b": {"type": "string", "x-mcp-header": "REGION"}
        }});
        assert!(matches!(
            params_of(schema),
            Err(InvalidToolHeaders::Duplicate { .. })
        ));
    }

    #[test]
    fn rejects_non_primitive_number_and_nullable_types() {
        for property in [
            json!({"type": "number", "x-mcp-header": "X"}),
            json!({"type": "array", "items": {"type": "string"}, "x-mcp-header": "X"}),
            json!({"type": "object", "x-mcp-header": "X"}),
            json!({"type": ["string", "null"], "x-mcp-header": "X"}),
            json!({"type": "string", "nullable": true, "x-mcp-header": "X"}),
            json!({"x-mcp-header": "X"}),
            json!({"$ref": "#/$defs/s", "x-mcp-header": "X"}),
        ] {
            let schema = json!({"type": "object", "properties": {"p": property}});
            assert!(
                matches!(
                    params_of(schema.clone()),
                    Err(InvalidToolHeaders::NotPrimitive { .. })
                ),
                "{schema}"
            );
        }
    }

    #[test]
    fn rejects_annotations_not_reached_through_properties_only() {
        let string_with_header = json!({"type": "string", "x-mcp-header": "X"});
        for (schema, pointer) in [
            (
                json!({"type": "string", "x-mcp-header": "X"}),
                "/x-mcp-header",
            ),
            (
                json!({"properties": {"a": {"type": "array", "items": string_with_header}}}),
                "/properties/a/items/x-mcp-header",
            ),
            (
                json!({"properties": {"a": {"type": "array", "prefixItems": [string_with_header]}}}),
                "/properties/a/prefixItems/0/x-mcp-header",
            ),
            (
                json!({"properties": {"a": {"anyOf": [string_with_header]}}}),
                "/properties/a/anyOf/0/x-mcp-header",
            ),
            (
                json!({"oneOf": [{"properties": {"a": string_with_header}}]}),
                "/oneOf/0/properties/a/x-mcp-header",
            ),
            (
                json!({"allOf": [{"properties": {"a": string_with_header}}]}),
                "/allOf/0/properties/a/x-mcp-header",
            ),
            (json!({"not": string_with_header}), "/not/x-mcp-header"),
            (
                json!({"if": {"properties": {"a": string_with_header}}}),
                "/if/properties/a/x-mcp-header",
            ),
            (
                json!({"$defs": {"s": string_with_header}, "properties": {"a": {"$ref": "#/$defs/s"}}}),
                "/$defs/s/x-mcp-header",
            ),
            (
                json!({"definitions": {"a/b": string_with_header}}),
                "/definitions/a~1b/x-mcp-header",
            ),
            (
                json!({"additionalProperties": string_with_header}),
                "/additionalProperties/x-mcp-header",
            ),
            (
                json!({"patternProperties": {"^r": string_with_header}}),
                "/patternProperties/^r/x-mcp-header",
            ),
            (
                json!({"properties": {"o": {"type": "object", "additionalProperties": string_with_header}}}),
                "/properties/o/additionalProperties/x-mcp-header",
            ),
            (
                json!({"x-vendor": {"deep": [string_with_header]}}),
                "/x-vendor/deep/0/x-mcp-header",
            ),
        ] {
            assert_eq!(
                params_of(schema.clone()),
                Err(InvalidToolHeaders::Unreachable {
                    location: pointer.to_owned()
                }),
                "{schema}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_property() {
        let schema = json!({"properties": {"o": {"properties": {"n": {"type": "number", "x-mcp-header": "N"}}}}});
        let message = params_of(schema).unwrap_err().to_string();
        assert!(
            message.contains("`o.n`") && message.contains("\"N\"") && message.contains("number"),
            "{message}"
        );
    }

    #[test]
    fn param_headers_convert_arguments() {
        let params = vec![
            param("Region", &["region"]),
            param("Count", &["count"]),
            param("Dry", &["dry"]),
            param("Tenant", &["options", "tenant"]),
            param("Greeting", &["greeting"]),
        ];
        let arguments = json!({
            "region": "us-west1", "count": -7, "dry": false,
            "options": {"tenant": " acme "}, "greeting": "Hello, 世界"
        });
        assert_eq!(
            param_headers(&params, &arguments),
            vec![
                ("Mcp-Param-Region".to_owned(), "us-west1".to_owned()),
                ("Mcp-Param-Count".to_owned(), "-7".to_owned()),
                ("Mcp-Param-Dry".to_owned(), "false".to_owned()),
                (
                    "Mcp-Param-Tenant".to_owned(),
                    "=?base64?IGFjbWUg?=".to_owned()
                ),
                (
                    "Mcp-Param-Greeting".to_owned(),
                    "=?base64?SGVsbG8sIOS4lueVjA==?=".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn param_headers_omit_null_absent_and_structured_values() {
        let params = vec![
            param("A", &["a"]),
            param("B", &["b"]),
            param("C", &["o", "c"]),
            param("D", &["d"]),
        ];
        let arguments = json!({"a": null, "o": "not an object", "d": {"x": 1}});
        assert!(param_headers(&params, &arguments).is_empty());
        assert!(param_headers(&params, &Value::Null).is_empty());
    }

    #[test]
    fn param_headers_mirror_numbers_faithfully() {
        let params = vec![param("N", &["n"])];
        let header = |value: Value| param_headers(&params, &json!({ "n": value }))[0].1.clone();
        assert_eq!(header(json!(42.0)), "42");
        assert_eq!(header(json!(0)), "0");
        assert_eq!(header(json!(9007199254740991_i64)), "9007199254740991");
        assert_eq!(header(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(header(json!(1.5)), "1.5");
        assert_eq!(header(json!(true)), "true");
        assert_eq!(header(json!("7")), "7");
    }

    fn tools_frame(tools: &str) -> String {
        format!(r#"{{"result":{{"tools":{tools},"nextCursor":"c2"}},"jsonrpc":"2.0","id":3}}"#)
    }

    #[test]
    fn filter_keeps_bytes_identical_when_nothing_is_removed() {
        let frame = tools_frame(
            r#"[ {"name":"get-sum","inputSchema":{"type":"object","properties":{"a":{"type":"number"}}}},
                {"name":"sql","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Region"}}}},
                {"name":"noschema"} ]"#,
        );
        let filtered = filter_tools_list(frame.as_bytes()).unwrap();
        assert!(matches!(filtered.frame, Cow::Borrowed(bytes) if bytes == frame.as_bytes()));
        assert!(filtered.rejected.is_empty());
        assert_eq!(
            filtered.tools,
            vec![
                ("get-sum".to_owned(), vec![]),
                ("sql".to_owned(), vec![param("Region", &["region"])]),
                ("noschema".to_owned(), vec![]),
            ]
        );
    }

    #[test]
    fn filter_removes_invalid_tools_and_keeps_the_rest_of_the_frame() {
        let good = r#"{"name":"good","inputSchema":{"properties":{"r":{"type":"string","x-mcp-header":"R"}}}}"#;
        let bad = r#"{"name":"bad","inputSchema":{"properties":{"n":{"type":"number","x-mcp-header":"N"}}}}"#;
        let also_good = r#"{"name":"plain","inputSchema":{"type":"object"}}"#;
        let frame = tools_frame(&format!("[{bad}, {good},\n {bad}, {also_good}]"));
        let filtered = filter_tools_list(frame.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(&filtered.frame).unwrap(),
            tools_frame(&format!("[{good},{also_good}]"))
        );
        assert_eq!(filtered.rejected.len(), 2);
        assert_eq!(filtered.rejected[0].name.as_deref(), Some("bad"));
        assert!(filtered.rejected[0]
            .to_string()
            .contains("removed tool `bad`"));
        assert_eq!(
            filtered
                .tools
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["good", "plain"]
        );
        // The rewritten frame is still the same kind of response.
        let info = classify(&filtered.frame).unwrap();
        assert_eq!(info.id, Some(crate::jsonrpc::Id::Num(3)));
    }

    #[test]
    fn filter_can_remove_every_tool() {
        let bad = r#"{"name":"bad","inputSchema":{"items":{"type":"string","x-mcp-header":"X"}}}"#;
        let frame = tools_frame(&format!("[{bad}]"));
        let filtered = filter_tools_list(frame.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(&filtered.frame).unwrap(),
            tools_frame("[]")
        );
        assert!(filtered.tools.is_empty());
    }

    #[test]
    fn filter_handles_too_deep_schemas() {
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        let harmless = format!(
            r#"{{"name":"deep","inputSchema":{{"properties":{{"a":{{"default":{deep}}}}}}}}}"#
        );
        let suspicious =
            format!(r#"{{"name":"deep2","inputSchema":{{"x-mcp-header":"X","default":{deep}}}}}"#);
        let frame = tools_frame(&format!("[{harmless},{suspicious}]"));
        let filtered = filter_tools_list(frame.as_bytes()).unwrap();
        assert_eq!(filtered.tools, vec![("deep".to_owned(), vec![])]);
        assert_eq!(
            filtered.rejected[0].reason,
            InvalidToolHeaders::SchemaTooDeep
        );
    }

    #[test]
    fn filter_refuses_frames_without_tools() {
        for frame in [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#,
            "not json",
        ] {
            assert_eq!(
                filter_tools_list(frame.as_bytes()),
                Err(NotAToolsListResult),
                "{frame}"
            );
        }
    }
}
