//! The bridge's OAuth edges end to end (issue 19, items 7 and 8): the real binary against a
//! scripted MCP server and authorization server (tests/support/oauth_peer.rs) on loopback. A
//! broken or hostile authorization server is bad input like any other: every wait on it is
//! bounded, what is read from it is size-bounded, nothing goes to an endpoint that failed
//! validation, a bad answer is one true error line and the bridge stays up; `--oauth off` and a
//! user's own `Authorization` header turn all of it off; and no secret the authorization server
//! issued ever reaches stderr or stdout.

#[path = "support/oauth_peer.rs"]
mod oauth_peer;
mod support;

use std::time::{Duration, Instant};

use oauth_peer::{wait_for_url, Metadata, Peer, Redirect, Token};
use serde_json::{json, Value};
use support::bridge::{mtls_args, Bridge};

/// The login wait the tests give the bridge (`--oauth-login-wait`).
const LOGIN_WAIT: &str = "2";
/// A generous bound for what should take about two seconds: a hang fails, a slow CI does not.
const ABOUT_TWO_SECONDS: Duration = Duration::from_secs(5);

/// The bridge for the plain-HTTP peer, headless (`--oauth-browser none`), with `extra` flags.
fn bridge(peer: &Peer, extra: &[&str]) -> Bridge {
    let mut args = vec![
        peer.mcp_url(),
        "--allow-http".to_string(),
        "--transport".into(),
        "http-only".into(),
        "--oauth-browser".into(),
        "none".into(),
        "--oauth-token-store".into(),
        "memory".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Bridge::spawn(&args, &[])
}

/// Send `tools/list` with `id`; its response (or None if none came within `wait`), and how
/// long it took.
fn tools_list(b: &mut Bridge, id: i64, wait: Duration) -> (Option<Value>, Duration) {
    let started = Instant::now();
    b.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}));
    let deadline = started + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match b.recv_within(left) {
            Some(msg) if msg["id"] == json!(id) => return (Some(msg), started.elapsed()),
            Some(_) => continue,
            None => return (None, started.elapsed()),
        }
    }
}

/// The error message of a JSON-RPC error response (panics on a result).
fn error_message(resp: &Value) -> String {
    resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON-RPC error: {resp}"))
        .to_string()
}

/// One line: no line break in a message meant for a human.
fn assert_one_line(msg: &str) {
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "not one line: {msg:?}"
    );
}

/// The bridge answers `tools/list` with a result (the token works).
fn assert_answered(resp: &Option<Value>, b: &Bridge) {
    let resp = resp
        .as_ref()
        .unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    assert!(
        resp.get("result").is_some(),
        "expected a result: {resp}; stderr:\n{}",
        b.stderr()
    );
}

/// Start a request that meets the 401, play the browser for the login it prints, and return
/// the request's answer.
fn login_through(b: &mut Bridge, peer: &Peer, id: i64) -> Option<Value> {
    b.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}));
    let url = wait_for_url(|| b.stderr(), 0, support::bridge::WAIT);
    assert_eq!(
        peer.complete_login(&url),
        200,
        "the loopback listener took the redirect"
    );
    b.recv_within(support::bridge::WAIT)
}

#[test]
fn a_login_that_outlives_the_wait_fails_the_request_with_what_to_do_and_the_next_request_uses_it() {
    let peer = Peer::plain();
    let mut b = bridge(&peer, &["--oauth-login-wait", LOGIN_WAIT]);
    let (resp, took) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    assert!(
        took >= Duration::from_millis(1500) && took < ABOUT_TWO_SECONDS,
        "the request waited {took:?} for a 2 s login wait"
    );
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains("needs a sign-in"), "{msg}");
    assert!(msg.contains("the URL is on stderr"), "{msg}");
    assert!(msg.contains("mcp-secure-remote login"), "{msg}");
    // The login goes on: finish it, as the user would in the browser.
    let url = wait_for_url(|| b.stderr(), 0, support::bridge::WAIT);
    assert_eq!(peer.complete_login(&url), 200);
    let deadline = Instant::now() + support::bridge::WAIT;
    while peer.access_tokens().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (resp, _) = tools_list(&mut b, 2, support::bridge::WAIT);
    assert_answered(&resp, &b);
    assert_eq!(peer.seen_at("/authorize").len(), 1, "one login, not two");
}

#[test]
fn endless_authorization_server_metadata_stops_at_the_size_bound() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::Endless);
    let mut b = bridge(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains("larger than 262144 bytes"), "{msg}");
    // The bridge stopped reading: the peer's writes end (socket buffers aside, far from 60 s of
    // writing).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !peer.endless().1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (written, ended) = peer.endless();
    assert!(ended, "the bridge is still reading the endless metadata");
    assert!(
        written < 64 << 20,
        "{written} bytes were taken from an endless answer"
    );
    assert!(
        peer.seen_at("/register").is_empty(),
        "no registration after bad metadata"
    );
    let (resp, _) = tools_list(&mut b, 2, support::bridge::WAIT);
    assert!(
        resp.is_some(),
        "the bridge still answers; stderr:\n{}",
        b.stderr()
    );
}

#[test]
fn a_silent_authorization_server_holds_the_request_no_longer_than_the_login_wait_and_eof_still_ends_the_bridge(
) {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::Silent);
    let mut b = bridge(&peer, &["--oauth-login-wait", LOGIN_WAIT]);
    let (resp, took) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    assert!(took < ABOUT_TWO_SECONDS, "the request waited {took:?}");
    let msg = error_message(&resp);
    assert_one_line(&msg);
    // True to where the login is: no URL was shown, the authorization server is silent.
    assert!(msg.contains("has not answered yet"), "{msg}");
    assert!(!msg.contains("the URL is on stderr"), "{msg}");
    assert!(
        !peer
            .seen_at("/.well-known/oauth-authorization-server")
            .is_empty(),
        "the metadata request is pending"
    );
    // The metadata request is still pending: closing stdin ends the bridge anyway.
    b.close_stdin();
    let started = Instant::now();
    let status = b.wait_exit(ABOUT_TWO_SECONDS);
    assert!(
        status.is_some(),
        "the bridge did not exit within {ABOUT_TWO_SECONDS:?} of stdin EOF with a metadata request pending"
    );
    assert!(started.elapsed() < ABOUT_TWO_SECONDS);
}

#[test]
fn metadata_with_a_mismatched_issuer_sends_nothing_to_its_endpoints() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::IssuerMismatch);
    let mut b = bridge(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains("names issuer"), "{msg}");
    for path in ["/register", "/authorize", "/token"] {
        assert!(peer.seen_at(path).is_empty(), "a request reached {path}");
    }
    assert!(
        !b.stderr().contains("visit:"),
        "no authorization URL is shown for a refused issuer"
    );
}

#[test]
fn a_redirect_with_the_wrong_state_is_not_redeemed() {
    redirect_refused(Redirect::WrongState, "wrong state");
}

#[test]
fn a_redirect_with_the_wrong_iss_is_not_redeemed() {
    redirect_refused(
        Redirect::WrongIss,
        "names issuer 'https://attacker.invalid'",
    );
}

fn redirect_refused(redirect: Redirect, expect: &str) {
    let peer = Peer::plain();
    peer.set_redirect(redirect);
    let mut b = bridge(&peer, &["--oauth-login-wait", "15"]);
    let resp = login_through(&mut b, &peer, 1)
        .unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains(expect), "{msg}");
    assert!(peer.seen_at("/token").is_empty(), "the code was redeemed");
}

#[test]
fn a_malformed_token_answer_is_one_true_line_and_the_bridge_answers_the_next_request() {
    let peer = Peer::plain();
    peer.set_token(Token::Malformed);
    let mut b = bridge(&peer, &["--oauth-login-wait", "15"]);
    let resp = login_through(&mut b, &peer, 1)
        .unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains("token endpoint"), "{msg}");
    assert!(msg.contains("not valid JSON"), "{msg}");
    // The authorization server mends its ways: the next request logs in again and is answered.
    peer.set_token(Token::Good);
    b.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}));
    let url = wait_for_url(|| b.stderr(), 1, support::bridge::WAIT);
    assert_eq!(peer.complete_login(&url), 200);
    let resp = b.recv_within(support::bridge::WAIT);
    assert_answered(&resp, &b);
}

#[test]
fn stdin_eof_while_a_login_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    let mut b = bridge(&peer, &["--oauth-login-wait", "30"]);
    b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
    wait_for_url(|| b.stderr(), 0, support::bridge::WAIT);
    b.close_stdin();
    let started = Instant::now();
    assert!(
        b.wait_exit(ABOUT_TWO_SECONDS).is_some(),
        "the bridge did not exit within {ABOUT_TWO_SECONDS:?} of stdin EOF during a login"
    );
    assert!(started.elapsed() < ABOUT_TWO_SECONDS);
}

#[cfg(unix)]
#[test]
fn sigterm_while_a_login_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    let mut b = bridge(&peer, &["--oauth-login-wait", "30"]);
    b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
    wait_for_url(|| b.stderr(), 0, support::bridge::WAIT);
    let started = Instant::now();
    b.terminate();
    assert!(
        b.wait_exit(ABOUT_TWO_SECONDS).is_some(),
        "the bridge did not exit within {ABOUT_TWO_SECONDS:?} of SIGTERM during a login"
    );
    assert!(started.elapsed() < ABOUT_TWO_SECONDS);
}

#[test]
fn stdin_eof_while_a_token_request_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    peer.set_token(Token::Silent);
    let mut b = bridge(&peer, &["--oauth-login-wait", "30"]);
    b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
    let url = wait_for_url(|| b.stderr(), 0, support::bridge::WAIT);
    assert_eq!(peer.complete_login(&url), 200);
    let deadline = Instant::now() + support::bridge::WAIT;
    while peer.seen_at("/token").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        peer.seen_at("/token").len(),
        1,
        "the token request is pending"
    );
    b.close_stdin();
    let started = Instant::now();
    assert!(
        b.wait_exit(ABOUT_TWO_SECONDS).is_some(),
        "the bridge did not exit within {ABOUT_TWO_SECONDS:?} of stdin EOF during a token request"
    );
    assert!(started.elapsed() < ABOUT_TWO_SECONDS);
}

/// The 401 the bridge passes on with OAuth off, and what reached the peer.
fn refused_without_oauth(args: &[&str], env: &[(&str, &str)]) -> (String, Peer) {
    let peer = Peer::plain();
    let mut all = vec![
        peer.mcp_url(),
        "--allow-http".to_string(),
        "--transport".into(),
        "http-only".into(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let mut b = Bridge::spawn(&all, env);
    let (resp, _) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    let paths: Vec<String> = peer.seen().iter().map(|s| s.path().to_string()).collect();
    assert!(
        paths.iter().all(|p| p == "/mcp"),
        "OAuth is off, yet the bridge asked {paths:?}"
    );
    assert!(!b.stderr().contains("visit:"), "no login with OAuth off");
    (msg, peer)
}

#[test]
fn oauth_off_passes_the_401_on_saying_no_token_was_sent_and_discovers_nothing() {
    let (msg, peer) = refused_without_oauth(&["--oauth", "off"], &[]);
    assert!(msg.contains("OAuth is off"), "{msg}");
    assert!(!msg.contains("refused"), "no token was sent: {msg}");
    assert!(peer
        .seen_at("/mcp")
        .iter()
        .all(|s| s.header("authorization").is_none()));
}

#[test]
fn oauth_off_by_environment_variable_likewise() {
    let (msg, _) = refused_without_oauth(&[], &[("MCP_REMOTE_OAUTH", "off")]);
    assert!(msg.contains("OAuth is off"), "{msg}");
}

#[test]
fn a_user_authorization_header_turns_oauth_off_and_the_401_names_that_header() {
    let (msg, peer) =
        refused_without_oauth(&["--header", "Authorization: Bearer users-own-token"], &[]);
    assert!(
        msg.contains("refused the Authorization header sent with --header"),
        "{msg}"
    );
    assert!(
        !msg.contains("users-own-token"),
        "the token is not repeated: {msg}"
    );
    let sent: Vec<Option<String>> = peer
        .seen_at("/mcp")
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert!(
        sent.iter()
            .all(|h| h.as_deref() == Some("Bearer users-own-token")),
        "only the user's token is sent: {sent:?}"
    );
}

#[test]
fn debug_output_never_carries_a_secret_the_authorization_server_issued() {
    let peer = Peer::plain();
    // An access token that is due for renewal at once: the next request refreshes it, so that
    // the refresh grant's secrets are exercised too.
    peer.set_expires_in(30);
    let mut b = bridge(&peer, &["--oauth-login-wait", "15", "--debug"]);
    let first = login_through(&mut b, &peer, 1);
    assert_answered(&first, &b);
    let (second, _) = tools_list(&mut b, 2, support::bridge::WAIT);
    assert_answered(&second, &b);
    assert!(
        peer.access_tokens().len() >= 2,
        "the second request renewed the token (refresh grant)"
    );
    b.close_stdin();
    assert!(b.wait_exit(support::bridge::WAIT).is_some());
    let stderr = b.stderr();
    assert!(
        stderr.contains("OAuth:"),
        "--debug logged the OAuth calls:\n{stderr}"
    );
    let mut stdout = String::new();
    while let Some(line) = b.recv_within(Duration::from_millis(100)) {
        stdout.push_str(&line.to_string());
    }
    stdout.push_str(&first.map(|v| v.to_string()).unwrap_or_default());
    stdout.push_str(&second.map(|v| v.to_string()).unwrap_or_default());
    let secrets = peer.secrets();
    assert!(
        secrets.len() >= 5,
        "code, client secret, two access and refresh tokens: {secrets:?}"
    );
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "stderr carries a secret:\n{stderr}"
        );
        assert!(
            !stdout.contains(secret.as_str()),
            "stdout carries a secret:\n{stdout}"
        );
    }
}

/// The TLS bridge for the TLS peer: the fixtures' client identity and CA, no `--allow-http`.
fn tls_bridge(peer: &Peer, extra: &[&str]) -> Bridge {
    let mut args = vec![peer.mcp_url()];
    args.extend(mtls_args());
    args.extend(
        [
            "--transport",
            "http-only",
            "--oauth-browser",
            "none",
            "--oauth-token-store",
            "memory",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string()),
    );
    Bridge::spawn(&args, &[])
}

#[test]
fn over_tls_every_authorization_server_call_presents_the_client_certificate() {
    let peer = Peer::tls();
    let mut b = tls_bridge(&peer, &["--oauth-login-wait", "15"]);
    let resp = login_through(&mut b, &peer, 1);
    assert_answered(&resp, &b);
    let bridge_calls: Vec<_> = peer
        .seen()
        .into_iter()
        .filter(|s| s.path() != "/authorize") // the browser's, not the bridge's
        .collect();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/register",
        "/token",
    ] {
        let calls: Vec<_> = bridge_calls.iter().filter(|s| s.path() == path).collect();
        assert!(!calls.is_empty(), "no call to {path}");
        assert!(
            calls.iter().all(|s| s.client_cert),
            "{path} was called without the client certificate"
        );
    }
}

#[test]
fn a_plain_http_token_endpoint_is_refused_for_an_https_server_and_nothing_is_sent() {
    let peer = Peer::tls();
    peer.set_metadata(Metadata::PlainHttpToken);
    let mut b = tls_bridge(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = tools_list(&mut b, 1, support::bridge::WAIT);
    let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", b.stderr()));
    let msg = error_message(&resp);
    assert_one_line(&msg);
    assert!(msg.contains("http://as.invalid/token"), "{msg}");
    assert!(msg.contains("--allow-http"), "{msg}");
    // The metadata failed validation as a whole: even its valid endpoints get nothing.
    assert!(
        peer.seen_at("/register").is_empty(),
        "registration was attempted"
    );
    assert!(!b.stderr().contains("visit:"), "no login was offered");
}
