//! Cookies behind a cookie-pinning load balancer: two real test servers (plain HTTP backends)
//! behind a TLS-terminating balancer of our own that demands the client certificate, routes
//! round-robin, and pins a client to a backend with `Set-Cookie: route=bN` like nginx's
//! `sticky cookie`. With cookies (the default) a stateful session stays on its backend on every
//! exchange (POST, GET listening stream, DELETE; legacy GET /sse and POST /message); without them
//! (`--no-cookies`, `MCP_REMOTE_NO_COOKIES`) it lands on the other backend, which does not know
//! it, and the bridge re-initializes — what every balancer user met before.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use support::bridge::{mtls_args, Bridge};
use support::fixture;
use support::server::{Fault, ServerOptions, TestServer, TlsMode};

/// One request as the balancer routed it.
#[derive(Clone, Debug)]
struct Routed {
    method: String,
    path: String,
    backend: usize,
    cookie: Option<String>,
}

struct Balancer {
    port: u16,
    routed: Arc<Mutex<Vec<Routed>>>,
}

impl Balancer {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn routed(&self) -> Vec<Routed> {
        self.routed.lock().unwrap().clone()
    }
}

fn backend() -> TestServer {
    TestServer::start(ServerOptions {
        tls: TlsMode::PlainHttp,
        ..Default::default()
    })
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(fixture("ca.crt")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.crt"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// Start the balancer in front of `backends` (ports of plain-HTTP servers).
fn balancer(backends: [u16; 2]) -> Balancer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let routed = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&routed);
    let next = Arc::new(AtomicUsize::new(0));
    let config = tls_config();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let (config, log, next) = (Arc::clone(&config), Arc::clone(&log), Arc::clone(&next));
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let tls = rustls::StreamOwned::new(conn, tcp);
                let _ = serve(tls, backends, &log, &next);
            });
        }
    });
    Balancer { port, routed }
}

/// Read one HTTP head (up to the blank line).
fn read_head(r: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One request per client connection (answered with `Connection: close`): route it by its
/// `route` cookie, or round-robin and pin it with `Set-Cookie`; stream the answer back.
fn serve(
    tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    backends: [u16; 2],
    log: &Mutex<Vec<Routed>>,
    next: &AtomicUsize,
) -> std::io::Result<()> {
    let mut client = BufReader::new(tls);
    let head = read_head(&mut client)?;
    let mut body = vec![0; header(&head, "content-length").map_or(0, |v| v.parse().unwrap())];
    client.read_exact(&mut body)?;
    let cookie = header(&head, "cookie").map(str::to_string);
    let pinned = cookie.as_deref().and_then(|c| {
        c.split(';').find_map(|kv| match kv.trim() {
            "route=b1" => Some(0),
            "route=b2" => Some(1),
            _ => None,
        })
    });
    let backend = pinned.unwrap_or_else(|| next.fetch_add(1, Ordering::SeqCst) % 2);
    let mut parts = head[0].split(' ');
    log.lock().unwrap().push(Routed {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or_default().to_string(),
        backend,
        cookie,
    });

    let mut upstream = TcpStream::connect(("127.0.0.1", backends[backend]))?;
    let mut request = format!("{}\r\n", head[0]);
    for line in head.iter().skip(1) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            request.push_str(&format!("{line}\r\n"));
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    upstream.write_all(request.as_bytes())?;
    upstream.write_all(&body)?;

    let mut upstream = BufReader::new(upstream);
    let answer = read_head(&mut upstream)?;
    let mut response = String::new();
    for line in &answer {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            response.push_str(&format!("{line}\r\n"));
        }
    }
    if pinned.is_none() {
        response.push_str(&format!(
            "Set-Cookie: route=b{}; Path=/; HttpOnly\r\n",
            backend + 1
        ));
    }
    response.push_str("Connection: close\r\n\r\n");
    let client = client.get_mut();
    client.write_all(response.as_bytes())?;
    client.flush()?;
    // The body as it comes (an SSE stream stays open), until the backend closes it.
    let mut buf = [0u8; 8192];
    loop {
        let n = upstream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        client.write_all(&buf[..n])?;
        client.flush()?;
    }
    client.conn.send_close_notify();
    client.flush()
}

/// MCP `initialize` requests a backend received (sessions started there).
fn initializes(srv: &TestServer) -> usize {
    srv.requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("initialize"))
        .count()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// initialize and three echo calls; returns the answers.
fn session(b: &mut Bridge) -> Vec<Value> {
    b.initialize();
    (1..=3)
        .map(|id| {
            b.call(
                json!(id),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": format!("call {id}")}}),
            )
        })
        .collect()
}

fn assert_all_answered(answers: &[Value], b: &Bridge) {
    for (n, resp) in answers.iter().enumerate() {
        assert_eq!(
            resp["result"]["content"][0]["text"],
            format!("call {}", n + 1),
            "{resp}\n{}",
            b.stderr()
        );
    }
}

#[test]
fn with_cookies_a_stateful_session_stays_on_its_backend_for_every_exchange() {
    let (b1, b2) = (backend(), backend());
    let lb = balancer([b1.port(), b2.port()]);
    let mut b = Bridge::start(&lb.url("/mcp"), &[]);
    let answers = session(&mut b);
    assert_all_answered(&answers, &b);
    // A response stream cut after its priming event: the resumption GET (Last-Event-ID) must
    // reach the backend that holds the stream's events.
    b1.inject(Fault::CloseAfterPriming);
    let resumed = b.call(
        json!(10),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "resumed"}}),
    );
    assert_eq!(
        resumed["result"]["content"][0]["text"], "resumed",
        "{resumed}"
    );
    let resumption = b1
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.header("last-event-id").is_some())
        .expect("a resumption GET on backend 1");
    assert_eq!(resumption.header("cookie"), Some("route=b1"));
    wait_until("the listening stream", || {
        lb.routed().iter().any(|r| r.method == "GET")
    });
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(10)).unwrap().success());
    wait_until("the DELETE", || {
        lb.routed().iter().any(|r| r.method == "DELETE")
    });

    let routed = lb.routed();
    assert!(
        routed.iter().all(|r| r.backend == 0),
        "everything on backend 1: {routed:#?}"
    );
    assert!(b2.requests().is_empty());
    assert_eq!(initializes(&b1), 1, "one session, never re-initialized");
    let (first, rest) = routed.split_first().unwrap();
    assert_eq!(first.cookie, None, "the initialize POST had no cookie yet");
    for r in rest {
        assert_eq!(r.cookie.as_deref(), Some("route=b1"), "{r:?}");
    }
    for method in ["POST", "GET", "DELETE"] {
        assert!(
            rest.iter().any(|r| r.method == method),
            "{method} carried it"
        );
    }
}

#[test]
fn without_cookies_the_session_lands_on_the_other_backend_and_re_initializes() {
    for (flags, env) in [
        (vec!["--no-cookies"], vec![]),
        (vec![], vec![("MCP_REMOTE_NO_COOKIES", "yes")]),
    ] {
        let (b1, b2) = (backend(), backend());
        let lb = balancer([b1.port(), b2.port()]);
        let mut args = vec![lb.url("/mcp")];
        args.extend(mtls_args());
        args.extend(flags.iter().map(|s| s.to_string()));
        let mut b = Bridge::spawn(&args, &env);
        session(&mut b);
        b.close_stdin();
        let _ = b.wait_exit(Duration::from_secs(10));
        let routed = lb.routed();
        assert!(
            routed.iter().all(|r| r.cookie.is_none()),
            "no cookie sent back ({flags:?} {env:?}): {routed:#?}"
        );
        assert!(!b2.requests().is_empty(), "round-robin reached backend 2");
        assert!(
            initializes(&b1) + initializes(&b2) >= 2,
            "the session was lost and re-initialized ({flags:?} {env:?})"
        );
    }
}

#[test]
fn the_legacy_transport_keeps_its_backend_too() {
    let (b1, b2) = (backend(), backend());
    let lb = balancer([b1.port(), b2.port()]);
    let mut b = Bridge::start(&lb.url("/sse"), &["--transport", "sse-only"]);
    let answers = session(&mut b);
    assert_all_answered(&answers, &b);
    let routed = lb.routed();
    assert!(routed.iter().all(|r| r.backend == 0), "{routed:#?}");
    assert!(b2.requests().is_empty());
    let posts: Vec<&Routed> = routed.iter().filter(|r| r.method == "POST").collect();
    assert!(posts.len() >= 4, "{routed:#?}");
    for post in posts {
        assert!(post.path.starts_with("/message"), "{post:?}");
        assert_eq!(post.cookie.as_deref(), Some("route=b1"), "{post:?}");
    }
}

#[test]
fn the_test_client_keeps_its_backend_too() {
    let (b1, b2) = (backend(), backend());
    let lb = balancer([b1.port(), b2.port()]);
    let mut args = vec![lb.url("/mcp"), "--json".to_string()];
    args.extend(mtls_args());
    let out = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote-client"))
        .args(&args)
        .env_remove("RUST_LOG")
        .env_remove("MCP_REMOTE_NO_COOKIES")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["tools"]["items"][0]["name"], "echo", "{report}");
    let routed = lb.routed();
    assert!(routed.len() >= 3, "{routed:#?}");
    assert!(routed.iter().all(|r| r.backend == 0), "{routed:#?}");
    assert!(routed[1..]
        .iter()
        .all(|r| r.cookie.as_deref() == Some("route=b1")));
    assert_eq!(initializes(&b1), 1);
    assert!(b2.requests().is_empty());
}

#[test]
fn a_cookie_header_of_the_user_is_merged_with_the_kept_ones() {
    let (b1, b2) = (backend(), backend());
    let lb = balancer([b1.port(), b2.port()]);
    let mut b = Bridge::start(&lb.url("/mcp"), &["--header", "Cookie: mine=1"]);
    let answers = session(&mut b);
    assert_all_answered(&answers, &b);
    let routed = lb.routed();
    assert_eq!(routed[0].cookie.as_deref(), Some("mine=1"));
    for r in &routed[1..] {
        assert_eq!(
            r.cookie.as_deref(),
            Some("mine=1; route=b1"),
            "one Cookie header: {r:?}"
        );
    }
    assert!(b2.requests().is_empty());
}
