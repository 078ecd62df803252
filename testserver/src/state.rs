//! State shared by all connection threads: recordings, queued faults, Streamable HTTP sessions with
//! their event logs (for `Last-Event-ID` replay), legacy SSE sessions, pending server→client requests,
//! and the sockets and threads to tear down on stop.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Fault, RecordedRequest, ServerOptions, SessionSetup};

/// An event ready for an SSE stream: its id (if it has one) and JSON text.
#[derive(Debug, Clone)]
pub(super) struct Outbound {
    pub id: Option<String>,
    pub data: String,
}

/// Everything sent on one SSE stream of a session, so that a `Last-Event-ID` GET can replay it.
#[derive(Default)]
struct StreamLog {
    /// (sequence number, JSON text); sequence 0 is the data-less priming event and never logged.
    events: Vec<(u64, String)>,
    next_seq: u64,
    /// The GET stream that resumed this stream, if any: later events go there too.
    sink: Option<Sender<Outbound>>,
}

/// One Streamable HTTP session (or the single implicit one when sessions are off).
pub(super) struct Session {
    pub protocol_version: String,
    pub initialized: bool,
    /// The open standalone GET stream.
    listening: Option<Listener>,
    streams: HashMap<u64, StreamLog>,
    next_stream: u64,
    /// Resource uris the client subscribed to (and has not unsubscribed from).
    pub subscriptions: BTreeSet<String>,
    /// The level of the client's last `logging/setLevel`.
    pub log_level: Option<String>,
}

impl Session {
    fn new(protocol_version: &str) -> Session {
        Session {
            protocol_version: protocol_version.to_string(),
            initialized: false,
            listening: None,
            streams: HashMap::new(),
            next_stream: 1,
            subscriptions: BTreeSet::new(),
            log_level: None,
        }
    }

    /// Notes what a request sets up in the session (subscriptions, log level).
    pub fn note_setup(&mut self, method: &str, params: &Value) {
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (method, uri) {
            ("resources/subscribe", Some(uri)) => {
                self.subscriptions.insert(uri);
            }
            ("resources/unsubscribe", Some(uri)) => {
                self.subscriptions.remove(&uri);
            }
            ("logging/setLevel", _) => {
                self.log_level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            _ => {}
        }
    }
}

/// The standalone GET stream of a session.
#[derive(Clone)]
struct Listener {
    /// Stream number, the first part of its event ids.
    stream: u64,
    /// Identifies the GET request serving it (a resumed stream keeps its number but not its token).
    token: u64,
    outbox: Sender<Outbound>,
}

/// A legacy HTTP+SSE session: the outbox of its `GET /sse` stream.
pub(super) struct LegacySession {
    pub outbox: Sender<Outbound>,
    pub initialized: bool,
}

/// What `Last-Event-ID` resumption found.
pub(super) enum Resume {
    /// Events to send first, and the outbox receiver for everything after.
    Stream {
        replay: Vec<Outbound>,
        rx: Receiver<Outbound>,
        /// Token of the standalone stream this GET also became, if it did.
        listening: Option<u64>,
    },
    UnknownEvent,
}

pub(super) struct State {
    pub opts: ServerOptions,
    pub port: u16,
    shutdown: AtomicBool,
    pub handshakes: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
    sessions: Mutex<HashMap<String, Session>>,
    legacy: Mutex<HashMap<String, LegacySession>>,
    /// Server→client requests awaiting the client's response, by JSON text of the id.
    pending: Mutex<HashMap<String, Sender<Value>>>,
    /// JSON texts of request ids the client cancelled.
    cancelled: Mutex<Vec<String>>,
    /// Ids of modern requests whose SSE response stream the client closed before the response.
    cancelled_streams: Mutex<Vec<Value>>,
    /// Ids of `hang` requests whose response stream the client closed.
    abandoned_streams: Mutex<Vec<Value>>,
    /// Outboxes of the GET streams of silently expired sessions: held so that the streams stay open.
    orphaned_outboxes: Mutex<Vec<Sender<Outbound>>>,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    counter: AtomicU64,
    next_server_request_id: AtomicU64,
}

/// Locks a mutex even if a thread panicked while holding it: the test server must keep serving.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    pub fn new(opts: ServerOptions, port: u16) -> State {
        State {
            opts,
            port,
            shutdown: AtomicBool::new(false),
            handshakes: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(HashMap::new()),
            legacy: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            cancelled: Mutex::new(Vec::new()),
            cancelled_streams: Mutex::new(Vec::new()),
            abandoned_streams: Mutex::new(Vec::new()),
            orphaned_outboxes: Mutex::new(Vec::new()),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            next_server_request_id: AtomicU64::new(0),
        }
    }

    // ---- lifecycle -------------------------------------------------------------------------

    pub fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for sock in lock(&self.sockets).values() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        // Dropping the outboxes ends every idle SSE loop promptly.
        lock(&self.sessions).clear();
        lock(&self.legacy).clear();
        lock(&self.pending).clear();
        lock(&self.orphaned_outboxes).clear();
    }

    /// A fresh number, unique for this server.
    pub fn next_number(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    /// A random-looking visible-ASCII id (32 hex digits), for session ids.
    pub fn new_token(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = nanos
            ^ (self.next_number().wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ u64::from(self.port) << 48;
        let mut out = String::new();
        for _ in 0..2 {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            out.push_str(&format!("{:016x}", x.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        }
        out
    }

    pub fn track_socket(&self, id: u64, sock: TcpStream) {
        // Checked under the lock: begin_shutdown sets the flag before taking it, so a socket is
        // either seen by begin_shutdown or shut here.
        let mut sockets = lock(&self.sockets);
        if self.stopping() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        sockets.insert(id, sock);
    }

    pub fn untrack_socket(&self, id: u64) {
        lock(&self.sockets).remove(&id);
    }

    pub fn open_connections(&self) -> usize {
        lock(&self.sockets).len()
    }

    /// Runs `f` on a new thread that `stop()` will join. Returns false when stopping.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) -> bool {
        let mut threads = lock(&self.threads);
        // Checked under the lock, so join_all never misses a thread spawned during shutdown.
        if self.stopping() {
            return false;
        }
        threads.retain(|t| !t.is_finished());
        match std::thread::Builder::new()
            .name("mcp-test-server".into())
            .spawn(f)
        {
            Ok(handle) => {
                threads.push(handle);
                true
            }
            Err(_) => false,
        }
    }

    /// Joins every thread spawned so far, including threads spawned while joining.
    pub fn join_all(&self) {
        loop {
            let batch: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.threads));
            if batch.is_empty() {
                return;
            }
            for handle in batch {
                let _ = handle.join();
            }
        }
    }

    // ---- recordings and faults -------------------------------------------------------------

    pub fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn requests_from(&self, first: usize) -> Vec<RecordedRequest> {
        let requests = lock(&self.requests);
        requests.get(first..).map(<[_]>::to_vec).unwrap_or_default()
    }

    pub fn inject(&self, fault: Fault) {
        match fault {
            Fault::ExpireSessions => lock(&self.sessions).clear(),
            Fault::ExpireSessionsSilently => {
                let orphans: Vec<Sender<Outbound>> = lock(&self.sessions)
                    .drain()
                    .filter_map(|(_, s)| s.listening.map(|l| l.outbox))
                    .collect();
                lock(&self.orphaned_outboxes).extend(orphans);
            }
            // Dropping a session's outbox ends its SSE stream cleanly.
            Fault::EndLegacyStreams => lock(&self.legacy).clear(),
            Fault::EndGetStreams => {
                // A GET stream ends when every sender of its outbox is gone.
                for session in lock(&self.sessions).values_mut() {
                    session.listening = None;
                    for log in session.streams.values_mut() {
                        log.sink = None;
                    }
                }
            }
            other => lock(&self.faults).push_back(other),
        }
    }

    /// Removes and returns the first queued fault that `applies` accepts.
    pub fn take_fault(&self, applies: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(applies)?;
        faults.remove(index)
    }

    // ---- Streamable HTTP sessions ----------------------------------------------------------

    /// Creates a session (replacing the implicit one when `id` is empty).
    pub fn create_session(&self, id: &str, protocol_version: &str) {
        lock(&self.sessions).insert(id.to_string(), Session::new(protocol_version));
    }

    /// Runs `f` on a session; `None` if it does not exist.
    pub fn with_session<R>(&self, id: &str, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        lock(&self.sessions).get_mut(id).map(f)
    }

    /// Ensures the implicit session of a session-less server exists (stateless servers need no
    /// initialize), with the given version.
    pub fn ensure_implicit_session(&self, protocol_version: &str) {
        lock(&self.sessions)
            .entry(String::new())
            .or_insert_with(|| {
                let mut s = Session::new(protocol_version);
                s.initialized = true;
                s
            });
    }

    pub fn remove_session(&self, id: &str) -> bool {
        lock(&self.sessions).remove(id).is_some()
    }

    pub fn session_ids(&self) -> Vec<String> {
        lock(&self.sessions).keys().cloned().collect()
    }

    pub fn session_setup(&self, id: &str) -> Option<SessionSetup> {
        self.with_session(id, |s| SessionSetup {
            subscriptions: s.subscriptions.iter().cloned().collect(),
            log_level: s.log_level.clone(),
        })
    }

    /// Ids of the sessions subscribed to `uri`.
    pub fn subscribed_sessions(&self, uri: &str) -> Vec<String> {
        lock(&self.sessions)
            .iter()
            .filter(|(_, s)| s.subscriptions.contains(uri))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Allocates a stream number in a session (for a POST SSE stream or a GET stream).
    pub fn open_stream(&self, session: &str) -> Option<u64> {
        self.with_session(session, |s| {
            let n = s.next_stream;
            s.next_stream += 1;
            s.streams.insert(
                n,
                StreamLog {
                    next_seq: 1,
                    ..StreamLog::default()
                },
            );
            n
        })
    }

    /// Logs an event on a stream and returns its id `"<stream>-<seq>"`; also forwards it to a GET
    /// that resumed the stream. `None` if the session is gone.
    pub fn log_event(&self, session: &str, stream: u64, data: &str) -> Option<String> {
        self.with_session(session, |s| {
            let log = s.streams.entry(stream).or_default();
            let seq = log.next_seq.max(1);
            log.next_seq = seq + 1;
            log.events.push((seq, data.to_string()));
            let id = format!("{stream}-{seq}");
            if let Some(sink) = &log.sink {
                let out = Outbound {
                    id: Some(id.clone()),
                    data: data.to_string(),
                };
                if sink.send(out).is_err() {
                    log.sink = None;
                }
            }
            id
        })
    }

    /// Registers a new standalone GET stream: `(stream number, token, outbox)`; `Err(())` if one is
    /// already open (409).
    #[allow(clippy::type_complexity)]
    pub fn open_listening(
        &self,
        session: &str,
    ) -> Option<Result<(u64, u64, Receiver<Outbound>), ()>> {
        let token = self.next_number();
        let mut sessions = lock(&self.sessions);
        let s = sessions.get_mut(session)?;
        if s.listening.is_some() {
            return Some(Err(()));
        }
        let n = s.next_stream;
        s.next_stream += 1;
        s.streams.insert(
            n,
            StreamLog {
                next_seq: 1,
                ..StreamLog::default()
            },
        );
        let (tx, rx) = mpsc::channel();
        s.listening = Some(Listener {
            stream: n,
            token,
            outbox: tx,
        });
        Some(Ok((n, token, rx)))
    }

    /// Forgets the standalone stream served by the GET with `token`, if it is still the session's one.
    pub fn close_listening(&self, session: &str, token: u64) {
        self.with_session(session, |s| {
            if s.listening.as_ref().is_some_and(|l| l.token == token) {
                s.listening = None;
            }
        });
    }

    /// Sends a message on the standalone GET stream; false if none is open.
    pub fn send_listening(&self, session: &str, data: &str) -> bool {
        let mut sessions = lock(&self.sessions);
        let Some(s) = sessions.get_mut(session) else {
            return false;
        };
        let Some(Listener {
            stream, outbox: tx, ..
        }) = s.listening.clone()
        else {
            return false;
        };
        let log = s.streams.entry(stream).or_default();
        let seq = log.next_seq.max(1);
        log.next_seq = seq + 1;
        log.events.push((seq, data.to_string()));
        let out = Outbound {
            id: Some(format!("{stream}-{seq}")),
            data: data.to_string(),
        };
        if tx.send(out).is_err() {
            s.listening = None;
            return false;
        }
        true
    }

    /// Handles a GET with `Last-Event-ID`: replays that stream's later events and subscribes the
    /// GET to what follows. The GET also becomes the standalone stream when none is open, or when
    /// it resumes the standalone stream itself (the client reconnected it).
    pub fn resume(&self, session: &str, last_event_id: &str) -> Option<Resume> {
        let (stream, seq) = last_event_id.trim().rsplit_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut sessions = lock(&self.sessions);
        let s = sessions.get_mut(session)?;
        let Some(log) = s.streams.get_mut(&stream) else {
            return Some(Resume::UnknownEvent);
        };
        if seq >= log.next_seq {
            return Some(Resume::UnknownEvent);
        }
        let replay = log
            .events
            .iter()
            .filter(|(n, _)| *n > seq)
            .map(|(n, data)| Outbound {
                id: Some(format!("{stream}-{n}")),
                data: data.clone(),
            })
            .collect();
        let (tx, rx) = mpsc::channel();
        log.sink = Some(tx.clone());
        let takes_over = s.listening.as_ref().is_none_or(|l| l.stream == stream);
        let listening = if takes_over {
            let token = self.next_number();
            s.listening = Some(Listener {
                stream,
                token,
                outbox: tx,
            });
            Some(token)
        } else {
            None
        };
        Some(Resume::Stream {
            replay,
            rx,
            listening,
        })
    }

    // ---- legacy HTTP+SSE sessions ------------------------------------------------------------

    pub fn open_legacy(&self, id: &str) -> Receiver<Outbound> {
        let (tx, rx) = mpsc::channel();
        lock(&self.legacy).insert(
            id.to_string(),
            LegacySession {
                outbox: tx,
                initialized: false,
            },
        );
        rx
    }

    pub fn close_legacy(&self, id: &str) {
        lock(&self.legacy).remove(id);
    }

    pub fn with_legacy<R>(&self, id: &str, f: impl FnOnce(&mut LegacySession) -> R) -> Option<R> {
        lock(&self.legacy).get_mut(id).map(f)
    }

    // ---- server→client requests and cancellation ---------------------------------------------

    /// A fresh id for a server→client request (integers from 0, as the TypeScript SDK does).
    pub fn next_server_request_id(&self) -> u64 {
        self.next_server_request_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Registers interest in the client's response to server request `id`.
    pub fn expect_reply(&self, id: &Value) -> Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(id.to_string(), tx);
        rx
    }

    /// Delivers a client response; false if nobody waited for that id.
    pub fn deliver_reply(&self, id: &Value, message: Value) -> bool {
        match lock(&self.pending).remove(&id.to_string()) {
            Some(tx) => tx.send(message).is_ok(),
            None => false,
        }
    }

    pub fn cancel(&self, request_id: &Value) {
        lock(&self.cancelled).push(request_id.to_string());
    }

    pub fn is_cancelled(&self, request_id: &Value) -> bool {
        lock(&self.cancelled).contains(&request_id.to_string())
    }

    /// Notes that the client closed a modern request's response stream before its response:
    /// the 2026-07-28 way to cancel.
    pub fn record_cancelled_stream(&self, request_id: &Value) {
        lock(&self.cancelled_streams).push(request_id.clone());
    }

    pub fn cancelled_streams(&self) -> Vec<Value> {
        lock(&self.cancelled_streams).clone()
    }

    /// Notes that the client closed the response stream of a `hang` request.
    pub fn record_abandoned_stream(&self, request_id: &Value) {
        lock(&self.abandoned_streams).push(request_id.clone());
    }

    pub fn abandoned_streams(&self) -> Vec<Value> {
        lock(&self.abandoned_streams).clone()
    }
}
