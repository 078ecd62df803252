//! How far a TLS connection had got when it failed, attached to its I/O error by the transport, so
//! that a refused client certificate can be told apart from a server that went away mid-session.
//!
//! A TLS 1.3 server checks the client certificate after the client has finished its side of the
//! handshake, so a refusal arrives as the first read or write of the first request: an alert, or
//! (uvicorn, and asyncio servers generally) a bare EOF, reset or broken pipe. The same EOF a hundred
//! calls later, on a connection that has answered, is a server that died or closed, never the
//! certificate.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use rustls::ClientConfig;

/// Where in a connection's life an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// During the TLS handshake, before the server's hello: the server refused the client's
    /// hello itself, before it could have asked for (let alone judged) a client certificate.
    ClientHello,
    /// During the TLS handshake, after the server's hello.
    Handshake,
    /// After the client's side of the handshake, before anything came back, and the server has not
    /// accepted this client certificate on any connection yet: a refused certificate fails here.
    FirstExchange,
    /// This connection had received data, or the server had already accepted this certificate on
    /// another one: whatever went wrong, it was not the certificate.
    Established,
}

/// An I/O error of a TLS connection, with its [`Stage`] and the TLS version it had negotiated.
#[derive(Debug)]
pub struct StagedError {
    pub stage: Stage,
    /// The connection negotiated TLS 1.2 (where a server may ask to renegotiate).
    pub tls12: bool,
    source: io::Error,
}

impl StagedError {
    pub fn source_io(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for StagedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StagedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Attaches the stage to the errors a diagnosis reads it for: the peer closing, resetting or
/// aborting, and TLS errors (alerts). Other errors are returned as they are, so that ureq still
/// recognises its own (timeouts travel as an `io::Error` wrapping a `ureq::Error`).
pub fn attach(stage: Stage, tls12: bool, e: io::Error) -> io::Error {
    use io::ErrorKind::{
        BrokenPipe, ConnectionAborted, ConnectionReset, InvalidData, UnexpectedEof,
    };
    let relevant = match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => true,
        InvalidData => e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    let already = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<StagedError>().is_some());
    if !relevant || already {
        return e;
    }
    io::Error::new(
        e.kind(),
        StagedError {
            stage,
            tls12,
            source: e,
        },
    )
}

/// The client configuration the server has accepted most recently (shared by every connection of
/// one agent). A renewed certificate is a new configuration and has to earn it again.
#[derive(Debug, Default, Clone)]
pub struct Accepted(Arc<Mutex<Option<Arc<ClientConfig>>>>);

impl Accepted {
    pub fn record(&self, config: &Arc<ClientConfig>) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, config)) {
            *slot = Some(Arc::clone(config));
        }
    }

    pub fn includes(&self, config: &Arc<ClientConfig>) -> bool {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attaches_the_stage_to_closes_and_tls_errors_only() {
        let eof = attach(
            Stage::Established,
            false,
            io::ErrorKind::UnexpectedEof.into(),
        );
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        let staged = eof
            .get_ref()
            .unwrap()
            .downcast_ref::<StagedError>()
            .unwrap();
        assert_eq!(staged.stage, Stage::Established);

        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        );
        let alert = attach(Stage::FirstExchange, true, alert);
        assert!(alert.get_ref().unwrap().is::<StagedError>());

        // A ureq timeout travelling as io::Error must stay recognisable to ureq.
        let timeout = ureq::Error::Timeout(ureq::Timeout::Global).into_io();
        let kind = timeout.kind();
        let timeout = attach(Stage::FirstExchange, false, timeout);
        assert_eq!(timeout.kind(), kind);
        assert!(!timeout.get_ref().unwrap().is::<StagedError>());

        // Attaching twice keeps the first stage.
        let twice = attach(Stage::Handshake, false, eof);
        let staged = twice
            .get_ref()
            .unwrap()
            .downcast_ref::<StagedError>()
            .unwrap();
        assert_eq!(staged.stage, Stage::Established);
    }
}
