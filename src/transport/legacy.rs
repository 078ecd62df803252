//! The legacy HTTP+SSE transport (MCP 2024-11-05): one long GET whose first event names the URL
//! to POST messages to; every server message arrives as a `message` event on that GET.
//!
//! A link knows only its [`Exchange`], where to hand the server's messages, and how to fail the
//! requests it carried. When its stream ends, exactly the requests posted over it that are still
//! unanswered fail; requests sent any other way (2026-07-28 ones) are not its business.

use crate::sync::lock;
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
use super::stop::Stop;
use crate::config::Url;
use crate::http::encoding::decoded_body;
use crate::http::response::{content_type, is_event_stream, read_short_body};
use crate::jsonrpc::{self, FrameInfo, Id, Kind};

/// How long a POST to the legacy endpoint may take to be accepted. server-everything never answers
/// a POST for an unknown session, so this must be bounded.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the wait for the `endpoint` event looks at the stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Where a link's stream goes: the server's messages, and the requests it can no longer answer.
pub struct LinkHandlers {
    pub deliver: Box<dyn Fn(Message) -> Option<FrameInfo> + Send>,
    pub fail: Box<dyn Fn(&Id) + Send>,
}

pub struct LegacyLink {
    /// Where messages are POSTed (from the `endpoint` event, same origin as the SSE URL).
    post_url: Url,
    alive: AtomicBool,
    /// Client requests posted over this link and not answered yet.
    carried: Mutex<HashSet<Id>>,
}

impl LegacyLink {
    /// GET the SSE URL, wait for the `endpoint` event, and keep reading the stream on a thread.
    pub fn connect(
        exchange: &Exchange,
        limits: &Limits,
        stop: Arc<Stop>,
        handlers: LinkHandlers,
    ) -> Result<Arc<LegacyLink>, TransportError> {
        let config = exchange.config();
        let sse_url = config.url.clone();
        let headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        let resp = exchange.once(
            Method::GET,
            &sse_url,
            &headers,
            (),
            Waits::response(config.connect_timeout),
        )?;
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
        let mut stream = EventStream::new(decoded_body(resp), limits);
        // One message: the endpoint, or why there is none.
        let (endpoint_tx, endpoint_rx) = mpsc::sync_channel(1);
        let link_slot: Arc<std::sync::OnceLock<Arc<LegacyLink>>> = Arc::default();
        let reader_slot = Arc::clone(&link_slot);
        let reader_stop = Arc::clone(&stop);
        let shown_url = sse_url.clone();
        thread::Builder::new()
            .name("legacy-sse".into())
            .spawn(move || {
                // The first event must be `endpoint`.
                let endpoint = loop {
                    match stream.next_event() {
                        Ok((e, _)) if e.event == "endpoint" => break e.data,
                        Ok((e, _)) => {
                            log::debug!("ignoring '{}' event before the endpoint", e.event)
                        }
                        Err(end) => {
                            let _ = endpoint_tx.send(Err(format!(
                                "legacy SSE stream ended before its endpoint event ({end})"
                            )));
                            return;
                        }
                    }
                };
                let _ = endpoint_tx.send(Ok(endpoint));
                let deliver = |message: Message| {
                    let info = (handlers.deliver)(message)?;
                    if let (Kind::Response, Some(id), Some(link)) =
                        (info.kind, &info.id, reader_slot.get())
                    {
                        link.carried().remove(id);
                    }
                    Some(info)
                };
                let stopped = || reader_stop.is_stopped();
                let outcome = pump(&mut stream, None, &deliver, &stopped);
                let Some(link) = reader_slot.get() else {
                    return;
                };
                link.alive.store(false, Ordering::SeqCst);
                if let Pumped::Ended { end, .. } = outcome {
                    log::warn!("legacy SSE stream from {shown_url} ended: {end}");
                    let unanswered: Vec<Id> = link.carried().drain().collect();
                    for id in &unanswered {
                        (handlers.fail)(id);
                    }
                }
            })
            .map_err(|e| TransportError::Local(format!("cannot start the SSE reader: {e}")))?;

        let endpoint = wait_for_endpoint(&endpoint_rx, config.connect_timeout, &stop, &sse_url)?;
        let post_url = sse_url.join(&endpoint).ok_or_else(|| {
            TransportError::BadResponse(format!("cannot read the SSE endpoint '{endpoint}'"))
        })?;
        if !sse_url.same_origin(&post_url) {
            return Err(TransportError::BadResponse(format!(
                    "the SSE endpoint {} is on another origin than {}; refusing to send the client certificate and headers there",
                    post_url.origin(),
                    sse_url.origin()
                )));
        }
        log::debug!("legacy SSE endpoint: {post_url}");
        let link = Arc::new(LegacyLink {
            post_url,
            alive: AtomicBool::new(true),
            carried: Mutex::new(HashSet::new()),
        });
        let _ = link_slot.set(Arc::clone(&link));
        Ok(link)
    }

    /// False once the SSE stream has ended: the link must be re-established.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// POST one message to the endpoint. The answer (for a request, `id`) comes on the SSE
    /// stream; the POST's own body ("Accepted") is not parsed.
    pub fn post(
        &self,
        exchange: &Exchange,
        frame: &[u8],
        id: Option<&Id>,
    ) -> Result<(), TransportError> {
        if !self.is_alive() {
            return Err(TransportError::StreamEnded(
                "the server's SSE stream is closed".into(),
            ));
        }
        if let Some(id) = id {
            self.carried().insert(id.clone());
        }
        let result = self.post_accepted(exchange, frame, id);
        if let (Err(_), Some(id)) = (&result, id) {
            self.carried().remove(id);
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

    fn carried(&self) -> MutexGuard<'_, HashSet<Id>> {
        lock(&self.carried)
    }
}

/// Wait for the reader's `endpoint` (or its failure), the connect timeout, or the stop.
fn wait_for_endpoint(
    rx: &mpsc::Receiver<Result<String, String>>,
    limit: Duration,
    stop: &Stop,
    sse_url: &Url,
) -> Result<String, TransportError> {
    let deadline = Instant::now() + limit;
    loop {
        match rx.recv_timeout(STOP_POLL) {
            Ok(Ok(endpoint)) => return Ok(endpoint),
            Ok(Err(why)) => return Err(TransportError::StreamEnded(why)),
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
