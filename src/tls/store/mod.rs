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
//! CA names (pure); `resolver` plugs that choice into the rustls handshake. A source only lists
//! and signs: matching and choosing are generic over [`Candidate::chain`], so every source gets
//! them.

mod choose;
mod filter;
#[cfg(target_os = "macos")]
mod keychain;
mod resolver;
#[cfg(windows)]
mod windows;

pub(crate) use choose::Described;
pub use resolver::{take_handshake_note, CaNamesSeen, HandshakeNote, NoAcceptableIdentity};

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

/// What a selector comes to at start-up.
pub(crate) enum Loaded {
    /// One usable identity: presented in every handshake, like a file identity.
    One(Box<super::identity::Identity>),
    /// Several: each handshake chooses from the server's CertificateRequest.
    Several(Arc<resolver::StoreResolver>),
}

/// Lists the selector's source, applies its filters, and settles what to present: the one usable
/// identity (its key opened and checked now, as for files), or a resolver for several. An expired
/// identity is never presented; when it is all there is, that is the error.
pub(crate) fn load(
    identity: &StoreIdentity,
    now: std::time::SystemTime,
) -> Result<Loaded, TlsError> {
    use super::certinfo::Validity;

    let selector = identity.selector.to_string();
    let source: Arc<dyn IdentitySource> = Arc::from(open(identity)?);
    let what = format!("--tls-cert {selector} ({})", source.describe());
    let held: Vec<choose::Described> = source
        .candidates()?
        .into_iter()
        .filter_map(choose::Described::new)
        .collect();
    let selected: Vec<choose::Described> = held
        .iter()
        .filter(|d| source.selects(&d.candidate) && filter::passes(d, &identity.selector.filters))
        .cloned()
        .collect();
    let no_identity = |why: &str| TlsError::NoIdentity {
        selector: selector.clone(),
        source: source.describe(),
        why: why.to_string(),
        held: held.iter().map(choose::Described::line).collect(),
    };
    if selected.is_empty() {
        return Err(no_identity(if held.is_empty() {
            "no certificate with its private key"
        } else {
            "no identity matches the selector"
        }));
    }
    let mut usable: Vec<choose::Described> = selected
        .iter()
        .filter(|d| {
            matches!(
                d.info.validity_at(now),
                Validity::Valid | Validity::ExpiresSoon { .. }
            )
        })
        .cloned()
        .collect();
    match usable.len() {
        0 if selected.len() == 1 => Err(no_identity(&format!(
            "the only identity it selects, {}, is expired or not yet valid, and an expired \
             identity is never chosen: renew it",
            selected[0].line()
        ))),
        0 => Err(no_identity(
            "every identity is expired or not yet valid (an expired identity is never chosen): \
             renew one",
        )),
        1 => {
            let d = usable.remove(0);
            for other in selected
                .iter()
                .filter(|o| o.candidate.selector != d.candidate.selector)
            {
                log::info!(
                    "{what}: not offering {} (expired or not yet valid)",
                    other.line()
                );
            }
            let signing = source.signing_key(&d.candidate)?;
            Ok(Loaded::One(Box::new(super::identity::from_store(
                &d, signing, now,
            ))))
        }
        _ => {
            for d in &usable {
                log::debug!("{what}: candidate {}", d.line());
            }
            Ok(Loaded::Several(Arc::new(resolver::StoreResolver::new(
                source, what, usable,
            ))))
        }
    }
}

/// A fingerprint of what the selector's source holds now, for certificate rotation: it changes
/// when a certificate is renewed, added or removed.
pub(crate) fn stamp(identity: &StoreIdentity) -> Result<Vec<u8>, TlsError> {
    let source = open(identity)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for candidate in source.candidates()? {
        ctx.update(candidate.selector.as_bytes());
        for cert in &candidate.chain {
            ctx.update(cert.as_ref());
        }
    }
    Ok(ctx.finish().as_ref().to_vec())
}

/// One identity a source holds, for `--list-identities`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub subject: String,
    pub issuer: String,
    pub not_after: std::time::SystemTime,
    /// `RSA 2048`, `ECDSA P-256`, or `unknown`.
    pub key_type: String,
    pub key_location: String,
    pub selector: String,
    /// SHA-1 of the certificate in upper-case hex: the Windows thumbprint (`sha1=`).
    pub sha1: String,
    /// Whether the selector's attributes let it through (always true without attributes).
    pub selected: bool,
    described: choose::Described,
}

impl Listed {
    /// Whether a server sending `names` in its CertificateRequest would take it now (a certificate
    /// of one of those CAs, valid, for clientAuth).
    pub fn accepted_by(&self, names: &[&[u8]]) -> bool {
        let any_scheme: Vec<rustls::SignatureScheme> = self
            .described
            .kind
            .map(|k| k.candidate_schemes().to_vec())
            .unwrap_or_default();
        choose::verdict(
            &self.described,
            names,
            &any_scheme,
            std::time::SystemTime::now(),
        ) == choose::Verdict::Acceptable
    }
}

/// Everything the selector's source holds (`--list-identities`), with its description.
pub fn list(identity: &StoreIdentity) -> Result<(String, Vec<Listed>), TlsError> {
    let source = open(identity)?;
    let listed = source
        .candidates()?
        .into_iter()
        .filter_map(choose::Described::new)
        .map(|d| Listed {
            subject: d.info.subject.clone(),
            issuer: d.info.issuer.clone(),
            not_after: d.info.not_after,
            key_type: d
                .kind
                .map(|k| k.describe())
                .unwrap_or_else(|| "unknown".to_string()),
            key_location: d.candidate.key_location.clone(),
            selector: d.candidate.selector.clone(),
            sha1: d
                .candidate
                .chain
                .first()
                .map(|leaf| filter::sha1_hex(leaf))
                .unwrap_or_default(),
            selected: source.selects(&d.candidate)
                && filter::passes(&d, &identity.selector.filters),
            described: d,
        })
        .collect();
    Ok((source.describe(), listed))
}

/// The CA names of a CertificateRequest, in RFC 4514 form.
pub fn describe_ca_names(names: &[Vec<u8>]) -> String {
    let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    choose::describe_names(&names)
}
