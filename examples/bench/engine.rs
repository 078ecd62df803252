//! The engine against hostile servers (issue 11): how fast the bridge exits after stdin EOF or
//! SIGTERM while the server withholds something, how much memory it holds while the server
//! floods it or never finishes an event, and how many connections it keeps after cancellations.
//! Each scenario gets a fresh in-process test server with the misbehaviour it needs, staged as
//! tests/bridge_engine.rs stages it.
//!
//! Every wait is capped: a bridge that does not exit is killed and reported as "never", and a
//! bridge whose memory has no bound is killed at `RSS_CEILING` and reported as over it, so that
//! an old bridge (BENCH_BRIDGE) is measured without hanging the run or hurting the machine.
//! `BENCH_ONLY=keepalive` runs only the keep-alive edge (bench/keepalive.rs).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mcp_test_server::{Fault, ServerOptions, TestServer};
use serde_json::{json, Value};

use crate::bridge_proc::{BridgeProcess, Ending, Exit, Line};
use crate::direct::DirectClient;
use crate::error::{BenchError, Result};
use crate::keepalive::KeepAliveFigures;
use crate::messages;
use crate::rss_watch::{RssPeak, RssWatch};

/// How long a bridge asked to leave may take before it is killed ("never").
pub const EXIT_CAP: Duration = Duration::from_secs(10);
/// A process using more than this is killed: the figure is then "> RSS_CEILING".
pub const RSS_CEILING_KIB: u64 = 1024 * 1024;
/// How long the staging waits for any one thing (a request to reach the server, an answer).
pub const STAGE_WAIT: Duration = Duration::from_secs(5);
/// What tests/bridge_engine.rs and issue 11 use.
pub const OUTSTANDING: i64 = 300;
pub const CANCELLATIONS: i64 = 300;
pub const FLOOD_BUDGET_MIB: u64 = 32;
pub const FLOOD_UNREAD: Duration = Duration::from_secs(5);
/// Flood notifications checked for order and gaps once reading resumes.
pub const FLOOD_CHECKED: u64 = 2000;
pub const ENDLESS: i64 = 40;
pub const ENDLESS_BUDGET_MIB: u64 = 64;
pub const ENDLESS_MESSAGE_MIB: u64 = 16;
pub const IN_FLIGHT: usize = 200;
pub const IN_FLIGHT_SLOW_MS: u64 = 3000;
/// Lets the bridge open its GET stream after `notifications/initialized`.
const SETTLE: Duration = Duration::from_millis(50);

/// A figure, or why its scenario could not be staged.
pub type Outcome<T> = std::result::Result<T, String>;

/// The scenarios in which the bridge is asked to leave.
#[derive(Debug, Clone, Copy)]
pub enum Case {
    Outstanding,
    HeldNotification,
    WithheldEndpoint,
    Cancelled,
}

impl Case {
    pub const ALL: [Case; 4] = [
        Case::Outstanding,
        Case::HeldNotification,
        Case::WithheldEndpoint,
        Case::Cancelled,
    ];

    pub fn describe(self) -> String {
        match self {
            Case::Outstanding => {
                format!("{OUTSTANDING} requests outstanding on a silent server (`hang`)")
            }
            Case::HeldNotification => {
                "a notification POST the server holds (`notifications/initialized`)".into()
            }
            Case::WithheldEndpoint => {
                "legacy server withholding `endpoint` (sse-only, --connect-timeout 30)".into()
            }
            Case::Cancelled => format!("after {CANCELLATIONS} cancellations of `hang` requests"),
        }
    }
}

/// One leave-the-bridge measurement.
pub struct ExitFigure {
    pub case: Case,
    pub how: Ending,
    pub exit: Outcome<Exit>,
    /// What the staging found worth saying (e.g. how many requests reached the server).
    pub note: String,
}

/// After the cancellations (the worse of the EOF and SIGTERM runs).
pub struct CancelFigures {
    /// Requests that reached the server before the next one did not (within `STAGE_WAIT`).
    pub reached: i64,
    /// The server's open connections from the bridge once it settled (up to 5 s).
    pub connections: usize,
    /// A ping sent after the cancellations: answered after this long, or never (`STAGE_WAIT`).
    pub ping: Option<Duration>,
}

pub struct FloodFigures {
    pub peak: RssPeak,
    /// None: all `FLOOD_CHECKED` arrived in order. Some(why) otherwise.
    pub loss: Option<String>,
    /// None when the bridge was killed over the memory ceiling.
    pub exit: Option<Exit>,
}

pub struct EndlessFigures {
    pub peak: RssPeak,
    /// Requests answered exactly once, with an error.
    pub one_error: usize,
    /// Requests answered more than once, or with a result.
    pub wrong: usize,
    /// None when the bridge was killed over the memory ceiling.
    pub exit: Option<Exit>,
}

/// One bridge build carrying the `IN_FLIGHT` slow calls.
pub struct InFlightRun {
    pub peak: RssPeak,
    pub answered: usize,
}

pub struct InFlightFigures {
    /// The bridge under test (`target/release`, glibc, unless BENCH_BRIDGE says otherwise).
    pub bridge: InFlightRun,
    /// The static musl build (`make musl`) doing the same calls, or why it was not measured.
    pub musl: Outcome<InFlightRun>,
    /// The direct client (in a child process of its own) doing the same calls.
    pub direct: Outcome<(RssPeak, usize)>,
}

pub struct EngineMeasurements {
    pub exits: Vec<ExitFigure>,
    pub cancel: Vec<CancelFigures>,
    pub flood: Outcome<FloodFigures>,
    pub endless: Outcome<EndlessFigures>,
    pub in_flight: Outcome<InFlightFigures>,
    pub keep_alive: KeepAliveFigures,
    pub took: Duration,
}

/// Where the bridge binary and the fixtures are.
pub struct EngineSetup<'a> {
    pub binary: &'a Path,
    pub fixtures: &'a Path,
    /// The static musl build of the bridge, for the in-flight memory row (`make musl`).
    pub musl: &'a Path,
}

impl EngineSetup<'_> {
    fn bridge(&self, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<BridgeProcess> {
        BridgeProcess::spawn_with(self.binary, url, self.fixtures, extra, env)
    }
}

pub fn run(setup: &EngineSetup<'_>) -> EngineMeasurements {
    let started = Instant::now();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("inflight") {
        const SKIPPED: &str = "skipped (BENCH_ONLY=inflight)";
        progress("engine: requests in flight on a slow server only");
        return EngineMeasurements {
            exits: Vec::new(),
            cancel: Vec::new(),
            flood: Err(SKIPPED.into()),
            endless: Err(SKIPPED.into()),
            in_flight: in_flight(setup).map_err(|e| e.to_string()),
            keep_alive: crate::keepalive::skipped(SKIPPED),
            took: started.elapsed(),
        };
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("keepalive") {
        const SKIPPED: &str = "skipped (BENCH_ONLY=keepalive)";
        progress("engine: calls at a 5 s keep-alive edge only (about a minute)");
        return EngineMeasurements {
            exits: Vec::new(),
            cancel: Vec::new(),
            flood: Err(SKIPPED.into()),
            endless: Err(SKIPPED.into()),
            in_flight: Err(SKIPPED.into()),
            keep_alive: crate::keepalive::measure(setup),
            took: started.elapsed(),
        };
    }
    let mut exits = Vec::new();
    let mut cancel = Vec::new();
    for case in Case::ALL {
        for how in [Ending::Eof, Ending::Sigterm] {
            progress(&format!("engine: exit after {how:?}, {}", case.describe()));
            let (figure, cancelled) = leave(setup, case, how);
            exits.push(figure);
            cancel.extend(cancelled);
        }
    }
    progress("engine: notification flood with stdout unread");
    let flood = flood(setup).map_err(|e| e.to_string());
    progress("engine: never-ending events");
    let endless = endless(setup).map_err(|e| e.to_string());
    progress("engine: requests in flight on a slow server");
    let in_flight = in_flight(setup).map_err(|e| e.to_string());
    progress("engine: calls at a 5 s keep-alive edge (about a minute)");
    let keep_alive = crate::keepalive::measure(setup);
    EngineMeasurements {
        exits,
        cancel,
        flood,
        endless,
        in_flight,
        keep_alive,
        took: started.elapsed(),
    }
}

fn progress(what: &str) {
    eprintln!("bench: {what}…");
}

/// A staged bridge, ready to be asked to leave.
struct Staged {
    server: TestServer,
    bridge: BridgeProcess,
    note: String,
    cancel: Option<CancelFigures>,
}

fn leave(setup: &EngineSetup<'_>, case: Case, how: Ending) -> (ExitFigure, Option<CancelFigures>) {
    let staged = match case {
        Case::Outstanding => outstanding(setup),
        Case::HeldNotification => held_notification(setup),
        Case::WithheldEndpoint => withheld_endpoint(setup),
        Case::Cancelled => cancelled(setup),
    };
    match staged {
        Ok(staged) => {
            let exit = staged.bridge.end(how, EXIT_CAP);
            staged.server.stop();
            let figure = ExitFigure {
                case,
                how,
                exit: Ok(exit),
                note: staged.note,
            };
            (figure, staged.cancel)
        }
        Err(e) => {
            let figure = ExitFigure {
                case,
                how,
                exit: Err(e.to_string()),
                note: String::new(),
            };
            (figure, None)
        }
    }
}

fn start_server(opts: ServerOptions) -> Result<TestServer> {
    TestServer::try_start_on(0, opts).map_err(|e| BenchError::Server(e.to_string()))
}

fn stage_failed(what: String) -> BenchError {
    BenchError::BadReply {
        what,
        excerpt: String::new(),
    }
}

/// Polls `cond` every `every` for up to `bound`; true once it held.
fn eventually(bound: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(every);
    }
}

fn hang_requests(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.json().is_some_and(|v| v["params"]["name"] == "hang"))
        .count()
}

fn server_saw_id(server: &TestServer, id: i64) -> bool {
    server
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.json().is_some_and(|v| v["id"] == id))
}

fn initialized_bridge(
    setup: &EngineSetup<'_>,
    server: &TestServer,
    env: &[(&str, &str)],
) -> Result<BridgeProcess> {
    let mut bridge = setup.bridge(&server.url("/mcp"), &[], env)?;
    bridge.initialize(Instant::now())?;
    thread::sleep(SETTLE);
    Ok(bridge)
}

fn outstanding(setup: &EngineSetup<'_>) -> Result<Staged> {
    let server = start_server(ServerOptions::default())?;
    let mut bridge = initialized_bridge(setup, &server, &[])?;
    let mut batch = String::new();
    for id in 1..=OUTSTANDING {
        batch.push_str(&messages::tool_call(id, "hang", json!({})));
        batch.push('\n');
    }
    bridge.send(&batch)?;
    if !eventually(STAGE_WAIT, Duration::from_millis(5), || {
        hang_requests(&server) > 0
    }) {
        return Err(stage_failed("no `hang` request reached the server".into()));
    }
    // Let the bridge send all it will send: the count stops changing.
    let mut last = 0;
    eventually(STAGE_WAIT, Duration::from_millis(200), || {
        let now = hang_requests(&server);
        let settled = now == last;
        last = now;
        settled
    });
    let note = format!("{last} of {OUTSTANDING} at the server, the rest queued in the bridge");
    Ok(Staged {
        server,
        bridge,
        note,
        cancel: None,
    })
}

fn held_notification(setup: &EngineSetup<'_>) -> Result<Staged> {
    let server = start_server(ServerOptions::default())?;
    server.inject(Fault::HoldFor {
        method: "notifications/initialized",
    });
    let bridge = initialized_bridge(setup, &server, &[])?;
    let held = server.wait_for_request(STAGE_WAIT, |r| {
        r.rpc_method().as_deref() == Some("notifications/initialized")
    });
    if held.is_none() {
        return Err(stage_failed(
            "the notification never reached the server".into(),
        ));
    }
    Ok(Staged {
        server,
        bridge,
        note: String::new(),
        cancel: None,
    })
}

fn withheld_endpoint(setup: &EngineSetup<'_>) -> Result<Staged> {
    let server = start_server(ServerOptions {
        legacy_endpoint_event: false,
        ..ServerOptions::default()
    })?;
    let mut bridge = setup.bridge(
        &server.url("/sse"),
        &["--transport", "sse-only", "--connect-timeout", "30"],
        &[],
    )?;
    bridge.send(&format!("{}\n", messages::initialize_as(0, "2024-11-05")))?;
    let get = server.wait_for_request(STAGE_WAIT, |r| r.method == "GET" && r.path == "/sse");
    if get.is_none() {
        return Err(stage_failed(
            "the bridge never opened the SSE stream".into(),
        ));
    }
    Ok(Staged {
        server,
        bridge,
        note: String::new(),
        cancel: None,
    })
}

/// `hang` requests one at a time, each cancelled once the server has it; then the connections
/// the bridge still holds and whether it still answers.
fn cancelled(setup: &EngineSetup<'_>) -> Result<Staged> {
    let server = start_server(ServerOptions::default())?;
    let mut bridge = initialized_bridge(setup, &server, &[])?;
    let mut reached = 0;
    for i in 0..CANCELLATIONS {
        let id = 1000 + i;
        bridge.send(&format!("{}\n", messages::tool_call(id, "hang", json!({}))))?;
        if !eventually(STAGE_WAIT, Duration::from_millis(1), || {
            server_saw_id(&server, id)
        }) {
            break;
        }
        reached += 1;
        bridge.send(&format!("{}\n", messages::cancelled(id)))?;
    }
    eventually(Duration::from_secs(5), Duration::from_millis(10), || {
        server.open_connections() <= 10
    });
    let connections = server.open_connections();
    let ping_id = 5000;
    let sent = bridge.send(&format!("{}\n", messages::ping(ping_id)))?;
    let ping = answer(&mut bridge, ping_id, STAGE_WAIT).map(|line| line.at.duration_since(sent));
    let note = if reached < CANCELLATIONS {
        format!(
            "request {} never reached the server within {} s",
            reached + 1,
            STAGE_WAIT.as_secs()
        )
    } else {
        String::new()
    };
    Ok(Staged {
        server,
        bridge,
        note,
        cancel: Some(CancelFigures {
            reached,
            connections,
            ping,
        }),
    })
}

/// The response (result or error) to `id`, skipping every other line, within `wait`.
fn answer(bridge: &mut BridgeProcess, id: i64, wait: Duration) -> Option<Line> {
    let deadline = Instant::now() + wait;
    loop {
        let line = bridge.next_line(deadline.saturating_duration_since(Instant::now()))?;
        if let Ok(msg) = serde_json::from_str::<Value>(&line.text) {
            if msg["id"] == id && (msg.get("result").is_some() || msg.get("error").is_some()) {
                return Some(line);
            }
        }
    }
}

/// The exit after stdin EOF; None when the watch already killed the bridge.
fn bridge_end_unless_killed(bridge: BridgeProcess, peak: &RssPeak) -> Option<Exit> {
    if peak.killed_after.is_some() {
        return None;
    }
    Some(bridge.end(Ending::Eof, EXIT_CAP))
}

fn budget_env(mib: u64) -> String {
    format!("{mib}M")
}

/// A flood on the request's stream while the client reads nothing for `FLOOD_UNREAD`; then it
/// reads on and checks the first `FLOOD_CHECKED` notifications arrive in order.
fn flood(setup: &EngineSetup<'_>) -> Result<FloodFigures> {
    let server = start_server(ServerOptions::default())?;
    let budget = budget_env(FLOOD_BUDGET_MIB);
    // The variable rather than --memory-budget: a bridge that predates the flag ignores it
    // instead of refusing to start.
    let mut bridge = initialized_bridge(setup, &server, &[("MCP_REMOTE_MEMORY_BUDGET", &budget)])?;
    let watch = RssWatch::start(bridge.pid(), RSS_CEILING_KIB);
    bridge.pause_stdout();
    bridge.send(&format!("{}\n", messages::tool_call(1, "flood", json!({}))))?;
    let unread_until = Instant::now() + FLOOD_UNREAD;
    while Instant::now() < unread_until && !watch.killed() {
        thread::sleep(Duration::from_millis(20));
    }
    bridge.resume_stdout();
    let loss = if watch.killed() {
        Some("not checked (killed over the memory ceiling)".to_string())
    } else {
        check_flood(&mut bridge)
    };
    let peak = watch.finish();
    let exit = bridge_end_unless_killed(bridge, &peak);
    server.stop();
    Ok(FloodFigures { peak, loss, exit })
}

/// None if notifications 0..FLOOD_CHECKED arrive in order, else what went wrong.
fn check_flood(bridge: &mut BridgeProcess) -> Option<String> {
    let deadline = Instant::now() + STAGE_WAIT;
    let mut expected = 0u64;
    while expected < FLOOD_CHECKED {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = bridge.next_line(left) else {
            return Some(format!(
                "only {expected} of {FLOOD_CHECKED} arrived within {} s",
                STAGE_WAIT.as_secs()
            ));
        };
        let Ok(msg) = serde_json::from_str::<Value>(&line.text) else {
            return Some(format!("a line that is not JSON after {expected}"));
        };
        if msg["params"]["logger"] != "flood" {
            continue;
        }
        let seq = msg["params"]["data"]["seq"].as_u64();
        if seq != Some(expected) {
            return Some(format!("expected #{expected}, got {seq:?}"));
        }
        expected += 1;
    }
    None
}

/// `ENDLESS` requests whose answers are events that never end.
fn endless(setup: &EngineSetup<'_>) -> Result<EndlessFigures> {
    let server = start_server(ServerOptions::default())?;
    let (budget, message) = (
        budget_env(ENDLESS_BUDGET_MIB),
        budget_env(ENDLESS_MESSAGE_MIB),
    );
    let mut bridge = initialized_bridge(
        setup,
        &server,
        &[
            ("MCP_REMOTE_MEMORY_BUDGET", &budget),
            ("MCP_REMOTE_MAX_MESSAGE_SIZE", &message),
        ],
    )?;
    let watch = RssWatch::start(bridge.pid(), RSS_CEILING_KIB);
    let mut batch = String::new();
    for id in 1..=ENDLESS {
        batch.push_str(&messages::tool_call(id, "endless_event", json!({})));
        batch.push('\n');
    }
    bridge.send(&batch)?;
    // id → (answers, errors)
    let mut answers: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    while Instant::now() < deadline && !watch.killed() {
        // Once all have an answer, a little longer to catch a second one.
        if quiet_until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let Some(line) = bridge.next_line(Duration::from_millis(20)) else {
            continue;
        };
        let Ok(msg) = serde_json::from_str::<Value>(&line.text) else {
            continue;
        };
        let Some(id) = msg["id"].as_i64() else {
            continue;
        };
        let entry = answers.entry(id).or_default();
        entry.0 += 1;
        entry.1 += usize::from(msg.get("error").is_some());
        if quiet_until.is_none() && answers.len() >= ENDLESS as usize {
            quiet_until = Some(Instant::now() + Duration::from_millis(300));
        }
    }
    let peak = watch.finish();
    let one_error = answers.values().filter(|&&(n, e)| n == 1 && e == 1).count();
    let wrong = answers.len() - one_error;
    let exit = bridge_end_unless_killed(bridge, &peak);
    server.stop();
    Ok(EndlessFigures {
        peak,
        one_error,
        wrong,
        exit,
    })
}

/// `IN_FLIGHT` slow calls written at once; the bridge's peak until all are answered, the same
/// for the static musl build, then the direct client's doing the same in a process of its own.
fn in_flight(setup: &EngineSetup<'_>) -> Result<InFlightFigures> {
    let server = start_server(ServerOptions::default())?;
    let bridge = in_flight_run(setup.binary, setup, &server)?;
    let musl = if setup.musl.is_file() {
        in_flight_run(setup.musl, setup, &server).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "no static musl build at {} (`make musl`, or BENCH_BRIDGE_MUSL)",
            setup.musl.display()
        ))
    };
    let direct = direct_in_flight(&server.url("/mcp"), setup.fixtures).map_err(|e| e.to_string());
    server.stop();
    Ok(InFlightFigures {
        bridge,
        musl,
        direct,
    })
}

fn in_flight_run(
    binary: &Path,
    setup: &EngineSetup<'_>,
    server: &TestServer,
) -> Result<InFlightRun> {
    let mut bridge =
        BridgeProcess::spawn_with(binary, &server.url("/mcp"), setup.fixtures, &[], &[])?;
    bridge.initialize(Instant::now())?;
    thread::sleep(SETTLE);
    let watch = RssWatch::start(bridge.pid(), RSS_CEILING_KIB);
    let mut batch = String::new();
    for id in 1..=IN_FLIGHT as i64 {
        batch.push_str(&messages::slow(id, IN_FLIGHT_SLOW_MS));
        batch.push('\n');
    }
    bridge.send(&batch)?;
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered < IN_FLIGHT && Instant::now() < deadline && !watch.killed() {
        let Some(line) = bridge.next_line(Duration::from_millis(50)) else {
            continue;
        };
        if messages::response_id(&line.text).ok().flatten().is_some() {
            answered += 1;
        }
    }
    let peak = watch.finish();
    bridge.end(Ending::Eof, EXIT_CAP);
    Ok(InFlightRun { peak, answered })
}

/// Set in a child copy of the benchmark: it runs the direct client's share of `in_flight`.
const ROLE_VAR: &str = "BENCH_ROLE_DIRECT_IN_FLIGHT";

/// The direct client's peak RSS for the same calls. In a child process so that the figure is
/// the client's alone, not the server's and the benchmark's.
fn direct_in_flight(url: &str, fixtures: &Path) -> Result<(RssPeak, usize)> {
    let exe = std::env::current_exe().map_err(|e| BenchError::DirectSetup(e.to_string()))?;
    let child = Command::new(&exe)
        .env(ROLE_VAR, url)
        .env("BENCH_ROLE_FIXTURES", fixtures)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BenchError::Spawn(exe.clone(), e))?;
    let watch = RssWatch::start(child.id(), RSS_CEILING_KIB);
    let pid = child.id();
    let (tx, done) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = done.recv_timeout(Duration::from_secs(60));
    if output.is_err() {
        crate::bridge_proc::kill(pid);
    }
    let peak = watch.finish();
    let _ = waiter.join();
    let answered = match output {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        _ => 0,
    };
    Ok((peak, answered))
}

/// In the child copy: the direct client's calls, then how many were answered on stdout.
/// None when this process is not that child.
pub fn child_role() -> Option<Result<()>> {
    let url = std::env::var(ROLE_VAR).ok()?;
    let fixtures = std::env::var_os("BENCH_ROLE_FIXTURES")?;
    Some(direct_child(&url, Path::new(&fixtures)))
}

fn direct_child(url: &str, fixtures: &Path) -> Result<()> {
    let direct = DirectClient::connect(url, fixtures)?;
    let answered = thread::scope(|scope| {
        let calls: Vec<_> = (1..=IN_FLIGHT as i64)
            .map(|id| {
                let direct = &direct;
                scope.spawn(move || {
                    direct
                        .call(id, &messages::slow(id, IN_FLIGHT_SLOW_MS))
                        .is_ok()
                })
            })
            .collect();
        calls
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|ok| *ok)
            .count()
    });
    direct.delete_session()?;
    println!("{answered}");
    Ok(())
}
