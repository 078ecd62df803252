//! The dispatcher: one event loop that owns the order of the client's messages and the requests
//! in flight. It never blocks on the network or on a lock held across I/O: a request runs on a
//! worker, a notification or response on the ordered sender, and whatever has to wait (a free
//! slot, the session's initialize, an earlier notification's 202) waits in a queue here.
//!
//! Ordering rules, the client's order kept where it matters:
//! - nothing goes out while the client's `initialize` is in flight (the session does not exist);
//! - a request waits until the notifications before it were accepted (`notifications/initialized`
//!   must reach the server before `tools/list`);
//! - requests run concurrently, at most [`MAX_IN_FLIGHT`] at once; more wait for a slot.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pending::Pending;
use super::sender::Message;
use super::stdout::Out;
use super::workers::Workers;
use super::{Event, EOF_GRACE};
use crate::http::cancel::{self, CancelHandle};
use crate::http::MAX_IN_FLIGHT;
use crate::jsonrpc::{self, FrameInfo, Id, Kind};
use crate::transport::budget::{Held, PER_MESSAGE_OVERHEAD};
use crate::transport::stop::Stop;
use crate::transport::{Remote, Sink};

/// How often the loop wakes when nothing happens (only while shutting down).
const TICK: Duration = Duration::from_millis(20);
/// Notifications handed to the sender and not yet accepted; later lines wait here beyond it.
const SENDER_BACKLOG: usize = 256;

/// A client message that could not go out yet.
struct Queued {
    frame: Vec<u8>,
    info: FrameInfo,
    /// The line's room in the memory budget, given back once the message is sent.
    held: Held,
}

/// A request on a worker.
struct Running {
    cancel: Arc<CancelHandle>,
    /// 2026-07-28: closing the stream is the cancellation; nothing is POSTed for it.
    modern: bool,
}

pub struct Dispatcher {
    remote: Arc<Remote>,
    sink: Arc<dyn Sink>,
    pending: Arc<Pending>,
    out: Sender<Out>,
    sender: Sender<Message>,
    stop: Arc<Stop>,
    /// Workers report to the dispatcher's own channel.
    events: SyncSender<Event>,
    pool: Workers,
    running: HashMap<Id, Running>,
    /// Client messages held back, in the client's order (see the module docs).
    held: VecDeque<Queued>,
    /// Requests waiting for a free slot, in order.
    waiting_for_slot: VecDeque<Queued>,
    /// The client's initialize in flight: everything else waits for it.
    initializing: Option<Id>,
    /// Whether the client's first initialize has finished (its setup failures are fatal).
    initialized_once: bool,
    /// Messages handed to the ordered sender and not yet accepted.
    sender_busy: usize,
    /// Their handles, oldest (the one being sent) first: when each reached the server.
    sending: VecDeque<Arc<CancelHandle>>,
    /// When stdin closed: see [`Dispatcher::grace_over`].
    eof_at: Option<Instant>,
    /// The latest time a finished request or sent message had reached the server.
    last_reached: Option<Instant>,
}

impl Dispatcher {
    pub fn new(
        remote: Arc<Remote>,
        sink: Arc<dyn Sink>,
        pending: Arc<Pending>,
        out: Sender<Out>,
        sender: Sender<Message>,
        stop: Arc<Stop>,
        events: SyncSender<Event>,
    ) -> Self {
        Self {
            remote,
            sink,
            pending,
            out,
            sender,
            stop,
            events,
            pool: Workers::new(),
            running: HashMap::new(),
            held: VecDeque::new(),
            waiting_for_slot: VecDeque::new(),
            initializing: None,
            initialized_once: false,
            sender_busy: 0,
            sending: VecDeque::new(),
            eof_at: None,
            last_reached: None,
        }
    }

    /// Handle events until EOF (and the grace after it) or a stop; returns the exit code.
    pub fn run(mut self, events: &Receiver<Event>) -> i32 {
        loop {
            let event = match self.eof_at {
                None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(_) => events.recv_timeout(TICK),
            };
            match event {
                Ok(Event::Line(line, held)) => self.on_line(line, held),
                Ok(Event::TooLong(head)) => self.on_too_long(&head),
                Ok(Event::Eof) => {
                    log::debug!("stdin closed: finishing the requests in flight");
                    self.stop.close();
                    self.eof_at = Some(Instant::now());
                }
                Ok(Event::Stop(reason)) => {
                    log::debug!("stopping: {reason:?}");
                    return 0;
                }
                Ok(Event::Finished { id, failure }) => {
                    if let Some(why) = self.on_finished(id, failure) {
                        log::error!("{why}");
                        return 1;
                    }
                }
                Ok(Event::Sent) => {
                    self.sender_busy = self.sender_busy.saturating_sub(1);
                    if let Some(sent) = self.sending.pop_front() {
                        self.note_reached(&sent);
                    }
                    self.release_held();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return 0,
            }
            if let Some(closed) = self.eof_at {
                if self.all_answered() || self.grace_over(closed) {
                    return 0;
                }
            }
        }
    }

    /// After EOF, whether to stop waiting for answers. What the client sent before EOF is owed
    /// an answer, and the time it takes to *reach* the server (TCP connect, TLS handshake, proxy
    /// CONNECT) is not the server's slowness: a first handshake took more than the whole grace
    /// under qemu-user. So the grace does not run while a request or message is still on its
    /// way (each such wait is bounded by --connect-timeout / the request's timeout), and it
    /// counts from the latest moment one reached the server, or from EOF if that was later.
    /// A server that holds what it has (`hang`, a held notification) still gets EOF_GRACE only.
    fn grace_over(&self, closed: Instant) -> bool {
        let on_the_way = self.running.values().map(|r| &r.cancel);
        let on_the_way = on_the_way.chain(self.sending.front());
        let mut from = closed.max(self.last_reached.unwrap_or(closed));
        for handle in on_the_way {
            match handle.reached_at() {
                Some(at) => from = from.max(at),
                None => return false,
            }
        }
        from.elapsed() >= EOF_GRACE
    }

    /// Remember when a request or message that no longer counts had reached the server.
    fn note_reached(&mut self, handle: &CancelHandle) {
        if let Some(at) = handle.reached_at() {
            self.last_reached = Some(self.last_reached.map_or(at, |last| last.max(at)));
        }
    }

    /// After EOF: nothing the client is still owed, and nothing left to send.
    fn all_answered(&self) -> bool {
        self.pending.is_empty() && self.held.is_empty() && self.sender_busy == 0
    }

    fn on_line(&mut self, line: Vec<u8>, held: Held) {
        let info = match jsonrpc::classify(&line) {
            Ok(info) => info,
            Err(e) => return self.refuse(&line, held, &e),
        };
        log::debug!(
            "client → server: {:?} {}",
            info.kind,
            info.method.as_deref().unwrap_or("")
        );
        if info.kind == Kind::Request {
            if let Some(id) = &info.id {
                if !self.pending.insert(id.clone()) {
                    log::warn!(
                        "the client reused id {} while it is still in flight",
                        id.to_json()
                    );
                }
            }
        }
        if let Some(cancelled) = &info.cancelled_request_id {
            if self.cancel_queued(cancelled) {
                return;
            }
        }
        let queued = Queued {
            frame: line,
            info,
            held,
        };
        if self.held.is_empty() && self.can_go(&queued) {
            self.go(queued);
        } else {
            self.held.push_back(queued);
        }
    }

    /// Whether a message may go out now, given what is in flight before it.
    fn can_go(&self, queued: &Queued) -> bool {
        if self.initializing.is_some() {
            return false;
        }
        match queued.info.kind {
            Kind::Request => self.sender_busy == 0,
            _ => self.sender_busy < SENDER_BACKLOG,
        }
    }

    /// Send held messages that may now go, in order.
    fn release_held(&mut self) {
        while let Some(front) = self.held.front() {
            if !self.can_go(front) {
                return;
            }
            if let Some(queued) = self.held.pop_front() {
                self.go(queued);
            }
        }
    }

    fn go(&mut self, queued: Queued) {
        match queued.info.kind {
            Kind::Request => {
                if self.running.len() < MAX_IN_FLIGHT {
                    self.start(queued);
                } else {
                    self.waiting_for_slot.push_back(queued);
                }
            }
            Kind::Notification | Kind::Response => {
                if let Some(cancelled) = queued.info.cancelled_request_id.clone() {
                    if !self.cancel_running(&cancelled) {
                        return; // 2026-07-28: closing the stream was the cancellation
                    }
                }
                let handle = Arc::new(CancelHandle::default());
                let message = Message {
                    frame: queued.frame,
                    info: queued.info,
                    held: queued.held,
                    handle: Arc::clone(&handle),
                };
                if self.sender.send(message).is_ok() {
                    self.sender_busy += 1;
                    self.sending.push_back(handle);
                }
            }
        }
    }

    /// Start a request on a worker.
    fn start(&mut self, queued: Queued) {
        let Queued { frame, info, held } = queued;
        let Some(id) = info.id.clone() else { return };
        let is_initialize = info.method.as_deref() == Some("initialize");
        let handle = Arc::new(CancelHandle::default());
        let remote = Arc::clone(&self.remote);
        let events = self.events.clone();
        let worker_handle = Arc::clone(&handle);
        let worker_id = id.clone();
        let modern = crate::modern::is_modern_request(&info);
        let spawned = self.pool.run(move || {
            let outcome =
                cancel::with_handle(Arc::clone(&worker_handle), || remote.request(frame, &info));
            // Once answered, a late cancel must not touch the connection (it may be pooled).
            worker_handle.release();
            let (failure, tail) = outcome.into_parts();
            let _ = events.send(Event::Finished {
                id: worker_id,
                failure,
            });
            // The slot is free: reading the rest of the stream (so that its connection can be
            // reused) does not count against the limit.
            tail.drain();
            drop(held);
        });
        if let Err(e) = spawned {
            self.sink.fail(
                &id,
                jsonrpc::TRANSPORT_ERROR,
                &format!("cannot start a worker thread: {e}"),
            );
            return;
        }
        if is_initialize {
            self.initializing = Some(id.clone());
        }
        self.running.insert(
            id,
            Running {
                cancel: handle,
                modern,
            },
        );
    }

    /// A request gave its slot back. Returns the reason to exit when the failure is fatal.
    fn on_finished(
        &mut self,
        id: Id,
        failure: Option<crate::transport::TransportError>,
    ) -> Option<String> {
        if let Some(finished) = self.running.remove(&id) {
            self.note_reached(&finished.cancel);
        }
        if self.initializing.as_ref() == Some(&id) {
            self.initializing = None;
            let first = !self.initialized_once;
            self.initialized_once = true;
            if let Some(f) = &failure {
                if first && f.is_setup() {
                    return Some(f.message().to_string());
                }
            }
        }
        while self.running.len() < MAX_IN_FLIGHT {
            match self.waiting_for_slot.pop_front() {
                Some(queued) => self.start(queued),
                None => break,
            }
        }
        self.release_held();
        None
    }

    /// A cancel for a request that never left the bridge: drop it, tell the server nothing.
    fn cancel_queued(&mut self, id: &Id) -> bool {
        let matches = |q: &Queued| q.info.kind == Kind::Request && q.info.id.as_ref() == Some(id);
        let before = self.held.len() + self.waiting_for_slot.len();
        self.held.retain(|q| !matches(q));
        self.waiting_for_slot.retain(|q| !matches(q));
        let found = self.held.len() + self.waiting_for_slot.len() < before;
        if found {
            log::debug!("request {} cancelled before it was sent", id.to_json());
            self.sink.forget(id);
        }
        found
    }

    /// A cancel for a request on a worker: close its stream (which frees its slot) and forget
    /// its answer. Returns whether the notification should still be POSTed (handshake era).
    fn cancel_running(&mut self, id: &Id) -> bool {
        self.sink.forget(id);
        match self.running.get(id) {
            Some(running) => {
                log::debug!("request {} cancelled: closing its stream", id.to_json());
                running.cancel.cancel();
                !running.modern
            }
            None => true,
        }
    }

    /// Answer a line that is not a JSON-RPC message, with its id whenever it can be read.
    /// Each error holds its own room in the budget until written (a refused batch of N ids makes
    /// N frames, larger than the line), so that a client that floods invalid lines without
    /// reading stdout is slowed down like any other. The dispatcher never waits for that room:
    /// it is charged, and the next stdin line waits instead.
    fn refuse(&self, line: &[u8], mut held: Held, e: &jsonrpc::FrameError) {
        log::warn!("stdin line is not a JSON-RPC message: {e}");
        let ids = jsonrpc::recover_ids(line);
        let ids: Vec<Option<&Id>> = match ids.is_empty() {
            true => vec![None],
            false => ids.iter().map(Some).collect(),
        };
        for id in ids {
            let frame = jsonrpc::error_response(id, e.code(), &e.to_string(), None);
            let mut room = held.split(0);
            room.charge(frame.len() + PER_MESSAGE_OVERHEAD);
            let _ = self.out.send(Out::Frame {
                frame,
                answers: None,
                held: room.into_queued(),
            });
        }
        // The line itself is no longer held: its errors are.
        drop(held);
    }

    fn on_too_long(&self, head: &[u8]) {
        let message = format!(
            "message too large: it exceeds the {} byte limit (raise it with --max-message-size)",
            self.remote.config().max_message
        );
        log::warn!("a stdin message was skipped: {message}");
        let id = jsonrpc::recover_ids(head).into_iter().next();
        self.write_error(id.as_ref(), jsonrpc::INVALID_REQUEST, &message, None);
    }

    fn write_error(&self, id: Option<&Id>, code: i64, message: &str, held: Option<Held>) {
        let frame = jsonrpc::error_response(id, code, message, None);
        let _ = self.out.send(Out::Frame {
            frame,
            answers: None,
            held: held.unwrap_or_default(),
        });
    }
}
