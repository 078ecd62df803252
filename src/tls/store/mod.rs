//! Identity sources that hold several certificates with their keys: a PKCS#11 token, the Windows
//! certificate store, the macOS Keychain. Each lists what it holds as [`Candidate`]s and opens the
//! signing key of the one chosen (by a selector, or automatically from the server's CA names); the
//! key never leaves the source.
//!
//! Selector syntax (the value of `--tls-cert` / `MCP_REMOTE_TLS_CERT`), one form for every source:
//! `SOURCE:LOCATION[;ATTR=VALUE]…`, where `ATTR` is `sha1` (the thumbprint as Windows shows it;
//! spaces and colons ignored, any case), `sha256`, `subject` or `issuer` (a case-insensitive
//! substring of the RFC 4514 name). `pkcs11:` keeps RFC 7512's own attributes. `auto` alone is the
//! platform's store. A selector that matches several identities leaves the choice to the server's
//! CertificateRequest. Work in progress (issue 21): the sources are being wired in.
#![allow(dead_code)]

#[cfg(target_os = "macos")]
pub(crate) mod keychain;
#[cfg(windows)]
pub(crate) mod windows;

use std::sync::Arc;

use rustls::sign::SigningKey;
use rustls_pki_types::CertificateDer;

use super::TlsError;

/// One identity a source holds: its certificate chain (leaf first), the exact selector that picks
/// it alone, and where its key lives.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub chain: Vec<CertificateDer<'static>>,
    /// What a user copies into `--tls-cert` to pick this identity alone.
    pub selector: String,
    /// Where the key lives, for listings and messages: `Windows CNG: Microsoft Smart Card Key
    /// Storage Provider`, `macOS Keychain (Secure Enclave)`, `PKCS#11 token 'mcp'`.
    pub key_location: String,
}

/// A place that holds identities.
pub(crate) trait IdentitySource: Send + Sync {
    /// The source for messages: `Windows store CurrentUser\My`, `Keychain login`.
    fn describe(&self) -> String;
    /// Every identity the source holds that has a private key beside its certificate.
    fn candidates(&self) -> Result<Vec<Candidate>, TlsError>;
    /// The signing key of `candidate`, which signs inside the source.
    fn signing_key(&self, candidate: &Candidate) -> Result<Arc<dyn SigningKey>, TlsError>;
}
