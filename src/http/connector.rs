//! The TLS step of ureq's connector chain, done with our own rustls `ClientConfig`.
//!
//! ureq 3's built-in TLS configuration cannot express a server-name override, a minimum TLS version or
//! a custom verifier, so the chain is `ConnectProxyConnector → TcpConnector → MtlsConnector`
//! (see `agent.rs`). This connector also records the facts of each handshake so that the test client
//! can show them, and reads its `ClientConfig` from a slot so that rotated certificates take effect
//! for new connections.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, Weak};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, ShutdownHandle, TcpConnector,
    Transport, TransportAdapter,
};

use super::cancel;
use super::keepalive::{self, Hints, Idle};
use super::rotation::{ConfigSlot, Rotation};
use super::stage::{self, Accepted, Stage};
use crate::tls::{self, HandshakeNote, NoAcceptableIdentity};

/// The error of a connection on which no identity of the selector fits the server's request.
fn declined(why: String) -> ureq::Error {
    ureq::Error::Io(io::Error::new(
        io::ErrorKind::PermissionDenied,
        NoAcceptableIdentity(why),
    ))
}

/// What a completed handshake looked like (for the test client's report).
#[derive(Debug, Clone)]
pub struct HandshakeFacts {
    pub protocol: String,
    pub cipher_suite: String,
    /// The server's chain as sent, leaf first.
    pub server_chain: Vec<CertificateDer<'static>>,
    /// The name that was sent as SNI and verified.
    pub server_name: String,
    /// With a selector of several identities: the one this handshake presented, and the
    /// selector that picks it alone.
    pub chosen: Option<(crate::tls::CertInfo, String)>,
}

/// Shared record of the most recent handshake.
pub type HandshakeLog = Arc<Mutex<Option<HandshakeFacts>>>;

pub struct MtlsConnector {
    config: ConfigSlot,
    /// `(URL host, override)`: the override applies only to connections to that host, so that an
    /// HTTPS proxy in between keeps its own name.
    servername: Option<(String, ServerName<'static>)>,
    log: HandshakeLog,
    rotation: Option<Arc<Rotation>>,
    /// The configuration the server has accepted, so that a failure on a fresh connection is not
    /// blamed on a certificate the server took a moment ago.
    accepted: Accepted,
    /// The servers' idle limits, so that a connection is retired before its server closes it.
    hints: Hints,
}

impl MtlsConnector {
    pub fn new(
        config: ConfigSlot,
        servername: Option<(String, ServerName<'static>)>,
        log: HandshakeLog,
        rotation: Option<Arc<Rotation>>,
        hints: Hints,
    ) -> Self {
        Self {
            config,
            servername,
            log,
            rotation,
            accepted: Accepted::default(),
            hints,
        }
    }

    fn server_name_for(&self, host: &str) -> io::Result<ServerName<'static>> {
        if let Some((target, name)) = &self.servername {
            if target.eq_ignore_ascii_case(host) {
                return Ok(name.clone());
            }
        }
        ServerName::try_from(host.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{host}' is not a valid TLS server name"),
            )
        })
    }
}

impl fmt::Debug for MtlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for MtlsConnector {
    type Out = Box<dyn Transport>;

    /// Open the TCP connection (unless a CONNECT proxy already did) and wrap it in TLS for
    /// https. The socket's shutdown handle is kept so that one request can be cancelled.
    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let idle = Idle::new(keepalive::origin_of(details.uri), self.hints.clone());
        let (transport, socket): (Box<dyn Transport>, _) = match chained {
            Some(through_proxy) => (Box::new(through_proxy), None),
            None => {
                let (tcp, socket) = connect_tcp(details, details.needs_tls())?;
                (tcp, socket)
            }
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Box::new(PlainTransport {
                inner: transport,
                socket,
                idle,
            })));
        }
        let host = details
            .uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri("URL has no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = self.server_name_for(host)?;
        if let Some(rotation) = &self.rotation {
            rotation.refresh();
        }
        let config = match self.config.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let mut conn = ClientConnection::new(Arc::clone(&config), name.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut sock = TransportAdapter::new(transport, details.current_time.clone());
        sock.set_timeout(details.timeout);
        // The automatic choice of a selector leaves its note on this thread (see tls::store).
        let _ = tls::take_handshake_note();
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                if let Some(HandshakeNote::Declined(why)) = tls::take_handshake_note() {
                    return Err(declined(why));
                }
                return Err(stage::attach(handshake_stage(&conn), is_tls12(&conn), e).into());
            }
        }
        let chosen = match tls::take_handshake_note() {
            // TLS 1.3: the handshake is over on this side; do not send a request the server
            // will refuse for want of a certificate.
            Some(HandshakeNote::Declined(why)) => return Err(declined(why)),
            Some(HandshakeNote::Chose {
                certificate,
                selector,
            }) => Some((certificate, selector)),
            None => None,
        };
        self.record(&conn, &name, chosen);
        let tls12 = is_tls12(&conn);
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Box::new(MtlsTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
            socket,
            config,
            slot: Arc::clone(&self.config),
            accepted: self.accepted.clone(),
            received: false,
            tls12,
            idle,
        })))
    }
}

/// A handle that shuts a socket down from another thread.
type SocketHandle = Weak<dyn ShutdownHandle>;

/// The ciphertext staging buffers of a TLS connection's socket (see [`connect_tcp`]): reads of
/// 8 KiB, writes of 4 KiB (requests are small; a large one is written in more pieces).
const CIPHERTEXT_IN: usize = 8 * 1024;
const CIPHERTEXT_OUT: usize = 4 * 1024;

/// Open TCP with ureq's own connector, keeping a handle to the socket it registers for
/// shutdown (so that a single request can be cancelled, see `cancel.rs`).
///
/// `under_tls`: the socket will only carry TLS records, so its buffers get the ciphertext
/// sizes above instead of the agent's. ureq gives every transport its own pair of buffers, so a
/// TLS connection has two: the plaintext pair of [`MtlsTransport`] (the agent's 16 KiB, which
/// bound the response head) and this pair beneath it, which only stages ciphertext between the
/// socket and rustls (`TransportAdapter` copies through it; rustls reads at most 4 KiB at a
/// time anyway, and a larger write simply takes more than one).
///
/// Measured with 200 requests in flight on new connections (`make bench`, BENCH_ONLY=inflight,
/// glibc release build): peak RSS 34.6 MiB, of which (/proc/<pid>/smaps at the peak) 10.8 MiB
/// is worker stacks (~54 KiB touched each by the TLS handshake and HTTP; the reserved size does
/// not change that), 20 MiB malloc heap and 4.6 MiB code and libc; of the heap's 17.8 MiB peak
/// (heaptrack) the four 16 KiB buffers per connection were 12.8 MiB. With 8/4 KiB here: 30.7
/// MiB, and 26.7 MiB for the static musl build in the same run. The 5 MB result (twice the
/// reads of the socket) stayed within the run-to-run noise of a loaded 2-core machine: 77.5 to
/// 133.6 ms against 83.2 to 129.0 ms with 16 KiB, three runs each.
fn connect_tcp(
    details: &ConnectionDetails,
    under_tls: bool,
) -> Result<(Box<dyn Transport>, Option<SocketHandle>), ureq::Error> {
    // Only the buffer sizes and no_delay are read from it by ureq's TCP connector.
    let ciphertext_config;
    let config = match under_tls {
        true => {
            ciphertext_config = ureq::config::Config::builder()
                .no_delay(details.config.no_delay())
                .input_buffer_size(CIPHERTEXT_IN)
                .output_buffer_size(CIPHERTEXT_OUT)
                .build();
            &ciphertext_config
        }
        false => details.config,
    };
    let captured: Arc<Mutex<Option<Weak<dyn ShutdownHandle>>>> = Arc::default();
    let register = Arc::clone(&details.register_shutdown);
    let capture = Arc::clone(&captured);
    let patched = ConnectionDetails {
        uri: details.uri,
        addrs: details.addrs.clone(),
        config,
        request_level: details.request_level,
        resolver: details.resolver,
        now: details.now,
        timeout: details.timeout,
        current_time: details.current_time.clone(),
        run_connector: details.run_connector.clone(),
        register_shutdown: Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
            if let Ok(mut slot) = capture.lock() {
                *slot = Some(handle.clone());
            }
            register(handle)
        }),
    };
    let tcp = Connector::<()>::connect(&TcpConnector::default(), &patched, None)?
        .ok_or_else(|| ureq::Error::ConnectionFailed)?;
    let socket = captured.lock().ok().and_then(|mut s| s.take());
    Ok((Box::new(tcp), socket))
}

/// Plain TCP (http:// with --allow-http, or an already-TLS proxy transport), cancellable.
struct PlainTransport {
    inner: Box<dyn Transport>,
    socket: Option<Weak<dyn ShutdownHandle>>,
    idle: Idle,
}

impl fmt::Debug for PlainTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainTransport").finish_non_exhaustive()
    }
}

impl Transport for PlainTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        cancel::bind_current(self.socket.as_ref());
        self.idle.on_transmit();
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let input = self.inner.await_input(timeout);
        match input {
            Ok(true) => self.idle.on_input(),
            Ok(false) | Err(_) => self.idle.on_closed(cancel::current_is_cancelled()),
        }
        input
    }

    fn is_open(&mut self) -> bool {
        self.idle.may_reuse() && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

impl MtlsConnector {
    fn record(
        &self,
        conn: &ClientConnection,
        name: &ServerName<'static>,
        chosen: Option<(tls::CertInfo, String)>,
    ) {
        let facts = HandshakeFacts {
            protocol: conn
                .protocol_version()
                .map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1."))
                .unwrap_or_default(),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            server_chain: conn
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_name: name.to_str().into_owned(),
            chosen,
        };
        log::debug!(
            "TLS handshake with {}: {} {}",
            facts.server_name,
            facts.protocol,
            facts.cipher_suite
        );
        if let Ok(mut slot) = self.log.lock() {
            let mut facts = facts;
            // A resumed TLS 1.3 session gets no CertificateRequest: it is still the identity
            // chosen in the handshake it resumes.
            if facts.chosen.is_none() {
                facts.chosen = slot.as_ref().and_then(|f| f.chosen.clone());
            }
            *slot = Some(facts);
        }
    }
}

/// How far the handshake got: rustls knows the version once the server's hello is in.
fn handshake_stage(conn: &ClientConnection) -> Stage {
    match conn.protocol_version() {
        None => Stage::ClientHello,
        Some(_) => Stage::Handshake,
    }
}

fn is_tls12(conn: &ClientConnection) -> bool {
    conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2)
}

impl MtlsTransport {
    /// A server that rejects our client certificate (TLS 1.3 checks it after the client's side of
    /// the handshake is done) sends an alert and closes; our next write then fails with a broken
    /// pipe. The alert is usually already in the socket: read it, so that the user learns *why*.
    fn explain_write_error(&mut self, e: io::Error) -> io::Error {
        use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        if !matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
            return self.staged(e);
        }
        let StreamOwned { conn, sock } = &mut self.stream;
        if conn.read_tls(sock).is_ok() {
            if let Err(tls_error) = conn.process_new_packets() {
                return self.staged(io::Error::new(io::ErrorKind::InvalidData, tls_error));
            }
        }
        self.staged(e)
    }

    /// Whether this connection presented the current configuration (not one rotated away).
    fn presents_current(&self) -> bool {
        match self.slot.read() {
            Ok(current) => Arc::ptr_eq(&current, &self.config),
            Err(poisoned) => Arc::ptr_eq(&poisoned.into_inner(), &self.config),
        }
    }

    /// `e` with the stage this connection is in (see `stage.rs`).
    fn staged(&self, e: io::Error) -> io::Error {
        let stage = if self.received || self.accepted.includes(&self.config) {
            Stage::Established
        } else {
            Stage::FirstExchange
        };
        stage::attach(stage, self.tls12, e)
    }
}

/// A TLS connection as a ureq transport.
pub struct MtlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    socket: Option<Weak<dyn ShutdownHandle>>,
    /// The configuration this connection presented, recorded as accepted once data comes back.
    config: Arc<ClientConfig>,
    /// The current configuration: once it is another (the certificate rotated), this connection
    /// is not reused, so that a request never presents the old identity with what was chosen
    /// for the new one (a token bound to the renewed certificate).
    slot: ConfigSlot,
    accepted: Accepted,
    /// Something came back on this connection: the server took the certificate.
    received: bool,
    tls12: bool,
    idle: Idle,
}

impl fmt::Debug for MtlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsTransport").finish_non_exhaustive()
    }
}

impl Transport for MtlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write;
        cancel::bind_current(self.socket.as_ref());
        self.idle.on_transmit();
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        let written = self
            .stream
            .write_all(output)
            .and_then(|()| self.stream.flush());
        if let Err(e) = written {
            return Err(self.explain_write_error(e).into());
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        use std::io::Read;
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = match self.stream.read(input) {
            Ok(amount) => amount,
            Err(e) => {
                self.idle.on_closed(cancel::current_is_cancelled());
                return Err(self.staged(e).into());
            }
        };
        self.buffers.input_appended(amount);
        if amount > 0 {
            self.idle.on_input();
        } else {
            self.idle.on_closed(cancel::current_is_cancelled());
        }
        if amount > 0 && !self.received {
            self.received = true;
            self.accepted.record(&self.config);
        }
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.idle.may_reuse()
            && self.presents_current()
            && self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
