//! `--tls-pin`: accept the server only if a certificate it sends has a pinned key.
//!
//! A pin is the SHA-256 of a certificate's DER SubjectPublicKeyInfo, base64 (curl's
//! `--pinnedpubkey sha256//…`). The pin is checked after the usual verification, never instead
//! of it (with `--tls-insecure-skip-verify` it is the only check), against the verified chain:
//! the server's certificate, the intermediates it sends, and the trust anchor that issued the
//! last of them (servers do not send their root), so that a pin may name the server's own key or
//! one of its CAs'.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::hash::HashAlgorithm;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::config::SpkiPin;

/// The server's chain matched no pin. Display and the diagnosis name what it did present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// The keys of the certificates the server sent, leaf first.
    pub seen: Vec<SpkiPin>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no certificate of the server's chain has a pinned key (it has "
        )?;
        write_seen(f, &self.seen)?;
        f.write_str(")")
    }
}

impl std::error::Error for PinMismatch {}

impl PinMismatch {
    /// "sha256//… (server certificate), sha256//… (intermediate 1)"
    pub fn seen_list(&self) -> String {
        struct Seen<'a>(&'a [SpkiPin]);
        impl fmt::Display for Seen<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_seen(f, self.0)
            }
        }
        Seen(&self.seen).to_string()
    }
}

fn write_seen(f: &mut fmt::Formatter<'_>, seen: &[SpkiPin]) -> fmt::Result {
    for (i, pin) in seen.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match i {
            0 => write!(f, "{pin} (server certificate)")?,
            n => write!(f, "{pin} (intermediate {n})")?,
        }
    }
    Ok(())
}

/// The SPKI pin of a DER certificate; `None` when it cannot be read.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Option<SpkiPin> {
    let cert = Certificate::from_der(cert.as_ref()).ok()?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()?;
    sha256(&spki).map(SpkiPin)
}

/// SHA-256 with the hash rustls already carries (no hashing crate of our own).
fn sha256(data: &[u8]) -> Option<[u8; 32]> {
    super::crypto_provider()
        .cipher_suites
        .iter()
        .filter_map(|suite| suite.tls13())
        .map(|suite| suite.common.hash_provider)
        .find(|hash| hash.algorithm() == HashAlgorithm::SHA256)
        .and_then(|hash| hash.hash(data).as_ref().try_into().ok())
}

/// A trust anchor: its subject (a DER Name) and its key's pin.
pub(crate) type Anchor = (Vec<u8>, SpkiPin);

/// The anchors of `roots`, for pins on a root CA.
pub(crate) fn anchors(roots: &rustls::RootCertStore) -> Vec<Anchor> {
    roots
        .roots
        .iter()
        .filter_map(|anchor| {
            // Trust anchors keep the contents of these SEQUENCEs, without their tag and length.
            let subject = sequence(anchor.subject.as_ref());
            let spki = sequence(anchor.subject_public_key_info.as_ref());
            Some((subject, SpkiPin(sha256(&spki)?)))
        })
        .collect()
}

/// `content` wrapped as a DER SEQUENCE.
fn sequence(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The DER issuer Name of a certificate.
fn issuer(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let cert = Certificate::from_der(cert.as_ref()).ok()?;
    cert.tbs_certificate().issuer().to_der().ok()
}

/// Wrap `inner` so that a verified chain must also match one of `pins`.
pub(crate) fn wrap(
    inner: Arc<dyn ServerCertVerifier>,
    pins: &[SpkiPin],
    anchors: Vec<Anchor>,
) -> Arc<dyn ServerCertVerifier> {
    if pins.is_empty() {
        return inner;
    }
    Arc::new(PinningVerifier {
        inner,
        pins: pins.to_vec(),
        anchors,
    })
}

#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pins: Vec<SpkiPin>,
    anchors: Vec<Anchor>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let sent: Vec<SpkiPin> = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(spki_pin)
            .collect();
        // The anchor the chain ends at: the one named as the last certificate's issuer.
        let top_issuer = intermediates
            .last()
            .map_or_else(|| issuer(end_entity), issuer);
        let anchor = top_issuer.and_then(|name| {
            self.anchors
                .iter()
                .filter(|(subject, _)| *subject == name)
                .map(|(_, pin)| *pin)
                .find(|pin| self.pins.contains(pin))
        });
        if anchor.is_some() || sent.iter().any(|key| self.pins.contains(key)) {
            return Ok(verified);
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch { seen: sent })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_sha256() {
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        let digest = sha256(b"abc").unwrap();
        assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(digest[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn pins_read_in_curls_form_and_print_back() {
        let pin = SpkiPin::parse("sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=").unwrap();
        assert_eq!(
            pin.to_string(),
            "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE="
        );
        assert_eq!(
            SpkiPin::parse("sha256/YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=").unwrap(),
            pin
        );
        assert!(SpkiPin::parse("md5//abc").is_err());
        assert!(SpkiPin::parse("sha256//not base64!").is_err());
        assert!(SpkiPin::parse("sha256//YWJj").is_err()); // 3 bytes
    }
}
