//! Where every message from the server goes, whichever transport carried it: learn from it (the
//! session's negotiated version, tool schemas, the hidden tools), hand a response to the
//! bridge's own request that waits for it, and everything else to the [`Sink`].
//!
//! Both transports deliver here and nowhere else, so neither needs the other or the front
//! (`Remote`). The inbox also remembers which awaited responses went by, so that a transport can
//! tell "my stream ended, but the answer came another way" without asking the stdout side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::budget::Held;
use super::events::Message;
use super::session::Session;
use super::sink::Sink;
use super::tool_filter::ToolFilter;
use super::tool_headers::ToolHeaders;
use crate::jsonrpc::{self, FrameInfo, Id, Kind};
use crate::sync::lock;

/// The start of the ids of the bridge's own requests (followed by a per-process random part).
const BRIDGE_ID_PREFIX: &str = "mcp-secure-remote:";

pub struct Inbox {
    /// The server's URL, for logs.
    server: String,
    sink: Arc<dyn Sink>,
    /// The handshake-era session: it learns the negotiated version from the initialize result.
    session: Mutex<Session>,
    /// 2026-07-28 `x-mcp-header` parameters learned from `tools/list`.
    pub tool_headers: ToolHeaders,
    /// `--ignore-tool` / `--allow-tool`.
    pub tool_filter: ToolFilter,
    /// Waiters for responses to the bridge's own requests, by exact id. A client id that merely
    /// looks like one of them (same prefix) is the client's: only ids in this map are the bridge's.
    internal: Mutex<HashMap<Id, SyncSender<Vec<u8>>>>,
    /// Requests a transport is carrying, by id: true once their response went by (on any
    /// stream). One entry per request in flight, removed when its [`Awaiting`] is dropped.
    awaited: Mutex<HashMap<Id, bool>>,
    /// Numbers the bridge's own requests.
    next_internal: AtomicU64,
    /// A random part of the bridge's own ids, so that no client id can be one by accident.
    id_nonce: u64,
}

/// A request whose response the inbox watches for; dropping it stops the watch.
pub struct Awaiting<'a> {
    inbox: &'a Inbox,
    id: Id,
}

impl Awaiting<'_> {
    /// Whether the response went by (on this request's stream or any other).
    pub fn answered(&self) -> bool {
        lock(&self.inbox.awaited)
            .get(&self.id)
            .copied()
            .unwrap_or(false)
    }
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        lock(&self.inbox.awaited).remove(&self.id);
    }
}

/// The reply to one of the bridge's own requests, once it arrives.
pub struct Waiter<'a> {
    inbox: &'a Inbox,
    id: Id,
    rx: Receiver<Vec<u8>>,
}

impl Waiter<'_> {
    /// The reply if it has already arrived.
    pub fn ready(&self) -> Option<Vec<u8>> {
        self.rx.try_recv().ok()
    }

    /// The reply within `limit`, or None.
    pub fn within(&self, limit: Duration) -> Option<Vec<u8>> {
        self.rx.recv_timeout(limit).ok()
    }

    pub fn id(&self) -> &Id {
        &self.id
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        lock(&self.inbox.internal).remove(&self.id);
    }
}

impl Inbox {
    pub fn new(server: String, sink: Arc<dyn Sink>, tool_filter: ToolFilter) -> Self {
        Self {
            server,
            sink,
            session: Mutex::new(Session::default()),
            tool_headers: ToolHeaders::default(),
            tool_filter,
            internal: Mutex::new(HashMap::new()),
            awaited: Mutex::new(HashMap::new()),
            next_internal: AtomicU64::new(0),
            id_nonce: random_u64(),
        }
    }

    pub fn session(&self) -> MutexGuard<'_, Session> {
        lock(&self.session)
    }

    pub fn sink(&self) -> &dyn Sink {
        self.sink.as_ref()
    }

    /// Watch for the response to `id` until the returned guard is dropped.
    pub fn awaiting(&self, id: &Id) -> Awaiting<'_> {
        lock(&self.awaited).insert(id.clone(), false);
        Awaiting {
            inbox: self,
            id: id.clone(),
        }
    }

    /// A fresh id for a request of the bridge's own (`what` says what for, in logs), and the
    /// waiter its reply goes to instead of the sink.
    pub fn own_request(&self, what: &str) -> Waiter<'_> {
        let n = self.next_internal.fetch_add(1, Ordering::Relaxed);
        let id = Id::Str(format!(
            "{BRIDGE_ID_PREFIX}{:016x}:{what}-{n}",
            self.id_nonce
        ));
        // One message: the reply to this one request.
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.internal).insert(id.clone(), tx);
        Waiter {
            inbox: self,
            id,
            rx,
        }
    }

    /// Classify a frame from the server, learn from it, and hand it to the sink (or to the
    /// bridge's own request that waits for it). None when it is not JSON-RPC (dropped).
    pub fn deliver(&self, message: Message) -> Option<FrameInfo> {
        let Message { frame, held } = message;
        let info = match jsonrpc::classify(&frame) {
            Ok(info) => info,
            Err(e) => {
                log::warn!("dropping a message from the server that is not JSON-RPC: {e}");
                return None;
            }
        };
        let mut frame = frame;
        if info.kind == Kind::Response {
            if let Some(id) = &info.id {
                if let Some(seen) = lock(&self.awaited).get_mut(id) {
                    *seen = true;
                }
            }
            if self.session().response(&info, &frame) {
                let version = self.session().protocol_version.clone();
                log::info!(
                    "connected to {} (protocol {})",
                    self.server,
                    version.as_deref().unwrap_or("unknown")
                );
            }
            frame = self.tool_headers.absorb(info.id.as_ref(), frame);
            frame = self.tool_filter.absorb(info.id.as_ref(), frame);
            let waiter = info
                .id
                .as_ref()
                .and_then(|id| lock(&self.internal).remove(id));
            if let Some(tx) = waiter {
                let _ = tx.try_send(frame);
                return Some(info);
            }
        }
        self.sink.deliver(frame, held, &info);
        Some(info)
    }

    /// A notification of the bridge's own to the client.
    pub fn tell_client(&self, method: &str, params: Option<serde_json::Value>) {
        let mut frame = serde_json::json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            frame["params"] = params;
        }
        let frame = serde_json::to_vec(&frame).unwrap_or_default();
        if let Ok(info) = jsonrpc::classify(&frame) {
            self.sink.deliver(frame, Held::none(), &info);
        }
    }

    /// The request `id` failed without an answer from the server: stop watching for a listing.
    pub fn forget_listing(&self, id: &Id) {
        self.tool_filter.forget(id);
        self.tool_headers.forget(id);
    }
}

/// 64 random bits from the standard library's per-process hash keys (seeded by the OS).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}
