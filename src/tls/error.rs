//! `TlsError`: everything that can go wrong while building the TLS client configuration, each
//! variant worded so that its one-line Display names the file or flag and says what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Said after every message about a missing or wrong passphrase.
const PASSPHRASE_HINT: &str = "set --tls-passphrase or MCP_REMOTE_TLS_PASSPHRASE";

/// Why the TLS client configuration could not be built. `flag` fields hold the command-line flag the
/// file came from (`--tls-cert`, `--tls-key`, `--tls-pfx`, `--tls-ca`).
#[derive(Debug)]
pub enum TlsError {
    /// A file named on the command line could not be read.
    ReadFile {
        flag: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not well-formed PEM.
    BadPem {
        flag: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// A certificate file holds no `BEGIN CERTIFICATE` section.
    NoCertificate { flag: &'static str, path: PathBuf },
    /// A key file holds no private key section we know.
    NoPrivateKey { flag: &'static str, path: PathBuf },
    /// The key or PKCS#12 bundle is encrypted and no passphrase was given.
    PassphraseRequired { flag: &'static str, path: PathBuf },
    /// The passphrase did not decrypt the key or PKCS#12 bundle.
    WrongPassphrase { flag: &'static str, path: PathBuf },
    /// The key is encrypted with a scheme we do not implement (e.g. PKCS#8 v1 PBE-SHA1-3DES).
    UnsupportedKeyEncryption {
        flag: &'static str,
        path: PathBuf,
        scheme: String,
    },
    /// The key decrypted or parsed, but its content is not a usable private key.
    MalformedKey {
        flag: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// rustls (ring) cannot sign with this key (unsupported algorithm or size).
    UnsupportedKey {
        flag: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// The PKCS#12 bundle could not be parsed.
    BadPkcs12 { path: PathBuf, detail: String },
    /// The PKCS#12 bundle holds no private key with its certificate.
    Pkcs12NoIdentity { path: PathBuf },
    /// A certificate could not be parsed as X.509. `origin` says where it came from
    /// (`--tls-cert ./client.crt`), when known.
    BadCertificate {
        origin: Option<String>,
        detail: String,
    },
    /// The private key does not belong to the leaf certificate. `key` and `cert` describe where each
    /// came from, e.g. `--tls-key ./client.key` and `--tls-cert ./client.crt`.
    KeyMismatch { key: String, cert: String },
    /// The client certificate's validity ended before now.
    CertificateExpired {
        flag: &'static str,
        path: PathBuf,
        subject: String,
        not_before: String,
        not_after: String,
    },
    /// The client certificate's validity starts after now.
    CertificateNotYetValid {
        flag: &'static str,
        path: PathBuf,
        subject: String,
        not_before: String,
        not_after: String,
    },
    /// `--tls-ca` held no certificate that could be used as a trust anchor.
    NoCaCertificates { path: PathBuf },
    /// Only one of `--tls-cert` / `--tls-key` was given (`missing` names the other). The option
    /// parser already prevents this; kept so that a library caller gets an error, not a panic.
    IncompleteIdentity { missing: &'static str },
    /// rustls refused the configuration (should not happen with validated options).
    Rustls(rustls::Error),
    /// A key (or certificate) on a PKCS#11 token could not be used.
    Pkcs11(super::Pkcs11Error),
    /// An identity source (`--tls-cert windows:…|keychain:…|pkcs11:…|auto`) could not be opened or
    /// listed. `store` names it (`Windows store CurrentUser\My`); `detail` says why and what to do.
    Store { store: String, detail: String },
    /// A selector matched no usable identity. `held` describes what the source holds (each with
    /// the selector that picks it), `why` what was wrong with them.
    NoIdentity {
        selector: String,
        source: String,
        why: String,
        held: Vec<String>,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store { store, detail } => write!(f, "{store}: {detail}"),
            Self::NoIdentity {
                selector,
                source,
                why,
                held,
            } => {
                write!(f, "--tls-cert {selector} ({source}): {why}")?;
                if !held.is_empty() {
                    write!(f, "; it holds: {}", held.join("; "))?;
                }
                Ok(())
            }
            Self::ReadFile { flag, path, source } => write!(
                f,
                "cannot read {flag} {}: {source} (check the path and its permissions)",
                path.display()
            ),
            Self::BadPem { flag, path, detail } => write!(
                f,
                "{flag} {} is not a valid PEM file ({detail}); check that it was copied whole",
                path.display()
            ),
            Self::NoCertificate { flag, path } => write!(
                f,
                "no certificate found in {flag} {}: expected a PEM file with a \
                 '-----BEGIN CERTIFICATE-----' section (convert DER with \
                 'openssl x509 -inform der -in FILE -out FILE.pem')",
                path.display()
            ),
            Self::NoPrivateKey { flag, path } => write!(
                f,
                "no private key found in {flag} {}: expected a PEM file with a 'BEGIN PRIVATE KEY', \
                 'BEGIN RSA PRIVATE KEY', 'BEGIN EC PRIVATE KEY' or 'BEGIN ENCRYPTED PRIVATE KEY' \
                 section (convert DER with 'openssl pkey -inform der -in FILE -out FILE.pem')",
                path.display()
            ),
            Self::PassphraseRequired { flag, path } => write!(
                f,
                "{flag} {} is encrypted and no passphrase was given ({PASSPHRASE_HINT})",
                path.display()
            ),
            Self::WrongPassphrase { path, .. } => write!(
                f,
                "wrong passphrase for {} ({PASSPHRASE_HINT})",
                path.display()
            ),
            Self::UnsupportedKeyEncryption { flag, path, scheme } => write!(
                f,
                "{flag} {} is encrypted with an unsupported scheme ({scheme}); convert it with \
                 'openssl pkcs8 -topk8 -v2 aes-256-cbc -in {} -out NEW.key' and use NEW.key",
                path.display(),
                path.display()
            ),
            Self::MalformedKey { flag, path, detail } => write!(
                f,
                "{flag} {} does not hold a valid private key ({detail}); check the file",
                path.display()
            ),
            Self::UnsupportedKey { flag, path, detail } => write!(
                f,
                "the private key in {flag} {} cannot be used ({detail}); use an RSA (2048 bits or \
                 more), ECDSA P-256/P-384 or Ed25519 key",
                path.display()
            ),
            Self::BadPkcs12 { path, detail } => write!(
                f,
                "--tls-pfx {} is not a readable PKCS#12 bundle ({detail}); re-export it with \
                 'openssl pkcs12 -export' or use --tls-cert and --tls-key",
                path.display()
            ),
            Self::Pkcs12NoIdentity { path } => write!(
                f,
                "--tls-pfx {} holds no private key together with its certificate; export a bundle \
                 with both ('openssl pkcs12 -export -inkey KEY -in CERT')",
                path.display()
            ),
            Self::BadCertificate {
                origin: Some(origin),
                detail,
            } => write!(
                f,
                "the certificate in {origin} cannot be parsed ({detail}); check the file"
            ),
            Self::BadCertificate {
                origin: None,
                detail,
            } => write!(f, "cannot parse the certificate ({detail})"),
            Self::KeyMismatch { key, cert } => write!(
                f,
                "{key} does not match the certificate in {cert}; use the key that belongs to \
                 this certificate"
            ),
            Self::CertificateExpired {
                flag,
                path,
                subject,
                not_before,
                not_after,
            } => write!(
                f,
                "the client certificate in {flag} {} ({subject}) expired on {not_after} (valid from \
                 {not_before} to {not_after}); renew it",
                path.display()
            ),
            Self::CertificateNotYetValid {
                flag,
                path,
                subject,
                not_before,
                not_after,
            } => write!(
                f,
                "the client certificate in {flag} {} ({subject}) is not valid before {not_before} \
                 (valid from {not_before} to {not_after}); check the system clock",
                path.display()
            ),
            Self::NoCaCertificates { path } => write!(
                f,
                "no certificates found in --tls-ca {}: expected a PEM bundle of CA certificates \
                 ('-----BEGIN CERTIFICATE-----' sections)",
                path.display()
            ),
            Self::IncompleteIdentity { missing } => write!(
                f,
                "--tls-cert and --tls-key go together: {missing} is missing"
            ),
            Self::Rustls(e) => write!(f, "TLS configuration rejected by rustls: {e}"),
            Self::Pkcs11(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadFile { source, .. } => Some(source),
            Self::Rustls(e) => Some(e),
            Self::Pkcs11(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Rustls(e)
    }
}
