//! The bridge engine's promises (issue 11), each checked through the real binary against the
//! test server: every request gets exactly one answer or, once cancelled, none; nothing the
//! server does (hold a stream, never answer, flood, send an endless event, ask for a huge
//! `retry:`) keeps the bridge from exiting soon after stdin EOF or SIGTERM; memory stays within
//! `--memory-budget` whatever the server sends and however slowly the client reads; ids the
//! client can read are echoed in errors; a lost session comes back with what the client had set
//! up in it.
//!
//! The time bounds here are hang bounds (the engine's target is ~2 s; see `make bench`), set
//! generously so that a loaded CI machine never trips them.
//!
//! Written before the engine they specify: 27 of these tests failed on the old engine (commit
//! 60e8903) and pass on the new one.

mod support;

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::bridge::{mtls_args, Bridge};
use support::server::{Fault, RecordedRequest, ServerOptions, SessionSetup, TestServer};

/// How long the bridge may take to exit after EOF or SIGTERM, or to answer a request the server
/// answers at once, before it counts as hung.
const HANG: Duration = Duration::from_secs(10);
const MIB: u64 = 1024 * 1024;
/// Resident memory the bridge may use beyond its `--memory-budget` (code, stacks, TLS state and
/// allocator slack of a debug build).
const RSS_SLACK: u64 = 48 * MIB;

// ---- helpers --------------------------------------------------------------------------------

fn tool_call(id: Value, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}})
}

fn cancel(id: &Value) -> Value {
    json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":id,"reason":"user interrupt"}})
}

/// The bridge with the standard mTLS flags plus `extra`, and extra environment variables.
fn bridge_with_env(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Bridge {
    let mut args = vec![url.to_string()];
    args.extend(mtls_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    Bridge::spawn(&args, env)
}

/// The last `lines` lines of the bridge's stderr, for failure messages.
fn stderr_tail(b: &Bridge, lines: usize) -> String {
    let all = b.stderr();
    let v: Vec<&str> = all.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Reads stdout until the answer to `id` arrives or `wait` passes; the frames before it are
/// appended to `seen`.
fn answer_within(
    b: &mut Bridge,
    id: &Value,
    wait: Duration,
    seen: &mut Vec<Value>,
) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = b.recv_within(left)?;
        if msg.get("id") == Some(id) && (msg.get("result").is_some() || msg.get("error").is_some())
        {
            return Some(msg);
        }
        seen.push(msg);
    }
}

/// The answer to `id`, or a panic naming `what` when none comes within `HANG`.
fn expect_answer(b: &mut Bridge, id: &Value, what: &str, seen: &mut Vec<Value>) -> Value {
    answer_within(b, id, HANG, seen).unwrap_or_else(|| {
        panic!(
            "{what} (id {id}) was not answered within {HANG:?}; stderr:\n{}",
            stderr_tail(b, 30)
        )
    })
}

/// Every frame that arrives within `wait`.
fn drain(b: &mut Bridge, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while let Some(msg) = b.recv_within(deadline.saturating_duration_since(Instant::now())) {
        out.push(msg);
    }
    out
}

/// Asserts the bridge exits within `HANG` after `what`; returns how long it took.
fn assert_exits(b: &mut Bridge, what: &str) -> Duration {
    let t = Instant::now();
    match b.wait_exit(HANG) {
        Some(_) => t.elapsed(),
        None => panic!(
            "the bridge was still running {HANG:?} after {what}; stderr:\n{}",
            stderr_tail(b, 30)
        ),
    }
}

/// Polls `cond` every 10 ms for up to `bound`; true once it held.
fn eventually(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn body_id(r: &RecordedRequest) -> Option<Value> {
    r.json()?.get("id").cloned()
}

/// The server received a request with this JSON-RPC id.
fn server_saw_id(srv: &TestServer, id: &Value) -> bool {
    srv.requests()
        .iter()
        .any(|r| r.method == "POST" && body_id(r).as_ref() == Some(id))
}

/// `requestId`s of the `notifications/cancelled` the server received.
fn cancels_received(srv: &TestServer) -> HashSet<String> {
    srv.requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("notifications/cancelled"))
        .filter_map(|r| r.json().map(|v| v["params"]["requestId"].to_string()))
        .collect()
}

fn initialize_posts(srv: &TestServer) -> usize {
    srv.requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("initialize"))
        .count()
}

/// Samples the bridge's resident memory every 20 ms for `how_long`, panicking as soon as it goes
/// over `limit` (so that a bridge without a bound is stopped long before it hurts the machine).
/// Returns the peak.
fn watch_rss(b: &Bridge, how_long: Duration, limit: u64, what: &str) -> u64 {
    // Under an emulator (the arm64 suite runs the bridge in qemu-user), the process's resident
    // memory includes the emulator's own translation cache: allow for it, the bound still holds.
    let limit = match std::env::var_os(support::RUNNER_VAR) {
        Some(_) => limit + 96 * MIB,
        None => limit,
    };
    let deadline = Instant::now() + how_long;
    let mut peak = 0;
    while Instant::now() < deadline {
        if let Some(rss) = b.rss_bytes() {
            peak = peak.max(rss);
            assert!(
                rss <= limit,
                "{what}: the bridge's resident memory reached {} MiB, over the {} MiB allowed",
                rss / MIB,
                limit / MIB
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    peak
}

// ---- 1. cancellation (handshake era) --------------------------------------------------------

#[test]
#[cfg_attr(
    windows,
    ignore = "wine: the test server sees a closed connection late or never"
)]
fn a_thousand_cancelled_requests_close_their_streams_and_the_bridge_keeps_serving() {
    const N: i64 = 1000;
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let mut cancelled = Vec::new();
    let mut seen_upto = 0;
    for i in 0..N {
        let id = json!(1000 + i);
        b.send(&tool_call(id.clone(), "hang", json!({})));
        // Only the requests since the last one found are read: a thousand rounds stay linear.
        let reached = eventually(HANG, || {
            let new = srv.requests_from(seen_upto);
            let found = new
                .iter()
                .position(|r| r.method == "POST" && body_id(r).as_ref() == Some(&id));
            if let Some(at) = found {
                seen_upto += at + 1;
            }
            found.is_some()
        });
        assert!(
            reached,
            "request {} of {N} (after {i} cancellations) never reached the server within {HANG:?}; \
             the server holds {} connections from the bridge; stderr:\n{}",
            i + 1,
            srv.open_connections(),
            stderr_tail(&b, 10)
        );
        b.send(&cancel(&id));
        cancelled.push(id);
    }
    let wanted: HashSet<String> = cancelled.iter().map(Value::to_string).collect();

    // The cancellation still reaches the server, for every request.
    assert!(
        eventually(HANG, || cancels_received(&srv).is_superset(&wanted)),
        "the server received {} of {N} notifications/cancelled",
        cancels_received(&srv).intersection(&wanted).count()
    );
    // The bridge closed each cancelled request's stream (the server never answers them).
    let closed = || -> HashSet<String> {
        srv.abandoned_streams()
            .iter()
            .map(Value::to_string)
            .collect()
    };
    // Every one: a stream left open is a worker, a connection and an in-flight slot held for the
    // life of the process, so a long session would wedge after enough cancellations.
    let still_open = |closed: &HashSet<String>| -> Vec<String> {
        let mut open: Vec<String> = wanted.difference(closed).cloned().collect();
        open.sort();
        open
    };
    assert!(
        eventually(HANG, || still_open(&closed()).is_empty()),
        "the bridge left {} of the {N} cancelled requests' streams open: {:?}; stderr:\n{}",
        still_open(&closed()).len(),
        still_open(&closed()),
        stderr_tail(&b, 20)
    );
    assert!(
        eventually(HANG, || srv.open_connections() <= 10),
        "after {N} cancellations the bridge still holds {} connections to the server (at most 10 allowed)",
        srv.open_connections()
    );

    // It keeps serving.
    let mut seen = Vec::new();
    b.send(&json!({"jsonrpc":"2.0","id":"after-ping","method":"ping"}));
    let ping = expect_answer(
        &mut b,
        &json!("after-ping"),
        "a ping after the cancellations",
        &mut seen,
    );
    assert!(ping.get("result").is_some(), "{ping}");
    b.send(&tool_call(
        json!("after-echo"),
        "echo",
        json!({"text":"still here"}),
    ));
    let echo = expect_answer(
        &mut b,
        &json!("after-echo"),
        "an echo after the cancellations",
        &mut seen,
    );
    assert_eq!(echo["result"]["content"][0]["text"], "still here", "{echo}");

    // No cancelled request was answered, not even with an error.
    seen.extend(drain(&mut b, Duration::from_millis(300)));
    let answered: Vec<&Value> = seen
        .iter()
        .filter(|m| {
            m.get("id")
                .is_some_and(|id| wanted.contains(&id.to_string()))
        })
        .collect();
    assert!(
        answered.is_empty(),
        "cancelled requests were answered: {answered:?}"
    );

    b.close_stdin();
    assert_exits(&mut b, "stdin EOF");
}

#[test]
fn a_request_cancelled_while_still_queued_is_never_sent() {
    let srv = TestServer::start(ServerOptions::default());
    // The initialize is answered late: meanwhile nothing else can go out, the request waits here.
    srv.inject(Fault::DelayFor {
        method: "initialize",
        ms: 1500,
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}));
    let queued = json!("queued-then-cancelled");
    b.send(&json!({"jsonrpc":"2.0","id":queued,"method":"ping"}));
    b.send(&cancel(&queued));
    let mut seen = Vec::new();
    let init = expect_answer(&mut b, &json!(0), "the initialize", &mut seen);
    assert!(init.get("result").is_some(), "{init}");
    b.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    b.send(&json!({"jsonrpc":"2.0","id":"next","method":"ping"}));
    expect_answer(
        &mut b,
        &json!("next"),
        "a ping after the cancellation",
        &mut seen,
    );
    seen.extend(drain(&mut b, Duration::from_millis(300)));
    assert!(
        !seen.iter().any(|m| m.get("id") == Some(&queued)),
        "the cancelled request was answered: {seen:?}"
    );
    assert!(
        !server_saw_id(&srv, &queued),
        "the request cancelled while queued was sent to the server anyway"
    );
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF");
}

// ---- 2. many requests outstanding on a silent server ----------------------------------------

/// A bridge with 300 `hang` requests outstanding (the server never answers any of them).
fn bridge_with_300_outstanding(srv: &TestServer) -> Bridge {
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    for i in 0..300 {
        b.send(&tool_call(json!(i + 1), "hang", json!({})));
    }
    let hanging = |srv: &TestServer| {
        srv.requests()
            .iter()
            .filter(|r| r.json().is_some_and(|v| v["params"]["name"] == "hang"))
            .count()
    };
    assert!(
        eventually(HANG, || hanging(srv) > 0),
        "no request reached the server"
    );
    // Let the bridge send what it will send.
    let mut last = 0;
    eventually(HANG, || {
        thread::sleep(Duration::from_millis(200));
        let now = hanging(srv);
        let settled = now == last;
        last = now;
        settled
    });
    b
}

#[test]
fn eof_ends_the_bridge_with_300_requests_outstanding_on_a_silent_server() {
    if support::emulated() {
        eprintln!("skipped under emulation: 300 threads' timing and memory are qemu's there");
        return;
    }
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_300_outstanding(&srv);
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF with 300 requests outstanding");
}

#[test]
#[cfg(unix)]
fn sigterm_ends_the_bridge_with_300_requests_outstanding_on_a_silent_server() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_300_outstanding(&srv);
    b.terminate();
    assert_exits(&mut b, "SIGTERM with 300 requests outstanding");
}

// ---- 3. a held notification POST, a legacy server without its endpoint ----------------------

/// A bridge whose `notifications/initialized` POST the server holds forever.
fn bridge_with_held_notification(srv: &TestServer) -> Bridge {
    srv.inject(Fault::HoldFor {
        method: "notifications/initialized",
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let held = srv.wait_for_request(HANG, |r| {
        r.rpc_method().as_deref() == Some("notifications/initialized")
    });
    assert!(held.is_some(), "the notification never reached the server");
    b
}

#[test]
fn eof_ends_the_bridge_while_the_server_holds_a_notification_post() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_held_notification(&srv);
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF while a notification POST is held");
}

#[test]
#[cfg(unix)]
fn sigterm_ends_the_bridge_while_the_server_holds_a_notification_post() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_held_notification(&srv);
    b.terminate();
    assert_exits(&mut b, "SIGTERM while a notification POST is held");
}

/// A legacy bridge waiting for an `endpoint` event that never comes (connect timeout 30 s).
fn bridge_waiting_for_endpoint(srv: &TestServer) -> Bridge {
    let mut b = Bridge::start(
        &srv.url("/sse"),
        &["--transport", "sse-only", "--connect-timeout", "30"],
    );
    b.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}));
    let get = srv.wait_for_request(HANG, |r| r.method == "GET" && r.path == "/sse");
    assert!(get.is_some(), "the bridge never opened the SSE stream");
    b
}

fn silent_legacy_server() -> TestServer {
    TestServer::start(ServerOptions {
        legacy_endpoint_event: false,
        ..ServerOptions::default()
    })
}

#[test]
fn eof_ends_the_bridge_while_a_legacy_server_withholds_its_endpoint() {
    let srv = silent_legacy_server();
    let mut b = bridge_waiting_for_endpoint(&srv);
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF while waiting for the endpoint event");
}

#[test]
#[cfg(unix)]
fn sigterm_ends_the_bridge_while_a_legacy_server_withholds_its_endpoint() {
    let srv = silent_legacy_server();
    let mut b = bridge_waiting_for_endpoint(&srv);
    b.terminate();
    assert_exits(&mut b, "SIGTERM while waiting for the endpoint event");
}

// ---- 4. memory: a client that stops reading, never-ending events -----------------------------

#[test]
fn a_client_that_stops_reading_bounds_the_bridge_memory_and_loses_no_notification() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_env(
        &srv.url("/mcp"),
        &[],
        &[("MCP_REMOTE_MEMORY_BUDGET", "32M")],
    );
    b.initialize();
    b.pause_stdout();
    b.send(&tool_call(json!(1), "flood", json!({})));
    let peak = watch_rss(
        &b,
        Duration::from_secs(5),
        32 * MIB + RSS_SLACK,
        "notification flood while the client does not read",
    );
    eprintln!("peak RSS under the flood: {} MiB", peak / MIB);
    b.resume_stdout();
    // Reading again, the client gets the notifications in order, none lost.
    let mut expected = 0u64;
    while expected < 2000 {
        let msg = b
            .recv_within(HANG)
            .unwrap_or_else(|| panic!("flood notification {expected} never arrived"));
        if msg["params"]["logger"] != "flood" {
            continue;
        }
        assert_eq!(
            msg["params"]["data"]["seq"], expected,
            "notification out of order or lost"
        );
        expected += 1;
    }
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF during a flood");
}

#[test]
fn forty_never_ending_events_stay_within_the_memory_budget_and_each_request_gets_one_error() {
    if support::emulated() {
        eprintln!("skipped under emulation: 300 threads' timing and memory are qemu's there");
        return;
    }
    const N: i64 = 40;
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_env(
        &srv.url("/mcp"),
        &[],
        &[
            ("MCP_REMOTE_MEMORY_BUDGET", "64M"),
            ("MCP_REMOTE_MAX_MESSAGE_SIZE", "16M"),
        ],
    );
    b.initialize();
    for id in 1..=N {
        b.send(&tool_call(json!(id), "endless_event", json!({})));
    }
    let limit = 64 * MIB + RSS_SLACK;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answers: Vec<Value> = Vec::new();
    let mut peak = 0;
    while answers.len() < N as usize && Instant::now() < deadline {
        if let Some(rss) = b.rss_bytes() {
            peak = peak.max(rss);
            assert!(
                rss <= limit,
                "{N} never-ending events drove the bridge to {} MiB, over the {} MiB allowed",
                rss / MIB,
                limit / MIB
            );
        }
        if let Some(msg) = b.recv_within(Duration::from_millis(20)) {
            if msg.get("id").is_some() {
                answers.push(msg);
            }
        }
    }
    eprintln!("peak RSS with {N} never-ending events: {} MiB", peak / MIB);
    answers.extend(
        drain(&mut b, Duration::from_millis(300))
            .into_iter()
            .filter(|m| m.get("id").is_some()),
    );
    let ids: Vec<i64> = answers.iter().filter_map(|m| m["id"].as_i64()).collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(
        distinct,
        (1..=N).collect::<BTreeSet<_>>(),
        "every request gets an answer: {answers:?}"
    );
    assert_eq!(ids.len(), N as usize, "exactly one answer each: {ids:?}");
    for a in &answers {
        assert_eq!(a["error"]["code"], -32006, "{a}");
        let msg = a["error"]["message"].as_str().unwrap_or("");
        assert!(
            (msg.contains("budget") || msg.contains("size") || msg.contains("large"))
                && (msg.contains("--memory-budget") || msg.contains("--max-message-size")),
            "the error should say which bound was hit and which flag raises it: {msg:?}"
        );
    }
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF");
}

// ---- 4. the --max-message-size and --memory-budget flags ------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_mcp-secure-remote");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The binary with a cleared environment plus `env`, an empty stdin; killed after `HANG`.
fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = support::command(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{BIN} {args:?} did not exit within {HANG:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// A URL where nothing listens: with an empty stdin the bridge sends nothing and exits 0.
fn nowhere() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("https://127.0.0.1:{}/mcp", l.local_addr().unwrap().port())
}

fn with_mtls(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![url.to_string()];
    args.extend(mtls_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_proxy(extra: &[&str], env: &[(&str, &str)]) -> Run {
    let args = with_mtls(&nowhere(), extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bin(&args, env)
}

/// Exit 2, nothing on stdout, one stderr line ending "(see --help)" that says every `needle`.
fn assert_usage_error(run: &Run, needles: &[&str]) {
    let line = run.stderr.trim_end();
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(line.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(line.ends_with("(see --help)"), "{line:?}");
    for needle in needles {
        assert!(line.contains(needle), "{line:?} should say {needle:?}");
    }
}

#[test]
fn help_lists_the_message_size_and_memory_budget_flags_and_their_variables() {
    let run = run_bin(&["--help"], &[]);
    assert_eq!(run.code, Some(0));
    for needle in [
        "--max-message-size",
        "MCP_REMOTE_MAX_MESSAGE_SIZE",
        "--memory-budget",
        "MCP_REMOTE_MEMORY_BUDGET",
    ] {
        assert!(
            run.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn sizes_take_a_number_with_an_optional_binary_suffix() {
    for (size, budget) in [
        ("1048576", "256M"),
        ("512K", "1G"),
        ("16M", "16M"),
        ("1G", "2G"),
    ] {
        let run = run_proxy(
            &["--max-message-size", size, "--memory-budget", budget],
            &[],
        );
        assert_eq!(
            run.code,
            Some(0),
            "--max-message-size {size} --memory-budget {budget}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
    let run = run_proxy(
        &[],
        &[
            ("MCP_REMOTE_MAX_MESSAGE_SIZE", "8M"),
            ("MCP_REMOTE_MEMORY_BUDGET", "32M"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn a_size_that_is_not_a_size_is_a_usage_error() {
    for flag in ["--max-message-size", "--memory-budget"] {
        for bad in ["12X", "lots", "-1", "M"] {
            let run = run_proxy(&[flag, bad], &[]);
            assert_usage_error(&run, &[flag, bad]);
        }
    }
}

#[test]
fn a_memory_budget_smaller_than_the_message_size_is_a_usage_error() {
    let run = run_proxy(
        &["--max-message-size", "32M", "--memory-budget", "16M"],
        &[],
    );
    assert_usage_error(&run, &["--memory-budget", "--max-message-size"]);
    // From the environment, the message names the variables. (A budget given alone is fine:
    // the largest message is then whatever fits in it.)
    let run = run_proxy(
        &[],
        &[
            ("MCP_REMOTE_MAX_MESSAGE_SIZE", "2M"),
            ("MCP_REMOTE_MEMORY_BUDGET", "1M"),
        ],
    );
    assert_usage_error(
        &run,
        &["MCP_REMOTE_MEMORY_BUDGET", "MCP_REMOTE_MAX_MESSAGE_SIZE"],
    );
}

// ---- 5. a server's retry: is capped ---------------------------------------------------------

/// Every duration written in `line` ("30s", "1.5 s", "250ms", "29.999s"), in seconds.
fn durations_in(line: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number =
            bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number: Option<f64> = line[start..i].parse().ok();
        let rest = line[i..].trim_start();
        let unit = if rest.starts_with("ms") {
            Some(0.001)
        } else if rest.starts_with("µs") || rest.starts_with("us") {
            Some(0.000_001)
        } else if rest.starts_with('s') {
            Some(1.0)
        } else {
            None
        };
        let unit_ends_word = |len: usize| {
            rest[len..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphabetic())
        };
        if let (Some(n), Some(unit)) = (number, unit) {
            let len = if unit == 1.0 { 1 } else { 2 };
            if unit_ends_word(len.min(rest.len())) {
                out.push(n * unit);
            }
        }
    }
    out
}

#[test]
fn a_huge_retry_is_capped_at_30_seconds_and_eof_still_ends_the_bridge() {
    let srv = TestServer::start(ServerOptions {
        retry_ms: Some(999_999_999_999),
        ..ServerOptions::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &["--debug"]);
    b.initialize();
    srv.inject(Fault::CloseAfterPriming);
    b.send(&tool_call(json!(1), "echo", json!({"text":"x"})));
    let logged = |b: &Bridge| {
        b.stderr()
            .lines()
            .find(|l| l.to_ascii_lowercase().contains("resum") && !durations_in(l).is_empty())
            .map(str::to_string)
    };
    assert!(
        eventually(HANG, || logged(&b).is_some()),
        "no debug line says when the stream is resumed; stderr:\n{}",
        stderr_tail(&b, 20)
    );
    let line = logged(&b).unwrap();
    for wait in durations_in(&line) {
        assert!(
            wait <= 30.0,
            "the bridge waits {wait} s before resuming (at most 30 s): {line}"
        );
    }
    b.close_stdin();
    assert_exits(
        &mut b,
        "stdin EOF while a request waits to resume its stream",
    );
}

// ---- 6. client ids in the bridge's own namespace ---------------------------------------------

#[test]
fn client_ids_that_look_like_the_bridges_own_are_answered() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let mut seen = Vec::new();
    for id in [
        "mcp-secure-remote:7",
        "mcp-secure-remote:",
        "mcp-secure-remote:reinit-0",
        "mcp-secure-remote:reinit-sse-0",
    ] {
        let id = json!(id);
        b.send(&tool_call(id.clone(), "echo", json!({"text": id})));
        let answer = answer_within(&mut b, &id, HANG, &mut seen)
            .unwrap_or_else(|| panic!("the request with id {id} was never answered"));
        assert_eq!(answer["result"]["content"][0]["text"], id, "{answer}");
    }
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF");
}

// ---- 7. readable ids are echoed in errors ----------------------------------------------------

fn assert_invalid_request(msg: &Value, id: Value) {
    assert_eq!(msg["id"], id, "{msg}");
    assert_eq!(msg["error"]["code"], -32600, "{msg}");
}

#[test]
fn an_invalid_request_with_a_readable_id_is_answered_with_that_id() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    b.send_raw(r#"{"jsonrpc":"2.0","id":12,"method":5}"#);
    assert_invalid_request(&b.recv(), json!(12));
    b.send_raw(r#"{"jsonrpc":"2.0","id":"abc","method":["x"]}"#);
    assert_invalid_request(&b.recv(), json!("abc"));
}

#[test]
fn an_unreadable_id_is_answered_with_null() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    // Cut inside the id: the id cannot be read (a cut *after* a readable id is answered with it).
    b.send_raw(r#"{"jsonrpc":"2.0","id":12"#);
    let msg = b.recv();
    assert_eq!(msg["id"], Value::Null, "{msg}");
    assert_eq!(msg["error"]["code"], -32700, "{msg}");
    b.send_raw("not json at all");
    let msg = b.recv();
    assert_eq!(msg["id"], Value::Null, "{msg}");
}

#[test]
fn a_line_starting_with_a_byte_order_mark_is_served_normally() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    let line = format!(
        "\u{feff}{}",
        tool_call(json!(5), "echo", json!({"text":"after a BOM"}))
    );
    b.send_raw(&line);
    let answer = b.recv();
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "after a BOM",
        "{answer}"
    );
}

#[test]
fn an_oversized_line_is_answered_with_the_id_read_from_its_start() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &["--max-message-size", "1M"]);
    b.initialize();
    let text = "y".repeat(2 * 1024 * 1024);
    b.send(&tool_call(json!(99), "echo", json!({ "text": text })));
    let mut seen = Vec::new();
    let answer = expect_answer(&mut b, &json!(99), "an oversized request", &mut seen);
    assert_invalid_request(&answer, json!(99));
    let msg = answer["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("too large") && msg.contains("--max-message-size"),
        "{msg:?}"
    );
    // The bridge reads on.
    b.send(&json!({"jsonrpc":"2.0","id":100,"method":"ping"}));
    expect_answer(
        &mut b,
        &json!(100),
        "a ping after the oversized line",
        &mut seen,
    );
}

#[test]
fn each_batch_element_with_a_readable_id_gets_its_own_error() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    b.send_raw(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
    );
    for id in [1, 2] {
        let line = b.recv_line();
        let msg: Value = serde_json::from_str(&line).unwrap();
        assert!(
            msg.is_object(),
            "one error frame per line, not a batch: {line}"
        );
        assert_invalid_request(&msg, json!(id));
        let text = msg["error"]["message"].as_str().unwrap_or("");
        assert!(text.contains("batch"), "{text:?}");
    }
}

#[test]
fn a_refused_batch_holds_back_stdin_until_its_errors_are_written() {
    // 4,000 ids in one 52 KB line make 4,000 error frames (about 600 KB): far more than the pipe
    // holds while the client does not read, and more than the 64 KiB budget.
    const N: usize = 4000;
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_env(
        &srv.url("/mcp"),
        &[],
        &[("MCP_REMOTE_MEMORY_BUDGET", "65536")],
    );
    b.initialize();
    b.pause_stdout();
    let batch: Vec<String> = (1..=N).map(|id| format!(r#"{{"id":{id}}}"#)).collect();
    b.send_raw(&format!("[{}]", batch.join(",")));
    // Once the batch is refused (the stdin reader may read one line ahead of the dispatcher);
    // its errors are made right after the warning.
    assert!(
        eventually(HANG, || b.stderr().contains("not a JSON-RPC message")),
        "the batch was never refused"
    );
    // Time for the dispatcher to make and count the 4,000 errors: 200 ms natively; qemu-user runs
    // the same work many times slower (the arm64 suite measured it past 200 ms).
    let settle = if support::emulated() { 3000 } else { 200 };
    std::thread::sleep(Duration::from_millis(settle));
    b.send(&tool_call(json!("after"), "echo", json!({"text":"after"})));
    std::thread::sleep(Duration::from_millis(1500));
    let calls = srv
        .requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .count();
    assert_eq!(
        calls, 0,
        "the next line went out while the batch's errors were neither written nor counted"
    );
    b.resume_stdout();
    let mut errors = 0;
    loop {
        let msg = b
            .recv_within(HANG)
            .expect("the batch's errors and the call's answer");
        if msg["id"] == "after" {
            assert_eq!(msg["result"]["content"][0]["text"], "after", "{msg}");
            break;
        }
        assert_invalid_request(&msg, msg["id"].clone());
        errors += 1;
    }
    assert_eq!(
        errors, N,
        "one error per batch element, before the next answer"
    );
}

// ---- 8. a new session gets the old one's set-up back ----------------------------------------

fn call_ok(b: &mut Bridge, id: Value, method: &str, params: Value) -> Value {
    let resp = b.call(id, method, params);
    assert!(resp.get("result").is_some(), "{method}: {resp}");
    resp
}

/// Subscribes to test://hello and test://greeting/bob (test://greeting/ann is subscribed, then
/// unsubscribed), sets the log level to debug and then warning.
fn set_up_session(b: &mut Bridge) {
    for (id, method, params) in [
        (1, "resources/subscribe", json!({"uri":"test://hello"})),
        (
            2,
            "resources/subscribe",
            json!({"uri":"test://greeting/ann"}),
        ),
        (
            3,
            "resources/unsubscribe",
            json!({"uri":"test://greeting/ann"}),
        ),
        (
            4,
            "resources/subscribe",
            json!({"uri":"test://greeting/bob"}),
        ),
        (5, "logging/setLevel", json!({"level":"debug"})),
        (6, "logging/setLevel", json!({"level":"warning"})),
    ] {
        call_ok(b, json!(id), method, params);
    }
}

fn expected_setup() -> SessionSetup {
    SessionSetup {
        subscriptions: vec!["test://greeting/bob".into(), "test://hello".into()],
        log_level: Some("warning".into()),
    }
}

/// The one live session other than `old`, once it exists.
fn new_session(srv: &TestServer, old: Option<&str>) -> Option<String> {
    let mut ids: Vec<String> = srv
        .active_sessions()
        .into_iter()
        .filter(|s| Some(s.as_str()) != old)
        .collect();
    (ids.len() == 1).then(|| ids.remove(0))
}

/// After a re-initialize: the new session has the old one's set-up, and a resource update on the
/// server reaches the client again.
fn assert_setup_replayed(b: &mut Bridge, srv: &TestServer, old: Option<&str>) {
    let replayed = eventually(HANG, || {
        new_session(srv, old).is_some_and(|s| srv.session_setup(&s) == Some(expected_setup()))
    });
    let found = new_session(srv, old).and_then(|s| srv.session_setup(&s));
    assert!(
        replayed,
        "the new session should have the client's subscriptions and log level {:?}, has {found:?}",
        expected_setup()
    );
    assert!(
        eventually(HANG, || srv.update_resource("test://hello") > 0),
        "the new session never opened a listening stream for the update"
    );
    let deadline = Instant::now() + HANG;
    loop {
        let msg = b
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .expect("notifications/resources/updated never reached the client");
        if msg["method"] == "notifications/resources/updated" {
            assert_eq!(msg["params"]["uri"], "test://hello", "{msg}");
            break;
        }
    }
}

#[test]
fn an_expired_session_is_replaced_with_the_clients_subscriptions_and_log_level() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    set_up_session(&mut b);
    let old = srv.active_sessions().pop().expect("a session");
    assert_eq!(srv.session_setup(&old), Some(expected_setup()));
    srv.inject(Fault::ExpireSessions);
    let echo = b.call(
        json!(7),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"again"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "again", "{echo}");
    assert_setup_replayed(&mut b, &srv, Some(&old));
}

#[test]
fn a_restarted_server_gets_the_clients_subscriptions_and_log_level_back() {
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    set_up_session(&mut b);
    srv.stop();
    let srv = TestServer::start_on(port, ServerOptions::default());
    let echo = b.call(
        json!(7),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"again"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "again", "{echo}");
    assert_setup_replayed(&mut b, &srv, None);
}

#[test]
fn a_subscription_that_cannot_be_replayed_is_reported_to_the_client() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    call_ok(
        &mut b,
        json!(1),
        "resources/subscribe",
        json!({"uri":"test://hello"}),
    );
    srv.inject(Fault::StatusFor {
        method: "resources/subscribe",
        status: 500,
        content_type: "application/json",
        body: json!({"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"subscriptions are down"}})
            .to_string(),
    });
    srv.inject(Fault::ExpireSessions);
    b.send(&tool_call(json!(3), "echo", json!({"text":"again"})));
    let deadline = Instant::now() + HANG;
    let mut seen = Vec::new();
    let warned = loop {
        let Some(msg) = b.recv_within(deadline.saturating_duration_since(Instant::now())) else {
            break None;
        };
        if msg["method"] == "notifications/message" && msg["params"]["level"] == "warning" {
            break Some(msg);
        }
        seen.push(msg);
    };
    let warned = warned.unwrap_or_else(|| {
        panic!("the client was never told that its subscription was lost; it got {seen:?}")
    });
    assert!(
        warned["params"]["data"]
            .to_string()
            .contains("test://hello"),
        "the warning should name the lost subscription: {warned}"
    );
}

// ---- 9. the listening stream comes back at once on a new session ----------------------------

#[test]
fn after_a_reinitialize_the_listening_stream_is_reopened_at_once() {
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    assert!(
        srv.wait_for_request(HANG, |r| r.method == "GET").is_some(),
        "no listening stream"
    );
    // Down long enough for the listening stream's reconnection to back off (today: three
    // attempts, the next one 1.75-2.25 s after the third).
    srv.stop();
    thread::sleep(Duration::from_millis(2300));
    let srv = TestServer::start_on(port, ServerOptions::default());
    let echo = b.call(
        json!(1),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"back"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "back", "{echo}");

    // A server notification sent right after the re-initialize reaches the client.
    let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"right after the re-init"}});
    assert!(
        eventually(Duration::from_secs(1), || srv.send_on_get_streams(&note)
            > 0),
        "no listening stream on the new session within 1 s of the re-initialize"
    );
    let deadline = Instant::now() + HANG;
    loop {
        let msg = b
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .expect("the server's notification never reached the client");
        if msg["params"]["data"] == "right after the re-init" {
            break;
        }
    }
    let requests = srv.requests();
    let init = requests
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("initialize"))
        .expect("the replayed initialize");
    let session = new_session(&srv, None).expect("one new session");
    let get = requests
        .iter()
        .find(|r| r.method == "GET" && r.header("mcp-session-id") == Some(session.as_str()))
        .expect("a GET on the new session");
    let gap = get.at.saturating_duration_since(init.at);
    assert!(
        gap <= Duration::from_secs(1),
        "the GET listening stream came {gap:?} after the replayed initialize (at most 1 s)"
    );
}

// ---- 10. the end of a legacy stream fails only what went over it -----------------------------

/// A 2026-07-28 request: `_meta` carries the version and client capabilities.
fn modern(id: Value, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[test]
fn when_the_legacy_stream_ends_a_modern_request_in_flight_is_not_failed() {
    // One URL: GET is the legacy SSE stream, POST serves 2026-07-28.
    let srv = TestServer::start(ServerOptions {
        modern: true,
        legacy_get_on_mcp: true,
        ..ServerOptions::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &["--transport", "sse-only"]);
    let init = b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"test","version":"1"}}),
    );
    assert!(init.get("result").is_some(), "{init}");
    b.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let legacy_id = json!("legacy-slow");
    let modern_id = json!("modern-slow");
    b.send(&tool_call(legacy_id.clone(), "slow", json!({"ms": 2000})));
    b.send(&modern(
        modern_id.clone(),
        "tools/call",
        json!({"name":"slow","arguments":{"ms": 2000}}),
    ));
    assert!(
        eventually(HANG, || server_saw_id(&srv, &legacy_id)
            && server_saw_id(&srv, &modern_id)),
        "both requests reach the server"
    );
    srv.inject(Fault::EndLegacyStreams);
    let mut seen = Vec::new();
    let modern_answer = expect_answer(&mut b, &modern_id, "the 2026-07-28 request", &mut seen);
    assert_eq!(
        modern_answer["result"]["content"][0]["text"], "slow done",
        "the 2026-07-28 request never used the legacy stream and must not fail with it: {modern_answer}"
    );
    let legacy_answer = seen
        .iter()
        .find(|m| m.get("id") == Some(&legacy_id))
        .cloned()
        .or_else(|| answer_within(&mut b, &legacy_id, HANG, &mut Vec::new()))
        .expect("the legacy request is answered (with an error)");
    assert!(legacy_answer.get("error").is_some(), "{legacy_answer}");
}

// ---- 11. the over-size error names its flag ---------------------------------------------------

#[test]
fn an_oversized_event_from_the_server_names_the_flag_that_raises_the_bound() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge_with_env(
        &srv.url("/mcp"),
        &[],
        &[("MCP_REMOTE_MAX_MESSAGE_SIZE", "1M")],
    );
    b.initialize();
    b.send(&tool_call(
        json!(1),
        "big",
        json!({"bytes": 2 * 1024 * 1024}),
    ));
    let mut seen = Vec::new();
    let answer = expect_answer(
        &mut b,
        &json!(1),
        "a request with an oversized answer",
        &mut seen,
    );
    let msg = answer["error"]["message"].as_str().unwrap_or_else(|| {
        panic!(
            "a 2 MiB event over a 1 MiB bound must be an error: {}",
            answer.to_string().chars().take(200).collect::<String>()
        )
    });
    assert!(msg.contains("--max-message-size"), "{msg:?}");
}

// ---- 12. after EOF nothing new is started -----------------------------------------------------

#[test]
fn a_session_lost_at_eof_is_not_replaced() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &["--debug"]);
    b.initialize();
    assert!(
        srv.wait_for_request(HANG, |r| r.method == "GET").is_some(),
        "no listening stream"
    );
    // The server forgets the session; the bridge can only learn it from the next POST, which
    // the client sends right before it leaves.
    srv.inject(Fault::ExpireSessionsSilently);
    b.send(&json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"}));
    b.send(&json!({"jsonrpc":"2.0","id":9,"method":"ping"}));
    b.close_stdin();
    assert_exits(&mut b, "stdin EOF");
    let stderr = b.stderr();
    assert!(
        !stderr.contains("starting a new one"),
        "the bridge started a new session after EOF:\n{stderr}"
    );
    assert_eq!(
        initialize_posts(&srv),
        1,
        "no initialize may be sent after EOF:\n{stderr}"
    );
}

// ---- the test server's misbehaviours do what the tests above assume -------------------------

#[test]
#[cfg_attr(
    windows,
    ignore = "wine: the test server sees a closed connection late or never"
)]
fn the_test_server_notices_when_the_client_closes_a_hanging_stream() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    b.send(&tool_call(json!(1), "hang", json!({})));
    assert!(eventually(HANG, || server_saw_id(&srv, &json!(1))));
    assert!(srv.abandoned_streams().is_empty());
    assert!(srv.open_connections() >= 1);
    drop(b); // kills the bridge: every connection closes
    assert!(
        eventually(HANG, || srv.abandoned_streams() == vec![json!(1)]),
        "{:?}",
        srv.abandoned_streams()
    );
    assert!(eventually(HANG, || srv.open_connections() == 0));
}

#[test]
fn the_test_server_sends_resource_updates_to_subscribers_and_numbers_its_flood() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    assert_eq!(
        srv.update_resource("test://hello"),
        0,
        "nobody subscribed yet"
    );
    call_ok(
        &mut b,
        json!(1),
        "resources/subscribe",
        json!({"uri":"test://hello"}),
    );
    assert!(eventually(HANG, || srv.update_resource("test://hello") == 1));
    let msg = b.recv();
    assert_eq!(msg["method"], "notifications/resources/updated", "{msg}");
    assert_eq!(msg["params"]["uri"], "test://hello", "{msg}");
    let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}});
    assert_eq!(srv.send_on_get_streams(&note), 1);
    assert_eq!(b.recv()["params"]["data"], "hi");
    b.send(&tool_call(json!(2), "flood", json!({"pad": 10})));
    for seq in 0..500 {
        assert_eq!(b.recv()["params"]["data"]["seq"], seq);
    }
}
