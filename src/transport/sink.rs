//! Where frames from the server go. The bridge's sink is the stdout writer; the test client has
//! its own. Transports only see this trait, so both share one implementation of MCP over HTTP.

use super::budget::Held;
use crate::jsonrpc::{self, FrameInfo, Id};

pub trait Sink: Send + Sync {
    /// A classified JSON-RPC frame from the server, with the room it holds in the memory budget
    /// (to give back once it is written).
    fn deliver(&self, frame: Vec<u8>, held: Held, info: &FrameInfo);
    /// Answer the client's request `id` with a prepared error frame (written at most once per id).
    fn fail_with(&self, id: &Id, frame: Vec<u8>);
    /// The client cancelled request `id`: it gets no answer (a late one is dropped).
    fn forget(&self, id: &Id);

    /// Answer the client's request `id` with an error.
    fn fail(&self, id: &Id, code: i64, message: &str) {
        log::warn!("request {} failed: {message}", id.to_json());
        self.fail_with(id, jsonrpc::error_response(Some(id), code, message, None));
    }
}
