//! Recovering the session: the server lost it (restart, expiry) or the legacy SSE stream ended.
//! The client's own initialize is replayed under a bridge-owned id, so the client never sees the gap.

use super::*;
use crate::sync::lock;
use crate::transport::session::Replay;

impl Remote {
    /// POST a request; when the server has lost the session (restart, expiry), replay the
    /// client's initialize in a new session and send the request again. The client never sees
    /// the gap. Bounded: the second loss in a row is reported as an error.
    pub(super) fn post_with_session_recovery(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        may_fall_back: bool,
        answered: &dyn Fn(),
    ) -> Result<Sent, TransportError> {
        let mut replays = 0;
        loop {
            // A replay in progress (started by another request or the listening stream) has
            // taken the session id away: wait for the new one rather than send without it.
            drop(lock(&self.replay_lock));
            let generation = self.state().session.generation;
            match self.post_request(frame, info, id, may_fall_back, answered) {
                Err(f)
                    if f.session_gone()
                        && replays < MAX_SESSION_REPLAYS
                        && !self.stop.is_closing() =>
                {
                    replays += 1;
                    log::info!(
                        "the server lost the session ({}); starting a new one",
                        f.message()
                    );
                    self.reinitialize(generation)?;
                }
                other => return other,
            }
        }
    }

    /// Start a new session by replaying the client's initialize (with a bridge-owned id) and
    /// `notifications/initialized`, unless another request already did since `seen_generation`.
    pub(super) fn reinitialize(
        self: &Arc<Self>,
        seen_generation: u64,
    ) -> Result<(), TransportError> {
        if self.stop.is_closing() {
            // The client has gone (stdin closed): nothing new is started for it.
            return Err(shutting_down());
        }
        let _one_at_a_time = lock(&self.replay_lock);
        let original = {
            let mut state = self.state();
            if state.session.generation != seen_generation {
                return Ok(()); // another request already started the new session
            }
            state.session.lost(seen_generation)
        };
        let original = original.ok_or_else(|| {
            TransportError::SessionLost(
                "the server lost the session before it was initialized".into(),
            )
        })?;
        let replay_id = self.internal_id("reinit");
        let frame = with_id(&original, &replay_id).ok_or_else(|| {
            TransportError::SessionLost("cannot replay the client's initialize".into())
        })?;
        let info = jsonrpc::classify(&frame)
            .map_err(|e| TransportError::SessionLost(format!("cannot replay initialize: {e}")))?;
        let previous_identity = self.state().session.server_identity.clone();
        self.state().session.initialize_id = Some(replay_id.clone());
        let reply = self.internal_request(&frame, &info, &replay_id)?;
        if jsonrpc::classify(&reply)
            .ok()
            .and_then(|i| i.error_code)
            .is_some()
        {
            return Err(TransportError::SessionLost(format!(
                "the server refused the replayed initialize: {}",
                excerpt(&reply)
            )));
        }
        let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        if let Ok(info) = jsonrpc::classify(initialized) {
            self.post_accepted(initialized, &info)?;
        }
        let (identity, replays) = {
            let mut state = self.state();
            let replays = state.session.renewed();
            (state.session.server_identity.clone(), replays)
        };
        if identity != previous_identity {
            self.announce_list_changes(&reply);
        }
        self.restore(replays);
        self.start_listener();
        // A listening stream waiting to reconnect goes now, on the new session.
        self.stop.nudge();
        Ok(())
    }

    /// Set the new session up as the client had the old one (subscriptions, log level). What
    /// cannot be restored is said to the client as a warning; restored subscriptions get a
    /// `notifications/resources/updated`, since the resource may have changed during the gap.
    fn restore(self: &Arc<Self>, replays: Vec<Replay>) {
        for replay in replays {
            let id = self.internal_id("restore");
            let request = serde_json::json!({
                "jsonrpc": "2.0",
                "id": serde_json::from_str::<serde_json::Value>(&id.to_json()).unwrap_or_default(),
                "method": replay.method,
                "params": replay.params,
            });
            let frame = serde_json::to_vec(&request).unwrap_or_default();
            let outcome = jsonrpc::classify(&frame)
                .map_err(|e| e.to_string())
                .and_then(|info| {
                    self.internal_request(&frame, &info, &id)
                        .map_err(|f| f.message().to_string())
                })
                .and_then(|reply| {
                    match jsonrpc::classify(&reply).ok().and_then(|i| i.error_code) {
                        Some(_) => Err(excerpt(&reply)),
                        None => Ok(()),
                    }
                });
            match outcome {
                Ok(()) => {
                    log::info!("restored {} on the new session", replay.what);
                    if replay.method == "resources/subscribe" {
                        self.tell_client(
                            "notifications/resources/updated",
                            serde_json::json!({ "uri": replay.params["uri"] }),
                        );
                    }
                }
                Err(why) => {
                    let text = format!(
                        "the server lost the session and mcp-secure-remote could not restore {} on the new one ({why}); set it up again",
                        replay.what
                    );
                    log::warn!("{text}");
                    self.tell_client(
                        "notifications/message",
                        serde_json::json!({
                            "level": "warning",
                            "logger": "mcp-secure-remote",
                            "data": text,
                        }),
                    );
                }
            }
        }
    }

    /// A notification of the bridge's own to the client.
    fn tell_client(&self, method: &str, params: serde_json::Value) {
        let frame = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params});
        let frame = serde_json::to_vec(&frame).unwrap_or_default();
        if let Ok(info) = jsonrpc::classify(&frame) {
            self.sink.deliver(frame, Held::none(), &info);
        }
    }

    /// After a replay to a server that changed, tell the client to refresh its lists.
    pub(super) fn announce_list_changes(&self, initialize_reply: &[u8]) {
        let caps = serde_json::from_slice::<serde_json::Value>(initialize_reply)
            .ok()
            .and_then(|v| v.pointer("/result/capabilities").cloned())
            .unwrap_or_default();
        for (capability, method) in [
            ("tools", "notifications/tools/list_changed"),
            ("resources", "notifications/resources/list_changed"),
            ("prompts", "notifications/prompts/list_changed"),
        ] {
            if caps.get(capability).is_some() {
                let frame = format!(r#"{{"jsonrpc":"2.0","method":"{method}"}}"#).into_bytes();
                if let Ok(info) = jsonrpc::classify(&frame) {
                    self.sink.deliver(frame, Held::none(), &info);
                }
            }
        }
    }

    /// Send a request of the bridge's own and return the response frame (never shown to the client).
    pub(super) fn internal_request(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
    ) -> Result<Vec<u8>, TransportError> {
        // One message: the reply to this one request.
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.internal).insert(id.clone(), tx);
        let sent = self.post_request(frame, info, id, false, &|| {});
        let reply = rx.try_recv();
        lock(&self.internal).remove(id);
        sent?;
        reply.map_err(|_| {
            TransportError::SessionLost("no response to the bridge's own request".into())
        })
    }

    /// The legacy link, re-established when its SSE stream has ended (server restart): a new GET,
    /// a new endpoint, and the client's initialize replayed on it before anything else.
    pub(super) fn live_legacy_link(
        self: &Arc<Self>,
        link: Arc<LegacyLink>,
        is_initialize: bool,
    ) -> Result<Arc<LegacyLink>, TransportError> {
        if link.is_alive() {
            return Ok(link);
        }
        let _one_at_a_time = lock(&self.replay_lock);
        if let Mode::Legacy(current) = &self.state().mode {
            if current.is_alive() {
                return Ok(Arc::clone(current));
            }
        }
        log::info!("the server's SSE stream ended; reconnecting");
        let fresh = self.connect_legacy()?;
        self.state().mode = Mode::Legacy(Arc::clone(&fresh));
        let original = self.state().session.client_initialize.clone();
        if let (false, Some(original)) = (is_initialize, original) {
            let replay_id = self.internal_id("reinit-sse");
            let frame = with_id(&original, &replay_id).ok_or_else(|| {
                TransportError::SessionLost("cannot replay the client's initialize".into())
            })?;
            // One message: the reply to this one request.
            let (tx, rx) = mpsc::sync_channel(1);
            lock(&self.internal).insert(replay_id.clone(), tx);
            let sent = fresh.post(&self.exchange, &frame, None);
            let reply = rx.recv_timeout(self.config.connect_timeout.max(Duration::from_secs(10)));
            lock(&self.internal).remove(&replay_id);
            sent?;
            reply.map_err(|_| {
                TransportError::SessionLost(
                    "the server did not answer the replayed initialize".into(),
                )
            })?;
            fresh.post(
                &self.exchange,
                br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                None,
            )?;
        }
        Ok(fresh)
    }
}

/// 404 on a request that carried a session id means the session is gone (spec); the TypeScript
/// SDK answers 400 "No valid session ID provided" instead.
pub(super) fn is_session_gone(status: u16, body: &[u8]) -> bool {
    match status {
        404 => true,
        400 => {
            let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
            text.contains("session")
                && (text.contains("no valid")
                    || text.contains("not found")
                    || text.contains("invalid"))
        }
        _ => false,
    }
}

/// A copy of a request frame with another id (only used on small frames: initialize).
pub(super) fn with_id(frame: &[u8], id: &Id) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(frame).ok()?;
    let id_value: serde_json::Value = serde_json::from_str(&id.to_json()).ok()?;
    *value.get_mut("id")? = id_value;
    serde_json::to_vec(&value).ok()
}
