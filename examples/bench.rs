//! `make bench`: the stdio↔HTTPS bridge (`target/release/mcp-secure-remote`) against a direct
//! in-process client using the same HTTPS stack, on the same in-process mTLS test server, printed
//! as a Markdown table with ratios and the performance targets. Reports only; never fails on a
//! figure.
//!
//! `cargo run --release --example bench` (after `cargo build --release`). `BENCH_QUICK=1` for a
//! smoke run; `BENCH_BRIDGE=<path>` to measure another bridge binary; `BENCH_PIN=1` to pin the
//! bridge and the benchmark to different CPUs (see bench/affinity.rs for why).
//!
//! Two sections: the classic one (latency, concurrency, 5 MB, RSS, exit against a well-behaved
//! server; bench/scenarios.rs) and the engine one (exit, memory and connections against hostile
//! servers; bench/engine.rs), and the cold start of a bridge signed in with OAuth against one
//! handed the same token (bench/oauth_cold.rs). `BENCH_ONLY=engine`, `BENCH_ONLY=classic` or
//! `BENCH_ONLY=oauth` runs one of them; `BENCH_ONLY=keepalive` only the engine's keep-alive rows,
//! `BENCH_ONLY=inflight` only its rows of 200 requests in flight. Those rows also measure the
//! static musl build (`make musl`; `BENCH_BRIDGE_MUSL=<path>` for another), when there is one.

#[cfg(target_os = "linux")]
use mcp_test_server as server;

#[cfg(target_os = "linux")]
#[path = "bench/affinity.rs"]
mod affinity;
#[cfg(target_os = "linux")]
#[path = "bench/bridge_proc.rs"]
mod bridge_proc;
#[cfg(target_os = "linux")]
#[path = "bench/direct.rs"]
mod direct;
#[cfg(target_os = "linux")]
#[path = "bench/engine.rs"]
mod engine;
#[cfg(target_os = "linux")]
#[path = "bench/engine_report.rs"]
mod engine_report;
#[cfg(target_os = "linux")]
#[path = "bench/error.rs"]
mod error;
#[cfg(target_os = "linux")]
#[path = "bench/keepalive.rs"]
mod keepalive;
#[cfg(target_os = "linux")]
#[path = "bench/messages.rs"]
mod messages;
#[cfg(target_os = "linux")]
#[path = "bench/oauth_cold.rs"]
mod oauth_cold;
#[cfg(target_os = "linux")]
#[path = "bench/report.rs"]
mod report;
#[cfg(target_os = "linux")]
#[path = "bench/rss_watch.rs"]
mod rss_watch;
#[cfg(target_os = "linux")]
#[path = "bench/scenarios.rs"]
mod scenarios;
#[cfg(target_os = "linux")]
#[path = "bench/stats.rs"]
mod stats;

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
use std::process::ExitCode;
#[cfg(target_os = "linux")]
use std::time::Instant;

#[cfg(target_os = "linux")]
use error::{BenchError, Result};
#[cfg(target_os = "linux")]
use scenarios::{Plan, Setup};
#[cfg(target_os = "linux")]
use server::{ServerOptions, TestServer};

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    // A child copy of the benchmark running the direct client's share of an engine scenario.
    let result = engine::child_role().unwrap_or_else(try_main);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
fn try_main() -> Result<()> {
    // A proxy from the environment would sit between both clients and the loopback server and
    // measure itself. The bridge child inherits this environment too.
    for var in mcp_secure_remote::http::agent::PROXY_VARS {
        std::env::remove_var(var);
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: warning: this is a debug build, so the direct client is unoptimised; \
             use `cargo run --release --example bench`"
        );
    }
    let binary = bridge_binary();
    if !binary.is_file() {
        return Err(BenchError::BridgeMissing(binary));
    }
    let plan = Plan::from_env();
    let sections = Sections::from_env()?;
    // Counted before pinning, which would make the process see one CPU.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pinning = affinity::Pinning::from_env();
    if let Some(pinning) = &pinning {
        // Before any thread starts, so that the server and the direct client inherit the CPU.
        affinity::pin_current_thread(pinning.bench_cpu);
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let started = Instant::now();
    let classic = if sections.classic {
        let server = TestServer::try_start_on(0, ServerOptions::default())
            .map_err(|e| BenchError::Server(e.to_string()))?;
        let setup = Setup {
            binary: &binary,
            fixtures: &fixtures,
            url: server.url("/mcp"),
            pinning,
        };
        let measurements = scenarios::run(&plan, &setup)?;
        server.stop();
        Some((measurements, setup.pinning))
    } else {
        None
    };
    let engine = sections.engine.then(|| {
        engine::run(&engine::EngineSetup {
            binary: &binary,
            fixtures: &fixtures,
            musl: &musl_binary(),
        })
    });
    let oauth = sections.oauth.then(|| oauth_cold::run(&binary, &fixtures));

    let ran = match (&classic, &engine, &oauth) {
        (Some(_), Some(_), _) => "classic + engine + oauth",
        (Some(_), None, _) => "classic only",
        (None, Some(_), _) => "engine only",
        _ => "oauth only",
    };
    println!(
        "## mcp-secure-remote bench ({} run, {ran}, {cores} cores, {:.0} s)\n",
        if plan.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
    println!("Bridge: `{}`\n", binary.display());
    if let Some((measurements, pinning)) = &classic {
        print_classic(&plan, measurements, pinning.as_ref());
    }
    if let Some(engine) = &engine {
        print!("{}", engine_report::render(engine));
    }
    match &oauth {
        Some(Ok(figures)) => print!("{}", oauth_cold::render(figures)),
        // Reported, not hidden: the section did not run, and why.
        Some(Err(e)) => println!("### MCP authorization: cold start\n\nnot measured: {e}\n"),
        None => {}
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn print_classic(
    plan: &Plan,
    measurements: &scenarios::Measurements,
    pinning: Option<&affinity::Pinning>,
) {
    match pinning {
        Some(p) => println!(
            "Pinned (BENCH_PIN): benchmark process (server + direct client) on CPU {}, bridge on CPU {}; \
             the server then shares a CPU with the direct client only, which favours the bridge \
             in the concurrent figures.\n",
            p.bench_cpu, p.bridge_cpu
        ),
        None => println!("Not pinned: the scheduler places every thread (BENCH_PIN=1 to pin).\n"),
    }
    print!("{}", report::render(plan, measurements));
}

/// Which sections to run: `BENCH_ONLY=classic|engine`, both when unset.
#[cfg(target_os = "linux")]
struct Sections {
    classic: bool,
    engine: bool,
    oauth: bool,
}

#[cfg(target_os = "linux")]
impl Sections {
    fn from_env() -> Result<Sections> {
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        match only.as_str() {
            "" => Ok(Sections {
                classic: true,
                engine: true,
                oauth: true,
            }),
            "classic" => Ok(Sections {
                classic: true,
                engine: false,
                oauth: false,
            }),
            // `keepalive`: only the engine section's keep-alive edge rows (about a minute);
            // `inflight`: only its rows of requests in flight (both builds, the direct client).
            "engine" | "keepalive" | "inflight" => Ok(Sections {
                classic: false,
                engine: true,
                oauth: false,
            }),
            "oauth" => Ok(Sections {
                classic: false,
                engine: false,
                oauth: true,
            }),
            other => Err(BenchError::Usage(format!(
                "BENCH_ONLY={other} is not a section: use BENCH_ONLY=classic, BENCH_ONLY=engine, \
                 BENCH_ONLY=oauth, BENCH_ONLY=keepalive or BENCH_ONLY=inflight (or leave it unset \
                 for all)"
            ))),
        }
    }
}

#[cfg(target_os = "linux")]
/// `BENCH_BRIDGE_MUSL`, else `x86_64-unknown-linux-musl/release/mcp-secure-remote` in the target
/// directory (`make musl`): the static build whose memory the in-flight rows report beside this one.
fn musl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BENCH_BRIDGE_MUSL") {
        return PathBuf::from(path);
    }
    target_dir()
        .join("x86_64-unknown-linux-musl")
        .join("release")
        .join("mcp-secure-remote")
}

#[cfg(target_os = "linux")]
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| manifest.join(dir))
        .unwrap_or_else(|| manifest.join("target"))
}

#[cfg(target_os = "linux")]
/// `BENCH_BRIDGE`, else `release/mcp-secure-remote` in `CARGO_TARGET_DIR` or the crate's `target/`.
fn bridge_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BENCH_BRIDGE") {
        return PathBuf::from(path);
    }
    target_dir().join("release").join("mcp-secure-remote")
}

/// The measurements need Linux: the bridge's memory comes from /proc/<pid>/status, CPU pinning
/// from sched_setaffinity, and the hard stop of a stuck bridge from kill(2).
#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("bench: runs on Linux only (it reads the bridge's memory from /proc)");
    ExitCode::FAILURE
}
