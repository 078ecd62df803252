//! Identities in the macOS Keychain (`login`: the user's keychain search list, as Keychain Access
//! shows it; `system`: `/Library/Keychains/System.keychain`, where MDM device profiles put theirs):
//! each certificate with its private key, its chain as macOS builds it, and a rustls `SigningKey`
//! that signs through `SecKeyCreateSignature`. The key is never exported, so a Secure Enclave or
//! smart-card (CryptoTokenKit) key works like a software one; macOS asks for a PIN or for access
//! in its own dialog.

use std::sync::Arc;

use core_foundation::base::{CFType, TCFType};
use core_foundation::dictionary::CFDictionary;
use core_foundation::string::CFString;
use ring::digest;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::CertificateDer;
use security_framework::certificate::SecCertificate;
use security_framework::identity::SecIdentity;
use security_framework::item::{ItemClass, ItemSearchOptions, Limit, Reference, SearchResult};
use security_framework::key::{Algorithm, SecKey};
use security_framework::os::macos::keychain::SecKeychain;
use security_framework::policy::SecPolicy;
use security_framework::trust::SecTrust;
use security_framework_sys::item::{kSecAttrTokenID, kSecAttrTokenIDSecureEnclave};
use security_framework_sys::key::{kSecKeyOperationTypeSign, SecKeyIsAlgorithmSupported};

use super::{Candidate, IdentitySource};
use crate::tls::{certificate_key, KeyKind, TlsError};

/// Where MDM device profiles and `security import -k /Library/Keychains/System.keychain` put
/// identities; reading its keys needs root or an access-control entry for this binary.
const SYSTEM_KEYCHAIN: &str = "/Library/Keychains/System.keychain";

/// `errSecItemNotFound`, `errSecUserCanceled`, `errSecAuthFailed`, `errSecInteractionNotAllowed`.
const ITEM_NOT_FOUND: i32 = -25300;
const USER_CANCELED: i32 = -128;
const AUTH_FAILED: i32 = -25293;
const INTERACTION_NOT_ALLOWED: i32 = -25308;

/// Opens the user's keychains (`"login"`) or the System keychain (`"system"`).
pub(crate) fn open(keychain: &str) -> Result<Box<dyn IdentitySource>, TlsError> {
    match keychain {
        // No keychain list: the search covers the user's search list (the login keychain first,
        // then any the user added, e.g. a CI job's temporary keychain), as Keychain Access does.
        "login" => Ok(Box::new(KeychainSource::new("login", "login", None))),
        "system" => {
            let system = SecKeychain::open(SYSTEM_KEYCHAIN).map_err(|e| TlsError::Store {
                store: "Keychain System".to_string(),
                detail: format!("{SYSTEM_KEYCHAIN} cannot be opened ({})", explain(&e)),
            })?;
            Ok(Box::new(KeychainSource::new(
                "system",
                "System",
                Some(system),
            )))
        }
        other => Err(TlsError::Store {
            store: format!("keychain:{other}"),
            detail: "unknown keychain: use keychain:login (the user's keychains) or \
                     keychain:system (the System keychain)"
                .to_string(),
        }),
    }
}

/// The identities of one keychain (or of the user's search list).
struct KeychainSource {
    /// `login` or `system`: the selector's location.
    location: String,
    /// `login`, `System`: for messages and key locations.
    name: String,
    /// `None`: the user's search list.
    keychain: Option<SecKeychain>,
}

impl KeychainSource {
    fn new(location: &str, name: &str, keychain: Option<SecKeychain>) -> Self {
        Self {
            location: location.to_string(),
            name: name.to_string(),
            keychain,
        }
    }

    fn error(&self, detail: String) -> TlsError {
        TlsError::Store {
            store: self.describe(),
            detail,
        }
    }

    /// Every identity (certificate + private key) the keychain(s) hold.
    fn identities(&self) -> Result<Vec<SecIdentity>, TlsError> {
        let mut search = ItemSearchOptions::new();
        search
            .class(ItemClass::identity())
            .load_refs(true)
            .limit(Limit::All);
        if let Some(keychain) = &self.keychain {
            search.keychains(std::slice::from_ref(keychain));
        }
        let results = match search.search() {
            Ok(results) => results,
            Err(e) if e.code() == ITEM_NOT_FOUND => return Ok(Vec::new()),
            Err(e) => return Err(self.error(format!("cannot be searched ({})", explain(&e)))),
        };
        Ok(results
            .into_iter()
            .filter_map(|result| match result {
                SearchResult::Ref(Reference::Identity(identity)) => Some(identity),
                _ => None,
            })
            .collect())
    }

    /// The leaf and the intermediates macOS finds for it in the keychains, without the
    /// self-signed root; the leaf alone if no chain is built. No network fetch (AIA): the chain is
    /// what the machine holds, and a listing must not wait on the network.
    fn chain(&self, leaf: &SecCertificate) -> Vec<CertificateDer<'static>> {
        let alone = vec![CertificateDer::from(leaf.to_der())];
        let Ok(mut trust) = SecTrust::create_with_certificates(
            std::slice::from_ref(leaf),
            &[SecPolicy::create_x509()],
        ) else {
            return alone;
        };
        let _ = trust.set_network_fetch_allowed(false);
        // Untrusted roots are normal here (a private CA): the chain is built all the same.
        let _ = trust.evaluate_with_error();
        let mut chain = Vec::new();
        // SecTrustCopyCertificateChain (the replacement) needs macOS 12; rustc targets 10.12/11.
        #[allow(deprecated)]
        for i in 0..trust.certificate_count() {
            let Some(cert) = trust.certificate_at_index(i) else {
                break;
            };
            if i > 0 && cert.subject() == cert.issuer() {
                break;
            }
            chain.push(CertificateDer::from(cert.to_der()));
        }
        if chain.is_empty() {
            alone
        } else {
            chain
        }
    }
}

impl IdentitySource for KeychainSource {
    fn describe(&self) -> String {
        format!("Keychain {}", self.name)
    }

    fn candidates(&self) -> Result<Vec<Candidate>, TlsError> {
        let mut found = Vec::new();
        for identity in self.identities()? {
            let (Ok(cert), Ok(key)) = (identity.certificate(), identity.private_key()) else {
                continue;
            };
            let der = cert.to_der();
            found.push(Candidate {
                chain: self.chain(&cert),
                selector: format!("keychain:{};sha1={}", self.location, thumbprint(&der)),
                key_location: key_location(&key),
            });
        }
        Ok(found)
    }

    fn signing_key(&self, candidate: &Candidate) -> Result<Arc<dyn SigningKey>, TlsError> {
        let leaf = candidate
            .chain
            .first()
            .ok_or_else(|| self.error("an identity without a certificate".to_string()))?;
        let thumb = thumbprint(leaf);
        let identity = self
            .identities()?
            .into_iter()
            .find(|identity| {
                identity
                    .certificate()
                    .is_ok_and(|c| c.to_der() == leaf.as_ref())
            })
            .ok_or_else(|| {
                self.error(format!(
                    "the certificate {thumb} is no longer in the keychain; list the identities \
                     again (mcp-secure-remote-client --list-identities)"
                ))
            })?;
        let key = identity.private_key().map_err(|e| {
            self.error(format!(
                "the private key of certificate {thumb} cannot be opened ({})",
                explain(&e)
            ))
        })?;
        signing_key_of(key, leaf)
            .map_err(|detail| self.error(format!("certificate {thumb}: {detail}")))
    }
}

/// The rustls signing key of a Keychain key whose certificate is `leaf`: the schemes are the ones
/// the certificate's key kind allows and the key says it supports.
pub(crate) fn signing_key_of(
    key: SecKey,
    leaf: &CertificateDer<'_>,
) -> Result<Arc<dyn SigningKey>, String> {
    let (kind, _) = certificate_key(leaf)?;
    let schemes: Vec<SignatureScheme> = kind
        .candidate_schemes()
        .iter()
        .copied()
        .filter(|scheme| algorithm(*scheme).is_some_and(|a| supports(&key, a)))
        .collect();
    if schemes.is_empty() {
        return Err(format!(
            "its {} key signs none of the TLS signature schemes",
            kind.describe()
        ));
    }
    Ok(Arc::new(KeychainKey { key, kind, schemes }))
}

/// A private key in the Keychain; signs through `SecKeyCreateSignature`.
struct KeychainKey {
    key: SecKey,
    kind: KeyKind,
    schemes: Vec<SignatureScheme>,
}

impl std::fmt::Debug for KeychainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeychainKey")
            .field("kind", &self.kind)
            .field("schemes", &self.schemes)
            .finish_non_exhaustive()
    }
}

impl SigningKey for KeychainKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        // Our preference order (PSS before PKCS#1, stronger hashes first), among those offered.
        let scheme = self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(KeychainSigner {
            key: self.key.clone(),
            scheme: *scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.kind.algorithm()
    }
}

struct KeychainSigner {
    key: SecKey,
    scheme: SignatureScheme,
}

impl std::fmt::Debug for KeychainSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeychainSigner")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Signer for KeychainSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let algorithm = algorithm(self.scheme)
            .ok_or_else(|| rustls::Error::General(format!("{:?} is not supported", self.scheme)))?;
        // The "Message" algorithms hash inside the Security framework too; ECDSA comes back as the
        // DER Ecdsa-Sig-Value TLS wants.
        self.key.create_signature(algorithm, message).map_err(|e| {
            let why = match e.code() as i32 {
                USER_CANCELED => "the Keychain prompt was cancelled".to_string(),
                AUTH_FAILED => "the Keychain refused the PIN or password".to_string(),
                INTERACTION_NOT_ALLOWED => {
                    "the keychain is locked and cannot ask for its password here; unlock it \
                         (security unlock-keychain)"
                        .to_string()
                }
                _ => format!("{} (error {})", e.description(), e.code()),
            };
            rustls::Error::General(format!("the Keychain key did not sign: {why}"))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// The Security framework algorithm of a TLS signature scheme.
fn algorithm(scheme: SignatureScheme) -> Option<Algorithm> {
    Some(match scheme {
        SignatureScheme::RSA_PSS_SHA512 => Algorithm::RSASignatureMessagePSSSHA512,
        SignatureScheme::RSA_PSS_SHA384 => Algorithm::RSASignatureMessagePSSSHA384,
        SignatureScheme::RSA_PSS_SHA256 => Algorithm::RSASignatureMessagePSSSHA256,
        SignatureScheme::RSA_PKCS1_SHA512 => Algorithm::RSASignatureMessagePKCS1v15SHA512,
        SignatureScheme::RSA_PKCS1_SHA384 => Algorithm::RSASignatureMessagePKCS1v15SHA384,
        SignatureScheme::RSA_PKCS1_SHA256 => Algorithm::RSASignatureMessagePKCS1v15SHA256,
        SignatureScheme::ECDSA_NISTP256_SHA256 => Algorithm::ECDSASignatureMessageX962SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384 => Algorithm::ECDSASignatureMessageX962SHA384,
        _ => return None,
    })
}

/// Whether the key can sign with `algorithm` (a token may lack PSS, the Secure Enclave has only
/// P-256).
fn supports(key: &SecKey, algorithm: Algorithm) -> bool {
    // SAFETY: a live key reference and a constant algorithm name.
    unsafe {
        SecKeyIsAlgorithmSupported(
            key.as_concrete_TypeRef(),
            kSecKeyOperationTypeSign,
            algorithm.into(),
        ) != 0
    }
}

/// Where a key lives, for listings: the Secure Enclave, a CryptoTokenKit token, or the keychain.
fn key_location(key: &SecKey) -> String {
    match token_id(key) {
        Some(token) if token == secure_enclave() => "macOS Keychain (Secure Enclave)".to_string(),
        Some(token) => format!("macOS Keychain (token {token})"),
        // Not the keychain's name: `login` searches the whole search list, which may hold
        // the System keychain too.
        None => "macOS Keychain (software key)".to_string(),
    }
}

/// The key's `kSecAttrTokenID`: set for Secure Enclave and CryptoTokenKit (smart-card) keys.
fn token_id(key: &SecKey) -> Option<String> {
    let attributes: CFDictionary = key.attributes();
    // SAFETY: kSecAttrTokenID is a constant CFString; the value, when present, is a CFString.
    let value = attributes.find(unsafe { kSecAttrTokenID }.cast())?;
    let value = unsafe { CFType::wrap_under_get_rule((*value).cast()) };
    value.downcast::<CFString>().map(|s| s.to_string())
}

fn secure_enclave() -> String {
    // SAFETY: a constant CFString of the Security framework.
    unsafe { CFString::wrap_under_get_rule(kSecAttrTokenIDSecureEnclave) }.to_string()
}

/// The SHA-1 thumbprint as Keychain Access shows it (without its spaces), upper-case hex.
fn thumbprint(der: &[u8]) -> String {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn explain(error: &security_framework::base::Error) -> String {
    match error.message() {
        Some(message) => format!("{message}, OSStatus {}", error.code()),
        None => format!("OSStatus {}", error.code()),
    }
}

#[cfg(test)]
mod tests;
