//! Client keys that never leave a PKCS#11 token (smart card, YubiKey PIV, HSM, TPM through
//! tpm2-pkcs11): the vendor module is loaded at run time, the key is found by its RFC 7512 URI, and
//! every TLS signature is made on the token by `key::TokenKey`, a rustls `SigningKey`.
//!
//! Pre-flight, as for key files: the certificate is found (on the token beside the key, by its own
//! URI, or in a file), and one test signature per mechanism is made and verified with the
//! certificate's public key. That proves the pair belongs together without needing a public-key
//! object on the token, and it decides which schemes are offered: only those that worked.

mod error;
mod kind;

#[cfg(feature = "pkcs11")]
mod key;
#[cfg(feature = "pkcs11")]
mod module;
#[cfg(feature = "pkcs11")]
mod scheme;
#[cfg(feature = "pkcs11")]
mod session_pool;
#[cfg(feature = "pkcs11")]
mod source;
#[cfg(feature = "pkcs11")]
mod token;

#[cfg(not(feature = "pkcs11"))]
mod unavailable;

pub use crate::config::{is_pkcs11_uri, ObjectType, Pkcs11Uri, UriError};
pub use error::Pkcs11Error;
#[cfg(feature = "pkcs11")]
pub(crate) use key::open;
pub(crate) use kind::certificate_key;
pub use kind::KeyKind;
#[cfg(feature = "pkcs11")]
pub use session_pool::{MAX_SESSIONS, RETRY_INTERVAL, SESSION_WAIT};
#[cfg(feature = "pkcs11")]
pub(crate) use source::open_source;
#[cfg(not(feature = "pkcs11"))]
pub(crate) use unavailable::{open, open_source};

/// What the test client reports about a token key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKeyInfo {
    pub token: String,
    pub object: String,
    pub kind: KeyKind,
    /// The schemes offered in handshakes, each with the mechanism that makes it.
    pub mechanisms: Vec<String>,
}
