//! Reading server messages from a response body within the memory budget: an event stream
//! (`text/event-stream`, every `message` event handed on) or a whole JSON body. Room is reserved
//! before each read from the socket, so a spent budget stops the reading (see `budget`).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use super::budget::{Budget, Exhausted, Held, PER_MESSAGE_OVERHEAD};
use crate::jsonrpc::{FrameInfo, Id, Kind};
use crate::sse::{SseEvent, SseItem, SseParser};

/// The most a server's `retry:` may park a stream: a server asking for years (or a typo) must
/// not hang a request or the listening stream for longer than this.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// Bytes read from a socket at a time (and reserved before each read).
const READ_CHUNK: usize = 8 * 1024;

/// The bounds every body is read within.
#[derive(Clone)]
pub struct Limits {
    /// The largest single message (`--max-message-size`).
    pub max_message: usize,
    /// All messages held at once (`--memory-budget`).
    pub budget: Arc<Budget>,
}

/// A message read from the server, with the room it holds in the budget.
pub struct Message {
    pub frame: Vec<u8>,
    pub held: Held,
}

/// An SSE body as a sequence of events, read on demand.
pub struct EventStream<R> {
    body: R,
    parser: SseParser,
    queue: VecDeque<(SseEvent, Held)>,
    buf: Vec<u8>,
    /// What the parser holds of the event being assembled.
    held: Held,
    /// The latest `retry:` the server asked for, capped at [`MAX_RETRY`].
    pub retry: Option<Duration>,
    /// The event id this stream resumed from, until it carries one of its own.
    resumed_from: Option<String>,
}

/// Why an event stream stopped giving events.
#[derive(Debug)]
pub enum StreamEnd {
    /// The server closed it cleanly.
    Closed,
    /// Reading failed (reset, shutdown).
    Broken(String),
    /// The bridge refused a message: larger than `--max-message-size`, or no room in the
    /// memory budget. Resuming would only bring the same message again.
    Refused(String),
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::Closed => f.write_str("the server closed it"),
            StreamEnd::Broken(why) | StreamEnd::Refused(why) => f.write_str(why),
        }
    }
}

impl<R: Read> EventStream<R> {
    pub fn new(body: R, limits: &Limits) -> Self {
        Self {
            body,
            parser: SseParser::new(limits.max_message),
            queue: VecDeque::new(),
            buf: vec![0u8; READ_CHUNK],
            held: limits.budget.reading(),
            retry: None,
            resumed_from: None,
        }
    }

    /// The next event with the room its data holds; `retry:` fields are absorbed into
    /// `self.retry`.
    pub fn next_event(&mut self) -> Result<(SseEvent, Held), StreamEnd> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            // Room for what this read may add, before reading: a spent budget stops here.
            self.held.grow(READ_CHUNK).map_err(too_much)?;
            let n = match self.body.read(&mut self.buf) {
                Ok(0) => return Err(StreamEnd::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamEnd::Broken(e.to_string())),
            };
            let mut items = Vec::new();
            self.parser
                .feed(&self.buf[..n], &mut items)
                .map_err(|e| StreamEnd::Refused(e.to_string()))?;
            // Reserve exactly what the completed events and the parser hold now.
            let size = |e: &SseEvent| e.data.capacity() + PER_MESSAGE_OVERHEAD;
            let completed: usize = items
                .iter()
                .map(|item| match item {
                    SseItem::Event(e) => size(e),
                    SseItem::Retry(_) => 0,
                })
                .sum();
            let needed = completed + self.parser.buffered();
            match needed.checked_sub(self.held.bytes()) {
                Some(more) if more > 0 => self.held.grow(more).map_err(too_much)?,
                _ => self.held.shrink_to(needed),
            }
            for item in items {
                match item {
                    SseItem::Retry(d) => self.retry = Some(d.min(MAX_RETRY)),
                    SseItem::Event(e) => {
                        let held = self.held.split(size(&e));
                        self.queue.push_back((e, held));
                    }
                }
            }
        }
    }

    /// The id to send as Last-Event-ID when resuming this stream.
    pub fn last_event_id(&self) -> Option<String> {
        self.parser
            .last_event_id()
            .map(str::to_string)
            .or_else(|| self.resumed_from.clone())
    }

    /// This stream resumes another from event `id`: resuming it again starts there, until it
    /// carries an event id of its own.
    pub fn resume_from(&mut self, id: String) {
        self.resumed_from = Some(id);
    }
}

fn too_much(e: Exhausted) -> StreamEnd {
    StreamEnd::Refused(e.to_string())
}

/// Why a JSON body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(usize),
    Budget(Exhausted),
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(
                f,
                "the server's JSON response is larger than {limit} bytes (raise --max-message-size if such large messages are expected)"
            ),
            BodyError::Budget(e) => e.fmt(f),
            BodyError::Read(e) => write!(f, "cannot read the server's JSON response: {e}"),
        }
    }
}

/// Read a whole body (a JSON response) within the limits.
pub fn read_message(mut body: impl Read, limits: &Limits) -> Result<Message, BodyError> {
    let mut held = limits.budget.reading();
    let mut frame = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        held.grow(READ_CHUNK).map_err(BodyError::Budget)?;
        let n = match body.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Read(e.to_string())),
        };
        if frame.len() + n > limits.max_message {
            return Err(BodyError::TooLarge(limits.max_message));
        }
        frame.extend_from_slice(&chunk[..n]);
        held.shrink_to(frame.capacity() + PER_MESSAGE_OVERHEAD);
    }
    held.shrink_to(frame.capacity() + PER_MESSAGE_OVERHEAD);
    Ok(Message { frame, held })
}

/// How pumping a stream ended.
#[derive(Debug)]
pub enum Pumped {
    /// The response we waited for was delivered.
    Answered,
    /// The stream ended first; `last_event_id`/`retry` say how to resume it.
    Ended {
        end: StreamEnd,
        last_event_id: Option<String>,
        retry: Option<Duration>,
    },
    /// Shutdown: stop without resuming.
    Stopped,
}

/// Deliver every `message` event of `stream` with `deliver` until the response to `want` went by
/// (never, when `want` is None: a listening stream) or the stream ends.
pub fn pump<R: Read>(
    stream: &mut EventStream<R>,
    want: Option<&Id>,
    deliver: &dyn Fn(Message) -> Option<FrameInfo>,
    stopped: &dyn Fn() -> bool,
) -> Pumped {
    loop {
        if stopped() {
            return Pumped::Stopped;
        }
        let (event, held) = match stream.next_event() {
            Ok(event) => event,
            Err(end) => {
                if stopped() {
                    return Pumped::Stopped;
                }
                return Pumped::Ended {
                    end,
                    last_event_id: stream.last_event_id(),
                    retry: stream.retry,
                };
            }
        };
        if event.event != "message" {
            log::debug!("ignoring SSE event of type '{}'", event.event);
            continue;
        }
        let message = Message {
            frame: event.data.into_bytes(),
            held,
        };
        let Some(info) = deliver(message) else {
            continue;
        };
        if want.is_some() && info.kind == Kind::Response && info.id.as_ref() == want {
            return Pumped::Answered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::stop::Stop;

    fn limits(max_message: usize, budget: usize) -> Limits {
        Limits {
            max_message,
            budget: Budget::new(budget, Arc::new(Stop::new())),
        }
    }

    #[test]
    fn events_hold_their_room_until_dropped_and_retry_is_capped() {
        let l = limits(1 << 20, 1 << 20);
        let body: &[u8] = b"retry: 999999999999\ndata: {\"a\":1}\n\ndata: {\"b\":2}\n\n";
        let mut s = EventStream::new(body, &l);
        let (first, held) = s.next_event().unwrap();
        assert_eq!(first.data, "{\"a\":1}");
        assert_eq!(s.retry, Some(MAX_RETRY));
        assert!(held.bytes() >= first.data.len());
        let (second, _held2) = s.next_event().unwrap();
        assert_eq!(second.data, "{\"b\":2}");
        drop(held);
        assert!(matches!(s.next_event(), Err(StreamEnd::Closed)));
    }

    #[test]
    fn an_event_that_outgrows_a_budget_nobody_drains_breaks_the_stream() {
        let l = limits(1 << 20, 64 * 1024);
        let endless = std::io::repeat(b'x');
        let mut s = EventStream::new(std::io::Read::chain(&b"data: "[..], endless), &l);
        match s.next_event() {
            Err(StreamEnd::Refused(why)) => assert!(why.contains("--memory-budget"), "{why}"),
            other => panic!("{:?}", other.map(|(e, _)| e)),
        }
        drop(s);
        assert_eq!(l.budget.used(), 0, "the broken stream gave its room back");
    }

    #[test]
    fn json_bodies_are_bounded_by_the_message_size() {
        let l = limits(8 * 1024, 1 << 20);
        let big = vec![b' '; 20 * 1024];
        assert!(matches!(
            read_message(&big[..], &l),
            Err(BodyError::TooLarge(8192))
        ));
        let m = read_message(&b"{}"[..], &l).unwrap();
        assert_eq!(m.frame, b"{}");
        assert!(m.held.bytes() > 0);
    }
}
