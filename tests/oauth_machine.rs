//! The machine grants end to end: the real binary with `--oauth-grant client-credentials` against a
//! real authorization server (npm oidc-provider, tests/peers/oauth, HTTPS that asks for the client
//! certificate) and the MCP server it protects (which checks the token's `cnf` binding and DPoP
//! proofs), all on 127.0.0.1. Each client is pre-registered at the peer from the very files the
//! bridge uses (its certificate's subject DN, its certificate as `x5c`, its public keys). Every test
//! runs the bridge with `--debug` and then asserts that no client secret, assertion, access token or
//! DPoP proof the peer saw appears on the bridge's stdout or stderr.
//!
//! Not on Windows: the Windows suite runs under wine, which cannot start the peer (a Linux node
//! process).
#![cfg_attr(windows, allow(unused))]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use rustls_pki_types::pem::PemObject;
use serde_json::{json, Value};

use support::bridge::Bridge;
use support::fixture;
use support::oauth_peer::{OauthPeer, PeerOptions};
// SoftHSM2 is this Linux host's, and needs the bridge's PKCS#11 support (as tests/pkcs11.rs).
#[cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]
use support::softhsm::SoftHsm;

/// Bound on one answer that may include the grant (discovery, token request): about a second here,
/// far more on a loaded 2-core CI machine or under qemu.
const GRANT_WAIT: Duration = Duration::from_secs(60);
const CLIENT_ID: &str = "machine-client";

// ---- scene: the peer with its registered client, a private directory ------------------------------

struct Scene {
    peer: OauthPeer,
    dir: TempDir,
}

impl Scene {
    /// The peer with one pre-registered client (`client` without `client_id`, which is
    /// [`CLIENT_ID`]) and DPoP `dpop` ("off", "on", "nonce").
    fn new(dir: TempDir, client: Value, dpop: &'static str) -> Scene {
        Scene::with(
            dir,
            client,
            PeerOptions {
                dpop,
                ..PeerOptions::default()
            },
        )
    }

    /// The same with other peer options (the client file is added to them).
    fn with(dir: TempDir, client: Value, options: PeerOptions) -> Scene {
        let mut client = client;
        client["client_id"] = json!(CLIENT_ID);
        let clients = dir.path.join("clients.json");
        std::fs::write(&clients, json!([client]).to_string()).expect("write clients.json");
        let peer = OauthPeer::start_with(PeerOptions {
            clients: Some(clients),
            ..options
        });
        Scene { peer, dir }
    }

    /// `<url> <tls> --debug --oauth-token-store memory --oauth-grant client-credentials
    /// --oauth-client-id machine-client [extra]`.
    fn bridge(&self, tls: &[String], extra: &[&str], env: &[(&str, String)]) -> Session {
        let mut args = vec![self.peer.mcp_url()];
        args.extend(tls.iter().cloned());
        args.extend(
            [
                "--debug",
                "--oauth-token-store",
                "memory",
                "--oauth-grant",
                "client-credentials",
                "--oauth-client-id",
                CLIENT_ID,
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env: Vec<(&str, String)> = env.to_vec();
        env.push((
            "XDG_STATE_HOME",
            self.dir.path.join("state").display().to_string(),
        ));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Session {
            bridge: Bridge::spawn(&args, &env),
            stdout: Vec::new(),
        }
    }

    fn stats(&self) -> Value {
        self.peer.stats()
    }

    /// No secret the peer saw (client secrets, assertions, tokens, DPoP proofs) is in `outputs`;
    /// and at least one access token was among them, so the check had something to look for.
    fn assert_no_secret(&self, outputs: &[(&str, &str)]) {
        let secrets = self.peer.secrets();
        assert!(
            !self.peer.issued_tokens().is_empty(),
            "the AS issued no token: the test did not exercise a grant"
        );
        for (name, text) in outputs {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{name} contains a secret the AS issued or received (it begins {:?}); {name}:\n{text}",
                    &secret[..6.min(secret.len())]
                );
            }
        }
    }

    /// The `alg` of every compact JWS among the secrets the peer recorded: the client assertions
    /// and DPoP proofs it received (its access tokens here are opaque).
    fn recorded_jws_algs(&self) -> Vec<String> {
        self.peer
            .secrets()
            .iter()
            .filter(|s| s.split('.').count() == 3)
            .filter_map(|s| {
                let header = Base64UrlUnpadded::decode_vec(s.split('.').next()?).ok()?;
                let header: Value = serde_json::from_slice(&header).ok()?;
                header["alg"].as_str().map(String::from)
            })
            .collect()
    }
}

/// A bridge plus everything it wrote on stdout (for the secret check).
struct Session {
    bridge: Bridge,
    stdout: Vec<String>,
}

impl Session {
    fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.bridge
            .send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}));
        let deadline = Instant::now() + GRANT_WAIT;
        loop {
            let Some(msg) = self.bridge.recv_within(Duration::from_millis(250)) else {
                if !self.bridge.running() {
                    let status = self.bridge.wait_exit(Duration::from_secs(5));
                    panic!(
                        "the bridge exited ({status:?}) before answering request {id}; stderr:\n{}",
                        self.bridge.stderr()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no answer to request {id} within {GRANT_WAIT:?}; stderr:\n{}",
                    self.bridge.stderr()
                );
                continue;
            };
            self.stdout.push(msg.to_string());
            if msg["id"] == json!(id) && (msg.get("result").is_some() || msg.get("error").is_some())
            {
                return msg;
            }
        }
    }

    /// initialize (which meets the 401 and runs the grant) + notifications/initialized.
    fn initialize(&mut self) {
        let resp = self.call(
            0,
            "initialize",
            json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"machine-test","version":"1"}}),
        );
        assert_eq!(
            resp["result"]["protocolVersion"],
            json!("2025-11-25"),
            "initialize was not answered by the server: {resp}; stderr:\n{}",
            self.bridge.stderr()
        );
        self.bridge
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    }

    fn assert_echo(&mut self, id: u64, message: &str) {
        let resp = self.call(
            id,
            "tools/call",
            json!({"name":"echo","arguments":{"message":message}}),
        );
        assert_eq!(
            resp["result"]["content"][0]["text"],
            json!(format!("Echo: {message}")),
            "tools/call: {resp}; stderr:\n{}",
            self.bridge.stderr()
        );
    }

    /// Close stdin, wait for the exit, collect the last stdout lines: (stdout, stderr).
    fn finish(&mut self) -> (String, String) {
        self.bridge.close_stdin();
        let exited = self.bridge.wait_exit(Duration::from_secs(20));
        assert!(
            exited.is_some(),
            "the bridge did not exit after stdin closed"
        );
        while let Some(msg) = self.bridge.recv_within(Duration::from_millis(100)) {
            self.stdout.push(msg.to_string());
        }
        (self.stdout.join("\n"), self.bridge.stderr())
    }
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mcp-oauth-machine-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("state")).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn count(stats: &Value, path: &[&str]) -> u64 {
    path.iter().fold(stats, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `--tls-cert C --tls-key K --tls-ca fixtures/ca.crt`.
fn tls_files(cert: &Path, key: &Path) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        path_str(cert),
        "--tls-key".into(),
        path_str(key),
        "--tls-ca".into(),
        path_str(&fixture("ca.crt")),
    ]
}

/// RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the certificate's DER.
fn x5t_s256(cert: &Path) -> String {
    let der = rustls_pki_types::CertificateDer::from_pem_file(cert)
        .unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    Base64UrlUnpadded::encode_string(digest.as_ref())
}

/// The thumbprints of the tokens the MCP server accepted, bound to a certificate.
fn certificate_bindings(stats: &Value) -> Vec<String> {
    stats["mcp"]["certificate_bindings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// One grant, a served session, and the token bound to `cert`: the common end of the
/// certificate-authenticated tests.
fn assert_one_grant_bound_to(scene: &Scene, cert: &Path) {
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        1,
        "one client-credentials grant: {stats}"
    );
    assert_eq!(stats["token_errors"], json!({}), "{stats}");
    assert!(count(&stats, &["mcp", "authorized"]) >= 3, "{stats}");
    assert_eq!(count(&stats, &["mcp", "wrong_certificate"]), 0, "{stats}");
    assert_eq!(
        certificate_bindings(&stats),
        vec![x5t_s256(cert)],
        "the token's cnf x5t#S256 is the bridge's certificate: {stats}"
    );
}

/// Run one bridge through initialize and a tool call; returns (stdout, stderr).
fn serve(
    scene: &Scene,
    tls: &[String],
    extra: &[&str],
    env: &[(&str, String)],
) -> (String, String) {
    let mut session = scene.bridge(tls, extra, env);
    session.initialize();
    session.assert_echo(1, "machine");
    let (stdout, stderr) = session.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("--debug stderr", &stderr)]);
    (stdout, stderr)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install the openssl CLI"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 client certificate from the fixtures CA with subject `CN=mcp-rotating-client` (the
/// same subject every time, as a renewal has): (cert, key) in `dir` named `name`.
fn issue_client_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    issue_client_cert_for(dir, name, "mcp-rotating-client")
}

/// The same with subject `CN={cn}`.
fn issue_client_cert_for(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.crt"));
    let ext = dir.join("client-ext.cnf");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("write ext");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path_str(&key),
        "-subj",
        &format!("/CN={cn}"),
        "-out",
        &path_str(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path_str(&csr),
        "-CA",
        &path_str(&fixture("ca.crt")),
        "-CAkey",
        &path_str(&fixture("ca.key")),
        "-set_serial",
        &format!(
            "0x{:x}",
            std::process::id() as u64 * 1000 + name.len() as u64
        ),
        "-days",
        "2",
        "-extfile",
        &path_str(&ext),
        "-out",
        &path_str(&cert),
    ]);
    (cert, key)
}

// ---- the tests -----------------------------------------------------------------------------------

/// RFC 8705 §2.1.1: the client is registered with its certificate's subject DN; the token (opaque,
/// or a JWT with its `cnf` claim) is bound to that certificate, and the MCP server (which checks
/// the binding) accepts it.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn client_credentials_with_tls_client_auth_gives_a_token_bound_to_the_certificate() {
    let cert = fixture("client-rsa.crt");
    for token_format in ["opaque", "jwt"] {
        let scene = Scene::with(
            TempDir::new(),
            json!({"token_endpoint_auth_method": "tls_client_auth", "bound": true,
                   "subject_dn_of": cert}),
            PeerOptions {
                token_format,
                ..PeerOptions::default()
            },
        );
        serve(
            &scene,
            &tls_files(&cert, &fixture("client-rsa.key")),
            &["--oauth-client-auth", "tls_client_auth"],
            &[],
        );
        assert_one_grant_bound_to(&scene, &cert);
    }
}

/// A client secret (from the environment, never a flag) sent as Basic and as form fields: the
/// grant works and the secret appears in no output.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn client_credentials_with_a_client_secret_never_shows_it() {
    let cert = fixture("client-rsa.crt");
    let secret = "machine-secret-0123456789abcdef";
    for method in ["client_secret_basic", "client_secret_post"] {
        let scene = Scene::new(
            TempDir::new(),
            json!({"token_endpoint_auth_method": method, "bound": true, "client_secret": secret}),
            "off",
        );
        serve(
            &scene,
            &tls_files(&cert, &fixture("client-rsa.key")),
            &["--oauth-client-auth", method],
            &[("MCP_REMOTE_OAUTH_CLIENT_SECRET", secret.to_string())],
        );
        assert_one_grant_bound_to(&scene, &cert);
        assert!(
            scene.peer.secrets().iter().any(|s| s == secret),
            "{method}: the AS did not record the client secret it received"
        );
    }
}

/// The AS refuses the certificate (registered with another subject): the request fails with one
/// line naming the grant and the AS's error, and a later request fails the same way without
/// asking the AS again (a refusal is final: no retry loop, no other grant).
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn a_certificate_the_authorization_server_refuses_fails_once_with_one_line() {
    let scene = Scene::new(
        TempDir::new(),
        json!({"token_endpoint_auth_method": "tls_client_auth", "bound": true,
               "subject_dn_of": fixture("client-ec.crt")}),
        "off",
    );
    let mut session = scene.bridge(
        &tls_files(&fixture("client-rsa.crt"), &fixture("client-rsa.key")),
        &["--oauth-client-auth", "tls_client_auth"],
        &[],
    );
    for id in [0, 1] {
        let resp = session.call(
            id,
            "initialize",
            json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"machine-test","version":"1"}}),
        );
        let message = resp["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("client-credentials grant") && message.contains("invalid_client"),
            "request {id}: {resp}; stderr:\n{}",
            session.bridge.stderr()
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
    let (stdout, stderr) = session.finish();
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        1,
        "the refusal is final: {stats}"
    );
    assert_eq!(
        count(&stats, &["token_errors", "invalid_client"]),
        1,
        "{stats}"
    );
    assert_eq!(count(&stats, &["mcp", "authorized"]), 0, "{stats}");
    for secret in scene.peer.secrets() {
        assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    }
}

/// RFC 8705 §2.2 with a really self-signed certificate, made here (no CA issued it): the client
/// is registered with the certificate itself (its JWK and `x5c`); the AS authenticates the client
/// by it and binds the token to it, and the MCP server, whose TLS accepts certificates of any
/// issuer, serves the request because the token is bound to exactly that certificate.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn client_credentials_with_self_signed_tls_client_auth_gives_a_bound_token() {
    let dir = TempDir::new();
    let (cert, key) = self_signed_client_cert(&dir.path);
    let scene = Scene::with(
        dir,
        json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "bound": true,
               "jwks_of": [cert]}),
        PeerOptions {
            mcp_self_signed_clients: true,
            ..PeerOptions::default()
        },
    );
    serve(
        &scene,
        &tls_files(&cert, &key),
        &["--oauth-client-auth", "self_signed_tls_client_auth"],
        &[],
    );
    assert_one_grant_bound_to(&scene, &cert);
    let stats = scene.stats();
    assert!(
        count(&stats, &["mcp", "self_signed"]) >= 3,
        "every request was served on the self-signed certificate's connection: {stats}"
    );
    assert_eq!(
        count(&stats, &["mcp", "unverified_certificate"]),
        0,
        "{stats}"
    );
}

/// The control for the test above: the same kind of certificate with a token that is not bound
/// to it is refused by the MCP server (nothing else vouches for the certificate), and the bridge
/// fails the request in one line: a token refused right after it was obtained is not obtained
/// again.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn a_self_signed_certificate_without_a_bound_token_is_refused_by_the_mcp_server() {
    let dir = TempDir::new();
    let (cert, key) = self_signed_client_cert(&dir.path);
    let scene = Scene::with(
        dir,
        json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "bound": false,
               "jwks_of": [cert]}),
        PeerOptions {
            mcp_self_signed_clients: true,
            ..PeerOptions::default()
        },
    );
    let mut session = scene.bridge(
        &tls_files(&cert, &key),
        &["--oauth-client-auth", "self_signed_tls_client_auth"],
        &[],
    );
    let resp = session.call(
        0,
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"machine-test","version":"1"}}),
    );
    let message = resp["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the access token just obtained") && !message.contains('\n'),
        "{resp}"
    );
    session.finish();
    let stats = scene.stats();
    assert_eq!(count(&stats, &["mcp", "authorized"]), 0, "{stats}");
    assert_eq!(
        count(&stats, &["mcp", "unverified_certificate"]),
        1,
        "{stats}"
    );
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        1,
        "{stats}"
    );
}

/// A P-256 certificate that signs itself (no CA), for client authentication: (cert, key).
fn self_signed_client_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path_str(&key),
        "-out",
        &path_str(&cert),
        "-subj",
        "/CN=mcp-self-signed-client",
        "-days",
        "2",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]);
    (cert, key)
}

/// RFC 7523 client assertions signed by a file key of each type the AS accepts (ES256, ES384,
/// PS256/RS256, EdDSA); the TLS identity stays client-rsa, so the token is still bound to it.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn private_key_jwt_with_file_keys_of_each_type() {
    let cert = fixture("client-rsa.crt");
    for (key, alg) in [
        ("client-ec.key", "ES256"),
        ("client-ec384.key", "ES384"),
        ("client-rsa.key", "PS256"),
        ("client-ed25519.key", "EdDSA"),
    ] {
        let jwt_key = fixture(key);
        let scene = Scene::new(
            TempDir::new(),
            json!({"token_endpoint_auth_method": "private_key_jwt", "bound": true,
                   "jwks_of": [jwt_key]}),
            "off",
        );
        serve(
            &scene,
            &tls_files(&cert, &fixture("client-rsa.key")),
            &[
                "--oauth-client-auth",
                "private_key_jwt",
                "--oauth-jwt-key",
                &path_str(&jwt_key),
            ],
            &[],
        );
        assert_one_grant_bound_to(&scene, &cert);
        assert_eq!(
            scene.recorded_jws_algs(),
            vec![alg.to_string()],
            "{key}: one client assertion, signed with {alg}"
        );
    }
}

/// `--oauth-jwt-key tls` with the TLS key on a PKCS#11 token (SoftHSM): the assertion is signed on
/// the token (the bridge only has its URI), and the AS verifies it with the certificate's key.
#[cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn private_key_jwt_signed_by_the_tls_key_on_a_pkcs11_token() {
    let hsm = SoftHsm::new("oauth-machine");
    for (object, cert, alg) in [
        ("client-ec", "client-ec.crt", "ES256"),
        ("client-ec384", "client-ec384.crt", "ES384"),
        ("client-rsa", "client-rsa.crt", "PS256"),
    ] {
        let cert = fixture(cert);
        let scene = Scene::new(
            TempDir::new(),
            json!({"token_endpoint_auth_method": "private_key_jwt", "bound": true,
                   "jwks_of": [cert]}),
            "off",
        );
        let mut tls = hsm.key_flags(object);
        tls.extend([
            "--tls-cert".to_string(),
            path_str(&cert),
            "--tls-ca".to_string(),
            path_str(&fixture("ca.crt")),
        ]);
        serve(
            &scene,
            &tls,
            &[
                "--oauth-client-auth",
                "private_key_jwt",
                "--oauth-jwt-key",
                "tls",
            ],
            &hsm.env(),
        );
        assert_one_grant_bound_to(&scene, &cert);
        assert_eq!(
            scene.recorded_jws_algs(),
            vec![alg.to_string()],
            "{object}: one client assertion, signed on the token with {alg}"
        );
    }
}

/// `--oauth-jwt-key pkcs11:URI`: the client assertion is signed by a key on a PKCS#11 token
/// (SoftHSM) that is not the TLS key, and never leaves the token. Once beside a TLS key file (the
/// URI names its module and PIN file), once beside a TLS key on the same token (the module and
/// PIN are the TLS token's).
#[cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn private_key_jwt_signed_by_a_pkcs11_key_given_by_its_uri() {
    let hsm = SoftHsm::new("oauth-machine-jwt-uri");
    let pin_file = hsm.dir.join("pin");
    std::fs::write(&pin_file, support::softhsm::PIN).expect("write the PIN file");
    let tls_cert = fixture("client-rsa.crt");
    let jwt_cert = fixture("client-ec.crt");
    let on_token = {
        let mut tls = hsm.key_flags("client-rsa");
        tls.extend([
            "--tls-cert".to_string(),
            path_str(&tls_cert),
            "--tls-ca".to_string(),
            path_str(&fixture("ca.crt")),
        ]);
        (tls, hsm.uri("client-ec"))
    };
    let beside_a_file = (
        tls_files(&tls_cert, &fixture("client-rsa.key")),
        format!(
            "{}?module-path={}&pin-source={}",
            hsm.uri("client-ec"),
            hsm.module.display(),
            pin_file.display()
        ),
    );
    for (tls, jwt_key) in [beside_a_file, on_token] {
        let scene = Scene::new(
            TempDir::new(),
            json!({"token_endpoint_auth_method": "private_key_jwt", "bound": true,
                   "jwks_of": [jwt_cert]}),
            "off",
        );
        serve(
            &scene,
            &tls,
            &[
                "--oauth-client-auth",
                "private_key_jwt",
                "--oauth-jwt-key",
                &jwt_key,
            ],
            &hsm.env(),
        );
        assert_one_grant_bound_to(&scene, &tls_cert);
        assert_eq!(
            scene.recorded_jws_algs(),
            vec!["ES256".to_string()],
            "{jwt_key}: one client assertion, signed on the token by the P-256 key"
        );
    }
}

/// DPoP (RFC 9449), without and with server nonces: with them, the token endpoint (§8) and the
/// MCP server (§9) each refuse the first proof with `use_dpop_nonce`, and the bridge sends again
/// once with the nonce, also when the MCP server's demand follows a Bearer challenge in the same
/// header. The MCP server checks every request's proof against the token's `jkt`.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_bound_client_credentials_with_and_without_a_nonce() {
    for dpop in ["on", "nonce", "nonce+bearer"] {
        let cert = fixture("client-rsa.crt");
        let scene = Scene::new(
            TempDir::new(),
            // Not certificate-bound: oidc-provider binds a token to one thing only.
            json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": cert}),
            dpop,
        );
        serve(
            &scene,
            &tls_files(&cert, &fixture("client-rsa.key")),
            &[
                "--oauth-client-auth",
                "tls_client_auth",
                "--oauth-dpop",
                "on",
            ],
            &[],
        );
        let stats = scene.stats();
        let nonce_refusals = u64::from(dpop != "on");
        assert_eq!(
            count(&stats, &["token_requests", "client_credentials"]),
            1 + nonce_refusals,
            "{dpop}: {stats}"
        );
        assert_eq!(
            count(&stats, &["token_errors", "use_dpop_nonce"]),
            nonce_refusals,
            "{dpop}: {stats}"
        );
        assert_eq!(
            stats["token_errors"].as_object().map(|m| m.len()),
            Some(nonce_refusals as usize),
            "{dpop}: no other token error: {stats}"
        );
        assert_eq!(
            stats["mcp"]["key_bindings"].as_array().map(|a| a.len()),
            Some(1),
            "{dpop}: one DPoP-bound token: {stats}"
        );
        assert!(count(&stats, &["mcp", "dpop"]) >= 3, "{dpop}: {stats}");
        assert_eq!(count(&stats, &["mcp", "bad_proof"]), 0, "{dpop}: {stats}");
        // The MCP server's nonce: demanded once, then carried by every proof.
        assert_eq!(
            count(&stats, &["mcp", "nonce_demanded"]),
            nonce_refusals,
            "{dpop}: {stats}"
        );
    }
}

/// DPoP proofs signed by the TLS key on a PKCS#11 token (SoftHSM): the proof key never leaves
/// the token either, and the token's `jkt` is that key's.
#[cfg(all(feature = "pkcs11", target_os = "linux", not(target_env = "musl")))]
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_proofs_signed_by_the_tls_key_on_a_pkcs11_token() {
    let hsm = SoftHsm::new("oauth-machine-dpop");
    let cert = fixture("client-ec.crt");
    let scene = Scene::new(
        TempDir::new(),
        json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": cert}),
        "nonce",
    );
    let mut tls = hsm.key_flags("client-ec");
    tls.extend([
        "--tls-cert".to_string(),
        path_str(&cert),
        "--tls-ca".to_string(),
        path_str(&fixture("ca.crt")),
    ]);
    let (_, stderr) = serve(
        &scene,
        &tls,
        &[
            "--oauth-client-auth",
            "tls_client_auth",
            "--oauth-dpop",
            "on",
        ],
        &hsm.env(),
    );
    assert!(
        stderr.contains("proofs signed with the TLS client key"),
        "the TLS key on the token was not the proof key; stderr:\n{stderr}"
    );
    let stats = scene.stats();
    assert_eq!(
        stats["mcp"]["key_bindings"],
        json!([jwk_thumbprint_of_ec_certificate(&cert)]),
        "the token is bound to the TLS key: {stats}"
    );
    assert!(count(&stats, &["mcp", "dpop"]) >= 3, "{stats}");
    assert_eq!(count(&stats, &["mcp", "bad_proof"]), 0, "{stats}");
    assert!(
        scene.recorded_jws_algs().iter().all(|a| a == "ES256"),
        "every proof is ES256: {:?}",
        scene.recorded_jws_algs()
    );
}

/// An AS that accepts only ES256 proofs and an RSA TLS key: the proofs are signed by a P-256 key
/// of the process (`--oauth-dpop on`; the tokens are kept in memory only), which the token is
/// bound to.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_with_a_process_key_when_the_tls_key_cannot_sign_the_accepted_algorithms() {
    let cert = fixture("client-rsa.crt");
    let scene = Scene::with(
        TempDir::new(),
        json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": cert}),
        PeerOptions {
            dpop: "on",
            dpop_algs: Some("ES256"),
            ..PeerOptions::default()
        },
    );
    let (_, stderr) = serve(
        &scene,
        &tls_files(&cert, &fixture("client-rsa.key")),
        &[
            "--oauth-client-auth",
            "tls_client_auth",
            "--oauth-dpop",
            "on",
        ],
        &[],
    );
    assert!(
        stderr.contains("proofs signed with a key of this process"),
        "stderr:\n{stderr}"
    );
    let stats = scene.stats();
    assert_eq!(
        stats["mcp"]["key_bindings"].as_array().map(|a| a.len()),
        Some(1),
        "{stats}"
    );
    assert_eq!(count(&stats, &["mcp", "bad_proof"]), 0, "{stats}");
    let algs = scene.recorded_jws_algs();
    assert!(
        !algs.is_empty() && algs.iter().all(|a| a == "ES256"),
        "{algs:?}"
    );
}

/// The same AS with `--oauth-dpop auto` and a file store shared with other bridges: a key of this
/// process would strand the stored token, so the bridge takes a Bearer token (certificate-bound).
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_auto_with_a_shared_store_and_no_usable_tls_key_takes_a_bearer_token() {
    let cert = fixture("client-rsa.crt");
    let scene = Scene::with(
        TempDir::new(),
        json!({"token_endpoint_auth_method": "tls_client_auth", "bound": true,
               "subject_dn_of": cert}),
        PeerOptions {
            dpop: "on",
            dpop_algs: Some("ES256"),
            ..PeerOptions::default()
        },
    );
    let store = format!("file:{}", scene.dir.path.join("tokens.json").display());
    let (_, stderr) = serve(
        &scene,
        &tls_files(&cert, &fixture("client-rsa.key")),
        &[
            "--oauth-client-auth",
            "tls_client_auth",
            "--oauth-token-store",
            &store,
        ],
        &[],
    );
    assert!(stderr.contains("bearer tokens"), "stderr:\n{stderr}");
    assert_one_grant_bound_to(&scene, &cert);
    let stats = scene.stats();
    assert_eq!(stats["mcp"]["key_bindings"], json!([]), "{stats}");
    assert_eq!(count(&stats, &["mcp", "dpop"]), 0, "{stats}");
}

/// RFC 7638 thumbprint of a P-256 certificate's public key: SHA-256 of
/// `{"crv":"P-256","kty":"EC","x":…,"y":…}` (members in that order, no spaces).
fn jwk_thumbprint_of_ec_certificate(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl");
    let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    // A P-256 SPKI ends with the uncompressed point 04 ‖ x ‖ y.
    let spki = spki.as_ref();
    let point = &spki[spki.len() - 65..];
    assert_eq!(point[0], 4, "not an uncompressed P-256 point");
    let jwk = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        Base64UrlUnpadded::encode_string(&point[1..33]),
        Base64UrlUnpadded::encode_string(&point[33..])
    );
    Base64UrlUnpadded::encode_string(
        ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref(),
    )
}

/// The client certificate is renewed on disk (same subject, new key) while the bridge runs: the
/// bridge notices the renewal before its next request, gets a token bound to the new certificate
/// first, and sends that request on a connection that presents the new certificate. The MCP
/// server (which checks the binding) never refuses a token, and the client sees no error.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn a_rotated_certificate_gets_a_new_bound_token() {
    let dir = TempDir::new();
    let (old_cert, old_key) = issue_client_cert(&dir.path, "old");
    let (new_cert, new_key) = issue_client_cert(&dir.path, "new");
    let cert = dir.path.join("client.crt");
    let key = dir.path.join("client.key");
    std::fs::copy(&old_cert, &cert).expect("copy cert");
    std::fs::copy(&old_key, &key).expect("copy key");
    let scene = Scene::new(
        dir,
        json!({"token_endpoint_auth_method": "tls_client_auth", "bound": true,
               "subject_dn_of": old_cert}),
        "off",
    );
    let mut session = scene.bridge(
        &tls_files(&cert, &key),
        &["--oauth-client-auth", "tls_client_auth"],
        &[],
    );
    session.initialize();
    session.assert_echo(1, "before the renewal");
    assert_eq!(
        certificate_bindings(&scene.stats()),
        vec![x5t_s256(&old_cert)]
    );

    renew_in_place((&new_cert, &new_key), (&cert, &key));
    // Past the bridge's check interval (2 s), within node's keep-alive (5 s): the pooled
    // connections that present the old certificate are still open, and must not carry the new
    // token.
    thread::sleep(Duration::from_secs(3));
    session.assert_echo(2, "after the renewal");
    session.assert_echo(3, "and again");
    let (stdout, stderr) = session.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("--debug stderr", &stderr)]);

    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        2,
        "one grant per certificate: {stats}"
    );
    // The token is replaced before it is refused: no request carried a token bound to another
    // certificate than its connection's.
    assert_eq!(
        count(&stats, &["mcp", "wrong_certificate"]),
        0,
        "no refusal of a token bound to the other certificate: {stats}"
    );
    assert_eq!(
        count(&stats, &["mcp", "unauthorized"]),
        1,
        "only the first 401: {stats}"
    );
    assert_eq!(stats["token_errors"], json!({}), "{stats}");
    let bindings = certificate_bindings(&stats);
    assert_eq!(
        bindings,
        vec![x5t_s256(&old_cert), x5t_s256(&new_cert)],
        "a token for each certificate, in order: {stats}"
    );
}

/// The renewal, as a certificate agent writes it: the key file, then the certificate file, each
/// replaced whole.
fn renew_in_place(new: (&Path, &Path), current: (&Path, &Path)) {
    for (from, to) in [(new.1, current.1), (new.0, current.0)] {
        let staged = to.with_extension("staged");
        std::fs::copy(from, &staged).expect("stage");
        std::fs::rename(&staged, to).expect("rename");
    }
}

/// `--oauth-dpop-key tls` with an RSA TLS key, at an AS that accepts only ES256 proofs: the
/// authorization fails in one line that names the flag and the algorithms, and no token is asked
/// for (no silent fall back to a key of the process).
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_key_tls_that_cannot_sign_an_accepted_algorithm_is_refused_in_one_line() {
    let cert = fixture("client-rsa.crt");
    let scene = Scene::with(
        TempDir::new(),
        json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": cert}),
        PeerOptions {
            dpop: "on",
            dpop_algs: Some("ES256"),
            ..PeerOptions::default()
        },
    );
    let mut session = scene.bridge(
        &tls_files(&cert, &fixture("client-rsa.key")),
        &[
            "--oauth-client-auth",
            "tls_client_auth",
            "--oauth-dpop-key",
            "tls",
        ],
        &[],
    );
    let resp = session.call(
        0,
        "initialize",
        json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"machine-test","version":"1"}}),
    );
    let message = resp["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("--oauth-dpop-key tls")
            && message.contains("RSA")
            && message.contains("ES256")
            && !message.contains('\n'),
        "one line naming the flag, the key and the accepted algorithms: {resp}"
    );
    session.finish();
    let stats = scene.stats();
    assert_eq!(
        stats["token_requests"],
        json!({}),
        "no token asked for: {stats}"
    );
}

/// `--oauth-dpop-key process` with a P-256 TLS key that could sign: the proofs are signed by a
/// key of this process, not the TLS key; `--oauth-dpop-key tls` with the same identity binds the
/// token to the TLS key.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn dpop_key_chooses_the_process_key_or_the_tls_key() {
    let cert = fixture("client-ec.crt");
    let tls_jkt = jwk_thumbprint_of_ec_certificate(&cert);
    for key in ["process", "tls"] {
        let scene = Scene::new(
            TempDir::new(),
            json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": cert}),
            "on",
        );
        let (_, stderr) = serve(
            &scene,
            &tls_files(&cert, &fixture("client-ec.key")),
            &[
                "--oauth-client-auth",
                "tls_client_auth",
                "--oauth-dpop-key",
                key,
            ],
            &[],
        );
        let stats = scene.stats();
        let bindings: Vec<String> =
            serde_json::from_value(stats["mcp"]["key_bindings"].clone()).unwrap_or_default();
        assert_eq!(bindings.len(), 1, "{key}: one DPoP-bound token: {stats}");
        assert_eq!(
            bindings[0] == tls_jkt,
            key == "tls",
            "{key}: the token is bound to the TLS key only with tls: {stats}"
        );
        let said = if key == "tls" {
            "proofs signed with the TLS client key"
        } else {
            "proofs signed with a key of this process"
        };
        assert!(stderr.contains(said), "{key}: stderr:\n{stderr}");
        assert!(count(&stats, &["mcp", "dpop"]) >= 3, "{key}: {stats}");
        assert_eq!(count(&stats, &["mcp", "bad_proof"]), 0, "{key}: {stats}");
    }
}

/// The DPoP key is the TLS key, and the certificate is renewed with a new key while the bridge
/// runs: from the next request on, proofs are signed by the new key and the token is obtained
/// again bound to it (its `jkt`), before any request is refused; the AS's and MCP server's nonces
/// carry over.
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn the_dpop_key_follows_a_rotated_tls_key() {
    let dir = TempDir::new();
    let (old_cert, old_key) = issue_client_cert(&dir.path, "old");
    let (new_cert, new_key) = issue_client_cert(&dir.path, "new");
    let cert = dir.path.join("client.crt");
    let key = dir.path.join("client.key");
    std::fs::copy(&old_cert, &cert).expect("copy cert");
    std::fs::copy(&old_key, &key).expect("copy key");
    let scene = Scene::new(
        dir,
        json!({"token_endpoint_auth_method": "tls_client_auth", "subject_dn_of": old_cert}),
        "nonce",
    );
    let mut session = scene.bridge(
        &tls_files(&cert, &key),
        &[
            "--oauth-client-auth",
            "tls_client_auth",
            "--oauth-dpop-key",
            "tls",
        ],
        &[],
    );
    session.initialize();
    session.assert_echo(1, "before the renewal");
    renew_in_place((&new_cert, &new_key), (&cert, &key));
    // Past the bridge's check interval (2 s), within node's keep-alive (5 s).
    thread::sleep(Duration::from_secs(3));
    session.assert_echo(2, "after the renewal");
    session.assert_echo(3, "and again");
    let (stdout, stderr) = session.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("--debug stderr", &stderr)]);

    let stats = scene.stats();
    assert_eq!(
        stats["mcp"]["key_bindings"],
        json!([
            jwk_thumbprint_of_ec_certificate(&old_cert),
            jwk_thumbprint_of_ec_certificate(&new_cert)
        ]),
        "a token bound to each TLS key, in order: {stats}"
    );
    // The first grant meets the AS's nonce demand once; the second already carries the nonce.
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        3,
        "{stats}"
    );
    assert_eq!(
        count(&stats, &["token_errors", "use_dpop_nonce"]),
        1,
        "{stats}"
    );
    assert_eq!(count(&stats, &["mcp", "bad_proof"]), 0, "{stats}");
    assert_eq!(count(&stats, &["mcp", "nonce_demanded"]), 1, "{stats}");
    assert_eq!(
        count(&stats, &["mcp", "unauthorized"]),
        1,
        "only the first 401: {stats}"
    );
}

/// The certificate is renewed with another subject, which the AS does not know: replacing the
/// token fails once (`invalid_client`), the request then goes with the old token, is refused by
/// the MCP server, and fails in one line naming the grant's refusal; the next request fails the
/// same way without another grant (no grant per request, no loop).
#[test]
#[cfg_attr(windows, ignore = "Unix only: wine cannot start the node peer")]
fn a_renewed_certificate_the_authorization_server_refuses_fails_without_a_grant_per_request() {
    let dir = TempDir::new();
    let (old_cert, old_key) = issue_client_cert(&dir.path, "old");
    let (new_cert, new_key) = issue_client_cert_for(&dir.path, "new", "mcp-unknown-client");
    let cert = dir.path.join("client.crt");
    let key = dir.path.join("client.key");
    std::fs::copy(&old_cert, &cert).expect("copy cert");
    std::fs::copy(&old_key, &key).expect("copy key");
    let scene = Scene::new(
        dir,
        json!({"token_endpoint_auth_method": "tls_client_auth", "bound": true,
               "subject_dn_of": old_cert}),
        "off",
    );
    let mut session = scene.bridge(
        &tls_files(&cert, &key),
        &["--oauth-client-auth", "tls_client_auth"],
        &[],
    );
    session.initialize();
    session.assert_echo(1, "before the renewal");
    renew_in_place((&new_cert, &new_key), (&cert, &key));
    thread::sleep(Duration::from_secs(3));
    for id in [2, 3] {
        let resp = session.call(
            id,
            "tools/call",
            json!({"name":"echo","arguments":{"message":"after"}}),
        );
        let message = resp["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("client-credentials grant") && message.contains("invalid_client"),
            "request {id}: one line naming the grant and the AS's error: {resp}"
        );
    }
    let (stdout, stderr) = session.finish();
    scene.assert_no_secret(&[("stdout", &stdout), ("--debug stderr", &stderr)]);
    let stats = scene.stats();
    assert_eq!(
        count(&stats, &["token_requests", "client_credentials"]),
        2,
        "the first grant, and one refused for the renewed certificate: {stats}"
    );
    assert_eq!(
        count(&stats, &["token_errors", "invalid_client"]),
        1,
        "{stats}"
    );
}
