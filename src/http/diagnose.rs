//! Turn a failed HTTP exchange into one line a user can act on, and say whether retrying can help.
//!
//! The MCP client usually hides our stderr, so these lines also travel as JSON-RPC error messages.
//! They name the cause among the usual suspects (untrusted server, hostname mismatch, client
//! certificate refused, no TLS version in common, connection refused, timeout), and blame the
//! client certificate only where it can be the cause (see `stage.rs`).

use std::error::Error as StdError;
use std::io;

use rustls::{
    AlertDescription, CertificateError, InvalidMessage, PeerIncompatible, PeerMisbehaved,
};

use super::stage::{Stage, StagedError};
use super::tls_words::{alert_name, key_purpose, signature_algorithm};
use crate::config::{Config, TlsVersion};
use crate::tls::{NoAcceptableIdentity, PinMismatch, WeakServerKey};

/// Whether a failure is about the setup (retrying with the same configuration cannot work) or about
/// the moment (the server may come back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// TLS trust, names, client certificate: fatal on the first request.
    Setup,
    /// Refused, reset, timed out, DNS: the bridge keeps running.
    Transient,
}

#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub message: String,
    pub severity: Severity,
}

impl std::fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Explain `err`, which happened while talking to `config.url`.
pub fn diagnose(err: &ureq::Error, config: &Config) -> Diagnosis {
    let target = config.url.authority();
    let found = Findings::of(err);
    if let Some(declined) = found.declined {
        return Diagnosis {
            message: format!("{}: {declined}", config.url.authority()),
            severity: Severity::Setup,
        };
    }
    if let Some(tls) = found.tls {
        return diagnose_tls(tls, found.staged, config);
    }
    let transient = |message: String| Diagnosis {
        message,
        severity: Severity::Transient,
    };
    match err {
        ureq::Error::Timeout(_) => transient(format!(
            "timed out talking to {target} (connect timeout {} s, --connect-timeout)",
            config.connect_timeout.as_secs_f64()
        )),
        ureq::Error::HostNotFound => transient(format!(
            "cannot resolve host {}: check the URL and your DNS",
            config.url.host
        )),
        ureq::Error::ConnectionFailed => transient(format!("connection to {target} failed")),
        ureq::Error::ConnectProxyFailed(why) => transient(format!(
            "the HTTP proxy refused to connect to {target}: {why}"
        )),
        // A head longer than the connection's input buffer (see agent.rs), or one that never ends.
        ureq::Error::LargeResponseHeader(_, limit) => transient(format!(
            "the response header from {target} exceeded the {} KiB limit (or never ended): the \
             server or a proxy in front of it sent an oversized or broken header",
            (limit + 1) / 1024
        )),
        ureq::Error::Io(e) => diagnose_io(found.io.unwrap_or(e), found.staged, config),
        other => transient(format!("HTTP exchange with {target} failed: {other}")),
    }
}

/// What a failed exchange's error chain holds: the stage the TLS transport attached, the rustls
/// error, and the innermost `io::Error`.
#[derive(Default)]
struct Findings<'a> {
    staged: Option<&'a StagedError>,
    tls: Option<&'a rustls::Error>,
    io: Option<&'a io::Error>,
    /// No identity of a `--tls-cert` selector fits what the server asks for.
    declined: Option<&'a NoAcceptableIdentity>,
}

impl<'a> Findings<'a> {
    /// Walks the nesting (`ureq::Error::Io` → `io::Error` → `StagedError` → `io::Error` →
    /// `rustls::Error`), a bounded number of levels.
    fn of(err: &'a ureq::Error) -> Self {
        let mut found = Findings::default();
        let ureq::Error::Io(io) = err else {
            return found;
        };
        found.io = Some(io);
        let mut current: Option<&'a (dyn StdError + 'static)> = io.get_ref().map(|e| e as _);
        for _ in 0..8 {
            let Some(e) = current else { break };
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                found.tls = Some(tls);
                break;
            }
            if let Some(declined) = e.downcast_ref::<NoAcceptableIdentity>() {
                found.declined = Some(declined);
                break;
            }
            current = if let Some(staged) = e.downcast_ref::<StagedError>() {
                found.staged.get_or_insert(staged);
                found.io = Some(staged.source_io());
                staged.source_io().get_ref().map(|e| e as _)
            } else if let Some(io) = e.downcast_ref::<io::Error>() {
                found.io = Some(io);
                io.get_ref().map(|e| e as _)
            } else if let Some(ureq::Error::Io(io)) = e.downcast_ref::<ureq::Error>() {
                found.io = Some(io);
                io.get_ref().map(|e| e as _)
            } else {
                None
            };
        }
        found
    }
}

fn diagnose_io(e: &io::Error, staged: Option<&StagedError>, config: &Config) -> Diagnosis {
    let target = config.url.authority();
    let transient = |message: String| Diagnosis {
        message,
        severity: Severity::Transient,
    };
    let closed = match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            return transient(format!(
                "connection to {target} refused: is the server running?"
            ))
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            return transient(format!("timed out talking to {target}"))
        }
        io::ErrorKind::UnexpectedEof => "closed",
        io::ErrorKind::ConnectionReset => "reset",
        io::ErrorKind::ConnectionAborted => "aborted",
        io::ErrorKind::BrokenPipe => "closed",
        _ => return transient(format!("connection to {target} failed: {e}")),
    };
    if !config.url.is_https() {
        return transient(format!(
            "connection to {target} {closed} by the server before it answered; the next request \
             opens a new connection"
        ));
    }
    // No stage: the error came from ureq's HTTP layer, after the TLS transport had delivered data.
    match staged.map_or(Stage::Established, |s| s.stage) {
        Stage::ClientHello | Stage::Handshake => transient(format!(
            "connection to {target} {closed} by the server during the TLS handshake, without a TLS \
             alert: check that {target} is an HTTPS port, and {}",
            if config.tls.has_identity() {
                "that the server accepts the client certificate"
            } else {
                "whether it requires a client certificate (--tls-cert/--tls-key or --tls-pfx)"
            }
        )),
        Stage::FirstExchange => {
            // uvicorn and others close the connection without an alert when they reject the client
            // certificate (TLS 1.3 verifies it after the client thinks the handshake is done).
            let hint = if config.tls.has_identity() {
                "the server probably rejected the client certificate (is it signed by a CA the server trusts, \
                 unexpired, with intermediates in --tls-cert?)"
            } else {
                "the server probably requires a client certificate: set --tls-cert/--tls-key or --tls-pfx"
            };
            transient(format!(
                "connection to {target} closed by the server after the TLS handshake: {hint}"
            ))
        }
        Stage::Established => transient(format!(
            "connection to {target} {closed} by the server before it answered (it may have stopped, \
             restarted or timed the connection out); the next request opens a new connection"
        )),
    }
}

fn diagnose_tls(e: &rustls::Error, staged: Option<&StagedError>, config: &Config) -> Diagnosis {
    let host = config.tls.servername.as_deref().unwrap_or(&config.url.host);
    let target = config.url.authority();
    let setup = |message: String| Diagnosis {
        message,
        severity: Severity::Setup,
    };
    let ca_hint = match &config.tls.ca {
        Some(ca) => format!("the CA bundle in --tls-ca {}", ca.display()),
        None => {
            "the OS trust store (set --tls-ca to the PEM bundle of your private CA)".to_string()
        }
    };
    let after_handshake =
        staged.is_some_and(|s| !matches!(s.stage, Stage::ClientHello | Stage::Handshake));
    match e {
        rustls::Error::InvalidCertificate(cert_err) => match cert_err {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => setup(format!(
                "server certificate of {host} is not trusted: it is not signed by a CA in {ca_hint}"
            )),
            CertificateError::NotValidForName => setup(format!(
                "server certificate does not name {host}: set --tls-servername to a name in its SAN list"
            )),
            CertificateError::NotValidForNameContext { presented, .. } => setup(format!(
                "server certificate does not name {host} (it names: {}): set --tls-servername to one of those",
                presented.iter().map(|n| plain_name(n)).collect::<Vec<_>>().join(", ")
            )),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => setup(format!(
                "server certificate of {host} has expired: the server must renew it"
            )),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => setup(format!(
                "server certificate of {host} is not valid yet: check the clocks of both machines"
            )),
            CertificateError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id,
                ..
            }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id,
                ..
            } => setup(format!(
                "server certificate of {host} is signed with {}, which is not accepted as secure: \
                 the server needs a certificate signed with SHA-256 or stronger",
                signature_algorithm(signature_algorithm_id)
            )),
            #[allow(deprecated)]
            CertificateError::UnsupportedSignatureAlgorithm => setup(format!(
                "server certificate of {host} is signed with an algorithm that is not accepted as \
                 secure (SHA-1 or older): the server needs a certificate signed with SHA-256 or stronger"
            )),
            CertificateError::InvalidPurpose => setup(format!(
                "server certificate of {host} is not meant for TLS servers (its extended key usage \
                 lacks serverAuth): the server needs a server certificate"
            )),
            CertificateError::InvalidPurposeContext { presented, .. } => setup(format!(
                "server certificate of {host} is not meant for TLS servers (its extended key usage \
                 allows only: {}): the server needs a certificate with serverAuth",
                presented.iter().map(key_purpose).collect::<Vec<_>>().join(", ")
            )),
            CertificateError::Revoked => setup(format!(
                "server certificate of {host} has been revoked: the server must replace it"
            )),
            CertificateError::BadEncoding => setup(format!(
                "server certificate of {host} is not a well-formed X.509 certificate: the server's \
                 certificate file is damaged"
            )),
            CertificateError::Other(other) => diagnose_other_certificate_error(other, host, setup),
            other => setup(format!("server certificate of {host} was rejected: {other}")),
        },
        rustls::Error::AlertReceived(alert) => diagnose_alert(*alert, staged, config),
        rustls::Error::PeerMisbehaved(PeerMisbehaved::TooManyRenegotiationRequests) => {
            setup(renegotiation_message(host))
        }
        rustls::Error::PeerIncompatible(why) => setup(format!(
            "no TLS settings in common with {host}: {}{}",
            incompatibility(why),
            min_version_hint(config)
        )),
        // The first byte of "HTTP/1.1 400 …" is no TLS record type.
        rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType) if !after_handshake => {
            setup(format!(
                "{target} answered in plain HTTP, not TLS: use the server's HTTPS port, or an \
                 http:// URL with --allow-http if it only serves plain HTTP"
            ))
        }
        other if after_handshake => setup(format!("TLS connection with {host} failed: {other}")),
        other => setup(format!("TLS handshake with {host} failed: {other}")),
    }
}

fn diagnose_other_certificate_error(
    other: &rustls::OtherError,
    host: &str,
    setup: impl Fn(String) -> Diagnosis,
) -> Diagnosis {
    if let Some(mismatch) = other.0.downcast_ref::<PinMismatch>() {
        return setup(format!(
            "server certificate of {host} matches no --tls-pin: it presents {}; if this key is \
             the server's new one, pin it (or its CA's) instead",
            mismatch.seen_list()
        ));
    }
    if let Some(weak) = other.0.downcast_ref::<WeakServerKey>() {
        return setup(format!(
            "server certificate of {host} has a {}-bit RSA key, too weak to be verified (at least \
             2048 bits): the server needs a new key and certificate",
            weak.rsa_bits
        ));
    }
    match other.0.downcast_ref::<webpki::Error>() {
        Some(webpki::Error::CaUsedAsEndEntity) => setup(format!(
            "server certificate of {host} is a CA certificate, not a server certificate: the server \
             must present a server certificate issued by that CA"
        )),
        Some(webpki::Error::EndEntityUsedAsCa) => setup(format!(
            "the server's certificate chain for {host} uses a server certificate as an issuer: the \
             server must send its certificate and the CA's intermediates in order"
        )),
        _ => setup(format!("server certificate of {host} was rejected: {other}")),
    }
}

fn renegotiation_message(host: &str) -> String {
    super::late_certificate::renegotiation_message(host)
}

fn diagnose_alert(
    alert: AlertDescription,
    staged: Option<&StagedError>,
    config: &Config,
) -> Diagnosis {
    let host = config.tls.servername.as_deref().unwrap_or(&config.url.host);
    let name = alert_name(alert);
    let setup = |message: String| Diagnosis {
        message,
        severity: Severity::Setup,
    };
    let after_tls12_handshake = staged
        .is_some_and(|s| s.tls12 && !matches!(s.stage, Stage::ClientHello | Stage::Handshake));
    let refused_hello = staged.is_some_and(|s| s.stage == Stage::ClientHello);
    match alert {
        // After a TLS 1.2 handshake only a renegotiation (which rustls declines) can fail a handshake.
        AlertDescription::HandshakeFailure | AlertDescription::NoRenegotiation
            if after_tls12_handshake =>
        {
            setup(renegotiation_message(host))
        }
        AlertDescription::CertificateRequired if !config.tls.has_identity() => setup(format!(
            "remote refused the connection: {host} requires a client certificate; set --tls-cert/--tls-key or --tls-pfx"
        )),
        AlertDescription::CertificateRequired
        | AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::AccessDenied => {
            let cause = if !config.tls.has_identity() {
                "no client certificate was configured; set --tls-cert/--tls-key or --tls-pfx"
            } else {
                match alert {
                    AlertDescription::UnknownCA => "it is not signed by a CA the server trusts",
                    AlertDescription::CertificateExpired => "the server says it has expired",
                    AlertDescription::CertificateRevoked => "the server says it was revoked",
                    AlertDescription::CertificateRequired => {
                        "the server did not take the certificate sent; check that it is signed by a CA the server asks for"
                    }
                    AlertDescription::UnsupportedCertificate => {
                        "the server does not accept its kind of key or its key usage; check with the server's administrator"
                    }
                    AlertDescription::AccessDenied => {
                        "the server knows it but denies it access; check with the server's administrator"
                    }
                    _ => "check that it is signed by a CA the server trusts and that --tls-cert includes intermediates",
                }
            };
            setup(format!(
                "remote refused the client certificate (TLS alert {name}): {cause}"
            ))
        }
        AlertDescription::ProtocolVersion => setup(format!(
            "no TLS version in common with {host}{}",
            min_version_hint(config)
        )),
        // Refused in answer to the client's hello: no certificate had been asked for yet.
        AlertDescription::HandshakeFailure if refused_hello => setup(format!(
            "TLS handshake with {host} failed (TLS alert handshake_failure in answer to the \
             client's hello, before any certificate was asked for): the server accepts none of \
             this client's cipher suites or TLS versions (TLS 1.3, or TLS 1.2 with ECDHE key \
             exchange and AES-GCM or ChaCha20-Poly1305; CBC-only or RSA key exchange servers are \
             refused): the server must enable one of them{}",
            min_version_hint(config)
        )),
        AlertDescription::HandshakeFailure => setup(format!(
            "TLS handshake with {host} failed (TLS alert handshake_failure): {}{}",
            if config.tls.has_identity() {
                "the server refused the client certificate, or shares no cipher suite or TLS version with this client"
            } else {
                "the server may require a client certificate (set --tls-cert/--tls-key or --tls-pfx), or shares no cipher suite or TLS version with this client"
            },
            min_version_hint(config)
        )),
        _ => setup(format!("{host} ended the TLS connection with alert {name}")),
    }
}

/// What rustls found incompatible, in words.
fn incompatibility(why: &PeerIncompatible) -> &'static str {
    match why {
        PeerIncompatible::ServerDoesNotSupportTls12Or13
        | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
        | PeerIncompatible::SupportedVersionsExtensionRequired
        | PeerIncompatible::Tls12NotOffered
        | PeerIncompatible::Tls12NotOfferedOrEnabled => {
            "the server offers no TLS version this client allows (TLS 1.2, 1.3)"
        }
        PeerIncompatible::NoCipherSuitesInCommon => "no cipher suite in common",
        PeerIncompatible::NoKxGroupsInCommon | PeerIncompatible::NamedGroupsExtensionRequired => {
            "no key exchange group in common"
        }
        PeerIncompatible::NoSignatureSchemesInCommon
        | PeerIncompatible::NoCertificateRequestSignatureSchemesInCommon
        | PeerIncompatible::SignatureAlgorithmsExtensionRequired => {
            "no signature scheme in common (the client key's type may be one the server does not take)"
        }
        PeerIncompatible::ExtendedMasterSecretExtensionRequired => {
            "the server lacks the extended master secret extension (RFC 7627)"
        }
        _ => "the server's TLS settings are outside what this client supports",
    }
}

/// rustls lists presented names in Debug form (`DnsName("a.b")`, `IpAddress(1.2.3.4)`).
fn plain_name(debug: &str) -> &str {
    let inner = match debug.find('(') {
        Some(open) if debug.ends_with(')') => &debug[open + 1..debug.len() - 1],
        _ => debug,
    };
    inner.trim_matches('"')
}

fn min_version_hint(config: &Config) -> &'static str {
    match config.tls.min_version {
        Some(TlsVersion::Tls13) => {
            " (--tls-min-version TLSv1.3 refuses servers that only speak TLS 1.2)"
        }
        _ => "",
    }
}
