//! Event streams: a POST's response stream (resumed with GET + Last-Event-ID when the server
//! closes it early) and the GET listening stream (reconnected when it ends or goes silent).

use super::*;
use crate::transport::events::StreamEnd;

impl Remote {
    pub(super) fn pump_first_checking_legacy<R: std::io::Read>(
        &self,
        stream: &mut EventStream<R>,
        id: &Id,
        answered: &dyn Fn(),
    ) -> Result<Sent, TransportError> {
        // Peek the first event: `endpoint` means a legacy server answered our POST.
        loop {
            match stream.next_event() {
                Ok((event, _)) if event.event == "endpoint" => {
                    return Ok(Sent::FallBack(
                        "server answered the initialize POST with a legacy `endpoint` event".into(),
                    ))
                }
                Ok((event, held)) if event.event == "message" => {
                    let message = Message {
                        frame: event.data.into_bytes(),
                        held,
                    };
                    if let Some(info) = self.deliver(message) {
                        if info.kind == Kind::Response && info.id.as_ref() == Some(id) {
                            answered();
                            self.drain(stream);
                            return Ok(Sent::Done);
                        }
                    }
                    return self
                        .finish_stream(stream, id, false, answered)
                        .map(|()| Sent::Done);
                }
                Ok(_) => continue,
                Err(_) => {
                    return self
                        .finish_stream(stream, id, false, answered)
                        .map(|()| Sent::Done)
                }
            }
        }
    }

    /// Pump a POST's response stream until the response; resume with GET + Last-Event-ID when the
    /// server closes it early (SSE polling, SEP-1699), waiting exactly the server's `retry`.
    pub(super) fn finish_stream<R: std::io::Read>(
        &self,
        stream: &mut EventStream<R>,
        id: &Id,
        modern: bool,
        answered: &dyn Fn(),
    ) -> Result<(), TransportError> {
        let deliver = |message: Message| self.deliver(message);
        let stopped = || self.stop.is_stopped();
        let mut outcome = pump(stream, Some(id), &deliver, &stopped);
        if matches!(outcome, Pumped::Answered) {
            answered();
            self.drain(stream);
            return Ok(());
        }
        let mut resumes = 0;
        loop {
            match outcome {
                Pumped::Answered => return Ok(()),
                Pumped::Stopped => return Err(shutting_down()),
                Pumped::Ended {
                    end,
                    last_event_id,
                    retry,
                } => {
                    let answered_elsewhere = !self.sink.in_flight().contains(id);
                    if answered_elsewhere {
                        return Ok(());
                    }
                    // A cancel closes the stream, which a read may see as a clean end (ureq's
                    // shutdown wakes it with EOF): never resume a cancelled request.
                    if cancel::current_is_cancelled() {
                        return Err(TransportError::StreamEnded(
                            "the client cancelled the request".into(),
                        ));
                    }
                    if let StreamEnd::Refused(why) = end {
                        return Err(TransportError::BadResponse(why));
                    }
                    let resumable = !modern && last_event_id.is_some() && resumes < MAX_RESUMES;
                    let Some(last_id) = last_event_id.filter(|_| resumable) else {
                        return Err(TransportError::StreamEnded(format!(
                            "response stream ended before the response ({end})"
                        )));
                    };
                    resumes += 1;
                    let wait = retry.unwrap_or_else(|| backoff(resumes));
                    log::debug!("response stream for {} ended; resuming after {wait:?} from event {last_id}", id.to_json());
                    if !self.stop.sleep(wait) {
                        return Err(shutting_down());
                    }
                    let resp = self.get_stream(Some(&last_id), None)?;
                    let status = resp.status().as_u16();
                    if status != 200 {
                        return Err(TransportError::StreamEnded(format!("response stream ended before the response, and resuming it failed with HTTP {status}")));
                    }
                    let mut resumed = EventStream::new(decoded_body(resp), &self.limits);
                    outcome = pump(&mut resumed, Some(id), &deliver, &stopped);
                    // Keep the original id when the resumed stream carried no new one.
                    if let Pumped::Ended {
                        last_event_id: ref mut l @ None,
                        ..
                    } = outcome
                    {
                        *l = Some(last_id);
                    }
                }
            }
        }
    }

    /// Keep forwarding what follows the response on its stream until the server ends it, so that
    /// the connection goes back to the pool (servers close the stream right after the response).
    pub(super) fn drain<R: std::io::Read>(&self, stream: &mut EventStream<R>) {
        let deliver = |message: Message| self.deliver(message);
        let stopped = || self.stop.is_stopped();
        pump(stream, None, &deliver, &stopped);
    }

    /// GET the endpoint as an event stream, for listening or resuming (`last_event_id`).
    pub(super) fn get_stream(
        &self,
        last_event_id: Option<&str>,
        idle_bound: Option<Duration>,
    ) -> Result<Response<Body>, TransportError> {
        let mut headers = vec![("Accept".to_string(), "text/event-stream".to_string())];
        headers.extend(self.session_headers());
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID".to_string(), id.to_string()));
        }
        let url = self.state().endpoint.clone();
        let waits = Waits {
            response: Some(ACCEPT_TIMEOUT),
            per_read: idle_bound,
        };
        let (resp, _) = self
            .exchange
            .follow(Method::GET, &url, &headers, (), waits)?;
        Ok(resp)
    }

    /// Open the GET listening stream once, after initialization (Streamable HTTP only).
    pub(super) fn start_listener(self: &Arc<Self>) {
        if !matches!(self.state().mode, Mode::Streamable)
            || self.listener_started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let remote = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("listen".into())
            .spawn(move || remote.listen());
        if let Err(e) = spawned {
            log::warn!("cannot start the listening stream thread: {e}");
        }
    }

    /// Hold the GET stream: forward what the server sends, reconnect with Last-Event-ID when it
    /// ends. A non-200 answer means the server offers no listening stream, which is fine.
    pub(super) fn listen(self: &Arc<Self>) {
        self.listen_until_done();
        self.listener_started.store(false, Ordering::SeqCst);
    }

    pub(super) fn listen_until_done(self: &Arc<Self>) {
        let mut last_event_id: Option<String> = None;
        let mut failures = 0u32;
        let deliver = |message: Message| self.deliver(message);
        let stopped = || self.stop.is_stopped();
        let mut stream_generation = self.state().session.generation;
        // Set when this loop itself re-initialized: a server that answers every GET with 404
        // offers no listening stream, and must not be re-initialized over and over.
        let mut renewed_here = false;
        while !self.stop.is_closing() {
            let generation = self.state().session.generation;
            if generation != stream_generation {
                // A new session: the old one's event ids mean nothing to it.
                stream_generation = generation;
                last_event_id = None;
                failures = 0;
            }
            let resp = match self.get_stream(last_event_id.as_deref(), Some(LISTEN_IDLE_BOUND)) {
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
                    self.stop.sleep(backoff(failures));
                    continue;
                }
            };
            if failures > 0 {
                log::info!("listening stream reconnected");
                failures = 0;
            }
            let status = resp.status().as_u16();
            let is_sse = is_event_stream(&resp);
            if status != 200 || !is_sse {
                let body = read_short_body(resp);
                if self.stop.is_closing() {
                    return;
                }
                if renewed_here && generation == stream_generation {
                    log::debug!(
                        "server offers no listening stream (HTTP {status} on a new session too)"
                    );
                    return;
                }
                if self.state().session.id.is_some() && is_session_gone(status, &body) {
                    log::info!("the server lost the session (HTTP {status} on the listening stream); starting a new one");
                    if let Err(f) = self.reinitialize(generation) {
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
            let mut stream = EventStream::new(decoded_body(resp), &self.limits);
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
                    self.stop.sleep(retry.unwrap_or(Duration::from_millis(500)));
                }
            }
        }
    }
}
