//! Server certificate verifiers: the normal one ([`ExplainingVerifier`], webpki with a clearer
//! error for weak server keys) and the `--tls-insecure-skip-verify` one, which accepts any
//! certificate chain and any name but still checks the handshake signatures, so the server must at
//! least hold the private key of the certificate it shows (that keeps the key exchange sound).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::Certificate;

/// The smallest RSA modulus ring verifies signatures with.
const MIN_RSA_BITS: usize = 2048;

/// The server signed the handshake with an RSA key too small to be verified (ring needs 2048 bits).
/// webpki reports that as a bad signature, which reads like an untrusted certificate; this says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeakServerKey {
    pub rsa_bits: usize,
}

impl fmt::Display for WeakServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's RSA key has {} bits, fewer than the {MIN_RSA_BITS} required",
            self.rsa_bits
        )
    }
}

impl std::error::Error for WeakServerKey {}

/// The modulus size of an RSA certificate key, `None` for other keys or unreadable certificates.
fn rsa_bits(cert: &CertificateDer<'_>) -> Option<usize> {
    const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    let cert = Certificate::from_der(cert.as_ref()).ok()?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return None;
    }
    let key = spki.subject_public_key.as_bytes()?;
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let mut reader = SliceReader::new(key).ok()?;
    let modulus = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            UintRef::decode(r)?;
            Ok::<_, x509_cert::der::Error>(n)
        })
        .ok()?;
    let bytes = modulus.as_bytes();
    let first = *bytes.first()?;
    Some(bytes.len() * 8 - first.leading_zeros() as usize)
}

/// A bad handshake signature from a key too weak to check becomes [`WeakServerKey`].
fn explain_signature_error(e: rustls::Error, cert: &CertificateDer<'_>) -> rustls::Error {
    match (&e, rsa_bits(cert)) {
        (rustls::Error::InvalidCertificate(CertificateError::BadSignature), Some(bits))
            if bits < MIN_RSA_BITS =>
        {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                WeakServerKey { rsa_bits: bits },
            ))))
        }
        _ => e,
    }
}

/// webpki's verification, unchanged except for the error of a weak server key.
#[derive(Debug)]
pub(crate) struct ExplainingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ExplainingVerifier {
    pub(crate) fn new(inner: Arc<WebPkiServerVerifier>) -> Self {
        Self { inner }
    }
}

impl ServerCertVerifier for ExplainingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, cert, dss)
            .map_err(|e| explain_signature_error(e, cert))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, cert, dss)
            .map_err(|e| explain_signature_error(e, cert))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// **Dangerous**: trusts every server certificate. Only for `--tls-insecure-skip-verify`.
#[derive(Debug)]
pub(crate) struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .map_err(|e| explain_signature_error(e, cert))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .map_err(|e| explain_signature_error(e, cert))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn cert(name: &str) -> CertificateDer<'static> {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        CertificateDer::from_pem_file(path).unwrap()
    }

    #[test]
    fn measures_rsa_keys_and_ignores_others() {
        assert_eq!(rsa_bits(&cert("server-rsa1024.crt")), Some(1024));
        assert_eq!(rsa_bits(&cert("ca.crt")), Some(2048));
        assert_eq!(rsa_bits(&cert("server.crt")), None);
    }

    #[test]
    fn a_bad_signature_from_a_weak_key_says_so() {
        let bad = || rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        let weak = explain_signature_error(bad(), &cert("server-rsa1024.crt"));
        let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = weak else {
            panic!("expected WeakServerKey, got {weak:?}");
        };
        assert_eq!(
            other.0.downcast_ref::<WeakServerKey>(),
            Some(&WeakServerKey { rsa_bits: 1024 })
        );
        // A strong key's bad signature stays what it is.
        let strong = explain_signature_error(bad(), &cert("ca.crt"));
        assert!(matches!(
            strong,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        ));
    }
}
