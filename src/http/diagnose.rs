//! Turn a failed HTTP exchange into one line a user can act on, and say whether retrying can help.
//!
//! The MCP client usually hides our stderr, so these lines also travel as JSON-RPC error messages.
//! They name the cause among the usual suspects (untrusted server, hostname mismatch, client
//! certificate refused, no TLS version in common, connection refused, timeout).

use std::io;

use rustls::{AlertDescription, CertificateError};

use crate::config::{Config, TlsVersion};

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
    if let Some(tls) = find_rustls_error(err) {
        return diagnose_tls(tls, config);
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
        ureq::Error::Io(e) => diagnose_io(e, config),
        other => transient(format!("HTTP exchange with {target} failed: {other}")),
    }
}

fn diagnose_io(e: &io::Error, config: &Config) -> Diagnosis {
    // Transports nest errors (a TLS write fails inside ureq's adapter): judge the innermost one.
    let e = innermost_io(e);
    let target = config.url.authority();
    let transient = |message: String| Diagnosis {
        message,
        severity: Severity::Transient,
    };
    match e.kind() {
        io::ErrorKind::ConnectionRefused => transient(format!(
            "connection to {target} refused: is the server running?"
        )),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            transient(format!("timed out talking to {target}"))
        }
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
            if config.url.is_https() =>
        {
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
        _ => transient(format!("connection to {target} failed: {e}")),
    }
}

fn diagnose_tls(e: &rustls::Error, config: &Config) -> Diagnosis {
    let host = config.tls.servername.as_deref().unwrap_or(&config.url.host);
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
            other => setup(format!("server certificate of {host} was rejected: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => diagnose_alert(*alert, config),
        rustls::Error::PeerIncompatible(why) => setup(format!(
            "no TLS settings in common with {host}: {why:?}{}",
            min_version_hint(config)
        )),
        other => setup(format!("TLS handshake with {host} failed: {other}")),
    }
}

fn diagnose_alert(alert: AlertDescription, config: &Config) -> Diagnosis {
    let host = config.tls.servername.as_deref().unwrap_or(&config.url.host);
    let setup = |message: String| Diagnosis {
        message,
        severity: Severity::Setup,
    };
    match alert {
        AlertDescription::CertificateRequired => setup(format!(
            "remote refused the connection: {host} requires a client certificate; set --tls-cert/--tls-key or --tls-pfx"
        )),
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::AccessDenied => {
            let cause = if !config.tls.has_identity() {
                "no client certificate was configured; set --tls-cert/--tls-key or --tls-pfx".to_string()
            } else {
                match alert {
                    AlertDescription::UnknownCA => "it is not signed by a CA the server trusts".to_string(),
                    AlertDescription::CertificateExpired => "the server says it has expired".to_string(),
                    AlertDescription::CertificateRevoked => "the server says it was revoked".to_string(),
                    _ => "check that it is signed by a CA the server trusts and that --tls-cert includes intermediates".to_string(),
                }
            };
            setup(format!(
                "remote refused the client certificate (TLS alert {alert:?}): {cause}"
            ))
        }
        AlertDescription::ProtocolVersion => setup(format!(
            "no TLS version in common with {host}{}",
            min_version_hint(config)
        )),
        AlertDescription::HandshakeFailure => setup(format!(
            "TLS handshake with {host} failed (alert HandshakeFailure): no cipher suite or version in common{}",
            min_version_hint(config)
        )),
        other => setup(format!("TLS alert {other:?} from {host}")),
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

/// The deepest `io::Error` inside `e` (through `io::Error` and `ureq::Error::Io` wrappers).
fn innermost_io(e: &io::Error) -> &io::Error {
    let mut current = e;
    for _ in 0..8 {
        let Some(inner) = current.get_ref() else {
            break;
        };
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            current = io;
        } else if let Some(ureq::Error::Io(io)) = inner.downcast_ref::<ureq::Error>() {
            current = io;
        } else {
            break;
        }
    }
    current
}

/// rustls errors reach us wrapped in `io::Error` (from the handshake or a read), possibly inside
/// ureq's error.
fn find_rustls_error(err: &ureq::Error) -> Option<&rustls::Error> {
    match err {
        ureq::Error::Io(io) => {
            let mut current = io;
            for _ in 0..8 {
                let inner = current.get_ref()?;
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return Some(tls);
                }
                current = match inner.downcast_ref::<io::Error>() {
                    Some(io) => io,
                    None => match inner.downcast_ref::<ureq::Error>() {
                        Some(ureq::Error::Io(io)) => io,
                        _ => return None,
                    },
                };
            }
            None
        }
        _ => None,
    }
}
