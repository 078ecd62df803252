//! PKCS#11 tokens as an identity source (`--tls-cert pkcs11:token=…` alone, or `auto` on Linux):
//! every certificate on the matching tokens that has a private key beside it (same `CKA_ID`, or
//! the same label when it has no id) is a candidate; the other certificates on the token (CA
//! certificates stored beside the identities) complete their chains.
//!
//! Signing goes through the same session pool as `--tls-key pkcs11:` (`key::TokenKey`): the key
//! never leaves the token, and a token pulled out is found again as before.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use rustls::sign::SigningKey;
use rustls_pki_types::CertificateDer;
use x509_cert::der::{Decode, Encode};

use super::token::{self, PinSource};
use super::{key, module, Pkcs11Error, Pkcs11Uri};
use crate::config::{Pkcs11Identity, Secret, TokenCertSource};
use crate::tls::store::{Candidate, IdentitySource};
use crate::tls::TlsError;

/// Intermediates followed at most when a chain is completed from the token's certificates.
const MAX_CHAIN: usize = 4;

/// The tokens a `pkcs11:` selector matches, in one module.
pub(crate) struct TokenSource {
    ctx: Pkcs11,
    module: PathBuf,
    uri: Pkcs11Uri,
    /// `--tls-passphrase` (or the URI's `pin-value`): the user PIN.
    pin: Option<Secret>,
    /// Per candidate's selector, from the last listing: its key's URI, and its certificate's
    /// label and id (what the selector URI's `object` and `id` narrow).
    keys: Mutex<Vec<Listing>>,
}

struct Listing {
    selector: String,
    key: Pkcs11Uri,
    label: Option<String>,
    id: Option<Vec<u8>>,
}

/// Opens the module (the URI's `module-path` when no module was given).
pub(crate) fn open_source(
    uri: &Pkcs11Uri,
    module: Option<PathBuf>,
    pin: Option<Secret>,
) -> Result<Box<dyn IdentitySource>, Pkcs11Error> {
    let module =
        module
            .or_else(|| uri.module_path.clone())
            .ok_or_else(|| Pkcs11Error::NoModule {
                uri: uri.to_string(),
            })?;
    let ctx = module::get(&module)?;
    Ok(Box::new(TokenSource {
        ctx,
        module,
        uri: uri.clone(),
        pin: pin.or_else(|| uri.pin_value.clone()),
        keys: Mutex::new(Vec::new()),
    }))
}

impl TokenSource {
    fn pin_source(&self) -> PinSource {
        match (&self.pin, &self.uri.pin_source) {
            (Some(pin), _) => PinSource::Given(pin.clone()),
            (None, Some(path)) => PinSource::File(path.clone()),
            (None, None) => PinSource::None,
        }
    }

    /// The candidates on one token (logged in: private keys are private objects).
    fn list_token(
        &self,
        slot: cryptoki::slot::Slot,
        label: &str,
    ) -> Result<Vec<(Candidate, Listing)>, Pkcs11Error> {
        let session = self
            .ctx
            .open_ro_session(slot)
            .map_err(|e| token::call(e, label))?;
        let listed = (|| {
            token::login(&self.ctx, slot, &session, label, &self.pin_source())?;
            let certs = objects(&session, ObjectClass::CERTIFICATE, label)?;
            let keys = objects(&session, ObjectClass::PRIVATE_KEY, label)?;
            let mut found = Vec::new();
            for cert in &certs {
                let Some(der) = &cert.value else { continue };
                let key = keys.iter().find(|k| match (&cert.id, &k.id) {
                    (Some(c), Some(k)) => c == k,
                    (None, None) => cert.label.is_some() && cert.label == k.label,
                    _ => false,
                });
                let Some(key) = key else { continue };
                let chain = complete_chain(der, &certs);
                found.push((cert.clone(), key.clone(), chain));
            }
            Ok::<_, Pkcs11Error>(found)
        })();
        let _ = session.close();
        let found = listed?;
        // The label alone picks a certificate when no other candidate on the token has it.
        let unique = |l: &Option<String>| {
            l.is_some() && found.iter().filter(|(c, _, _)| &c.label == l).count() == 1
        };
        let mut out = Vec::new();
        for (cert, key, chain) in &found {
            let mut selector = format!("pkcs11:token={}", encode(label.as_bytes()));
            match (&cert.label, &cert.id) {
                (Some(l), _) if unique(&cert.label) => {
                    selector.push_str(";object=");
                    selector.push_str(&encode(l.as_bytes()));
                }
                (l, Some(id)) => {
                    if let Some(l) = l {
                        selector.push_str(";object=");
                        selector.push_str(&encode(l.as_bytes()));
                    }
                    selector.push_str(";id=");
                    selector.push_str(&encode_all(id));
                }
                (_, None) => {}
            }
            // The key by its id, else by its label; with the URI's pin-source, if any.
            let mut key_uri = format!("pkcs11:token={};type=private", encode(label.as_bytes()));
            match (&key.id, &key.label) {
                (Some(id), _) => {
                    key_uri.push_str(";id=");
                    key_uri.push_str(&encode_all(id));
                }
                (None, Some(l)) => {
                    key_uri.push_str(";object=");
                    key_uri.push_str(&encode(l.as_bytes()));
                }
                (None, None) => continue,
            }
            if let Some(path) = &self.uri.pin_source {
                key_uri.push_str("?pin-source=");
                key_uri.push_str(&encode(path.display().to_string().as_bytes()));
            }
            let Ok(key_uri) = Pkcs11Uri::parse(&key_uri) else {
                continue;
            };
            let object = key
                .label
                .clone()
                .unwrap_or_else(|| key_uri.describe_object());
            out.push((
                Candidate {
                    chain: chain.clone(),
                    selector: selector.clone(),
                    key_location: format!("PKCS#11 token '{label}', object '{object}'"),
                },
                Listing {
                    selector,
                    key: key_uri,
                    label: cert.label.clone(),
                    id: cert.id.clone(),
                },
            ));
        }
        Ok(out)
    }
}

impl IdentitySource for TokenSource {
    fn describe(&self) -> String {
        match &self.uri.token {
            Some(label) => format!("PKCS#11 token '{label}' ({})", self.module.display()),
            None => format!("the PKCS#11 tokens of {}", self.module.display()),
        }
    }

    fn candidates(&self) -> Result<Vec<Candidate>, TlsError> {
        let (present, tokens) =
            token::matching_tokens(&self.ctx, &self.uri).map_err(TlsError::Pkcs11)?;
        if tokens.is_empty() {
            return Err(TlsError::Pkcs11(Pkcs11Error::NoToken {
                uri: self.uri.to_string(),
                tokens: present,
            }));
        }
        let mut all = Vec::new();
        for (slot, label) in tokens {
            all.extend(self.list_token(slot, &label).map_err(TlsError::Pkcs11)?);
        }
        let (candidates, listings): (Vec<Candidate>, Vec<Listing>) = all.into_iter().unzip();
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = listings;
        Ok(candidates)
    }

    /// The URI's `object` and `id` narrow the certificates.
    fn selects(&self, candidate: &Candidate) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .find(|l| l.selector == candidate.selector)
            .is_some_and(|cert| {
                self.uri
                    .object
                    .as_ref()
                    .is_none_or(|l| cert.label.as_ref() == Some(l))
                    && self
                        .uri
                        .id
                        .as_ref()
                        .is_none_or(|id| cert.id.as_ref() == Some(id))
            })
    }

    fn signing_key(&self, candidate: &Candidate) -> Result<Arc<dyn SigningKey>, TlsError> {
        let key_uri = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter()
                .find(|l| l.selector == candidate.selector)
                .map(|l| l.key.clone())
        };
        let key_uri = key_uri.ok_or_else(|| TlsError::Store {
            store: self.describe(),
            detail: format!("{} is no longer on the token", candidate.selector),
        })?;
        let identity = Pkcs11Identity {
            key: key_uri,
            cert: TokenCertSource::BesideKey,
            module: Some(self.module.clone()),
            pin: self.pin.clone(),
        };
        let leaf = candidate.chain.first().ok_or_else(|| TlsError::Store {
            store: self.describe(),
            detail: format!("{} has no certificate", candidate.selector),
        })?;
        let opened = key::open_key_only(&identity).map_err(TlsError::Pkcs11)?;
        let (key, facts) = opened.signing_key(leaf).map_err(TlsError::Pkcs11)?;
        for mechanism in &facts.mechanisms {
            log::debug!("{}: key offers {mechanism}", candidate.selector);
        }
        Ok(key)
    }
}

/// What listing needs of a token object.
#[derive(Clone)]
struct Object {
    label: Option<String>,
    id: Option<Vec<u8>>,
    /// `CKA_VALUE` of a certificate.
    value: Option<Vec<u8>>,
}

fn objects(session: &Session, class: ObjectClass, token: &str) -> Result<Vec<Object>, Pkcs11Error> {
    let handles = session
        .find_objects(&[Attribute::Class(class)])
        .map_err(|e| token::call(e, token))?;
    let mut wanted = vec![AttributeType::Label, AttributeType::Id];
    if class == ObjectClass::CERTIFICATE {
        wanted.push(AttributeType::Value);
    }
    let mut out = Vec::new();
    for handle in handles {
        let attributes = session
            .get_attributes(handle, &wanted)
            .map_err(|e| token::call(e, token))?;
        let mut object = Object {
            label: None,
            id: None,
            value: None,
        };
        for attribute in attributes {
            match attribute {
                Attribute::Label(l) if !l.is_empty() => {
                    object.label = Some(String::from_utf8_lossy(&l).into_owned())
                }
                Attribute::Id(id) if !id.is_empty() => object.id = Some(id),
                Attribute::Value(v) if !v.is_empty() => object.value = Some(v),
                _ => {}
            }
        }
        out.push(object);
    }
    Ok(out)
}

/// The leaf, then each issuer found among the token's certificates (by name), up to a root or
/// [`MAX_CHAIN`] certificates: a server that trusts the root needs the intermediates.
fn complete_chain(leaf: &[u8], certs: &[Object]) -> Vec<CertificateDer<'static>> {
    let names = |der: &[u8]| {
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate();
        Some((tbs.subject().to_der().ok()?, tbs.issuer().to_der().ok()?))
    };
    let mut chain = vec![CertificateDer::from(leaf.to_vec())];
    let mut current = leaf.to_vec();
    while chain.len() < MAX_CHAIN {
        let Some((subject, issuer)) = names(&current) else {
            break;
        };
        if subject == issuer {
            break; // self-signed: a root, which servers do not want sent
        }
        let next = certs.iter().filter_map(|c| c.value.as_ref()).find(|der| {
            der.as_slice() != current.as_slice()
                && names(der).is_some_and(|(s, i)| s == issuer && s != i)
        });
        let Some(next) = next else { break };
        chain.push(CertificateDer::from(next.clone()));
        current = next.clone();
    }
    chain
}

/// RFC 7512 percent-encoding of an attribute value (unreserved characters kept).
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every byte percent-encoded, as RFC 7512 writes an `id`.
fn encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_percent_encoded_as_rfc7512_says() {
        assert_eq!(encode(b"my token"), "my%20token");
        assert_eq!(encode(b"a;b=c"), "a%3Bb%3Dc");
        assert_eq!(encode_all(&[1, 0xab]), "%01%ab");
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token={}", encode(b"x y;z"))).unwrap();
        assert_eq!(uri.token.as_deref(), Some("x y;z"));
    }
}
