//! Keep-alive edges: retire a pooled connection before the server closes it for being idle.
//!
//! A server (or a terminator in front of it) closes an idle connection after its keep-alive
//! timeout: Apache after 5 s by default. A call sent on that connection at that moment crosses the
//! close on the wire and fails, and the bridge cannot tell whether the server read it first (a
//! terminator once forwarded the request and then cut the reply), so it must not retry it: a tool
//! would run twice. What it can do is not send on a connection that is about to close:
//! - honour the server's `Keep-Alive: timeout=N` hint, retiring the connection before it;
//! - without a hint, assume the 5 s that Apache, uvicorn (FastMCP) and Node.js close idle
//!   connections after (none of the last two says so), retiring connections idle for 4 s: a new
//!   handshake for a call after a pause costs milliseconds, a lost call costs the user a retry;
//! - learn a shorter limit from a reused connection that the server closed before it answered
//!   (gunicorn: 2 s), so that such an edge costs at most one call per session.
//!
//! ureq's pool already probes a pooled connection for a close that has arrived before reusing it
//! (`Transport::is_open`); [`Idle::may_reuse`] adds the deadline to that probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::middleware::MiddlewareNext;
use ureq::{Body, SendBody};

use crate::sync::lock;

/// Origins remembered at most (the bridge talks to one server, and maybe its authorization server).
const MAX_ORIGINS: usize = 32;
/// A close is learned from only when the connection had been idle this long: no server keeps
/// connections for less, and a shorter pause is a server that failed mid-session, not a timeout.
const MIN_LEARNED_IDLE: Duration = Duration::from_secs(1);
/// ... and only when the close came this soon after the request: a keep-alive close crosses the
/// request on the wire, a server that dies during a long call closes much later.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// The idle limit assumed for a server that announced none and was not seen to close sooner.
const ASSUMED_LIMIT: Duration = Duration::from_secs(5);

/// The idle limits known per origin (`host:port`), from hints and from observed closes.
#[derive(Clone, Default, Debug)]
pub struct Hints(Arc<Mutex<HashMap<String, Duration>>>);

impl Hints {
    /// Read a `Keep-Alive: timeout=5, max=100` header (RFC 2068 §19.7.1.1) for `origin`.
    pub fn learn_header(&self, origin: &str, value: &str) {
        let timeout = value.split(',').find_map(|part| {
            let (name, secs) = part.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("timeout") {
                return None;
            }
            secs.trim().trim_matches('"').parse::<u64>().ok()
        });
        if let Some(secs) = timeout {
            self.set(origin, Duration::from_secs(secs));
        }
    }

    /// A reused connection to `origin`, idle for `idle`, was closed before it answered.
    pub fn observe_close(&self, origin: &str, idle: Duration) {
        let known = self.limit(origin);
        if known.is_none_or(|limit| idle < limit) {
            log::debug!(
                "{origin} closed a connection that had been idle {:.1} s before it answered: \
                 connections idle that long are retired from now on",
                idle.as_secs_f64()
            );
            self.set(origin, idle);
        }
    }

    fn set(&self, origin: &str, limit: Duration) {
        let mut map = lock(&self.0);
        if map.len() < MAX_ORIGINS || map.contains_key(origin) {
            map.insert(origin.to_string(), limit);
        }
    }

    /// The limit the server announced or was seen to keep, if any.
    pub fn limit(&self, origin: &str) -> Option<Duration> {
        lock(&self.0).get(origin).copied()
    }

    /// The limit connections to `origin` are retired before (known, else assumed).
    pub fn effective_limit(&self, origin: &str) -> Duration {
        self.limit(origin).unwrap_or(ASSUMED_LIMIT)
    }

    /// Whether a connection to `origin` idle for `idle` is too close to the server's limit.
    pub fn retire(&self, origin: &str, idle: Duration) -> bool {
        idle >= margin(self.effective_limit(origin))
    }
}

/// Retire a second before the limit (the server counts from when it sent the answer, we from
/// when it arrived), or at half a limit too short for that.
fn margin(limit: Duration) -> Duration {
    limit.saturating_sub(Duration::from_secs(1)).max(limit / 2)
}

/// The key both the middleware and the connector use for a URL's server.
pub fn origin_of(uri: &Uri) -> String {
    uri.authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The ureq middleware that reads each response's `Keep-Alive` hint.
pub fn middleware(
    hints: Hints,
) -> impl Fn(
    ureq::http::Request<SendBody>,
    MiddlewareNext,
) -> Result<ureq::http::Response<Body>, ureq::Error>
       + Send
       + Sync
       + 'static {
    move |request, next| {
        let origin = origin_of(request.uri());
        let response = next.handle(request)?;
        if let Some(value) = response
            .headers()
            .get("keep-alive")
            .and_then(|v| v.to_str().ok())
        {
            hints.learn_header(&origin, value);
        }
        Ok(response)
    }
}

/// One connection's idle bookkeeping, kept by the transport.
#[derive(Debug)]
pub struct Idle {
    origin: String,
    hints: Hints,
    /// When data last arrived.
    last_input: Option<Instant>,
    /// A request is being sent or awaits its first byte of answer.
    awaiting: bool,
    /// For a request on a reused connection: how long the connection had been idle, and when the
    /// request went out.
    reused: Option<(Duration, Instant)>,
}

impl Idle {
    pub fn new(origin: String, hints: Hints) -> Self {
        Self {
            origin,
            hints,
            last_input: None,
            awaiting: false,
            reused: None,
        }
    }

    /// The transport is sending.
    pub fn on_transmit(&mut self) {
        if !self.awaiting {
            self.awaiting = true;
            self.reused = self.last_input.map(|t| (t.elapsed(), Instant::now()));
        }
    }

    /// Data arrived.
    pub fn on_input(&mut self) {
        self.last_input = Some(Instant::now());
        self.awaiting = false;
        self.reused = None;
    }

    /// The connection ended (end of stream, reset) while reading. `cancelled`: our own cancel
    /// closed it, which teaches nothing.
    pub fn on_closed(&mut self, cancelled: bool) {
        let Some((idle, sent)) = self.reused.take() else {
            return;
        };
        if self.awaiting && !cancelled && idle >= MIN_LEARNED_IDLE && sent.elapsed() < CLOSE_WITHIN
        {
            self.hints.observe_close(&self.origin, idle);
        }
    }

    /// Whether the pool may hand this connection out again (checked before ureq's own probe).
    pub fn may_reuse(&self) -> bool {
        let Some(last) = self.last_input else {
            return true;
        };
        let idle = last.elapsed();
        if self.hints.retire(&self.origin, idle) {
            let known = if self.hints.limit(&self.origin).is_some() {
                "closes"
            } else {
                "may close (it announced no limit; 5 s assumed)"
            };
            log::debug!(
                "retiring a connection to {} idle for {:.1} s: the server {known} idle connections \
                 after {:.1} s",
                self.origin,
                idle.as_secs_f64(),
                self.hints.effective_limit(&self.origin).as_secs_f64()
            );
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keep_alive_header_sets_the_limit() {
        let hints = Hints::default();
        hints.learn_header("a:443", "timeout=5, max=100");
        assert_eq!(hints.limit("a:443"), Some(Duration::from_secs(5)));
        assert!(!hints.retire("a:443", Duration::from_millis(3900)));
        assert!(hints.retire("a:443", Duration::from_secs(4)));
        hints.learn_header("b:443", "max=100");
        assert_eq!(hints.limit("b:443"), None);
        // Nothing announced: 5 s assumed, retired at 4 s.
        assert!(!hints.retire("b:443", Duration::from_millis(3900)));
        assert!(hints.retire("b:443", Duration::from_secs(4)));
        // A longer announced limit keeps connections longer.
        hints.learn_header("d:443", "timeout=75");
        assert!(!hints.retire("d:443", Duration::from_secs(60)));
        // A one-second limit retires at half of it.
        hints.learn_header("c:443", "Timeout=1");
        assert!(hints.retire("c:443", Duration::from_millis(500)));
        assert!(!hints.retire("c:443", Duration::from_millis(400)));
    }

    #[test]
    fn an_observed_close_only_ever_lowers_the_limit() {
        let hints = Hints::default();
        hints.observe_close("a:443", Duration::from_secs(5));
        hints.observe_close("a:443", Duration::from_secs(8));
        assert_eq!(hints.limit("a:443"), Some(Duration::from_secs(5)));
    }
}
