//! The legacy HTTP+SSE transport (MCP 2024-11-05): one long GET whose first event names the URL
//! to POST messages to; every server message arrives as a `message` event on that GET.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ureq::http::Method;

use super::pump::{pump, EventStream, Pumped};
use super::remote::{Failure, Remote};
use crate::config::Url;
use crate::http::encoding::decoded_body;
use crate::http::response::{content_type, is_event_stream, read_short_body};
use crate::jsonrpc::{self, Id};

/// How long a POST to the legacy endpoint may take to be accepted. server-everything never answers
/// a POST for an unknown session, so this must be bounded.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LegacyLink {
    /// Where messages are POSTed (from the `endpoint` event, same origin as the SSE URL).
    post_url: Url,
    alive: AtomicBool,
}

impl LegacyLink {
    /// GET the SSE URL, wait for the `endpoint` event, and keep reading the stream on a thread.
    pub fn connect(remote: &Arc<Remote>) -> Result<Arc<LegacyLink>, Failure> {
        let config = remote.config();
        let sse_url = config.url.clone();
        let headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        let resp = remote.exchange(
            Method::GET,
            &sse_url,
            &headers,
            (),
            Some(config.connect_timeout),
        )?;
        let status = resp.status().as_u16();
        let is_sse = is_event_stream(&resp);
        if status != 200 || !is_sse {
            return Err(Failure {
                status: Some(if status == 200 { 406 } else { status }),
                ..Failure::new(
                    jsonrpc::HTTP_ERROR,
                    format!("legacy SSE connection to {sse_url} refused: HTTP {status}"),
                )
            });
        }
        let mut stream = EventStream::new(decoded_body(resp));
        let (tx, rx) = mpsc::channel();
        let reader_remote = Arc::clone(remote);
        let link_slot: Arc<std::sync::OnceLock<Arc<LegacyLink>>> = Arc::default();
        let reader_slot = Arc::clone(&link_slot);
        thread::Builder::new()
            .name("legacy-sse".into())
            .spawn(move || {
                // The first event must be `endpoint`.
                let endpoint = loop {
                    match stream.next_event() {
                        Ok(e) if e.event == "endpoint" => break e.data,
                        Ok(e) => log::debug!("ignoring '{}' event before the endpoint", e.event),
                        Err(end) => {
                            let _ = tx.send(Err(format!(
                                "legacy SSE stream ended before its endpoint event: {end:?}"
                            )));
                            return;
                        }
                    }
                };
                let _ = tx.send(Ok(endpoint));
                let deliver = |frame: Vec<u8>| reader_remote.deliver(frame);
                let stopped = || reader_remote.sink().stopped();
                let outcome = pump(&mut stream, None, &deliver, &stopped);
                if let Some(link) = reader_slot.get() {
                    link.alive.store(false, Ordering::SeqCst);
                }
                if !matches!(outcome, Pumped::Stopped) {
                    log::warn!(
                        "legacy SSE stream from {} ended: {outcome:?}",
                        reader_remote.config().url
                    );
                    let sink = reader_remote.sink();
                    for id in sink.in_flight() {
                        sink.fail(
                            &id,
                            jsonrpc::STREAM_ENDED,
                            "the server's SSE stream closed before the response",
                        );
                    }
                }
            })
            .map_err(|e| {
                Failure::new(
                    jsonrpc::TRANSPORT_ERROR,
                    format!("cannot start the SSE reader: {e}"),
                )
            })?;

        let endpoint = match rx.recv_timeout(config.connect_timeout) {
            Ok(Ok(endpoint)) => endpoint,
            Ok(Err(why)) => return Err(Failure::new(jsonrpc::STREAM_ENDED, why)),
            Err(_) => {
                return Err(Failure::new(
                    jsonrpc::TRANSPORT_ERROR,
                    format!(
                    "the server at {sse_url} sent no `endpoint` event: is this a legacy SSE URL?"
                ),
                ))
            }
        };
        let post_url = sse_url.join(&endpoint).ok_or_else(|| {
            Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                format!("cannot read the SSE endpoint '{endpoint}'"),
            )
        })?;
        if !sse_url.same_origin(&post_url) {
            return Err(Failure::new(
                jsonrpc::BAD_SERVER_RESPONSE,
                format!(
                    "the SSE endpoint {} is on another origin than {}; refusing to send the client certificate and headers there",
                    post_url.origin(),
                    sse_url.origin()
                ),
            ));
        }
        log::debug!("legacy SSE endpoint: {post_url}");
        let link = Arc::new(LegacyLink {
            post_url,
            alive: AtomicBool::new(true),
        });
        let _ = link_slot.set(Arc::clone(&link));
        Ok(link)
    }

    /// False once the SSE stream has ended: the link must be re-established.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// POST one message to the endpoint. The answer (for a request) comes on the SSE stream; the
    /// POST's own body ("Accepted") is not parsed.
    pub fn post(&self, remote: &Remote, frame: &[u8], id: Option<&Id>) -> Result<(), Failure> {
        if !self.alive.load(Ordering::SeqCst) {
            return Err(Failure::new(
                jsonrpc::STREAM_ENDED,
                "the server's SSE stream is closed",
            ));
        }
        let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let resp = remote.exchange(
            Method::POST,
            &self.post_url,
            &headers,
            frame,
            Some(POST_TIMEOUT),
        )?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        // Read the body ("Accepted", or an error page) whole: the connection can then be reused.
        let body = read_short_body(resp);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let frame = id.map(|id| jsonrpc::error_from_http(id, status, ct.as_deref(), &body));
        Err(Failure {
            status: Some(status),
            frame,
            ..Failure::new(
                jsonrpc::HTTP_ERROR,
                format!("HTTP {status} from the SSE endpoint"),
            )
        })
    }
}
