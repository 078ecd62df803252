//! A broken or hostile server: garbage bodies, unknown ids, wrong content types, truncated
//! streams, an HTML login page. Every request is still answered (with an error), nothing but
//! JSON-RPC reaches stdout, and the bridge keeps running.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use support::bridge::Bridge;
use support::fixture;

/// A TLS server that answers every HTTP request on every connection with `canned`, then closes.
fn canned_server(canned: &'static [u8]) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.crt"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = Arc::clone(&config);
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the Content-Length body.
                loop {
                    let Ok(n) = tls.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(head_end) = find(&request, b"\r\n\r\n") {
                        let head =
                            String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = tls.write_all(canned);
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Two requests against a server that always answers `canned`: both get an error whose message
/// contains `expect`, and the bridge is still running.
fn assert_survives(canned: &'static [u8], expect: &str) {
    let port = canned_server(canned);
    let mut b = Bridge::start(
        &format!("https://127.0.0.1:{port}/mcp"),
        &["--transport", "http-only"],
    );
    for id in [1, 2] {
        let resp = b.call(
            json!(id),
            "tools/call",
            json!({"name":"echo","arguments":{"text":"x"}}),
        );
        let msg = resp["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {resp}"));
        assert!(msg.contains(expect), "{msg:?} should mention {expect:?}");
        assert!(resp["error"]["code"].as_i64().unwrap() <= -32000);
    }
    assert!(
        b.recv_within(Duration::from_millis(200)).is_none(),
        "nothing else on stdout"
    );
    assert!(
        b.wait_exit(Duration::from_millis(10)).is_none(),
        "bridge still running"
    );
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(5)).unwrap().success());
}

#[test]
fn sse_data_that_is_not_json_is_dropped_and_the_request_answered() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 25\r\n\r\ndata: this is not json\n\n\n",
        "ended before the response",
    );
}

#[test]
fn a_response_with_an_unknown_id_is_not_forwarded() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 38\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}",
        "does not answer",
    );
}

#[test]
fn a_wrong_content_type_is_an_error() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
        "content type",
    );
}

#[test]
fn an_html_login_page_is_reported_readably() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 61\r\n\r\n<html><body><h1>Please sign in</h1><form></form></body></html>",
        "Please sign in",
    );
}

#[test]
fn a_truncated_chunked_stream_is_an_error() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n10\r\ndata: {\"jsonrpc\"",
        "ended before the response",
    );
}

#[test]
fn a_truncated_json_body_is_an_error() {
    assert_survives(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,",
        "JSON",
    );
}

#[test]
fn nginx_missing_certificate_page_is_a_setup_error_not_a_fallback() {
    let port = canned_server(
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/html\r\ncontent-length: 180\r\n\r\n<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent</center>\r\n</body></html>",
    );
    let mut b = Bridge::spawn(
        &[
            format!("https://127.0.0.1:{port}/mcp"),
            "--tls-ca".into(),
            fixture("ca.crt").display().to_string(),
        ],
        &[],
    );
    let resp = b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
    );
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("requires a client certificate") && msg.contains("--tls-cert"),
        "{msg}"
    );
    assert_eq!(b.wait_exit(Duration::from_secs(5)).unwrap().code(), Some(1));
    assert!(
        !b.stderr().contains("legacy"),
        "no SSE fallback: {}",
        b.stderr()
    );
}
