//! A scripted OAuth-protected MCP server and its authorization server on one loopback listener
//! (plain HTTP, or TLS that requires the test client certificate), for the OAuth edge tests. The
//! MCP endpoint answers `401` with a `Bearer resource_metadata=…` challenge until it sees a token
//! this peer issued; the authorization server is well-behaved by default (metadata, dynamic
//! registration, an `/authorize` that redirects at once, a token endpoint that checks PKCE) and
//! each part can be switched to a hostile variant. Every request is recorded, and every secret the
//! peer hands out (codes, access and refresh tokens, client secrets) is collected, so that tests
//! can assert what reached which endpoint and that no secret leaked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

use crate::support::fixture;

/// How long a hostile answer (endless or silent) is kept up at most: longer than any bound the
/// bridge should apply, short enough that a broken bridge cannot keep a test thread for ever.
const HOSTILE_FOR: Duration = Duration::from_secs(60);

/// What the authorization server metadata looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metadata {
    Good,
    /// `200` with a chunked body that never ends.
    Endless,
    /// Accepts the connection, reads the request, never answers.
    Silent,
    /// Names another issuer than the one it was fetched for.
    IssuerMismatch,
    /// Names a plain-http token endpoint on a host that is not this machine.
    PlainHttpToken,
    /// Names another issuer, with a line break and a forged log line in it.
    ForgedLine,
}

/// What the protected-resource metadata names as the resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The MCP endpoint itself.
    Good,
    /// An MCP server of another origin.
    Foreign,
}

/// The log line a hostile authorization server tries to forge on the bridge's stderr.
pub const FORGED: &str = "mcp-secure-remote: FORGED by the authorization server";

/// What `/authorize` redirects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    Good,
    WrongState,
    WrongIss,
    /// The right state and issuer, and `error=access_denied` with a description that carries a
    /// forged log line.
    Denied,
}

/// What the token endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Good,
    /// `200` with a body that is not a token answer.
    Malformed,
    /// Accepts the connection, reads the request, never answers.
    Silent,
    /// A token of another type than Bearer, whose name carries a forged log line.
    ForgedType,
    /// A good token whose granted scope carries a forged log line.
    ForgedScope,
}

/// One request the peer received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection presented a client certificate (TLS only).
    pub client_cert: bool,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query or form parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(query.as_bytes())
            .chain(url::form_urlencoded::parse(&self.body))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct Issued {
    /// code -> (code_challenge, redirect_uri)
    codes: Vec<(String, String, String)>,
    access: Vec<String>,
    refresh: Vec<String>,
    secrets: Vec<String>,
    verifiers: Vec<String>,
}

struct Shared {
    base: String,
    metadata: Mutex<Metadata>,
    resource: Mutex<Resource>,
    redirect: Mutex<Redirect>,
    token: Mutex<Token>,
    /// `expires_in` of the access tokens issued.
    expires_in: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    issued: Mutex<Issued>,
    counter: AtomicUsize,
    /// Bytes written on endless answers before the client went away.
    endless_written: AtomicU64,
    endless_ended: AtomicBool,
    closed: AtomicBool,
}

pub struct Peer {
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Peer {
    /// A plain-HTTP peer on 127.0.0.1 (the bridge needs `--allow-http`).
    pub fn plain() -> Peer {
        Peer::start(None)
    }

    /// A TLS peer on 127.0.0.1 with the fixtures' server certificate, requiring a client
    /// certificate from the fixtures' CA on every connection.
    pub fn tls() -> Peer {
        Peer::start(Some(server_config()))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted peer");
        let port = listener.local_addr().expect("local addr").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            base: format!("{scheme}://127.0.0.1:{port}"),
            metadata: Mutex::new(Metadata::Good),
            resource: Mutex::new(Resource::Good),
            redirect: Mutex::new(Redirect::Good),
            token: Mutex::new(Token::Good),
            expires_in: AtomicU64::new(3600),
            seen: Mutex::new(Vec::new()),
            issued: Mutex::new(Issued::default()),
            counter: AtomicUsize::new(0),
            endless_written: AtomicU64::new(0),
            endless_ended: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let config = tls.clone();
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if accepting.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let shared = Arc::clone(&accepting);
                let config = config.clone();
                thread::spawn(move || serve(&shared, tcp, config));
            }
        });
        Peer { shared, tls }
    }

    /// The MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.shared.base)
    }

    pub fn set_metadata(&self, m: Metadata) {
        *self.shared.metadata.lock().unwrap() = m;
    }

    pub fn set_resource(&self, r: Resource) {
        *self.shared.resource.lock().unwrap() = r;
    }

    pub fn set_redirect(&self, r: Redirect) {
        *self.shared.redirect.lock().unwrap() = r;
    }

    pub fn set_token(&self, t: Token) {
        *self.shared.token.lock().unwrap() = t;
    }

    pub fn set_expires_in(&self, seconds: u64) {
        self.shared.expires_in.store(seconds, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The requests whose path is `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path() == path)
            .collect()
    }

    /// Every secret handed out so far (codes, access and refresh tokens, client secrets) and the
    /// PKCE verifiers the bridge sent.
    pub fn secrets(&self) -> Vec<String> {
        let issued = self.shared.issued.lock().unwrap();
        issued
            .codes
            .iter()
            .map(|(c, _, _)| c.clone())
            .chain(issued.access.iter().cloned())
            .chain(issued.refresh.iter().cloned())
            .chain(issued.secrets.iter().cloned())
            .chain(issued.verifiers.iter().cloned())
            .collect()
    }

    pub fn access_tokens(&self) -> Vec<String> {
        self.shared.issued.lock().unwrap().access.clone()
    }

    /// Bytes written on an endless answer, and whether the client has gone away from it.
    pub fn endless(&self) -> (u64, bool) {
        (
            self.shared.endless_written.load(Ordering::SeqCst),
            self.shared.endless_ended.load(Ordering::SeqCst),
        )
    }

    /// Play the browser: fetch the authorization URL (with the test client identity when it is
    /// https), then follow its redirect to the bridge's loopback listener (which must answer
    /// HTTP). Returns the status the loopback answered.
    pub fn complete_login(&self, authorization_url: &str) -> u16 {
        let answer = fetch(authorization_url, self.tls.is_some());
        assert_eq!(answer.status, 302, "the scripted /authorize redirects");
        let location = answer
            .header("location")
            .unwrap_or_else(|| panic!("302 without Location"))
            .to_string();
        fetch(&location, false).status
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `closed`.
        let port = self
            .shared
            .base
            .rsplit(':')
            .next()
            .unwrap_or("0")
            .to_string();
        let _ = TcpStream::connect(format!("127.0.0.1:{port}"));
    }
}

/// Wait until the bridge prints an authorization URL (there may be earlier ones: `skip` of them
/// are passed over).
pub fn wait_for_url(stderr: impl Fn() -> String, skip: usize, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let text = stderr();
        // The URL follows "visit:" after a line break (and the logger's indentation, if the
        // prompt is a log record).
        let urls: Vec<String> = text
            .split("if it did not open, visit:")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
            .collect();
        if let Some(url) = urls.get(skip) {
            return url.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the bridge printed no authorization URL #{skip}; stderr:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.crt"))
        .expect("server.crt")
        .map(|c| c.expect("server.crt PEM"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server.key");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(fixture("ca.crt")).expect("ca.crt") {
        roots.add(ca.expect("ca.crt PEM")).expect("CA added");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("server identity");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serve one connection: one request, one answer, close.
fn serve(shared: &Shared, tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    match tls {
        None => {
            let mut stream = tcp;
            handle(shared, &mut stream, false);
            let _ = stream.shutdown(Shutdown::Both);
        }
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            // Complete the handshake first, to know whether a certificate was presented.
            while stream.conn.is_handshaking() {
                if stream.conn.complete_io(&mut stream.sock).is_err() {
                    return;
                }
            }
            let cert = stream
                .conn
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            handle(shared, &mut stream, cert);
            stream.conn.send_close_notify();
            let _ = stream.flush();
            let _ = stream.sock.shutdown(Shutdown::Both);
        }
    }
}

fn read_request(stream: &mut dyn Read, client_cert: bool) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body,
        client_cert,
    })
}

fn respond(stream: &mut dyn Write, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn json_answer(stream: &mut dyn Write, status: u16, value: &Value) {
    respond(
        stream,
        status,
        &[("Content-Type", "application/json".into())],
        value.to_string().as_bytes(),
    );
}

/// Keep the connection open without answering, until the peer is dropped or `HOSTILE_FOR`.
fn stay_silent(shared: &Shared) {
    let until = Instant::now() + HOSTILE_FOR;
    while Instant::now() < until && !shared.closed.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
    }
}

fn handle<S: Read + Write>(shared: &Shared, stream: &mut S, client_cert: bool) {
    let Some(req) = read_request(stream, client_cert) else {
        return;
    };
    shared.seen.lock().unwrap().push(req.clone());
    let base = shared.base.clone();
    let n = shared.counter.fetch_add(1, Ordering::SeqCst);
    match (req.method.as_str(), req.path()) {
        ("POST", "/mcp") => mcp(shared, stream, &req),
        (_, "/mcp") => respond(stream, 405, &[], b""),
        ("GET", "/.well-known/oauth-protected-resource/mcp") => {
            let resource = match *shared.resource.lock().unwrap() {
                Resource::Good => format!("{base}/mcp"),
                Resource::Foreign => "https://evil.invalid/mcp".to_string(),
            };
            json_answer(
                stream,
                200,
                &json!({"resource": resource, "authorization_servers": [base]}),
            );
        }
        ("GET", "/.well-known/oauth-authorization-server") => {
            let mode = *shared.metadata.lock().unwrap();
            let mut doc = json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "authorization_response_iss_parameter_supported": true,
            });
            match mode {
                Metadata::Good => json_answer(stream, 200, &doc),
                Metadata::IssuerMismatch => {
                    doc["issuer"] = json!(format!("{base}/someone-else"));
                    json_answer(stream, 200, &doc);
                }
                Metadata::PlainHttpToken => {
                    // `.invalid` never resolves (RFC 6761): the check must refuse it unsent.
                    doc["token_endpoint"] = json!("http://as.invalid/token");
                    json_answer(stream, 200, &doc);
                }
                Metadata::ForgedLine => {
                    doc["issuer"] = json!(format!("{base}/x\n{FORGED}"));
                    json_answer(stream, 200, &doc);
                }
                Metadata::Silent => stay_silent(shared),
                Metadata::Endless => endless(shared, stream),
            }
        }
        ("POST", "/register") => {
            let secret = format!("client-secret-{n}-{}", random());
            shared.issued.lock().unwrap().secrets.push(secret.clone());
            json_answer(
                stream,
                201,
                &json!({
                    "client_id": format!("client-{n}"),
                    "client_secret": secret,
                    "client_secret_expires_at": 0,
                    "token_endpoint_auth_method": "client_secret_post",
                }),
            );
        }
        ("GET", "/authorize") => authorize(shared, stream, &req, n),
        ("POST", "/token") => token(shared, stream, &req, n),
        _ => respond(stream, 404, &[], b""),
    }
}

fn mcp<S: Write>(shared: &Shared, stream: &mut S, req: &Seen) {
    let sent = req.header("authorization").unwrap_or("");
    let known = shared
        .issued
        .lock()
        .unwrap()
        .access
        .iter()
        .any(|t| sent == format!("Bearer {t}"));
    if !known {
        let challenge = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            shared.base
        );
        let challenge = if sent.is_empty() {
            challenge
        } else {
            format!("{challenge}, error=\"invalid_token\"")
        };
        respond(stream, 401, &[("WWW-Authenticate", challenge)], b"");
        return;
    }
    let msg: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let Some(id) = msg.get("id").cloned() else {
        respond(stream, 202, &[], b"");
        return;
    };
    let result = match msg.get("method").and_then(Value::as_str) {
        Some("initialize") => json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "scripted", "version": "1"},
        }),
        Some("tools/list") => json!({"tools": []}),
        _ => json!({}),
    };
    json_answer(
        stream,
        200,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    );
}

fn authorize<S: Write>(shared: &Shared, stream: &mut S, req: &Seen, n: usize) {
    let (Some(redirect_uri), Some(state), Some(challenge)) = (
        req.param("redirect_uri"),
        req.param("state"),
        req.param("code_challenge"),
    ) else {
        respond(stream, 400, &[], b"missing parameters");
        return;
    };
    let code = format!("code-{n}-{}", random());
    shared
        .issued
        .lock()
        .unwrap()
        .codes
        .push((code.clone(), challenge, redirect_uri.clone()));
    let (state, iss) = match *shared.redirect.lock().unwrap() {
        Redirect::Good | Redirect::Denied => (state, shared.base.clone()),
        Redirect::WrongState => (format!("{state}x"), shared.base.clone()),
        Redirect::WrongIss => (state, "https://attacker.invalid".to_string()),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if *shared.redirect.lock().unwrap() == Redirect::Denied {
        query
            .append_pair("error", "access_denied")
            .append_pair("error_description", &format!("the user said no\n{FORGED}"));
    } else {
        query.append_pair("code", &code);
    }
    let query = query
        .append_pair("state", &state)
        .append_pair("iss", &iss)
        .finish();
    respond(
        stream,
        302,
        &[("Location", format!("{redirect_uri}?{query}"))],
        b"",
    );
}

fn token<S: Write>(shared: &Shared, stream: &mut S, req: &Seen, n: usize) {
    match *shared.token.lock().unwrap() {
        Token::Good | Token::ForgedScope => {}
        Token::Silent => return stay_silent(shared),
        Token::ForgedType => {
            let access = format!("access-{n}-{}", random());
            shared.issued.lock().unwrap().access.push(access.clone());
            json_answer(
                stream,
                200,
                &json!({"access_token": access, "token_type": format!("mac\n{FORGED}")}),
            );
            return;
        }
        Token::Malformed => {
            // Starts like a token answer, then is cut: not JSON.
            respond(
                stream,
                200,
                &[("Content-Type", "application/json".into())],
                b"{\"access_token\": \"half-a-tok",
            );
            return;
        }
    }
    let refused = |stream: &mut S, why: &str| {
        json_answer(
            stream,
            400,
            &json!({"error": "invalid_grant", "error_description": why}),
        )
    };
    let mut issued = shared.issued.lock().unwrap();
    // The bridge's PKCE verifier is its secret: no log may show it either.
    if let Some(verifier) = req.param("code_verifier") {
        issued.verifiers.push(verifier);
    }
    match req.param("grant_type").as_deref() {
        Some("authorization_code") => {
            let code = req.param("code").unwrap_or_default();
            let Some(pos) = issued.codes.iter().position(|(c, _, _)| *c == code) else {
                return refused(stream, "unknown code");
            };
            let (_, challenge, redirect_uri) = issued.codes[pos].clone();
            let verifier = req.param("code_verifier").unwrap_or_default();
            let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
            if Base64UrlUnpadded::encode_string(digest.as_ref()) != challenge {
                return refused(stream, "PKCE verifier does not match");
            }
            if req.param("redirect_uri").as_deref() != Some(redirect_uri.as_str()) {
                return refused(stream, "redirect_uri differs");
            }
        }
        Some("refresh_token") => {
            let refresh = req.param("refresh_token").unwrap_or_default();
            if !issued.refresh.contains(&refresh) {
                return refused(stream, "unknown refresh token");
            }
        }
        _ => return refused(stream, "unsupported grant"),
    }
    let access = format!("access-{n}-{}", random());
    let refresh = format!("refresh-{n}-{}", random());
    issued.access.push(access.clone());
    issued.refresh.push(refresh.clone());
    drop(issued);
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": shared.expires_in.load(Ordering::SeqCst),
        "refresh_token": refresh,
    });
    if *shared.token.lock().unwrap() == Token::ForgedScope {
        answer["scope"] = json!(format!("mcp\n{FORGED}"));
    }
    json_answer(stream, 200, &answer);
}

/// A `200` JSON answer whose chunked body never ends (until the client leaves, or HOSTILE_FOR).
fn endless<S: Write>(shared: &Shared, stream: &mut S) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
    let until = Instant::now() + HOSTILE_FOR;
    let _ = stream.write_all(b"5\r\n{\"a\":\r\n");
    while Instant::now() < until && !shared.closed.load(Ordering::SeqCst) {
        if stream.write_all(chunk.as_bytes()).is_err() || stream.flush().is_err() {
            break;
        }
        shared.endless_written.fetch_add(0x4000, Ordering::SeqCst);
    }
    shared.endless_ended.store(true, Ordering::SeqCst);
}

/// Unpredictable enough for test secrets (they must be unique, so that a leak is unambiguous).
fn random() -> String {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("random bytes");
    Base64UrlUnpadded::encode_string(&bytes)
}

/// A plain GET answer.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `url` (http, or https with the test client identity): what the browser would do.
pub fn fetch(url: &str, https: bool) -> Fetched {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let host = parsed.host_str().expect("host").to_string();
    let port = parsed.port_or_known_default().expect("port");
    assert!(
        host == "127.0.0.1" || host == "localhost",
        "tests fetch only loopback URLs, not {url}"
    );
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect for fetch");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    if https {
        let mut stream = rustls::StreamOwned::new(client_tls(), tcp);
        stream.write_all(request.as_bytes()).expect("send over TLS");
        let _ = stream.read_to_end(&mut raw);
    } else {
        let mut stream = tcp;
        stream.write_all(request.as_bytes()).expect("send");
        let _ = stream.read_to_end(&mut raw);
    }
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer from {url}: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Fetched { status, headers }
}

fn client_tls() -> rustls::ClientConnection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(fixture("ca.crt")).expect("ca.crt") {
        roots.add(ca.expect("ca.crt PEM")).expect("CA added");
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fixture("client-rsa.crt"))
            .expect("client-rsa.crt")
            .map(|c| c.expect("client PEM"))
            .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("client-rsa.key")).expect("client-rsa.key");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .expect("client identity");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client")
}
