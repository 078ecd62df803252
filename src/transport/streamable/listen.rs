//! The GET listening stream: what the server sends unasked (notifications, its own requests,
//! responses it chose to send there). Opened once after initialization, reconnected with
//! `Last-Event-ID` when it ends or goes silent, and the trigger of a new session when the server
//! answers it with "session gone".

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::answers::{backoff, is_session_gone};
use super::Streamable;
use crate::http::response::{is_event_stream, read_short_body};
use crate::transport::events::{pump, Message, Pumped};

/// A listening stream silent for this long is presumed dead (a peer that vanished without a FIN,
/// a NAT that forgot the flow) and is reconnected with Last-Event-ID. Servers that send keep-alive
/// comments never hit it; for a silent but healthy server it costs one reconnect per period.
const LISTEN_IDLE_BOUND: Duration = Duration::from_secs(300);

/// Open the listening stream on a thread of its own, unless it already runs.
pub(super) fn start(transport: &Arc<Streamable>) {
    if transport.listening.swap(true, Ordering::SeqCst) {
        return;
    }
    let transport = Arc::clone(transport);
    let spawned = thread::Builder::new().name("listen".into()).spawn(move || {
        listen(&transport);
        transport.listening.store(false, Ordering::SeqCst);
    });
    if let Err(e) = spawned {
        log::warn!("cannot start the listening stream thread: {e}");
    }
}

/// Hold the GET stream: forward what the server sends, reconnect with Last-Event-ID when it
/// ends. A non-200 answer means the server offers no listening stream, which is fine.
fn listen(t: &Arc<Streamable>) {
    let inbox = t.inbox();
    let stop = t.stop();
    let mut last_event_id: Option<String> = None;
    let mut failures = 0u32;
    let deliver = |message: Message| inbox.deliver(message);
    let stopped = || stop.is_stopped();
    let mut stream_generation = inbox.session().generation;
    // Set when this loop itself re-initialized: a server that answers every GET with 404
    // offers no listening stream, and must not be re-initialized over and over.
    let mut renewed_here = false;
    while !stop.is_closing() {
        let generation = inbox.session().generation;
        if generation != stream_generation {
            // A new session: the old one's event ids mean nothing to it.
            stream_generation = generation;
            last_event_id = None;
            failures = 0;
        }
        let resp = match t.get_stream(last_event_id.as_deref(), Some(LISTEN_IDLE_BOUND)) {
            Ok(resp) => resp,
            Err(f) => {
                // Server down: retry with capped, jittered backoff; log once per outage.
                if failures == 0 {
                    log::warn!(
                        "listening stream lost: {}; reconnecting in the background",
                        f.message()
                    );
                }
                failures += 1;
                stop.sleep(backoff(failures));
                continue;
            }
        };
        if failures > 0 {
            log::info!("listening stream reconnected");
            failures = 0;
        }
        let status = resp.status().as_u16();
        if status != 200 || !is_event_stream(&resp) {
            let body = read_short_body(resp);
            if stop.is_closing() {
                return;
            }
            if renewed_here && generation == stream_generation {
                log::debug!(
                    "server offers no listening stream (HTTP {status} on a new session too)"
                );
                return;
            }
            if inbox.session().id.is_some() && is_session_gone(status, &body) {
                log::info!("the server lost the session (HTTP {status} on the listening stream); starting a new one");
                if let Err(f) = t.renew_session(generation) {
                    log::warn!("cannot start a new session: {}", f.message());
                    return;
                }
                renewed_here = true;
                continue;
            }
            log::debug!("server offers no listening stream (HTTP {status})");
            return;
        }
        renewed_here = false;
        let mut stream = t.streams.open(resp);
        match pump(&mut stream, None, &deliver, &stopped) {
            Pumped::Stopped | Pumped::Answered => return,
            Pumped::Ended {
                last_event_id: l,
                retry,
                ..
            } => {
                if l.is_some() {
                    last_event_id = l;
                }
                stop.sleep(retry.unwrap_or(Duration::from_millis(500)));
            }
        }
    }
}
