//! `tls::client_config` with every fixture format, and every bad input with the message it must give
//! (the flag, the path, and what to do).

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use mcp_secure_remote::config::{ClientIdentity, Secret, TlsOptions, TlsVersion};
use mcp_secure_remote::tls::{self, client_config, client_config_at, ClientTls, TlsError};

const PASS: &str = "fixture-pass";
const PASSPHRASE_HINT: &str = "set --tls-passphrase or MCP_REMOTE_TLS_PASSPHRASE";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A file under the temp dir, unique to this process and test.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mcp-tls-identity-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

fn pem_opts(cert: &str, key: &str, pass: Option<&str>) -> TlsOptions {
    TlsOptions {
        identity: Some(ClientIdentity::PemFiles {
            cert: fixture(cert),
            key: fixture(key),
            passphrase: pass.map(|p| Secret::new(p.to_string())),
        }),
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    }
}

fn pfx_opts(pfx: &str, pass: Option<&str>) -> TlsOptions {
    TlsOptions {
        identity: Some(ClientIdentity::Pkcs12 {
            bundle: fixture(pfx),
            passphrase: pass.map(|p| Secret::new(p.to_string())),
        }),
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    }
}

fn loaded_cn(tls: &ClientTls) -> &str {
    tls.identity
        .as_ref()
        .and_then(|info| info.common_name())
        .unwrap_or("<none>")
}

fn error_of(opts: &TlsOptions) -> (TlsError, String) {
    let err = client_config(opts).expect_err("expected client_config to fail");
    let message = err.to_string();
    (err, message)
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "message {message:?} lacks {part:?}");
    }
}

// ---- every good format loads ------------------------------------------------------------------

#[test]
fn loads_rsa_key_in_every_pem_encoding() {
    for (key, pass) in [
        ("client-rsa.key", None),
        ("client-rsa.pkcs1.key", None),
        ("client-rsa.enc.key", Some(PASS)),
        ("client-rsa.legacy-enc.key", Some(PASS)),
        ("client-rsa.des3-enc.key", Some(PASS)),
    ] {
        let tls = client_config(&pem_opts("client-rsa.crt", key, pass))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(loaded_cn(&tls), "mcp-test-client-rsa", "{key}");
        assert!(tls.warnings.is_empty(), "{key}: {:?}", tls.warnings);
        assert!(tls.config.client_auth_cert_resolver.has_certs(), "{key}");
    }
}

#[test]
fn loads_ec_and_ed25519_keys() {
    for (cert, key, pass, cn) in [
        ("client-ec.crt", "client-ec.key", None, "mcp-test-client-ec"),
        (
            "client-ec.crt",
            "client-ec.pkcs8.key",
            None,
            "mcp-test-client-ec",
        ),
        (
            "client-ec.crt",
            "client-ec.legacy-enc.key",
            Some(PASS),
            "mcp-test-client-ec",
        ),
        (
            "client-ec384.crt",
            "client-ec384.key",
            None,
            "mcp-test-client-ec384",
        ),
        (
            "client-ed25519.crt",
            "client-ed25519.key",
            None,
            "mcp-test-client-ed25519",
        ),
        (
            "client-chain.crt",
            "client-chain.key",
            None,
            "mcp-test-client-chain",
        ),
    ] {
        let tls =
            client_config(&pem_opts(cert, key, pass)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(loaded_cn(&tls), cn, "{key}");
    }
}

#[test]
fn loads_pkcs12_bundles() {
    for (pfx, pass) in [
        ("client.p12", Some(PASS)),
        ("client-legacy.p12", Some(PASS)),
        ("client-nopass.p12", None),
        ("client-nopass.p12", Some("")),
    ] {
        let tls = client_config(&pfx_opts(pfx, pass)).unwrap_or_else(|e| panic!("{pfx}: {e}"));
        assert_eq!(loaded_cn(&tls), "mcp-test-client-rsa", "{pfx}");
        let info = tls.identity.unwrap();
        assert_eq!(
            info.issuer,
            "CN=mcp-secure-remote test CA,O=mcp-secure-remote tests"
        );
    }
}

#[test]
fn without_identity_presents_no_certificate() {
    let opts = TlsOptions {
        ca: Some(fixture("ca.crt")),
        ..TlsOptions::default()
    };
    let tls = client_config(&opts).unwrap();
    assert!(tls.identity.is_none());
    assert!(!tls.config.client_auth_cert_resolver.has_certs());
    assert!(tls.warnings.is_empty());
}

#[test]
fn default_roots_load_without_tls_ca() {
    // System roots or, if there are none here, the bundled webpki roots: either way it builds.
    let tls = client_config(&TlsOptions::default()).unwrap();
    assert!(tls.identity.is_none());
    // And they are what the server is verified against. The system store is read from
    // SSL_CERT_FILE (set for a child process only: the environment is shared by every test
    // thread), so with the test CA in it, the bridge without --tls-ca trusts the test server...
    let server = mcp_test_server::TestServer::start(Default::default());
    let ca = fixture("ca.crt").display().to_string();
    let answer = initialize_without_tls_ca(&server, &[("SSL_CERT_FILE", &ca)]);
    assert!(
        answer.contains(r#""result""#),
        "the test CA from the system store is trusted: {answer}"
    );
    // ...and with a system store that has no usable certificate, the bundled roots are used,
    // which do not include the private test CA.
    let empty = temp_file("no-roots.pem", b"");
    let empty_dir = std::env::temp_dir();
    let answer = initialize_without_tls_ca(
        &server,
        &[
            ("SSL_CERT_FILE", &empty.display().to_string()),
            (
                "SSL_CERT_DIR",
                &empty_dir.join("mcp-no-such-dir").display().to_string(),
            ),
        ],
    );
    assert!(
        answer.contains("is not trusted"),
        "the bundled roots do not trust the test CA: {answer}"
    );
}

/// Runs the bridge against `server` with the RSA client identity and no --tls-ca, in a cleared
/// environment plus `env`; returns its answer to an initialize (its first stdout line).
fn initialize_without_tls_ca(server: &mcp_test_server::TestServer, env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote"))
        .arg(server.url("/mcp"))
        .arg("--tls-cert")
        .arg(fixture("client-rsa.crt"))
        .arg("--tls-key")
        .arg(fixture("client-rsa.key"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
    )
    .unwrap();
    let answer = rx.recv_timeout(Duration::from_secs(20));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    answer.expect("the bridge answered the initialize")
}

#[test]
fn offers_only_http_1_1_alpn() {
    let tls = client_config(&pem_opts("client-rsa.crt", "client-rsa.key", None)).unwrap();
    assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn skip_verify_warns() {
    let opts = TlsOptions {
        insecure_skip_verify: true,
        min_version: Some(TlsVersion::Tls13),
        ..TlsOptions::default()
    };
    let tls = client_config(&opts).unwrap();
    assert_eq!(tls.warnings, vec![tls::SKIP_VERIFY_WARNING.to_string()]);
    assert_contains(
        &tls.warnings[0],
        &[
            "TLS server certificate verification is DISABLED (--tls-insecure-skip-verify)",
            "can be intercepted",
            "local development",
        ],
    );
}

// ---- validity -------------------------------------------------------------------------------

#[test]
fn refuses_expired_certificate_printing_its_dates() {
    let opts = pem_opts("client-expired.crt", "client-expired.key", None);
    let (err, message) = error_of(&opts);
    assert!(
        matches!(err, TlsError::CertificateExpired { .. }),
        "{err:?}"
    );
    assert_contains(
        &message,
        &[
            "--tls-cert",
            &fixture("client-expired.crt").display().to_string(),
            "expired on 2021-01-01 00:00:00 UTC",
            "2020-01-01 00:00:00 UTC",
            "mcp-test-client-expired",
        ],
    );
}

#[test]
fn refuses_certificate_not_yet_valid() {
    let opts = pem_opts("client-rsa.crt", "client-rsa.key", None);
    let in_2000 = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800);
    let err = client_config_at(&opts, in_2000).unwrap_err();
    assert!(
        matches!(err, TlsError::CertificateNotYetValid { .. }),
        "{err:?}"
    );
    assert_contains(&err.to_string(), &["is not valid before", "--tls-cert"]);
}

#[test]
fn warns_when_certificate_expires_within_14_days() {
    let opts = pem_opts("client-rsa.crt", "client-rsa.key", None);
    let not_after = client_config(&opts).unwrap().identity.unwrap().not_after;

    let three_days_before = not_after - Duration::from_secs(3 * 24 * 3600);
    let tls = client_config_at(&opts, three_days_before).unwrap();
    assert_eq!(tls.warnings.len(), 1, "{:?}", tls.warnings);
    assert_contains(
        &tls.warnings[0],
        &[
            "expires on",
            "in 3 days",
            "mcp-test-client-rsa",
            "--tls-cert",
        ],
    );

    let month_before = not_after - Duration::from_secs(30 * 24 * 3600);
    assert!(client_config_at(&opts, month_before)
        .unwrap()
        .warnings
        .is_empty());
}

// ---- files ----------------------------------------------------------------------------------

#[test]
fn unreadable_files_name_flag_path_and_os_error() {
    let missing = fixture("does-not-exist.pem");
    let shown = missing.display().to_string();
    // The operating system's own words ("No such file or directory" on Unix, "The system cannot
    // find the file specified." on Windows), as the user will see them.
    let os_reason = std::fs::read(&missing).unwrap_err().to_string();
    let cases = [
        (
            "--tls-cert",
            TlsOptions {
                identity: Some(ClientIdentity::PemFiles {
                    cert: missing.clone(),
                    key: fixture("client-rsa.key"),
                    passphrase: None,
                }),
                ..TlsOptions::default()
            },
        ),
        (
            "--tls-key",
            TlsOptions {
                identity: Some(ClientIdentity::PemFiles {
                    cert: fixture("client-rsa.crt"),
                    key: missing.clone(),
                    passphrase: None,
                }),
                ..TlsOptions::default()
            },
        ),
        (
            "--tls-pfx",
            TlsOptions {
                identity: Some(ClientIdentity::Pkcs12 {
                    bundle: missing.clone(),
                    passphrase: None,
                }),
                ..TlsOptions::default()
            },
        ),
        (
            "--tls-ca",
            TlsOptions {
                ca: Some(missing.clone()),
                ..TlsOptions::default()
            },
        ),
    ];
    for (flag, opts) in cases {
        let (err, message) = error_of(&opts);
        assert!(matches!(err, TlsError::ReadFile { .. }), "{err:?}");
        assert_contains(
            &message,
            &[&format!("cannot read {flag} {shown}"), &os_reason],
        );
    }
}

#[test]
fn cert_file_without_certificate() {
    let (err, message) = error_of(&pem_opts("client-rsa.key", "client-rsa.key", None));
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    assert_contains(
        &message,
        &[
            &format!(
                "no certificate found in --tls-cert {}",
                fixture("client-rsa.key").display()
            ),
            "BEGIN CERTIFICATE",
        ],
    );
}

#[test]
fn key_file_without_key() {
    let (err, message) = error_of(&pem_opts("client-rsa.crt", "client-rsa.crt", None));
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    assert_contains(
        &message,
        &[&format!(
            "no private key found in --tls-key {}",
            fixture("client-rsa.crt").display()
        )],
    );
}

#[test]
fn truncated_pem_is_reported_as_bad_pem() {
    let text = std::fs::read_to_string(fixture("client-rsa.crt")).unwrap();
    let truncated = temp_file("truncated.crt", &text.as_bytes()[..text.len() / 2]);
    let opts = TlsOptions {
        identity: Some(ClientIdentity::PemFiles {
            cert: truncated.clone(),
            key: fixture("client-rsa.key"),
            passphrase: None,
        }),
        ..TlsOptions::default()
    };
    let (err, message) = error_of(&opts);
    assert!(matches!(err, TlsError::BadPem { .. }), "{err:?}");
    assert_contains(&message, &["--tls-cert", "-----END CERTIFICATE-----"]);
}

// ---- passphrases ----------------------------------------------------------------------------

#[test]
fn encrypted_inputs_without_passphrase_ask_for_one() {
    for opts in [
        pem_opts("client-rsa.crt", "client-rsa.enc.key", None),
        pem_opts("client-rsa.crt", "client-rsa.legacy-enc.key", None),
        pem_opts("client-rsa.crt", "client-rsa.des3-enc.key", None),
        pfx_opts("client.p12", None),
        pfx_opts("client-legacy.p12", None),
    ] {
        let (err, message) = error_of(&opts);
        assert!(
            matches!(err, TlsError::PassphraseRequired { .. }),
            "{err:?}"
        );
        assert_contains(&message, &["is encrypted", PASSPHRASE_HINT]);
    }
}

#[test]
fn wrong_passphrase_names_the_file() {
    for (opts, file) in [
        (
            pem_opts("client-rsa.crt", "client-rsa.enc.key", Some("nope")),
            "client-rsa.enc.key",
        ),
        (
            pem_opts("client-rsa.crt", "client-rsa.legacy-enc.key", Some("nope")),
            "client-rsa.legacy-enc.key",
        ),
        (
            pem_opts("client-rsa.crt", "client-rsa.des3-enc.key", Some("nope")),
            "client-rsa.des3-enc.key",
        ),
        (pfx_opts("client.p12", Some("nope")), "client.p12"),
        (
            pfx_opts("client-legacy.p12", Some("nope")),
            "client-legacy.p12",
        ),
        (
            pfx_opts("client-nopass.p12", Some("nope")),
            "client-nopass.p12",
        ),
    ] {
        let (err, message) = error_of(&opts);
        assert!(
            matches!(err, TlsError::WrongPassphrase { .. }),
            "{file}: {err:?}"
        );
        assert_eq!(
            message,
            format!(
                "wrong passphrase for {} ({PASSPHRASE_HINT})",
                fixture(file).display()
            )
        );
    }
}

#[test]
fn unsupported_pkcs8_encryption_gives_the_conversion_command() {
    let opts = pem_opts("client-rsa.crt", "client-rsa.v1-3des-enc.key", Some(PASS));
    let (err, message) = error_of(&opts);
    assert!(
        matches!(err, TlsError::UnsupportedKeyEncryption { .. }),
        "{err:?}"
    );
    let path = fixture("client-rsa.v1-3des-enc.key").display().to_string();
    assert_contains(
        &message,
        &[
            "--tls-key",
            &format!("openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out NEW.key"),
        ],
    );
}

// ---- key and certificate belong together ------------------------------------------------------

#[test]
fn key_that_does_not_match_the_certificate() {
    let (err, message) = error_of(&pem_opts("client-rsa.crt", "client-mismatch.key", None));
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!(
            "--tls-key {} does not match the certificate in --tls-cert {}",
            fixture("client-mismatch.key").display(),
            fixture("client-rsa.crt").display()
        )),
        "{message}"
    );
}

#[test]
fn key_of_another_algorithm_does_not_match_either() {
    let (err, _) = error_of(&pem_opts("client-rsa.crt", "client-ec.key", None));
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
}

#[test]
fn pem_file_given_as_pkcs12() {
    let (err, message) = error_of(&pfx_opts("client-rsa.crt", Some(PASS)));
    assert!(matches!(err, TlsError::BadPkcs12 { .. }), "{err:?}");
    assert_contains(&message, &["--tls-pfx", "not a readable PKCS#12 bundle"]);
}

// ---- trust ----------------------------------------------------------------------------------

#[test]
fn empty_or_garbage_ca_bundle_has_no_certificates() {
    for (name, contents) in [
        ("empty-ca.pem", &b""[..]),
        ("garbage-ca.pem", b"this is not a certificate\n"),
    ] {
        let path = temp_file(name, contents);
        let opts = TlsOptions {
            ca: Some(path.clone()),
            ..TlsOptions::default()
        };
        let (err, message) = error_of(&opts);
        assert!(matches!(err, TlsError::NoCaCertificates { .. }), "{err:?}");
        assert_contains(
            &message,
            &[&format!(
                "no certificates found in --tls-ca {}",
                path.display()
            )],
        );
    }
}

#[test]
fn ca_bundle_with_only_a_key_has_no_certificates() {
    let opts = TlsOptions {
        ca: Some(fixture("ca.key")),
        ..TlsOptions::default()
    };
    let (err, _) = error_of(&opts);
    assert!(matches!(err, TlsError::NoCaCertificates { .. }), "{err:?}");
}

#[test]
fn broken_ca_bundle_is_reported_even_with_skip_verify() {
    let path = temp_file("skip-verify-empty-ca.pem", b"");
    let opts = TlsOptions {
        ca: Some(path),
        insecure_skip_verify: true,
        ..TlsOptions::default()
    };
    let (err, _) = error_of(&opts);
    assert!(matches!(err, TlsError::NoCaCertificates { .. }), "{err:?}");
}
