//! `mcp-secure-remote`: a stdio MCP server that forwards every JSON-RPC message to a remote MCP
//! server over HTTPS, authenticating with a TLS client certificate.
//!
//! The program in four steps: parse the command line (`cli`), load the TLS identity and trust
//! (`tls`), build the HTTP agent (`http`) — the skeleton shared with the test client, in
//! `startup` — and run the bridge until stdin closes (`bridge`).
//! Exit codes: 0 success, 1 runtime error, 2 usage error.

use std::process::ExitCode;

use mcp_secure_remote::cli::Program;
use mcp_secure_remote::{bridge, startup};

fn main() -> ExitCode {
    limit_malloc_arenas();
    startup::main(Program::Proxy, |invocation, _client_tls, http| {
        bridge::run(invocation.config, http)
    })
}

/// glibc gives every thread that allocates its own malloc arena, and keeps their memory: after a
/// burst of 200 concurrent requests the bridge measured 36.8 MiB resident with glibc against
/// 14.8 MiB with musl's single heap (`make bench`). Two arenas keep the concurrency and most of
/// that memory back. musl builds (the static release) need nothing. Fewer does not help: with
/// 200 requests in flight (`make bench`, BENCH_ONLY=inflight) the peak was 34.8 MiB with two
/// arenas and 35.2 MiB with one; the rest was buffers (see `http::connector::connect_tcp`).
/// Nor does glibc's per-thread cache matter much (GLIBC_TUNABLES=glibc.malloc.tcache_count=0:
/// 33.1 against 34.5 MiB), and it can only be set from the environment.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called first thing, before other threads.
    unsafe {
        // A MALLOC_ARENA_MAX set by the user wins (glibc reads it at start-up; mallopt would
        // override it).
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        // A fixed threshold: large messages get their own mapping, returned to the OS when
        // freed (glibc otherwise raises the threshold after the first large free and keeps them).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
