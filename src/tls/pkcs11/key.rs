//! The token side of a PKCS#11 identity: find the key (and its certificate), prove the pair with
//! test signatures, and sign handshakes on the token ([`TokenKey`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::MechanismType;
use cryptoki::object::{AttributeType, KeyType, ObjectClass};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::CertificateDer;

use super::kind::certificate_key;
use super::session_pool::TokenPool;
use super::token::PinSource;
use super::{scheme, token, KeyKind, Pkcs11Error, Pkcs11Uri, TokenKeyInfo};
use crate::config::{Pkcs11Identity, TokenCertSource};

/// A key on a token, ready for the TLS configuration.
pub(crate) struct TokenIdentity {
    /// The chain when it came from the token (`None`: the caller reads `--tls-cert FILE`).
    pub chain_from_token: Option<Vec<CertificateDer<'static>>>,
    pool: Arc<TokenPool>,
    object_label: String,
}

/// Pools by (module, key URI): reloading the configuration (certificate rotation) reuses the
/// logged-in token instead of logging in again.
static POOLS: Mutex<Vec<(PoolKey, Arc<TokenPool>)>> = Mutex::new(Vec::new());

/// The module's path and the key's URI.
type PoolKey = (PathBuf, String);

/// Opens the token and finds the key (and the certificate, when it is on the token).
pub(crate) fn open(identity: &Pkcs11Identity) -> Result<TokenIdentity, Pkcs11Error> {
    open_inner(identity, true)
}

/// Opens the token and finds the key only: a selector's source has found its certificate (a
/// renewed certificate may sit beside the old one, under the key's id).
pub(super) fn open_key_only(identity: &Pkcs11Identity) -> Result<TokenIdentity, Pkcs11Error> {
    open_inner(identity, false)
}

fn open_inner(identity: &Pkcs11Identity, find_chain: bool) -> Result<TokenIdentity, Pkcs11Error> {
    let uri = &identity.key;
    let module_path = identity
        .module
        .clone()
        .or_else(|| uri.module_path.clone())
        .ok_or_else(|| Pkcs11Error::NoModule {
            uri: uri.to_string(),
        })?;
    let pin = match (&identity.pin, &uri.pin_source, &uri.pin_value) {
        (Some(pin), _, _) => PinSource::Given(pin.clone()),
        (None, Some(path), _) => PinSource::File(path.clone()),
        (None, None, Some(pin)) => PinSource::Given(pin.clone()),
        (None, None, None) => PinSource::None,
    };
    let pool = {
        let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
        let key = (module_path.clone(), uri.to_string());
        match pools.iter().find(|(k, _)| *k == key) {
            Some((_, pool)) => Arc::clone(pool),
            None => {
                let pool = Arc::new(TokenPool::open(module_path, uri.clone(), pin)?);
                pools.push((key, Arc::clone(&pool)));
                pool
            }
        }
    };

    let lease = pool.lease()?;
    let token_label = pool.token_label.clone();
    let looked_up = (|| {
        let session = &lease.session;
        let label = token::bytes_attribute(session, lease.key, AttributeType::Label, &token_label)?
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let id = token::bytes_attribute(session, lease.key, AttributeType::Id, &token_label)?
            .filter(|id| !id.is_empty());
        let chain = match &identity.cert {
            _ if !find_chain => None,
            TokenCertSource::File(_) => None,
            TokenCertSource::BesideKey => {
                // The certificate that shares the key's id; by label when the key has no id.
                let (by_label, by_id) = match &id {
                    Some(id) => (None, Some(id.as_slice())),
                    None => (label.as_deref(), None),
                };
                let cert = token::find_one(
                    session,
                    ObjectClass::CERTIFICATE,
                    by_label,
                    by_id,
                    "certificate",
                    &token_label,
                    pool.uri(),
                )?;
                Some(read_cert(session, cert, &token_label)?)
            }
            TokenCertSource::Token(cert_uri) => Some(cert_from_uri(&pool, cert_uri)?),
        };
        Ok::<_, Pkcs11Error>((label, chain))
    })();
    pool.give_back(
        lease,
        matches!(looked_up, Err(Pkcs11Error::TokenRemoved { .. })),
    );
    let (label, chain) = looked_up?;
    Ok(TokenIdentity {
        chain_from_token: chain,
        object_label: label.unwrap_or_else(|| uri.describe_object()),
        pool,
    })
}

impl TokenIdentity {
    /// Checks the key against the leaf certificate and settles the schemes it can make.
    pub fn signing_key(
        &self,
        leaf: &CertificateDer<'_>,
    ) -> Result<(Arc<dyn SigningKey>, TokenKeyInfo), Pkcs11Error> {
        let token_label = self.pool.token_label.clone();
        let object = format!("'{}'", self.object_label);
        let cannot_sign = |detail: String| Pkcs11Error::CannotSign {
            object: object.clone(),
            token: token_label.clone(),
            detail,
        };
        let (kind, public_key) = certificate_key(leaf).map_err(&cannot_sign)?;

        let lease = self.pool.lease()?;
        let checked = (|| {
            let session = &lease.session;
            let key_type = token::key_type(session, lease.key, &token_label)?;
            let type_matches = match (key_type, kind) {
                (Some(t), KeyKind::Rsa { .. }) => t == KeyType::RSA,
                (Some(t), _) => t == KeyType::EC,
                (None, _) => true,
            };
            if !type_matches {
                return Err(Pkcs11Error::KeyMismatch {
                    object: object.clone(),
                    token: token_label.clone(),
                    cert: "the certificate".to_string(),
                });
            }
            if token::bool_attribute(session, lease.key, AttributeType::Sign, &token_label)?
                == Some(false)
            {
                return Err(cannot_sign("its CKA_SIGN attribute is false".to_string()));
            }
            if token::bool_attribute(
                session,
                lease.key,
                AttributeType::AlwaysAuthenticate,
                &token_label,
            )? == Some(true)
            {
                return Err(cannot_sign(
                    "it asks for the PIN before every signature (CKA_ALWAYS_AUTHENTICATE), as the \
                     PIV signature slot 9c does; use a key without it, e.g. PIV slot 9a"
                        .to_string(),
                ));
            }
            // Asked one by one: listing every mechanism makes cryptoki log each one it does
            // not know by name.
            let ctx = self.pool.ctx();
            let listed: Vec<MechanismType> = [
                MechanismType::RSA_PKCS,
                MechanismType::RSA_PKCS_PSS,
                MechanismType::ECDSA,
            ]
            .into_iter()
            .filter(|m| {
                ctx.get_mechanism_info(lease.slot, *m)
                    .is_ok_and(|info| info.sign())
            })
            .collect();
            Ok(listed)
        })();
        self.pool.give_back(
            lease,
            matches!(checked, Err(Pkcs11Error::TokenRemoved { .. })),
        );
        let listed = checked?;

        // One test signature per mechanism the token lists, verified with the certificate.
        let mut schemes = Vec::new();
        let mut refused = Vec::new();
        let mut tried: Vec<(MechanismType, Result<(), String>)> = Vec::new();
        for &candidate in kind.candidate_schemes() {
            let mechanism = scheme::mechanism_type(candidate);
            if !listed.contains(&mechanism) {
                continue;
            }
            if let Some((_, outcome)) = tried.iter().find(|(m, _)| *m == mechanism) {
                if outcome.is_ok() {
                    schemes.push(candidate);
                }
                continue;
            }
            let outcome = self.test_signature(candidate, kind, &public_key)?;
            if outcome.is_ok() {
                schemes.push(candidate);
            } else if let Err(why) = &outcome {
                refused.push(why.clone());
            }
            tried.push((mechanism, outcome));
        }
        if schemes.is_empty() {
            if refused.iter().any(|r| r == MISMATCH) {
                return Err(Pkcs11Error::KeyMismatch {
                    object,
                    token: token_label,
                    cert: "the certificate".to_string(),
                });
            }
            return Err(cannot_sign(if refused.is_empty() {
                format!(
                    "the token offers none of the mechanisms a {} key needs",
                    kind.describe()
                )
            } else {
                refused.join("; ")
            }));
        }
        let info = TokenKeyInfo {
            token: token_label,
            object: self.object_label.clone(),
            kind,
            mechanisms: schemes.iter().map(|s| scheme::mechanism_name(*s)).collect(),
        };
        let key = Arc::new(TokenKey {
            pool: Arc::clone(&self.pool),
            kind,
            schemes,
        });
        Ok((key, info))
    }

    /// Signs a fixed message with `scheme` and verifies it: `Ok` when the token can make this
    /// scheme with this key; `Err(reason)` when it cannot; a hard error when the token fails.
    fn test_signature(
        &self,
        scheme: SignatureScheme,
        kind: KeyKind,
        public_key: &[u8],
    ) -> Result<Result<(), String>, Pkcs11Error> {
        const MESSAGE: &[u8] = b"mcp-secure-remote PKCS#11 pre-flight";
        let Some((mechanism, data)) = scheme::prepare(scheme, MESSAGE) else {
            return Ok(Err("unsupported scheme".to_string()));
        };
        let signature = match self.pool.sign(&mechanism, &data) {
            Ok(signature) => signature,
            Err(Pkcs11Error::Call { code, .. })
                if [
                    "CKR_MECHANISM_INVALID",
                    "CKR_MECHANISM_PARAM_INVALID",
                    "CKR_KEY_FUNCTION_NOT_PERMITTED",
                    "CKR_KEY_TYPE_INCONSISTENT",
                    "CKR_FUNCTION_NOT_SUPPORTED",
                    "CKR_KEY_SIZE_RANGE",
                ]
                .contains(&code.as_str()) =>
            {
                return Ok(Err(format!(
                    "{} refused with {code}",
                    scheme::scheme_name(scheme)
                )));
            }
            Err(other) => return Err(other),
        };
        let Some(signature) = scheme::finish(kind, signature) else {
            return Ok(Err(format!(
                "{} returned a signature of the wrong length",
                scheme::scheme_name(scheme)
            )));
        };
        let Some(verifier) = scheme::verifier(scheme) else {
            return Ok(Err("unsupported scheme".to_string()));
        };
        let key = ring::signature::UnparsedPublicKey::new(verifier, public_key);
        Ok(key
            .verify(MESSAGE, &signature)
            .map_err(|_| MISMATCH.to_string()))
    }
}

const MISMATCH: &str = "the test signature does not verify with the certificate";

/// The certificate (DER) in a certificate object's CKA_VALUE.
fn read_cert(
    session: &cryptoki::session::Session,
    object: cryptoki::object::ObjectHandle,
    token_label: &str,
) -> Result<Vec<CertificateDer<'static>>, Pkcs11Error> {
    let value = token::bytes_attribute(session, object, AttributeType::Value, token_label)?
        .unwrap_or_default();
    Ok(vec![CertificateDer::from(value)])
}

/// `--tls-cert pkcs11:…`: the certificate object named by its own URI (on any token of the module).
fn cert_from_uri(
    pool: &TokenPool,
    cert_uri: &Pkcs11Uri,
) -> Result<Vec<CertificateDer<'static>>, Pkcs11Error> {
    let ctx = pool.ctx();
    let (slot, label) = if cert_uri.token.is_none() && cert_uri.serial.is_none() {
        token::find_token(ctx, pool.uri())?
    } else {
        token::find_token(ctx, cert_uri)?
    };
    let session = ctx
        .open_ro_session(slot)
        .map_err(|e| token::call(e, &label))?;
    let found = token::find_one(
        &session,
        ObjectClass::CERTIFICATE,
        cert_uri.object.as_deref(),
        cert_uri.id.as_deref(),
        "certificate",
        &label,
        cert_uri,
    )
    .and_then(|object| read_cert(&session, object, &label));
    let _ = session.close();
    found
}

/// A rustls signing key whose private half stays on the token.
#[derive(Debug)]
pub struct TokenKey {
    pool: Arc<TokenPool>,
    kind: KeyKind,
    /// The schemes the pre-flight proved, in order of preference.
    schemes: Vec<SignatureScheme>,
}

impl SigningKey for TokenKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(TokenSigner {
            pool: Arc::clone(&self.pool),
            kind: self.kind,
            scheme: *scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.kind.algorithm()
    }
}

#[derive(Debug)]
struct TokenSigner {
    pool: Arc<TokenPool>,
    kind: KeyKind,
    scheme: SignatureScheme,
}

impl Signer for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let (mechanism, data) = scheme::prepare(self.scheme, message)
            .ok_or_else(|| rustls::Error::General("unsupported signature scheme".to_string()))?;
        let signature = self.pool.sign(&mechanism, &data).map_err(|e| {
            log::error!("{e}");
            rustls::Error::General(e.to_string())
        })?;
        scheme::finish(self.kind, signature).ok_or_else(|| {
            rustls::Error::General(format!(
                "PKCS#11 token '{}' returned a malformed signature",
                self.pool.token_label
            ))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
