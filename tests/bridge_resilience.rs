//! Resilience: servers restart, sessions expire, servers go down and come back. For each
//! scenario: every request id answered exactly once, and the bridge keeps running.

mod support;

use std::collections::HashMap;
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

fn echoed(resp: &Value) -> Option<&str> {
    resp["result"]["content"][0]["text"].as_str()
}

/// Nothing else (no duplicate answer, no stray frame) is pending on stdout.
fn assert_quiet(b: &mut Bridge) {
    if let Some(extra) = b.recv_within(Duration::from_millis(300)) {
        assert!(
            extra.get("id").is_none(),
            "unexpected extra answer: {extra}"
        );
    }
}

#[test]
fn expired_session_is_replaced_transparently() {
    for unknown_session_status in [404, 400] {
        let srv = TestServer::start(ServerOptions {
            unknown_session_status,
            ..Default::default()
        });
        let mut b = Bridge::start(&srv.url("/mcp"), &[]);
        b.initialize();
        assert_eq!(echoed(&echo(&mut b, 1, "before")), Some("before"));
        srv.inject(Fault::ExpireSessions);
        assert_eq!(
            echoed(&echo(&mut b, 2, "after")),
            Some("after"),
            "status {unknown_session_status}"
        );
        let inits = srv
            .requests()
            .iter()
            .filter(|r| r.rpc_method().as_deref() == Some("initialize"))
            .count();
        assert_eq!(inits, 2, "the client's initialize was replayed once");
        assert_quiet(&mut b);
    }
}

#[test]
fn server_restart_on_the_same_port_is_survived() {
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    assert_eq!(echoed(&echo(&mut b, 1, "one")), Some("one"));
    srv.stop();
    let srv = TestServer::start_on(port, ServerOptions::default());
    assert_eq!(echoed(&echo(&mut b, 2, "two")), Some("two"));
    assert_quiet(&mut b);
    drop(srv);
}

#[test]
fn server_down_for_a_while_gives_errors_then_recovers() {
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    srv.stop();
    let mut answers: HashMap<i64, usize> = HashMap::new();
    let mut errors = 0;
    let started = std::time::Instant::now();
    let mut id = 10;
    while started.elapsed() < Duration::from_secs(3) {
        let resp = echo(&mut b, id, "down");
        *answers.entry(id).or_default() += 1;
        if resp.get("error").is_some() {
            errors += 1;
            let msg = resp["error"]["message"].as_str().unwrap();
            assert!(msg.contains("refused"), "{msg}");
        }
        id += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(errors > 0);
    let srv = TestServer::start_on(port, ServerOptions::default());
    assert_eq!(echoed(&echo(&mut b, 999, "back")), Some("back"));
    assert!(answers.values().all(|&n| n == 1));
    assert_quiet(&mut b);
    assert!(
        b.wait_exit(Duration::from_millis(10)).is_none(),
        "bridge still running"
    );
    drop(srv);
}
