//! Reading a `text/event-stream` body: every `message` event is handed on, and the caller learns
//! when the response it waits for went by, or how the stream ended (for resumption).

use std::collections::VecDeque;
use std::io::Read;
use std::time::Duration;

use crate::jsonrpc::{FrameInfo, Id, Kind};
use crate::sse::{SseEvent, SseItem, SseParser};

/// Largest single message (line, event or JSON body) the bridge accepts.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// An SSE body as a sequence of items, read on demand.
pub struct EventStream<R> {
    body: R,
    parser: SseParser,
    queue: VecDeque<SseItem>,
    buf: Vec<u8>,
    /// The latest `retry:` the server asked for.
    pub retry: Option<Duration>,
}

/// Why an event stream stopped giving events.
#[derive(Debug)]
pub enum StreamEnd {
    /// The server closed it cleanly.
    Closed,
    /// Reading failed (reset, shutdown, oversized event).
    Broken(String),
}

impl<R: Read> EventStream<R> {
    pub fn new(body: R) -> Self {
        Self {
            body,
            parser: SseParser::new(MAX_MESSAGE),
            queue: VecDeque::new(),
            buf: vec![0u8; 16 * 1024],
            retry: None,
        }
    }

    /// The next event; `retry:` fields are absorbed into `self.retry`.
    pub fn next_event(&mut self) -> Result<SseEvent, StreamEnd> {
        loop {
            while let Some(item) = self.queue.pop_front() {
                match item {
                    SseItem::Retry(d) => self.retry = Some(d),
                    SseItem::Event(e) => return Ok(e),
                }
            }
            let n = match self.body.read(&mut self.buf) {
                Ok(0) => return Err(StreamEnd::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamEnd::Broken(e.to_string())),
            };
            let mut items = Vec::new();
            self.parser
                .feed(&self.buf[..n], &mut items)
                .map_err(|e| StreamEnd::Broken(e.to_string()))?;
            self.queue.extend(items);
        }
    }

    /// The id to send as Last-Event-ID when resuming this stream.
    pub fn last_event_id(&self) -> Option<String> {
        self.parser.last_event_id().map(str::to_string)
    }
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
    deliver: &dyn Fn(Vec<u8>) -> Option<FrameInfo>,
    stopped: &dyn Fn() -> bool,
) -> Pumped {
    loop {
        if stopped() {
            return Pumped::Stopped;
        }
        let event = match stream.next_event() {
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
        let Some(info) = deliver(event.data.into_bytes()) else {
            continue;
        };
        if want.is_some() && info.kind == Kind::Response && info.id.as_ref() == want {
            return Pumped::Answered;
        }
    }
}
