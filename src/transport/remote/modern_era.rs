//! MCP 2026-07-28 requests: stateless, cancelled by closing their stream, retried once with fresh
//! tool schemas after a HeaderMismatch.

use super::*;

impl Remote {
    /// A 2026-07-28 request: stateless, cancellable by closing its stream, and retried once with
    /// fresh tool schemas when the server reports a header mismatch.
    pub(super) fn modern_request(
        self: &Arc<Self>,
        frame: &[u8],
        info: &FrameInfo,
        id: &Id,
        answered: &dyn Fn(),
    ) -> Result<(), TransportError> {
        if info.method.as_deref() == Some("tools/list") {
            self.tool_headers.expect_list(id);
        }
        // The worker's handle (the bridge's), or one of our own (the test client's).
        let handle = cancel::current().unwrap_or_default();
        let on_answer = || {
            handle.release();
            answered();
        };
        let send = || {
            cancel::with_handle(Arc::clone(&handle), || {
                self.post_request(frame, info, id, false, &on_answer)
                    .map(|_| ())
            })
        };
        let mut result = send();
        if let Err(f) = &result {
            let is_call = info.method.as_deref() == Some("tools/call");
            if is_call && is_header_mismatch(f) && !handle.is_cancelled() {
                log::info!(
                    "the server reports a header mismatch: refreshing tools/list and retrying once"
                );
                match self.refresh_tools(frame) {
                    Ok(()) => result = send(),
                    Err(e) => log::warn!("cannot refresh tools/list: {}", e.message()),
                }
            }
        }
        if handle.is_cancelled() {
            log::debug!("request {} cancelled by closing its stream", id.to_json());
            self.sink.forget(id);
            return Ok(());
        }
        result
    }

    /// Re-read every page of `tools/list` (with the `_meta` of the call that failed) so that
    /// the `Mcp-Param-*` headers follow the server's current schemas.
    pub(super) fn refresh_tools(self: &Arc<Self>, call_frame: &[u8]) -> Result<(), TransportError> {
        let meta = serde_json::from_slice::<serde_json::Value>(call_frame)
            .ok()
            .and_then(|v| v.pointer("/params/_meta").cloned())
            .unwrap_or_else(|| serde_json::json!({}));
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let id = self.internal_id("tools");
            let id_value: serde_json::Value =
                serde_json::from_str(&id.to_json()).unwrap_or_default();
            let mut params = serde_json::json!({ "_meta": meta });
            if let Some(c) = &cursor {
                params["cursor"] = serde_json::Value::String(c.clone());
            }
            let request = serde_json::json!({"jsonrpc": "2.0", "id": id_value, "method": "tools/list", "params": params});
            let frame = serde_json::to_vec(&request).unwrap_or_default();
            let info =
                jsonrpc::classify(&frame).map_err(|e| TransportError::Local(e.to_string()))?;
            self.tool_headers.expect_list(&id);
            let reply = self.internal_request(&frame, &info, &id)?;
            cursor = serde_json::from_slice::<serde_json::Value>(&reply)
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
}

/// The server's answer was a 2026-07-28 HeaderMismatch (-32020).
pub(super) fn is_header_mismatch(f: &TransportError) -> bool {
    f.server_frame()
        .and_then(|frame| jsonrpc::classify(frame).ok())
        .and_then(|i| i.error_code)
        == Some(jsonrpc::HEADER_MISMATCH)
}
