//! The bridge: the stdio side of mcp-secure-remote. Frames from stdin go to the remote server
//! through [`crate::transport`]; what the server sends goes to stdout.
//!
//! ```text
//! stdin ─► reader ─► dispatcher (event loop) ─┬─► sender ─► notifications/responses, in order
//!                        ▲     ▲              └─► workers (one per request) ─► transport ─┐
//!                        │     └── worker/sender results, stop, EOF (all events)          │
//!                        └── in-flight table ◄─────────────── writer ─► stdout ◄──────────┘
//!                                                     GET stream ──┘
//! ```
//! The dispatcher ([`dispatcher`]) is one loop over one channel of [`Event`]s. It never waits on
//! the network: requests run on workers, notifications and responses on the ordered sender, and
//! whatever must wait (for a free slot, for the session to exist) waits in a queue, not in a
//! thread. So stdin EOF and signals are always handled at once, whatever the server does.

pub mod dispatcher;
pub mod pending;
pub mod sender;
pub mod signals;
pub mod stdin;
pub mod stdout;
pub mod stdout_sink;
pub mod workers;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::http::Http;
use crate::jsonrpc::Id;
use crate::transport::budget::{Budget, Held};
use crate::transport::stop::Stop;
use crate::transport::{Remote, Sink, TransportError};
use pending::Pending;
use stdout::Out;
use stdout_sink::StdoutSink;

/// What the dispatcher hears about, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// One line from stdin (one JSON-RPC frame), with its room in the memory budget.
    Line(Vec<u8>, Held),
    /// A stdin line longer than the bound (skipped); its first bytes, to read the id from.
    TooLong(Vec<u8>),
    /// stdin reached EOF: the client is done.
    Eof,
    /// Stop now.
    Stop(StopReason),
    /// A request no longer holds its slot: answered, failed, or cancelled. `failure` is set when
    /// the transport gave up on it (already answered with an error).
    Finished {
        id: Id,
        failure: Option<TransportError>,
    },
    /// The ordered sender is done with one notification or response.
    Sent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    StdoutClosed,
}

/// Events waiting for the dispatcher.
const EVENT_QUEUE: usize = 1024;

/// How long shutdown may take: Python's stdio client sends SIGTERM 2 s after closing stdin, so
/// in-flight answers get up to EOF_GRACE, the session DELETE up to DELETE_TIMEOUT and the last
/// stdout flush up to FLUSH_TIMEOUT: 1.9 s in all. EOF_GRACE is the server's time to answer
/// what it has: it counts from EOF or from when the last request reached the server, whichever
/// is later, and does not run while one is still connecting (`Dispatcher::grace_over`).
pub const EOF_GRACE: Duration = Duration::from_millis(1000);
const DELETE_TIMEOUT: Duration = Duration::from_millis(700);
const FLUSH_TIMEOUT: Duration = Duration::from_millis(200);

/// Run the bridge until stdin closes, a signal arrives or stdout closes. Returns the exit code.
pub fn run(config: Config, http: Http) -> i32 {
    let config = Arc::new(config);
    // Every sender blocks when it is full, which is fine: the dispatcher never blocks, so it
    // always drains; and it never sends to itself.
    let (event_tx, event_rx) = mpsc::sync_channel(EVENT_QUEUE);
    let stop = Arc::new(Stop::new());
    let budget = Budget::new(config.memory_budget, Arc::clone(&stop));
    let pending = Arc::new(Pending::new());
    // Unbounded, and bounded all the same: everything queued for stdout is an answer to a
    // request the client sent (bounded by the in-flight table) or a server message whose
    // stream waits for room before reading on (see `stdout_sink`).
    let (out_tx, out_rx) = mpsc::channel::<Out>();

    let on_signal = {
        let (stop, tx) = (Arc::clone(&stop), event_tx.clone());
        move |sig| {
            log::debug!("signal {sig} received: shutting down");
            stop.stop();
            let _ = tx.send(Event::Stop(StopReason::Signal));
        }
    };
    let started = signals::watch(on_signal)
        .and_then(|()| stdout::spawn(out_rx, Arc::clone(&pending), event_tx.clone()))
        .and_then(|_| stdin::spawn(event_tx.clone(), config.max_message, Arc::clone(&budget)));
    if let Err(e) = started {
        log::error!("cannot start the bridge threads: {e}");
        return 1;
    }

    let sink: Arc<dyn Sink> = Arc::new(StdoutSink::new(out_tx.clone(), Arc::clone(&pending)));
    let remote = Remote::new(
        Arc::clone(&config),
        http.clone(),
        Arc::clone(&sink),
        Arc::clone(&stop),
        budget,
    );
    let sender = match sender::spawn(Arc::clone(&remote), event_tx.clone()) {
        Ok(sender) => sender,
        Err(e) => {
            log::error!("cannot start the bridge threads: {e}");
            return 1;
        }
    };
    let dispatcher = dispatcher::Dispatcher::new(
        Arc::clone(&remote),
        sink,
        pending,
        out_tx.clone(),
        sender,
        Arc::clone(&stop),
        event_tx,
    );
    let exit_code = dispatcher.run(&event_rx);

    // Shutdown: end the session politely, then interrupt everything still reading.
    stop.stop();
    remote.close(DELETE_TIMEOUT);
    http.agent.clone().shutdown();
    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
    if out_tx.send(Out::Flush(ack_tx)).is_ok() {
        let _ = ack_rx.recv_timeout(FLUSH_TIMEOUT);
    }
    signals::shutdown_complete();
    exit_code
}
