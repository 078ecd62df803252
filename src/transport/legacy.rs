//! The legacy HTTP+SSE transport (MCP 2024-11-05): one long GET whose first event names the URL
//! to POST messages to; every server message arrives as a `message` event on that GET.
//!
//! A link knows only its [`Exchange`] and the [`Inbox`] its stream delivers to. When its stream
//! ends, exactly the requests posted over it that are still unanswered fail; requests sent any
//! other way (2026-07-28 ones) are not its business.
//!
//! The stream's reader thread owns the link's liveness from the start, so a stream that ends at
//! any moment (even right after its `endpoint` event) marks the link dead; and a connection whose
//! endpoint never comes, or is refused, is closed, which ends its reader.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ureq::http::Method;

use super::error::TransportError;
use super::events::{pump, EventStream, Limits, Message, Pumped};
use super::exchange::{Exchange, Waits};
use super::inbox::Inbox;
use super::stop::Stop;
use crate::config::Url;
use crate::http::cancel::{self, CancelHandle};
use crate::http::encoding::decoded_body;
use crate::http::response::{content_type, is_event_stream, read_short_body};
use crate::jsonrpc::{self, Id, Kind};
use crate::sync::lock;

/// How long a POST to the legacy endpoint may take to be accepted. server-everything never answers
/// a POST for an unknown session, so this must be bounded.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the wait for the `endpoint` event looks at the stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What the link and its reader thread share.
#[derive(Default)]
struct Carried {
    /// False once the SSE stream has ended.
    ended: AtomicBool,
    /// Client requests posted over this link and not answered yet.
    ids: Mutex<HashSet<Id>>,
}

impl Carried {
    fn ids(&self) -> MutexGuard<'_, HashSet<Id>> {
        lock(&self.ids)
    }
}

pub struct LegacyLink {
    /// Where messages are POSTed (from the `endpoint` event, same origin as the SSE URL).
    post_url: Url,
    carried: Arc<Carried>,
    /// Closes the SSE connection (and so ends the reader) when the link is dropped.
    connection: Arc<CancelHandle>,
}

impl Drop for LegacyLink {
    fn drop(&mut self) {
        self.connection.cancel();
    }
}

impl LegacyLink {
    /// GET the SSE URL, wait for the `endpoint` event, and keep reading the stream on a thread.
    pub fn connect(
        exchange: &Exchange,
        limits: &Limits,
        stop: Arc<Stop>,
        inbox: Arc<Inbox>,
    ) -> Result<LegacyLink, TransportError> {
        let config = exchange.config();
        let sse_url = config.url.clone();
        let headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        // The connection is bound to a handle of its own (not the worker's request's), so that
        // it can be closed when its endpoint is refused, late, or the link is dropped.
        let connection = Arc::new(CancelHandle::default());
        let resp = cancel::with_handle(Arc::clone(&connection), || {
            exchange.once(
                Method::GET,
                &sse_url,
                &headers,
                (),
                Waits::response(config.connect_timeout),
            )
        })?;
        // The server answered the GET: the connection is up, and what is left (the endpoint) is
        // the server's to send. The request this link is opened for has reached the server.
        cancel::mark_current_reached();
        let status = resp.status().as_u16();
        let is_sse = is_event_stream(&resp);
        if status != 200 || !is_sse {
            return Err(TransportError::Http {
                status: Some(if status == 200 { 406 } else { status }),
                message: format!("legacy SSE connection to {sse_url} refused: HTTP {status}"),
                frame: None,
                session_gone: false,
            });
        }
        let stream = EventStream::new(decoded_body(resp), limits);
        let carried = Arc::new(Carried::default());
        // One message: the endpoint, or why there is none.
        let (endpoint_tx, endpoint_rx) = mpsc::sync_channel(1);
        let reader = Reader {
            stream,
            carried: Arc::clone(&carried),
            inbox,
            stop: Arc::clone(&stop),
            sse_url: sse_url.clone(),
        };
        thread::Builder::new()
            .name("legacy-sse".into())
            .spawn(move || reader.run(&endpoint_tx))
            .map_err(|e| TransportError::Local(format!("cannot start the SSE reader: {e}")))?;
        let post_url =
            match wait_for_endpoint(&endpoint_rx, config.connect_timeout, &stop, &sse_url) {
                Ok(url) => url,
                Err(f) => {
                    // The reader may still be waiting for the endpoint: end it with its connection.
                    connection.cancel();
                    return Err(f);
                }
            };
        log::debug!("legacy SSE endpoint: {post_url}");
        Ok(LegacyLink {
            post_url,
            carried,
            connection,
        })
    }

    /// False once the SSE stream has ended: the link must be re-established.
    pub fn is_alive(&self) -> bool {
        !self.carried.ended.load(Ordering::SeqCst)
    }

    /// POST one message to the endpoint. The answer (for a request, `id`) comes on the SSE
    /// stream; the POST's own body ("Accepted") is not parsed.
    pub fn post(
        &self,
        exchange: &Exchange,
        frame: &[u8],
        id: Option<&Id>,
    ) -> Result<(), TransportError> {
        if let Some(id) = id {
            self.carried.ids().insert(id.clone());
        }
        // Checked after the id is recorded: a stream that ends from here on fails it.
        let result = if self.is_alive() {
            self.post_accepted(exchange, frame, id)
        } else {
            Err(TransportError::StreamEnded(
                "the server's SSE stream is closed".into(),
            ))
        };
        if let (Err(_), Some(id)) = (&result, id) {
            self.carried.ids().remove(id);
        }
        result
    }

    fn post_accepted(
        &self,
        exchange: &Exchange,
        frame: &[u8],
        id: Option<&Id>,
    ) -> Result<(), TransportError> {
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let resp = exchange.once(
            Method::POST,
            &self.post_url,
            &headers,
            frame,
            Waits::response(POST_TIMEOUT),
        )?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        // Read the body ("Accepted", or an error page) whole: the connection can then be reused.
        let body = read_short_body(resp);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let frame = id.map(|id| jsonrpc::error_from_http(id, status, ct.as_deref(), &body));
        Err(TransportError::Http {
            status: Some(status),
            message: format!("HTTP {status} from the SSE endpoint"),
            frame,
            session_gone: false,
        })
    }
}

/// The SSE stream's reader: the endpoint first, then every message, then the link's end.
struct Reader {
    stream: EventStream<crate::http::encoding::Decoded>,
    carried: Arc<Carried>,
    inbox: Arc<Inbox>,
    stop: Arc<Stop>,
    sse_url: Url,
}

impl Reader {
    fn run(mut self, endpoint_tx: &mpsc::SyncSender<Result<Url, TransportError>>) {
        let endpoint = self.endpoint();
        let refused = endpoint.is_err();
        let _ = endpoint_tx.send(endpoint);
        if !refused {
            let (inbox, carried) = (&self.inbox, &self.carried);
            let deliver = |message: Message| {
                let info = inbox.deliver(message)?;
                if let (Kind::Response, Some(id)) = (info.kind, &info.id) {
                    carried.ids().remove(id);
                }
                Some(info)
            };
            let stop = &self.stop;
            let stopped = || stop.is_stopped();
            if let Pumped::Ended { end, .. } = pump(&mut self.stream, None, &deliver, &stopped) {
                log::warn!("legacy SSE stream from {} ended: {end}", self.sse_url);
            }
        }
        self.carried.ended.store(true, Ordering::SeqCst);
        let unanswered: Vec<Id> = self.carried.ids().drain().collect();
        for id in &unanswered {
            self.inbox.forget_listing(id);
            self.inbox.sink().fail(
                id,
                jsonrpc::STREAM_ENDED,
                "the server's SSE stream closed before the response",
            );
        }
    }

    /// The first event must be `endpoint`, naming a URL on the SSE URL's origin.
    fn endpoint(&mut self) -> Result<Url, TransportError> {
        let endpoint = loop {
            match self.stream.next_event() {
                Ok((e, _)) if e.event == "endpoint" => break e.data,
                Ok((e, _)) => log::debug!("ignoring '{}' event before the endpoint", e.event),
                Err(end) => {
                    return Err(TransportError::StreamEnded(format!(
                        "legacy SSE stream ended before its endpoint event ({end})"
                    )))
                }
            }
        };
        let post_url = self.sse_url.join(&endpoint).ok_or_else(|| {
            TransportError::BadResponse(format!("cannot read the SSE endpoint '{endpoint}'"))
        })?;
        if !self.sse_url.same_origin(&post_url) {
            return Err(TransportError::BadResponse(format!(
                "the SSE endpoint {} is on another origin than {}; refusing to send the client certificate and headers there",
                post_url.origin(),
                self.sse_url.origin()
            )));
        }
        Ok(post_url)
    }
}

/// Wait for the reader's `endpoint` (or its failure), the connect timeout, or the stop.
fn wait_for_endpoint(
    rx: &mpsc::Receiver<Result<Url, TransportError>>,
    limit: Duration,
    stop: &Stop,
    sse_url: &Url,
) -> Result<Url, TransportError> {
    let deadline = Instant::now() + limit;
    loop {
        match rx.recv_timeout(STOP_POLL) {
            Ok(endpoint) => return endpoint,
            Err(RecvTimeoutError::Timeout) if Instant::now() < deadline && !stop.is_stopped() => {}
            Err(_) => {
                return Err(TransportError::Connection {
                    message: format!(
                    "the server at {sse_url} sent no `endpoint` event: is this a legacy SSE URL?"
                ),
                    setup: false,
                })
            }
        }
    }
}
