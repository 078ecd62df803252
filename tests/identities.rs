//! Identity selectors (issue 21) against a real PKCS#11 token (SoftHSM2 in a temporary
//! directory) holding several identities from different CAs, behind test servers that trust (and
//! so name in their CertificateRequest) different CAs: `auto` and every selector form, the
//! automatic choice, the error when nothing fits, expired identities never chosen,
//! `--list-identities`, the usage errors, and rotation and token removal under a selector.

// SoftHSM2 and its tools are this Linux host's: not under wine, and a static musl build cannot load modules.
#![cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::fixture;
use support::proxy::connect_proxy;
use support::server::{ServerOptions, TestServer, TlsMode};
use support::softhsm::{SoftHsm, PIN};

const CLIENT: &str = env!("CARGO_BIN_EXE_mcp-secure-remote-client");

const RSA: &str = "CN=mcp-test-client-rsa";
const ROGUE: &str = "CN=mcp-test-rogue-client";
const CHAIN: &str = "CN=mcp-test-client-chain";
const EXPIRED: &str = "CN=mcp-test-client-expired";

/// The token of the Done-when: client-rsa (by the test CA), rogue-client (by the rogue
/// CA), client-chain (by the intermediate, which sits on the token as a certificate without a
/// key) and client-expired (by the test CA, expired in 2021).
fn four_identities(name: &str) -> SoftHsm {
    let hsm = SoftHsm::empty(name);
    hsm.import("client-rsa", "01", "client-rsa.key", "client-rsa.crt");
    hsm.import("rogue-client", "02", "rogue-client.key", "rogue-client.crt");
    hsm.import("client-chain", "03", "client-chain.key", "client-chain.crt");
    hsm.import_cert(&fixture("intermediate-ca.crt"), "intermediate-ca", "13");
    hsm.import(
        "client-expired",
        "04",
        "client-expired.key",
        "client-expired.crt",
    );
    hsm
}

/// A server that requires a client certificate from (and names) `client_ca` alone.
fn server_trusting(client_ca: &'static str) -> TestServer {
    TestServer::start(ServerOptions {
        client_ca,
        ..ServerOptions::default()
    })
}

/// The module and the PIN; the selector comes from each test.
fn token_flags(hsm: &SoftHsm) -> Vec<String> {
    vec![
        "--tls-pkcs11-module".into(),
        hsm.module.display().to_string(),
        "--tls-passphrase".into(),
        PIN.into(),
        "--tls-ca".into(),
        fixture("ca.crt").display().to_string(),
    ]
}

/// The test client with the token visible and nothing from the caller's MCP_REMOTE_* variables.
fn client(hsm: &SoftHsm, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(CLIENT);
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_REMOTE_") || name.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(hsm.env());
    cmd.envs(env.iter().copied());
    cmd.output().expect("run mcp-secure-remote-client")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn args(hsm: &SoftHsm, more: &[&str]) -> Vec<String> {
    let mut all = token_flags(hsm);
    all.extend(more.iter().map(|s| s.to_string()));
    all
}

/// Runs the test client with `selector` against `srv` and returns the subject the server saw
/// and the selector the report says was chosen (None when one identity was loaded up front).
fn session(hsm: &SoftHsm, srv: &TestServer, selector: &str) -> (String, Option<String>) {
    let before = srv.requests().len();
    let out = client(
        hsm,
        &args(hsm, &[&srv.url("/mcp"), "--tls-cert", selector, "--json"]),
        &[],
    );
    assert!(out.status.success(), "{selector}: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cns: Vec<String> = srv
        .requests_from(before)
        .iter()
        .filter_map(|r| r.client_cert_cn.clone())
        .collect();
    assert!(!cns.is_empty(), "{selector}: no request reached the server");
    assert!(cns.windows(2).all(|w| w[0] == w[1]), "{cns:?}");
    let chosen = report["tls"]["client_chosen"].as_str().map(str::to_string);
    (cns[0].clone(), chosen)
}

#[test]
fn auto_presents_the_identity_whose_ca_each_server_asks_for() {
    let hsm = four_identities("auto");
    let rogue = server_trusting("rogue-ca.crt");
    let (cn, chosen) = session(&hsm, &rogue, "auto");
    assert_eq!(cn, "mcp-test-rogue-client");
    assert_eq!(
        chosen.as_deref(),
        Some("pkcs11:token=mcp;object=rogue-client")
    );

    let intermediate = server_trusting("intermediate-ca.crt");
    let (cn, _) = session(&hsm, &intermediate, "auto");
    assert_eq!(cn, "mcp-test-client-chain");

    // The test CA: client-rsa directly, client-chain through the intermediate on the token
    // (the server verifies that chain); never the expired one from the same CA.
    let ca = server_trusting("ca.crt");
    let (cn, chosen) = session(&hsm, &ca, "auto");
    assert!(
        cn == "mcp-test-client-rsa" || cn == "mcp-test-client-chain",
        "{cn}"
    );
    assert!(chosen.is_some_and(|s| !s.contains("expired")));
}

#[test]
fn every_selector_form_picks_what_it_names() {
    let hsm = four_identities("forms");
    let ca = server_trusting("ca.crt");
    let rogue = server_trusting("rogue-ca.crt");
    let intermediate = server_trusting("intermediate-ca.crt");

    // One identity named: loaded up front, presented as a file identity would be.
    let (cn, chosen) = session(&hsm, &ca, "pkcs11:token=mcp;object=client-rsa");
    assert_eq!((cn.as_str(), chosen), ("mcp-test-client-rsa", None));
    let (cn, _) = session(&hsm, &intermediate, "pkcs11:token=mcp;id=%03");
    assert_eq!(cn, "mcp-test-client-chain");
    // The whole token: the server's CA names choose.
    let (cn, chosen) = session(&hsm, &rogue, "pkcs11:token=mcp");
    assert_eq!(cn, "mcp-test-rogue-client");
    assert!(chosen.is_some());
    // Every token of the module.
    let (cn, _) = session(&hsm, &rogue, "pkcs11:");
    assert_eq!(cn, "mcp-test-rogue-client");

    // From the variable, with the module from its variable too.
    let before = rogue.requests().len();
    let out = client(
        &hsm,
        &[
            rogue.url("/mcp"),
            "--tls-passphrase".into(),
            PIN.into(),
            "--tls-ca".into(),
            fixture("ca.crt").display().to_string(),
        ],
        &[
            ("MCP_REMOTE_TLS_CERT", "auto"),
            (
                "MCP_REMOTE_TLS_PKCS11_MODULE",
                &hsm.module.display().to_string(),
            ),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = rogue.requests_from(before);
    assert!(seen
        .iter()
        .all(|r| r.client_cert_cn.as_deref() == Some("mcp-test-rogue-client")));

    // The text report says which identity the server's names chose, with its selector.
    let out = client(
        &hsm,
        &args(&hsm, &[&rogue.url("/mcp"), "--tls-cert", "auto"]),
        &[],
    );
    let text = stdout(&out);
    assert!(
        text.contains(
            "from the server's CA names: --tls-cert 'pkcs11:token=mcp;object=rogue-client'"
        ),
        "{text}"
    );
    assert!(text.contains(ROGUE), "{text}");
}

#[test]
fn when_no_identity_fits_the_server_one_error_lists_them_all() {
    let hsm = four_identities("nomatch");
    // A server that trusts (and names) a CA none of the identities comes from.
    let srv = server_trusting("server.crt");
    let out = client(
        &hsm,
        &args(&hsm, &[&srv.url("/mcp"), "--tls-cert", "auto"]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    for part in [
        "none of the 3 identities is one the server accepts",
        "it asks for a certificate issued by CN=localhost",
        RSA,
        ROGUE,
        CHAIN,
        "--tls-cert 'pkcs11:token=mcp;object=rogue-client'",
        "pick one with --tls-cert",
    ] {
        assert!(line.contains(part), "wanted '{part}' in: {line}");
    }
    // The expired one is not even a candidate at start-up.
    assert!(!line.contains(EXPIRED), "{line}");
    assert!(srv.requests().is_empty(), "a request was sent");

    // The bridge answers each request with that error (and keeps the line on stderr).
    let mut flags = args(&hsm, &["--tls-cert", "auto"]);
    flags.insert(0, srv.url("/mcp"));
    let env: Vec<(&str, String)> = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut b = Bridge::spawn(&flags, &env);
    let resp = b.call(
        json!(1),
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let message = resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"));
    assert!(message.contains("none of the 3 identities"), "{message}");
}

/// TLS 1.2 asks for the certificate inside the handshake (1.3 after the client's side of it): the
/// choice and its refusal are the same there.
#[test]
fn the_choice_and_its_refusal_are_the_same_over_tls_1_2() {
    let hsm = four_identities("tls12");
    let tls12 = |client_ca| {
        TestServer::start(ServerOptions {
            tls: TlsMode::Tls12Only,
            client_ca,
            ..ServerOptions::default()
        })
    };
    let rogue = tls12("rogue-ca.crt");
    let (cn, chosen) = session(&hsm, &rogue, "auto");
    assert_eq!(cn, "mcp-test-rogue-client");
    assert!(chosen.is_some());
    // The listing reads the request even though the server then ends the handshake.
    let out = client(
        &hsm,
        &args(&hsm, &["--list-identities", &rogue.url("/mcp")]),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let accepted: Vec<&str> = text
        .split("\n\n")
        .filter(|b| b.contains("would accept it"))
        .collect();
    assert!(
        accepted.len() == 1 && accepted[0].starts_with(ROGUE),
        "{text}"
    );

    let none = tls12("server.crt");
    let out = client(
        &hsm,
        &args(&hsm, &[&none.url("/mcp"), "--tls-cert", "auto"]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("none of the 3 identities is one the server accepts"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_expired_identity_is_never_chosen_and_the_only_one_says_so() {
    let hsm = SoftHsm::empty("expired");
    hsm.import(
        "client-expired",
        "04",
        "client-expired.key",
        "client-expired.crt",
    );
    let ca = server_trusting("ca.crt");
    let out = client(
        &hsm,
        &args(&hsm, &[&ca.url("/mcp"), "--tls-cert", "auto"]),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "is expired or not yet valid, and an expired identity is never chosen: renew it"
        ),
        "{err}"
    );
    assert!(err.contains(EXPIRED), "{err}");
    assert_eq!(ca.handshakes(), 0, "nothing was sent");

    // Beside a valid one from the same CA, the valid one is presented.
    hsm.import("client-rsa", "01", "client-rsa.key", "client-rsa.crt");
    let (cn, _) = session(&hsm, &ca, "auto");
    assert_eq!(cn, "mcp-test-client-rsa");
}

/// The listing against the server trusting the rogue CA marks the rogue identity alone.
fn assert_only_rogue_accepted(text: &str) {
    let accepted: Vec<&str> = text
        .split("\n\n")
        .filter(|b| b.contains("would accept it"))
        .collect();
    assert_eq!(accepted.len(), 1, "{text}");
    assert!(accepted[0].starts_with(ROGUE), "{text}");
}

#[test]
fn list_identities_shows_each_with_its_selector_and_what_a_server_accepts() {
    let hsm = four_identities("list");
    let out = client(&hsm, &args(&hsm, &["--list-identities"]), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("4 identities in the PKCS#11 tokens of "),
        "{text}"
    );
    for (subject, selector) in [
        (RSA, "--tls-cert 'pkcs11:token=mcp;object=client-rsa'"),
        (ROGUE, "--tls-cert 'pkcs11:token=mcp;object=rogue-client'"),
        (CHAIN, "--tls-cert 'pkcs11:token=mcp;object=client-chain'"),
        (
            EXPIRED,
            "--tls-cert 'pkcs11:token=mcp;object=client-expired'",
        ),
    ] {
        let block = text
            .split("\n\n")
            .find(|b| b.starts_with(subject))
            .unwrap_or_else(|| panic!("no block for {subject}: {text}"));
        assert!(block.contains(selector), "{block}");
        assert!(block.contains("  issuer    CN="), "{block}");
        assert!(block.contains("  expires   "), "{block}");
        assert!(
            block.contains("  key       RSA 2048, PKCS#11 token 'mcp', object '")
                || block.contains("  key       ECDSA"),
            "{block}"
        );
    }
    assert!(text.contains("(EXPIRED)"), "{text}");

    // With a server: its CA names, and which identities it would take; none is presented.
    let rogue = server_trusting("rogue-ca.crt");
    let out = client(
        &hsm,
        &args(&hsm, &["--list-identities", &rogue.url("/mcp")]),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("asks for a client certificate issued by CN=mcp-secure-remote rogue CA"),
        "{text}"
    );
    assert_only_rogue_accepted(&text);
    assert!(
        rogue.requests().is_empty(),
        "--list-identities sent a request"
    );

    // A narrower selector lists what it selects.
    let out = client(
        &hsm,
        &args(
            &hsm,
            &[
                "--list-identities",
                "--tls-cert",
                "pkcs11:token=mcp;object=client-rsa",
            ],
        ),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("1 identity in"), "{text}");
    assert!(text.contains("(3 more in the source"), "{text}");
    assert!(text.contains(RSA) && !text.contains(ROGUE), "{text}");
}

/// Where the server is reachable only through a proxy (an enterprise network), the listing's
/// handshake goes through the proxy the bridge would use: `--proxy`, else HTTPS_PROXY unless
/// NO_PROXY lists the host.
#[test]
fn list_identities_with_a_url_goes_through_the_proxy_the_bridge_would_use() {
    let hsm = four_identities("list-proxy");
    let rogue = server_trusting("rogue-ca.crt");
    let target = rogue.url("/mcp");
    let authority = target
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let accepted_rogue = |out: &Output| {
        assert!(out.status.success(), "{}", stderr(out));
        assert_only_rogue_accepted(&stdout(out));
    };

    let (port, seen) = connect_proxy();
    let proxy = format!("http://127.0.0.1:{port}");
    let out = client(
        &hsm,
        &args(&hsm, &["--list-identities", &target, "--proxy", &proxy]),
        &[],
    );
    accepted_rogue(&out);
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![format!("CONNECT {authority} HTTP/1.1")],
        "--proxy was not used"
    );

    let (port, seen) = connect_proxy();
    let env_proxy = format!("http://127.0.0.1:{port}");
    let out = client(
        &hsm,
        &args(&hsm, &["--list-identities", &target]),
        &[("HTTPS_PROXY", &env_proxy)],
    );
    accepted_rogue(&out);
    assert_eq!(seen.lock().unwrap().len(), 1, "HTTPS_PROXY was not used");

    // NO_PROXY lists the host: straight to the server.
    let out = client(
        &hsm,
        &args(&hsm, &["--list-identities", &target]),
        &[("HTTPS_PROXY", &env_proxy), ("NO_PROXY", "127.0.0.1")],
    );
    accepted_rogue(&out);
    assert_eq!(seen.lock().unwrap().len(), 1, "NO_PROXY was not honoured");
    assert!(
        rogue.requests().is_empty(),
        "--list-identities sent a request"
    );

    // A proxy that refuses: one line naming it and its answer.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refusing_port = refusing.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut conn, _)) = refusing.accept() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = client(
        &hsm,
        &args(
            &hsm,
            &[
                "--list-identities",
                &target,
                "--proxy",
                &format!("http://127.0.0.1:{refusing_port}"),
            ],
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the HTTP proxy 127.0.0.1:{refusing_port} refused to connect to {authority}: it answered 403 Forbidden"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn selector_mistakes_are_usage_errors() {
    let hsm = SoftHsm::empty("usage");
    let url = "https://127.0.0.1:9/mcp";
    for (more, says) in [
        (
            vec![url, "--tls-cert", "windows:user;sha1=8f3a"],
            "the Windows certificate store exists only on Windows; here use a PKCS#11 token",
        ),
        (
            vec![url, "--tls-cert", "keychain:login"],
            "the Keychain exists only on macOS",
        ),
        (
            vec![url, "--tls-cert", "cng:user"],
            "is neither a file nor a form it takes: use a file path, pkcs11:token=…",
        ),
        (
            vec![url, "--tls-cert", "auto", "--tls-key", "k.pem"],
            "--tls-key cannot be given with --tls-cert auto",
        ),
        (
            vec!["--list-identities", "--tls-key", "k.pem"],
            "--list-identities lists what a store or token holds",
        ),
    ] {
        let out = client(&hsm, &args(&hsm, &more), &[]);
        assert_eq!(out.status.code(), Some(2), "{more:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{more:?}: {err}");
    }
    // `auto` on Linux needs the module.
    let out = client(&hsm, &[url.into(), "--tls-cert".into(), "auto".into()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--tls-pkcs11-module"),
        "{}",
        stderr(&out)
    );
}

fn bridge(hsm: &SoftHsm, srv: &TestServer, selector: &str) -> Bridge {
    let mut flags = args(hsm, &["--tls-cert", selector]);
    flags.insert(0, srv.url("/mcp"));
    let env: Vec<(&str, String)> = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Bridge::spawn(&flags, &env)
}

fn echo(b: &mut Bridge, id: u64, text: &str) -> Value {
    b.call(
        json!(id),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": text}}),
    )
}

fn echoed(resp: &Value) -> Option<&str> {
    resp["result"]["content"][0]["text"].as_str()
}

#[test]
fn a_certificate_renewed_on_the_token_is_used_for_new_connections() {
    let hsm = SoftHsm::empty("renewal");
    hsm.import("client-rsa", "01", "client-rsa.key", "client-rsa.crt");
    let srv = server_trusting("ca.crt");
    let port = srv.port();
    let mut b = bridge(&hsm, &srv, "pkcs11:token=mcp;object=client-rsa");
    b.initialize();
    assert_eq!(
        echoed(&echo(&mut b, 1, "old")),
        Some("old"),
        "{}",
        b.stderr()
    );

    // Renewed on the token: same key, a new certificate object from the same CA.
    let renewed = hsm.dir.join("renewed.crt");
    let out = Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(fixture("client-rsa.key"))
        .args([
            "-subj",
            "/CN=mcp-renewed-on-token",
            "-x509",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=clientAuth",
            "-CA",
        ])
        .arg(fixture("ca.crt"))
        .arg("-CAkey")
        .arg(fixture("ca.key"))
        .arg("-out")
        .arg(&renewed)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hsm.pkcs11_tool(&["--delete-object", "--type", "cert", "--id", "01"]);
    hsm.import_cert(&renewed, "client-rsa", "01");

    // Past the rotation check interval, then new connections (a restarted server).
    std::thread::sleep(Duration::from_millis(2200));
    srv.stop();
    let srv = TestServer::start_on(
        port,
        ServerOptions {
            client_ca: "ca.crt",
            ..ServerOptions::default()
        },
    );
    assert_eq!(
        echoed(&echo(&mut b, 2, "new")),
        Some("new"),
        "{}",
        b.stderr()
    );
    let cns: Vec<_> = srv
        .requests()
        .iter()
        .filter_map(|r| r.client_cert_cn.clone())
        .collect();
    assert!(
        !cns.is_empty() && cns.iter().all(|cn| cn == "mcp-renewed-on-token"),
        "{cns:?}\n{}",
        b.stderr()
    );
}

#[test]
fn a_token_pulled_out_under_auto_gives_the_token_diagnosis_and_recovers() {
    let hsm = four_identities("removal");
    let srv = server_trusting("rogue-ca.crt");
    let port = srv.port();
    let mut b = bridge(&hsm, &srv, "auto");
    b.initialize();
    assert_eq!(
        echoed(&echo(&mut b, 1, "before")),
        Some("before"),
        "{}",
        b.stderr()
    );

    hsm.remove_token();
    srv.stop();
    let srv = TestServer::start_on(
        port,
        ServerOptions {
            client_ca: "rogue-ca.crt",
            ..ServerOptions::default()
        },
    );
    std::thread::sleep(Duration::from_millis(2200));
    let resp = echo(&mut b, 2, "while removed");
    let message = resp["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("must fail while the token is out: {resp} {}", b.stderr()));
    assert!(
        message.contains("PKCS#11 token 'mcp' is not present"),
        "{message}\n{}",
        b.stderr()
    );

    hsm.reinsert_token();
    std::thread::sleep(Duration::from_millis(2200));
    let resp = echo(&mut b, 3, "after");
    assert_eq!(echoed(&resp), Some("after"), "{resp}\n{}", b.stderr());
    drop(srv);
}
