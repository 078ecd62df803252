//! MCP 2026-07-28 requests: stateless, cancelled by closing their stream, retried once with fresh
//! tool schemas after a HeaderMismatch.

use std::sync::Arc;

use super::{Reply, Streamable};
use crate::http::cancel;
use crate::jsonrpc::{self, FrameInfo, Id};
use crate::transport::error::TransportError;

/// Pages of `tools/list` read at most when refreshing the tool schemas.
const MAX_PAGES: usize = 20;

/// Send a 2026-07-28 request: cancellable by closing its stream, and retried once with fresh
/// tool schemas when the server reports a header mismatch.
pub(super) fn request(
    t: &Arc<Streamable>,
    frame: &[u8],
    info: &FrameInfo,
    id: &Id,
) -> Result<Reply, TransportError> {
    if info.method.as_deref() == Some("tools/list") {
        t.inbox().tool_headers.expect_list(id);
    }
    // The worker's handle (the bridge's), or one of our own (the test client's).
    let handle = cancel::current().unwrap_or_default();
    let send = || {
        cancel::with_handle(Arc::clone(&handle), || {
            // Never asked to fall back, so the reply is an answer.
            match t.post_request(frame, info, id, false)? {
                Reply::Answered(tail) => Ok(tail),
                Reply::FallBack(why) => Err(TransportError::BadResponse(why)),
                Reply::Cancelled => Ok(super::Tail::none()),
            }
        })
    };
    let mut result = send();
    if let Err(f) = &result {
        let is_call = info.method.as_deref() == Some("tools/call");
        if is_call && is_header_mismatch(f) && !handle.is_cancelled() {
            log::info!(
                "the server reports a header mismatch: refreshing tools/list and retrying once"
            );
            match refresh_tools(t, frame) {
                Ok(()) => result = send(),
                Err(e) => log::warn!("cannot refresh tools/list: {}", e.message()),
            }
        }
    }
    if handle.is_cancelled() {
        log::debug!("request {} cancelled by closing its stream", id.to_json());
        t.inbox().sink().forget(id);
        return Ok(Reply::Cancelled);
    }
    // Answered: a late cancel must not touch the connection (the tail may pool it).
    handle.release();
    result.map(Reply::Answered)
}

/// Re-read every page of `tools/list` (with the `_meta` of the call that failed) so that the
/// `Mcp-Param-*` headers follow the server's current schemas.
fn refresh_tools(t: &Arc<Streamable>, call_frame: &[u8]) -> Result<(), TransportError> {
    let meta = serde_json::from_slice::<serde_json::Value>(call_frame)
        .ok()
        .and_then(|v| v.pointer("/params/_meta").cloned())
        .unwrap_or_else(|| serde_json::json!({}));
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let waiter = t.inbox().own_request("tools");
        let id_value: serde_json::Value =
            serde_json::from_str(&waiter.id().to_json()).unwrap_or_default();
        let mut params = serde_json::json!({ "_meta": meta });
        if let Some(c) = &cursor {
            params["cursor"] = serde_json::Value::String(c.clone());
        }
        let request = serde_json::json!({"jsonrpc": "2.0", "id": id_value, "method": "tools/list", "params": params});
        let frame = serde_json::to_vec(&request).unwrap_or_default();
        t.inbox().tool_headers.expect_list(waiter.id());
        let reply = t.own_request(&frame, &waiter);
        if reply.is_err() {
            t.inbox().forget_listing(waiter.id());
        }
        cursor = serde_json::from_slice::<serde_json::Value>(&reply?)
            .ok()
            .and_then(|v| {
                v.pointer("/result/nextCursor")
                    .and_then(|c| c.as_str())
                    .map(str::to_string)
            });
        if cursor.is_none() {
            return Ok(());
        }
    }
    Ok(())
}

/// The server's answer was a 2026-07-28 HeaderMismatch (-32020).
fn is_header_mismatch(f: &TransportError) -> bool {
    f.server_frame()
        .and_then(|frame| jsonrpc::classify(frame).ok())
        .and_then(|i| i.error_code)
        == Some(jsonrpc::HEADER_MISMATCH)
}
