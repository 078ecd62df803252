//! Which servers we trust: the `--tls-ca` bundle when given (it replaces the defaults, so a private
//! CA cannot be bypassed by a public one), otherwise the system's roots, otherwise Mozilla's roots
//! compiled in (an empty container or chroot has no system roots at all).

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::{self as pki_pem, PemObject};
use rustls_pki_types::CertificateDer;

use super::keyfile::describe_pem_error;
use super::{input, TlsError};

const FLAG: &str = "--tls-ca";

/// The trust anchors for server certificates.
pub(crate) fn root_store(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    match ca {
        Some(path) => bundle(path),
        None => Ok(system_or_bundled()),
    }
}

/// Only the certificates of the `--tls-ca` PEM bundle.
fn bundle(path: &Path) -> Result<RootCertStore, TlsError> {
    let bytes = input::read(FLAG, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            pki_pem::Error::NoItemsFound => TlsError::NoCaCertificates {
                path: path.to_path_buf(),
            },
            other => TlsError::BadPem {
                flag: FLAG,
                path: path.to_path_buf(),
                detail: describe_pem_error(&other),
            },
        })?;
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(certs);
    if ignored > 0 {
        log::warn!(
            "{ignored} certificate(s) in {FLAG} {} could not be used as trust anchors and were ignored",
            path.display()
        );
    }
    if added == 0 {
        return Err(TlsError::NoCaCertificates {
            path: path.to_path_buf(),
        });
    }
    log::debug!(
        "trusting {added} CA certificate(s) from {FLAG} {}",
        path.display()
    );
    Ok(store)
}

/// The platform's roots (honouring SSL_CERT_FILE / SSL_CERT_DIR), or webpki-roots if there are none.
fn system_or_bundled() -> RootCertStore {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        log::debug!("while loading system root certificates: {error}");
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(native.certs);
    if added > 0 {
        log::debug!(
            "trusting {added} system root certificate(s) ({ignored} unusable ones skipped)"
        );
        return store;
    }
    log::debug!(
        "no usable system root certificates found; using the {} roots built in (webpki-roots)",
        webpki_roots::TLS_SERVER_ROOTS.len()
    );
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}
