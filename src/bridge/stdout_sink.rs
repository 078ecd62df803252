//! The bridge's [`Sink`]: frames from the server go to the stdout writer thread, with the room
//! they hold in the memory budget, which the writer gives back once they are written. So the
//! writer's queue is bounded by the budget: a stream that finds no room stops reading its socket.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::pending::Pending;
use super::stdout::Out;
use crate::jsonrpc::{FrameInfo, Id, Kind};
use crate::transport::budget::Held;
use crate::transport::Sink;

pub struct StdoutSink {
    tx: Sender<Out>,
    pending: Arc<Pending>,
}

impl StdoutSink {
    pub fn new(tx: Sender<Out>, pending: Arc<Pending>) -> Self {
        Self { tx, pending }
    }
}

impl Sink for StdoutSink {
    fn deliver(&self, frame: Vec<u8>, held: Held, info: &FrameInfo) {
        let answers = match info.kind {
            Kind::Response => match &info.id {
                Some(id) => Some(id.clone()),
                None => {
                    log::warn!("dropping a response from the server that has no id");
                    return;
                }
            },
            _ => None,
        };
        let held = held.into_queued();
        let _ = self.tx.send(Out::Frame {
            frame,
            answers,
            held,
        });
    }

    fn fail_with(&self, id: &Id, frame: Vec<u8>) {
        // Error frames are small and one per request: they are not counted.
        let _ = self.tx.send(Out::Frame {
            frame,
            answers: Some(id.clone()),
            held: Held::none(),
        });
    }

    fn forget(&self, id: &Id) {
        self.pending.take(id);
    }
}
