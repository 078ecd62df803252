//! Applies queued `Fault`s to incoming POSTs (both `/mcp` and the legacy `/message`).

use super::http::Response;
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
        Fault::ExpireSessions | Fault::EndGetStreams => false,
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
        Fault::CloseAfterPriming | Fault::ExpireSessions | Fault::EndGetStreams => {
            PostFault::CloseAfterPriming
        }
    })
}
