//! `--tls-pin` through the real binary: the server is accepted only when its verified chain holds a
//! pinned key, and a refusal names the key the server presented. The expected pins are computed by
//! the openssl CLI (as curl's documentation does), not by the code under test.

// The openssl CLI is a program of this host: not reachable from under wine.
#![cfg(unix)]

mod support;

use std::process::Command;

use serde_json::json;
use support::bridge::Bridge;
use support::fixture;
use support::server::{ServerOptions, TestServer};

/// `sha256//<base64>` of a PEM certificate's SubjectPublicKeyInfo, by the openssl CLI.
fn openssl_pin(cert: &str) -> String {
    let cert = fixture(cert).display().to_string();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A"
        ))
        .output()
        .expect("the openssl CLI runs (CI installs it)");
    assert!(out.status.success(), "openssl failed: {out:?}");
    format!("sha256//{}", String::from_utf8(out.stdout).unwrap().trim())
}

fn echo_through(b: &mut Bridge) -> String {
    b.initialize();
    let resp = b.call(
        json!(1),
        "tools/call",
        json!({"name":"echo","arguments":{"text":"pinned"}}),
    );
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no result: {resp}\nstderr:\n{}", b.stderr()))
        .to_string()
}

#[test]
fn the_server_keys_pin_is_accepted() {
    let srv = TestServer::start(ServerOptions::default());
    let pin = openssl_pin("server.crt");
    let mut b = Bridge::start(&srv.url("/mcp"), &["--tls-pin", &pin]);
    assert_eq!(echo_through(&mut b), "pinned");
}

#[test]
fn a_pin_on_the_root_ca_the_server_does_not_send_is_accepted() {
    let srv = TestServer::start(ServerOptions::default());
    let wrong = openssl_pin("rogue-ca.crt");
    let ca = openssl_pin("ca.crt");
    // Repeatable: one matching pin among others is enough.
    let mut b = Bridge::start(&srv.url("/mcp"), &["--tls-pin", &wrong, "--tls-pin", &ca]);
    assert_eq!(echo_through(&mut b), "pinned");
}

#[test]
fn a_server_matching_no_pin_is_refused_with_the_key_it_presented() {
    let srv = TestServer::start(ServerOptions::default());
    let wrong = openssl_pin("rogue-server.crt");
    let mut b = Bridge::start(&srv.url("/mcp"), &["--tls-pin", &wrong]);
    let resp = b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
    );
    assert_eq!(
        resp["error"]["message"],
        format!(
            "server certificate of 127.0.0.1 matches no --tls-pin: it presents {} (server \
             certificate); if this key is the server's new one, pin it (or its CA's) instead",
            openssl_pin("server.crt")
        ),
        "{resp}"
    );
    assert!(
        srv.requests().is_empty(),
        "nothing may be sent to a server that fails its pin"
    );
}

#[test]
fn a_malformed_pin_is_a_usage_error() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &["--tls-pin", "sha256//tooshort"]);
    let status = b
        .wait_exit(std::time::Duration::from_secs(5))
        .expect("exits at start-up");
    assert_eq!(status.code(), Some(2), "{}", b.stderr());
    assert!(b.stderr().contains("--tls-pin"), "{}", b.stderr());
}
