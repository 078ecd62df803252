//! Tests of the OAuth test peer itself (tests/peers/oauth/server.mjs), without the bridge: discovery, DCR,
//! a headless authorization-code + PKCE login, refresh-token rotation and reuse detection, revocation,
//! and the MCP server's demands (a client certificate and a live token for its resource). Driven with
//! curl, so a later failure of tests/oauth_login.rs is the bridge's, not the peer's.
//!
//! Not on Windows: the Windows suite runs under wine, which cannot start the peer (a Linux node
//! process), and the scripted browser and opener are Unix command lines.
#![cfg_attr(windows, allow(unused))]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use support::fixture;
use support::oauth_peer::{OauthPeer, PeerOptions};

const WAIT: Duration = Duration::from_secs(20);

// ---- curl --------------------------------------------------------------------------------------

/// A response: status, raw header block (last response's, lower-case names as sent), body.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// curl against the peer: the fixtures CA, no proxy, a bounded time. `Err(exit code)` when curl
/// itself failed (connection or TLS refused).
fn curl(args: &[&str]) -> Result<Reply, i32> {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "15", "--cacert"])
        .arg(fixture("ca.crt"))
        .args(["-D", "-", "-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (install curl)");
    if !out.status.success() {
        return Err(out.status.code().unwrap_or(-1));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, status) = text.rsplit_once('\n').expect("curl -w status line");
    // With -D - the header blocks come first; the body follows the last blank line of the last block.
    let (headers, body) = rest.rsplit_once("\r\n\r\n").unwrap_or(("", rest));
    let headers = headers
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or(headers)
        .to_string();
    Ok(Reply {
        status: status.trim().parse().expect("curl status"),
        headers,
        body: body.to_string(),
    })
}

fn get(url: &str) -> Reply {
    curl(&[url]).unwrap_or_else(|code| panic!("curl {url} failed with exit code {code}"))
}

/// A form POST (`k=v` pairs, url-encoded by curl).
fn post_form(url: &str, fields: &[(&str, &str)], extra: &[&str]) -> Reply {
    let pairs: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args: Vec<&str> = extra.to_vec();
    for pair in &pairs {
        args.extend(["--data-urlencode", pair.as_str()]);
    }
    args.push(url);
    curl(&args).unwrap_or_else(|code| panic!("curl POST {url} failed with exit code {code}"))
}

fn post_json(url: &str, body: &Value, extra: &[&str]) -> Result<Reply, i32> {
    let body = body.to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
    ]);
    args.extend(["--data-binary", body.as_str(), url]);
    curl(&args)
}

fn client_cert_args() -> Vec<String> {
    vec![
        "--cert".into(),
        fixture("client-rsa.crt").display().to_string(),
        "--key".into(),
        fixture("client-rsa.key").display().to_string(),
    ]
}

/// tools/call echo on the protected MCP server with `token`, with or without the client certificate.
fn mcp_echo(peer: &OauthPeer, token: &str, with_cert: bool) -> Result<Reply, i32> {
    let auth = format!("authorization: Bearer {token}");
    let certs = client_cert_args();
    let mut extra: Vec<&str> = vec!["-H", auth.as_str()];
    if with_cert {
        extra.extend(certs.iter().map(String::as_str));
    }
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call",
                      "params":{"name":"echo","arguments":{"message":"hello"}}});
    post_json(&peer.mcp_url(), &call, &extra)
}

// ---- a login as a native app would do it -------------------------------------------------------

struct Login {
    client_id: String,
    tokens: Value,
    code: String,
    verifier: String,
}

/// A loopback redirect listener plus a DCR'd public client for it.
struct NativeApp {
    listener: TcpListener,
    redirect_uri: String,
    client_id: String,
}

fn register_native(peer: &OauthPeer) -> NativeApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind callback listener");
    let port = listener.local_addr().expect("callback addr").port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let client_id = register_public(peer, &redirect_uri, "native");
    NativeApp {
        listener,
        redirect_uri,
        client_id,
    }
}

/// DCR of a public (`none`) client; returns its client_id.
fn register_public(peer: &OauthPeer, redirect_uri: &str, application_type: &str) -> String {
    let reg = post_json(
        &format!("{}/reg", peer.issuer()),
        &json!({
            "client_name": "oauth peer selftest",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": application_type,
        }),
        &[],
    )
    .expect("DCR request");
    assert_eq!(reg.status, 201, "DCR refused: {}", reg.body);
    reg.json()["client_id"]
        .as_str()
        .expect("client_id")
        .to_string()
}

fn random_b64url(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("read /dev/urandom");
    Base64UrlUnpadded::encode_string(&buf)
}

fn s256(verifier: &str) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(verifier.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl dgst");
    Base64UrlUnpadded::encode_string(&out.stdout)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The headless browser: fetch the authorization URL and follow redirects with a cookie jar, through
/// the AS's auto-approving interaction, to the loopback callback; returns the callback's query.
fn browse_to_callback(app: &NativeApp, authorize_url: &str, jar: &Path) -> String {
    let jar = jar.display().to_string();
    let ca = fixture("ca.crt").display().to_string();
    let mut browser = Command::new("curl")
        .args([
            "-fsS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-L",
            "--max-redirs",
            "10",
            "--max-time",
            "15",
        ])
        .args(["-c", &jar, "-b", &jar, "--cacert", &ca, authorize_url])
        .stdin(Stdio::null())
        .spawn()
        .expect("run curl as the browser");
    app.listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + WAIT;
    let (stream, _) = loop {
        match app.listener.accept() {
            Ok(conn) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("the browser never reached the callback: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("callback request line");
    (&stream)
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .expect("answer callback");
    let status = browser.wait().expect("browser exit");
    assert!(status.success(), "the browser (curl) failed: {status}");
    let target = line
        .split_whitespace()
        .nth(1)
        .expect("request target")
        .to_string();
    assert!(target.starts_with("/callback?"), "callback hit {target}");
    target["/callback?".len()..].to_string()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn login(peer: &OauthPeer, scope: &str) -> Login {
    let app = register_native(peer);
    let verifier = random_b64url(32);
    let state = random_b64url(16);
    let authorize = format!(
        "{}/auth?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={}\
         &code_challenge_method=S256&resource={}",
        peer.issuer(),
        enc(&app.client_id),
        enc(&app.redirect_uri),
        enc(scope),
        state,
        s256(&verifier),
        enc(&peer.resource()),
    );
    let jar = TempDir::new("login").path.join("jar");
    let query = browse_to_callback(&app, &authorize, &jar);
    assert_eq!(
        query_param(&query, "state").as_deref(),
        Some(state.as_str()),
        "state: {query}"
    );
    assert_eq!(
        query_param(&query, "iss"),
        Some(peer.issuer()),
        "RFC 9207 iss: {query}"
    );
    let code = query_param(&query, "code").unwrap_or_else(|| panic!("no code in {query}"));
    let reply = post_form(
        &format!("{}/token", peer.issuer()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &app.redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &app.client_id),
            ("resource", &peer.resource()),
        ],
        &[],
    );
    assert_eq!(reply.status, 200, "code redemption: {}", reply.body);
    Login {
        client_id: app.client_id,
        tokens: reply.json(),
        code,
        verifier,
    }
}

fn refresh(peer: &OauthPeer, client_id: &str, refresh_token: &str) -> Reply {
    post_form(
        &format!("{}/token", peer.issuer()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("resource", &peer.resource()),
        ],
        &[],
    )
}

fn token_str<'a>(tokens: &'a Value, key: &str) -> &'a str {
    tokens[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {tokens}"))
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mcp-oauth-selftest-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---- the tests ---------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn discovery_is_served_at_both_well_knowns_with_what_the_bridge_needs() {
    let peer = OauthPeer::start();
    for well_known in ["oauth-authorization-server", "openid-configuration"] {
        let meta = get(&format!("{}/.well-known/{well_known}", peer.issuer()));
        assert_eq!(meta.status, 200, "{well_known}: {}", meta.body);
        let meta = meta.json();
        assert_eq!(meta["issuer"], json!(peer.issuer()), "{well_known}");
        assert_eq!(
            meta["code_challenge_methods_supported"],
            json!(["S256"]),
            "{well_known}"
        );
        assert_eq!(
            meta["authorization_response_iss_parameter_supported"],
            json!(true)
        );
        assert_eq!(meta["response_types_supported"], json!(["code"]));
        for key in [
            "registration_endpoint",
            "revocation_endpoint",
            "token_endpoint",
            "authorization_endpoint",
        ] {
            let url = meta[key]
                .as_str()
                .unwrap_or_else(|| panic!("{well_known} lacks {key}"));
            assert!(url.starts_with(&peer.issuer()), "{key} = {url}");
        }
        let grants = meta["grant_types_supported"].to_string();
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(grants.contains(grant), "{well_known} grants {grants}");
        }
        assert!(
            meta["scopes_supported"]
                .to_string()
                .contains("offline_access"),
            "{meta}"
        );
        assert_eq!(
            meta["tls_client_certificate_bound_access_tokens"],
            json!(true)
        );
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn mcp_without_a_token_answers_401_naming_its_protected_resource_metadata() {
    let peer = OauthPeer::start();
    let certs = client_cert_args();
    let extra: Vec<&str> = certs.iter().map(String::as_str).collect();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}});
    let reply =
        post_json(&peer.mcp_url(), &init, &extra).expect("POST /mcp with a client certificate");
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer resource_metadata=\"{}\"", peer.prm_url())),
        "headers: {}",
        reply.headers
    );
    let prm_url = peer.prm_url();
    let prm_args: Vec<&str> = extra.iter().copied().chain([prm_url.as_str()]).collect();
    let prm = curl(&prm_args).expect("GET PRM");
    assert_eq!(prm.status, 200, "{}", prm.body);
    assert_eq!(
        prm.json(),
        json!({
            "resource": peer.resource(),
            "authorization_servers": [peer.issuer()],
            "scopes_supported": ["mcp:read", "mcp:write"],
            "bearer_methods_supported": ["header"],
        })
    );
    assert_eq!(peer.resource(), peer.mcp_url());
    // A garbage token is refused as such.
    let bad = mcp_echo(&peer, "not-a-token", true).expect("POST /mcp");
    assert_eq!(bad.status, 401);
    assert!(bad
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_token\""));
    assert_eq!(peer.stats()["mcp"]["unauthorized"], json!(2));
    assert_eq!(peer.stats()["mcp"]["authorized"], json!(0));
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn headless_login_with_pkce_gives_tokens_the_mcp_server_accepts_only_with_a_client_certificate() {
    let peer = OauthPeer::start();
    let login = login(&peer, "mcp:read mcp:write offline_access");
    let tokens = &login.tokens;
    assert_eq!(tokens["token_type"], json!("Bearer"), "{tokens}");
    assert_eq!(tokens["scope"], json!("mcp:read mcp:write"), "{tokens}");
    assert_eq!(tokens["expires_in"], json!(3600), "{tokens}");
    let access = token_str(tokens, "access_token");
    token_str(tokens, "refresh_token");

    let reply = mcp_echo(&peer, access, true).expect("tools/call with token and certificate");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["result"]["content"][0]["text"],
        json!("Echo: hello")
    );

    // Same token, no client certificate: the TLS handshake is refused (curl exits non-zero).
    let refused = mcp_echo(&peer, access, false);
    assert!(
        refused.is_err(),
        "the MCP server accepted a connection without a client certificate"
    );

    // Notifications are accepted without a body; ping and tools/list answer.
    let certs = client_cert_args();
    let auth = format!("authorization: Bearer {access}");
    let mut extra: Vec<&str> = certs.iter().map(String::as_str).collect();
    extra.extend(["-H", auth.as_str()]);
    let note = post_json(
        &peer.mcp_url(),
        &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        &extra,
    )
    .expect("notification");
    assert_eq!(note.status, 202);
    let list = post_json(
        &peer.mcp_url(),
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        &extra,
    )
    .expect("tools/list");
    assert_eq!(list.json()["result"]["tools"][0]["name"], json!("echo"));
    let init = json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-06-18"}});
    let init = post_json(&peer.mcp_url(), &init, &extra).expect("initialize");
    assert_eq!(
        init.json()["result"]["protocolVersion"],
        json!("2025-06-18")
    );

    let stats = peer.stats();
    assert_eq!(stats["authorizations"], json!(1), "{stats}");
    assert_eq!(stats["registrations"], json!(1), "{stats}");
    assert_eq!(
        stats["token_requests"],
        json!({"authorization_code": 1}),
        "{stats}"
    );
    assert_eq!(stats["mcp"]["authorized"], json!(4), "{stats}");
    assert_eq!(
        stats["mcp"]["requests_by_token"]
            .as_object()
            .map(|m| m.len()),
        Some(1),
        "{stats}"
    );
    let secrets = peer.secrets();
    for secret in [
        access,
        token_str(tokens, "refresh_token"),
        &login.code,
        &login.verifier,
    ] {
        assert!(
            secrets.iter().any(|s| s == secret),
            "the peer did not record a secret it saw"
        );
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn refresh_rotates_and_a_reused_refresh_token_revokes_the_family() {
    let peer = OauthPeer::start();
    let login = login(&peer, "mcp:read mcp:write offline_access");
    let first = token_str(&login.tokens, "refresh_token").to_string();
    let reply = refresh(&peer, &login.client_id, &first);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = reply.json();
    let rotated = token_str(&second, "refresh_token").to_string();
    assert_ne!(rotated, first, "the refresh token was not rotated");
    assert_ne!(
        token_str(&second, "access_token"),
        token_str(&login.tokens, "access_token")
    );
    assert_eq!(second["scope"], json!("mcp:read mcp:write"));
    let ok = mcp_echo(&peer, token_str(&second, "access_token"), true).expect("echo");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(peer.stats()["live_refresh_tokens"], json!(1));

    // Redeeming the consumed one again is reuse: refused, and the rotated one dies with it.
    let reuse = refresh(&peer, &login.client_id, &first);
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], json!("invalid_grant"));
    let after = refresh(&peer, &login.client_id, &rotated);
    assert_eq!(
        after.json()["error"],
        json!("invalid_grant"),
        "{}",
        after.body
    );

    let stats = peer.stats();
    assert_eq!(stats["refresh_token_reuse"], json!(1), "{stats}");
    assert_eq!(
        stats["token_requests"]["refresh_token"],
        json!(3),
        "{stats}"
    );
    assert_eq!(stats["token_errors"]["invalid_grant"], json!(2), "{stats}");
    assert_eq!(stats["live_refresh_tokens"], json!(0), "{stats}");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn no_offline_access_no_refresh_token() {
    let peer = OauthPeer::start();
    let login = login(&peer, "mcp:read");
    assert!(
        login.tokens.get("refresh_token").is_none(),
        "{}",
        login.tokens
    );
    assert_eq!(login.tokens["scope"], json!("mcp:read"));
    assert_eq!(peer.stats()["offline_access_without_consent"], json!(0));
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn offline_access_without_prompt_consent_counts_and_is_dropped_only_in_strict_mode() {
    // Default: the login above (no prompt=consent) got a refresh token; the request is counted.
    let lenient = OauthPeer::start();
    let login_lenient = login(&lenient, "mcp:read offline_access");
    token_str(&login_lenient.tokens, "refresh_token");
    assert_eq!(lenient.stats()["offline_access_without_consent"], json!(1));
    // Strict (oidc-provider's own OIDC Core §11 rule): no refresh token.
    let strict = OauthPeer::start_with(PeerOptions {
        offline_access_needs_consent: true,
        ..PeerOptions::default()
    });
    let login_strict = login(&strict, "mcp:read offline_access");
    assert!(
        login_strict.tokens.get("refresh_token").is_none(),
        "{}",
        login_strict.tokens
    );
    assert_eq!(strict.stats()["offline_access_without_consent"], json!(1));
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn revocation_endpoint_and_control_revocation_kill_tokens() {
    let peer = OauthPeer::start();
    // RFC 7009 revocation of the refresh token by the (public) client itself.
    let login_a = login(&peer, "mcp:read mcp:write offline_access");
    let refresh_a = token_str(&login_a.tokens, "refresh_token");
    let revoked = post_form(
        &format!("{}/token/revocation", peer.issuer()),
        &[
            ("token", refresh_a),
            ("token_type_hint", "refresh_token"),
            ("client_id", &login_a.client_id),
        ],
        &[],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        refresh(&peer, &login_a.client_id, refresh_a).json()["error"],
        json!("invalid_grant")
    );
    assert_eq!(peer.stats()["revocations"], json!(1));
    // oidc-provider revokes the whole grant with its refresh token: the access token dies too.
    let access_a = token_str(&login_a.tokens, "access_token");
    assert_eq!(mcp_echo(&peer, access_a, true).expect("echo").status, 401);

    // The control endpoint revokes one client's refresh and access tokens (an administrator's act).
    let login_b = login(&peer, "mcp:read mcp:write offline_access");
    let login_c = login(&peer, "mcp:read mcp:write offline_access");
    let access_b = token_str(&login_b.tokens, "access_token");
    assert_eq!(mcp_echo(&peer, access_b, true).expect("echo").status, 200);
    assert_eq!(peer.revoke_all(Some(&login_b.client_id), true), 2);
    let after = mcp_echo(&peer, access_b, true).expect("echo after revocation");
    assert_eq!(after.status, 401, "a revoked access token was accepted");
    let refreshed = refresh(
        &peer,
        &login_b.client_id,
        token_str(&login_b.tokens, "refresh_token"),
    );
    assert_eq!(refreshed.json()["error"], json!("invalid_grant"));
    // Client C was not touched.
    let access_c = token_str(&login_c.tokens, "access_token");
    assert_eq!(mcp_echo(&peer, access_c, true).expect("echo").status, 200);
    let refreshed_c = refresh(
        &peer,
        &login_c.client_id,
        token_str(&login_c.tokens, "refresh_token"),
    );
    assert_eq!(refreshed_c.status, 200, "{}", refreshed_c.body);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn access_tokens_expire_after_the_configured_ttl() {
    let peer = OauthPeer::start_with(PeerOptions {
        access_ttl: 2,
        ..PeerOptions::default()
    });
    let login = login(&peer, "mcp:read mcp:write offline_access");
    assert_eq!(login.tokens["expires_in"], json!(2));
    let access = token_str(&login.tokens, "access_token");
    // Not checked while still valid: on a loaded machine two seconds can pass before the first
    // request; that tokens work before expiry is the other tests' business.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(
        mcp_echo(&peer, access, true).expect("echo").status,
        401,
        "an expired token was accepted"
    );
    // The TTL can change at run time; refresh gets a token with the new one.
    peer.set_access_ttl(60);
    let reply = refresh(
        &peer,
        &login.client_id,
        token_str(&login.tokens, "refresh_token"),
    );
    assert_eq!(reply.json()["expires_in"], json!(60), "{}", reply.body);
    assert_eq!(
        mcp_echo(&peer, token_str(&reply.json(), "access_token"), true)
            .expect("echo")
            .status,
        200
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn secret_client_gets_a_client_credentials_token_for_the_resource() {
    let peer = OauthPeer::start_with(PeerOptions {
        token_format: "jwt",
        ..PeerOptions::default()
    });
    let reg = post_json(
        &format!("{}/reg", peer.issuer()),
        &json!({
            "client_name": "machine",
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
        &[],
    )
    .expect("DCR");
    assert_eq!(reg.status, 201, "{}", reg.body);
    let reg = reg.json();
    let id = token_str(&reg, "client_id");
    let secret = token_str(&reg, "client_secret");
    let user = format!("{}:{}", enc(id), enc(secret));
    let reply = post_form(
        &format!("{}/token", peer.issuer()),
        &[
            ("grant_type", "client_credentials"),
            ("resource", &peer.resource()),
            ("scope", "mcp:read"),
        ],
        &["-u", &user],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let access = token_str(&reply.json(), "access_token").to_string();
    assert_eq!(access.matches('.').count(), 2, "not a JWT access token");
    let ok = mcp_echo(&peer, &access, true).expect("echo");
    assert_eq!(ok.status, 200, "{}", ok.body);
    // A JWT whose signature does not verify is refused.
    let mut forged = access.clone();
    forged.push('A');
    assert_eq!(mcp_echo(&peer, &forged, true).expect("echo").status, 401);
    let secrets = peer.secrets();
    assert!(
        secrets.iter().any(|s| s == secret),
        "client secret not recorded"
    );
    assert!(secrets.contains(&access), "access token not recorded");
}

/// RFC 8252 §7.3: a native client may come back on another loopback port than it registered (each
/// bridge process binds an ephemeral one); oidc-provider allows that only for
/// `application_type: native`, so a bridge that registers without it gets an error page instead.
#[test]
#[cfg_attr(
    windows,
    ignore = "Unix only: wine cannot start the node peer, and the scripted browser is a Unix command line"
)]
fn loopback_redirect_port_may_differ_from_the_registered_one_for_native_clients_only() {
    let peer = OauthPeer::start();
    for (application_type, expected) in [("native", 303), ("web", 400)] {
        let client_id = register_public(&peer, "http://127.0.0.1:40001/callback", application_type);
        let authorize = format!(
            "{}/auth?response_type=code&client_id={}&redirect_uri={}&scope=mcp%3Aread&state=s\
             &code_challenge={}&code_challenge_method=S256&resource={}",
            peer.issuer(),
            enc(&client_id),
            enc("http://127.0.0.1:40002/callback"),
            s256(&random_b64url(32)),
            enc(&peer.resource()),
        );
        let reply = get(&authorize);
        assert_eq!(
            reply.status, expected,
            "{application_type} client, other port: {}",
            reply.body
        );
    }
}
