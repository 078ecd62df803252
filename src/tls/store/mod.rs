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
//! CertificateRequest. The syntax is parsed once, in `config::selector`.
//!
//! Split by concern: [`open`] dispatches a selector to its source (one `cfg` arm per platform);
//! `filter` applies the `ATTR=VALUE` filters; `choose` is the automatic choice from the server's
//! CA names (pure); `load` settles what to present at start-up; `resolver` plugs the choice into
//! the rustls handshake; `listing` is `--list-identities`. A source only lists
//! and signs: matching and choosing are generic over [`Candidate::chain`], so every source gets
//! them.

mod choose;
mod filter;
mod listing;
mod load;
mod resolver;

pub(crate) use choose::Described;
pub use listing::{describe_ca_names, list, Listed};
pub(crate) use load::{load, stamp, Loaded};
pub use resolver::{take_handshake_note, CaNamesSeen, HandshakeNote, NoAcceptableIdentity};

#[cfg(target_os = "macos")]
pub(crate) mod keychain;
#[cfg(windows)]
pub(crate) mod windows;

use std::sync::Arc;

use rustls::sign::SigningKey;
use rustls_pki_types::CertificateDer;

use super::TlsError;
use crate::config::{SourceKind, StoreIdentity};

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
    /// Whether the source's own part of the selector picks `candidate` (a `pkcs11:` URI's
    /// `object` and `id`); the `ATTR=VALUE` filters are applied by the caller, for every source.
    fn selects(&self, _candidate: &Candidate) -> bool {
        true
    }
}

/// Opens the source a selector names. A store of another platform never gets here (the
/// selector parser refuses it), but a library caller gets an error, not a panic.
pub(crate) fn open(identity: &StoreIdentity) -> Result<Box<dyn IdentitySource>, TlsError> {
    match &identity.selector.source {
        #[cfg(windows)]
        SourceKind::Windows(store) => windows::open(store),
        #[cfg(target_os = "macos")]
        SourceKind::Keychain(keychain) => keychain::open(keychain),
        SourceKind::Pkcs11(uri) => {
            super::pkcs11::open_source(uri, identity.module.clone(), identity.pin.clone())
                .map_err(TlsError::Pkcs11)
        }
        #[allow(unreachable_patterns)]
        other => Err(TlsError::Store {
            store: format!("--tls-cert {}", identity.selector),
            detail: format!("{other:?} is not available on this platform"),
        }),
    }
}
