//! Why an exchange with the server failed, as one enum: the one place that answers "may we try
//! the other transport?", "is this the user's setup (exit) rather than a passing fault?" and
//! "which JSON-RPC error does the request get?".

use std::fmt;

use crate::jsonrpc::{self, Id};

#[derive(Debug, Clone)]
pub enum TransportError {
    /// Connecting or talking failed (DNS, refused, TLS, reset), already diagnosed. `setup`: the
    /// cause is the user's configuration (certificate, trust, name), not a passing fault.
    Connection { message: String, setup: bool },
    /// The server answered with an HTTP error status (or a redirect the bridge will not follow).
    Http {
        status: Option<u16>,
        message: String,
        /// The error frame built from the server's body (keeps its code, message and data).
        frame: Option<Vec<u8>>,
        /// The server no longer knows the session the request carried (404, TypeScript's 400).
        session_gone: bool,
    },
    /// A TLS-terminating proxy answered that the client certificate is missing or refused.
    CertificateRefused { status: u16, message: String },
    /// The server's answer cannot be used (content type, not JSON-RPC, too large).
    BadResponse(String),
    /// The response stream ended before the response (after any resumption).
    StreamEnded(String),
    /// The server lost the session and a new one could not be started.
    SessionLost(String),
    /// The server wants an OAuth token and the bridge could not get one (yet): a login to finish,
    /// or an authorization server that refused. Not a setup error: the next request may succeed.
    Authorization(String),
    /// The bridge is exiting and abandoned the request.
    ShuttingDown,
    /// Something on the bridge's own side failed (a thread, a request that cannot be built).
    Local(String),
}

impl TransportError {
    /// An HTTP error status with a message and nothing else to keep.
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        TransportError::Http {
            status: Some(status),
            message: message.into(),
            frame: None,
            session_gone: false,
        }
    }

    /// The JSON-RPC error code the request gets (see the table in `jsonrpc`).
    pub fn code(&self) -> i64 {
        match self {
            TransportError::Connection { .. } | TransportError::Local(_) => {
                jsonrpc::TRANSPORT_ERROR
            }
            TransportError::Http { .. }
            | TransportError::CertificateRefused { .. }
            | TransportError::Authorization(_) => jsonrpc::HTTP_ERROR,
            TransportError::BadResponse(_) => jsonrpc::BAD_SERVER_RESPONSE,
            TransportError::StreamEnded(_) => jsonrpc::STREAM_ENDED,
            TransportError::SessionLost(_) => jsonrpc::SESSION_LOST,
            TransportError::ShuttingDown => jsonrpc::BRIDGE_SHUTTING_DOWN,
        }
    }

    /// The user's configuration is the cause: on the first initialize the bridge exits 1.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            TransportError::Connection { setup: true, .. }
                | TransportError::CertificateRefused { .. }
        )
    }

    /// The server refused this transport the way a server of the other one would (400, 404,
    /// 405, or an SSE URL that is not an event stream): `-first` strategies may try the other.
    pub fn may_fall_back(&self) -> bool {
        matches!(
            self,
            TransportError::Http {
                status: Some(400 | 404 | 405 | 406),
                ..
            }
        )
    }

    /// The server no longer knows the session: replay the initialize and try again.
    pub fn session_gone(&self) -> bool {
        matches!(
            self,
            TransportError::Http {
                session_gone: true,
                ..
            }
        )
    }

    /// The error frame the server sent, when there is one.
    pub fn server_frame(&self) -> Option<&[u8]> {
        match self {
            TransportError::Http { frame, .. } => frame.as_deref(),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TransportError::Connection { message, .. }
            | TransportError::Http { message, .. }
            | TransportError::CertificateRefused { message, .. }
            | TransportError::BadResponse(message)
            | TransportError::StreamEnded(message)
            | TransportError::SessionLost(message)
            | TransportError::Authorization(message)
            | TransportError::Local(message) => message,
            TransportError::ShuttingDown => "the bridge is shutting down",
        }
    }

    /// The same failure with `context` in front of its message ("the fallback failed too: …").
    pub fn with_context(mut self, context: impl FnOnce(&str) -> String) -> Self {
        let replaced = context(self.message());
        match &mut self {
            TransportError::Connection { message, .. }
            | TransportError::Http { message, .. }
            | TransportError::CertificateRefused { message, .. }
            | TransportError::BadResponse(message)
            | TransportError::StreamEnded(message)
            | TransportError::SessionLost(message)
            | TransportError::Authorization(message)
            | TransportError::Local(message) => *message = replaced,
            TransportError::ShuttingDown => {}
        }
        self
    }

    /// The one answer the request `id` gets: the server's own error frame when it sent one,
    /// else the bridge's error.
    pub fn answer(&self, id: &Id) -> Vec<u8> {
        match self.server_frame() {
            Some(frame) => frame.to_vec(),
            None => jsonrpc::error_response(Some(id), self.code(), self.message(), None),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_place_answers_fall_back_setup_and_code() {
        let refused = TransportError::http(405, "method not allowed");
        assert!(refused.may_fall_back() && !refused.is_setup());
        assert_eq!(refused.code(), jsonrpc::HTTP_ERROR);
        let cert = TransportError::CertificateRefused {
            status: 400,
            message: "no certificate".into(),
        };
        assert!(cert.is_setup() && !cert.may_fall_back());
        let gone = TransportError::Http {
            status: Some(404),
            message: "gone".into(),
            frame: Some(
                b"{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-1,\"message\":\"x\"}}"
                    .to_vec(),
            ),
            session_gone: true,
        };
        assert!(gone.session_gone());
        assert_eq!(gone.answer(&Id::Num(7)), gone.server_frame().unwrap());
        let ended = TransportError::StreamEnded("closed".into());
        let answer: serde_json::Value = serde_json::from_slice(&ended.answer(&Id::Num(3))).unwrap();
        assert_eq!(answer["id"], 3);
        assert_eq!(answer["error"]["code"], jsonrpc::STREAM_ENDED);
    }
}
