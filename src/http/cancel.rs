//! Cancelling one request by closing its connection.
//!
//! A client's `notifications/cancelled` ends its request in every era: in MCP 2026-07-28 closing
//! the response stream *is* the cancellation; in the handshake era the notification is POSTed and
//! the stream is closed too (servers may never answer a cancelled request, and an open stream
//! would hold a worker, a connection and an in-flight slot for ever). ureq offers no per-request
//! abort, so the worker that sends a request installs a [`CancelHandle`] for its thread; the
//! transport that carries the request binds its socket to it when it sends, and
//! [`CancelHandle::cancel`] shuts that socket down, which ends the blocked read at once.

use crate::sync::lock;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use ureq::unversioned::transport::ShutdownHandle;

/// The socket of one request, once it is sent.
///
/// "Cancelled", "released" and the socket live under one lock: a cancel that lands while the
/// request binds its socket either finds the socket (and shuts it down) or is seen by the bind
/// (which then shuts it down itself). Checked and stored under two locks, a cancel landing
/// between them was lost, and its stream stayed open for the life of the process.
#[derive(Default)]
pub struct CancelHandle {
    state: Mutex<Bound>,
    /// A copy of `Bound::cancelled` for lock-free reads; only written under `state`'s lock.
    cancelled: AtomicBool,
}

#[derive(Default)]
struct Bound {
    socket: Option<Weak<dyn ShutdownHandle>>,
    cancelled: bool,
    /// Set when the request no longer needs its connection to itself (answer delivered): the
    /// connection may go back to the pool and must not be shut down for this request any more.
    released: bool,
    /// When the request last put bytes on a connection whose handshake was done: from then on
    /// its wait is the server's doing. `None` while it is still connecting (TCP, TLS handshake,
    /// proxy CONNECT). The bridge's EOF grace counts from here (see `bridge::EOF_GRACE`).
    reached: Option<Instant>,
}

impl CancelHandle {
    /// Close the request's connection (now, or as soon as it is sent).
    pub fn cancel(&self) {
        let socket = {
            let mut state = self.lock();
            if state.released {
                return;
            }
            state.cancelled = true;
            self.cancelled.store(true, Ordering::SeqCst);
            state.socket.take()
        };
        match socket.map(|w| w.upgrade()) {
            Some(Some(handle)) => {
                log::debug!("cancel: shutting the request's connection down");
                handle.shutdown()
            }
            Some(None) => log::debug!("cancel: the request's connection is already gone"),
            None => {
                log::debug!("cancel: the request has no connection yet; it closes when it sends")
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// When the request last reached the server (sent on an established connection); `None`
    /// while it is still on its way (connecting, in the TLS handshake).
    pub fn reached_at(&self) -> Option<Instant> {
        self.lock().reached
    }

    /// The server has the request, or answered on its behalf (the legacy transport's SSE GET).
    pub fn mark_reached(&self) {
        self.lock().reached = Some(Instant::now());
    }

    /// The answer is out: a later cancel must not touch the (pooled) connection.
    pub fn release(&self) {
        let mut state = self.lock();
        state.released = true;
        state.socket = None;
    }

    fn bind(&self, socket: &Weak<dyn ShutdownHandle>) {
        {
            let mut state = self.lock();
            state.reached = Some(Instant::now());
            if state.released {
                return;
            }
            if !state.cancelled {
                state.socket = Some(socket.clone());
                return;
            }
        }
        // Cancelled before it was sent: close the connection instead of sending on it.
        if let Some(handle) = socket.upgrade() {
            log::debug!(
                "cancel: the request was cancelled before it was sent; closing its connection"
            );
            handle.shutdown();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bound> {
        lock(&self.state)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<CancelHandle>>> = const { RefCell::new(None) };
}

/// Run `f` with `handle` as this thread's cancel handle: requests sent inside bind to it. The
/// thread's previous handle (a worker's, around a connection of the transport's own) comes back
/// afterwards.
pub fn with_handle<T>(handle: Arc<CancelHandle>, f: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(handle));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    out
}

/// Whether this thread's request (if any) was cancelled by the client.
pub fn current_is_cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|h| h.is_cancelled()))
}

/// This thread's cancel handle, if its request is cancellable.
pub fn current() -> Option<Arc<CancelHandle>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Called by transports when they send: bind this thread's handle (if any) to `socket`, and
/// note that its request reached the server.
pub(crate) fn bind_current(socket: Option<&Weak<dyn ShutdownHandle>>) {
    CURRENT.with(|c| {
        if let Some(handle) = c.borrow().as_ref() {
            match socket {
                Some(socket) => handle.bind(socket),
                None => handle.mark_reached(),
            }
        }
    });
}

/// Note that this thread's request (if any) reached the server through a connection of its own
/// (see [`CancelHandle::mark_reached`]).
pub(crate) fn mark_current_reached() {
    CURRENT.with(|c| {
        if let Some(handle) = c.borrow().as_ref() {
            handle.mark_reached();
        }
    });
}
