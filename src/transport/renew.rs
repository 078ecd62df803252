//! Starting a new session when the server lost the old one (restart, expiry, a legacy SSE stream
//! that ended), the same way over either transport: the client's own initialize is replayed
//! under a bridge-owned id, then what the client had set up (subscriptions, log level) is
//! restored, so the client never sees the gap. Each transport supplies only how to send one of
//! the bridge's own requests and get its reply.

use super::error::TransportError;
use super::inbox::{Inbox, Waiter};
use super::session::Replay;
use crate::jsonrpc::{self, Id};

/// Send the frame of the bridge's own request (its id is the waiter's) and return the reply.
pub type Ask<'a> = dyn Fn(&[u8], &Waiter<'_>) -> Result<Vec<u8>, TransportError> + 'a;

/// The notification that ends the handshake on a new session.
pub const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Replay the client's `initialize` (`original`) under a bridge-owned id; returns the server's
/// result frame. The caller sends `notifications/initialized` next, then calls [`renewed`].
pub fn replay_initialize(
    inbox: &Inbox,
    original: &[u8],
    ask: &Ask<'_>,
) -> Result<Vec<u8>, TransportError> {
    let waiter = inbox.own_request("reinit");
    let frame = with_id(original, waiter.id()).ok_or_else(|| {
        TransportError::SessionLost("cannot replay the client's initialize".into())
    })?;
    inbox.session().initialize_id = Some(waiter.id().clone());
    let reply = ask(&frame, &waiter)?;
    if error_code(&reply).is_some() {
        return Err(TransportError::SessionLost(format!(
            "the server refused the replayed initialize: {}",
            excerpt(&reply)
        )));
    }
    Ok(reply)
}

/// The new session is initialized: tell the client to refresh its lists if the server changed
/// (`previous_identity` against the replayed initialize's `reply`), and restore what the client
/// had set up.
pub fn renewed(inbox: &Inbox, previous_identity: Option<String>, reply: &[u8], ask: &Ask<'_>) {
    let (identity, replays) = {
        let mut session = inbox.session();
        let replays = session.renewed();
        (session.server_identity.clone(), replays)
    };
    if identity != previous_identity {
        announce_list_changes(inbox, reply);
    }
    restore(inbox, replays, ask);
}

/// Set the new session up as the client had the old one (subscriptions, log level). What cannot
/// be restored is said to the client as a warning; restored subscriptions get a
/// `notifications/resources/updated`, since the resource may have changed during the gap.
fn restore(inbox: &Inbox, replays: Vec<Replay>, ask: &Ask<'_>) {
    for replay in replays {
        let waiter = inbox.own_request("restore");
        let request = serde_json::json!({
            "jsonrpc": "2.0",
            "id": serde_json::from_str::<serde_json::Value>(&waiter.id().to_json()).unwrap_or_default(),
            "method": replay.method,
            "params": replay.params,
        });
        let frame = serde_json::to_vec(&request).unwrap_or_default();
        let outcome = ask(&frame, &waiter)
            .map_err(|f| f.message().to_string())
            .and_then(|reply| match error_code(&reply) {
                Some(_) => Err(excerpt(&reply)),
                None => Ok(()),
            });
        match outcome {
            Ok(()) => {
                log::info!("restored {} on the new session", replay.what);
                if replay.method == "resources/subscribe" {
                    inbox.tell_client(
                        "notifications/resources/updated",
                        Some(serde_json::json!({ "uri": replay.params["uri"] })),
                    );
                }
            }
            Err(why) => {
                let text = format!(
                    "the server lost the session and mcp-secure-remote could not restore {} on the new one ({why}); set it up again",
                    replay.what
                );
                log::warn!("{text}");
                inbox.tell_client(
                    "notifications/message",
                    Some(serde_json::json!({
                        "level": "warning",
                        "logger": "mcp-secure-remote",
                        "data": text,
                    })),
                );
            }
        }
    }
}

/// After a replay to a server that changed, tell the client to refresh its lists.
fn announce_list_changes(inbox: &Inbox, initialize_reply: &[u8]) {
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
            inbox.tell_client(method, None);
        }
    }
}

fn error_code(reply: &[u8]) -> Option<i64> {
    jsonrpc::classify(reply).ok().and_then(|i| i.error_code)
}

/// The message of an error frame, for logs.
pub fn excerpt(frame: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(frame)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// A copy of a request frame with another id (only used on small frames: initialize).
fn with_id(frame: &[u8], id: &Id) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(frame).ok()?;
    let id_value: serde_json::Value = serde_json::from_str(&id.to_json()).ok()?;
    *value.get_mut("id")? = id_value;
    serde_json::to_vec(&value).ok()
}
