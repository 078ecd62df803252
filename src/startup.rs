//! What both binaries do before their real work: load the TLS identity and trust (checked once,
//! so that a bad file is reported before any connection), then build the HTTP agent.

use std::process::ExitCode;

use crate::config::Config;
use crate::http::{self, Http};
use crate::tls::{self, ClientTls};

/// TLS configuration and agent for `config`; the error is the one-line message to log.
pub fn connect_setup(config: &Config) -> Result<(ClientTls, Http), String> {
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
pub fn print_and_exit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    ExitCode::SUCCESS
}

/// Map a run's exit code (0, 1, 2) to the process exit code.
pub fn exit_code(code: i32) -> ExitCode {
    match code {
        0 => ExitCode::SUCCESS,
        code => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}
