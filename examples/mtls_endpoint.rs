//! A runnable demo MCP endpoint: the integration tests' server, requiring client certificates
//! signed by `fixtures/ca.crt`, until killed.
//!
//! `cargo run --example mtls_endpoint -- [--port N] [--json] [--crlf] [--retry-ms N] [--no-priming]
//! [--no-sessions] [--unknown-session-status N] [--get-status N] [--no-streamable]
//! [--streamable-off-status N] [--no-legacy] [--redirect-slash] [--page-size N]
//! [--discover method-not-found] [--negotiate VERSION] [--tls optional|plain|tls12]`
//!
//! Prints `PORT=<n>` as the first line on stdout, so that scripts can read the port.

use mcp_test_server as server;

use std::process::ExitCode;

use server::{DiscoverMode, GetStream, ServerOptions, TestServer, TlsMode};

const USAGE: &str =
    "usage: mtls_endpoint [--port N] [--json] [--crlf] [--retry-ms N] [--no-priming] \
[--no-sessions] [--unknown-session-status N] [--get-status N] [--no-streamable] \
[--streamable-off-status N] [--no-legacy] [--redirect-slash] [--page-size N] \
[--discover http400|method-not-found] [--negotiate VERSION] [--tls required|optional|plain|tls12] \
[--modern] [--server-cert FIXTURE --server-key FIXTURE] [--client-ca FIXTURE]";

fn parse_args() -> Result<(u16, ServerOptions), lexopt::Error> {
    use lexopt::prelude::*;
    let mut port = 0;
    let mut opts = ServerOptions::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => port = parser.value()?.parse()?,
            Long("json") => opts.json_response = true,
            Long("crlf") => opts.crlf = true,
            Long("retry-ms") => opts.retry_ms = Some(parser.value()?.parse()?),
            Long("no-priming") => opts.priming = false,
            Long("no-sessions") => opts.sessions = false,
            Long("unknown-session-status") => {
                opts.unknown_session_status = parser.value()?.parse()?
            }
            Long("get-status") => opts.get_stream = GetStream::Status(parser.value()?.parse()?),
            Long("no-streamable") => opts.streamable = false,
            Long("streamable-off-status") => {
                opts.streamable_off_status = parser.value()?.parse()?
            }
            Long("no-legacy") => opts.legacy_sse = false,
            Long("redirect-slash") => opts.redirect_slash = true,
            Long("page-size") => opts.page_size = Some(parser.value()?.parse()?),
            Long("discover") => {
                opts.discover = match parser.value()?.string()?.as_str() {
                    "http400" => DiscoverMode::Http400IdNull,
                    "method-not-found" => DiscoverMode::MethodNotFound,
                    other => return Err(format!("unknown --discover mode {other:?}").into()),
                }
            }
            // The server keeps the version for its whole life, so leaking one string is fine.
            Long("negotiate") => {
                opts.negotiate_version = Some(Box::leak(parser.value()?.string()?.into_boxed_str()))
            }
            Long("tls") => {
                opts.tls = match parser.value()?.string()?.as_str() {
                    "required" => TlsMode::RequireClientCert,
                    "optional" => TlsMode::OptionalClientCert,
                    "plain" => TlsMode::PlainHttp,
                    "tls12" => TlsMode::Tls12Only,
                    other => return Err(format!("unknown --tls mode {other:?}").into()),
                }
            }
            Long("modern") => opts.modern = true,
            // Fixture file names (e.g. server-internal.crt); leaked like --negotiate.
            Long("server-cert") => {
                opts.server_cert = Box::leak(parser.value()?.string()?.into_boxed_str())
            }
            Long("server-key") => {
                opts.server_key = Box::leak(parser.value()?.string()?.into_boxed_str())
            }
            Long("client-ca") => {
                opts.client_ca = Box::leak(parser.value()?.string()?.into_boxed_str())
            }
            Long("help") | Short('h') => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((port, opts))
}

fn main() -> ExitCode {
    let (port, opts) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("mtls_endpoint: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let client_certs = match opts.tls {
        TlsMode::PlainHttp => "no TLS",
        TlsMode::OptionalClientCert => "client certificates signed by fixtures/ca.crt accepted",
        _ => "client certificates signed by fixtures/ca.crt required",
    };
    let server = match TestServer::try_start_on(port, opts) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("mtls_endpoint: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("PORT={}", server.port());
    eprintln!(
        "listening on {} (legacy SSE: /sse); {client_certs}",
        server.url("/mcp")
    );
    loop {
        std::thread::park();
    }
}
