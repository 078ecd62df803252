//! The bridge: stdin → dispatcher → remote server → stdout, on std threads and channels.
//!
//! ```text
//! stdin ─► reader ─► dispatcher ─► worker per request ──► Remote ──┐
//!                       │  └─► notifications/responses (in order, │
//!                       │      each accepted before the next)     ▼
//!                       └───── in-flight table ◄──────────── writer ─► stdout
//!                                                 GET stream ──┘
//! ```
//! The dispatcher keeps the client's order: notifications and responses are accepted by the
//! server before anything later is sent; requests go out in order but run concurrently.

pub mod legacy;
pub mod pending;
pub mod pump;
pub mod remote;
pub mod signals;
pub mod sink;
pub mod stdin;
pub mod stdout;
pub mod tool_headers;
pub mod workers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::http::diagnose::Severity;
use crate::http::{Http, MAX_IN_FLIGHT};
use crate::jsonrpc::{self, Kind};
use pending::Pending;
use pump::MAX_MESSAGE;
use remote::Remote;
use sink::{Sink, StdoutSink};
use stdout::Out;

/// What the dispatcher hears about, in order.
#[derive(Debug)]
pub enum Input {
    /// One line from stdin (one JSON-RPC frame).
    Line(Vec<u8>),
    /// A stdin line longer than the bound (already skipped).
    TooLong,
    /// stdin reached EOF: the client is done.
    Eof,
    /// Stop now.
    Stop(StopReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    StdoutClosed,
}

/// How long shutdown may take: Python's stdio client sends SIGTERM 2 s after closing stdin, so
/// in-flight answers get up to EOF_GRACE and the session DELETE up to DELETE_TIMEOUT.
const EOF_GRACE: Duration = Duration::from_millis(1000);
const DELETE_TIMEOUT: Duration = Duration::from_millis(700);

/// Run the bridge until stdin closes, a signal arrives or stdout closes. Returns the exit code.
pub fn run(config: Config, http: Http, events: (Sender<Input>, Receiver<Input>)) -> i32 {
    let config = Arc::new(config);
    let (input_tx, input_rx) = events;
    let stop = Arc::new(AtomicBool::new(false));
    let input_closed = Arc::new(AtomicBool::new(false));
    let pending = Arc::new(Pending::new());
    let (out_tx, out_rx) = mpsc::channel::<Out>();

    let on_signal = {
        let (stop, tx) = (Arc::clone(&stop), input_tx.clone());
        move |sig| {
            log::debug!("signal {sig} received: shutting down");
            stop.store(true, Ordering::SeqCst);
            let _ = tx.send(Input::Stop(StopReason::Signal));
        }
    };
    let started = signals::watch(on_signal)
        .and_then(|()| stdout::spawn(out_rx, Arc::clone(&pending), input_tx.clone()))
        .and_then(|_| stdin::spawn(input_tx.clone(), MAX_MESSAGE, Arc::clone(&input_closed)));
    if let Err(e) = started {
        log::error!("cannot start the bridge threads: {e}");
        return 1;
    }

    let sink: Arc<dyn Sink> = Arc::new(StdoutSink {
        tx: out_tx.clone(),
        pending: Arc::clone(&pending),
        stop: Arc::clone(&stop),
    });
    let remote = Remote::new(Arc::clone(&config), http.clone(), Arc::clone(&sink));
    let dispatcher = Dispatcher {
        remote: Arc::clone(&remote),
        sink,
        pending: Arc::clone(&pending),
        out: out_tx.clone(),
        workers: Arc::new(WorkerLimit::new(MAX_IN_FLIGHT)),
        fatal: Arc::new(Mutex::new(None)),
        input_closed,
        prepared: false,
        pool: workers::Workers::new(),
    };
    let exit_code = dispatcher.run(&input_rx);

    // Shutdown: end the session politely, then interrupt everything still reading.
    stop.store(true, Ordering::SeqCst);
    remote.close(DELETE_TIMEOUT);
    http.agent.clone().shutdown();
    let (ack_tx, ack_rx) = mpsc::channel();
    if out_tx.send(Out::Flush(ack_tx)).is_ok() {
        let _ = ack_rx.recv_timeout(Duration::from_millis(500));
    }
    signals::shutdown_complete();
    exit_code
}

/// Bounds the number of requests in flight; the dispatcher waits for a free slot.
struct WorkerLimit {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl WorkerLimit {
    fn new(max: usize) -> Self {
        Self {
            busy: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    fn acquire(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= self.max {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
    }

    fn release(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        self.freed.notify_one();
    }
}

struct Dispatcher {
    remote: Arc<Remote>,
    sink: Arc<dyn Sink>,
    pending: Arc<Pending>,
    out: Sender<Out>,
    workers: Arc<WorkerLimit>,
    /// Set by a worker whose request failed for a setup reason on the first initialize.
    fatal: Arc<Mutex<Option<String>>>,
    input_closed: Arc<AtomicBool>,
    prepared: bool,
    pool: workers::Workers,
}

impl Dispatcher {
    /// Handle input until EOF or a stop; returns the exit code.
    fn run(mut self, input: &Receiver<Input>) -> i32 {
        while let Ok(event) = input.recv() {
            match event {
                Input::Line(line) => self.dispatch(line),
                Input::TooLong => {
                    log::warn!(
                        "a stdin message exceeded {} MiB and was skipped",
                        MAX_MESSAGE >> 20
                    );
                    self.write_error(None, jsonrpc::INVALID_REQUEST, "message too large");
                }
                Input::Eof => {
                    log::debug!("stdin closed: shutting down");
                    self.finish_in_flight(input);
                    return 0;
                }
                Input::Stop(reason) => {
                    log::debug!("stopping: {reason:?}");
                    return 0;
                }
            }
            if let Some(why) = self.fatal.lock().ok().and_then(|f| f.clone()) {
                log::error!("{why}");
                return 1;
            }
        }
        0
    }

    fn dispatch(&mut self, line: Vec<u8>) {
        let info = match jsonrpc::classify(&line) {
            Ok(info) => info,
            Err(e) => {
                log::warn!("stdin line is not a JSON-RPC message: {e}");
                let code = match e {
                    jsonrpc::FrameError::NotJson(_) => jsonrpc::PARSE_ERROR,
                    _ => jsonrpc::INVALID_REQUEST,
                };
                self.write_error(None, code, &format!("{e}"));
                return;
            }
        };
        log::debug!(
            "client → server: {:?} {}",
            info.kind,
            info.method.as_deref().unwrap_or("")
        );
        if !self.prepared {
            if let Err(f) = self.remote.prepare() {
                if let (Kind::Request, Some(id)) = (info.kind, &info.id) {
                    self.pending.insert(id.clone());
                    self.sink.fail(id, f.code, &f.message);
                } else {
                    log::warn!("{}", f.message);
                }
                if f.severity == Severity::Setup {
                    self.set_fatal(f.message);
                }
                return;
            }
            self.prepared = true;
        }
        match info.kind {
            Kind::Request => self.start_request(line, info),
            Kind::Notification
                if info.method.as_deref() == Some("notifications/cancelled")
                    && info
                        .cancelled_request_id
                        .as_ref()
                        .is_some_and(|id| self.remote.cancel(id)) =>
            {
                // 2026-07-28: closing the request's stream was the cancellation; nothing to POST.
            }
            Kind::Notification | Kind::Response => {
                if let Some(cancelled) = &info.cancelled_request_id {
                    // The client gave up on it: a late answer is dropped, and none is owed.
                    self.sink.forget(cancelled);
                }
                if let Err(f) = self.remote.send(line, &info) {
                    log::warn!(
                        "the server did not accept {}: {}",
                        info.method.as_deref().unwrap_or("a response"),
                        f.message
                    );
                }
            }
        }
    }

    fn start_request(&mut self, line: Vec<u8>, info: jsonrpc::FrameInfo) {
        let Some(id) = info.id.clone() else { return };
        let method = info.method.clone().unwrap_or_default();
        if !self.pending.insert(id.clone()) {
            log::warn!(
                "the client reused id {} while it is still in flight",
                id.to_json()
            );
        }
        self.workers.acquire();
        let remote = Arc::clone(&self.remote);
        let workers = Arc::clone(&self.workers);
        let is_initialize = method == "initialize";
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = self.pool.run(move || {
            // The slot is freed as soon as the answer is out; reading the rest of the
            // stream (for connection reuse) does not count against the limit.
            let slot = std::sync::Once::new();
            let release = || slot.call_once(|| workers.release());
            let failure = remote.request_then(line, &info, &release);
            let _ = done_tx.send(failure);
            release();
        });
        if let Err(e) = spawned {
            self.workers.release();
            self.sink.fail(
                &id,
                jsonrpc::TRANSPORT_ERROR,
                &format!("cannot start a worker thread: {e}"),
            );
            return;
        }
        if is_initialize {
            // Nothing else may go out before the session exists (the client only pings meanwhile).
            match self.wait_worker(&done_rx) {
                Some(Some(failure)) if failure.severity == Severity::Setup => {
                    self.set_fatal(failure.message)
                }
                Some(_) => self.wait_answered(&id),
                None => {}
            }
        }
    }

    /// Wait for a worker's outcome, unless input closes or the bridge stops first.
    fn wait_worker(
        &self,
        done: &Receiver<Option<remote::Failure>>,
    ) -> Option<Option<remote::Failure>> {
        let mut closed_since = None;
        loop {
            match done.recv_timeout(Duration::from_millis(20)) {
                Ok(outcome) => return Some(outcome),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.give_up_waiting(&mut closed_since) {
                        return None;
                    }
                }
            }
        }
    }

    /// A wait on the server ends when the bridge stops, or EOF_GRACE after stdin closed.
    fn give_up_waiting(&self, closed_since: &mut Option<Instant>) -> bool {
        if self.sink.stopped() {
            return true;
        }
        if self.input_closed.load(Ordering::Relaxed) {
            let since = *closed_since.get_or_insert_with(Instant::now);
            return since.elapsed() >= EOF_GRACE;
        }
        false
    }

    /// After stdin EOF, give requests still in flight a moment to be answered (a script that
    /// writes its requests and closes stdin still gets its answers), bounded so that the whole
    /// shutdown stays within the ~2 s an MCP client allows before SIGTERM.
    fn finish_in_flight(&self, input: &Receiver<Input>) {
        let deadline = Instant::now() + EOF_GRACE;
        while !self.pending.is_empty() && Instant::now() < deadline {
            if let Ok(Input::Stop(_)) = input.recv_timeout(Duration::from_millis(20)) {
                return;
            }
        }
    }

    /// Wait until `id` is answered, or input closes / the bridge stops.
    fn wait_answered(&self, id: &jsonrpc::Id) {
        let mut closed_since = None;
        while !self
            .pending
            .wait_answered(id, Instant::now() + Duration::from_millis(20))
        {
            if self.give_up_waiting(&mut closed_since) {
                return;
            }
        }
    }

    fn set_fatal(&self, why: String) {
        if let Ok(mut f) = self.fatal.lock() {
            *f = Some(why);
        }
    }

    fn write_error(&self, id: Option<&jsonrpc::Id>, code: i64, message: &str) {
        let frame = jsonrpc::error_response(id, code, message, None);
        let _ = self.out.send(Out::Frame {
            frame,
            answers: None,
        });
    }
}
