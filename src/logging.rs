//! Logging to stderr only (stdout belongs to JSON-RPC). `--debug` turns on per-message tracing;
//! `RUST_LOG` can still narrow or widen it for one module.

use std::io::Write;

/// Set up the logger once, at start-up. Lines look like `mcp-secure-remote: warning: …`.
pub fn init(program: &'static str, debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let mut builder = env_logger::Builder::new();
    builder
        .target(env_logger::Target::Stderr)
        .filter_level(log::LevelFilter::Warn)
        // The library and the proxy binary share this crate name; the test client's is its own.
        .filter_module("mcp_secure_remote", level(default))
        .filter_module("mcp_secure_remote_client", level(default));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |buf, record| {
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        writeln!(buf, "{program}: {level}: {}", one_line(record.args()))
    });
    let _ = builder.try_init();
}

/// A record as one line: remote text in a message (a server's error, an authorization server's
/// issuer or token type) must not start lines of its own on stderr, nor send terminal escapes.
fn one_line(args: &std::fmt::Arguments<'_>) -> String {
    let text = args.to_string();
    if text.contains(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        text
    }
}

fn level(name: &str) -> log::LevelFilter {
    match name {
        "debug" => log::LevelFilter::Debug,
        _ => log::LevelFilter::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_record_is_one_line_without_terminal_escapes() {
        let remote = "issuer 'x\nmcp-secure-remote: forged'\r\u{1b}[2J";
        assert_eq!(
            one_line(&format_args!("refused {remote}")),
            "refused issuer 'x mcp-secure-remote: forged'  [2J"
        );
        assert_eq!(one_line(&format_args!("plain")), "plain");
    }
}
