//! [`Rpc`] over the bridge's own transport code ([`Remote`]): the client checks exactly what the
//! proxy would do with the same flags. Ids are the client's own (1, 2, 3…).

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::rpc::{CallError, Rpc};
use super::sink::{trace, Answer, CollectingSink};
use crate::config::Config;
use crate::http::Http;
use crate::jsonrpc::{self, Id};
use crate::transport::budget::Budget;
use crate::transport::stop::Stop;
use crate::transport::{Remote, Sink};

/// How long the transport may take to report a failure after it answered the request with an
/// error frame (it returns right after, so this is only a safety bound).
const FAILURE_GRACE: Duration = Duration::from_secs(1);

pub struct Session {
    remote: Arc<Remote>,
    /// Ends the transport's streams and waits when the client is done.
    stop: Arc<Stop>,
    sink: Arc<CollectingSink>,
    next_id: i64,
    /// How long one request may wait for its answer.
    timeout: Duration,
    prepared: bool,
}

impl Session {
    pub fn new(config: Arc<Config>, http: Http, timeout: Duration) -> Self {
        let sink = Arc::new(CollectingSink::new());
        let stop = Arc::new(Stop::new());
        let budget = Budget::new(config.memory_budget, Arc::clone(&stop));
        let remote = Remote::new(
            config,
            http,
            Arc::clone(&sink) as Arc<dyn Sink>,
            Arc::clone(&stop),
            budget,
        );
        Self {
            remote,
            stop,
            sink,
            next_id: 1,
            timeout,
            prepared: false,
        }
    }

    /// Tools hidden from the listings by `--ignore-tool` / `--allow-tool`.
    pub fn hidden_tools(&self) -> Vec<String> {
        self.remote.hidden_tools()
    }

    /// The OAuth authorization obtained, if the server asked for one.
    pub fn authorization(&self) -> Option<crate::oauth::authorizer::Status> {
        self.remote.authorization()
    }

    /// `Streamable HTTP`, `legacy HTTP+SSE`, or `undecided` before the first answer.
    pub fn transport_name(&self) -> &'static str {
        self.remote.transport_name()
    }

    /// Stop the streams and end the session (DELETE, where there is one).
    pub fn close(&self, timeout: Duration) {
        self.stop.stop();
        self.remote.close(timeout);
    }

    /// Open the legacy SSE stream first when the strategy says so (once).
    fn prepare(&mut self) -> Result<(), CallError> {
        if !self.prepared {
            self.remote
                .prepare()
                .map_err(|f| CallError::Transport(f.message().to_string()))?;
            self.prepared = true;
        }
        Ok(())
    }
}

impl Rpc for Session {
    fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.prepare()?;
        let id = self.next_id;
        self.next_id += 1;
        let frame = serde_json::to_vec(&json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": method,
            "params": params,
        }))
        .map_err(|e| CallError::BadResult(format!("cannot encode the {method} request: {e}")))?;
        let info = jsonrpc::classify(&frame)
            .map_err(|e| CallError::BadResult(format!("the {method} request is invalid: {e}")))?;
        log::debug!("client → server: {}", trace(&frame));

        let id = Id::Num(id);
        self.sink.expect(id.clone());
        // The request runs on its own thread so that a server that never answers is bounded by
        // `timeout` here (with the legacy transport the answer arrives after `request` returns).
        let (failure_tx, failure_rx) = mpsc::sync_channel(1);
        let remote = Arc::clone(&self.remote);
        thread::Builder::new()
            .name(format!("req-{id}"))
            .spawn(move || {
                let (failure, tail) = remote.request(frame, &info).into_parts();
                let _ = failure_tx.send(failure);
                tail.drain();
            })
            .map_err(|e| CallError::Transport(format!("cannot start a request thread: {e}")))?;

        match self.sink.wait(&id, self.timeout) {
            Some(Answer::Response(frame)) => result_of(&frame),
            Some(Answer::Failed(frame)) => {
                // Prefer the transport's own diagnosis; the frame carries the same message when
                // the failure came from a stream that died (legacy SSE).
                let diagnosis = failure_rx
                    .recv_timeout(FAILURE_GRACE)
                    .ok()
                    .flatten()
                    .map(|f| f.message().to_string());
                Err(CallError::Transport(
                    diagnosis.unwrap_or_else(|| error_of(&frame).1),
                ))
            }
            None => Err(CallError::Transport(format!(
                "timed out: no answer to {method} within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    fn notify(&mut self, method: &str) -> Result<(), CallError> {
        self.prepare()?;
        let frame = serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": method}))
            .map_err(|e| CallError::BadResult(format!("cannot encode {method}: {e}")))?;
        let info = jsonrpc::classify(&frame)
            .map_err(|e| CallError::BadResult(format!("{method} is invalid: {e}")))?;
        log::debug!("client → server: {}", trace(&frame));
        self.remote
            .send(frame, &info)
            .map_err(|f| CallError::Transport(f.message().to_string()))
    }
}

/// The `result` of a response frame, or its error.
fn result_of(frame: &[u8]) -> Result<Value, CallError> {
    let mut response: Value = serde_json::from_slice(frame)
        .map_err(|e| CallError::BadResult(format!("the response is not JSON: {e}")))?;
    if let Some(result) = response.get_mut("result") {
        return Ok(result.take());
    }
    let (code, message) = error_of(frame);
    Err(CallError::Server { code, message })
}

/// `error.code` and `error.message` of an error frame (placeholders when missing).
fn error_of(frame: &[u8]) -> (i64, String) {
    let parsed: Value = serde_json::from_slice(frame).unwrap_or(Value::Null);
    let code = parsed
        .pointer("/error/code")
        .and_then(Value::as_i64)
        .unwrap_or(jsonrpc::INTERNAL_ERROR);
    let message = parsed
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("the response has neither a result nor an error")
        .to_string();
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_response_gives_its_result() {
        let result = result_of(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#);
        assert_eq!(result, Ok(json!({"tools": []})));
    }

    #[test]
    fn an_error_response_gives_its_code_and_message() {
        let result =
            result_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#);
        assert_eq!(
            result,
            Err(CallError::Server {
                code: -32601,
                message: "nope".into()
            })
        );
    }

    #[test]
    fn a_response_without_result_or_error_is_reported() {
        let result = result_of(br#"{"jsonrpc":"2.0","id":1}"#);
        assert!(matches!(result, Err(CallError::Server { .. })));
    }
}
