//! The client identity (certificate chain + private key) from `--tls-cert`/`--tls-key` or
//! `--tls-pfx`, checked before any connection: the key must belong to the leaf certificate and the
//! leaf must be valid now (a warning when it expires within 14 days).

use std::path::Path;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::{self as pki_pem, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::certinfo::{format_utc, CertInfo, Validity};
use super::keyfile::{self, describe_pem_error};
use super::{input, pkcs12, TlsError};
use crate::config::TlsOptions;

/// A checked identity, ready to be presented (see `client_config_at`).
pub(crate) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub info: CertInfo,
    /// Human-readable warnings (near expiry).
    pub warnings: Vec<String>,
}

/// Where the certificate and key came from, for messages.
struct Origin<'a> {
    cert_flag: &'static str,
    cert_path: &'a Path,
    key_flag: &'static str,
    key_path: &'a Path,
}

/// Loads and checks the configured identity; `None` when none is configured.
pub(crate) fn load(
    opts: &TlsOptions,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<Option<Identity>, TlsError> {
    let passphrase = opts.passphrase.as_ref();
    let (chain, key, origin) = match (&opts.pfx, &opts.cert, &opts.key) {
        (Some(pfx), _, _) => {
            let bundle = pkcs12::load(pfx, passphrase)?;
            let origin = Origin {
                cert_flag: "--tls-pfx",
                cert_path: pfx,
                key_flag: "--tls-pfx",
                key_path: pfx,
            };
            (bundle.chain, bundle.key, origin)
        }
        (None, Some(cert), Some(key)) => {
            let chain = load_chain("--tls-cert", cert)?;
            let key_der = keyfile::load("--tls-key", key, passphrase)?;
            let origin = Origin {
                cert_flag: "--tls-cert",
                cert_path: cert,
                key_flag: "--tls-key",
                key_path: key,
            };
            (chain, key_der, origin)
        }
        (None, Some(_), None) => {
            return Err(TlsError::IncompleteIdentity {
                missing: "--tls-key",
            })
        }
        (None, None, Some(_)) => {
            return Err(TlsError::IncompleteIdentity {
                missing: "--tls-cert",
            })
        }
        (None, None, None) => return Ok(None),
    };

    check_key_matches(&chain, &key, &origin, provider)?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        flag: origin.cert_flag,
        path: origin.cert_path.to_path_buf(),
    })?;
    let info = CertInfo::parse(leaf).map_err(|e| TlsError::BadCertificate {
        origin: Some(input::describe(origin.cert_flag, origin.cert_path)),
        detail: e.to_string(),
    })?;
    let warnings = check_validity(&info, &origin, now)?;
    Ok(Some(Identity {
        chain,
        key,
        info,
        warnings,
    }))
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

/// Whether the provider can sign with the key and the key belongs to the leaf. rustls would refuse a
/// mismatch too, but only as `InconsistentKeys(KeyMismatch)`; this says which files are involved.
fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    origin: &Origin<'_>,
    provider: &CryptoProvider,
) -> Result<(), TlsError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::UnsupportedKey {
            flag: origin.key_flag,
            path: origin.key_path.to_path_buf(),
            detail: e.to_string(),
        })?;
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
