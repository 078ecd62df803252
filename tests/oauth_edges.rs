//! The bridge's OAuth edges end to end (issue 19, items 7 and 8): the real binary against a
//! scripted MCP server and authorization server (tests/support/scripted_oauth.rs) on loopback. A
//! broken or hostile authorization server is bad input like any other: every wait on it is
//! bounded, what is read from it is size-bounded, nothing goes to an endpoint that failed
//! validation, a bad answer is one true error line and the bridge stays up; `--oauth off` and a
//! user's own `Authorization` header turn all of it off; and no secret the authorization server
//! issued ever reaches stderr or stdout.

#[path = "support/scripted_oauth.rs"]
mod scripted_oauth;
mod support;

use std::time::{Duration, Instant};

use scripted_oauth::{wait_for_url, Metadata, Peer, Redirect, Resource, Token, FORGED};
use serde_json::{json, Value};
use support::bridge::{mtls_args, Bridge};

/// The login wait the tests give the bridge (`--oauth-login-wait`).
const LOGIN_WAIT: &str = "2";
/// A generous bound for what should take about two seconds: a hang fails, a slow CI does not.
/// Under qemu-user the handshakes and the discovery before the login wait take seconds of their
/// own (measured: past 5 s on a loaded 2-core machine), so the bound is 15 s there.
fn about_two_seconds() -> Duration {
    if support::emulated() {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(5)
    }
}

/// A bridge run: the bridge (always with `--debug`, so that the most verbose output is the one
/// checked for secrets) and every stdout line it wrote.
struct Run {
    b: Bridge,
    stdout: Vec<String>,
    /// Messages read while waiting for another response.
    pending: Vec<Value>,
}

impl Run {
    /// The bridge for the plain-HTTP peer, headless (`--oauth-browser none`), with `extra` flags.
    fn plain(peer: &Peer, extra: &[&str]) -> Run {
        let mut args = vec![peer.mcp_url(), "--allow-http".to_string()];
        args.extend(headless().iter().chain(extra).map(|s| s.to_string()));
        Run::spawn(&args, &[])
    }

    /// The bridge for the TLS peer: the fixtures' client identity and CA, no `--allow-http`.
    fn tls(peer: &Peer, extra: &[&str]) -> Run {
        let mut args = vec![peer.mcp_url()];
        args.extend(mtls_args());
        args.extend(headless().iter().chain(extra).map(|s| s.to_string()));
        Run::spawn(&args, &[])
    }

    fn spawn(args: &[String], env: &[(&str, &str)]) -> Run {
        let mut args = args.to_vec();
        args.push("--debug".into());
        Run {
            b: Bridge::spawn(&args, env),
            stdout: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn send_tools_list(&mut self, id: i64) {
        self.b
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}));
    }

    /// The response to `id`, if it comes within `wait` (or came already, while waiting for
    /// another one).
    fn response(&mut self, id: i64, wait: Duration) -> Option<Value> {
        if let Some(pos) = self.pending.iter().position(|m| m["id"] == json!(id)) {
            return Some(self.pending.remove(pos));
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.b.recv_within(left)?;
            self.stdout.push(msg.to_string());
            if msg["id"] == json!(id) {
                return Some(msg);
            }
            self.pending.push(msg);
        }
    }

    /// Send `tools/list` with `id`: its response (panics if none within `WAIT`), and how long
    /// it took.
    fn tools_list(&mut self, id: i64) -> (Value, Duration) {
        let started = Instant::now();
        self.send_tools_list(id);
        let resp = self.response(id, support::bridge::WAIT);
        let resp = resp.unwrap_or_else(|| panic!("no answer; stderr:\n{}", self.b.stderr()));
        (resp, started.elapsed())
    }

    /// Send `tools/list`, play the browser for the login it prints (the `nth` URL printed in
    /// this run, from 0), and return the request's answer.
    fn tools_list_through_login(&mut self, peer: &Peer, id: i64, nth: usize) -> Value {
        self.send_tools_list(id);
        self.finish_login(peer, nth);
        self.response(id, support::bridge::WAIT)
            .unwrap_or_else(|| panic!("no answer; stderr:\n{}", self.b.stderr()))
    }

    /// Play the browser for the `nth` authorization URL the bridge printed.
    fn finish_login(&mut self, peer: &Peer, nth: usize) {
        let url = wait_for_url(|| self.b.stderr(), nth, support::bridge::WAIT);
        // Any HTTP answer: what the listener shows the browser is its own business.
        peer.complete_login(&url);
    }

    /// Close stdin (or send SIGTERM) and assert the bridge exits within about two seconds.
    fn assert_ends_promptly(&mut self, how: End) {
        let started = Instant::now();
        match how {
            End::Eof => self.b.close_stdin(),
            #[cfg(unix)]
            End::Sigterm => self.b.terminate(),
        }
        let status = self.b.wait_exit(about_two_seconds());
        let status = status.unwrap_or_else(|| {
            panic!(
                "the bridge did not exit within {:?} of {how:?}",
                about_two_seconds()
            )
        });
        assert!(started.elapsed() < about_two_seconds());
        assert!(
            status.success(),
            "{how:?} during a login is a normal end: {status:?}"
        );
    }

    /// No secret the peer issued or saw (codes, tokens, client secrets, PKCE verifiers) is on
    /// the bridge's stderr (with `--debug`) or stdout; `more` are further secrets to look for.
    fn assert_no_secret(&mut self, peer: &Peer, more: &[&str]) {
        while let Some(msg) = self.b.recv_within(Duration::from_millis(50)) {
            self.stdout.push(msg.to_string());
        }
        let stderr = self.b.stderr();
        assert!(stderr.contains("debug:"), "the run was verbose:\n{stderr}");
        let stdout = self.stdout.join("\n");
        let secrets = peer.secrets();
        for secret in secrets
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
        {
            assert!(
                !stderr.contains(secret),
                "stderr carries {secret}:\n{stderr}"
            );
            assert!(
                !stdout.contains(secret),
                "stdout carries {secret}:\n{stdout}"
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum End {
    Eof,
    #[cfg(unix)]
    Sigterm,
}

fn headless() -> [&'static str; 6] {
    [
        "--transport",
        "http-only",
        "--oauth-browser",
        "none",
        "--oauth-token-store",
        "memory",
    ]
}

/// The error message of a JSON-RPC error response (panics on a result), checked to be one line.
fn error_message(resp: &Value) -> String {
    let msg = resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a JSON-RPC error: {resp}"))
        .to_string();
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "not one line: {msg:?}"
    );
    msg
}

/// A result, not an error (the token worked).
fn assert_answered(resp: &Value, run: &Run) {
    assert!(
        resp.get("result").is_some(),
        "expected a result: {resp}; stderr:\n{}",
        run.b.stderr()
    );
}

/// Wait (bounded) until `ready` holds.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + support::bridge::WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_login_that_outlives_the_wait_fails_the_request_with_what_to_do_and_the_next_request_uses_it() {
    let peer = Peer::plain();
    let mut run = Run::plain(&peer, &["--oauth-login-wait", LOGIN_WAIT]);
    let (resp, took) = run.tools_list(1);
    assert!(
        took >= Duration::from_millis(1500) && took < about_two_seconds(),
        "the request waited {took:?} for a 2 s login wait"
    );
    let msg = error_message(&resp);
    assert!(msg.contains("needs a sign-in"), "{msg}");
    assert!(msg.contains("the URL is on stderr"), "{msg}");
    assert!(msg.contains("mcp-secure-remote login"), "{msg}");
    // The login goes on: finish it, as the user would in the browser.
    run.finish_login(&peer, 0);
    wait_until("the code is redeemed", || !peer.access_tokens().is_empty());
    let (resp, _) = run.tools_list(2);
    assert_answered(&resp, &run);
    assert_eq!(peer.seen_at("/authorize").len(), 1, "one login, not two");
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn endless_authorization_server_metadata_stops_at_the_size_bound() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::Endless);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    assert!(msg.contains("larger than 262144 bytes"), "{msg}");
    // The bridge stopped reading: the peer's writes end (socket buffers aside), long before
    // its 60 s of writing.
    wait_until("the bridge leaves the endless answer", || peer.endless().1);
    let (written, _) = peer.endless();
    assert!(
        written < 64 << 20,
        "{written} bytes were taken from an endless answer"
    );
    assert!(
        peer.seen_at("/register").is_empty(),
        "no registration after bad metadata"
    );
    let (resp, _) = run.tools_list(2);
    error_message(&resp);
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_silent_authorization_server_holds_the_request_no_longer_than_the_login_wait_and_eof_still_ends_the_bridge(
) {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::Silent);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", LOGIN_WAIT]);
    let (resp, took) = run.tools_list(1);
    assert!(took < about_two_seconds(), "the request waited {took:?}");
    let msg = error_message(&resp);
    // True to where the login is: no URL was shown, the authorization server is silent.
    assert!(msg.contains("has not answered yet"), "{msg}");
    assert!(!msg.contains("the URL is on stderr"), "{msg}");
    assert!(
        !peer
            .seen_at("/.well-known/oauth-authorization-server")
            .is_empty(),
        "the metadata request is pending"
    );
    run.assert_no_secret(&peer, &[]);
    run.assert_ends_promptly(End::Eof);
}

/// Slow by nature (the bound is the answer timeout, 30 s): the login a silent authorization
/// server holds ends with one true line, and the next request starts a new one.
#[test]
fn a_silent_authorization_server_fails_the_login_within_the_answer_timeout() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::Silent);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "45"]);
    run.send_tools_list(1);
    let started = Instant::now();
    let resp = run.response(1, Duration::from_secs(40));
    let took = started.elapsed();
    let resp = resp.unwrap_or_else(|| panic!("no answer within 40 s; stderr:\n{}", run.b.stderr()));
    assert!(took < Duration::from_secs(40), "{took:?}");
    let msg = error_message(&resp);
    assert!(msg.contains("authorization failed"), "{msg}");
    assert!(
        msg.contains("/.well-known/oauth-authorization-server"),
        "{msg}"
    );
    peer.set_metadata(Metadata::Good);
    let resp = run.tools_list_through_login(&peer, 2, 0);
    assert_answered(&resp, &run);
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn metadata_with_a_mismatched_issuer_sends_nothing_to_its_endpoints() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::IssuerMismatch);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    assert!(msg.contains("names issuer"), "{msg}");
    for path in ["/register", "/authorize", "/token"] {
        assert!(peer.seen_at(path).is_empty(), "a request reached {path}");
    }
    assert!(
        !run.b.stderr().contains("visit:"),
        "no authorization URL for a refused issuer"
    );
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_resource_of_another_origin_sends_nothing_to_the_authorization_server() {
    let peer = Peer::plain();
    peer.set_resource(Resource::Foreign);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    assert!(msg.contains("another origin"), "{msg}");
    let paths: Vec<String> = peer.seen().iter().map(|s| s.path().to_string()).collect();
    assert!(
        paths
            .iter()
            .all(|p| p == "/mcp" || p == "/.well-known/oauth-protected-resource/mcp"),
        "the authorization server was asked: {paths:?}"
    );
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn what_an_authorization_server_writes_cannot_forge_a_line_on_stderr() {
    let peer = Peer::plain();
    peer.set_metadata(Metadata::ForgedLine);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    assert!(msg.contains("names issuer"), "{msg}");
    // Its token type likewise.
    peer.set_metadata(Metadata::Good);
    peer.set_token(Token::ForgedType);
    let resp = run.tools_list_through_login(&peer, 2, 0);
    let msg = error_message(&resp);
    assert!(msg.contains("only Bearer"), "{msg}");
    // And the scope it grants, which the bridge logs when the login succeeds.
    peer.set_token(Token::ForgedScope);
    let resp = run.tools_list_through_login(&peer, 3, 1);
    assert_answered(&resp, &run);
    let stderr = run.b.stderr();
    assert!(
        !stderr.lines().any(|l| l.starts_with(FORGED)),
        "a line of the authorization server's making is on stderr:\n{stderr}"
    );
    run.assert_no_secret(&peer, &[]);
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
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    let msg = error_message(&resp);
    assert!(msg.contains(expect), "{msg}");
    assert!(peer.seen_at("/token").is_empty(), "the code was redeemed");
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_malformed_token_answer_is_one_true_line_and_the_bridge_answers_the_next_request() {
    let peer = Peer::plain();
    peer.set_token(Token::Malformed);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    let msg = error_message(&resp);
    assert!(msg.contains("token endpoint"), "{msg}");
    assert!(msg.contains("not valid JSON"), "{msg}");
    // The authorization server mends its ways: the next request logs in again and is answered.
    peer.set_token(Token::Good);
    let resp = run.tools_list_through_login(&peer, 2, 1);
    assert_answered(&resp, &run);
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn stdin_eof_while_a_login_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "30"]);
    run.send_tools_list(1);
    wait_for_url(|| run.b.stderr(), 0, support::bridge::WAIT);
    run.assert_no_secret(&peer, &[]);
    run.assert_ends_promptly(End::Eof);
}

#[cfg(unix)]
#[test]
fn sigterm_while_a_login_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "30"]);
    run.send_tools_list(1);
    wait_for_url(|| run.b.stderr(), 0, support::bridge::WAIT);
    run.assert_no_secret(&peer, &[]);
    run.assert_ends_promptly(End::Sigterm);
}

#[test]
fn stdin_eof_while_a_token_request_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    peer.set_token(Token::Silent);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "30"]);
    run.send_tools_list(1);
    run.finish_login(&peer, 0);
    wait_until("the token request arrives", || {
        !peer.seen_at("/token").is_empty()
    });
    run.assert_no_secret(&peer, &[]);
    run.assert_ends_promptly(End::Eof);
}

#[cfg(unix)]
#[test]
fn sigterm_while_a_token_request_is_pending_ends_the_bridge_promptly() {
    let peer = Peer::plain();
    peer.set_token(Token::Silent);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "30"]);
    run.send_tools_list(1);
    run.finish_login(&peer, 0);
    wait_until("the token request arrives", || {
        !peer.seen_at("/token").is_empty()
    });
    run.assert_no_secret(&peer, &[]);
    run.assert_ends_promptly(End::Sigterm);
}

#[test]
fn requests_that_meet_the_401_during_a_login_share_it() {
    let peer = Peer::plain();
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    run.send_tools_list(1);
    wait_for_url(|| run.b.stderr(), 0, support::bridge::WAIT);
    run.send_tools_list(2);
    wait_until("the second request meets the 401", || {
        peer.seen_at("/mcp").len() >= 2
    });
    run.finish_login(&peer, 0);
    for id in [1, 2] {
        let resp = run.response(id, support::bridge::WAIT);
        let resp = resp.unwrap_or_else(|| panic!("no answer to {id}:\n{}", run.b.stderr()));
        assert_answered(&resp, &run);
    }
    assert_eq!(peer.seen_at("/authorize").len(), 1, "one login for both");
    assert_eq!(peer.seen_at("/token").len(), 1, "one code redeemed");
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_refused_login_is_one_line_in_the_request_and_on_stderr() {
    let peer = Peer::plain();
    peer.set_redirect(Redirect::Denied);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    let msg = error_message(&resp);
    assert!(msg.contains("access_denied"), "{msg}");
    assert!(msg.contains("the user said no"), "{msg}");
    assert!(peer.seen_at("/token").is_empty(), "nothing to redeem");
    let stderr = run.b.stderr();
    assert!(
        !stderr.lines().any(|l| l.starts_with(FORGED)),
        "a line of the authorization server's making is on stderr:\n{stderr}"
    );
    run.assert_no_secret(&peer, &[]);
}

/// The 401 the bridge passes on with OAuth off; asserts that only the MCP endpoint was asked.
fn refused_without_oauth(peer: &Peer, args: &[&str], env: &[(&str, &str)]) -> (String, Run) {
    let mut all = vec![peer.mcp_url(), "--allow-http".to_string()];
    all.extend(
        ["--transport", "http-only"]
            .iter()
            .chain(args)
            .map(|s| s.to_string()),
    );
    let mut run = Run::spawn(&all, env);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    let paths: Vec<String> = peer.seen().iter().map(|s| s.path().to_string()).collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p == "/mcp"),
        "OAuth is off, yet the bridge asked {paths:?}"
    );
    assert!(
        !run.b.stderr().contains("visit:"),
        "no login with OAuth off"
    );
    (msg, run)
}

#[test]
fn oauth_off_passes_the_401_on_saying_no_token_was_sent_and_discovers_nothing() {
    let peer = Peer::plain();
    let (msg, mut run) = refused_without_oauth(&peer, &["--oauth", "off"], &[]);
    assert!(msg.contains("OAuth is off"), "{msg}");
    assert!(!msg.contains("refused"), "no token was sent: {msg}");
    assert!(peer
        .seen_at("/mcp")
        .iter()
        .all(|s| s.header("authorization").is_none()));
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn oauth_off_by_environment_variable_likewise() {
    let peer = Peer::plain();
    let (msg, mut run) = refused_without_oauth(&peer, &[], &[("MCP_REMOTE_OAUTH", "off")]);
    assert!(msg.contains("OAuth is off"), "{msg}");
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_user_authorization_header_turns_oauth_off_and_the_401_names_that_header() {
    let peer = Peer::plain();
    let user_token = "users-own-token-e1f2";
    let header = format!("Authorization: Bearer {user_token}");
    let (msg, mut run) = refused_without_oauth(&peer, &["--header", &header], &[]);
    assert!(
        msg.contains("refused the Authorization header sent with --header"),
        "{msg}"
    );
    let sent: Vec<Option<String>> = peer
        .seen_at("/mcp")
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    let expected = format!("Bearer {user_token}");
    assert!(
        sent.iter().all(|h| h.as_deref() == Some(expected.as_str())),
        "only the user's token is sent: {sent:?}"
    );
    run.assert_no_secret(&peer, &[user_token]);
}

#[test]
fn a_full_login_and_a_refresh_with_debug_never_show_a_secret() {
    let peer = Peer::plain();
    // An access token of 2 s is renewed at half its life: the request after a pause refreshes
    // it, so that the refresh grant's secrets are in the run too.
    peer.set_expires_in(2);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    assert_answered(&resp, &run);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (resp, _) = run.tools_list(2);
    assert_answered(&resp, &run);
    let refreshes = peer
        .seen_at("/token")
        .iter()
        .filter(|s| s.param("grant_type").as_deref() == Some("refresh_token"))
        .count();
    assert!(refreshes >= 1, "the refresh grant was used");
    assert!(
        run.b.stderr().contains("OAuth:"),
        "--debug logged the OAuth calls"
    );
    assert!(
        peer.secrets().len() >= 6,
        "code, verifier, client secret, 2 access, 2 refresh"
    );
    run.b.close_stdin();
    assert!(run.b.wait_exit(support::bridge::WAIT).is_some());
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_token_is_renewed_before_it_expires_without_a_request_waiting_for_it() {
    let peer = Peer::plain();
    // A 2 s token is due for renewal at half its life; no request is sent after the first one.
    peer.set_expires_in(2);
    let mut run = Run::plain(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    assert_answered(&resp, &run);
    let refreshed = |peer: &Peer| {
        peer.seen_at("/token")
            .iter()
            .filter(|s| s.param("grant_type").as_deref() == Some("refresh_token"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while refreshed(&peer) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        refreshed(&peer) >= 1,
        "the token was not renewed in the background; stderr:\n{}",
        run.b.stderr()
    );
    // The next request finds a fresh token: no refusal, no second login.
    let (resp, _) = run.tools_list(2);
    assert_answered(&resp, &run);
    run.b.close_stdin();
    assert!(run.b.wait_exit(support::bridge::WAIT).is_some());
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn over_tls_every_authorization_server_call_presents_the_client_certificate() {
    let peer = Peer::tls();
    let mut run = Run::tls(&peer, &["--oauth-login-wait", "15"]);
    let resp = run.tools_list_through_login(&peer, 1, 0);
    assert_answered(&resp, &run);
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/register",
        "/token",
    ] {
        let calls = peer.seen_at(path);
        assert!(!calls.is_empty(), "no call to {path}");
        assert!(
            calls.iter().all(|s| s.client_cert),
            "{path} was called without the client certificate"
        );
    }
    run.assert_no_secret(&peer, &[]);
}

#[test]
fn a_plain_http_token_endpoint_is_refused_for_an_https_server_and_nothing_is_sent() {
    let peer = Peer::tls();
    peer.set_metadata(Metadata::PlainHttpToken);
    let mut run = Run::tls(&peer, &["--oauth-login-wait", "15"]);
    let (resp, _) = run.tools_list(1);
    let msg = error_message(&resp);
    assert!(msg.contains("http://as.invalid/token"), "{msg}");
    assert!(msg.contains("--allow-http"), "{msg}");
    // The metadata failed validation as a whole: even its valid endpoints get nothing.
    assert!(
        peer.seen_at("/register").is_empty(),
        "registration was attempted"
    );
    assert!(!run.b.stderr().contains("visit:"), "no login was offered");
    run.assert_no_secret(&peer, &[]);
}
