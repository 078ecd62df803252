//! MCP 2026-07-28 ("modern", stateless) through the bridge: headers derived from each message,
//! x-mcp-header, HeaderMismatch retry, cancellation by closing the stream, and both eras in one
//! process. The test server checks every header independently of the bridge's own code.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::server::{ServerOptions, TestServer};

const MODERN: &str = "2026-07-28";

fn modern_server() -> TestServer {
    TestServer::start(ServerOptions {
        modern: true,
        ..Default::default()
    })
}

/// A modern request: `_meta` carries the version and client capabilities.
fn modern(id: Value, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn call(b: &mut Bridge, msg: Value) -> Value {
    let id = msg["id"].clone();
    b.send(&msg);
    b.recv_response(&id).0
}

#[test]
fn modern_requests_carry_headers_from_their_body_and_no_session() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let discover = call(&mut b, modern(json!(1), "server/discover", json!({})));
    assert!(
        discover["result"]["supportedVersions"].as_array().is_some(),
        "{discover}"
    );
    let resp = call(
        &mut b,
        modern(
            json!(2),
            "tools/call",
            json!({"name":"echo","arguments":{"text":"modern"}}),
        ),
    );
    assert_eq!(resp["result"]["content"][0]["text"], "modern", "{resp}");
    assert_eq!(
        resp["result"]["resultType"], "complete",
        "results pass through untouched"
    );
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(5)).unwrap().success());
    let reqs = srv.requests();
    let call_req = reqs
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(call_req.header("mcp-protocol-version"), Some(MODERN));
    assert_eq!(call_req.header("mcp-method"), Some("tools/call"));
    assert_eq!(call_req.header("mcp-name"), Some("echo"));
    assert!(reqs.iter().all(|r| r.header("mcp-session-id").is_none()));
    assert!(
        reqs.iter().all(|r| r.method == "POST"),
        "no GET stream, no DELETE in this era"
    );
}

#[test]
fn invalid_tools_are_dropped_and_annotated_arguments_become_headers() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let list = call(&mut b, modern(json!(1), "tools/list", json!({})));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"region_echo"), "{names:?}");
    assert!(
        !names.contains(&"bad_header_tool"),
        "invalid x-mcp-header tool is removed: {names:?}"
    );
    // Listing again does not warn again.
    call(&mut b, modern(json!(2), "tools/list", json!({})));
    assert_eq!(
        b.stderr().matches("bad_header_tool").count(),
        1,
        "{}",
        b.stderr()
    );

    let resp = call(
        &mut b,
        modern(
            json!(3),
            "tools/call",
            json!({"name":"region_echo","arguments":{"region":"Zürich","count":3,"flag":true,"text":"t"}}),
        ),
    );
    assert!(resp.get("result").is_some(), "{resp}");
    let req = srv
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(req.header("mcp-param-count"), Some("3"));
    assert_eq!(req.header("mcp-param-flag"), Some("true"));
    let region = req.header("mcp-param-region").unwrap();
    assert!(
        region.starts_with("=?base64?") && region.ends_with("?="),
        "non-ASCII is encoded: {region}"
    );
}

#[test]
fn header_mismatch_refreshes_the_tool_list_and_retries_once() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    // No tools/list yet: the bridge cannot know region_echo's headers, the server says -32020.
    let resp = call(
        &mut b,
        modern(
            json!(1),
            "tools/call",
            json!({"name":"region_echo","arguments":{"region":"eu","count":1,"flag":false}}),
        ),
    );
    assert!(
        resp.get("result").is_some(),
        "retried after refreshing tools/list: {resp}"
    );
    let methods: Vec<String> = srv
        .requests()
        .iter()
        .filter_map(|r| r.rpc_method())
        .collect();
    assert_eq!(
        methods,
        ["tools/call", "tools/list", "tools/call"],
        "{methods:?}"
    );
    assert!(
        b.recv_within(Duration::from_millis(200)).is_none(),
        "the bridge's own tools/list is not forwarded"
    );
}

#[test]
fn cancel_closes_the_stream_and_is_not_posted() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.send(&modern(
        json!(7),
        "tools/call",
        json!({"name":"slow","arguments":{"ms":5000}}),
    ));
    srv.wait_for_request(Duration::from_secs(5), |r| {
        r.rpc_method().as_deref() == Some("tools/call")
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    b.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"user"}}));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while srv.cancelled_streams().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(srv.cancelled_streams(), vec![json!(7)]);
    assert!(
        b.recv_within(Duration::from_millis(500)).is_none(),
        "a cancelled request gets no answer"
    );
    assert!(srv
        .requests()
        .iter()
        .all(|r| r.rpc_method().as_deref() != Some("notifications/cancelled")));
    // The bridge goes on.
    let resp = call(
        &mut b,
        modern(
            json!(8),
            "tools/call",
            json!({"name":"echo","arguments":{"text":"after"}}),
        ),
    );
    assert_eq!(resp["result"]["content"][0]["text"], "after");
}

#[test]
fn modern_errors_reach_the_client_intact_without_fallback() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let mut msg = modern(json!(1), "tools/list", json!({}));
    msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let resp = call(&mut b, msg);
    assert_eq!(resp["error"]["code"], -32022, "{resp}");
    assert!(resp["error"]["data"]["supported"].is_array(), "{resp}");
    let resp = call(&mut b, modern(json!(2), "no/such/method", json!({})));
    assert_eq!(resp["error"]["code"], -32601, "{resp}");
    assert!(srv
        .requests()
        .iter()
        .all(|r| r.method == "POST" && r.path == "/mcp"));
}

#[test]
fn dual_era_client_probes_then_falls_back_to_initialize() {
    // A handshake-only server answers the probe with 400 + id:null (server-everything).
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let probe = call(&mut b, modern(json!(1), "server/discover", json!({})));
    assert_eq!(probe["id"], 1);
    assert!(probe.get("error").is_some());
    b.initialize();
    let resp = b.call(
        json!(2),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"legacy era"}}),
    );
    assert_eq!(resp["result"]["content"][0]["text"], "legacy era");
}

#[test]
fn subscriptions_listen_streams_notifications_and_ends_at_shutdown() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.send(&modern(json!(1), "subscriptions/listen", json!({})));
    let mut methods = Vec::new();
    while methods.len() < 2 {
        let msg = b.recv();
        methods.push(msg["method"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        methods.contains(&"notifications/tools/list_changed".to_string()),
        "{methods:?}"
    );
    let t = std::time::Instant::now();
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(5)).unwrap().success());
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// A resource URI far longer than any header may be.
fn long_uri() -> String {
    format!("test://{}", "u".repeat(20_000))
}

#[test]
fn a_handshake_era_session_gets_no_2026_headers_and_a_long_uri_never_fails_the_request() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let uri = long_uri();
    let resp = b.call(json!(5), "resources/read", json!({ "uri": uri }));
    // The server's own answer (an unknown resource), not a bridge transport error.
    assert!(
        resp["error"]["code"] != json!(-32000) && resp["error"]["code"] != json!(-32001),
        "{resp}"
    );
    let read = srv
        .requests()
        .into_iter()
        .find(|r| r.rpc_method().as_deref() == Some("resources/read"))
        .expect("the request reached the server");
    assert_eq!(
        read.header("mcp-name"),
        None,
        "no Mcp-Name in a 2025 session"
    );
    assert_eq!(
        read.header("mcp-method"),
        None,
        "no Mcp-Method in a 2025 session"
    );
}

#[test]
fn a_modern_value_too_long_for_a_header_is_left_out_and_the_request_still_goes() {
    let srv = modern_server();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let uri = long_uri();
    let resp = call(
        &mut b,
        modern(json!(1), "resources/read", json!({ "uri": uri })),
    );
    assert!(
        resp["error"]["code"] != json!(-32000) && resp["error"]["code"] != json!(-32001),
        "{resp}"
    );
    let read = srv
        .requests()
        .into_iter()
        .find(|r| r.rpc_method().as_deref() == Some("resources/read"))
        .expect("the request reached the server");
    assert_eq!(read.header("mcp-method"), Some("resources/read"));
    assert_eq!(
        read.header("mcp-name"),
        None,
        "left out: 20 kB does not fit"
    );
}
