//! `mcp-secure-remote-client`: check a remote MCP server the way the proxy would reach it (same
//! flags, same TLS, same transport code), and report the TLS handshake, the transport, the
//! server's capabilities and its tools, resources and prompts.
//!
//! Steps: parse the command line (`cli`), load the TLS identity and trust (`tls`), build the HTTP
//! agent (`http`) — the skeleton shared with the proxy, in `startup` — and run the conversation
//! (`client`). The report goes to stdout (human layout, or one JSON document with `--json`); logs
//! and the diagnosis go to stderr. `--list-identities [server-url]` lists what a `--tls-cert`
//! selector's source holds instead (`client::identities`, dispatched by `startup`).
//! Exit codes: 0 every step worked, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use mcp_secure_remote::cli::Program;
use mcp_secure_remote::{client, startup};

fn main() -> ExitCode {
    startup::main(Program::Client, |invocation, client_tls, http| {
        client::run(invocation.config, &client_tls, http, invocation.json)
    })
}
