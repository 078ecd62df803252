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
        writeln!(buf, "{program}: {level}: {}", record.args())
    });
    let _ = builder.try_init();
}

fn level(name: &str) -> log::LevelFilter {
    match name {
        "debug" => log::LevelFilter::Debug,
        _ => log::LevelFilter::Info,
    }
}
