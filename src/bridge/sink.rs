//! Where frames from the server go. The bridge's sink is the stdout writer; the test client has
//! its own. Transports only see this trait, so both share one implementation of MCP over HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::pending::Pending;
use super::stdout::Out;
use crate::jsonrpc::{self, FrameInfo, Id, Kind};

pub trait Sink: Send + Sync {
    /// A classified JSON-RPC frame from the server.
    fn deliver(&self, frame: Vec<u8>, info: &FrameInfo);
    /// Answer the client's request `id` with a prepared error frame (written at most once per id).
    fn fail_with(&self, id: &Id, frame: Vec<u8>);
    /// The client cancelled request `id`: it gets no answer (a late one is dropped).
    fn forget(&self, id: &Id);
    /// Ids of the client's requests still waiting for an answer.
    fn in_flight(&self) -> Vec<Id>;
    /// True once the bridge is shutting down: streams stop reading and reconnecting.
    fn stopped(&self) -> bool;

    /// Answer the client's request `id` with an error.
    fn fail(&self, id: &Id, code: i64, message: &str) {
        log::warn!("request {} failed: {message}", id.to_json());
        self.fail_with(id, jsonrpc::error_response(Some(id), code, message, None));
    }
}

/// The bridge's sink: frames go to the stdout writer thread.
pub struct StdoutSink {
    pub tx: Sender<Out>,
    pub pending: Arc<Pending>,
    pub stop: Arc<AtomicBool>,
}

impl Sink for StdoutSink {
    fn deliver(&self, frame: Vec<u8>, info: &FrameInfo) {
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
        let _ = self.tx.send(Out::Frame { frame, answers });
    }

    fn fail_with(&self, id: &Id, frame: Vec<u8>) {
        let _ = self.tx.send(Out::Frame {
            frame,
            answers: Some(id.clone()),
        });
    }

    fn forget(&self, id: &Id) {
        self.pending.take(id);
    }

    fn in_flight(&self) -> Vec<Id> {
        self.pending.ids()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
