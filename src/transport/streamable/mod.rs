//! The Streamable HTTP transport (MCP 2025-03-26 and later, and 2026-07-28 requests): every
//! message is a POST to one endpoint; a request's reply is a JSON body or an SSE stream (resumed
//! with GET + `Last-Event-ID`); the GET listening stream carries what the server sends unasked.
//! The session id and negotiated version go in headers; a lost session is replaced (the client's
//! initialize replayed, its set-up restored) without the client seeing the gap.
//!
//! ```text
//! Streamable::request ─► post_request ─► Exchange::follow (POST, redirects, diagnosis)
//!   ├► 200 text/event-stream ─► Streams::finish ─► events::pump ─► Inbox::deliver ─► Sink
//!   ├► 200 application/json ─► Inbox::deliver ─► Sink
//!   └► 404 on a known session ─► renew_session (replay initialize, restore) ─► send again
//! ```

mod answers;
mod listen;
mod modern;
mod reply;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::{Method, Response};
use ureq::Body;

use super::error::TransportError;
use super::events::{read_message, Limits};
use super::exchange::{Exchange, Waits};
use super::inbox::{Inbox, Waiter};
use super::renew::{self, excerpt, INITIALIZED};
use super::stop::Stop;
use crate::config::{Config, Url};
use crate::http::encoding::decoded_body;
use crate::http::response::{content_type, error_frame, read_short_body, www_authenticate};
use crate::jsonrpc::{self, FrameInfo, Id, Kind};
use crate::sync::lock;
use answers::{http_error_message, is_modern_error, is_session_gone, proxy_certificate_complaint};
use reply::Streams;
pub use reply::Tail;

/// How long a notification or response POST may take to be accepted (202).
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Session replays per request before its failure is reported.
const MAX_SESSION_REPLAYS: u32 = 2;
/// The longest value mirrored into an `Mcp-Name`/`Mcp-Param-*` header. Proxies commonly refuse
/// header lines over 8 KiB (nginx's default `large_client_header_buffers`), and the whole head
/// must fit ureq's 16 KiB output buffer.
const MAX_MIRRORED_VALUE: usize = 4096;

/// How a request sent over Streamable HTTP ended (its failures are the `Err` side).
pub enum Reply {
    /// The response went to the inbox; the rest of its stream follows.
    Answered(Tail),
    /// The server looks like a legacy HTTP+SSE server (asked for with `may_fall_back`).
    FallBack(String),
    /// The client cancelled it (2026-07-28: by closing its stream): nothing is owed.
    Cancelled,
}

pub struct Streamable {
    config: Arc<Config>,
    exchange: Exchange,
    streams: Streams,
    /// The endpoint (moves with same-origin redirects).
    endpoint: Mutex<Url>,
    /// Whether the GET listening stream runs.
    listening: AtomicBool,
    /// Serialises session replays.
    replay_lock: Mutex<()>,
}

impl Streamable {
    pub fn new(
        config: Arc<Config>,
        exchange: Exchange,
        limits: Limits,
        stop: Arc<Stop>,
        inbox: Arc<Inbox>,
    ) -> Arc<Self> {
        Arc::new(Self {
            endpoint: Mutex::new(config.url.clone()),
            config,
            exchange,
            streams: Streams {
                inbox,
                limits,
                stop,
            },
            listening: AtomicBool::new(false),
            replay_lock: Mutex::new(()),
        })
    }

    fn inbox(&self) -> &Inbox {
        &self.streams.inbox
    }

    fn stop(&self) -> &Stop {
        &self.streams.stop
    }

    /// Send a client request and read its reply into the inbox. `may_fall_back`: the first
    /// initialize of `--transport http-first`, whose refusal may mean a legacy server.
    pub fn request(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        may_fall_back: bool,
    ) -> Result<Reply, TransportError> {
        if crate::modern::is_modern_request(info) {
            return modern::request(self, frame, info, id);
        }
        let mut replays = 0;
        loop {
            // A replay in progress (started by another request or the listening stream) has
            // taken the session id away: wait for the new one rather than send without it.
            drop(lock(&self.replay_lock));
            let generation = self.inbox().session().generation;
            match self.post_request(frame, info, id, may_fall_back) {
                Err(f)
                    if f.session_gone()
                        && replays < MAX_SESSION_REPLAYS
                        && !self.stop().is_closing() =>
                {
                    replays += 1;
                    log::info!(
                        "the server lost the session ({}); starting a new one",
                        f.message()
                    );
                    self.renew_session(generation)?;
                }
                other => return other,
            }
        }
    }

    /// Send a notification or a response (to a server request) and wait until it is accepted.
    /// `listen`: open the GET listening stream once `notifications/initialized` is accepted.
    pub fn send(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        listen: bool,
    ) -> Result<(), TransportError> {
        let generation = self.inbox().session().generation;
        let mut result = self.post_accepted(frame, info);
        if matches!(&result, Err(f) if f.session_gone()) && !self.stop().is_closing() {
            log::info!("the server lost the session; starting a new one");
            self.renew_session(generation)?;
            // The replay already sent notifications/initialized.
            if info.method.as_deref() != Some("notifications/initialized") {
                result = self.post_accepted(frame, info);
            }
        }
        if listen && info.method.as_deref() == Some("notifications/initialized") && result.is_ok() {
            listen::start(self);
        }
        result
    }

    /// End the session: DELETE it when there is one (405 is fine).
    pub fn close(&self, timeout: Duration) {
        if self.inbox().session().id.is_none() {
            return;
        }
        let headers = self.inbox().session().headers();
        let url = lock(&self.endpoint).clone();
        match self
            .exchange
            .once(Method::DELETE, &url, &headers, (), Waits::response(timeout))
        {
            Ok(resp) => log::debug!("session closed (HTTP {})", resp.status().as_u16()),
            Err(f) => log::debug!("could not close the session: {}", f.message()),
        }
    }

    /// Start a new session by replaying the client's initialize (with a bridge-owned id) and
    /// `notifications/initialized`, unless another request already did since `seen_generation`.
    fn renew_session(self: &Arc<Self>, seen_generation: u64) -> Result<(), TransportError> {
        if self.stop().is_closing() {
            // The client has gone (stdin closed): nothing new is started for it.
            return Err(TransportError::ShuttingDown);
        }
        let _one_at_a_time = lock(&self.replay_lock);
        let (original, previous_identity) = {
            let mut session = self.inbox().session();
            if session.generation != seen_generation {
                return Ok(()); // another request already started the new session
            }
            (
                session.lost(seen_generation),
                session.server_identity.clone(),
            )
        };
        let original = original.ok_or_else(|| {
            TransportError::SessionLost(
                "the server lost the session before it was initialized".into(),
            )
        })?;
        let ask = |frame: &[u8], waiter: &Waiter<'_>| self.own_request(frame, waiter);
        let reply = renew::replay_initialize(self.inbox(), &original, &ask)?;
        if let Ok(info) = jsonrpc::classify(INITIALIZED) {
            self.post_accepted(INITIALIZED, &info)?;
        }
        renew::renewed(self.inbox(), previous_identity, &reply, &ask);
        listen::start(self);
        // A listening stream waiting to reconnect goes now, on the new session.
        self.stop().nudge();
        Ok(())
    }

    /// Send a request of the bridge's own and return the response frame (never shown to the
    /// client).
    fn own_request(
        self: &Arc<Self>,
        frame: &[u8],
        waiter: &Waiter<'_>,
    ) -> Result<Vec<u8>, TransportError> {
        let info = jsonrpc::classify(frame).map_err(|e| TransportError::Local(e.to_string()))?;
        if let Reply::Answered(tail) = self.post_request(frame, &info, waiter.id(), false)? {
            tail.drain();
        }
        waiter.ready().ok_or_else(|| {
            TransportError::SessionLost("no response to the bridge's own request".into())
        })
    }

    /// POST a notification/response: expect 202 (any 2xx is accepted).
    fn post_accepted(&self, frame: &[u8], info: &FrameInfo) -> Result<(), TransportError> {
        let headers = self.post_headers(info, frame);
        let sent_session = headers.iter().any(|(k, _)| k == "Mcp-Session-Id");
        let resp = self.post(frame, &headers, Some(ACCEPT_TIMEOUT))?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp);
        // Read the (empty) body to its end so that the connection can be reused.
        let body = read_short_body(resp);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let frame = jsonrpc::error_from_http(&Id::Num(0), status, ct.as_deref(), &body);
        Err(TransportError::Http {
            status: Some(status),
            message: format!(
                "server refused the message with HTTP {status}: {}",
                excerpt(&frame)
            ),
            frame: None,
            session_gone: sent_session && is_session_gone(status, &body),
        })
    }

    /// POST a request and read its reply into the inbox.
    fn post_request(
        &self,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        may_fall_back: bool,
    ) -> Result<Reply, TransportError> {
        let awaiting = self.inbox().awaiting(id);
        let headers = self.post_headers(info, frame);
        let sent_session = headers.iter().any(|(k, _)| k == "Mcp-Session-Id");
        let resp = self.post(frame, &headers, None)?;
        let status = resp.status().as_u16();
        let ct = content_type(&resp).unwrap_or_default();
        if info.method.as_deref() == Some("initialize") && (200..300).contains(&status) {
            self.adopt_session(&resp);
        }
        let resume = |last_id: &str| self.get_stream(Some(last_id), None);
        match status {
            202 => Err(TransportError::BadResponse(
                "server accepted the request (HTTP 202) but sent no response".into(),
            )),
            200..=299 if ct.starts_with("text/event-stream") => {
                let stream = self.streams.open(resp);
                if may_fall_back {
                    // A legacy server may answer the POST with its SSE stream: first event `endpoint`.
                    return Ok(
                        match self.streams.first_checking_legacy(stream, id, &awaiting, &resume)? {
                            Some(tail) => Reply::Answered(tail),
                            None => Reply::FallBack(
                                "server answered the initialize POST with a legacy `endpoint` event"
                                    .into(),
                            ),
                        },
                    );
                }
                let resumable = !crate::modern::is_modern_request(info);
                self.streams
                    .finish(stream, id, &awaiting, resumable, &resume)
                    .map(Reply::Answered)
            }
            200..=299 if ct.starts_with("application/json") => self
                .deliver_json(resp, id)
                .map(|()| Reply::Answered(Tail::none())),
            200..=299 => {
                let body = read_short_body(resp);
                let shown = excerpt(&jsonrpc::error_from_http(id, status, Some(&ct), &body));
                let shown = shown
                    .split_once(": ")
                    .map_or("", |(_, rest)| rest)
                    .to_string();
                Err(TransportError::BadResponse(format!(
                    "server answered HTTP {status} with content type '{ct}' instead of JSON or an event stream: {shown}"
                )))
            }
            _ => {
                let challenge = www_authenticate(&resp);
                let body = read_short_body(resp);
                let frame = error_frame(
                    id,
                    status,
                    Some(&ct),
                    challenge.as_deref(),
                    &body,
                    self.exchange.sends_user_authorization(),
                );
                if let Some(why) = proxy_certificate_complaint(&body, &self.config) {
                    // nginx & co. answer a missing or bad client certificate with an HTML 400:
                    // a setup error, not a reason to try another transport.
                    return Err(TransportError::CertificateRefused {
                        status,
                        message: why,
                    });
                }
                if may_fall_back && matches!(status, 400 | 404 | 405) && !is_modern_error(&body) {
                    return Ok(Reply::FallBack(format!(
                        "server answered the initialize POST with {}",
                        http_error_message(status, &frame)
                    )));
                }
                Err(TransportError::Http {
                    status: Some(status),
                    message: http_error_message(status, &frame),
                    frame: Some(frame.clone()),
                    session_gone: sent_session && is_session_gone(status, &body),
                })
            }
        }
    }

    fn deliver_json(&self, resp: Response<Body>, id: &Id) -> Result<(), TransportError> {
        let message = read_message(decoded_body(resp), &self.streams.limits)
            .map_err(|e| TransportError::BadResponse(e.to_string()))?;
        match self.inbox().deliver(message) {
            Some(info) if info.kind == Kind::Response && info.id.as_ref() == Some(id) => Ok(()),
            Some(_) => Err(TransportError::BadResponse(
                "server's JSON reply does not answer this request".into(),
            )),
            None => Err(TransportError::BadResponse(
                "server's JSON reply is not JSON-RPC".into(),
            )),
        }
    }

    fn adopt_session(&self, resp: &Response<Body>) {
        let sid = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        if let Some(sid) = sid {
            log::debug!("session established");
            self.inbox().session().id = Some(sid.to_string());
        }
    }

    /// Headers of a POST for this message.
    fn post_headers(&self, info: &FrameInfo, frame: &[u8]) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "Accept".to_string(),
                "application/json, text/event-stream".to_string(),
            ),
        ];
        match info
            .meta_protocol_version
            .as_deref()
            .filter(|v| crate::modern::is_modern_version(v))
        {
            Some(version) => headers.push(("MCP-Protocol-Version".into(), version.to_string())),
            None => headers.extend(self.inbox().session().headers()),
        }
        // The 2026-07-28 mirrored headers belong to that era: a modern message, or one sent
        // before any handshake-era session negotiated its version. In a 2025 session they are
        // noise at best, and a 20 kB resource URI in `Mcp-Name` broke the request.
        let modern = crate::modern::is_modern_request(info);
        if modern || self.inbox().session().protocol_version.is_none() {
            let mut mirrored: Vec<(String, String)> = crate::modern::standard_headers(info)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if modern && info.method.as_deref() == Some("tools/call") {
                if let Some(tool) = &info.name {
                    mirrored.extend(self.inbox().tool_headers.param_headers(tool, frame));
                }
            }
            headers.extend(mirrored.into_iter().filter(|(name, value)| {
                // A value too long for a header is left out: the body carries it anyway, and a
                // request whose body is fine is never refused by the bridge for a header.
                let fits = value.len() <= MAX_MIRRORED_VALUE;
                if !fits {
                    log::debug!(
                        "{name} left out: its value is {} bytes (more than {MAX_MIRRORED_VALUE})",
                        value.len()
                    );
                }
                fits
            }));
        }
        headers
    }

    /// POST to the endpoint, following same-origin 307/308 redirects (the endpoint moves with them).
    fn post(
        &self,
        body: &[u8],
        headers: &[(String, String)],
        recv_timeout: Option<Duration>,
    ) -> Result<Response<Body>, TransportError> {
        let url = lock(&self.endpoint).clone();
        let waits = Waits {
            response: recv_timeout,
            per_read: None,
        };
        let (resp, final_url) = self
            .exchange
            .follow(Method::POST, &url, headers, body, waits)?;
        if final_url != url {
            *lock(&self.endpoint) = final_url;
        }
        Ok(resp)
    }

    /// GET the endpoint as an event stream, for listening or resuming (`last_event_id`).
    fn get_stream(
        &self,
        last_event_id: Option<&str>,
        idle_bound: Option<Duration>,
    ) -> Result<Response<Body>, TransportError> {
        let mut headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        headers.extend(self.inbox().session().headers());
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID".to_string(), id.to_string()));
        }
        let url = lock(&self.endpoint).clone();
        let waits = Waits {
            response: Some(ACCEPT_TIMEOUT),
            per_read: idle_bound,
        };
        let (resp, _) = self
            .exchange
            .follow(Method::GET, &url, &headers, (), waits)?;
        Ok(resp)
    }
}
