//! Loading the client identity from a PKCS#12 bundle (`--tls-pfx`) with p12-keystore, which reads
//! OpenSSL 3's default (PBES2/AES-256), `-legacy` (RC2/3DES) and empty-password bundles.

use std::path::Path;

use p12_keystore::error::Error as P12Error;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{input, TlsError};
use crate::config::Secret;

const FLAG: &str = "--tls-pfx";

/// The certificate chain (leaf first) and private key from a bundle.
pub(crate) struct Bundle {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads and decrypts `path`. Without a passphrase the empty password is tried, as OpenSSL does.
pub(crate) fn load(path: &Path, passphrase: Option<&Secret>) -> Result<Bundle, TlsError> {
    let bytes = input::read(FLAG, path)?;
    parse(path, &bytes, passphrase)
}

/// Parses bundle contents; `path` only labels errors.
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    passphrase: Option<&Secret>,
) -> Result<Bundle, TlsError> {
    let password = passphrase.map(Secret::expose).unwrap_or("");
    let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Strict).map_err(
        |e| match e {
            // The MAC over the contents is checked first: a mismatch means the wrong password.
            P12Error::MacError(_) if passphrase.is_none() => TlsError::PassphraseRequired {
                flag: FLAG,
                path: path.to_path_buf(),
            },
            P12Error::MacError(_) => TlsError::WrongPassphrase {
                flag: FLAG,
                path: path.to_path_buf(),
            },
            other => TlsError::BadPkcs12 {
                path: path.to_path_buf(),
                detail: other.to_string(),
            },
        },
    )?;
    let Some((_alias, chain)) = store.private_key_chain() else {
        return Err(TlsError::Pkcs12NoIdentity {
            path: path.to_path_buf(),
        });
    };
    if chain.certs().is_empty() {
        return Err(TlsError::Pkcs12NoIdentity {
            path: path.to_path_buf(),
        });
    }
    Ok(Bundle {
        chain: chain
            .certs()
            .iter()
            .map(|cert| CertificateDer::from(cert.as_der().to_vec()))
            .collect(),
        // p12-keystore hands keys out as PKCS#8 DER whatever the bag held.
        key: PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()).into(),
    })
}
