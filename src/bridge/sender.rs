//! The ordered sender: the client's notifications and responses (to server requests) go out one
//! at a time, in the client's order, each accepted (HTTP 202) before the next. It runs on a thread
//! of its own so that a server that holds such a POST delays only what must come after it, never
//! the dispatcher; shutdown interrupts it (the agent's shutdown ends its read).

use std::io;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread;

use super::Event;
use crate::http::cancel::{self, CancelHandle};
use crate::jsonrpc::FrameInfo;
use crate::transport::budget::Held;
use crate::transport::Remote;

/// One message for the server that gets no response.
pub struct Message {
    pub frame: Vec<u8>,
    pub info: FrameInfo,
    /// The line's room in the memory budget, given back once sent.
    pub held: Held,
    /// Tells the dispatcher when the message reached the server (`CancelHandle::reached_at`);
    /// nothing cancels it.
    pub handle: Arc<CancelHandle>,
}

/// Start the sender; every message handed to the returned channel is answered by one
/// [`Event::Sent`] on `events`. The channel is unbounded, and bounded all the same: the
/// dispatcher hands over at most `SENDER_BACKLOG` messages the server has not accepted yet and
/// holds later ones back (see `Dispatcher::sender_busy`).
pub fn spawn(remote: Arc<Remote>, events: SyncSender<Event>) -> io::Result<Sender<Message>> {
    // Bounded by the dispatcher (see above).
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("sender".into())
        .spawn(move || send_all(&remote, &rx, &events))?;
    Ok(tx)
}

fn send_all(remote: &Arc<Remote>, rx: &Receiver<Message>, events: &SyncSender<Event>) {
    while let Ok(Message {
        frame,
        info,
        held,
        handle,
    }) = rx.recv()
    {
        if let Err(f) = cancel::with_handle(handle, || remote.send(frame, &info)) {
            log::warn!(
                "the server did not accept {}: {}",
                info.method.as_deref().unwrap_or("a response"),
                f.message()
            );
        }
        drop(held);
        if events.send(Event::Sent).is_err() {
            return;
        }
    }
}
