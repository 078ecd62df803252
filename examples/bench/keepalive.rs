//! Keep-alive edges (issue 18 item 3): calls sent on pooled connections exactly when the server's
//! 5 s keep-alive timeout ends. The test server drops a request that arrives on a connection idle
//! that long and cuts the connection (what a request crossing the server's close on the wire
//! meets), so every call sent on such a connection fails: the figure counts them. Run for the
//! bridge and for the direct client (the same agent in-process), against a server that announces
//! its timeout (`Keep-Alive: timeout=5`, Apache) and one that does not (nginx, HAProxy).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mcp_test_server::{ServerOptions, TestServer};
use serde_json::Value;

use crate::bridge_proc::BridgeProcess;
use crate::direct::DirectClient;
use crate::engine::{EngineSetup, Outcome};
use crate::error::{BenchError, Result};
use crate::messages;

/// The server's keep-alive timeout, and the pause before each round of calls.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Calls in all: `ROUNDS` rounds of `PER_ROUND` concurrent calls (so that a round reuses as many
/// pooled connections as it can, and the run takes ROUNDS × 5 s rather than 100 × 5 s).
pub const ROUNDS: i64 = 10;
pub const PER_ROUND: i64 = 10;
pub const CALLS: i64 = ROUNDS * PER_ROUND;
/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Failed calls out of `CALLS`, for the bridge and the direct client.
pub struct EdgeFigures {
    pub bridge: Outcome<i64>,
    pub direct: Outcome<i64>,
}

pub struct KeepAliveFigures {
    /// The server sends `Keep-Alive: timeout=5`.
    pub hinted: EdgeFigures,
    /// The server closes at 5 s without saying so.
    pub silent: EdgeFigures,
}

/// All four runs at once (each has its own server): the whole measurement takes about 55 s.
pub fn measure(setup: &EngineSetup<'_>) -> KeepAliveFigures {
    thread::scope(|scope| {
        let runs = [true, false].map(|hint| {
            let bridge = scope.spawn(move || bridge_edge(setup, hint).map_err(|e| e.to_string()));
            let direct = scope.spawn(move || direct_edge(setup, hint).map_err(|e| e.to_string()));
            (bridge, direct)
        });
        let [hinted, silent] = runs.map(|(bridge, direct)| EdgeFigures {
            bridge: bridge
                .join()
                .unwrap_or_else(|_| Err("the measuring thread panicked".into())),
            direct: direct
                .join()
                .unwrap_or_else(|_| Err("the measuring thread panicked".into())),
        });
        KeepAliveFigures { hinted, silent }
    })
}

/// The figures of a run that skipped this measurement, saying why.
pub fn skipped(why: &str) -> KeepAliveFigures {
    let edge = || EdgeFigures {
        bridge: Err(why.into()),
        direct: Err(why.into()),
    };
    KeepAliveFigures {
        hinted: edge(),
        silent: edge(),
    }
}

fn server(hint: bool) -> Result<TestServer> {
    TestServer::try_start_on(
        0,
        ServerOptions {
            keep_alive_timeout: Some(KEEP_ALIVE),
            keep_alive_hint: hint,
            ..ServerOptions::default()
        },
    )
    .map_err(|e| BenchError::Server(e.to_string()))
}

fn bridge_edge(setup: &EngineSetup<'_>, hint: bool) -> Result<i64> {
    let server = server(hint)?;
    let mut bridge = BridgeProcess::spawn(setup.binary, &server.url("/mcp"), setup.fixtures)?;
    bridge.initialize(Instant::now())?;
    let mut failed = 0;
    // Round 0 opens the connections the later rounds find in the pool; it is not counted.
    for round in 0..=ROUNDS {
        let ids: Vec<i64> = (0..PER_ROUND).map(|i| 1000 * (round + 1) + i).collect();
        let batch: String = ids.iter().map(|id| messages::echo(*id) + "\n").collect();
        bridge.send(&batch)?;
        // The answers come in any order: take the round's, whichever comes first.
        for _ in &ids {
            let (id, answered) = next_answer(&mut bridge)?;
            if !ids.contains(&id) {
                return Err(BenchError::BadReply {
                    what: format!("an answer to id {id}, which this round did not send"),
                    excerpt: String::new(),
                });
            }
            if round > 0 && !answered {
                failed += 1;
            }
        }
        if round < ROUNDS {
            thread::sleep(KEEP_ALIVE);
        }
    }
    drop(bridge);
    server.stop();
    Ok(failed)
}

/// The next response on the bridge's stdout: its id, and whether it is a result (an error is a
/// failed call here, not a failed measurement).
fn next_answer(bridge: &mut BridgeProcess) -> Result<(i64, bool)> {
    loop {
        let line = bridge
            .next_line(ANSWER_WAIT)
            .ok_or_else(|| BenchError::BadReply {
                what: format!("no answer within {} s", ANSWER_WAIT.as_secs()),
                excerpt: String::new(),
            })?;
        let Ok(message) = serde_json::from_str::<Value>(&line.text) else {
            continue;
        };
        if message.get("method").is_some() {
            continue; // a notification or a server request
        }
        if let Some(id) = message.get("id").and_then(Value::as_i64) {
            return Ok((id, message.get("result").is_some()));
        }
    }
}

fn direct_edge(setup: &EngineSetup<'_>, hint: bool) -> Result<i64> {
    let server = server(hint)?;
    let client = Arc::new(DirectClient::connect(&server.url("/mcp"), setup.fixtures)?);
    let mut failed = 0;
    for round in 0..=ROUNDS {
        let calls: Vec<_> = (0..PER_ROUND)
            .map(|i| {
                let client = Arc::clone(&client);
                let id = 1000 * (round + 1) + i;
                thread::spawn(move || client.call(id, &messages::echo(id)).is_ok())
            })
            .collect();
        for call in calls {
            let ok = call.join().unwrap_or(false);
            if round > 0 && !ok {
                failed += 1;
            }
        }
        if round < ROUNDS {
            thread::sleep(KEEP_ALIVE);
        }
    }
    drop(client);
    server.stop();
    Ok(failed)
}
