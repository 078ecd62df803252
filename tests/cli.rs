//! The command-line contract of `mcp-secure-remote`, checked on the real binary: every flag, every
//! `MCP_REMOTE_TLS_*` variable, the parameter rules and their exit codes (0 success, 1 runtime error,
//! 2 usage error), the warnings, and that stdout carries nothing but JSON-RPC lines.
//!
//! The binary runs with a cleared environment (only what a test sets), and against 127.0.0.1 ports
//! where nothing listens: with an empty stdin the bridge has nothing to send and exits 0 at EOF.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-secure-remote");

/// The passphrase of the encrypted fixtures (fixtures/README.md).
const FIXTURE_PASS: &str = "fixture-pass";

/// Long enough for a loaded CI machine; a hang beyond it is a failure, not a stuck test run.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every flag of the original product's parameter tables, plus ours (`--connect-timeout`).
const ALL_FLAGS: &[&str] = &[
    "--header",
    "--transport",
    "--allow-http",
    "--connect-timeout",
    "--debug",
    "--version",
    "-h",
    "--help",
    "--tls-cert",
    "--tls-key",
    "--tls-ca",
    "--tls-pfx",
    "--tls-passphrase",
    "--tls-servername",
    "--tls-min-version",
    "--tls-insecure-skip-verify",
    "--tls-no-verify",
];

const ALL_ENV_VARS: &[&str] = &[
    "MCP_REMOTE_TLS_CERT",
    "MCP_REMOTE_TLS_KEY",
    "MCP_REMOTE_TLS_CA",
    "MCP_REMOTE_TLS_PFX",
    "MCP_REMOTE_TLS_PASSPHRASE",
    "MCP_REMOTE_TLS_SERVERNAME",
    "MCP_REMOTE_TLS_MIN_VERSION",
    "MCP_REMOTE_TLS_INSECURE",
];

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A 127.0.0.1 port that was free a moment ago: connections to it are refused.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn unreachable_https_url() -> String {
    format!("https://127.0.0.1:{}/mcp", closed_port())
}

/// What one run of the binary produced.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// One invocation: arguments, environment (on top of an empty one) and stdin.
struct Invocation {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: String,
}

fn proxy<I, S>(args: I) -> Invocation
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Invocation {
        args: args.into_iter().map(Into::into).collect(),
        env: Vec::new(),
        stdin: String::new(),
    }
}

impl Invocation {
    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn stdin(mut self, text: &str) -> Self {
        self.stdin = text.to_string();
        self
    }

    /// Run to completion (killed after [`RUN_TIMEOUT`]), then check the stdout invariant that
    /// holds in every case but --help/--version: only JSON-RPC lines.
    fn run(self) -> Outcome {
        let outcome = self.run_raw();
        assert_stdout_is_json_rpc_lines(&outcome);
        outcome
    }

    fn run_raw(self) -> Outcome {
        let mut child = support::command(BIN)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = self.stdin;
        // A writer thread: the binary may exit (usage error) before reading, and a full pipe must
        // not block the test.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let stdout = read_in_background(child.stdout.take().unwrap());
        let stderr = read_in_background(child.stderr.take().unwrap());
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{BIN} {:?} did not exit within {RUN_TIMEOUT:?}", self.args);
            }
            thread::sleep(Duration::from_millis(10));
        };
        writer.join().unwrap();
        Outcome {
            code: status.code().expect("killed by a signal"),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    })
}

/// stdout belongs to the MCP client: anything but a JSON-RPC message there breaks its parser.
fn assert_stdout_is_json_rpc_lines(outcome: &Outcome) {
    for line in outcome.stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}\n{outcome:#?}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC: {line}");
    }
}

/// Exit 2, nothing on stdout, one line on stderr that points at --help and says each `needle`.
fn assert_usage_error(outcome: &Outcome, needles: &[&str]) {
    assert_eq!(outcome.code, 2, "{outcome:#?}");
    assert_eq!(outcome.stdout, "", "{outcome:#?}");
    assert_eq!(
        outcome.stderr.lines().count(),
        1,
        "usage errors are one line: {outcome:#?}"
    );
    assert!(outcome.stderr.contains("--help"), "{outcome:#?}");
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "no {needle:?} in {outcome:#?}"
        );
    }
}

/// Exit 1, nothing on stdout, and stderr says each `needle`.
fn assert_runtime_error(outcome: &Outcome, needles: &[&str]) {
    assert_eq!(outcome.code, 1, "{outcome:#?}");
    assert_eq!(outcome.stdout, "", "{outcome:#?}");
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "no {needle:?} in {outcome:#?}"
        );
    }
}

/// Exit 0 at EOF of an empty stdin, nothing on stdout.
fn assert_ran_and_exited_cleanly(outcome: &Outcome) {
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(outcome.stdout, "", "{outcome:#?}");
}

// ---- --help and --version ----

#[test]
fn help_lists_every_flag_and_environment_variable() {
    for flag in ["--help", "-h"] {
        let outcome = proxy([flag]).run_raw();
        assert_eq!(outcome.code, 0, "{outcome:#?}");
        assert_eq!(outcome.stderr, "", "{outcome:#?}");
        assert!(outcome
            .stdout
            .contains("Usage: mcp-secure-remote <server-url>"));
        for needle in ALL_FLAGS.iter().chain(ALL_ENV_VARS) {
            assert!(
                outcome.stdout.contains(needle),
                "{flag} does not mention {needle}"
            );
        }
    }
}

#[test]
fn help_wins_over_a_missing_url_and_other_flags() {
    let outcome = proxy(["--tls-cert", "only-a-cert.crt", "--help"]).run_raw();
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert!(outcome.stdout.contains("Usage:"));
}

#[test]
fn version_prints_the_crate_version() {
    let outcome = proxy(["--version"]).run_raw();
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    assert_eq!(
        outcome.stdout,
        format!("mcp-secure-remote {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(outcome.stderr, "");
}

// ---- usage errors: exit 2 ----

#[test]
fn unknown_flag_exits_2_naming_it_and_pointing_at_help() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-certificate", "x"]).run();
    assert_usage_error(&outcome, &["unknown flag --tls-certificate"]);
    let outcome = proxy(["https://127.0.0.1/mcp", "-x"]).run();
    assert_usage_error(&outcome, &["-x"]);
}

#[test]
fn boolean_flag_given_a_value_exits_2() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--allow-http=yes"]).run();
    assert_usage_error(&outcome, &["--allow-http"]);
}

#[test]
fn flag_without_its_value_exits_2() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-cert"]).run();
    assert_usage_error(&outcome, &["--tls-cert needs a file path"]);
}

#[test]
fn missing_url_exits_2() {
    let outcome = proxy(Vec::<String>::new()).run();
    assert_usage_error(&outcome, &["missing <server-url>"]);
    let outcome = proxy(["--tls-insecure-skip-verify"]).run();
    assert_usage_error(&outcome, &["missing <server-url>"]);
}

#[test]
fn second_url_exits_2() {
    let outcome = proxy(["https://a.example/mcp", "https://b.example/mcp"]).run();
    assert_usage_error(
        &outcome,
        &["https://b.example/mcp", "only one <server-url>"],
    );
}

#[test]
fn malformed_url_exits_2() {
    for url in [
        "mcp.example.com/mcp",
        "ftp://mcp.example.com/",
        "https://",
        "https://user:pw@mcp.example.com/",
        "https://mcp.example.com:99999/",
        "https://mcp.example.com/a b",
    ] {
        let outcome = proxy([url]).run();
        assert_usage_error(&outcome, &["<server-url>", "not a valid URL"]);
    }
}

#[test]
fn plain_http_url_needs_allow_http() {
    let outcome = proxy(["http://127.0.0.1:1/mcp"]).run();
    assert_usage_error(&outcome, &["http://127.0.0.1:1/mcp", "--allow-http"]);
}

#[test]
fn unknown_transport_exits_2_listing_the_choices() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--transport", "websocket"]).run();
    assert_usage_error(
        &outcome,
        &[
            "--transport",
            "websocket",
            "http-first",
            "sse-first",
            "http-only",
            "sse-only",
        ],
    );
}

#[test]
fn tls_min_version_other_than_1_2_or_1_3_exits_2() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-min-version", "TLSv1.1"]).run();
    assert_usage_error(&outcome, &["--tls-min-version", "TLSv1.1"]);
    let outcome = proxy(["https://127.0.0.1/mcp"])
        .env("MCP_REMOTE_TLS_MIN_VERSION", "1.0")
        .run();
    assert_usage_error(&outcome, &["MCP_REMOTE_TLS_MIN_VERSION", "1.0"]);
}

#[test]
fn insecure_variable_that_is_not_a_boolean_exits_2() {
    let outcome = proxy(["https://127.0.0.1/mcp"])
        .env("MCP_REMOTE_TLS_INSECURE", "maybe")
        .run();
    assert_usage_error(&outcome, &["MCP_REMOTE_TLS_INSECURE", "maybe"]);
}

#[test]
fn invalid_servername_exits_2_naming_where_it_came_from() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-servername", "not a name"]).run();
    assert_usage_error(&outcome, &["--tls-servername", "not a name"]);
    let outcome = proxy(["https://127.0.0.1/mcp"])
        .env("MCP_REMOTE_TLS_SERVERNAME", "not a name")
        .run();
    assert_usage_error(&outcome, &["MCP_REMOTE_TLS_SERVERNAME", "not a name"]);
}

#[test]
fn cert_without_key_exits_2() {
    let cert = fixture("client-rsa.crt");
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-cert", &cert]).run();
    assert_usage_error(&outcome, &["--tls-cert needs --tls-key"]);
    let outcome = proxy(["https://127.0.0.1/mcp"])
        .env("MCP_REMOTE_TLS_CERT", &cert)
        .run();
    assert_usage_error(&outcome, &["needs --tls-key", "MCP_REMOTE_TLS_KEY"]);
}

#[test]
fn key_without_cert_exits_2() {
    let key = fixture("client-rsa.key");
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-key", &key]).run();
    assert_usage_error(&outcome, &["--tls-key needs --tls-cert"]);
    let outcome = proxy(["https://127.0.0.1/mcp"])
        .env("MCP_REMOTE_TLS_KEY", &key)
        .run();
    assert_usage_error(&outcome, &["needs --tls-cert", "MCP_REMOTE_TLS_CERT"]);
}

#[test]
fn pfx_with_cert_and_key_exits_2() {
    let (pfx, cert, key) = (
        fixture("client.p12"),
        fixture("client-rsa.crt"),
        fixture("client-rsa.key"),
    );
    let outcome = proxy([
        "https://127.0.0.1/mcp",
        "--tls-pfx",
        &pfx,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ])
    .run();
    assert_usage_error(&outcome, &["--tls-pfx cannot be combined"]);
    // The rule holds whichever side comes from the environment.
    let outcome = proxy(["https://127.0.0.1/mcp", "--tls-pfx", &pfx])
        .env("MCP_REMOTE_TLS_CERT", &cert)
        .env("MCP_REMOTE_TLS_KEY", &key)
        .run();
    assert_usage_error(&outcome, &["--tls-pfx cannot be combined"]);
}

#[test]
fn header_with_unset_variable_exits_2_naming_it() {
    let outcome = proxy([
        "https://127.0.0.1/mcp",
        "--header",
        "Authorization: Bearer ${MCP_TEST_UNSET_TOKEN}",
    ])
    .run();
    assert_usage_error(&outcome, &["MCP_TEST_UNSET_TOKEN", "is not set"]);
}

#[test]
fn header_that_would_inject_another_header_exits_2() {
    let outcome = proxy(["https://127.0.0.1/mcp", "--header", "X-Team: ${TEAM}"])
        .env("TEAM", "blue\r\nX-Admin: 1")
        .run();
    assert_usage_error(&outcome, &["line break"]);
    let outcome = proxy([
        "https://127.0.0.1/mcp",
        "--header",
        "X-Team: blue\nX-Admin: 1",
    ])
    .run();
    assert_usage_error(&outcome, &["line break"]);
}

#[test]
fn malformed_or_reserved_header_exits_2() {
    for header in [
        "no colon here",
        "Bad Name: v",
        "Host: evil.example",
        "Mcp-Session-Id: 1",
    ] {
        let outcome = proxy(["https://127.0.0.1/mcp", "--header", header]).run();
        assert_usage_error(&outcome, &["--header"]);
    }
}

#[test]
fn header_value_is_not_echoed_when_malformed() {
    let outcome = proxy([
        "https://127.0.0.1/mcp",
        "--header",
        "Authorization Bearer very-secret-token-0123456789",
    ])
    .run();
    assert_usage_error(&outcome, &["--header"]);
    assert!(!outcome.stderr.contains("0123456789"), "{outcome:#?}");
}

// ---- environment variables and precedence ----

#[test]
fn cert_flag_overrides_cert_variable() {
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-cert",
        "/nonexistent/from-flag.crt",
        "--tls-key",
        &fixture("client-rsa.key"),
    ])
    .env("MCP_REMOTE_TLS_CERT", "/nonexistent/from-env.crt")
    .run();
    assert_runtime_error(&outcome, &["/nonexistent/from-flag.crt"]);
    assert!(!outcome.stderr.contains("from-env"), "{outcome:#?}");
}

#[test]
fn variables_are_used_when_no_flag_is_given() {
    let outcome = proxy([unreachable_https_url()])
        .env("MCP_REMOTE_TLS_CA", "/nonexistent/env-ca.pem")
        .run();
    assert_runtime_error(&outcome, &["--tls-ca", "/nonexistent/env-ca.pem"]);

    let outcome = proxy([unreachable_https_url()])
        .env("MCP_REMOTE_TLS_CERT", &fixture("client-rsa.crt"))
        .env("MCP_REMOTE_TLS_KEY", &fixture("client-rsa.enc.key"))
        .env("MCP_REMOTE_TLS_PASSPHRASE", FIXTURE_PASS)
        .env("MCP_REMOTE_TLS_CA", &fixture("ca.crt"))
        .env("MCP_REMOTE_TLS_MIN_VERSION", "TLSv1.3")
        .env("MCP_REMOTE_TLS_SERVERNAME", "localhost")
        .run();
    assert_ran_and_exited_cleanly(&outcome);

    let outcome = proxy([unreachable_https_url()])
        .env("MCP_REMOTE_TLS_PFX", &fixture("client.p12"))
        .env("MCP_REMOTE_TLS_PASSPHRASE", FIXTURE_PASS)
        .run();
    assert_ran_and_exited_cleanly(&outcome);
}

#[test]
fn passphrase_flag_overrides_passphrase_variable() {
    let pfx = fixture("client.p12");
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-pfx",
        &pfx,
        "--tls-passphrase",
        FIXTURE_PASS,
    ])
    .env("MCP_REMOTE_TLS_PASSPHRASE", "wrong-from-env")
    .run();
    assert_ran_and_exited_cleanly(&outcome);

    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-pfx",
        &pfx,
        "--tls-passphrase",
        "wrong-from-flag",
    ])
    .env("MCP_REMOTE_TLS_PASSPHRASE", FIXTURE_PASS)
    .run();
    assert_runtime_error(&outcome, &["wrong passphrase"]);
}

#[test]
fn min_version_flag_overrides_an_invalid_variable() {
    let outcome = proxy([&unreachable_https_url(), "--tls-min-version", "TLSv1.3"])
        .env("MCP_REMOTE_TLS_MIN_VERSION", "SSLv3")
        .run();
    assert_ran_and_exited_cleanly(&outcome);
}

#[test]
fn empty_variables_count_as_unset() {
    let outcome = proxy([unreachable_https_url()])
        .env("MCP_REMOTE_TLS_CERT", "")
        .env("MCP_REMOTE_TLS_KEY", "")
        .env("MCP_REMOTE_TLS_CA", "")
        .env("MCP_REMOTE_TLS_PFX", "")
        .env("MCP_REMOTE_TLS_INSECURE", "")
        .run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(!outcome.stderr.contains("DISABLED"), "{outcome:#?}");
}

// ---- runtime errors: exit 1, naming the file ----

#[test]
fn missing_cert_file_exits_1_naming_it() {
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-cert",
        "/nonexistent/client.crt",
        "--tls-key",
        &fixture("client-rsa.key"),
    ])
    .run();
    assert_runtime_error(&outcome, &["--tls-cert", "/nonexistent/client.crt"]);
}

#[test]
fn wrong_pkcs12_passphrase_exits_1_naming_the_file() {
    let pfx = fixture("client.p12");
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-pfx",
        &pfx,
        "--tls-passphrase",
        "not-the-passphrase",
    ])
    .run();
    assert_runtime_error(&outcome, &["wrong passphrase", &pfx]);
}

#[test]
fn encrypted_pkcs12_without_passphrase_exits_1_asking_for_one() {
    let pfx = fixture("client.p12");
    let outcome = proxy([&unreachable_https_url(), "--tls-pfx", &pfx]).run();
    assert_runtime_error(&outcome, &[&pfx, "MCP_REMOTE_TLS_PASSPHRASE"]);
}

#[test]
fn key_that_does_not_match_the_cert_exits_1() {
    let key = fixture("client-mismatch.key");
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-cert",
        &fixture("client-rsa.crt"),
        "--tls-key",
        &key,
    ])
    .run();
    assert_runtime_error(&outcome, &[&key, "does not match"]);
}

#[test]
fn ca_bundle_without_certificates_exits_1() {
    let empty = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-empty-ca.pem");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let outcome = proxy([&unreachable_https_url(), "--tls-ca", empty]).run();
    assert_runtime_error(&outcome, &["no certificates found", "--tls-ca", empty]);
}

#[test]
fn expired_client_cert_exits_1_with_its_dates() {
    let cert = fixture("client-expired.crt");
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-cert",
        &cert,
        "--tls-key",
        &fixture("client-expired.key"),
    ])
    .run();
    assert_runtime_error(&outcome, &[&cert, "expired on 2021-01-01"]);
}

// ---- warnings: the proxy still runs ----

#[test]
fn skip_verify_flag_warns_on_stderr_and_still_runs() {
    for flag in ["--tls-insecure-skip-verify", "--tls-no-verify"] {
        let outcome = proxy([&unreachable_https_url(), flag]).run();
        assert_ran_and_exited_cleanly(&outcome);
        assert!(
            outcome.stderr.contains("verification is DISABLED"),
            "{outcome:#?}"
        );
    }
}

#[test]
fn insecure_variable_warns_on_stderr_and_still_runs() {
    for value in ["1", "true", "yes", "YES"] {
        let outcome = proxy([unreachable_https_url()])
            .env("MCP_REMOTE_TLS_INSECURE", value)
            .run();
        assert_ran_and_exited_cleanly(&outcome);
        assert!(
            outcome.stderr.contains("verification is DISABLED"),
            "{value}: {outcome:#?}"
        );
    }
    let outcome = proxy([unreachable_https_url()])
        .env("MCP_REMOTE_TLS_INSECURE", "0")
        .run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(!outcome.stderr.contains("DISABLED"), "{outcome:#?}");
}

#[test]
fn plain_http_with_client_cert_warns_that_the_cert_is_not_sent() {
    let url = format!("http://127.0.0.1:{}/mcp", closed_port());
    let outcome = proxy([
        &url,
        "--allow-http",
        "--tls-cert",
        &fixture("client-rsa.crt"),
        "--tls-key",
        &fixture("client-rsa.key"),
    ])
    .run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(outcome.stderr.contains("will NOT be sent"), "{outcome:#?}");
    // Without a client identity there is nothing to warn about.
    let outcome = proxy([&url, "--allow-http"]).run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(!outcome.stderr.contains("NOT be sent"), "{outcome:#?}");
}

#[test]
fn passphrase_never_appears_in_debug_output() {
    let secret = "Xyzzy-Passphrase-42";
    // A wrong passphrase from the flag, from the variable, and a right one on the success path.
    let runs = [
        proxy([
            &unreachable_https_url(),
            "--debug",
            "--tls-pfx",
            &fixture("client.p12"),
            "--tls-passphrase",
            secret,
        ]),
        proxy([
            &unreachable_https_url(),
            "--debug",
            "--tls-cert",
            &fixture("client-rsa.crt"),
            "--tls-key",
            &fixture("client-rsa.enc.key"),
        ])
        .env("MCP_REMOTE_TLS_PASSPHRASE", secret),
    ];
    for invocation in runs {
        let outcome = invocation.run();
        assert_eq!(outcome.code, 1, "{outcome:#?}");
        assert!(outcome.stderr.contains("debug:"), "{outcome:#?}");
        assert!(!outcome.stderr.contains(secret), "{outcome:#?}");
    }
    let outcome = proxy([
        &unreachable_https_url(),
        "--debug",
        "--tls-pfx",
        &fixture("client.p12"),
        "--tls-passphrase",
        FIXTURE_PASS,
    ])
    .run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(outcome.stderr.contains("debug:"), "{outcome:#?}");
    assert!(!outcome.stderr.contains(FIXTURE_PASS), "{outcome:#?}");
}

#[test]
fn header_values_never_appear_in_debug_output() {
    let outcome = proxy([
        &unreachable_https_url(),
        "--debug",
        "--header",
        "Authorization: Bearer ${TOKEN}",
    ])
    .env("TOKEN", "tok-0123456789-secret")
    .run();
    assert_ran_and_exited_cleanly(&outcome);
    assert!(!outcome.stderr.contains("tok-0123456789"), "{outcome:#?}");
}

// ---- the bridge itself ----

#[test]
fn unreachable_server_gets_a_json_rpc_error_and_a_clean_exit() {
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"cli-test","version":"1"}}}"#;
    let outcome = proxy([
        &unreachable_https_url(),
        "--tls-cert",
        &fixture("client-rsa.crt"),
        "--tls-key",
        &fixture("client-rsa.key"),
        "--tls-ca",
        &fixture("ca.crt"),
    ])
    .stdin(&format!("{initialize}\n"))
    .run();
    assert_eq!(outcome.code, 0, "{outcome:#?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{outcome:#?}");
    let answer: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(answer["id"], 1);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("refused"), "{message}");
}
