//! Reading a POST's SSE reply until its response: resumed with GET + `Last-Event-ID` when the
//! server closes it early (SSE polling, SEP-1699), after exactly the server's `retry:`. What
//! follows the response is handed back as a [`Tail`], read by the caller once it has counted the
//! request as answered.

use std::sync::Arc;

use ureq::http::Response;
use ureq::Body;

use super::answers::backoff;
use crate::http::cancel;
use crate::http::encoding::{decoded_body, Decoded};
use crate::jsonrpc::{Id, Kind};
use crate::transport::error::TransportError;
use crate::transport::events::{pump, EventStream, Limits, Message, Pumped, StreamEnd};
use crate::transport::inbox::{Awaiting, Inbox};
use crate::transport::stop::Stop;

/// How many times a POST's response stream is resumed with GET + Last-Event-ID.
const MAX_RESUMES: u32 = 10;

/// The rest of a response stream after the response: read to its end (what it carries is still
/// forwarded) so that its connection goes back to the pool. Servers end the stream right after
/// the response, so this is short; shutdown ends it at once.
#[must_use = "a tail holds a connection until it is drained or dropped"]
pub struct Tail {
    /// Boxed: a stream's buffers make it large, and outcomes are moved around by value.
    rest: Option<Box<Rest>>,
}

/// An unfinished stream, where its messages go, and the stop that ends it.
struct Rest(EventStream<Decoded>, Arc<Inbox>, Arc<Stop>);

impl Tail {
    /// Nothing follows (a JSON reply, or a response that was not streamed).
    pub fn none() -> Self {
        Tail { rest: None }
    }

    /// Forward what follows the response until the server ends the stream.
    pub fn drain(self) {
        if let Some(rest) = self.rest {
            let Rest(mut stream, inbox, stop) = *rest;
            let deliver = |message: Message| inbox.deliver(message);
            let stopped = || stop.is_stopped();
            pump(&mut stream, None, &deliver, &stopped);
        }
    }
}

/// What a response stream needs: where its messages go, the bounds, the stop.
pub struct Streams {
    pub inbox: Arc<Inbox>,
    pub limits: Limits,
    pub stop: Arc<Stop>,
}

impl Streams {
    pub fn open(&self, resp: Response<Body>) -> EventStream<Decoded> {
        EventStream::new(decoded_body(resp), &self.limits)
    }

    fn tail(&self, stream: EventStream<Decoded>) -> Tail {
        Tail {
            rest: Some(Box::new(Rest(
                stream,
                Arc::clone(&self.inbox),
                Arc::clone(&self.stop),
            ))),
        }
    }

    /// Pump `stream` until the response to `awaiting`; resume it with `resume(last_event_id)`
    /// when the server closes it early (never for 2026-07-28 requests: their stream is theirs).
    pub fn finish(
        &self,
        mut stream: EventStream<Decoded>,
        id: &Id,
        awaiting: &Awaiting<'_>,
        resumable: bool,
        resume: &dyn Fn(&str) -> Result<Response<Body>, TransportError>,
    ) -> Result<Tail, TransportError> {
        let deliver = |message: Message| self.inbox.deliver(message);
        let stopped = || self.stop.is_stopped();
        let mut resumes = 0;
        loop {
            let (end, last_event_id, retry) = match pump(&mut stream, Some(id), &deliver, &stopped)
            {
                Pumped::Answered => return Ok(self.tail(stream)),
                Pumped::Stopped => return Err(TransportError::ShuttingDown),
                Pumped::Ended {
                    end,
                    last_event_id,
                    retry,
                } => (end, last_event_id, retry),
            };
            // A cancel closes the stream, which a read may see as a clean end (ureq's shutdown
            // wakes it with EOF): never resume a cancelled request.
            if cancel::current_is_cancelled() {
                return Err(TransportError::StreamEnded(
                    "the client cancelled the request".into(),
                ));
            }
            if awaiting.answered() {
                // The response came another way (the listening stream).
                return Ok(Tail::none());
            }
            if let StreamEnd::Refused(why) = end {
                return Err(TransportError::BadResponse(why));
            }
            let may_resume = resumable && resumes < MAX_RESUMES;
            let Some(last_id) = last_event_id.filter(|_| may_resume) else {
                return Err(TransportError::StreamEnded(format!(
                    "response stream ended before the response ({end})"
                )));
            };
            resumes += 1;
            let wait = retry.unwrap_or_else(|| backoff(resumes));
            log::debug!(
                "response stream for {} ended; resuming after {wait:?} from event {last_id}",
                id.to_json()
            );
            if !self.stop.sleep(wait) {
                return Err(TransportError::ShuttingDown);
            }
            let resp = resume(&last_id)?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(TransportError::StreamEnded(format!(
                    "response stream ended before the response, and resuming it failed with HTTP {status}"
                )));
            }
            stream = self.open(resp);
            // The resumed stream may carry no event id of its own: keep resuming from this one.
            stream.resume_from(last_id);
        }
    }

    /// The first events of an initialize's reply when the legacy fallback is allowed: an
    /// `endpoint` event means a legacy server answered the POST with its SSE stream (None).
    pub fn first_checking_legacy(
        &self,
        mut stream: EventStream<Decoded>,
        id: &Id,
        awaiting: &Awaiting<'_>,
        resume: &dyn Fn(&str) -> Result<Response<Body>, TransportError>,
    ) -> Result<Option<Tail>, TransportError> {
        loop {
            match stream.next_event() {
                Ok((event, _)) if event.event == "endpoint" => return Ok(None),
                Ok((event, held)) if event.event == "message" => {
                    let message = Message {
                        frame: event.data.into_bytes(),
                        held,
                    };
                    if let Some(info) = self.inbox.deliver(message) {
                        if info.kind == Kind::Response && info.id.as_ref() == Some(id) {
                            return Ok(Some(self.tail(stream)));
                        }
                    }
                    return self.finish(stream, id, awaiting, true, resume).map(Some);
                }
                Ok(_) => continue,
                Err(_) => return self.finish(stream, id, awaiting, true, resume).map(Some),
            }
        }
    }
}
