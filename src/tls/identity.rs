//! The client identity (certificate chain + private key), one loader per [`ClientIdentity`]
//! source, checked before any connection: the key must belong to the leaf certificate and the
//! leaf must be valid now (a warning when it expires within 14 days). Whatever the source, the
//! result is a rustls `CertifiedKey`: a file key is parsed by ring, a token key signs on the token.
//!
//! Decrypted key bytes are wiped as soon as ring holds the key (`zeroize`).

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::pem::{self as pki_pem, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use super::certinfo::{format_utc, CertInfo, Validity};
use super::keyfile::{self, describe_pem_error};
use super::pkcs11::{self, KeyKind};
use super::{input, pkcs12, TlsError};
use crate::config::{ClientIdentity, Pkcs11Identity, TokenCertSource};

/// A checked identity, ready to be presented (see `client_config_at`).
pub(crate) struct Identity {
    pub certified: Arc<CertifiedKey>,
    pub info: CertInfo,
    pub key: ClientKey,
    /// Human-readable warnings (near expiry).
    pub warnings: Vec<String>,
}

/// Where the private key is and what it is, for the test client's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// `file`, `pkcs12`, `pkcs11` (`--tls-key pkcs11:`) or `store` (a `--tls-cert` selector).
    pub source: &'static str,
    /// The file, or the PKCS#11 token's label.
    pub location: String,
    /// The key object's label on a token.
    pub object: Option<String>,
    /// `RSA 2048`, `ECDSA P-256`, `Ed25519`.
    pub algorithm: String,
    /// For a token key: the schemes offered, each with the mechanism that makes it.
    pub mechanisms: Vec<String>,
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.source, &self.object) {
            ("pkcs11", Some(object)) => write!(
                f,
                "PKCS#11 token '{}', object '{object}' ({})",
                self.location, self.algorithm
            ),
            ("pkcs12", _) => write!(f, "PKCS#12 bundle {} ({})", self.location, self.algorithm),
            ("store", _) => write!(f, "{} ({})", self.location, self.algorithm),
            _ => write!(f, "file {} ({})", self.location, self.algorithm),
        }
    }
}

/// Where the certificate and key came from, for messages.
struct Origin<'a> {
    cert_flag: &'static str,
    cert_path: &'a Path,
    key_flag: &'static str,
    key_path: &'a Path,
}

/// Loads and checks the configured identity.
pub(crate) fn load(identity: &ClientIdentity, now: SystemTime) -> Result<Identity, TlsError> {
    let (chain, signing_key, key, origin) = match identity {
        ClientIdentity::PemFiles {
            cert,
            key,
            passphrase,
        } => {
            let origin = Origin {
                cert_flag: "--tls-cert",
                cert_path: cert,
                key_flag: "--tls-key",
                key_path: key,
            };
            let chain = load_chain("--tls-cert", cert)?;
            let der = Zeroizing::new(keyfile::load("--tls-key", key, passphrase.as_ref())?);
            let signing_key = file_key(&der, &origin)?;
            check_key_matches(&chain, &signing_key, &origin)?;
            let info = file_key_info("file", key, &chain, &signing_key);
            (chain, signing_key, info, origin)
        }
        ClientIdentity::Pkcs12 { bundle, passphrase } => {
            let origin = Origin {
                cert_flag: "--tls-pfx",
                cert_path: bundle,
                key_flag: "--tls-pfx",
                key_path: bundle,
            };
            let loaded = pkcs12::load(bundle, passphrase.as_ref())?;
            let der = Zeroizing::new(loaded.key);
            let signing_key = file_key(&der, &origin)?;
            check_key_matches(&loaded.chain, &signing_key, &origin)?;
            let info = file_key_info("pkcs12", bundle, &loaded.chain, &signing_key);
            (loaded.chain, signing_key, info, origin)
        }
        ClientIdentity::Pkcs11(token) => load_token(token)?,
        // `client_config_at` loads selectors itself (they may hold several identities); a caller
        // that needs exactly one gets it, or the reason.
        ClientIdentity::Store(store) => {
            return match super::store::load(store, now)? {
                super::store::Loaded::One(identity) => Ok(*identity),
                super::store::Loaded::Several(_) => Err(TlsError::Store {
                    store: format!("--tls-cert {}", store.selector),
                    detail: "it matches several identities and this needs one: narrow it with \
                             the selector one of them is listed with (--list-identities)"
                        .to_string(),
                }),
            };
        }
    };
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        flag: origin.cert_flag,
        path: origin.cert_path.to_path_buf(),
    })?;
    let info = CertInfo::parse(leaf).map_err(|e| TlsError::BadCertificate {
        origin: Some(input::describe(origin.cert_flag, origin.cert_path)),
        detail: e.to_string(),
    })?;
    let warnings = check_validity(&info, &origin, now)?;
    Ok(Identity {
        certified: Arc::new(CertifiedKey::new(chain, signing_key)),
        info,
        key,
        warnings,
    })
}

type Loaded<'a> = (
    Vec<CertificateDer<'static>>,
    Arc<dyn SigningKey>,
    ClientKey,
    Origin<'a>,
);

/// A key on a PKCS#11 token, with its certificate from the token or from `--tls-cert FILE`.
fn load_token(token: &Pkcs11Identity) -> Result<Loaded<'_>, TlsError> {
    let opened = pkcs11::open(token).map_err(TlsError::Pkcs11)?;
    // Messages about the certificate name where it came from: the file, or the URI.
    let key_path = Path::new(token.key.shown());
    let (chain, origin) = match (&token.cert, opened.chain_from_token.clone()) {
        (TokenCertSource::File(path), _) => (
            load_chain("--tls-cert", path)?,
            Origin {
                cert_flag: "--tls-cert",
                cert_path: path,
                key_flag: "--tls-key",
                key_path,
            },
        ),
        (TokenCertSource::Token(uri), Some(chain)) => (
            chain,
            Origin {
                cert_flag: "--tls-cert",
                cert_path: Path::new(uri.shown()),
                key_flag: "--tls-key",
                key_path,
            },
        ),
        (_, chain) => (
            chain.unwrap_or_default(),
            Origin {
                cert_flag: "--tls-key",
                cert_path: key_path,
                key_flag: "--tls-key",
                key_path,
            },
        ),
    };
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        flag: origin.cert_flag,
        path: origin.cert_path.to_path_buf(),
    })?;
    let (signing_key, facts) = opened.signing_key(leaf).map_err(|e| match e {
        pkcs11::Pkcs11Error::KeyMismatch { object, token, .. } => {
            TlsError::Pkcs11(pkcs11::Pkcs11Error::KeyMismatch {
                object,
                token,
                cert: input::describe(origin.cert_flag, origin.cert_path),
            })
        }
        other => TlsError::Pkcs11(other),
    })?;
    let key = ClientKey {
        source: "pkcs11",
        location: facts.token,
        object: Some(facts.object),
        algorithm: facts.kind.describe(),
        mechanisms: facts.mechanisms,
    };
    Ok((chain, signing_key, key, origin))
}

/// ring's signing key for a decrypted key file. ring parses from a borrowed buffer, so the only
/// copy of the decrypted bytes is the caller's, wiped when it drops.
fn file_key(
    der: &PrivateKeyDer<'static>,
    origin: &Origin<'_>,
) -> Result<Arc<dyn SigningKey>, TlsError> {
    rustls::crypto::ring::sign::any_supported_type(der).map_err(|e| TlsError::UnsupportedKey {
        flag: origin.key_flag,
        path: origin.key_path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn file_key_info(
    source: &'static str,
    path: &Path,
    chain: &[CertificateDer<'static>],
    key: &Arc<dyn SigningKey>,
) -> ClientKey {
    let algorithm = chain
        .first()
        .and_then(|leaf| pkcs11::certificate_key(leaf).ok())
        .map(|(kind, _)| KeyKind::describe(&kind))
        .unwrap_or_else(|| match key.algorithm() {
            rustls::SignatureAlgorithm::ED25519 => "Ed25519".to_string(),
            rustls::SignatureAlgorithm::ED448 => "Ed448".to_string(),
            _ => "unknown".to_string(),
        });
    ClientKey {
        source,
        location: path.display().to_string(),
        object: None,
        algorithm,
        mechanisms: Vec::new(),
    }
}

/// All certificates of a PEM file, leaf first.
fn load_chain(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = input::read(flag, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            pki_pem::Error::NoItemsFound => TlsError::NoCertificate {
                flag,
                path: path.to_path_buf(),
            },
            other => TlsError::BadPem {
                flag,
                path: path.to_path_buf(),
                detail: describe_pem_error(&other),
            },
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// Whether the key belongs to the leaf. rustls would refuse a mismatch too, but only as
/// `InconsistentKeys(KeyMismatch)`; this says which files are involved.
fn check_key_matches(
    chain: &[CertificateDer<'static>],
    signing_key: &Arc<dyn SigningKey>,
    origin: &Origin<'_>,
) -> Result<(), TlsError> {
    // Compared with x509-cert rather than rustls' `keys_match`, whose webpki parser refuses X.509
    // v1/v2 certificates: this check must never be stricter than the servers that take them.
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        flag: origin.cert_flag,
        path: origin.cert_path.to_path_buf(),
    })?;
    let cert_spki = CertInfo::public_key_info(leaf).map_err(|e| TlsError::BadCertificate {
        origin: Some(input::describe(origin.cert_flag, origin.cert_path)),
        detail: e.to_string(),
    })?;
    match signing_key.public_key() {
        // The key cannot tell its public half; rustls accepts that, so do we.
        None => Ok(()),
        Some(key_spki) if key_spki.as_ref() == cert_spki.as_slice() => Ok(()),
        Some(_) => {
            let key = if origin.key_flag == origin.cert_flag {
                format!(
                    "the private key in {}",
                    input::describe(origin.key_flag, origin.key_path)
                )
            } else {
                input::describe(origin.key_flag, origin.key_path)
            };
            Err(TlsError::KeyMismatch {
                key,
                cert: input::describe(origin.cert_flag, origin.cert_path),
            })
        }
    }
}

/// Refuses a leaf outside its validity period; returns a warning when it expires soon.
fn check_validity(
    info: &CertInfo,
    origin: &Origin<'_>,
    now: SystemTime,
) -> Result<Vec<String>, TlsError> {
    let subject = info.subject.clone();
    let not_before = format_utc(info.not_before);
    let not_after = format_utc(info.not_after);
    match info.validity_at(now) {
        Validity::Valid => Ok(Vec::new()),
        Validity::ExpiresSoon { remaining } => {
            let days = remaining.as_secs() / (24 * 60 * 60);
            let hours = remaining.as_secs() / (60 * 60) % 24;
            Ok(vec![format!(
                "the client certificate in {} ({subject}) expires on {not_after} \
                 (in {days} days {hours} hours); renew it soon",
                input::describe(origin.cert_flag, origin.cert_path)
            )])
        }
        Validity::Expired => Err(TlsError::CertificateExpired {
            flag: origin.cert_flag,
            path: origin.cert_path.to_path_buf(),
            subject,
            not_before,
            not_after,
        }),
        Validity::NotYetValid => Err(TlsError::CertificateNotYetValid {
            flag: origin.cert_flag,
            path: origin.cert_path.to_path_buf(),
            subject,
            not_before,
            not_after,
        }),
    }
}

/// The identity a selector settled on (`store::load`), with its opened key: what a file
/// identity would be, with the same near-expiry warning.
pub(crate) fn from_store(
    d: &super::store::Described,
    signing: Arc<dyn SigningKey>,
    now: SystemTime,
) -> Identity {
    let mut warnings = Vec::new();
    if let Validity::ExpiresSoon { remaining } = d.info.validity_at(now) {
        let days = remaining.as_secs() / (24 * 60 * 60);
        warnings.push(format!(
            "the client certificate {} ({}) expires on {} (in {days} days); renew it soon",
            d.candidate.selector,
            d.info.subject,
            format_utc(d.info.not_after)
        ));
    }
    Identity {
        certified: Arc::new(CertifiedKey::new(d.candidate.chain.clone(), signing)),
        info: d.info.clone(),
        key: ClientKey {
            source: "store",
            location: d.candidate.key_location.clone(),
            object: None,
            algorithm: d
                .kind
                .map(|k| k.describe())
                .unwrap_or_else(|| "unknown".to_string()),
            mechanisms: Vec::new(),
        },
        warnings,
    }
}
