//! Tests of the test server itself, over plain HTTP with a hand-written client, so that bridge
//! tests can trust what it checks: here, its 2026-07-28 ("modern") mode.
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::server::{ServerOptions, TestServer, TlsMode};

const MODERN: &str = "2026-07-28";

fn modern_server() -> TestServer {
    TestServer::start(ServerOptions {
        tls: TlsMode::PlainHttp,
        modern: true,
        ..ServerOptions::default()
    })
}

/// A modern request body: `params._meta` carries the version and client capabilities.
fn modern_request(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "selftest", "version": "1"}
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The headers a correct client sends with `body`, besides the `Mcp-Param-*` ones.
fn standard_headers(body: &Value) -> Vec<(String, String)> {
    let method = body["method"].as_str().unwrap_or("").to_string();
    let mut headers = vec![
        ("MCP-Protocol-Version".to_string(), MODERN.to_string()),
        ("Mcp-Method".to_string(), method.clone()),
    ];
    let name = match method.as_str() {
        "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
        "resources/read" => body["params"]["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.push(("Mcp-Name".to_string(), name.to_string()));
    }
    headers
}

/// One HTTP/1.1 exchange on its own connection, readable incrementally (for SSE).
struct Exchange {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    /// Decoded body bytes read so far but not consumed.
    pending: Vec<u8>,
}

impl Exchange {
    fn send(server: &TestServer, method: &str, headers: &[(String, String)], body: &str) -> Self {
        let mut sock = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = format!(
            "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            server.port(),
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        sock.write_all(head.as_bytes()).unwrap();
        sock.write_all(body.as_bytes()).unwrap();
        let mut reader = BufReader::new(sock);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let mut exchange = Exchange {
            reader,
            status,
            headers,
            chunked,
            pending: Vec::new(),
        };
        if !chunked {
            let len: usize = exchange
                .header("content-length")
                .unwrap_or("0")
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            exchange.reader.read_exact(&mut body).unwrap();
            exchange.pending = body;
        }
        exchange
    }

    fn post(server: &TestServer, headers: &[(String, String)], body: &Value) -> Self {
        Exchange::send(server, "POST", headers, &body.to_string())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads one more chunk of a chunked body; false at its end.
    fn read_chunk(&mut self) -> bool {
        let mut size = String::new();
        if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
            return false;
        }
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).unwrap();
        data.truncate(size);
        self.pending.extend(data);
        size > 0
    }

    /// The whole (non-streamed) body as JSON.
    fn json(&mut self) -> Value {
        while self.chunked && self.read_chunk() {}
        serde_json::from_slice(&self.pending).unwrap()
    }

    /// The next SSE event's data that is not a comment or empty (priming), as JSON.
    fn next_event(&mut self) -> Option<Value> {
        loop {
            let text = String::from_utf8_lossy(&self.pending).to_string();
            if let Some(end) = text.find("\n\n") {
                self.pending.drain(..end + 2);
                let data: Vec<&str> = text[..end]
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                if data.is_empty() || data.iter().all(|d| d.is_empty()) {
                    continue;
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            if !self.read_chunk() {
                return None;
            }
        }
    }

    /// Reads SSE events up to the response with `id`; returns (response, notifications before it).
    fn response(&mut self, id: i64) -> (Value, Vec<Value>) {
        if self.header("content-type") == Some("application/json") {
            return (self.json(), Vec::new());
        }
        let mut before = Vec::new();
        while let Some(event) = self.next_event() {
            if event["id"] == json!(id) {
                return (event, before);
            }
            before.push(event);
        }
        panic!("stream ended without the response to {id}; got {before:?}");
    }
}

fn post_modern(server: &TestServer, body: &Value, extra: &[(&str, &str)]) -> Exchange {
    let mut headers = standard_headers(body);
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Exchange::post(server, &headers, body)
}

fn assert_header_mismatch(mut exchange: Exchange, id: i64, what: &str) {
    assert_eq!(exchange.status, 400, "{what}");
    let body = exchange.json();
    assert_eq!(body["error"]["code"], -32020, "{what}: {body}");
    assert_eq!(body["id"], id, "{what}: {body}");
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn server_starts_on_a_free_port() {
    let first = modern_server();
    let second = modern_server();
    assert_ne!(
        first.port(),
        second.port(),
        "each server gets a port of its own"
    );
    for server in [&first, &second] {
        let port = server.port();
        assert_eq!(server.url("/mcp"), format!("http://127.0.0.1:{port}/mcp"));
        // The server holds its port (nobody else can listen there) and serves on it.
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
            "port {port} is held by the server"
        );
        let mut exchange = post_modern(
            server,
            &modern_request(1, "server/discover", json!({})),
            &[],
        );
        assert_eq!(exchange.status, 200);
        assert_eq!(exchange.json()["id"], 1);
    }
}

#[test]
fn modern_discover_needs_no_session() {
    let server = modern_server();
    let body = modern_request(1, "server/discover", json!({}));
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 200);
    assert!(exchange.header("mcp-session-id").is_none());
    let response = exchange.json();
    let result = &response["result"];
    assert_eq!(result["supportedVersions"], json!([MODERN]));
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        support::server::SERVER_NAME
    );
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert!(result["capabilities"]["tools"].is_object());
}

#[test]
fn modern_results_carry_result_type_and_server_info() {
    let server = modern_server();
    let body = modern_request(2, "tools/list", json!({}));
    let (response, _) = post_modern(&server, &body, &[]).response(2);
    let result = &response["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        support::server::SERVER_NAME
    );
    let names: Vec<&str> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 14, "{names:?}");
    assert!(names.contains(&"region_echo") && names.contains(&"bad_header_tool"));
}

#[test]
fn legacy_tool_list_is_unchanged_in_modern_mode() {
    let server = modern_server();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let mut exchange = Exchange::post(&server, &[], &init);
    let session = exchange.header("mcp-session-id").unwrap().to_string();
    exchange.response(0);
    let headers = vec![
        ("Mcp-Session-Id".to_string(), session),
        ("MCP-Protocol-Version".to_string(), "2025-11-25".to_string()),
    ];
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(Exchange::post(&server, &headers, &initialized).status, 202);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    let (response, _) = Exchange::post(&server, &headers, &list).response(1);
    assert_eq!(response["result"]["tools"].as_array().unwrap().len(), 12);
    assert!(response["result"].get("resultType").is_none());
}

#[test]
fn modern_tools_call_with_matching_headers_succeeds() {
    let server = modern_server();
    let args = json!({"region": "us-west1", "count": 3, "flag": true, "text": "hi"});
    let body = modern_request(
        3,
        "tools/call",
        json!({"name": "region_echo", "arguments": args}),
    );
    let extra = [
        ("Mcp-Param-Region", "us-west1"),
        ("mcp-param-count", "3"),
        ("MCP-PARAM-FLAG", "true"),
    ];
    let (response, _) = post_modern(&server, &body, &extra).response(3);
    let text = response["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), args);
    assert_eq!(response["result"]["resultType"], "complete");
}

#[test]
fn modern_accepts_base64_encoded_name_and_params() {
    let server = modern_server();
    // "Zürich" is not ASCII, so it must travel base64-encoded.
    let body = modern_request(
        4,
        "tools/call",
        json!({"name": "region_echo", "arguments": {"region": "Zürich"}}),
    );
    let extra = [("Mcp-Param-Region", "=?base64?WsO8cmljaA==?=")];
    let (response, _) = post_modern(&server, &body, &extra).response(4);
    assert!(response.get("result").is_some(), "{response}");

    let read = modern_request(5, "resources/read", json!({"uri": "test://hello"}));
    let mut headers = standard_headers(&read);
    headers.retain(|(k, _)| k != "Mcp-Name");
    headers.push(("Mcp-Name".into(), "=?base64?dGVzdDovL2hlbGxv?=".into()));
    let (response, _) = Exchange::post(&server, &headers, &read).response(5);
    assert_eq!(response["result"]["contents"][0]["text"], "Hello, world!");
}

#[test]
fn modern_rejects_headers_that_do_not_mirror_the_body() {
    let server = modern_server();
    let body = modern_request(
        6,
        "tools/call",
        json!({"name": "region_echo", "arguments": {"region": "eu", "count": 2}}),
    );
    let good = [("Mcp-Param-Region", "eu"), ("Mcp-Param-Count", "2")];

    let mut headers = standard_headers(&body);
    headers[0].1 = "2025-11-25".into();
    let exchange = Exchange::post(&server, &headers, &body);
    assert_header_mismatch(exchange, 6, "MCP-Protocol-Version differs");

    let mut headers = standard_headers(&body);
    headers[1].1 = "tools/list".into();
    let exchange = Exchange::post(&server, &headers, &body);
    assert_header_mismatch(exchange, 6, "Mcp-Method differs");

    let mut headers = standard_headers(&body);
    headers.retain(|(k, _)| k != "Mcp-Name");
    let exchange = Exchange::post(&server, &headers, &body);
    assert_header_mismatch(exchange, 6, "Mcp-Name missing");

    let exchange = post_modern(&server, &body, &good[..1]);
    assert_header_mismatch(exchange, 6, "Mcp-Param-Count missing");

    let exchange = post_modern(&server, &body, &[good[0], ("Mcp-Param-Count", "3")]);
    assert_header_mismatch(exchange, 6, "Mcp-Param-Count differs");

    let exchange = post_modern(
        &server,
        &body,
        &[good[0], good[1], ("Mcp-Param-Flag", "false")],
    );
    assert_header_mismatch(exchange, 6, "Mcp-Param-Flag for an absent argument");

    let exchange = post_modern(
        &server,
        &body,
        &[("Mcp-Param-Region", "=?base64?ZXU?="), good[1]],
    );
    assert_header_mismatch(exchange, 6, "invalid base64 (missing padding)");

    let (response, _) = post_modern(&server, &body, &good).response(6);
    assert!(response.get("result").is_some(), "{response}");
}

#[test]
fn modern_unsupported_version_lists_the_supported_ones() {
    let server = modern_server();
    let mut body = modern_request(7, "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let mut headers = standard_headers(&body);
    headers[0].1 = "2099-01-01".into();
    let mut exchange = Exchange::post(&server, &headers, &body);
    assert_eq!(exchange.status, 400);
    let response = exchange.json();
    assert_eq!(response["error"]["code"], -32022);
    assert_eq!(response["error"]["data"]["supported"], json!([MODERN]));
    assert_eq!(response["id"], 7);
}

#[test]
fn modern_unknown_method_is_404_and_missing_capabilities_400() {
    let server = modern_server();
    let body = modern_request(8, "nope/nothing", json!({}));
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 404);
    assert_eq!(exchange.json()["error"]["code"], -32601);

    let mut body = modern_request(9, "tools/list", json!({}));
    body["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 400);
    assert_eq!(exchange.json()["error"]["code"], -32602);
}

#[test]
fn modern_get_and_delete_are_405() {
    let server = modern_server();
    let headers = vec![("MCP-Protocol-Version".to_string(), MODERN.to_string())];
    assert_eq!(Exchange::send(&server, "GET", &headers, "").status, 405);
    assert_eq!(Exchange::send(&server, "DELETE", &headers, "").status, 405);
}

#[test]
fn modern_progress_arrives_before_the_result() {
    let server = modern_server();
    let mut body = modern_request(
        10,
        "tools/call",
        json!({"name": "slow", "arguments": {"ms": 300, "steps": 3}}),
    );
    body["params"]["_meta"]["progressToken"] = json!("p");
    let (response, before) = post_modern(&server, &body, &[]).response(10);
    assert_eq!(response["result"]["content"][0]["text"], "slow done");
    let progress: Vec<&Value> = before
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{before:?}");
    assert!(server.cancelled_streams().is_empty());
}

#[test]
fn modern_stream_closed_by_client_is_recorded_as_cancellation() {
    let server = modern_server();
    let body = modern_request(
        11,
        "tools/call",
        json!({"name": "slow", "arguments": {"ms": 10000}}),
    );
    let exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 200);
    let started = Instant::now();
    drop(exchange);
    wait_until("the cancelled stream", || {
        server.cancelled_streams() == vec![json!(11)]
    });
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn modern_listen_streams_notifications_until_closed() {
    let server = modern_server();
    let body = modern_request(
        12,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 200);
    let ack = exchange.next_event().unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    let changed = exchange.next_event().unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        12
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.cancelled_streams().is_empty(),
        "the stream stays open"
    );
    drop(exchange);
    wait_until("the closed listen stream", || {
        server.cancelled_streams() == vec![json!(12)]
    });
}

#[test]
fn modern_json_response_mode_answers_with_json() {
    let server = TestServer::start(ServerOptions {
        tls: TlsMode::PlainHttp,
        modern: true,
        json_response: true,
        ..ServerOptions::default()
    });
    let body = modern_request(
        13,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.header("content-type"), Some("application/json"));
    let response = exchange.json();
    assert_eq!(response["result"]["content"][0]["text"], "hi");
    assert_eq!(response["result"]["resultType"], "complete");
}

#[test]
fn without_modern_mode_a_discover_probe_gets_the_legacy_400() {
    let server = TestServer::start(ServerOptions {
        tls: TlsMode::PlainHttp,
        ..ServerOptions::default()
    });
    let body = modern_request(14, "server/discover", json!({}));
    let mut exchange = post_modern(&server, &body, &[]);
    assert_eq!(exchange.status, 400);
    let response = exchange.json();
    assert_eq!(response["id"], Value::Null);
    assert_eq!(response["error"]["code"], -32000);
}

// --- the 2026-07-28 schema ---------------------------------------------------------------------------

/// The revision's JSON Schema, `schema/2026-07-28/schema.json` of the specification repository
/// (modelcontextprotocol/modelcontextprotocol at b0f60ba5, 2026-08-22), kept in the tree so that the
/// check runs offline.
const SCHEMA: &str = include_str!("schema/2026-07-28/schema.json");
/// The name the schema is registered under; nothing is fetched from it.
const SCHEMA_URL: &str = "urn:mcp:schema:2026-07-28";

/// Validates messages against `$defs` entries of the 2026-07-28 schema.
struct Revision {
    compiler: boon::Compiler,
    schemas: boon::Schemas,
}

impl Revision {
    fn load() -> Revision {
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, serde_json::from_str(SCHEMA).unwrap())
            .unwrap();
        Revision {
            compiler,
            schemas: boon::Schemas::new(),
        }
    }

    /// Every violation, when `message` is not a valid `definition`.
    fn violations(&mut self, definition: &str, message: &Value) -> Result<(), String> {
        let location = format!("{SCHEMA_URL}#/$defs/{definition}");
        let index = self
            .compiler
            .compile(&location, &mut self.schemas)
            .unwrap_or_else(|e| panic!("{definition} is not in the schema: {e}"));
        self.schemas
            .validate(message, index)
            .map_err(|e| format!("{e:#}"))
    }

    /// Panics with every violation when `message` is not a valid `definition`.
    fn check(&mut self, definition: &str, message: &Value, what: &str) {
        if let Err(e) = self.violations(definition, message) {
            panic!("{what}: not a valid {definition}: {e}\n{message}");
        }
    }
}

#[test]
fn the_schema_check_itself_rejects_what_the_revision_forbids() {
    let mut revision = Revision::load();
    // The discover result this server sent before SEP-2549: no ttlMs, no cacheScope.
    let old_discover = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "resultType": "complete",
        "supportedVersions": [MODERN],
        "capabilities": {}
    }});
    let e = revision
        .violations("DiscoverResultResponse", &old_discover)
        .unwrap_err();
    assert!(e.contains("ttlMs") && e.contains("cacheScope"), "{e}");
    let mut fixed = old_discover.clone();
    fixed["result"]["ttlMs"] = json!(60000);
    fixed["result"]["cacheScope"] = json!("public");
    revision.check("DiscoverResultResponse", &fixed, "with the SEP-2549 fields");
}

#[test]
fn every_modern_result_follows_the_revision_schema() {
    let server = modern_server();
    let mut revision = Revision::load();
    let requests: [(&str, Value, &str); 9] = [
        ("server/discover", json!({}), "DiscoverResultResponse"),
        ("tools/list", json!({}), "ListToolsResultResponse"),
        (
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
            "CallToolResultResponse",
        ),
        (
            "tools/call",
            json!({"name": "fail", "arguments": {}}),
            "CallToolResultResponse",
        ),
        ("resources/list", json!({}), "ListResourcesResultResponse"),
        (
            "resources/templates/list",
            json!({}),
            "ListResourceTemplatesResultResponse",
        ),
        (
            "resources/read",
            json!({"uri": "test://hello"}),
            "ReadResourceResultResponse",
        ),
        ("prompts/list", json!({}), "ListPromptsResultResponse"),
        (
            "prompts/get",
            json!({"name": "greet", "arguments": {"name": "Ada"}}),
            "GetPromptResultResponse",
        ),
    ];
    for (n, (method, params, definition)) in requests.into_iter().enumerate() {
        let id = 100 + n as i64;
        let body = modern_request(id, method, params);
        let (response, before) = post_modern(&server, &body, &[]).response(id);
        revision.check(definition, &response, method);
        for notification in before {
            revision.check("ServerNotification", &notification, method);
        }
    }
}

#[test]
fn every_modern_error_follows_the_revision_schema() {
    let server = modern_server();
    let mut revision = Revision::load();

    let mut body = modern_request(1, "tools/list", json!({}));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let mut headers = standard_headers(&body);
    headers[0].1 = "2099-01-01".into();
    let response = Exchange::post(&server, &headers, &body).json();
    revision.check(
        "UnsupportedProtocolVersionError",
        &response,
        "unsupported version",
    );

    let body = modern_request(2, "tools/call", json!({"name": "echo", "arguments": {}}));
    let mut headers = standard_headers(&body);
    headers.retain(|(k, _)| k != "Mcp-Name");
    let response = Exchange::post(&server, &headers, &body).json();
    revision.check("HeaderMismatchError", &response, "missing Mcp-Name");

    // Not methods of this revision: ping and logging/setLevel are gone, initialize never was.
    for (id, method) in [
        (3, "nope/nothing"),
        (4, "ping"),
        (5, "logging/setLevel"),
        (6, "initialize"),
    ] {
        let body = modern_request(id, method, json!({}));
        let mut exchange = post_modern(&server, &body, &[]);
        assert_eq!(exchange.status, 404, "{method}");
        let response = exchange.json();
        revision.check("JSONRPCErrorResponse", &response, method);
        revision.check("MethodNotFoundError", &response["error"], method);
    }

    let mut body = modern_request(7, "tools/list", json!({}));
    body["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let response = post_modern(&server, &body, &[]).json();
    revision.check("JSONRPCErrorResponse", &response, "missing capabilities");
    revision.check(
        "InvalidParamsError",
        &response["error"],
        "missing capabilities",
    );

    let body = modern_request(
        8,
        "tools/call",
        json!({"name": "no-such-tool", "arguments": {}}),
    );
    let (response, _) = post_modern(&server, &body, &[]).response(8);
    revision.check("JSONRPCResponse", &response, "unknown tool");
}

#[test]
fn modern_subscription_notifications_follow_the_revision_schema() {
    let server = modern_server();
    let mut revision = Revision::load();
    let body = modern_request(
        12,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let mut exchange = post_modern(&server, &body, &[]);
    for _ in 0..2 {
        let event = exchange.next_event().unwrap();
        revision.check("ServerNotification", &event, "subscriptions/listen");
    }
}
