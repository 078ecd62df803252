//! Certificates and TLS failures met in the field, through the real binary, against real peers:
//! the test server (rustls), Python's `ssl` module (OpenSSL, as uvicorn and most Python servers use
//! it: tests/peers/openssl_peer.py) and `openssl s_server` (for TLS 1.2 renegotiation). Each
//! diagnosis is asserted whole: it is what the user reads, and the README quotes it.

// The OpenSSL peers are programs of this host (python3, openssl): not reachable from under wine.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use serde_json::{json, Value};
use support::bridge::{Bridge, WAIT};
use support::fixture;
use support::server::{Fault, ServerOptions, TestServer, TlsMode};

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

fn initialize(b: &mut Bridge) -> Value {
    b.call(
        json!(0),
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}),
    )
}

/// The bridge with exactly these flags (no default identity).
fn bridge(url: &str, flags: &[&str]) -> Bridge {
    let mut args = vec![url.to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    Bridge::spawn(&args, &[])
}

/// The error message of the initialize, which must fail.
fn initialize_error(b: &mut Bridge) -> String {
    let resp = initialize(b);
    resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {resp}\nstderr: {}", b.stderr()))
        .to_string()
}

/// Library types printed with `{:?}` look like `UnknownCA` or `Other(OtherError(…))`; no
/// diagnosis may hold one. (Acronyms such as `TLS` or `CA` are words.)
fn assert_no_debug_dump(msg: &str) {
    for token in msg.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = token.chars().collect();
        let camel = chars.first().is_some_and(|c| c.is_ascii_uppercase())
            && chars
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
        assert!(!camel, "debug-formatted name {token:?} in: {msg}");
    }
}

/// A client identity (fixture names) and the test CA, as flags.
fn identity(cert: &str, key: &str) -> Vec<String> {
    [
        "--tls-cert",
        &path(cert),
        "--tls-key",
        &path(key),
        "--tls-ca",
        &path("ca.crt"),
    ]
    .map(String::from)
    .to_vec()
}

fn as_strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// tests/peers/openssl_peer.py, listening on 127.0.0.1; killed on drop.
struct OpensslPeer {
    child: Child,
    port: u16,
}

impl OpensslPeer {
    fn start(args: &[&str]) -> OpensslPeer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/openssl_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs tests/peers/openssl_peer.py (CI installs python3)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("peer prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("peer did not start: {line:?}"));
        OpensslPeer { child, port }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for OpensslPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_identity(cert: &str, key: &str) -> Vec<String> {
    vec!["--cert".into(), path(cert), "--key".into(), path(key)]
}

// --- 1. X.509 v1 client certificates ---------------------------------------------------------

#[test]
fn an_x509_v1_client_certificate_is_accepted_and_presented() {
    let mut args = server_identity("server.crt", "server.key");
    args.extend(["--client-ca".into(), path("ca.crt")]);
    let peer = OpensslPeer::start(&as_strs(&args));
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("client-v1.crt", "client-v1.key")),
    );
    let resp = initialize(&mut b);
    assert_eq!(
        resp["result"]["serverInfo"]["name"],
        "openssl-peer",
        "{resp}\nstderr: {}",
        b.stderr()
    );
}

#[test]
fn an_x509_v1_certificate_with_the_wrong_key_is_still_a_key_mismatch() {
    let out = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote"))
        .args(["https://127.0.0.1:9/mcp"])
        .args(identity("client-v1.crt", "client-ec.key"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--tls-key {} does not match the certificate in --tls-cert {}",
            path("client-ec.key"),
            path("client-v1.crt")
        )),
        "{stderr}"
    );
}

// --- 2. a certificate refused after the TLS 1.3 handshake ---------------------------------------

fn tls13_verifying_peer(extra: &[&str]) -> OpensslPeer {
    let mut args = server_identity("server.crt", "server.key");
    args.extend([
        "--client-ca".into(),
        path("ca.crt"),
        "--tls".into(),
        "1.3".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    OpensslPeer::start(&as_strs(&args))
}

#[test]
fn a_certificate_refused_after_the_tls13_handshake_names_the_alert() {
    let peer = tls13_verifying_peer(&[]);
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("rogue-client.crt", "rogue-client.key")),
    );
    let msg = initialize_error(&mut b);
    assert_eq!(
        msg,
        "remote refused the client certificate (TLS alert unknown_ca): it is not signed by a CA the server trusts"
    );
}

#[test]
fn a_missing_certificate_after_the_tls13_handshake_names_the_flags() {
    let peer = tls13_verifying_peer(&[]);
    let mut b = bridge(&peer.url(), &["--tls-ca", &path("ca.crt")]);
    let msg = initialize_error(&mut b);
    assert_eq!(
        msg,
        "remote refused the connection: 127.0.0.1 requires a client certificate; set --tls-cert/--tls-key or --tls-pfx"
    );
}

#[test]
fn a_certificate_refused_without_an_alert_like_uvicorn_is_blamed_on_the_certificate() {
    let peer = tls13_verifying_peer(&["--close-without-alert"]);
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("rogue-client.crt", "rogue-client.key")),
    );
    let msg = initialize_error(&mut b);
    assert_eq!(
        msg,
        format!(
            "connection to 127.0.0.1:{} closed by the server after the TLS handshake: the server \
             probably rejected the client certificate (is it signed by a CA the server trusts, \
             unexpired, with intermediates in --tls-cert?)",
            peer.port
        )
    );
}

#[test]
fn the_test_server_refusing_a_certificate_names_the_alert() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = bridge(
        &srv.url("/mcp"),
        &as_strs(&identity("rogue-client.crt", "rogue-client.key")),
    );
    let msg = initialize_error(&mut b);
    assert!(
        msg.starts_with("remote refused the client certificate (TLS alert "),
        "{msg}"
    );
    assert_no_debug_dump(&msg);
}

// --- 3. failures mid-session are not the certificate ------------------------------------------

#[test]
fn a_connection_dropped_mid_session_is_not_blamed_on_the_certificate() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(&srv.url("/mcp"), &[]);
    b.initialize();
    for id in 1..=3 {
        let resp = b.call(
            json!(id),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "ok"}}),
        );
        assert!(resp.get("result").is_some(), "{resp}");
    }
    srv.inject(Fault::DropConnection);
    let resp = b.call(
        json!(9),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "lost"}}),
    );
    let msg = resp["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        msg,
        format!(
            "connection to 127.0.0.1:{} closed by the server before it answered (it may have \
             stopped, restarted or timed the connection out); the next request opens a new connection",
            srv.port()
        ),
        "{resp}"
    );
}

#[test]
fn a_server_that_closes_during_the_handshake_is_not_called_a_certificate_refusal() {
    // A TLS 1.2 server that verifies during the handshake and closes without an alert.
    let mut args = server_identity("server.crt", "server.key");
    args.extend(
        [
            "--client-ca",
            &path("ca.crt"),
            "--tls",
            "1.2",
            "--close-without-alert",
        ]
        .map(String::from),
    );
    let peer = OpensslPeer::start(&as_strs(&args));
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("rogue-client.crt", "rogue-client.key")),
    );
    // The peer closes with our handshake bytes still unread, so its kernel may send a reset
    // rather than a FIN: both are true, and both are worded for what they are.
    let msg = initialize_error(&mut b).replacen(" reset by the server", " closed by the server", 1);
    assert_eq!(
        msg,
        format!(
            "connection to 127.0.0.1:{0} closed by the server during the TLS handshake, without a \
             TLS alert: check that 127.0.0.1:{0} is an HTTPS port, and that the server accepts the \
             client certificate",
            peer.port
        )
    );
}

// --- 4. server certificates and servers that are wrong ------------------------------------------

fn server_with(cert: &'static str, key: &'static str) -> TestServer {
    TestServer::start(ServerOptions {
        server_cert: cert,
        server_key: key,
        ..Default::default()
    })
}

fn diagnosis_against(url: &str) -> String {
    let mut b = Bridge::start(url, &[]);
    let msg = initialize_error(&mut b);
    assert_no_debug_dump(&msg);
    msg
}

#[test]
fn a_1024_bit_rsa_server_key_is_called_weak_not_untrusted() {
    // ring cannot even load such a key, so the server is OpenSSL at security level 0.
    let mut args = server_identity("server-rsa1024.crt", "server-rsa1024.key");
    args.extend(["--seclevel".into(), "0".into()]);
    let peer = OpensslPeer::start(&as_strs(&args));
    assert_eq!(
        diagnosis_against(&peer.url()),
        "server certificate of 127.0.0.1 has a 1024-bit RSA key, too weak to be verified (at least \
         2048 bits): the server needs a new key and certificate"
    );
}

#[test]
fn a_sha1_signed_server_certificate_names_sha1() {
    let srv = server_with("server-sha1.crt", "server-sha1.key");
    assert_eq!(
        diagnosis_against(&srv.url("/mcp")),
        "server certificate of 127.0.0.1 is signed with SHA-1 (sha1WithRSAEncryption), which is \
         not accepted as secure: the server needs a certificate signed with SHA-256 or stronger"
    );
}

#[test]
fn a_server_certificate_for_clients_only_names_its_key_usage() {
    let srv = server_with("server-clientauth.crt", "server-clientauth.key");
    assert_eq!(
        diagnosis_against(&srv.url("/mcp")),
        "server certificate of 127.0.0.1 is not meant for TLS servers (its extended key usage \
         allows only: TLS client authentication): the server needs a certificate with serverAuth"
    );
}

#[test]
fn a_ca_certificate_used_as_the_server_certificate_says_so() {
    let srv = server_with("server-ca-leaf.crt", "server-ca-leaf.key");
    assert_eq!(
        diagnosis_against(&srv.url("/mcp")),
        "server certificate of 127.0.0.1 is a CA certificate, not a server certificate: the server \
         must present a server certificate issued by that CA"
    );
}

#[test]
fn an_https_url_on_a_plain_http_port_says_plain_http() {
    let srv = TestServer::start(ServerOptions {
        tls: TlsMode::PlainHttp,
        ..Default::default()
    });
    let url = srv.url("/mcp").replace("http://", "https://");
    assert_eq!(
        diagnosis_against(&url),
        format!(
            "127.0.0.1:{} answered in plain HTTP, not TLS: use the server's HTTPS port, or an \
             http:// URL with --allow-http if it only serves plain HTTP",
            srv.port()
        )
    );
}

/// `openssl s_server` in TLS 1.2, which renegotiates when told `R` on its stdin, as Apache and IIS
/// do to ask for a client certificate on one path.
struct RenegotiatingServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl RenegotiatingServer {
    fn start() -> RenegotiatingServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-tls1_2", "-naccept", "1", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", &path("server.crt"), "-key", &path("server.key")])
            .args(["-CAfile", &path("ca.crt")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the openssl CLI runs (CI installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let server = RenegotiatingServer {
            child,
            stdin,
            lines,
            port,
        };
        server.wait_for_line("ACCEPT");
        server
    }

    fn wait_for_line(&self, prefix: &str) {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(_) => panic!("openssl s_server never printed {prefix:?}"),
            }
        }
    }
}

impl Drop for RenegotiatingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tls12_renegotiation_request_is_named_as_such() {
    let mut server = RenegotiatingServer::start();
    let url = format!("https://127.0.0.1:{}/mcp", server.port);
    let mut b = Bridge::start(&url, &[]);
    b.send(&json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}
    }));
    // s_server prints what it receives: once the POST is there, ask for a client certificate.
    server.wait_for_line("POST /mcp");
    server.stdin.write_all(b"R\n").unwrap();
    server.stdin.flush().unwrap();
    let resp = b.recv_within(WAIT).expect("an answer to initialize");
    assert_eq!(
        resp["error"]["message"],
        format!(
            "127.0.0.1 asked to renegotiate TLS 1.2 after the handshake (how Apache and IIS ask \
         for a client certificate on some paths only), which this bridge cannot answer: {LATE_FIX}"
        ),
        "{resp}"
    );
}

/// The server-side fix both late certificate requests share (enabling TLS 1.3 would not help).
const LATE_FIX: &str = "have the server require the client certificate for the whole virtual \
     host (Apache: SSLVerifyClient require at the <VirtualHost> level, not inside <Location>; IIS: \
     for the whole site), so that it is asked for during the handshake";

#[test]
fn a_tls13_post_handshake_certificate_request_is_named_with_the_server_side_fix() {
    // Apache's SSLVerifyClient require inside a <Location>: no certificate asked for in the
    // handshake, then post-handshake authentication, which rustls does not offer; Apache's 403.
    let peer = tls13_verifying_peer(&["--post-handshake-auth"]);
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("client-rsa.crt", "client-rsa.key")),
    );
    let msg = initialize_error(&mut b);
    let expected = format!(
        "127.0.0.1 asked for the client certificate after the TLS 1.3 handshake (post-handshake \
         authentication: Apache's SSLVerifyClient require inside a <Location> or <Directory>), \
         which this bridge cannot answer: {LATE_FIX}"
    );
    assert_eq!(msg, expected);
    // Said on stderr too (the agent may hide the JSON-RPC error), without --debug.
    assert!(
        eventually_in_stderr(&b, &expected),
        "stderr:\n{}",
        b.stderr()
    );
}

fn eventually_in_stderr(b: &Bridge, text: &str) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if b.stderr().contains(text) {
            return true;
        }
        thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[test]
fn a_handshake_failure_in_answer_to_the_hello_is_not_blamed_on_the_certificate() {
    // A server limited to CBC suites with RSA key exchange: rustls offers none of them, and the
    // server refuses the ClientHello before it could ask for a certificate.
    let mut args = server_identity("server.crt", "server.key");
    args.extend(["--tls", "1.2", "--ciphers", "AES128-SHA:AES256-SHA"].map(String::from));
    let peer = OpensslPeer::start(&as_strs(&args));
    let mut b = bridge(
        &peer.url(),
        &as_strs(&identity("client-rsa.crt", "client-rsa.key")),
    );
    let msg = initialize_error(&mut b);
    assert_eq!(
        msg,
        "TLS handshake with 127.0.0.1 failed (TLS alert handshake_failure in answer to the \
         client's hello, before any certificate was asked for): the server accepts none of this \
         client's cipher suites or TLS versions (TLS 1.3, or TLS 1.2 with ECDHE key exchange and \
         AES-GCM or ChaCha20-Poly1305; CBC-only or RSA key exchange servers are refused): the \
         server must enable one of them"
    );
}
