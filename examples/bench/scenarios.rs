//! The measurements, each run for the bridge and for the direct client against the same server,
//! interleaved or back to back so that both see the same machine state.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::affinity::{self, Pinning};
use crate::bridge_proc::{BridgeProcess, Memory};
use crate::direct::DirectClient;
use crate::error::{BenchError, Result};
use crate::messages;

/// How much of everything to do. `BENCH_QUICK=1` gives a smoke run of a few seconds.
pub struct Plan {
    pub quick: bool,
    pub cold_runs: usize,
    pub warmup_calls: usize,
    /// Sequential echo calls per client, split into `sequential_rounds` alternating blocks.
    pub sequential_calls: usize,
    pub sequential_rounds: usize,
    pub burst_size: usize,
    pub burst_rounds: usize,
    pub slow_ms: u64,
    pub fast_beside_slow: usize,
    pub big_bytes: usize,
    pub big_runs: usize,
}

impl Plan {
    pub fn from_env() -> Plan {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Plan {
                quick,
                cold_runs: 3,
                warmup_calls: 10,
                sequential_calls: 60,
                sequential_rounds: 3,
                burst_size: 200,
                burst_rounds: 1,
                slow_ms: 300,
                fast_beside_slow: 20,
                big_bytes: 5_000_000,
                big_runs: 1,
            }
        } else {
            Plan {
                quick,
                cold_runs: 10,
                warmup_calls: 100,
                sequential_calls: 500,
                sequential_rounds: 5,
                burst_size: 200,
                burst_rounds: 4,
                slow_ms: 2000,
                fast_beside_slow: 20,
                big_bytes: 5_000_000,
                big_runs: 5,
            }
        }
    }
}

/// One figure for each client.
#[derive(Default)]
pub struct Pair<T> {
    pub bridge: T,
    pub direct: T,
}

pub struct Measurements {
    /// Bridge: spawn → initialize answered. Direct: parse flags, load identity, build agent,
    /// initialize (TCP + TLS handshake + POST).
    pub cold_start: Pair<Vec<Duration>>,
    /// Bridge: stdin EOF → process exited (it DELETEs the session first). Direct: the DELETE.
    pub exit: Pair<Vec<Duration>>,
    /// Sequential echo latencies, in rounds of equal size (see `Plan::sequential_rounds`).
    pub echo: Pair<Vec<Duration>>,
    /// The first burst opens new connections; later ones reuse the pool.
    pub burst_first: Pair<Duration>,
    pub burst_warm: Pair<Vec<Duration>>,
    pub beside_slow: Pair<Vec<Duration>>,
    /// When the slow call itself was answered, from its request.
    pub slow_total: Pair<Duration>,
    pub big: Pair<Vec<Duration>>,
    /// Bytes of the largest message the bridge carried (the big result's stdout line).
    pub largest_message: usize,
    /// The long-lived bridge's memory after each phase, in order (VmHWM only grows).
    pub memory: Vec<(&'static str, Memory)>,
    /// Peak of the long-lived bridge over its whole life (all the phases above).
    pub lifetime_peak_kib: u64,
    /// Peak of a fresh bridge that only initializes and carries one large result.
    pub single_big_peak_kib: u64,
    /// Exit of the long-lived bridge after all the load above.
    pub exit_after_load: Duration,
}

/// Where the bridge is and where the server listens.
pub struct Setup<'a> {
    pub binary: &'a Path,
    pub fixtures: &'a Path,
    pub url: String,
    /// `BENCH_PIN=1`: the CPU every bridge is moved to.
    pub pinning: Option<Pinning>,
}

impl Setup<'_> {
    /// Start a bridge (pinned if asked; its first threads may start before the pin, so
    /// `pin_again` should follow initialize).
    fn spawn_bridge(&self) -> Result<BridgeProcess> {
        let bridge = BridgeProcess::spawn(self.binary, &self.url, self.fixtures)?;
        self.pin_again(&bridge);
        Ok(bridge)
    }

    fn pin_again(&self, bridge: &BridgeProcess) {
        if let Some(pinning) = &self.pinning {
            affinity::pin_process(bridge.pid(), pinning.bridge_cpu);
        }
    }
}

/// Distinct request ids for one client.
struct Ids(i64);

impl Ids {
    fn next(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

/// Lets the bridge open its GET stream after `notifications/initialized`, as it would in real use
/// before any EOF or memory reading.
const SETTLE: Duration = Duration::from_millis(50);
/// How long the slow call is given to reach the server before the fast calls start.
const SLOW_HEAD_START: Duration = Duration::from_millis(50);

pub fn run(plan: &Plan, setup: &Setup<'_>) -> Result<Measurements> {
    progress("cold start and exit");
    let (cold_start, exit) = cold_starts(plan, setup)?;

    progress("long-lived bridge and direct client");
    let mut bridge = setup.spawn_bridge()?;
    bridge.initialize(Instant::now())?;
    thread::sleep(SETTLE);
    setup.pin_again(&bridge);
    let mut memory = vec![("right after initialize", bridge.memory()?)];
    let direct = DirectClient::connect(&setup.url, setup.fixtures)?;
    let (mut bridge_ids, mut direct_ids) = (Ids(0), Ids(0));

    for _ in 0..plan.warmup_calls {
        let id = bridge_ids.next();
        bridge.call(id, &messages::echo(id))?;
        let id = direct_ids.next();
        direct_call(&direct, id, &messages::echo(id))?;
    }

    progress("sequential echo calls");
    let mut echo = Pair::<Vec<Duration>>::default();
    let per_round = plan.sequential_calls / plan.sequential_rounds.max(1);
    for _ in 0..plan.sequential_rounds {
        for _ in 0..per_round {
            let id = bridge_ids.next();
            echo.bridge.push(bridge.call(id, &messages::echo(id))?.0);
        }
        for _ in 0..per_round {
            let id = direct_ids.next();
            echo.direct
                .push(direct_call(&direct, id, &messages::echo(id))?.0);
        }
    }
    memory.push(("after the sequential calls", bridge.memory()?));

    progress("concurrent bursts");
    let mut burst_first = Pair::<Duration>::default();
    let mut burst_warm = Pair::<Vec<Duration>>::default();
    for round in 0..plan.burst_rounds {
        let b = bridge_burst(&mut bridge, &mut bridge_ids, plan.burst_size)?;
        let d = direct_burst(&direct, &mut direct_ids, plan.burst_size)?;
        if round == 0 {
            burst_first = Pair {
                bridge: b,
                direct: d,
            };
        } else {
            burst_warm.bridge.push(b);
            burst_warm.direct.push(d);
        }
    }
    memory.push(("after the concurrent bursts", bridge.memory()?));

    progress("fast calls beside a slow one");
    let (bridge_fast, bridge_slow) = bridge_beside_slow(&mut bridge, &mut bridge_ids, plan)?;
    let (direct_fast, direct_slow) = direct_beside_slow(&direct, &mut direct_ids, plan)?;
    memory.push(("after the slow call", bridge.memory()?));

    progress("large result");
    let mut big = Pair::<Vec<Duration>>::default();
    let mut largest_message = 0;
    for _ in 0..plan.big_runs {
        let id = bridge_ids.next();
        let (took, line) = bridge.call(id, &messages::big(id, plan.big_bytes))?;
        largest_message = largest_message.max(line.text.len());
        big.bridge.push(took);
        let id = direct_ids.next();
        big.direct
            .push(direct_call(&direct, id, &messages::big(id, plan.big_bytes))?.0);
    }

    let before_eof = bridge.memory()?;
    memory.push(("just before EOF, after the large results", before_eof));
    let exit_after_load = bridge.close_and_time_exit()?;
    direct.delete_session()?;

    progress("memory of a bridge carrying one large result");
    let mut fresh = setup.spawn_bridge()?;
    fresh.initialize(Instant::now())?;
    thread::sleep(SETTLE);
    setup.pin_again(&fresh);
    let (_, line) = fresh.call(1, &messages::big(1, plan.big_bytes))?;
    largest_message = largest_message.max(line.text.len());
    drop(line);
    let single_big_peak_kib = fresh.memory()?.peak_kib;
    fresh.close_and_time_exit()?;

    Ok(Measurements {
        cold_start,
        exit,
        echo,
        burst_first,
        burst_warm,
        beside_slow: Pair {
            bridge: bridge_fast,
            direct: direct_fast,
        },
        slow_total: Pair {
            bridge: bridge_slow,
            direct: direct_slow,
        },
        big,
        largest_message,
        memory,
        lifetime_peak_kib: before_eof.peak_kib,
        single_big_peak_kib,
        exit_after_load,
    })
}

fn progress(what: &str) {
    eprintln!("bench: {what}…");
}

type ColdFigures = (Pair<Vec<Duration>>, Pair<Vec<Duration>>);

/// Alternating fresh bridges and fresh direct clients; the first pair is a discarded warm-up
/// (page cache, lazy statics of the server).
fn cold_starts(plan: &Plan, setup: &Setup<'_>) -> Result<ColdFigures> {
    let mut start = Pair::<Vec<Duration>>::default();
    let mut exit = Pair::<Vec<Duration>>::default();
    for run in 0..=plan.cold_runs {
        let spawned_at = Instant::now();
        let mut bridge = setup.spawn_bridge()?;
        let bridge_start = bridge.initialize(spawned_at)?;
        thread::sleep(SETTLE);
        let bridge_exit = bridge.close_and_time_exit()?;

        let connect_at = Instant::now();
        let direct = DirectClient::connect(&setup.url, setup.fixtures)?;
        let direct_start = connect_at.elapsed();
        let delete_at = Instant::now();
        direct.delete_session()?;
        let direct_exit = delete_at.elapsed();

        if run > 0 {
            start.bridge.push(bridge_start);
            start.direct.push(direct_start);
            exit.bridge.push(bridge_exit);
            exit.direct.push(direct_exit);
        }
    }
    Ok((start, exit))
}

/// A direct call timed from just before the POST to the response being complete.
fn direct_call(direct: &DirectClient, id: i64, request: &str) -> Result<(Duration, String)> {
    let start = Instant::now();
    let (at, text) = direct.call(id, request)?;
    Ok((at.duration_since(start), text))
}

/// Write all requests at once, then read every answer: the wall time until the last one.
fn bridge_burst(bridge: &mut BridgeProcess, ids: &mut Ids, size: usize) -> Result<Duration> {
    let mut batch = String::new();
    for _ in 0..size {
        batch.push_str(&messages::echo(ids.next()));
        batch.push('\n');
    }
    let start = bridge.send(&batch)?;
    let mut last = start;
    for _ in 0..size {
        let (_, line) = bridge.next_response()?;
        last = last.max(line.at);
    }
    Ok(last.duration_since(start))
}

/// One thread per request, as the bridge has one worker per request in flight.
fn direct_burst(direct: &DirectClient, ids: &mut Ids, size: usize) -> Result<Duration> {
    let requests: Vec<(i64, String)> = (0..size)
        .map(|_| {
            let id = ids.next();
            (id, messages::echo(id))
        })
        .collect();
    let start = Instant::now();
    let finished: Vec<Result<Instant>> = thread::scope(|scope| {
        let handles: Vec<_> = requests
            .iter()
            .map(|(id, request)| scope.spawn(move || direct.call(*id, request).map(|r| r.0)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(thread_panicked())))
            .collect()
    });
    let mut last = start;
    for at in finished {
        last = last.max(at?);
    }
    Ok(last.duration_since(start))
}

fn thread_panicked() -> BenchError {
    BenchError::Http {
        what: "concurrent call".into(),
        detail: "its thread panicked".into(),
    }
}

/// The slow call goes first; the fast ones follow one after another while it is in flight.
/// Returns the fast calls' latencies and the slow call's own time.
fn bridge_beside_slow(
    bridge: &mut BridgeProcess,
    ids: &mut Ids,
    plan: &Plan,
) -> Result<(Vec<Duration>, Duration)> {
    let slow_id = ids.next();
    let slow_start = bridge.send(&format!("{}\n", messages::slow(slow_id, plan.slow_ms)))?;
    thread::sleep(SLOW_HEAD_START);
    let mut fast = Vec::with_capacity(plan.fast_beside_slow);
    for _ in 0..plan.fast_beside_slow {
        let id = ids.next();
        fast.push(bridge.call(id, &messages::echo(id))?.0);
    }
    let slow = bridge.response(slow_id)?;
    Ok((fast, slow.at.duration_since(slow_start)))
}

fn direct_beside_slow(
    direct: &DirectClient,
    ids: &mut Ids,
    plan: &Plan,
) -> Result<(Vec<Duration>, Duration)> {
    let slow_id = ids.next();
    let slow_request = messages::slow(slow_id, plan.slow_ms);
    thread::scope(|scope| {
        let slow = scope.spawn(|| direct_call(direct, slow_id, &slow_request).map(|r| r.0));
        thread::sleep(SLOW_HEAD_START);
        let mut fast = Vec::with_capacity(plan.fast_beside_slow);
        for _ in 0..plan.fast_beside_slow {
            let id = ids.next();
            fast.push(direct_call(direct, id, &messages::echo(id))?.0);
        }
        let slow = slow.join().unwrap_or_else(|_| Err(thread_panicked()))?;
        Ok((fast, slow))
    })
}
