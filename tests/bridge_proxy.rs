//! HTTPS through an HTTP CONNECT proxy (HTTPS_PROXY): our connector chain keeps ureq's proxy
//! support, and the TLS session (with the client certificate) still runs end to end with the
//! server, not with the proxy.

mod support;

use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::json;
use support::bridge::{mtls_args, Bridge};
use support::proxy::connect_proxy;
use support::server::{ServerOptions, TestServer};

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
