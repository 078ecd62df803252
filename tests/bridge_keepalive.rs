//! Keep-alive edges through the real binary: a call sent on a pooled connection just as the server
//! closes it for being idle. The test server drops such a request unread and cuts the connection
//! (its `keep_alive_timeout`), which is what a client sees when its request crosses the close on
//! the wire; the bridge must not send on a connection that old, and must never resend a call it
//! cannot prove the server did not read.

mod support;

use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::server::{ServerOptions, TestServer};

/// The servers' keep-alive timeout in these tests (Apache's default is 5 s; 1 s keeps them short).
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Idle time before each call: past the server's timeout.
const PAUSE: Duration = Duration::from_millis(1200);

fn echo(b: &mut Bridge, id: i64, text: &str) -> Value {
    b.call(
        json!(id),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": text}}),
    )
}

/// One call right after initialize: the listening GET stream holds a connection of its own, and
/// this call's connection goes back to the pool, where the next call finds it idle.
fn warm_up(b: &mut Bridge) {
    let resp = echo(b, 100, "warm");
    assert_eq!(resp["result"]["content"][0]["text"], "warm", "{resp}");
}

fn server_got(srv: &TestServer, id: i64) -> usize {
    srv.requests()
        .iter()
        .filter(|r| r.json().and_then(|j| j.get("id").cloned()) == Some(json!(id)))
        .count()
}

#[test]
fn calls_after_the_announced_keep_alive_timeout_go_on_fresh_connections() {
    let srv = TestServer::start(ServerOptions {
        keep_alive_timeout: Some(KEEP_ALIVE),
        keep_alive_hint: true,
        ..ServerOptions::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    warm_up(&mut b);
    for id in 1..=4 {
        thread::sleep(PAUSE);
        let resp = echo(&mut b, id, "at the edge");
        assert_eq!(
            resp["result"]["content"][0]["text"],
            "at the edge",
            "call {id} after {PAUSE:?} idle (server: Keep-Alive: timeout=1): {resp}\nstderr:\n{}",
            b.stderr()
        );
        assert_eq!(server_got(&srv, id), 1, "call {id} reached the server once");
    }
}

#[test]
fn without_a_hint_one_close_teaches_the_bridge_and_the_lost_call_is_not_resent() {
    let srv = TestServer::start(ServerOptions {
        keep_alive_timeout: Some(KEEP_ALIVE),
        ..ServerOptions::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    warm_up(&mut b);

    // The first call at the edge is lost: the bridge cannot know that the server did not read it
    // (a terminator may have forwarded it), so it reports the failure instead of resending.
    thread::sleep(PAUSE);
    let lost = echo(&mut b, 1, "lost");
    let message = lost["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("closed by the server before it answered"),
        "expected the close to be reported: {lost}\nstderr:\n{}",
        b.stderr()
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server_got(&srv, 1),
        0,
        "the bridge resent a call that may already have run"
    );

    // From then on connections idle that long are retired before use.
    for id in 2..=4 {
        thread::sleep(PAUSE);
        let resp = echo(&mut b, id, "learned");
        assert_eq!(
            resp["result"]["content"][0]["text"],
            "learned",
            "call {id} after {PAUSE:?} idle, once the server's close was seen: {resp}\nstderr:\n{}",
            b.stderr()
        );
    }
}

#[test]
fn a_server_that_announces_nothing_is_assumed_to_close_after_5_s_like_uvicorn() {
    // uvicorn (FastMCP), Node.js and Apache close idle connections after 5 s by default; the
    // first two send no Keep-Alive header. A call after 5 s of quiet must not meet that close.
    let srv = TestServer::start(ServerOptions {
        keep_alive_timeout: Some(Duration::from_secs(5)),
        ..ServerOptions::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    warm_up(&mut b);
    thread::sleep(Duration::from_millis(5100));
    let resp = echo(&mut b, 1, "after a pause");
    assert_eq!(
        resp["result"]["content"][0]["text"],
        "after a pause",
        "a call after 5.1 s idle against a server that closes at 5 s: {resp}\nstderr:\n{}",
        b.stderr()
    );
}
