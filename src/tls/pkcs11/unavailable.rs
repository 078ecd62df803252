//! A build without the `pkcs11` feature (the static musl release, which has no dynamic loader to
//! load a module with): a `pkcs11:` key is still parsed and reported, and refused with one clear
//! line at start-up.

use std::sync::Arc;

use rustls::sign::SigningKey;
use rustls_pki_types::CertificateDer;

use super::{Pkcs11Error, TokenKeyInfo};
use crate::config::Pkcs11Identity;

/// Never built: [`open`] always fails.
pub(crate) struct TokenIdentity {
    pub chain_from_token: Option<Vec<CertificateDer<'static>>>,
}

pub(crate) fn open(_identity: &Pkcs11Identity) -> Result<TokenIdentity, Pkcs11Error> {
    Err(Pkcs11Error::NotBuilt)
}

impl TokenIdentity {
    pub fn signing_key(
        &self,
        _leaf: &CertificateDer<'_>,
    ) -> Result<(Arc<dyn SigningKey>, TokenKeyInfo), Pkcs11Error> {
        Err(Pkcs11Error::NotBuilt)
    }
}

/// A `pkcs11:` selector in a build without PKCS#11.
pub(crate) fn open_source(
    _uri: &crate::config::Pkcs11Uri,
    _module: Option<std::path::PathBuf>,
    _pin: Option<crate::config::Secret>,
) -> Result<Box<dyn crate::tls::store::IdentitySource>, Pkcs11Error> {
    Err(Pkcs11Error::NotBuilt)
}
