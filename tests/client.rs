//! The test client binary (`mcp-secure-remote-client`) against the real mTLS test server: what it
//! reports (TLS facts, transport, tools, pagination, absent capabilities), that `--json` says
//! the same, and its exit codes with the one-line diagnosis for each setup mistake.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::thread;

use serde_json::{json, Value};
use support::fixture;
use support::server::{Fault, ServerOptions, TestServer, SERVER_NAME};

const CLIENT: &str = env!("CARGO_BIN_EXE_mcp-secure-remote-client");

/// The test server's tools, in `tools/list` order.
const TOOLS: [&str; 12] = [
    "echo", "add", "slow", "big", "ask", "notify", "fail", "tool-1", "tool-2", "tool-3", "tool-4",
    "tool-5",
];

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

/// The client certificate and the CA that signed the server's.
fn mtls() -> Vec<String> {
    vec![
        "--tls-cert".into(),
        path("client-rsa.crt"),
        "--tls-key".into(),
        path("client-rsa.key"),
        "--tls-ca".into(),
        path("ca.crt"),
    ]
}

/// Run the client with `args`, without any MCP_REMOTE_* variable of the caller's environment.
fn run(args: &[String]) -> Output {
    let mut cmd = support::command(CLIENT);
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_REMOTE_") || name.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(name);
        }
    }
    cmd.output().expect("run mcp-secure-remote-client")
}

fn args(url: &str, flags: &[String], extra: &[&str]) -> Vec<String> {
    let mut all = vec![url.to_string()];
    all.extend(flags.iter().cloned());
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `--json` report, after checking the exit code.
fn json_report(url: &str, flags: &[String], extra: &[&str], code: i32) -> (Value, Output) {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let out = run(&args(url, flags, &extra));
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {}", stdout(&out)));
    (report, out)
}

/// The one-line diagnosis of a failed run (exit 1), from stderr.
fn diagnosis(url: &str, flags: &[String]) -> String {
    let out = run(&args(url, flags, &[]));
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    let errors: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("mcp-secure-remote-client: error: "))
        .map(str::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "one diagnosis line: {}", stderr(&out));
    errors[0].clone()
}

fn names(items: &Value, key: &str) -> Vec<String> {
    items["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not listed: {items}"))
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reports_tls_facts_server_and_tools() {
    let srv = TestServer::start(ServerOptions::default());
    let out = run(&args(&srv.url("/mcp"), &mtls(), &[]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));

    assert!(text.contains("protocol      TLSv1.3 ("), "{text}");
    assert!(
        text.contains("server cert   CN=localhost,O=mcp-secure-remote tests"),
        "{text}"
    );
    assert!(
        text.contains("names       DNS:localhost, IP:127.0.0.1, IP:::1"),
        "{text}"
    );
    assert!(
        text.contains("client cert   CN=mcp-test-client-rsa"),
        "{text}"
    );
    assert!(
        text.contains("Streamable HTTP (strategy http-first)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("name          {SERVER_NAME} ")),
        "{text}"
    );
    assert!(
        text.contains("capabilities  logging, prompts, resources, tools"),
        "{text}"
    );
    assert!(text.contains("\nTools: 12  (tools/list "), "{text}");
    assert!(text.contains("\n  echo    Returns its text\n"), "{text}");
    for tool in TOOLS {
        assert!(text.contains(&format!("\n  {tool} ")), "{tool} in {text}");
    }
    assert!(text.contains("\nResources: 1"), "{text}");
    assert!(text.contains("test://greeting/{name}"), "{text}");
    assert!(
        text.contains("greet  Greets someone (arguments: name)"),
        "{text}"
    );
    for step in [
        "initialize",
        "notifications/initialized",
        "prompts/list",
        "close",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {step} ")) && l.ends_with(" ms")),
            "{step} timed in {text}"
        );
    }
    assert!(text.ends_with("Result: OK\n"), "{text}");

    // The session was closed at the end.
    assert!(srv
        .wait_for_request(std::time::Duration::from_secs(2), |r| r.method == "DELETE")
        .is_some());
}

#[test]
fn json_report_has_the_same_content() {
    let srv = TestServer::start(ServerOptions::default());
    let (report, _) = json_report(&srv.url("/mcp"), &mtls(), &[], 0);
    assert_eq!(report["ok"], true);
    assert!(report.get("error").is_none());
    let tls = &report["tls"];
    assert_eq!(tls["status"], "handshake");
    assert_eq!(tls["protocol"], "TLSv1.3");
    assert_eq!(tls["server_name"], "127.0.0.1");
    assert_eq!(
        tls["server_certificate"]["subject"],
        "CN=localhost,O=mcp-secure-remote tests"
    );
    assert_eq!(
        tls["server_certificate"]["sans"],
        json!(["DNS:localhost", "IP:127.0.0.1", "IP:::1"])
    );
    assert_eq!(
        tls["client_certificate"]["subject"],
        "CN=mcp-test-client-rsa,O=mcp-secure-remote tests"
    );
    assert_eq!(report["transport"]["name"], "Streamable HTTP");
    assert_eq!(report["transport"]["fell_back"], false);
    assert_eq!(report["server"]["name"], SERVER_NAME);
    assert_eq!(report["server"]["protocol_version"], "2025-11-25");
    assert_eq!(names(&report["tools"], "name"), TOOLS);
    assert_eq!(names(&report["resources"], "uri"), ["test://hello"]);
    assert_eq!(
        names(&report["resource_templates"], "uriTemplate"),
        ["test://greeting/{name}"]
    );
    assert_eq!(names(&report["prompts"], "name"), ["greet"]);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["ms"].is_u64());
            s["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "prompts/list",
            "close"
        ]
    );

    // The human layout shows the same tools, in the same order.
    let text = stdout(&run(&args(&srv.url("/mcp"), &mtls(), &[])));
    let mut at = 0;
    for tool in TOOLS {
        let found = text[at..]
            .find(&format!("\n  {tool} "))
            .unwrap_or_else(|| panic!("{tool} after offset {at} in {text}"));
        at += found + 1;
    }
}

#[test]
fn follows_pagination_to_the_last_page() {
    let srv = TestServer::start(ServerOptions {
        page_size: Some(5),
        ..Default::default()
    });
    let (report, _) = json_report(&srv.url("/mcp"), &mtls(), &[], 0);
    assert_eq!(names(&report["tools"], "name"), TOOLS);
    assert_eq!(report["tools"]["pages"], 3);
    let cursors: Vec<Value> = srv
        .requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/list"))
        .map(|r| r.json().unwrap()["params"]["cursor"].clone())
        .collect();
    assert_eq!(cursors, [Value::Null, json!("page:5"), json!("page:10")]);
}

#[test]
fn a_server_without_prompts_shows_them_absent() {
    let fake = FakeServer::start(json!({"tools": {}}));
    let url = fake.url();
    let out = run(&args(&url, &[], &["--allow-http"]));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        text.contains("Prompts: absent (the server declares no prompts capability)"),
        "{text}"
    );
    assert!(text.contains("Resources: absent"), "{text}");
    assert!(text.contains("\n  only  The one tool\n"), "{text}");
    assert!(text.contains("not used: plain http:// URL"), "{text}");

    let (report, _) = json_report(&url, &[], &["--allow-http"], 0);
    assert_eq!(report["prompts"], json!({"status": "absent"}));
    assert_eq!(report["resources"], json!({"status": "absent"}));
    assert_eq!(report["tls"], json!({"status": "not_used"}));
    assert_eq!(report["server"]["capabilities"], json!(["tools"]));
    assert_eq!(
        fake.methods(),
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "initialize",
            "notifications/initialized",
            "tools/list"
        ],
        "absent capabilities are not asked for"
    );
}

#[test]
fn untrusted_server_ca_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut flags = mtls();
    flags[5] = path("rogue-ca.crt");
    let line = diagnosis(&srv.url("/mcp"), &flags);
    assert!(line.contains("initialize failed"), "{line}");
    assert!(line.contains("is not trusted"), "{line}");
    assert!(line.contains("rogue-ca.crt"), "{line}");
}

#[test]
fn refused_client_certificate_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut flags = mtls();
    flags[1] = path("rogue-client.crt");
    flags[3] = path("rogue-client.key");
    let line = diagnosis(&srv.url("/mcp"), &flags);
    assert!(line.contains("client certificate"), "{line}");
    assert!(
        line.contains("refused") || line.contains("rejected"),
        "{line}"
    );
}

#[test]
fn missing_client_certificate_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let line = diagnosis(&srv.url("/mcp"), &["--tls-ca".into(), path("ca.crt")]);
    assert!(line.contains("client certificate"), "{line}");
    assert!(line.contains("--tls-cert"), "{line}");
}

#[test]
fn hostname_mismatch_points_at_tls_servername() {
    let srv = TestServer::start(ServerOptions {
        server_cert: "server-internal.crt",
        server_key: "server-internal.key",
        ..Default::default()
    });
    let line = diagnosis(&srv.url("/mcp"), &mtls());
    assert!(line.contains("does not name 127.0.0.1"), "{line}");
    assert!(line.contains("--tls-servername"), "{line}");

    // With the override the same server checks out, and the report shows the name used.
    let (report, _) = json_report(
        &srv.url("/mcp"),
        &mtls(),
        &["--tls-servername", "mcp.internal.test"],
        0,
    );
    assert_eq!(report["tls"]["server_name"], "mcp.internal.test");
    assert_eq!(
        report["tls"]["server_certificate"]["sans"],
        json!(["DNS:mcp.internal.test"])
    );
}

#[test]
fn http_404_on_initialize_is_diagnosed() {
    let srv = TestServer::start(ServerOptions::default());
    let mut flags = mtls();
    flags.extend(["--transport".to_string(), "http-only".to_string()]);
    let line = diagnosis(&srv.url("/nowhere"), &flags);
    assert!(line.contains("initialize failed: HTTP 404"), "{line}");
}

#[test]
fn http_500_on_a_list_is_diagnosed_and_reported() {
    let srv = TestServer::start(ServerOptions::default());
    srv.inject(Fault::StatusFor {
        method: "tools/list",
        status: 500,
        content_type: "text/plain",
        body: "boom".into(),
    });
    let (report, out) = json_report(&srv.url("/mcp"), &mtls(), &[], 1);
    assert_eq!(report["ok"], false);
    assert_eq!(report["tools"]["status"], "failed");
    assert_eq!(report["resources"]["status"], "not_reached");
    assert_eq!(report["server"]["name"], SERVER_NAME);
    let line = stderr(&out);
    assert!(
        line.contains("error: tools/list failed: HTTP 500"),
        "{line}"
    );
    assert!(report["error"].as_str().unwrap().contains("HTTP 500"));
}

#[test]
fn connect_timeout_is_diagnosed() {
    // Accepts connections and never says a word: the TLS handshake waits for the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/mcp",
        silent.local_addr().unwrap().port()
    );
    let holder = thread::spawn(move || {
        let held: Vec<TcpStream> = silent.incoming().take(1).flatten().collect();
        thread::sleep(std::time::Duration::from_secs(3));
        drop(held);
    });
    let mut flags = mtls();
    flags.extend(["--connect-timeout".to_string(), "1".to_string()]);
    let line = diagnosis(&url, &flags);
    assert!(line.contains("timed out"), "{line}");
    assert!(line.contains("--connect-timeout"), "{line}");
    holder.join().unwrap();
}

#[test]
fn falls_back_to_legacy_sse_and_says_so() {
    let srv = TestServer::start(ServerOptions {
        streamable: false,
        ..Default::default()
    });
    let (report, _) = json_report(&srv.url("/sse"), &mtls(), &[], 0);
    assert_eq!(report["transport"]["name"], "legacy HTTP+SSE");
    assert_eq!(report["transport"]["fell_back"], true);
    assert_eq!(names(&report["tools"], "name"), TOOLS);
    let text = stdout(&run(&args(&srv.url("/sse"), &mtls(), &[])));
    assert!(
        text.contains("legacy HTTP+SSE (strategy http-first: fell back from Streamable HTTP)"),
        "{text}"
    );
}

#[test]
fn debug_traces_every_message_on_stderr() {
    let srv = TestServer::start(ServerOptions::default());
    let out = run(&args(&srv.url("/mcp"), &mtls(), &["--debug"]));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    for method in ["initialize", "notifications/initialized", "tools/list"] {
        assert!(
            err.lines()
                .any(|l| l.contains("client → server: ") && l.contains(method)),
            "{method} traced in {err}"
        );
    }
    assert!(err.contains("server → client: "), "{err}");
    assert!(
        !stdout(&out).contains("client → server"),
        "traces stay off stdout"
    );
}

#[test]
fn usage_errors_exit_2_and_help_mentions_json() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing <server-url>"));
    let out = run(&["https://127.0.0.1:1/mcp".into(), "--bogus".into()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--help".into()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--json"));
}

/// A minimal plain-HTTP MCP server with the capabilities it is given: stateless Streamable
/// HTTP with JSON answers. The test server always declares every capability; this one need not.
struct FakeServer {
    port: u16,
    methods: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeServer {
    fn start(capabilities: Value) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let methods = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&methods);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (caps, seen) = (capabilities.clone(), std::sync::Arc::clone(&seen));
                thread::spawn(move || serve(conn, &caps, &seen));
            }
        });
        FakeServer { port, methods }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn methods(&self) -> Vec<String> {
        self.methods.lock().unwrap().clone()
    }
}

/// Serve HTTP/1.1 requests on one keep-alive connection until the client closes it.
fn serve(conn: TcpStream, capabilities: &Value, seen: &std::sync::Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, answer) = if request_line.starts_with("POST ") {
            let message: Value = serde_json::from_slice(&body).unwrap();
            let method = message["method"].as_str().unwrap_or_default().to_string();
            seen.lock().unwrap().push(method.clone());
            let result = match method.as_str() {
                "initialize" => Some(json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": capabilities,
                    "serverInfo": {"name": "fake", "version": "0.0.1"},
                })),
                "tools/list" => {
                    Some(json!({"tools": [{"name": "only", "description": "The one tool"}]}))
                }
                _ => None,
            };
            match (message.get("id"), result) {
                (Some(id), Some(result)) => (
                    "200 OK",
                    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
                ),
                (Some(id), None) => (
                    "200 OK",
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
                        .to_string(),
                ),
                (None, _) => ("202 Accepted", String::new()),
            }
        } else {
            ("405 Method Not Allowed", String::new())
        };
        let content_type = if answer.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        let head = format!(
            "HTTP/1.1 {status}\r\n{content_type}Content-Length: {}\r\n\r\n",
            answer.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
    }
}
