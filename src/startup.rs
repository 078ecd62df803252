//! The skeleton both binaries share: parse the command line (`--help`, `--version`, usage
//! errors with exit code 2), start logging, load the TLS identity and trust (checked once, so
//! that a bad file is reported before any connection), build the HTTP agent, then hand over to
//! the program's own work.

use std::process::ExitCode;

use crate::cli::{self, Command, Invocation, Program};
use crate::config::Config;
use crate::http::{self, Http};
use crate::logging;
use crate::tls::{self, ClientTls};

/// Run `program`: everything up to a ready HTTP agent, then `work`, whose result (0, 1) is the
/// exit code. Exit codes: 0 success, 1 runtime error, 2 usage error.
pub fn main(program: Program, work: impl FnOnce(Invocation, ClientTls, Http) -> i32) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let (invocation, subcommand) = match cli::parse(std::env::args_os().skip(1), env, program) {
        Ok(Command::Run(invocation)) => (*invocation, None),
        // `login` / `logout` (the proxy's parser only): the OAuth sign-in, run from a terminal.
        Ok(Command::Login(invocation)) => (*invocation, Some(Subcommand::Login)),
        Ok(Command::Logout(invocation)) => (*invocation, Some(Subcommand::Logout)),
        Ok(Command::ListIdentities {
            invocation,
            url_given,
        }) => return list_identities(program, &invocation, url_given),
        Ok(Command::Help) => return print_and_exit(&cli::help(program)),
        Ok(Command::Version) => {
            return print_and_exit(&format!(
                "{} {}\n",
                program.name(),
                env!("CARGO_PKG_VERSION")
            ))
        }
        Err(e) => {
            eprintln!("{}: error: {e}", program.name());
            return ExitCode::from(2);
        }
    };
    logging::init(program.name(), invocation.config.debug);
    for warning in &invocation.warnings {
        log::warn!("{warning}");
    }
    log::debug!("configuration: {:?}", invocation.config);
    let code = match connect_setup(&invocation.config) {
        Ok((_, http)) if subcommand == Some(Subcommand::Login) => {
            crate::oauth::command::login(invocation.config, http)
        }
        Ok((_, http)) if subcommand == Some(Subcommand::Logout) => {
            crate::oauth::command::logout(invocation.config, http)
        }
        Ok((client_tls, http)) => work(invocation, client_tls, http),
        Err(e) => {
            log::error!("{e}");
            1
        }
    };
    exit_code(code)
}

/// `--list-identities`: no identity is loaded and no agent built; the listing is all.
fn list_identities(program: Program, invocation: &Invocation, url_given: bool) -> ExitCode {
    logging::init(program.name(), invocation.config.debug);
    for warning in &invocation.warnings {
        log::warn!("{warning}");
    }
    // Before a token is logged in to: a dump of this process must not hold the PIN.
    let hardening = crate::hygiene::harden();
    if let crate::hygiene::Hardening::Failed(_) = hardening {
        log::warn!("{hardening}");
    }
    exit_code(crate::client::identities::run(
        &invocation.config,
        url_given,
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Subcommand {
    Login,
    Logout,
}

/// TLS configuration and agent for `config`; the error is the one-line message to log.
fn connect_setup(config: &Config) -> Result<(ClientTls, Http), String> {
    // Before any key is read: a dump of this process must not hold it.
    let hardening = crate::hygiene::harden();
    match hardening {
        crate::hygiene::Hardening::Failed(_) => log::warn!("{hardening}"),
        _ => log::debug!("{hardening}"),
    }
    let client_tls = tls::client_config(&config.tls).map_err(|e| e.to_string())?;
    let http = http::build(config, &client_tls).map_err(|e| e.to_string())?;
    Ok((client_tls, http))
}

/// Print `--help`/`--version` text to stdout (the only non-JSON-RPC output the proxy ever
/// writes there) and exit successfully.
fn print_and_exit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    ExitCode::SUCCESS
}

/// Map a run's exit code (0, 1, 2) to the process exit code.
fn exit_code(code: i32) -> ExitCode {
    match code {
        0 => ExitCode::SUCCESS,
        code => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}
