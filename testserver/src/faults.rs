//! Applies queued `Fault`s to incoming POSTs (both `/mcp` and the legacy `/message`).

use std::time::{Duration, Instant};

use super::http::{HttpConn, Next, Response};
use super::mcp::Incoming;
use super::state::State;
use super::Fault;

/// What a matching fault makes the server do with a POST.
pub(super) enum PostFault {
    Respond(Response),
    Drop,
    CloseAfterPriming,
}

/// Takes the first queued fault that applies to this POST. `Status`, `Answer`, `DropConnection` and
/// `CloseAfterPriming` apply to POSTs carrying a JSON-RPC request; `StatusFor` to the POST whose
/// message (request or notification) has that method. `CloseAfterPriming` only applies when the
/// transport can prime a stream (`can_prime`, i.e. Streamable HTTP).
pub(super) fn take(state: &State, incoming: &Incoming, can_prime: bool) -> Option<PostFault> {
    let (is_request, method) = match incoming {
        Incoming::Request { method, .. } => (true, Some(method.as_str())),
        Incoming::Notification { method, .. } => (false, Some(method.as_str())),
        _ => (false, None),
    };
    let fault = state.take_fault(|f| match f {
        Fault::Status { .. } | Fault::Answer { .. } | Fault::DropConnection => is_request,
        Fault::CloseAfterPriming => is_request && can_prime,
        Fault::StatusFor { method: m, .. } => Some(*m) == method,
        Fault::ExpireSessions
        | Fault::ExpireSessionsSilently
        | Fault::EndGetStreams
        | Fault::EndLegacyStreams
        | Fault::EndNextLegacyStreamAfterEndpoint
        | Fault::HoldFor { .. }
        | Fault::DelayFor { .. } => false,
    })?;
    Some(match fault {
        Fault::Status {
            status,
            content_type,
            body,
        }
        | Fault::StatusFor {
            status,
            content_type,
            body,
            ..
        } => PostFault::Respond(Response::with_body(status, content_type, body)),
        Fault::Answer {
            status,
            headers,
            body,
        } => {
            let mut response = Response::empty(status);
            for (name, value) in headers {
                response = response.header(name, &value);
            }
            PostFault::Respond(response.body(body))
        }
        Fault::DropConnection => PostFault::Drop,
        Fault::CloseAfterPriming
        | Fault::ExpireSessions
        | Fault::ExpireSessionsSilently
        | Fault::EndGetStreams
        | Fault::EndLegacyStreams
        | Fault::EndNextLegacyStreamAfterEndpoint
        | Fault::HoldFor { .. }
        | Fault::DelayFor { .. } => PostFault::CloseAfterPriming,
    })
}

/// How often a held POST checks whether the client hung up or the server stops.
const HOLD_CHECK: Duration = Duration::from_millis(25);

/// Applies a queued `HoldFor` or `DelayFor` to this POST. A held POST returns `Some(Next::Close)`
/// once the client hung up or the server stops; a delayed one returns `None` after the delay (or
/// at once when the server stops), and the POST is then served as usual.
pub(super) fn hold_or_delay(
    state: &State,
    http: &mut HttpConn,
    incoming: &Incoming,
) -> Option<Next> {
    let method = match incoming {
        Incoming::Request { method, .. } | Incoming::Notification { method, .. } => method.as_str(),
        _ => return None,
    };
    let fault = state.take_fault(|f| match f {
        Fault::HoldFor { method: m } | Fault::DelayFor { method: m, .. } => *m == method,
        _ => false,
    })?;
    match fault {
        Fault::DelayFor { ms, .. } => {
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until && !state.stopping() {
                std::thread::sleep(HOLD_CHECK.min(until.saturating_duration_since(Instant::now())));
            }
            None
        }
        _ => {
            while !state.stopping() && !http.client_gone() {
                std::thread::sleep(HOLD_CHECK);
            }
            Some(Next::Close)
        }
    }
}
