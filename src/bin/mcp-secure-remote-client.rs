//! `mcp-secure-remote-client`: check a remote MCP server the way the proxy would reach it (same
//! flags, same TLS, same transport code), and report the TLS handshake, the transport, the
//! server's capabilities and its tools, resources and prompts.
//!
//! Steps: parse the command line (`cli`), load the TLS identity and trust (`tls`), build the HTTP
//! agent (`http`), and run the conversation (`client`). The report goes to stdout (human layout,
//! or one JSON document with `--json`); logs and the diagnosis go to stderr.
//! Exit codes: 0 every step worked, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use mcp_secure_remote::cli::{self, Command, Invocation, Program};
use mcp_secure_remote::{client, logging, startup};

const PROGRAM: Program = Program::Client;

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let invocation = match cli::parse(std::env::args_os().skip(1), env, PROGRAM) {
        // `login`/`logout` are the proxy's (the client's parser never returns them).
        Ok(Command::Run(invocation) | Command::Login(invocation) | Command::Logout(invocation)) => {
            invocation
        }
        Ok(Command::Help) => return startup::print_and_exit(&cli::help(PROGRAM)),
        Ok(Command::Version) => {
            return startup::print_and_exit(&format!(
                "{} {}\n",
                PROGRAM.name(),
                env!("CARGO_PKG_VERSION")
            ))
        }
        Err(e) => {
            eprintln!("{}: error: {e}", PROGRAM.name());
            return ExitCode::from(2);
        }
    };
    logging::init(PROGRAM.name(), invocation.config.debug);
    for warning in &invocation.warnings {
        log::warn!("{warning}");
    }
    startup::exit_code(try_main(*invocation))
}

/// Load TLS, build the agent and run the checks; returns the exit code.
fn try_main(invocation: Invocation) -> i32 {
    let Invocation { config, json, .. } = invocation;
    log::debug!("configuration: {config:?}");
    let (client_tls, http) = match startup::connect_setup(&config) {
        Ok(ready) => ready,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    client::run(config, &client_tls, http, json)
}
