//! Transport selection: legacy HTTP+SSE, the four `--transport` strategies and their fallbacks,
//! SSE resumption, redirects.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::server::{Fault, ServerOptions, TestServer};

fn echo(b: &mut Bridge, id: i64, text: &str) -> Value {
    b.call(
        json!(id),
        "tools/call",
        json!({"name":"echo","arguments":{"text":text}}),
    )
}

fn assert_echoed(resp: &Value, text: &str) {
    assert_eq!(resp["result"]["content"][0]["text"], text, "{resp}");
}

fn legacy_only() -> ServerOptions {
    ServerOptions {
        streamable: false,
        ..Default::default()
    }
}

#[test]
fn sse_only_speaks_legacy_http_sse() {
    let srv = TestServer::start(ServerOptions {
        crlf: true,
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/sse"), &["--transport", "sse-only"]);
    b.initialize();
    assert_echoed(&echo(&mut b, 1, "legacy"), "legacy");
    let reqs = srv.requests();
    assert!(reqs.iter().all(|r| r.path != "/mcp"), "{reqs:#?}");
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert!(posts.iter().all(|r| r.path == "/message"));
    assert!(posts.iter().all(|r| r.header("mcp-session-id").is_none()));
}

#[test]
fn a_legacy_endpoint_with_a_url_in_its_query_is_used() {
    let srv = TestServer::start(ServerOptions {
        legacy_endpoint_query: Some("next=https://elsewhere.example/x"),
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/sse"), &["--transport", "sse-only"]);
    b.initialize();
    assert_echoed(&echo(&mut b, 1, "relative"), "relative");
    let posts: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.path, "/message");
        assert!(
            post.query
                .iter()
                .any(|(k, v)| k == "next" && v == "https://elsewhere.example/x"),
            "{:?}",
            post.query
        );
    }
}

#[test]
fn http_first_falls_back_to_legacy_when_initialize_post_is_refused() {
    for status in [404, 405] {
        let srv = TestServer::start(ServerOptions {
            streamable_off_status: status,
            ..legacy_only()
        });
        let mut b = Bridge::start(&srv.url("/mcp"), &[]);
        b.initialize();
        assert_echoed(&echo(&mut b, 1, "fell back"), "fell back");
        assert!(
            srv.requests()
                .iter()
                .any(|r| r.method == "POST" && r.path == "/message"),
            "{status}"
        );
    }
}

#[test]
fn http_only_never_falls_back() {
    let srv = TestServer::start(legacy_only());
    let mut b = Bridge::start(&srv.url("/mcp"), &["--transport", "http-only"]);
    let resp = b.call(json!(0), "initialize", json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}));
    assert!(
        resp["error"]["message"].as_str().unwrap().contains("405"),
        "{resp}"
    );
    assert!(srv.requests().iter().all(|r| r.method != "GET"));
}

#[test]
fn sse_first_uses_streamable_http_when_the_sse_get_is_refused() {
    let srv = TestServer::start(ServerOptions {
        legacy_sse: false,
        get_stream: support::server::GetStream::Status(405),
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &["--transport", "sse-first"]);
    b.initialize();
    assert_echoed(&echo(&mut b, 1, "streamable"), "streamable");
}

#[test]
fn sse_first_prefers_legacy_when_offered() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/sse"), &["--transport", "sse-first"]);
    b.initialize();
    assert_echoed(&echo(&mut b, 1, "x"), "x");
    assert!(srv.requests().iter().all(|r| r.path != "/mcp"));
}

#[test]
fn no_fallback_on_server_error() {
    let srv = TestServer::start(ServerOptions::default());
    srv.inject(Fault::Status {
        status: 503,
        content_type: "text/html",
        body: "<html><body><h1>Service Unavailable</h1></body></html>".into(),
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    let resp = b.call(json!(0), "initialize", json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}));
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("503") && msg.contains("Service Unavailable"),
        "{resp}"
    );
    assert!(!msg.contains('<'), "HTML is stripped: {msg}");
    assert!(
        srv.requests().iter().all(|r| r.path != "/sse"),
        "no SSE fallback on 5xx"
    );
    // The bridge keeps running: the client can retry.
    b.initialize();
}

#[test]
fn resumes_a_closed_post_stream_with_last_event_id_after_retry() {
    let srv = TestServer::start(ServerOptions {
        retry_ms: Some(300),
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    srv.inject(Fault::CloseAfterPriming);
    let t = std::time::Instant::now();
    assert_echoed(&echo(&mut b, 1, "after resume"), "after resume");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "waited the server's retry"
    );
    let resume = srv
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.header("last-event-id").is_some())
        .expect("GET with Last-Event-ID");
    assert!(!resume.header("last-event-id").unwrap().ends_with('\r'));
    assert!(
        b.recv_within(Duration::from_millis(300)).is_none(),
        "answered exactly once"
    );
}

#[test]
fn same_origin_redirect_is_followed_with_method_and_body() {
    let srv = TestServer::start(ServerOptions {
        redirect_slash: true,
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    assert_echoed(&echo(&mut b, 1, "redirected"), "redirected");
}

#[test]
fn dropped_connection_answers_the_request_with_an_error() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    srv.inject(Fault::DropConnection);
    let resp = echo(&mut b, 1, "lost");
    assert!(resp["error"]["code"].as_i64().unwrap() <= -32000, "{resp}");
    assert_echoed(&echo(&mut b, 2, "next works"), "next works");
}
