//! `x-mcp-header` (MCP 2026-07-28): the bridge learns each tool's header parameters from the
//! `tools/list` results it relays, drops tools whose annotations are invalid (the spec says a
//! client MUST), and mirrors annotated arguments of `tools/call` into `Mcp-Param-*` headers.
//! The stdio client never sees HTTP, so this is the bridge's job.

use crate::sync::lock;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::jsonrpc::{self, Id};
use crate::modern::{self, HeaderParam};

#[derive(Default)]
pub struct ToolHeaders {
    /// Header parameters per tool name (tools without annotations map to an empty list).
    params: Mutex<HashMap<String, Vec<HeaderParam>>>,
    /// Ids of modern `tools/list` requests in flight: their responses are filtered.
    list_requests: Mutex<HashSet<Id>>,
    /// Tools already warned about (one warning per tool, not per listing).
    warned: Mutex<HashSet<String>>,
}

impl ToolHeaders {
    /// A modern `tools/list` request with this id is being sent.
    pub fn expect_list(&self, id: &Id) {
        lock(&self.list_requests).insert(id.clone());
    }

    /// The `tools/list` request `id` failed without an answer: stop watching for one.
    pub fn forget(&self, id: &Id) {
        lock(&self.list_requests).remove(id);
    }

    /// If `frame` answers a watched `tools/list`, learn from it and return the frame the client
    /// should see (tools with invalid annotations removed); otherwise return it unchanged.
    pub fn absorb(&self, id: Option<&Id>, frame: Vec<u8>) -> Vec<u8> {
        let Some(id) = id else { return frame };
        if !lock(&self.list_requests).remove(id) {
            return frame;
        }
        let filtered = match modern::filter_tools_list(&frame) {
            Ok(f) => f,
            Err(_) => return frame,
        };
        {
            let mut params = lock(&self.params);
            for (name, tool_params) in filtered.tools {
                params.insert(name, tool_params);
            }
        }
        let mut warned = lock(&self.warned);
        for rejected in &filtered.rejected {
            let name = rejected.name.clone().unwrap_or_default();
            if warned.insert(name) {
                log::warn!("{rejected}");
            }
        }
        drop(warned);
        filtered.frame.into_owned()
    }

    /// `Mcp-Param-*` headers for a `tools/call` of `tool` with the call frame `frame`.
    pub fn param_headers(&self, tool: &str, frame: &[u8]) -> Vec<(String, String)> {
        let params = match lock(&self.params).get(tool) {
            Some(p) if !p.is_empty() => p.clone(),
            _ => return Vec::new(),
        };
        match jsonrpc::tool_call_arguments(frame) {
            Some(arguments) => modern::param_headers(&params, &arguments),
            None => Vec::new(),
        }
    }
}
