//! The remote MCP server as the bridge and the test client see it: the one small interface in
//! front of the two transports. It chooses the transport (`--transport`, with the client's own
//! `initialize` as the probe), keeps hidden tools from being called, and turns every failure
//! into the one JSON-RPC error the request gets. Everything HTTP is in the transports:
//! [`Streamable`] and [`LegacyLink`], which share an [`Exchange`] and an [`Inbox`], not each
//! other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::budget::Budget;
use super::error::TransportError;
use super::events::Limits;
use super::exchange::Exchange;
use super::inbox::{Inbox, Waiter};
use super::legacy::LegacyLink;
use super::renew::{self, INITIALIZED};
use super::sink::Sink;
use super::stop::Stop;
use super::streamable::{Reply, Streamable, Tail};
use super::tool_filter::ToolFilter;
use crate::config::{Config, TransportStrategy};
use crate::http::cancel;
use crate::http::Http;
use crate::jsonrpc::{self, FrameInfo, Id};
use crate::sync::lock;

/// The least time the server gets to answer one of the bridge's own requests on a new legacy
/// SSE stream (the replayed initialize, a restored subscription).
const LEGACY_REPLAY_WAIT: Duration = Duration::from_secs(10);

/// How a client request ended, for the caller's bookkeeping: every request gets exactly one
/// outcome, and the caller frees its slot on it.
#[must_use]
pub enum Outcome {
    /// The server's response went to the sink. The rest of its stream follows: drain it once
    /// the request no longer counts as in flight (it only brings the connection back to the pool).
    Answered(Tail),
    /// Sent over the legacy transport: its answer comes on the SSE stream (or an error, if the
    /// stream ends first).
    Posted,
    /// Not sent: the bridge answered it (a hidden tool).
    Refused,
    /// The bridge answered it with an error frame; this says why (a setup error during the first
    /// initialize ends the bridge).
    Failed(TransportError),
    /// Nothing is owed: the client cancelled it, or the bridge is shutting down.
    Dropped,
}

impl Outcome {
    /// The failure to report, and the tail to drain after reporting it.
    pub fn into_parts(self) -> (Option<TransportError>, Tail) {
        match self {
            Outcome::Answered(tail) => (None, tail),
            Outcome::Failed(failure) => (Some(failure), Tail::none()),
            Outcome::Posted | Outcome::Refused | Outcome::Dropped => (None, Tail::none()),
        }
    }
}

/// The transport in use.
#[derive(Clone)]
enum Mode {
    /// Nothing has answered yet (the transport is chosen by the first initialize).
    Undecided,
    Streamable,
    Legacy(Arc<LegacyLink>),
}

pub struct Remote {
    config: Arc<Config>,
    exchange: Exchange,
    limits: Limits,
    /// Shutdown as the owner sees it: every wait here watches it.
    stop: Arc<Stop>,
    inbox: Arc<Inbox>,
    /// Also carries 2026-07-28 requests when the session is a legacy one.
    streamable: Arc<Streamable>,
    mode: Mutex<Mode>,
    /// Held while the legacy SSE stream is first opened (`--transport sse-first`/`sse-only`), so
    /// that concurrent first messages wait for one connection instead of opening several.
    prepared: Mutex<bool>,
    /// Serialises re-opening the legacy SSE stream.
    relink: Mutex<()>,
}

impl Remote {
    pub fn new(
        config: Arc<Config>,
        http: Http,
        sink: Arc<dyn Sink>,
        stop: Arc<Stop>,
        budget: Arc<Budget>,
    ) -> Arc<Self> {
        let mode = match config.transport {
            TransportStrategy::HttpOnly => Mode::Streamable,
            _ => Mode::Undecided,
        };
        let limits = Limits {
            max_message: config.max_message,
            budget,
        };
        let exchange = Exchange::new(Arc::clone(&config), http.clone())
            .with_auth(crate::oauth::authorizer_for(&config, &http, &stop));
        let inbox = Arc::new(Inbox::new(
            config.url.to_string(),
            sink,
            ToolFilter::new(&config.tools),
        ));
        let streamable = Streamable::new(
            Arc::clone(&config),
            exchange.clone(),
            limits.clone(),
            Arc::clone(&stop),
            Arc::clone(&inbox),
        );
        Arc::new(Self {
            config,
            exchange,
            limits,
            stop,
            inbox,
            streamable,
            mode: Mutex::new(mode),
            prepared: Mutex::new(false),
            relink: Mutex::new(()),
        })
    }

    /// The transport in use; an undecided one becomes Streamable HTTP once an initialize
    /// succeeded over it.
    fn mode(&self) -> Mode {
        let mut mode = lock(&self.mode);
        if matches!(*mode, Mode::Undecided) && self.inbox.session().is_established() {
            log::info!("using Streamable HTTP");
            *mode = Mode::Streamable;
        }
        mode.clone()
    }

    fn set_mode(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }

    /// For `sse-first`/`sse-only`: open the legacy SSE stream before the first message is sent
    /// (once; later calls return at once). With `sse-first`, a 400/404/405 answer switches to
    /// Streamable HTTP instead. Runs on the thread that sends the first message, never the
    /// dispatcher's.
    pub fn prepare(&self) -> Result<(), TransportError> {
        let mut prepared = lock(&self.prepared);
        if *prepared {
            return Ok(());
        }
        self.open_legacy_first()?;
        *prepared = true;
        Ok(())
    }

    fn open_legacy_first(&self) -> Result<(), TransportError> {
        if !matches!(self.mode(), Mode::Undecided) {
            return Ok(());
        }
        match self.config.transport {
            TransportStrategy::SseFirst | TransportStrategy::SseOnly => {}
            _ => return Ok(()),
        }
        match self.connect_legacy() {
            Ok(link) => {
                log::info!("using legacy HTTP+SSE");
                self.set_mode(Mode::Legacy(link));
                Ok(())
            }
            Err(f) if self.config.transport == TransportStrategy::SseFirst && f.may_fall_back() => {
                log::debug!(
                    "legacy SSE refused ({}); using Streamable HTTP",
                    f.message()
                );
                self.set_mode(Mode::Streamable);
                Ok(())
            }
            Err(f) => Err(f),
        }
    }

    /// Send a client request and see it answered: the server's response, or one error frame.
    /// Runs on a worker thread; the outcome says how it ended.
    pub fn request(&self, frame: Vec<u8>, info: &FrameInfo) -> Outcome {
        let Some(id) = info.id.clone() else {
            return Outcome::Dropped;
        };
        match info.method.as_deref() {
            Some("tools/call") => {
                // A call without a readable name is the server's to refuse.
                let name = info.name.as_deref().unwrap_or_default();
                if info.name.is_some() && !self.inbox.tool_filter.allows(name) {
                    // Never sent: the server would run it, and the user asked for it to be hidden.
                    let message = self.inbox.tool_filter.refusal(name);
                    log::info!("request {}: {message}", id.to_json());
                    let frame =
                        jsonrpc::error_response(Some(&id), jsonrpc::INVALID_PARAMS, &message, None);
                    self.inbox.sink().fail_with(&id, frame);
                    return Outcome::Refused;
                }
            }
            Some("tools/list") => self.inbox.tool_filter.expect_list(&id),
            _ => {}
        }
        let sent = self
            .prepare()
            .and_then(|()| self.send_request(&frame, info, &id));
        let failure = match sent {
            Ok(Outcome::Dropped) => {
                // Cancelled: no answer from the server is coming, stop watching for a listing.
                self.inbox.forget_listing(&id);
                return Outcome::Dropped;
            }
            Ok(outcome) => return outcome,
            Err(failure) => failure,
        };
        // No answer from the server is coming: stop watching for a listing.
        self.inbox.forget_listing(&id);
        if self.stop.is_stopped() {
            // Shutting down: the client closed stdin and waits for no answer; stay quiet.
            return Outcome::Dropped;
        }
        if cancel::current_is_cancelled() {
            // The client cancelled it: no answer is owed (a late one would be dropped anyway).
            log::debug!("request {} ended by its cancellation", id.to_json());
            return Outcome::Dropped;
        }
        match failure.server_frame() {
            Some(_) => self.inbox.sink().fail_with(&id, failure.answer(&id)),
            None => self
                .inbox
                .sink()
                .fail(&id, failure.code(), failure.message()),
        }
        Outcome::Failed(failure)
    }

    fn send_request(
        &self,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
    ) -> Result<Outcome, TransportError> {
        let is_initialize = info.method.as_deref() == Some("initialize");
        let modern = crate::modern::is_modern_request(info);
        if !modern {
            self.inbox.session().client_request(info, frame);
        }
        // A 2026-07-28 request also declares the authorization extensions the bridge runs for
        // the client.
        let declared = modern
            .then(|| self.exchange.authorizer())
            .flatten()
            .and_then(|auth| auth.declare_extensions(frame));
        let frame = declared.as_deref().unwrap_or(frame);
        let mode = self.mode();
        if let (Mode::Legacy(link), false) = (&mode, modern) {
            let link = self.live_legacy_link(Arc::clone(link), is_initialize)?;
            link.post(&self.exchange, frame, Some(id))?;
            return Ok(Outcome::Posted);
        }
        let may_fall_back = is_initialize
            && !modern
            && matches!(mode, Mode::Undecided)
            && self.config.transport == TransportStrategy::HttpFirst;
        match self.streamable.request(frame, info, id, may_fall_back)? {
            Reply::Answered(tail) => Ok(Outcome::Answered(tail)),
            Reply::Cancelled => Ok(Outcome::Dropped),
            Reply::FallBack(why) => {
                log::info!("{why}: trying the legacy HTTP+SSE transport");
                // If the fallback fails too, the POST's answer is the more telling error.
                let link = self.connect_legacy().map_err(|legacy| {
                    legacy.with_context(|m| {
                        format!("{why}, and the legacy HTTP+SSE fallback failed too ({m})")
                    })
                })?;
                self.set_mode(Mode::Legacy(Arc::clone(&link)));
                link.post(&self.exchange, frame, Some(id))?;
                Ok(Outcome::Posted)
            }
        }
    }

    /// Send a notification or a response (to a server request) and wait until it is accepted.
    pub fn send(&self, frame: Vec<u8>, info: &FrameInfo) -> Result<(), TransportError> {
        self.prepare()?;
        match self.mode() {
            Mode::Legacy(link) if !crate::modern::is_modern_request(info) => {
                link.post(&self.exchange, &frame, None)
            }
            mode => self
                .streamable
                .send(&frame, info, matches!(mode, Mode::Streamable)),
        }
    }

    /// Open the legacy HTTP+SSE link: its messages go to the inbox, its lost requests fail.
    fn connect_legacy(&self) -> Result<Arc<LegacyLink>, TransportError> {
        LegacyLink::connect(
            &self.exchange,
            &self.limits,
            Arc::clone(&self.stop),
            Arc::clone(&self.inbox),
        )
        .map(Arc::new)
    }

    /// The legacy link, re-established when its SSE stream has ended (server restart): a new GET,
    /// a new endpoint, the client's initialize replayed on it before anything else, and what the
    /// client had set up (subscriptions, log level) restored, as over Streamable HTTP.
    fn live_legacy_link(
        &self,
        link: Arc<LegacyLink>,
        is_initialize: bool,
    ) -> Result<Arc<LegacyLink>, TransportError> {
        if link.is_alive() {
            return Ok(link);
        }
        let _one_at_a_time = lock(&self.relink);
        if let Mode::Legacy(current) = self.mode() {
            if current.is_alive() {
                return Ok(current);
            }
        }
        if self.stop.is_closing() {
            // The client has gone (stdin closed): nothing new is started for it.
            return Err(TransportError::ShuttingDown);
        }
        log::info!("the server's SSE stream ended; reconnecting");
        let fresh = self.connect_legacy()?;
        self.set_mode(Mode::Legacy(Arc::clone(&fresh)));
        let (original, previous_identity) = {
            let session = self.inbox.session();
            (
                session.client_initialize.clone(),
                session.server_identity.clone(),
            )
        };
        if let (false, Some(original)) = (is_initialize, original) {
            let wait = self.config.connect_timeout.max(LEGACY_REPLAY_WAIT);
            let ask = |frame: &[u8], waiter: &Waiter<'_>| {
                // Not carried (id None): its failure is the bridge's, not a client request's.
                fresh.post(&self.exchange, frame, None)?;
                waiter.within(wait).ok_or_else(|| {
                    TransportError::SessionLost(
                        "the server did not answer on the new SSE stream".into(),
                    )
                })
            };
            let reply = renew::replay_initialize(&self.inbox, &original, &ask)?;
            fresh.post(&self.exchange, INITIALIZED, None)?;
            renew::renewed(&self.inbox, previous_identity, &reply, &ask);
        }
        Ok(fresh)
    }

    /// End the session: DELETE it (Streamable HTTP with a session id; 405 is fine).
    pub fn close(&self, timeout: Duration) {
        if matches!(self.mode(), Mode::Streamable) {
            self.streamable.close(timeout);
        }
    }

    /// The transport in use, for the test client's report: `Streamable HTTP`, `legacy HTTP+SSE`,
    /// or `undecided` while nothing has answered yet.
    pub fn transport_name(&self) -> &'static str {
        match self.mode() {
            Mode::Undecided => "undecided",
            Mode::Streamable => "Streamable HTTP",
            Mode::Legacy(_) => "legacy HTTP+SSE",
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tools hidden from the listings so far (`--ignore-tool`/`--allow-tool`), for the report.
    /// The OAuth authorization obtained for this server, for the test client's report.
    pub fn authorization(&self) -> Option<crate::oauth::authorizer::Status> {
        self.exchange.authorizer().and_then(|a| a.status())
    }

    pub fn hidden_tools(&self) -> Vec<String> {
        self.inbox.tool_filter.hidden()
    }
}
