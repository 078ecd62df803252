//! The test client's [`Sink`]: instead of writing stdout like the bridge, it keeps the answer to
//! each request the client is waiting for, so that the caller can block on one id.

use crate::sync::lock;
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::jsonrpc::{self, FrameInfo, Id, Kind};
use crate::transport::budget::Held;
use crate::transport::Sink;

/// Longest excerpt of a frame written to the debug trace.
const TRACE_LIMIT: usize = 4096;

/// How a request ended, as far as the sink saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The server's response frame (a result or a JSON-RPC error).
    Response(Vec<u8>),
    /// The transport gave up on the request and answered it with this error frame.
    Failed(Vec<u8>),
}

#[derive(Default)]
struct Inbox {
    /// Requests still waiting for their one answer.
    waiting: HashSet<Id>,
    answers: HashMap<Id, Answer>,
}

/// Collects answers by id; a second or unexpected answer is dropped.
#[derive(Default)]
pub struct CollectingSink {
    inbox: Mutex<Inbox>,
    arrived: Condvar,
}

impl CollectingSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `id` before its request is sent, so that its answer is kept.
    pub fn expect(&self, id: Id) {
        self.lock().waiting.insert(id);
    }

    /// Wait up to `timeout` for the answer to `id`. On timeout the id is forgotten, so that a
    /// late answer is dropped.
    pub fn wait(&self, id: &Id, timeout: Duration) -> Option<Answer> {
        let deadline = Instant::now() + timeout;
        let mut inbox = self.lock();
        loop {
            if let Some(answer) = inbox.answers.remove(id) {
                return Some(answer);
            }
            let now = Instant::now();
            if now >= deadline {
                inbox.waiting.remove(id);
                return None;
            }
            inbox = match self.arrived.wait_timeout(inbox, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn answer(&self, id: &Id, answer: Answer) {
        let mut inbox = self.lock();
        if inbox.waiting.remove(id) {
            inbox.answers.insert(id.clone(), answer);
            self.arrived.notify_all();
        } else {
            log::debug!("dropping a second or late answer for id {id}");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        // A panicking thread cannot leave the inbox half-updated: every change is one statement.
        lock(&self.inbox)
    }
}

impl Sink for CollectingSink {
    fn deliver(&self, frame: Vec<u8>, _held: Held, info: &FrameInfo) {
        log::debug!("server → client: {}", trace(&frame));
        match (info.kind, &info.id) {
            (Kind::Response, Some(id)) => self.answer(id, Answer::Response(frame)),
            (Kind::Response, None) => log::warn!("the server sent a response without an id"),
            // The client declares no capabilities, so a well-behaved server asks it nothing.
            (Kind::Request, _) => log::warn!(
                "the server sent a request ({}) that this test client does not answer",
                info.method.as_deref().unwrap_or("?")
            ),
            (Kind::Notification, _) => {}
        }
    }

    fn fail_with(&self, id: &Id, frame: Vec<u8>) {
        log::debug!("transport error for request {id}: {}", trace(&frame));
        self.answer(id, Answer::Failed(frame));
    }

    fn forget(&self, id: &Id) {
        self.lock().waiting.remove(id);
    }

    /// Like the default, without its warning: the client reports the failure itself, once.
    fn fail(&self, id: &Id, code: i64, message: &str) {
        self.fail_with(id, jsonrpc::error_response(Some(id), code, message, None));
    }
}

/// A frame for the debug trace: as text, cut at [`TRACE_LIMIT`] bytes.
pub fn trace(frame: &[u8]) -> String {
    let shown = &frame[..frame.len().min(TRACE_LIMIT)];
    let text = String::from_utf8_lossy(shown);
    if frame.len() > TRACE_LIMIT {
        format!("{text}… ({} bytes)", frame.len())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(sink: &CollectingSink, frame: &[u8]) {
        let info = jsonrpc::classify(frame).unwrap();
        sink.deliver(frame.to_vec(), Held::none(), &info);
    }

    #[test]
    fn keeps_the_answer_of_an_expected_request_once() {
        let sink = CollectingSink::new();
        sink.expect(Id::Num(1));
        assert!(sink.lock().waiting.contains(&Id::Num(1)));
        deliver(&sink, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        deliver(
            &sink,
            br#"{"jsonrpc":"2.0","id":1,"result":{"again":true}}"#,
        );
        assert_eq!(
            sink.wait(&Id::Num(1), Duration::ZERO),
            Some(Answer::Response(
                br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec()
            ))
        );
        assert!(sink.lock().waiting.is_empty());
        assert_eq!(sink.wait(&Id::Num(1), Duration::ZERO), None);
    }

    #[test]
    fn drops_answers_nobody_waits_for() {
        let sink = CollectingSink::new();
        deliver(&sink, br#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        sink.expect(Id::Num(7));
        assert_eq!(sink.wait(&Id::Num(7), Duration::from_millis(10)), None);
        // The timed-out id is forgotten: its late answer is dropped too.
        deliver(&sink, br#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        assert!(sink.lock().answers.is_empty());
    }

    #[test]
    fn a_transport_failure_answers_the_request() {
        let sink = CollectingSink::new();
        sink.expect(Id::Num(2));
        sink.fail(&Id::Num(2), jsonrpc::HTTP_ERROR, "HTTP 500 from server");
        match sink.wait(&Id::Num(2), Duration::ZERO) {
            Some(Answer::Failed(frame)) => {
                assert!(String::from_utf8_lossy(&frame).contains("HTTP 500"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_waiter_wakes_when_the_answer_arrives() {
        let sink = std::sync::Arc::new(CollectingSink::new());
        sink.expect(Id::Num(3));
        let writer = std::sync::Arc::clone(&sink);
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            deliver(&writer, br#"{"jsonrpc":"2.0","id":3,"result":{}}"#);
        });
        assert!(matches!(
            sink.wait(&Id::Num(3), Duration::from_secs(5)),
            Some(Answer::Response(_))
        ));
        handle.join().unwrap();
    }

    #[test]
    fn long_frames_are_cut_in_the_trace() {
        let long = vec![b'x'; TRACE_LIMIT + 10];
        let shown = trace(&long);
        assert!(shown.ends_with(&format!("… ({} bytes)", TRACE_LIMIT + 10)));
    }
}
