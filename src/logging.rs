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
        writeln!(buf, "{program}: {level}: {}", one_record(record.args()))
    });
    let _ = builder.try_init();
}

/// A record as the bridge means it: remote text in a message (a server's error, an authorization
/// server's issuer or scope) must not start a line of its own on stderr, where it would pass for
/// one of the bridge's records, nor send terminal escapes. A line break survives only as an
/// indented continuation (a record may put a URL on a line of its own); other control
/// characters become spaces.
fn one_record(args: &std::fmt::Arguments<'_>) -> String {
    let text = args.to_string();
    if !text.contains(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\n    "),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn level(name: &str) -> log::LevelFilter {
    match name {
        "debug" => log::LevelFilter::Debug,
        _ => log::LevelFilter::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::one_record;

    #[test]
    fn remote_text_cannot_start_a_line_or_send_terminal_escapes() {
        let remote = "issuer 'x\nmcp-secure-remote: forged'\r\u{1b}[2J";
        assert_eq!(
            one_record(&format_args!("refused {remote}")),
            "refused issuer 'x\n    mcp-secure-remote: forged'  [2J"
        );
        assert_eq!(
            one_record(&format_args!("visit:\n{}", "https://as/authorize")),
            "visit:\n    https://as/authorize"
        );
        assert_eq!(one_record(&format_args!("plain")), "plain");
    }
}
