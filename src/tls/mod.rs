//! TLS: the client identity (certificate + key), server trust, and the rustls client configuration.
//!
//! Everything is read and checked once at start-up by [`client_config`], so that a bad file or a
//! wrong passphrase is reported before any connection, with the flag and path in the message.
//! The server name sent as SNI (`--tls-servername`) is not part of the configuration: it is the
//! `ServerName` the HTTP connector passes for each connection.

mod certinfo;
mod error;
mod identity;
mod input;
mod keyfile;
mod legacy_pem;
mod pem;
mod pin;
mod pkcs11;
mod pkcs12;
mod store;
mod trust;
mod verify;

use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, SupportedProtocolVersion};

pub use certinfo::{format_utc, CertInfo, Validity, EXPIRY_WARNING_WINDOW};
pub use error::TlsError;
pub use identity::ClientKey;
pub use pin::{spki_pin, PinMismatch};
pub(crate) use pkcs11::certificate_key;
pub use pkcs11::{is_pkcs11_uri, KeyKind, ObjectType, Pkcs11Error, Pkcs11Uri, UriError};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{MAX_SESSIONS, RETRY_INTERVAL, SESSION_WAIT};
pub use store::{
    describe_ca_names, list as list_identities, take_handshake_note, CaNamesSeen, HandshakeNote,
    Listed, NoAcceptableIdentity,
};
pub use verify::WeakServerKey;

use crate::config::{ClientIdentity, TlsOptions, TlsVersion};

/// Logged and returned when `--tls-insecure-skip-verify` is on.
pub const SKIP_VERIFY_WARNING: &str = "TLS server certificate verification is DISABLED \
     (--tls-insecure-skip-verify): the connection can be intercepted; use only for local development";

/// The TLS client configuration and what the user should be told about it.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// Summary of the client certificate presented (None when no identity configured).
    pub identity: Option<CertInfo>,
    /// Where the private key is (file, PKCS#12 bundle, PKCS#11 token) and what it is.
    pub key: Option<ClientKey>,
    /// Human-readable list of warnings produced (also logged with log::warn!): near expiry, skip-verify.
    pub warnings: Vec<String>,
}

/// Build the rustls client config once at start-up from the validated options.
pub fn client_config(opts: &TlsOptions) -> Result<ClientTls, TlsError> {
    client_config_at(opts, SystemTime::now())
}

/// [`client_config`] with the clock given: `now` decides whether the client certificate is
/// expired, not yet valid or about to expire. For tests and reproducible checks.
pub fn client_config_at(opts: &TlsOptions, now: SystemTime) -> Result<ClientTls, TlsError> {
    let provider = crypto_provider();
    let mut warnings = Vec::new();

    // Identity first: its errors (files, passphrase) are the likeliest and the most specific.
    // A selector may leave the choice to each handshake (several identities).
    let (identity, chooser) = match &opts.identity {
        Some(ClientIdentity::Store(selector)) => match store::load(selector, now)? {
            store::Loaded::One(identity) => (Some(*identity), None),
            store::Loaded::Several(resolver) => (None, Some(resolver)),
        },
        Some(source) => (Some(identity::load(source, now)?), None),
        None => (None, None),
    };

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(protocol_versions(opts.min_version))?;
    // The trust anchors, for a pin on a root CA (which servers do not send).
    let mut anchors = Vec::new();
    let verifier: Arc<dyn ServerCertVerifier> = if opts.insecure_skip_verify {
        // A given --tls-ca is still read, so that a broken file is reported and not ignored.
        if let Some(ca) = &opts.ca {
            trust::root_store(Some(ca))?;
        }
        warnings.push(SKIP_VERIFY_WARNING.to_string());
        Arc::new(verify::AcceptAnyServerCert::new(provider.clone()))
    } else {
        let roots = Arc::new(trust::root_store(opts.ca.as_deref())?);
        if !opts.pins.is_empty() {
            anchors = pin::anchors(&roots);
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        // webpki's verifier, unchanged but for a readable error when the server's key is too weak.
        Arc::new(verify::ExplainingVerifier::new(webpki))
    };
    // `dangerous()` is only the door to a custom verifier; `--tls-pin` adds to the check above.
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(pin::wrap(verifier, &opts.pins, anchors));

    let (mut config, identity_info, key_info) = match (identity, chooser) {
        (_, Some(resolver)) => (builder.with_client_cert_resolver(resolver), None, None),
        (Some(identity), None) => {
            log::debug!("client certificate: {}", identity.info);
            log::debug!("client key: {}", identity.key);
            for mechanism in &identity.key.mechanisms {
                log::debug!("client key offers {mechanism}");
            }
            warnings.extend(identity.warnings);
            // Not `with_client_auth_cert`: its key check parses the certificate with webpki, which
            // refuses X.509 v1/v2; `identity::load` has checked the key against it already.
            let resolver = SingleCertAndKey::from(identity.certified);
            let config = builder.with_client_cert_resolver(Arc::new(resolver));
            (config, Some(identity.info), Some(identity.key))
        }
        (None, None) => (builder.with_no_client_auth(), None, None),
    };
    // ureq speaks HTTP/1.1 only; saying so keeps an h2-preferring server from choosing h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    for warning in &warnings {
        log::warn!("{warning}");
    }
    Ok(ClientTls {
        config: Arc::new(config),
        identity: identity_info,
        key: key_info,
        warnings,
    })
}

/// The configuration of `--list-identities <server-url>`: the same trust as a session, and a
/// resolver that presents no certificate but records the CA names the server asks for.
pub fn ca_names_probe(
    opts: &TlsOptions,
) -> Result<(Arc<ClientConfig>, Arc<CaNamesSeen>), TlsError> {
    let no_identity = TlsOptions {
        identity: None,
        ..opts.clone()
    };
    let mut config = (*client_config(&no_identity)?.config).clone();
    let seen = Arc::new(CaNamesSeen::default());
    config.client_auth_cert_resolver = Arc::clone(&seen) as _;
    Ok((Arc::new(config), seen))
}

/// A fingerprint of what the `--tls-cert` selector's source holds now, for certificate rotation;
/// `None` without a selector. A source that cannot be listed (a token pulled out) has an empty
/// fingerprint, so that its return reloads the configuration.
pub fn store_stamp(opts: &TlsOptions) -> Option<Vec<u8>> {
    match &opts.identity {
        Some(ClientIdentity::Store(selector)) => Some(store::stamp(selector).unwrap_or_else(|e| {
            log::debug!("cannot list --tls-cert {}: {e}", selector.selector);
            Vec::new()
        })),
        _ => None,
    }
}

/// A signing key from a PEM key file (for JWT assertions), read the way `--tls-key` is read
/// (PKCS#8, SEC1, PKCS#1; encrypted keys need the passphrase, which this path does not take).
pub fn signing_key_file(
    flag: &'static str,
    path: &std::path::Path,
) -> Result<Arc<dyn rustls::sign::SigningKey>, TlsError> {
    let der = keyfile::load(flag, path, None)?;
    rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| TlsError::UnsupportedKey {
        flag,
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// A signing key on a PKCS#11 token (for JWT assertions), opened and checked against its
/// certificate exactly as a `--tls-key pkcs11:` key is: it signs on the token, where it stays.
pub fn signing_key_token(
    token: &crate::config::Pkcs11Identity,
) -> Result<Arc<dyn rustls::sign::SigningKey>, TlsError> {
    let source = crate::config::ClientIdentity::Pkcs11(Box::new(token.clone()));
    Ok(Arc::clone(
        &identity::load(&source, SystemTime::now())?.certified.key,
    ))
}

/// TLS 1.3 only when the minimum is 1.3; otherwise 1.2 and 1.3 (rustls has nothing older).
fn protocol_versions(min: Option<TlsVersion>) -> &'static [&'static SupportedProtocolVersion] {
    const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const TLS12_AND_13: &[&SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    match min {
        Some(TlsVersion::Tls13) => TLS13_ONLY,
        Some(TlsVersion::Tls12) | None => TLS12_AND_13,
    }
}

/// The crypto provider every TLS object of this crate uses (ring), for code that builds its own
/// rustls objects (e.g. a test server) and must agree with [`client_config`].
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
