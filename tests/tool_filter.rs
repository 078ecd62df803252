//! `--ignore-tool` / `--allow-tool` through the real binaries against the real test server: hidden
//! tools vanish from `tools/list` (handshake era, legacy HTTP+SSE, 2026-07-28, every page), a
//! `tools/call` of one is answered by the bridge and never reaches the server, and the test
//! client's report says what was hidden.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::bridge::{mtls_args, Bridge};
use support::server::{ServerOptions, TestServer};

fn names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn tool_calls_seen(srv: &TestServer) -> Vec<String> {
    srv.requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .filter_map(|r| r.json())
        .map(|j| j["params"]["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The refusal of a hidden tool, as the README's Troubleshooting quotes it.
fn refusal(tool: &str) -> String {
    format!("tool '{tool}' is not available: the bridge hides it (--ignore-tool/--allow-tool)")
}

fn assert_refused(resp: &Value, tool: &str) {
    assert_eq!(resp["error"]["code"], -32602, "{resp}");
    assert_eq!(resp["error"]["message"], refusal(tool), "{resp}");
}

#[test]
fn the_readme_quotes_the_refusal() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains(&format!("**`{}`**", refusal("delete_file"))));
}

#[test]
fn ignored_tools_are_hidden_and_their_calls_never_reach_the_server() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(
        &srv.url("/mcp"),
        &["--ignore-tool", "ECHO", "--ignore-tool", "tool-*"],
    );
    b.initialize();
    let list = b.call(json!(1), "tools/list", json!({}));
    assert_eq!(
        names(&list),
        ["add", "slow", "big", "ask", "notify", "fail"],
        "case-insensitive, * wildcard"
    );
    let refused = b.call(
        json!(2),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    assert_refused(&refused, "echo");
    let refused = b.call(json!(3), "tools/call", json!({"name": "Tool-3"}));
    assert_refused(&refused, "Tool-3");
    let sum = b.call(
        json!(4),
        "tools/call",
        json!({"name": "add", "arguments": {"a": 2, "b": 3}}),
    );
    assert!(sum.get("result").is_some(), "{sum}");
    b.close_stdin();
    assert!(b.wait_exit(Duration::from_secs(10)).unwrap().success());
    assert_eq!(
        tool_calls_seen(&srv),
        ["add"],
        "only the allowed call was sent"
    );
}

#[test]
fn an_allow_list_keeps_only_its_tools_and_ignore_wins_over_it_on_every_page() {
    let srv = TestServer::start(ServerOptions {
        page_size: Some(3),
        ..Default::default()
    });
    let mut b = Bridge::start(
        &srv.url("/mcp"),
        &[
            "--allow-tool",
            "a*",
            "--allow-tool",
            "tool-*",
            "--ignore-tool",
            "ask",
        ],
    );
    b.initialize();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for id in 1..20 {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = b.call(json!(id), "tools/list", params);
        seen.extend(names(&page));
        match page["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["add", "tool-1", "tool-2", "tool-3", "tool-4", "tool-5"],
        "ask is on the allow-list and ignored: ignored wins"
    );
    let refused = b.call(json!(30), "tools/call", json!({"name": "ask"}));
    assert_refused(&refused, "ask");
    let refused = b.call(json!(31), "tools/call", json!({"name": "slow"}));
    assert_refused(&refused, "slow");
    assert!(tool_calls_seen(&srv).is_empty());
}

#[test]
fn the_legacy_transport_is_filtered_too() {
    let srv = TestServer::start(ServerOptions::default());
    let mut b = Bridge::start(
        &srv.url("/sse"),
        &["--transport", "sse-only", "--ignore-tool", "*o*"],
    );
    b.initialize();
    let list = b.call(json!(1), "tools/list", json!({}));
    assert_eq!(names(&list), ["add", "big", "ask", "fail"]);
    let refused = b.call(json!(2), "tools/call", json!({"name": "notify"}));
    assert_refused(&refused, "notify");
    assert!(tool_calls_seen(&srv).is_empty());
    assert!(
        srv.requests().iter().any(|r| r.path == "/message"),
        "the legacy transport carried the listing"
    );
}

#[test]
fn modern_requests_are_filtered_like_handshake_era_ones() {
    let srv = TestServer::start(ServerOptions {
        modern: true,
        ..Default::default()
    });
    let mut b = Bridge::start(&srv.url("/mcp"), &["--ignore-tool", "region_*"]);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    });
    let list = b.call(json!(1), "tools/list", json!({"_meta": meta}));
    let listed = names(&list);
    assert!(listed.contains(&"echo".to_string()), "{list}");
    assert!(
        !listed.iter().any(|n| n.starts_with("region_")),
        "{listed:?}"
    );
    let refused = b.call(
        json!(2),
        "tools/call",
        json!({"name": "region_echo", "arguments": {"region": "eu"}, "_meta": meta}),
    );
    assert_refused(&refused, "region_echo");
    assert!(tool_calls_seen(&srv).is_empty());
}

#[test]
fn the_test_client_reports_what_was_hidden() {
    let srv = TestServer::start(ServerOptions::default());
    let mut args = vec![srv.url("/mcp")];
    args.extend(mtls_args());
    args.extend(["--ignore-tool", "tool-*", "--allow-tool", "*"].map(String::from));
    let run = |extra: &[&str]| {
        let out = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote-client"))
            .args(&args)
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let report: Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let listed: Vec<&str> = report["tools"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["echo", "add", "slow", "big", "ask", "notify", "fail"]
    );
    assert_eq!(
        report["tool_filter"],
        json!({"ignore": ["tool-*"], "allow": ["*"], "hidden": ["tool-1", "tool-2", "tool-3", "tool-4", "tool-5"]})
    );
    let text = run(&[]);
    assert!(
        text.contains(
            "\n  hidden: 5 (tool-1, tool-2, tool-3, tool-4, tool-5) by --ignore-tool tool-* --allow-tool *\n"
        ),
        "{text}"
    );
}

#[test]
fn an_empty_pattern_is_a_usage_error() {
    let out = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote"))
        .args(["https://127.0.0.1:1/mcp", "--ignore-tool", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--ignore-tool needs a tool name or a glob"),
        "{stderr}"
    );
}
