//! Tests of the test server itself, driven by a tiny hand-written HTTP/1.1 client over rustls, so
//! that the bridge's tests can trust what the server does.

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};

use support::fixture;
use support::server::{Fault, GetStream, ServerOptions, TestServer, TlsMode};

const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");

// ---- a minimal client --------------------------------------------------------------------------

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn tls_config(client_cert: Option<&str>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(fixture("ca.crt")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client_cert {
        Some(name) => {
            let certs = CertificateDer::pem_file_iter(fixture(&format!("{name}.crt")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(fixture(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// An HTTP/1.1 connection to the test server.
struct Client {
    stream: Box<dyn Stream>,
    /// The socket under `stream`, for read timeouts.
    sock: TcpStream,
    buf: Vec<u8>,
}

/// A response head.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn chunked(&self) -> bool {
        self.header("transfer-encoding") == Some("chunked")
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry: Option<u64>,
}

impl Client {
    fn connect(server: &TestServer) -> Client {
        Client::connect_as(server, Some("client-rsa")).unwrap()
    }

    fn connect_as(server: &TestServer, client_cert: Option<&str>) -> io::Result<Client> {
        let sock = TcpStream::connect(("127.0.0.1", server.port()))?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        let sock_clone = sock.try_clone()?;
        let stream: Box<dyn Stream> = if server.options().tls == TlsMode::PlainHttp {
            Box::new(sock)
        } else {
            let name = ServerName::try_from("localhost").unwrap();
            let conn = ClientConnection::new(tls_config(client_cert), name).unwrap();
            Box::new(StreamOwned::new(conn, sock))
        };
        Ok(Client {
            stream,
            sock: sock_clone,
            buf: Vec::new(),
        })
    }

    fn read_timeout(&self, timeout: Duration) {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn head(&mut self) -> io::Result<Head> {
        let status_line = self.line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                return Ok(Head { status, headers });
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
        }
    }

    /// The next chunk of a chunked body; `None` at its end.
    fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let size = usize::from_str_radix(self.line()?.trim(), 16).unwrap();
        if size == 0 {
            self.line()?;
            return Ok(None);
        }
        let data = self.exact(size)?;
        self.exact(2)?;
        Ok(Some(data))
    }

    /// A whole (fixed-length or chunked) body.
    fn body(&mut self, head: &Head) -> io::Result<Vec<u8>> {
        if head.chunked() {
            let mut body = Vec::new();
            while let Some(chunk) = self.chunk()? {
                body.extend(chunk);
            }
            return Ok(body);
        }
        let len = head
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        self.exact(len)
    }

    /// The next SSE event of a chunked stream (each event arrives in its own chunk); `None` at end.
    fn event(&mut self) -> io::Result<Option<Event>> {
        Ok(self
            .chunk()?
            .map(|c| parse_event(&String::from_utf8(c).unwrap())))
    }

    /// POSTs a JSON-RPC message to `/mcp` and returns the head and whole body.
    fn post(
        &mut self,
        session: Option<&str>,
        version: Option<&str>,
        message: &Value,
    ) -> (Head, Vec<u8>) {
        let mut headers = vec![ACCEPT_BOTH];
        if let Some(s) = session {
            headers.push(("Mcp-Session-Id", s));
        }
        if let Some(v) = version {
            headers.push(("MCP-Protocol-Version", v));
        }
        self.send("POST", "/mcp", &headers, &message.to_string())
            .unwrap();
        let head = self.head().unwrap();
        let body = self.body(&head).unwrap();
        (head, body)
    }
}

fn parse_event(text: &str) -> Event {
    let mut event = Event {
        id: None,
        event: None,
        data: String::new(),
        retry: None,
    };
    let mut data = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_string()),
            "event" => event.event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            "retry" => event.retry = value.parse().ok(),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}

/// The JSON messages of a complete SSE body, skipping data-less (priming) events.
fn sse_messages(body: &[u8]) -> Vec<Value> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(parse_event)
        .filter(|e| !e.data.is_empty())
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

fn initialize_request(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "selftest", "version": "0"}}})
}

/// Runs the handshake; returns the session id.
fn handshake(client: &mut Client) -> String {
    let (head, _) = client.post(None, None, &initialize_request("2025-11-25"));
    assert_eq!(head.status, 200);
    let session = head.header("mcp-session-id").unwrap().to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (head, _) = client.post(Some(&session), Some("2025-11-25"), &initialized);
    assert_eq!(head.status, 202);
    session
}

fn echo_call(id: u64, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": text}}})
}

// ---- the tests ---------------------------------------------------------------------------------

#[test]
fn handshake_refused_without_client_cert() {
    let server = TestServer::start(ServerOptions::default());
    for cert in [None, Some("rogue-client"), Some("client-expired")] {
        let mut client = Client::connect_as(&server, cert).unwrap();
        // TLS 1.3: the client's handshake "completes" before the server judges the certificate,
        // so the refusal shows up on the first read (an alert or EOF), never as an HTTP response.
        let sent = client.send("GET", "/sse", &[], "");
        let answer = sent.and_then(|()| client.head());
        assert!(answer.is_err(), "{cert:?}: got an HTTP response");
    }
    assert_eq!(server.handshakes(), 0);
    assert!(server.requests().is_empty());
}

#[test]
fn initialize_gives_session_and_echoes_version() {
    let server = TestServer::start(ServerOptions::default());
    let mut client = Client::connect(&server);
    let (head, body) = client.post(None, None, &initialize_request("2025-06-18"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let session = head.header("mcp-session-id").unwrap();
    assert!(session.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    let messages = sse_messages(&body);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], 0);
    assert_eq!(messages[0]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        messages[0]["result"]["serverInfo"]["name"],
        "mcp-secure-remote-test-server"
    );
    let recorded = &server.requests()[0];
    assert_eq!(recorded.rpc_method().as_deref(), Some("initialize"));
    assert_eq!(
        recorded.client_cert_cn.as_deref(),
        Some("mcp-test-client-rsa")
    );
}

#[test]
fn echo_over_sse_with_priming_and_keep_alive() {
    let server = TestServer::start(ServerOptions {
        retry_ms: Some(500),
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);
    let (head, body) = client.post(Some(&session), Some("2025-11-25"), &echo_call(7, "hi"));
    assert_eq!(head.status, 200);
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.starts_with("id: "), "priming first: {text:?}");
    assert!(text.contains("retry: 500\n"));
    let messages = sse_messages(&body);
    assert_eq!(
        messages,
        vec![
            json!({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "hi"}]}})
        ]
    );
    assert_eq!(
        server.handshakes(),
        1,
        "all requests on one kept-alive connection"
    );
}

#[test]
fn echo_as_json_with_crlf_off() {
    let server = TestServer::start(ServerOptions {
        json_response: true,
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);
    let (head, body) = client.post(Some(&session), Some("2025-11-25"), &echo_call(1, "json"));
    assert_eq!(head.header("content-type"), Some("application/json"));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "json");
}

#[test]
fn notification_gets_202_and_checks_reject_bad_requests() {
    let server = TestServer::start(ServerOptions::default());
    let mut client = Client::connect(&server);
    let (head, _) = client.post(None, None, &initialize_request("2025-11-25"));
    let session = head.header("mcp-session-id").unwrap().to_string();
    // A request that overtakes notifications/initialized is rejected.
    let (head, body) = client.post(Some(&session), Some("2025-11-25"), &echo_call(1, "early"));
    assert_eq!(head.status, 400);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["id"], 1);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (head, body) = client.post(Some(&session), Some("2025-11-25"), &initialized);
    assert_eq!((head.status, body.len()), (202, 0));
    // Missing version header, wrong version, unknown session, no session.
    assert_eq!(
        client
            .post(Some(&session), None, &echo_call(2, "x"))
            .0
            .status,
        400
    );
    assert_eq!(
        client
            .post(Some(&session), Some("2025-03-26"), &echo_call(3, "x"))
            .0
            .status,
        400
    );
    assert_eq!(
        client
            .post(Some("nope"), Some("2025-11-25"), &echo_call(4, "x"))
            .0
            .status,
        404
    );
    assert_eq!(
        client
            .post(None, Some("2025-11-25"), &echo_call(5, "x"))
            .0
            .status,
        400
    );
    // Accept must list both types; Origin is refused.
    client
        .send(
            "POST",
            "/mcp",
            &[("Accept", "application/json")],
            &echo_call(6, "x").to_string(),
        )
        .unwrap();
    let head = client.head().unwrap();
    client.body(&head).unwrap();
    assert_eq!(head.status, 406);
    client
        .send(
            "POST",
            "/mcp",
            &[ACCEPT_BOTH, ("Origin", "https://evil.example")],
            &echo_call(7, "x").to_string(),
        )
        .unwrap();
    let head = client.head().unwrap();
    client.body(&head).unwrap();
    assert_eq!(head.status, 403);
    // The TypeScript-style answer to a modern discover probe.
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}});
    let (head, body) = client.post(None, None, &discover);
    assert_eq!(head.status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["id"], Value::Null);
    assert_eq!(
        body["error"]["message"],
        "Bad Request: Server not initialized"
    );
}

#[test]
fn second_get_stream_conflicts_and_notify_arrives_on_first() {
    let server = TestServer::start(ServerOptions::default());
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);
    let get_headers = [
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let mut listener = Client::connect(&server);
    listener.send("GET", "/mcp", &get_headers, "").unwrap();
    let head = listener.head().unwrap();
    assert_eq!(head.status, 200);
    let priming = listener.event().unwrap().unwrap();
    assert_eq!(priming.data, "");

    let mut second = Client::connect(&server);
    second.send("GET", "/mcp", &get_headers, "").unwrap();
    let head = second.head().unwrap();
    assert_eq!(head.status, 409);

    let notify = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "notify", "arguments": {}}});
    let (_, body) = client.post(Some(&session), Some("2025-11-25"), &notify);
    assert_eq!(
        sse_messages(&body)[0]["result"]["content"][0]["text"],
        "notified"
    );
    let event = listener.event().unwrap().unwrap();
    let message: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(message["method"], "notifications/message");

    // DELETE ends the session and its stream.
    client
        .send("DELETE", "/mcp", &get_headers[1..], "")
        .unwrap();
    let head = client.head().unwrap();
    client.body(&head).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(listener.event().unwrap(), None);
    assert!(server.active_sessions().is_empty());
}

#[test]
fn get_status_knob() {
    let server = TestServer::start(ServerOptions {
        get_stream: GetStream::Status(405),
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    client
        .send("GET", "/mcp", &[("Accept", "text/event-stream")], "")
        .unwrap();
    assert_eq!(client.head().unwrap().status, 405);
}

#[test]
fn legacy_endpoint_event_then_responses_on_stream() {
    let server = TestServer::start(ServerOptions {
        crlf: true,
        ..ServerOptions::default()
    });
    let mut stream = Client::connect(&server);
    stream
        .send("GET", "/sse", &[("Accept", "text/event-stream")], "")
        .unwrap();
    assert_eq!(stream.head().unwrap().status, 200);
    let endpoint = stream.event().unwrap().unwrap();
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(
        endpoint.data.starts_with("/message?sessionId="),
        "{endpoint:?}"
    );

    let mut poster = Client::connect(&server);
    poster
        .send(
            "POST",
            &endpoint.data,
            &[],
            &initialize_request("2024-11-05").to_string(),
        )
        .unwrap();
    let head = poster.head().unwrap();
    assert_eq!(
        (head.status, poster.body(&head).unwrap()),
        (202, b"Accepted".to_vec())
    );
    let event = stream.event().unwrap().unwrap();
    assert_eq!(event.event.as_deref(), Some("message"));
    let message: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(message["result"]["protocolVersion"], "2024-11-05");

    poster
        .send("POST", "/message?sessionId=unknown", &[], "{}")
        .unwrap();
    assert_eq!(poster.head().unwrap().status, 404);
}

#[test]
fn close_after_priming_then_resume_delivers_response_once() {
    let server = TestServer::start(ServerOptions {
        retry_ms: Some(100),
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);
    server.inject(Fault::CloseAfterPriming);
    let (head, body) = client.post(Some(&session), Some("2025-11-25"), &echo_call(3, "later"));
    assert_eq!(head.status, 200);
    let priming = parse_event(&String::from_utf8(body).unwrap());
    assert_eq!((priming.data.as_str(), priming.retry), ("", Some(100)));
    let last_event_id = priming.id.unwrap();

    let mut resumer = Client::connect(&server);
    let headers = [
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Last-Event-ID", last_event_id.as_str()),
    ];
    resumer.send("GET", "/mcp", &headers, "").unwrap();
    assert_eq!(resumer.head().unwrap().status, 200);
    let event = resumer.event().unwrap().unwrap();
    let message: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(message["id"], 3);
    assert_eq!(message["result"]["content"][0]["text"], "later");
    // Nothing else follows: the response was delivered exactly once.
    resumer.read_timeout(Duration::from_millis(200));
    assert!(resumer.event().is_err());
}

#[test]
fn ask_round_trip_and_pagination() {
    let server = TestServer::start(ServerOptions {
        page_size: Some(5),
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);

    let list = |client: &mut Client, cursor: Option<&str>| {
        let params = cursor.map_or(json!({}), |c| json!({"cursor": c}));
        let request = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/list", "params": params});
        let (_, body) = client.post(Some(&session), Some("2025-11-25"), &request);
        sse_messages(&body).remove(0)["result"].clone()
    };
    let mut pages = vec![list(&mut client, None)];
    while let Some(cursor) = pages.last().unwrap()["nextCursor"]
        .as_str()
        .map(str::to_string)
    {
        pages.push(list(&mut client, Some(&cursor)));
    }
    assert!(pages.len() >= 2);

    let ask = json!({"jsonrpc": "2.0", "id": 30, "method": "tools/call", "params": {"name": "ask", "arguments": {}}});
    client
        .send(
            "POST",
            "/mcp",
            &[
                ACCEPT_BOTH,
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            &ask.to_string(),
        )
        .unwrap();
    assert_eq!(client.head().unwrap().status, 200);
    let _priming = client.event().unwrap().unwrap();
    let request: Value = serde_json::from_str(&client.event().unwrap().unwrap().data).unwrap();
    assert_eq!(request["method"], "elicitation/create");
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"confirm": true}}});
    let mut other = Client::connect(&server);
    let (head, _) = other.post(Some(&session), Some("2025-11-25"), &answer);
    assert_eq!(head.status, 202);
    let reply: Value = serde_json::from_str(&client.event().unwrap().unwrap().data).unwrap();
    let text: Value =
        serde_json::from_str(reply["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["action"], "accept");
    assert_eq!(client.event().unwrap(), None);
}

#[test]
fn malformed_http_gets_400_and_stop_joins_idle_connections() {
    let server = TestServer::start(ServerOptions::default());
    let mut client = Client::connect(&server);
    client.stream.write_all(b"NONSENSE\r\n\r\n").unwrap();
    assert_eq!(client.head().unwrap().status, 400);
    let _idle = Client::connect(&server);
    let mut streaming = Client::connect(&server);
    streaming.send("GET", "/sse", &[], "").unwrap();
    streaming.head().unwrap();
    let started = std::time::Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn ec_client_cert_plain_http_and_tls12_modes() {
    for tls in [
        TlsMode::RequireClientCert,
        TlsMode::Tls12Only,
        TlsMode::PlainHttp,
        TlsMode::OptionalClientCert,
    ] {
        let server = TestServer::start(ServerOptions {
            tls,
            ..ServerOptions::default()
        });
        let cert = if tls == TlsMode::OptionalClientCert {
            None
        } else {
            Some("client-ec")
        };
        let mut client = Client::connect_as(&server, cert).unwrap();
        let (head, _) = client.post(None, None, &initialize_request("2025-11-25"));
        assert_eq!(head.status, 200, "{tls:?}");
        let expected_cn = match tls {
            TlsMode::PlainHttp | TlsMode::OptionalClientCert => None,
            _ => Some("mcp-test-client-ec"),
        };
        assert_eq!(
            server.requests()[0].client_cert_cn.as_deref(),
            expected_cn,
            "{tls:?}"
        );
        assert!(server
            .url("/mcp")
            .starts_with(if tls == TlsMode::PlainHttp {
                "http://"
            } else {
                "https://"
            }));
    }
}

#[test]
fn faults_status_drop_and_expiry() {
    let server = TestServer::start(ServerOptions::default());
    let mut client = Client::connect(&server);
    let session = handshake(&mut client);
    let v = Some("2025-11-25");

    server.inject(Fault::Status {
        status: 503,
        content_type: "text/plain",
        body: "overloaded".into(),
    });
    let (head, body) = client.post(Some(&session), v, &echo_call(1, "x"));
    assert_eq!((head.status, body), (503, b"overloaded".to_vec()));

    server.inject(Fault::DropConnection);
    client
        .send(
            "POST",
            "/mcp",
            &[
                ACCEPT_BOTH,
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            &echo_call(2, "x").to_string(),
        )
        .unwrap();
    assert!(client.head().is_err());

    let mut client = Client::connect(&server);
    server.inject(Fault::ExpireSessions);
    assert_eq!(
        client.post(Some(&session), v, &echo_call(3, "x")).0.status,
        404
    );
    assert_eq!(server.handshakes(), 2);
}

#[test]
fn typescript_flavour_unknown_session_400_and_status_for_notification() {
    let server = TestServer::start(ServerOptions {
        unknown_session_status: 400,
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    server.inject(Fault::StatusFor {
        method: "notifications/initialized",
        status: 500,
        content_type: "application/json",
        body: "{}".into(),
    });
    let (head, _) = client.post(None, None, &initialize_request("2025-11-25"));
    let session = head.header("mcp-session-id").unwrap().to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        client
            .post(Some(&session), Some("2025-11-25"), &initialized)
            .0
            .status,
        500
    );
    assert_eq!(
        client
            .post(Some("gone"), Some("2025-11-25"), &echo_call(1, "x"))
            .0
            .status,
        400
    );
}

#[test]
fn redirect_slash_and_streamable_off() {
    let server = TestServer::start(ServerOptions {
        redirect_slash: true,
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let (head, _) = client.post(None, None, &initialize_request("2025-11-25"));
    assert_eq!(head.status, 307);
    assert_eq!(head.header("location"), Some("https://127.0.0.1/mcp/"));
    client
        .send(
            "POST",
            "/mcp/",
            &[ACCEPT_BOTH],
            &initialize_request("2025-11-25").to_string(),
        )
        .unwrap();
    let head = client.head().unwrap();
    client.body(&head).unwrap();
    assert_eq!(head.status, 200);

    let server = TestServer::start(ServerOptions {
        streamable: false,
        streamable_off_status: 404,
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    assert_eq!(
        client
            .post(None, None, &initialize_request("2025-11-25"))
            .0
            .status,
        404
    );
    client
        .send("GET", "/mcp", &[("Accept", "text/event-stream")], "")
        .unwrap();
    assert_eq!(client.head().unwrap().status, 200);
    assert_eq!(
        client.event().unwrap().unwrap().event.as_deref(),
        Some("endpoint")
    );
}

#[test]
fn chunked_request_body_and_progress_on_post_stream() {
    let server = TestServer::start(ServerOptions {
        negotiate_version: Some("2025-03-26"),
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let (head, body) = client.post(None, None, &initialize_request("2025-11-25"));
    assert_eq!(
        sse_messages(&body)[0]["result"]["protocolVersion"],
        "2025-03-26"
    );
    let session = head.header("mcp-session-id").unwrap().to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    // 2025-03-26 has no version header; send this one chunked.
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMcp-Session-Id: {session}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n3\r\n   \r\n0\r\n\r\n",
        initialized.len(),
        initialized
    );
    client.stream.write_all(head.as_bytes()).unwrap();
    let head = client.head().unwrap();
    client.body(&head).unwrap();
    assert_eq!(head.status, 202);

    let slow = json!({"jsonrpc": "2.0", "id": "s", "method": "tools/call", "params": {
        "name": "slow", "arguments": {"ms": 30, "steps": 3}, "_meta": {"progressToken": "p"}}});
    let (_, body) = client.post(Some(&session), None, &slow);
    let messages = sse_messages(&body);
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2]["params"]["progress"], 3);
    assert_eq!(messages[3]["result"]["content"][0]["text"], "slow done");

    let big = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "big", "arguments": {"bytes": 100000}}});
    let (_, body) = client.post(Some(&session), None, &big);
    let text = sse_messages(&body)[0]["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(text, support::server::big_text(100_000));
}

#[test]
fn end_get_streams_then_resume_listening_stream() {
    let server = TestServer::start(ServerOptions {
        discover: support::server::DiscoverMode::MethodNotFound,
        ..ServerOptions::default()
    });
    let mut client = Client::connect(&server);
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}});
    let (head, body) = client.post(None, None, &discover);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            head.status,
            body["id"].clone(),
            body["error"]["code"].clone()
        ),
        (200, json!(1), json!(-32601))
    );

    let session = handshake(&mut client);
    let mut get_headers = vec![
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let mut listener = Client::connect(&server);
    listener.send("GET", "/mcp", &get_headers, "").unwrap();
    assert_eq!(listener.head().unwrap().status, 200);
    let priming = listener.event().unwrap().unwrap();
    server.inject(Fault::EndGetStreams);
    assert_eq!(listener.event().unwrap(), None);

    let last = priming.id.unwrap();
    get_headers.push(("Last-Event-ID", &last));
    listener.send("GET", "/mcp", &get_headers, "").unwrap();
    assert_eq!(listener.head().unwrap().status, 200);
    let notify = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "notify", "arguments": {}}});
    client.post(Some(&session), Some("2025-11-25"), &notify);
    let event = listener.event().unwrap().unwrap();
    assert!(event.data.contains("notifications/message"));
    assert_ne!(event.id, Some(last));
}

#[test]
fn restarts_on_the_same_port() {
    let server = TestServer::start(ServerOptions::default());
    let port = server.port();
    let mut client = Client::connect(&server);
    assert_eq!(
        client
            .post(None, None, &initialize_request("2025-11-25"))
            .0
            .status,
        200
    );
    server.stop();
    assert!(client.head().is_err(), "connection closed by stop()");

    let server = TestServer::start_on(port, ServerOptions::default());
    assert_eq!(server.url("/mcp"), format!("https://127.0.0.1:{port}/mcp"));
    let mut client = Client::connect(&server);
    assert_eq!(
        client
            .post(None, None, &initialize_request("2025-11-25"))
            .0
            .status,
        200
    );
}
