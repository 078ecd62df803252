//! Drives a long-lived SSE response (standalone GET stream, resumed stream, legacy `/sse`) from an
//! outbox channel until the client leaves, the outbox closes (session gone) or the server stops.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::http::{HttpConn, Next};
use super::sse;
use super::state::{Outbound, State};

/// How long to wait for an outgoing message before checking whether the client is still there.
pub(super) const IDLE_CHECK: Duration = Duration::from_millis(25);

/// Writes one queued message as an SSE `message` event; false if the client is gone.
pub(super) fn write(http: &mut HttpConn, out: &Outbound, crlf: bool) -> bool {
    http.write_chunk(sse::message(out.id.as_deref(), &out.data, crlf).as_bytes())
        .is_ok()
}

pub(super) fn pump(state: &State, http: &mut HttpConn, outbox: &Receiver<Outbound>) -> Next {
    let crlf = state.opts.crlf;
    loop {
        if state.stopping() {
            return Next::Close;
        }
        match outbox.recv_timeout(IDLE_CHECK) {
            Ok(out) => {
                if !write(http, &out, crlf) {
                    return Next::Close;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if http.client_gone() {
                    return Next::Close;
                }
            }
            // The session ended (DELETE, expiry): finish the response cleanly.
            Err(RecvTimeoutError::Disconnected) => {
                return match http.end_stream() {
                    Ok(()) => Next::KeepAlive,
                    Err(_) => Next::Close,
                };
            }
        }
    }
}
