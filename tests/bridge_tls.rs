//! TLS through the bridge: the one-line diagnoses a user sees in the initialize error (agents hide
//! stderr), exit code 1 on setup errors, and the TLS options proven against real handshakes.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::fixture;
use support::server::{ServerOptions, TestServer, TlsMode};

fn initialize(b: &mut Bridge) -> Value {
    b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
    )
}

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Start the bridge with explicit TLS flags (not the default identity).
fn bridge(url: &str, flags: &[&str]) -> Bridge {
    let mut args = vec![url.to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    Bridge::spawn(&args, &[])
}

/// The initialize error message, after checking that the bridge then exits 1.
fn fatal_message(mut b: Bridge) -> String {
    let resp = initialize(&mut b);
    assert_eq!(resp["id"], 0);
    let msg = resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {resp}"))
        .to_string();
    let status = b
        .wait_exit(Duration::from_secs(5))
        .expect("exits after a setup error");
    assert_eq!(status.code(), Some(1), "stderr: {}", b.stderr());
    assert!(b.stderr().contains(&msg), "the diagnosis is logged too");
    msg
}

#[test]
fn servername_override_checks_the_certificate_against_that_name() {
    let srv = TestServer::start(ServerOptions {
        server_cert: "server-internal.crt",
        server_key: "server-internal.key",
        ..Default::default()
    });
    // The URL is an IP literal; the certificate only names mcp.internal.test.
    let url = srv.url("/mcp");
    assert!(url.starts_with("https://127.0.0.1:"));
    let mut ok = Bridge::start(&url, &["--tls-servername", "mcp.internal.test"]);
    ok.initialize();

    let msg = fatal_message(Bridge::start(&url, &[]));
    assert!(
        msg.contains("mcp.internal.test") && msg.contains("--tls-servername"),
        "{msg}"
    );
}

#[test]
fn untrusted_server_certificate_is_a_setup_error() {
    let srv = TestServer::start(ServerOptions::default());
    let msg = fatal_message(bridge(
        &srv.url("/mcp"),
        &[
            "--tls-cert",
            &path("client-rsa.crt"),
            "--tls-key",
            &path("client-rsa.key"),
            "--tls-ca",
            &path("rogue-ca.crt"),
        ],
    ));
    assert!(
        msg.contains("not trusted") && msg.contains("--tls-ca"),
        "{msg}"
    );
}

#[test]
fn refused_client_certificate_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge(
        &srv.url("/mcp"),
        &[
            "--tls-cert",
            &path("rogue-client.crt"),
            "--tls-key",
            &path("rogue-client.key"),
            "--tls-ca",
            &path("ca.crt"),
        ],
    );
    let resp = initialize(&mut b);
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(msg.contains("client certificate"), "{msg}");
}

#[test]
fn missing_client_certificate_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge(&srv.url("/mcp"), &["--tls-ca", &path("ca.crt")]);
    let resp = initialize(&mut b);
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(msg.contains("--tls-cert"), "{msg}");
}

#[test]
fn min_version_tls13_refuses_a_tls12_only_server() {
    let srv = TestServer::start(ServerOptions {
        tls: TlsMode::Tls12Only,
        ..Default::default()
    });
    let mut ok = Bridge::start(&srv.url("/mcp"), &[]);
    ok.initialize();
    let msg = fatal_message(Bridge::start(
        &srv.url("/mcp"),
        &["--tls-min-version", "TLSv1.3"],
    ));
    assert!(msg.contains("TLS"), "{msg}");
}

#[test]
fn skip_verify_accepts_an_untrusted_server_and_warns() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge(
        &srv.url("/mcp"),
        &[
            "--tls-cert",
            &path("client-rsa.crt"),
            "--tls-key",
            &path("client-rsa.key"),
            "--tls-ca",
            &path("rogue-ca.crt"),
            "--tls-insecure-skip-verify",
        ],
    );
    b.initialize();
    assert!(
        b.stderr().contains("verification is DISABLED"),
        "{}",
        b.stderr()
    );
}

#[test]
fn connection_refused_is_answered_and_the_bridge_keeps_running() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut b = Bridge::start(&format!("https://127.0.0.1:{port}/mcp"), &[]);
    let resp = initialize(&mut b);
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(msg.contains("refused"), "{msg}");
    assert!(
        b.wait_exit(Duration::from_millis(300)).is_none(),
        "still running"
    );
    // The server comes up: the next initialize works.
    let srv = TestServer::start_on(port, ServerOptions::default());
    b.initialize();
    drop(srv);
}

#[test]
fn pkcs12_identity_works_end_to_end() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::spawn(
        &[
            srv.url("/mcp"),
            "--tls-pfx".into(),
            path("client.p12"),
            "--tls-ca".into(),
            path("ca.crt"),
        ],
        &[("MCP_REMOTE_TLS_PASSPHRASE", "fixture-pass")],
    );
    b.initialize();
    let debug_free = !b.stderr().contains("fixture-pass");
    assert!(debug_free);
}
