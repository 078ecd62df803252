//! Client keys on a PKCS#11 token (SoftHSM2 in a temporary directory): real mTLS sessions through
//! the test client and the bridge against the test server that requires client certificates, with
//! RSA and ECDSA keys, TLS 1.2 and 1.3, 50 concurrent handshakes, every pre-flight error, a token
//! removed while the bridge runs, and certificate rotation beside a token key.

// SoftHSM2 and its tools are this Linux host's: not under wine, and a static musl build cannot load modules.
#![cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::Bridge;
use support::fixture;
use support::server::{ServerOptions, TestServer, TlsMode};
use support::softhsm::{SoftHsm, PIN};

const CLIENT: &str = env!("CARGO_BIN_EXE_mcp-secure-remote-client");

fn ca() -> Vec<String> {
    vec!["--tls-ca".into(), fixture("ca.crt").display().to_string()]
}

/// The test client with the token visible and nothing from the caller's MCP_REMOTE_* variables.
fn client(hsm: &SoftHsm, args: &[String]) -> Output {
    let mut cmd = Command::new(CLIENT);
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_REMOTE_") || name.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(hsm.env());
    cmd.output().expect("run mcp-secure-remote-client")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one-line diagnosis of a client run that must fail with exit code `code`.
fn failure(hsm: &SoftHsm, args: &[String], code: i32) -> String {
    let out = client(hsm, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_else(|| panic!("no error line in: {err}"))
        .to_string();
    assert!(
        !line.contains("Pkcs11(") && !line.contains("RvError"),
        "{line}"
    );
    line
}

fn with(base: Vec<String>, more: &[&str]) -> Vec<String> {
    let mut all = base;
    all.extend(more.iter().map(|s| s.to_string()));
    all
}

fn bridge(hsm: &SoftHsm, url: &str, flags: Vec<String>) -> Bridge {
    let mut args = vec![url.to_string()];
    args.extend(flags);
    args.extend(ca());
    let env: Vec<(&str, String)> = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Bridge::spawn(&args, &env)
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
fn test_client_reports_the_token_key_in_text_and_json() {
    let hsm = SoftHsm::new("report");
    let srv = TestServer::start(ServerOptions::default());
    for (object, algorithm, cn, mechanisms) in [
        (
            "client-rsa",
            "RSA 2048",
            "mcp-test-client-rsa",
            vec![
                "rsa_pss_rsae_sha256 via CKM_RSA_PKCS_PSS over SHA-256",
                "rsa_pkcs1_sha256 via CKM_RSA_PKCS over SHA-256",
            ],
        ),
        (
            "client-ec",
            "ECDSA P-256",
            "mcp-test-client-ec",
            vec!["ecdsa_secp256r1_sha256 via CKM_ECDSA over SHA-256"],
        ),
        (
            "client-ec384",
            "ECDSA P-384",
            "ec384",
            vec!["ecdsa_secp384r1_sha384 via CKM_ECDSA over SHA-384"],
        ),
    ] {
        let args = with(hsm.key_flags(object), &[&srv.url("/mcp")]);
        let args = with(args, &ca().iter().map(String::as_str).collect::<Vec<_>>());
        let out = client(&hsm, &args);
        assert!(out.status.success(), "{object}: {}", stderr(&out));
        let text = stdout(&out);
        let line = format!("PKCS#11 token 'mcp', object '{object}' ({algorithm})");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("key") && l.ends_with(&line)),
            "{text}"
        );

        let out = client(&hsm, &with(args.clone(), &["--json"]));
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = &report["tls"]["client_key"];
        assert_eq!(key["source"], "pkcs11", "{report}");
        assert_eq!(key["location"], "mcp");
        assert_eq!(key["object"], object);
        assert_eq!(key["algorithm"], algorithm);
        assert_eq!(key["description"], line.as_str());
        let offered: Vec<&str> = key["mechanisms"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for mechanism in &mechanisms {
            assert!(offered.contains(mechanism), "{object}: {offered:?}");
        }
        if object != "client-rsa" {
            assert_eq!(offered.len(), 1, "only the curve's own scheme: {offered:?}");
        }
        let presented = report["tls"]["client_certificate"]["subject"]
            .as_str()
            .unwrap();
        assert!(presented.contains(cn), "{presented}");
    }
    // The server saw the token's certificates.
    let cns: Vec<String> = srv
        .requests()
        .iter()
        .filter_map(|r| r.client_cert_cn.clone())
        .collect();
    assert!(cns.iter().any(|cn| cn.contains("client-ec")), "{cns:?}");
}

#[test]
fn bridge_sessions_with_token_keys_over_tls_1_2_and_1_3() {
    let hsm = SoftHsm::new("bridge");
    for (mode, version) in [
        (TlsMode::RequireClientCert, "TLSv1.3"),
        (TlsMode::Tls12Only, "TLSv1.2"),
    ] {
        let srv = TestServer::start(ServerOptions {
            tls: mode,
            ..Default::default()
        });
        for object in ["client-rsa", "client-ec", "client-ec384"] {
            let mut flags = hsm.key_flags(object);
            if version == "TLSv1.3" {
                flags.extend(["--tls-min-version".to_string(), version.to_string()]);
            }
            let mut b = bridge(&hsm, &srv.url("/mcp"), flags);
            b.initialize();
            let resp = echo(&mut b, 1, &format!("{object} over {version}"));
            assert_eq!(
                echoed(&resp),
                Some(format!("{object} over {version}").as_str()),
                "{resp} {}",
                b.stderr()
            );
            b.close_stdin();
            let status = b.wait_exit(Duration::from_secs(10)).expect("exits");
            assert!(status.success(), "{}", b.stderr());
        }
    }
}

#[test]
fn the_certificate_can_be_a_file_or_named_by_its_own_uri_without_a_public_key_object() {
    let hsm = SoftHsm::new("cert-sources");
    // Like many cards: the private key and the certificate, no public-key object.
    hsm.pkcs11_tool(&["--delete-object", "--type", "pubkey", "--id", "02"]);
    let srv = TestServer::start(ServerOptions::default());
    let url = srv.url("/mcp");
    let file = with(
        hsm.key_flags("client-ec"),
        &[
            "--tls-cert",
            &fixture("client-ec.crt").display().to_string(),
            &url,
        ],
    );
    let by_uri = with(
        hsm.key_flags("client-ec"),
        &[
            "--tls-cert",
            "pkcs11:token=mcp;object=client-ec;type=cert",
            &url,
        ],
    );
    for args in [file, by_uri] {
        let out = client(
            &hsm,
            &with(
                args,
                &["--tls-ca", &fixture("ca.crt").display().to_string()],
            ),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("mcp-test-client-ec"));
    }
}

#[test]
fn pin_from_pin_source_file_and_module_from_the_uri() {
    let hsm = SoftHsm::new("pin-source");
    let srv = TestServer::start(ServerOptions::default());
    let pin_file = hsm.dir.join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let uri = format!(
        "pkcs11:token=mcp;object=client-rsa?module-path={}&pin-source={}",
        hsm.module.display(),
        pin_file.display()
    );
    let args = with(ca(), &["--tls-key", &uri, &srv.url("/mcp")]);
    let out = client(&hsm, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    // The module and PIN also come from the environment.
    let mut cmd = Command::new(CLIENT);
    cmd.args(with(
        ca(),
        &[
            "--tls-key",
            "pkcs11:token=mcp;object=client-rsa",
            &srv.url("/mcp"),
        ],
    ))
    .envs(hsm.env())
    .env("MCP_REMOTE_TLS_PKCS11_MODULE", &hsm.module)
    .env("MCP_REMOTE_TLS_PASSPHRASE", PIN);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The one token this test process itself opens (the module is started once per process and
/// SoftHSM reads `SOFTHSM2_CONF` when it starts). It also holds `no-sign`: a key whose CKA_SIGN
/// was set false through the module (no command-line tool writes that attribute).
fn in_process_token() -> &'static SoftHsm {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::object::Attribute;
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    static TOKEN: std::sync::OnceLock<SoftHsm> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let hsm = SoftHsm::new("in-process");
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        hsm.import_key(&fixture("client-chain.key"), "no-sign", "07");
        hsm.import_cert(&fixture("client-chain.crt"), "no-sign", "07");
        let ctx = Pkcs11::new(&hsm.module).unwrap();
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = ctx.get_slots_with_initialized_token().unwrap()[0];
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::from(PIN.to_string())))
            .unwrap();
        let keys = session
            .find_objects(&[
                Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
                Attribute::Label(b"no-sign".to_vec()),
            ])
            .unwrap();
        session
            .update_attributes(keys[0], &[Attribute::Sign(false)])
            .unwrap();
        session.close().unwrap();
        ctx.finalize().unwrap();
        hsm
    })
}

#[test]
fn a_key_that_cannot_sign_is_refused_before_any_connection() {
    let hsm = in_process_token();
    let url = "https://127.0.0.1:9/mcp";
    let line = failure(hsm, &with(hsm.key_flags("no-sign"), &[url]), 1);
    assert!(
        line.contains("the key 'no-sign' on PKCS#11 token 'mcp' cannot sign for TLS")
            && line.contains("CKA_SIGN"),
        "{line}"
    );
}

#[test]
fn fifty_concurrent_handshakes_sign_on_the_token() {
    use mcp_secure_remote::config::{
        ClientIdentity, Pkcs11Identity, Secret, TlsOptions, TokenCertSource,
    };
    use mcp_secure_remote::tls::{client_config, Pkcs11Uri};
    use std::io::{Read, Write};
    use std::sync::{Arc, Barrier};

    let hsm = in_process_token();
    let srv = TestServer::start(ServerOptions::default());
    for object in ["client-rsa", "client-ec"] {
        let opts = TlsOptions {
            identity: Some(ClientIdentity::Pkcs11(Box::new(Pkcs11Identity {
                key: Pkcs11Uri::parse(&hsm.uri(object)).unwrap(),
                cert: TokenCertSource::BesideKey,
                module: Some(hsm.module.clone()),
                pin: Some(Secret::new(PIN.to_string())),
            }))),
            ca: Some(fixture("ca.crt")),
            ..TlsOptions::default()
        };
        let tls = client_config(&opts).unwrap();
        let before = srv.handshakes();
        const N: usize = 50;
        let barrier = Arc::new(Barrier::new(N));
        let threads: Vec<_> = (0..N)
            .map(|i| {
                let config = Arc::clone(&tls.config);
                let barrier = Arc::clone(&barrier);
                let port = srv.port();
                std::thread::spawn(move || -> Result<String, String> {
                    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
                    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
                    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    barrier.wait();
                    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                    let body = format!(
                        r#"{{"jsonrpc":"2.0","id":{i},"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
                    );
                    let request = format!(
                        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tls.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
                    let mut head = [0u8; 12];
                    tls.read_exact(&mut head).map_err(|e| e.to_string())?;
                    Ok(String::from_utf8_lossy(&head).into_owned())
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let ok = results
            .iter()
            .filter(|r| matches!(r, Ok(h) if h == "HTTP/1.1 200"))
            .count();
        assert_eq!(ok, N, "{object}: {results:?}");
        assert!(
            srv.handshakes() - before >= N,
            "{object}: every request had its own handshake"
        );
    }
}

#[test]
fn every_pre_flight_failure_is_one_clear_line() {
    let hsm = SoftHsm::new("errors");
    // An expired certificate beside its key.
    hsm.import_key(&fixture("client-expired.key"), "expired", "08");
    hsm.import_cert(&fixture("client-expired.crt"), "expired", "08");
    // A key whose id-mate certificate is missing.
    hsm.import_key(&fixture("client-mismatch.key"), "lonely", "09");

    let url = "https://127.0.0.1:9/mcp".to_string();
    let module = hsm.module.display().to_string();
    let key = |uri: &str| -> Vec<String> {
        with(
            ca(),
            &[
                "--tls-key",
                uri,
                "--tls-pkcs11-module",
                &module,
                "--tls-passphrase",
                PIN,
                &url,
            ],
        )
    };
    let not_a_module = fixture("ca.crt").display().to_string();
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let mut cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            with(ca(), &["--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", "/nonexistent/libnope.so", &url]),
            vec!["cannot read the PKCS#11 module /nonexistent/libnope.so", "No such file"],
        ),
        (
            with(ca(), &["--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", &not_a_module, &url]),
            vec!["is not a PKCS#11 module", "ca.crt"],
        ),
        (
            with(ca(), &["--tls-key", "pkcs11:token=mcp;object=client-rsa", &url]),
            vec!["no PKCS#11 module for pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module"],
        ),
        (key("pkcs11:token=nope;object=client-rsa"), vec!["no PKCS#11 token matches pkcs11:token=nope", "tokens present: 'mcp'"]),
        (key("pkcs11:token=mcp;object=nope"), vec!["no private key matching label 'nope' on PKCS#11 token 'mcp'", "pkcs11-tool"]),
        (key("pkcs11:token=mcp"), vec!["matches 5 private keys on PKCS#11 token 'mcp'", "object= or id="]),
        (key("pkcs11:token=mcp;object=lonely"), vec!["no certificate matching id 09 on PKCS#11 token 'mcp'"]),
        (
            with(ca(), &["--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", &module, "--tls-passphrase", "0000", &url]),
            vec!["wrong PIN for PKCS#11 token 'mcp'", "--tls-passphrase"],
        ),
        (
            with(ca(), &["--tls-key", "pkcs11:token=mcp;object=client-rsa", "--tls-pkcs11-module", &module, &url]),
            vec!["PKCS#11 token 'mcp' needs its user PIN", "MCP_REMOTE_TLS_PASSPHRASE"],
        ),
        (
            with(key("pkcs11:token=mcp;object=client-rsa"), &["--tls-cert", &fixture("client-ec.crt").display().to_string()]),
            vec!["the key 'client-rsa' on PKCS#11 token 'mcp' does not match the certificate in --tls-cert", "client-ec.crt"],
        ),
        (
            with(key("pkcs11:token=mcp;object=client-rsa"), &["--tls-cert", &fixture("client-chain.crt").display().to_string()]),
            vec!["does not match the certificate in --tls-cert", "client-chain.crt"],
        ),
        (key("pkcs11:token=mcp;object=expired"), vec!["the client certificate in --tls-key pkcs11:token=mcp;object=expired", "expired on"]),
    ];
    if let Some(libc) = libc {
        cases.push((
            with(
                ca(),
                &[
                    "--tls-key",
                    "pkcs11:token=mcp;object=client-rsa",
                    "--tls-pkcs11-module",
                    libc,
                    &url,
                ],
            ),
            vec!["is not a PKCS#11 module (it exports no C_GetFunctionList)"],
        ));
    }
    for (args, says) in cases {
        let line = failure(&hsm, &args, 1);
        for part in says {
            assert!(line.contains(part), "{args:?}\nwanted '{part}' in: {line}");
        }
        assert!(
            !line.contains(PIN) || !args.contains(&"0000".to_string()),
            "{line}"
        );
    }

    // Usage mistakes in the URI are exit 2.
    for (uri, says) in [
        ("pkcs11:token=mcp;lable=client", "unknown attribute 'lable'"),
        (
            "pkcs11:token=mcp;object=client-rsa;type=cert",
            "type=private",
        ),
    ] {
        let line = failure(&hsm, &with(ca(), &["--tls-key", uri, &url]), 2);
        assert!(line.contains(says), "{line}");
    }

    // Last: a locked PIN (the token stays locked).
    hsm.lock_user_pin();
    let line = failure(&hsm, &key("pkcs11:token=mcp;object=client-rsa"), 1);
    assert!(
        line.contains("the user PIN of PKCS#11 token 'mcp' is locked"),
        "{line}"
    );
}

#[test]
fn a_removed_token_fails_each_request_and_recovers_when_it_is_back() {
    let hsm = SoftHsm::new("removal");
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut b = bridge(&hsm, &srv.url("/mcp"), hsm.key_flags("client-rsa"));
    b.initialize();
    assert_eq!(echoed(&echo(&mut b, 1, "before")), Some("before"));

    hsm.remove_token();
    // New connections: restart the server, so that no kept-alive connection hides the token.
    srv.stop();
    let srv = TestServer::start_on(port, ServerOptions::default());
    for id in 2..5 {
        let resp = echo(&mut b, id, "while removed");
        let message = resp["error"]["message"].as_str().unwrap_or_else(|| {
            panic!(
                "request {id} must fail while the token is out: {resp} {}",
                b.stderr()
            )
        });
        assert!(
            message.contains("PKCS#11 token 'mcp' is not present"),
            "{message}\n{}",
            b.stderr()
        );
    }

    hsm.reinsert_token();
    std::thread::sleep(mcp_secure_remote::tls::RETRY_INTERVAL + Duration::from_millis(200));
    let resp = echo(&mut b, 10, "after");
    assert_eq!(echoed(&resp), Some("after"), "{resp}\n{}", b.stderr());
    assert!(b.stderr().contains("is back"), "{}", b.stderr());
    drop(srv);
}

#[test]
fn a_rotated_certificate_file_beside_a_token_key_is_used_for_new_connections() {
    let hsm = SoftHsm::new("rotation");
    let dir = hsm.dir.join("rotation");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("client.crt");
    std::fs::copy(fixture("client-rsa.crt"), &cert).unwrap();
    let srv = TestServer::start(ServerOptions::default());
    let port = srv.port();
    let mut flags = hsm.key_flags("client-rsa");
    flags.extend(["--tls-cert".to_string(), cert.display().to_string()]);
    let mut b = bridge(&hsm, &srv.url("/mcp"), flags);
    b.initialize();
    assert_eq!(echoed(&echo(&mut b, 1, "old")), Some("old"));

    // Renewed: same key (on the token), new certificate from the same CA.
    let renewed = dir.join("renewed.crt");
    let out = Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(fixture("client-rsa.key"))
        .args([
            "-subj",
            "/CN=mcp-rotated-token-client",
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
    std::fs::copy(&renewed, &cert).unwrap();
    // Past the rotation check interval, then new connections (a restarted server).
    std::thread::sleep(Duration::from_millis(2200));
    srv.stop();
    let srv = TestServer::start_on(port, ServerOptions::default());
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
        !cns.is_empty() && cns.iter().all(|cn| cn.contains("mcp-rotated-token-client")),
        "{cns:?}"
    );
}

#[test]
fn the_bridge_stops_with_the_token_error_before_any_connection() {
    let hsm = SoftHsm::new("bridge-error");
    let srv = TestServer::start(ServerOptions::default());
    let mut flags = hsm.key_flags("client-rsa");
    let pin = flags.iter().position(|f| f == PIN).unwrap();
    flags[pin] = "0000".to_string();
    let mut b = bridge(&hsm, &srv.url("/mcp"), flags);
    let status = b.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1), "{}", b.stderr());
    assert!(
        b.stderr()
            .contains("error: wrong PIN for PKCS#11 token 'mcp'"),
        "{}",
        b.stderr()
    );
    assert!(
        !b.stderr().contains("0000"),
        "the PIN is never logged: {}",
        b.stderr()
    );
    assert_eq!(
        srv.handshakes(),
        0,
        "nothing was sent before the pre-flight"
    );
}
