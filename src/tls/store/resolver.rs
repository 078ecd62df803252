//! The automatic choice inside the handshake: a rustls `ResolvesClientCert` that, given the CA
//! names and signature schemes of the server's CertificateRequest, picks one of the selector's
//! identities (`choose`) and opens its key in the source (once; kept for later handshakes).
//!
//! rustls cannot fail a handshake from a resolver: declining sends no certificate, and the
//! server's refusal would blame "the certificate". So the resolver leaves a note for the
//! connection on this thread (the handshake runs on the thread that connects), and the connector
//! turns a declined choice into [`NoAcceptableIdentity`], whose message lists the candidates.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::choose::{self, Described};
use super::IdentitySource;

/// What the resolver did in the handshake that just ran on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeNote {
    /// This identity was presented: its certificate and the selector that picks it alone.
    Chose {
        certificate: crate::tls::CertInfo,
        selector: String,
    },
    /// None was presented; the one-line reason, listing the candidates.
    Declined(String),
}

thread_local! {
    static NOTE: RefCell<Option<HandshakeNote>> = const { RefCell::new(None) };
}

/// Takes (and clears) the note of the last handshake on this thread.
pub fn take_handshake_note() -> Option<HandshakeNote> {
    NOTE.with(|n| n.borrow_mut().take())
}

fn leave_note(note: HandshakeNote) {
    NOTE.with(|n| *n.borrow_mut() = Some(note));
}

/// No identity of the selector fits what the server asks for. Display is one line.
#[derive(Debug, Clone)]
pub struct NoAcceptableIdentity(pub String);

impl std::fmt::Display for NoAcceptableIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoAcceptableIdentity {}

pub(crate) struct StoreResolver {
    source: Arc<dyn IdentitySource>,
    /// `--tls-cert auto (the PKCS#11 tokens of …)`, for messages.
    what: String,
    described: Vec<Described>,
    /// The opened keys, by candidate index.
    keys: Mutex<Vec<Option<Arc<CertifiedKey>>>>,
    /// The candidate presented last: what a request naming no CA keeps (`choose_keeping`).
    presented: Mutex<Option<usize>>,
}

impl std::fmt::Debug for StoreResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreResolver")
            .field("what", &self.what)
            .field("candidates", &self.described.len())
            .finish_non_exhaustive()
    }
}

impl StoreResolver {
    pub fn new(source: Arc<dyn IdentitySource>, what: String, described: Vec<Described>) -> Self {
        let keys = Mutex::new(vec![None; described.len()]);
        Self {
            source,
            what,
            described,
            keys,
            presented: Mutex::new(None),
        }
    }

    /// The certified key of candidate `i`, opening its key the first time.
    fn key(&self, i: usize) -> Result<Arc<CertifiedKey>, String> {
        // Held while a key is opened: two first handshakes must not both run the pre-flight.
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Some(key)) = keys.get(i) {
            return Ok(Arc::clone(key));
        }
        let d = &self.described[i];
        let signing = self
            .source
            .signing_key(&d.candidate)
            .map_err(|e| format!("{}: {e}", self.what))?;
        let key = Arc::new(CertifiedKey::new(d.candidate.chain.clone(), signing));
        if let Some(slot) = keys.get_mut(i) {
            *slot = Some(Arc::clone(&key));
        }
        Ok(key)
    }
}

impl ResolvesClientCert for StoreResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut presented = self.presented.lock().unwrap_or_else(|p| p.into_inner());
        let chosen = choose::choose_keeping(
            &self.described,
            root_hint_subjects,
            sigschemes,
            SystemTime::now(),
            *presented,
        )
        .map_err(|why| format!("{}: {why}", self.what))
        .and_then(|i| self.key(i).map(|key| (i, key)));
        match chosen {
            Ok((i, key)) => {
                *presented = Some(i);
                let d = &self.described[i];
                log::debug!(
                    "{}: presenting {} ({})",
                    self.what,
                    d.info.subject,
                    d.candidate.selector
                );
                leave_note(HandshakeNote::Chose {
                    certificate: d.info.clone(),
                    selector: d.candidate.selector.clone(),
                });
                Some(key)
            }
            Err(why) => {
                leave_note(HandshakeNote::Declined(why));
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A resolver that presents nothing and remembers the CA names of the server's
/// CertificateRequest (`--list-identities <server-url>`).
#[derive(Debug, Default)]
pub struct CaNamesSeen(Mutex<Option<Vec<Vec<u8>>>>);

impl CaNamesSeen {
    /// The names the server sent; `None` if it asked for no certificate (so far).
    pub fn names(&self) -> Option<Vec<Vec<u8>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesClientCert for CaNamesSeen {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(root_hint_subjects.iter().map(|n| n.to_vec()).collect());
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rustls::crypto::ring::sign::any_supported_type;
    use rustls::sign::SigningKey;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::tls::store::Candidate;
    use crate::tls::TlsError;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    /// Two identities from two CAs, each with its own key file.
    struct TwoIdentities;

    impl IdentitySource for TwoIdentities {
        fn describe(&self) -> String {
            "two fixture identities".into()
        }
        fn candidates(&self) -> Result<Vec<Candidate>, TlsError> {
            Ok(["client-rsa", "rogue-client"]
                .into_iter()
                .map(|name| Candidate {
                    chain: CertificateDer::pem_file_iter(fixture(&format!("{name}.crt")))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap(),
                    selector: name.into(),
                    key_location: "a file".into(),
                })
                .collect())
        }
        fn signing_key(&self, candidate: &Candidate) -> Result<Arc<dyn SigningKey>, TlsError> {
            let key = PrivateKeyDer::from_pem_file(fixture(&format!("{}.key", candidate.selector)))
                .unwrap();
            Ok(any_supported_type(&key).unwrap())
        }
    }

    fn subject_of(ca: &str) -> Vec<u8> {
        use x509_cert::der::{Decode, Encode};
        let der = CertificateDer::from_pem_file(fixture(ca)).unwrap();
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        cert.tbs_certificate().subject().to_der().unwrap()
    }

    fn resolver() -> StoreResolver {
        let source = Arc::new(TwoIdentities);
        let described = source
            .candidates()
            .unwrap()
            .into_iter()
            .filter_map(Described::new)
            .collect();
        StoreResolver::new(source, "--tls-cert test".into(), described)
    }

    const SCHEMES: &[SignatureScheme] = &[
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::ECDSA_NISTP256_SHA256,
    ];

    /// The OAuth signing paths resolve with no CA names; they must get the certificate the last
    /// handshake presented, or a token bound at the token endpoint would not match it.
    #[test]
    fn asking_with_no_ca_names_gets_the_identity_the_last_handshake_presented() {
        let leaf = |k: Arc<CertifiedKey>| k.cert[0].clone();
        let unprompted = leaf(resolver().resolve(&[], SCHEMES).unwrap());
        // Whichever identity an unprompted choice makes, a server names the other one's CA.
        let rsa = CertificateDer::from_pem_file(fixture("client-rsa.crt")).unwrap();
        let (other_ca, other) = if unprompted == rsa {
            ("rogue-ca.crt", "rogue-client.crt")
        } else {
            ("ca.crt", "client-rsa.crt")
        };
        let other = CertificateDer::from_pem_file(fixture(other)).unwrap();
        let resolver = resolver();
        let name = subject_of(other_ca);
        assert_eq!(leaf(resolver.resolve(&[&name], SCHEMES).unwrap()), other);
        assert_eq!(leaf(resolver.resolve(&[], SCHEMES).unwrap()), other);
        let _ = take_handshake_note();
    }
}
