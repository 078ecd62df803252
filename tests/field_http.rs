//! HTTP that real deployments speak, through the real binary against the test server: an
//! OAuth-protected server's 401, and bodies a misconfigured proxy compressed although the bridge
//! asked for `Accept-Encoding: identity`.

mod support;

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::{json, Value};
use support::bridge::Bridge;
use support::server::{Fault, ServerOptions, TestServer};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn echo(b: &mut Bridge, id: i64, text: &str) -> Value {
    b.call(
        json!(id),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": text}}),
    )
}

/// A canned `tools/call` result for request `id`, as the server would have answered it.
fn canned_result(id: i64, text: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}})
        .to_string()
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: Vec<u8>) -> Fault {
    Fault::Answer {
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body,
    }
}

fn result_text(resp: &Value) -> &str {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a result: {resp}"))
}

// --- 6. 401 with WWW-Authenticate: Bearer ---------------------------------------------------------

#[test]
fn with_oauth_off_a_401_bearer_challenge_says_oauth_is_off_and_how_to_turn_it_on() {
    let srv = TestServer::start(ServerOptions::default());
    let challenge = r#"Bearer realm="mcp", resource_metadata="https://127.0.0.1/.well-known/oauth-protected-resource""#;
    srv.inject(answer(401, &[("WWW-Authenticate", challenge)], Vec::new()));
    let mut b = Bridge::start(&srv.url("/mcp"), &["--oauth", "off"]);
    let resp = b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
    );
    assert_eq!(
        resp["error"]["message"],
        format!(
            "HTTP 401 from server: the server wants an OAuth bearer token, and OAuth is off \
             (--oauth off) (WWW-Authenticate: {challenge}); remove --oauth off (or \
             MCP_REMOTE_OAUTH=off) so that the bridge logs in, or pass a token with --header \
             \"Authorization: Bearer ${{TOKEN}}\""
        ),
        "{resp}"
    );
    assert_eq!(resp["error"]["data"]["httpStatus"], 401);
}

// --- 7. compressed bodies -----------------------------------------------------------------------------

fn initialized() -> (TestServer, Bridge) {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    (srv, b)
}

#[test]
fn a_gzipped_json_reply_is_decoded() {
    let (srv, mut b) = initialized();
    let body = gzip(canned_result(5, "from gzip").as_bytes());
    srv.inject(answer(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        body,
    ));
    assert_eq!(result_text(&echo(&mut b, 5, "ignored")), "from gzip");
    // The session goes on uncompressed.
    assert_eq!(result_text(&echo(&mut b, 6, "plain")), "plain");
}

#[test]
fn a_gzipped_event_stream_is_decoded() {
    let (srv, mut b) = initialized();
    let events = format!(
        "event: message\ndata: {}\n\n",
        canned_result(7, "from gzip sse")
    );
    srv.inject(answer(
        200,
        &[
            ("Content-Type", "text/event-stream"),
            ("Content-Encoding", "gzip"),
        ],
        gzip(events.as_bytes()),
    ));
    assert_eq!(result_text(&echo(&mut b, 7, "ignored")), "from gzip sse");
}

#[test]
fn a_deflated_json_reply_is_decoded() {
    let (srv, mut b) = initialized();
    srv.inject(answer(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "deflate"),
        ],
        zlib(canned_result(8, "from deflate").as_bytes()),
    ));
    assert_eq!(result_text(&echo(&mut b, 8, "ignored")), "from deflate");
}

#[test]
fn a_gzipped_error_page_is_shown_readable() {
    let (srv, mut b) = initialized();
    srv.inject(answer(
        503,
        &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
        gzip(b"down for maintenance"),
    ));
    let resp = echo(&mut b, 9, "ignored");
    assert_eq!(
        resp["error"]["message"], "HTTP 503 from server: down for maintenance",
        "{resp}"
    );
}

#[test]
fn an_encoding_that_cannot_be_decoded_is_named() {
    let (srv, mut b) = initialized();
    srv.inject(answer(
        200,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "br"),
        ],
        vec![0x1b, 0x2c, 0x00, 0xf8, 0x25, 0x00],
    ));
    let resp = echo(&mut b, 10, "ignored");
    let msg = resp["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(
            "the server sent the body with Content-Encoding: br, which this bridge cannot decode"
        ),
        "{resp}"
    );
}

// --- a response head longer than the bridge reads -------------------------------------------------

#[test]
fn a_response_header_over_the_limit_is_named_as_such_not_as_a_close() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    srv.inject(answer(
        200,
        &[("X-Padding", &"p".repeat(20 * 1024))],
        canned_result(1, "never read").into_bytes(),
    ));
    let resp = echo(&mut b, 1, "x");
    assert_eq!(
        resp["error"]["message"],
        format!(
            "the response header from 127.0.0.1:{} exceeded the 16 KiB limit (or never ended): \
             the server or a proxy in front of it sent an oversized or broken header",
            srv.port()
        ),
        "{resp}"
    );
    // The bridge keeps serving.
    assert_eq!(result_text(&echo(&mut b, 2, "after")), "after");
}
