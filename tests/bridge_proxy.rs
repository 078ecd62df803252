//! HTTPS through an HTTP CONNECT proxy (HTTPS_PROXY): our connector chain keeps ureq's proxy
//! support, and the TLS session (with the client certificate) still runs end to end with the
//! server, not with the proxy.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::json;
use support::bridge::{mtls_args, Bridge};
use support::server::{ServerOptions, TestServer};

/// A minimal CONNECT proxy on 127.0.0.1; records the targets it was asked for.
fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let target = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                log.lock().unwrap().push(request_line.trim().to_string());
                let Ok(upstream) = TcpStream::connect(&target) else {
                    return;
                };
                let mut client_w = client;
                client_w
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_r = upstream.try_clone().unwrap();
                let mut up_w = upstream;
                let mut client_r = reader;
                let t = thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 || up_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = up_w.shutdown(std::net::Shutdown::Write);
                });
                let mut buf = [0u8; 16384];
                while let Ok(n) = up_r.read(&mut buf) {
                    if n == 0 || client_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client_w.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (port, seen)
}

#[test]
fn https_proxy_is_used_and_mtls_still_reaches_the_server() {
    let srv = TestServer::start(ServerOptions::default());
    let (proxy_port, seen) = connect_proxy();
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let mut b = Bridge::spawn(
        &args,
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", ""), ("no_proxy", "")],
    );
    b.initialize();
    let resp = b.call(
        json!(1),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"via proxy"}}),
    );
    assert_eq!(
        resp["result"]["content"][0]["text"],
        "via proxy",
        "{}",
        b.stderr()
    );
    let targets = seen.lock().unwrap().clone();
    assert!(
        targets
            .iter()
            .any(|l| l.starts_with(&format!("CONNECT 127.0.0.1:{}", srv.port()))),
        "{targets:?}"
    );
    let reqs = srv.requests();
    assert!(reqs
        .iter()
        .all(|r| r.client_cert_cn.as_deref() == Some("mcp-test-client-rsa")));
}

#[test]
fn a_socks_proxy_is_refused_rather_than_bypassed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    let mut b = Bridge::spawn(&args, &[("ALL_PROXY", "socks5://127.0.0.1:1080")]);
    let status = b
        .wait_exit(std::time::Duration::from_secs(5))
        .expect("exits at start-up");
    assert_eq!(status.code(), Some(1));
    let t = std::time::Instant::now();
    while !b.stderr().contains("SOCKS") && t.elapsed() < std::time::Duration::from_secs(2) {
        thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(b.stderr().contains("SOCKS"), "{}", b.stderr());
    assert!(
        srv.requests().is_empty(),
        "nothing went to the server directly"
    );
}

// ---- --proxy / MCP_REMOTE_PROXY: this server's proxy, whatever the environment says --------------

fn echo_via(b: &mut Bridge, text: &str) -> String {
    b.initialize();
    let resp = b.call(
        json!(1),
        "tools/call",
        json!({"name":"echo","arguments":{"text":text}}),
    );
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no result: {resp}\nstderr:\n{}", b.stderr()))
        .to_string()
}

fn connected_through(seen: &Arc<Mutex<Vec<String>>>, srv: &TestServer) -> bool {
    let target = format!("CONNECT 127.0.0.1:{}", srv.port());
    seen.lock().unwrap().iter().any(|l| l.starts_with(&target))
}

#[test]
fn the_proxy_flag_is_used_even_for_a_host_no_proxy_lists() {
    let srv = TestServer::start(ServerOptions::default());
    let (env_port, env_seen) = connect_proxy();
    let (flag_port, flag_seen) = connect_proxy();
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    args.extend([
        "--proxy".to_string(),
        format!("http://127.0.0.1:{flag_port}"),
    ]);
    let env_proxy = format!("http://127.0.0.1:{env_port}");
    let mut b = Bridge::spawn(
        &args,
        &[("HTTPS_PROXY", &env_proxy), ("NO_PROXY", "127.0.0.1")],
    );
    assert_eq!(
        echo_via(&mut b, "via the flag's proxy"),
        "via the flag's proxy"
    );
    assert!(
        connected_through(&flag_seen, &srv),
        "{:?}",
        flag_seen.lock().unwrap()
    );
    assert!(env_seen.lock().unwrap().is_empty(), "HTTPS_PROXY was used");
    // mTLS still runs end to end with the server.
    assert!(srv
        .requests()
        .iter()
        .all(|r| r.client_cert_cn.as_deref() == Some("mcp-test-client-rsa")));
}

#[test]
fn the_proxy_variable_works_like_the_flag() {
    let srv = TestServer::start(ServerOptions::default());
    let (port, seen) = connect_proxy();
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    let proxy = format!("http://127.0.0.1:{port}");
    let mut b = Bridge::spawn(&args, &[("MCP_REMOTE_PROXY", &proxy), ("no_proxy", "*")]);
    assert_eq!(echo_via(&mut b, "via the variable"), "via the variable");
    assert!(connected_through(&seen, &srv), "{:?}", seen.lock().unwrap());
}

#[test]
fn proxy_none_connects_directly_whatever_https_proxy_says() {
    let srv = TestServer::start(ServerOptions::default());
    let (port, seen) = connect_proxy();
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    args.extend(["--proxy".to_string(), "none".to_string()]);
    let proxy = format!("http://127.0.0.1:{port}");
    let mut b = Bridge::spawn(
        &args,
        &[
            ("HTTPS_PROXY", &proxy),
            ("ALL_PROXY", "socks5://127.0.0.1:1"),
        ],
    );
    assert_eq!(echo_via(&mut b, "direct"), "direct");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the environment's proxy was used"
    );
}

#[test]
fn a_socks_proxy_flag_is_a_usage_error() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(
        &srv.url("/mcp"),
        &["--proxy", "socks5://u:secret@127.0.0.1:1080"],
    );
    let status = b
        .wait_exit(std::time::Duration::from_secs(5))
        .expect("exits at start-up");
    assert_eq!(status.code(), Some(2), "{}", b.stderr());
    let stderr = b.stderr();
    assert!(
        stderr.contains("--proxy") && stderr.contains("SOCKS"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the proxy password was printed: {stderr}"
    );
}
