//! The bridge over Streamable HTTP, end to end: the real binary on stdio, the test server over
//! real mTLS on 127.0.0.1.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::server::{ServerOptions, TestServer};

fn server(opts: ServerOptions) -> TestServer {
    TestServer::start(opts)
}

fn text_of(resp: &Value) -> String {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {resp}"))
        .to_string()
}

#[test]
fn tool_call_round_trip_over_sse_responses() {
    let srv = server(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let init = b.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let resp = b.call(
        json!(1),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"héllo"}}),
    );
    assert_eq!(text_of(&resp), "héllo");
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(5)).unwrap().success());
}

#[test]
fn tool_call_round_trip_over_json_responses() {
    let srv = server(ServerOptions {
        json_response: true,
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let resp = b.call(
        json!("s-1"),
        "tools/call",
        json!({"name":"add","arguments":{"a":2,"b":3}}),
    );
    assert_eq!(text_of(&resp), "The sum of 2 and 3 is 5.");
}

#[test]
fn session_id_and_negotiated_version_go_on_every_later_request() {
    let srv = server(ServerOptions {
        negotiate_version: Some("2025-03-26"),
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let init = b.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    b.call(json!(1), "tools/list", json!({}));
    b.close_stdin();
    b.wait_exit(Duration::from_secs(5)).expect("exits");
    let reqs = srv.requests();
    let after_init: Vec<_> = reqs
        .iter()
        .filter(|r| r.rpc_method().as_deref() != Some("initialize"))
        .collect();
    assert!(
        after_init.iter().any(|r| r.method == "DELETE"),
        "DELETE sent at EOF: {reqs:#?}"
    );
    assert!(after_init.len() >= 3);
    for r in after_init {
        assert!(
            r.header("mcp-session-id").is_some(),
            "{} {} has no session id",
            r.method,
            r.path
        );
        assert_eq!(
            r.header("mcp-protocol-version"),
            Some("2025-03-26"),
            "{} {}",
            r.method,
            r.path
        );
        assert!(r.header("origin").is_none());
    }
    let init_req = reqs
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("initialize"))
        .unwrap();
    assert!(init_req.header("mcp-session-id").is_none());
    assert!(init_req
        .header("accept")
        .unwrap()
        .contains("text/event-stream"));
    assert!(init_req
        .header("accept")
        .unwrap()
        .contains("application/json"));
    assert_eq!(
        init_req.client_cert_cn.as_deref(),
        Some("mcp-test-client-rsa")
    );
}

#[test]
fn http_error_with_null_id_comes_back_with_the_request_id() {
    // server-everything answers the Python client's `server/discover` probe with 400 + id:null.
    let srv = server(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let resp = b.call(
        json!(1),
        "server/discover",
        json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}),
    );
    assert_eq!(resp["id"], 1);
    assert_eq!(resp["error"]["code"], -32000);
    assert_eq!(
        resp["error"]["message"],
        "Bad Request: Server not initialized"
    );
    // The client then falls back to initialize, over Streamable HTTP (no SSE fallback on a probe).
    b.initialize();
    assert!(srv.requests().iter().all(|r| r.path != "/sse"));
}

#[test]
fn unparsable_stdin_line_gets_a_parse_error_and_the_bridge_goes_on() {
    let srv = server(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.send_raw("this is not json");
    let err = b.recv();
    assert_eq!(err["error"]["code"], -32700);
    assert_eq!(err["id"], Value::Null);
    b.send_raw("");
    b.initialize();
}

#[test]
fn eof_sends_delete_and_exits_promptly() {
    let srv = server(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let t = std::time::Instant::now();
    b.close_stdin();
    let status = b.wait_exit(Duration::from_secs(5)).expect("exit after EOF");
    assert!(status.success(), "{}", b.stderr());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert!(srv.requests().iter().any(|r| r.method == "DELETE"));
}
