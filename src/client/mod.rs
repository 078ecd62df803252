//! The test client (`mcp-secure-remote-client`): connect like the proxy would, with the same
//! flags and the same transport code, then report the TLS handshake, the transport, the server's
//! capabilities and everything it lists, each step timed.
//!
//! ```text
//! probe (initialize, lists) ─► Session (Rpc) ─► transport::Remote ─► CollectingSink
//!                                                        │
//! report ◄── TLS facts (http.handshakes) ◄───────────────┘
//! ```

pub mod identities;
pub mod probe;
pub mod render;
pub mod report;
pub mod rpc;
pub mod session;
pub mod sink;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::http::Http;
use crate::tls::ClientTls;
use report::{Report, Step, Tls, Transport};
use session::Session;

/// How long one request may wait for its answer before the client calls it a timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the closing DELETE may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Talk to the server, print the report (`json`: one JSON document) on stdout, and return the
/// exit code: 0 when every step worked, 1 after logging a one-line diagnosis otherwise.
pub fn run(config: Config, client_tls: &ClientTls, http: Http, json: bool) -> i32 {
    let report = check(config, client_tls, http);
    let printed = if json {
        serde_json::to_string_pretty(&report)
            .map(|text| text + "\n")
            .map_err(std::io::Error::other)
            .and_then(print)
    } else {
        print(render::human(&report))
    };
    if let Err(e) = printed {
        log::error!("cannot write the report to stdout: {e}");
        return 1;
    }
    match &report.error {
        Some(error) => {
            log::error!("{error}");
            1
        }
        None => 0,
    }
}

/// Run the conversation and gather the report.
pub fn check(config: Config, client_tls: &ClientTls, http: Http) -> Report {
    let started = Instant::now();
    let config = Arc::new(config);
    let mut session = Session::new(Arc::clone(&config), http.clone(), REQUEST_TIMEOUT);
    let mut probe = probe::probe(&mut session);

    if probe.server.is_some() {
        let closing = Instant::now();
        session.close(CLOSE_TIMEOUT);
        probe.steps.push(Step {
            name: "close".into(),
            ms: u64::try_from(closing.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok: true,
            pages: None,
        });
    } else {
        session.close(CLOSE_TIMEOUT);
    }
    // Interrupt whatever still reads (the listening stream, a request that timed out).
    http.agent.clone().shutdown();

    let facts = http
        .handshakes
        .lock()
        .map(|facts| facts.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    Report {
        url: config.url.full.clone(),
        ok: probe.failure.is_none(),
        error: probe.failure.as_ref().map(|f| f.to_string()),
        tls: Tls::describe(&config, client_tls, facts),
        transport: Transport::describe(&config, session.transport_name()),
        authorization: session
            .authorization()
            .map(report::Authorization::from_status),
        server: probe.server,
        tools: probe.tools,
        tool_filter: (!config.tools.is_empty()).then(|| report::ToolFilter {
            ignore: config.tools.ignore.clone(),
            allow: config.tools.allow.clone(),
            hidden: session.hidden_tools(),
        }),
        resources: probe.resources,
        resource_templates: probe.resource_templates,
        prompts: probe.prompts,
        steps: probe.steps,
        total_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn print(text: String) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}
