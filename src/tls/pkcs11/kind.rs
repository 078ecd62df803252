//! What kind of key a certificate holds (RSA and its size, the ECDSA curve), read from its
//! SubjectPublicKeyInfo: the token key must be of that kind, and the test client reports it.

use rustls::SignatureScheme;
use rustls_pki_types::CertificateDer;
use x509_cert::der::Decode;

/// What the certificate says the key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

impl KeyKind {
    /// `RSA 2048`, `ECDSA P-256`: for the test client's report.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { bits } => format!("RSA {bits}"),
            Self::EcP256 => "ECDSA P-256".to_string(),
            Self::EcP384 => "ECDSA P-384".to_string(),
        }
    }

    /// Every scheme rustls may ask for with this kind of key, strongest first within a family.
    pub fn candidate_schemes(&self) -> &'static [SignatureScheme] {
        match self {
            Self::Rsa { .. } => &[
                SignatureScheme::RSA_PSS_SHA512,
                SignatureScheme::RSA_PSS_SHA384,
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::RSA_PKCS1_SHA512,
                SignatureScheme::RSA_PKCS1_SHA384,
                SignatureScheme::RSA_PKCS1_SHA256,
            ],
            // TLS 1.3 ties each curve to one hash; offering only that pair keeps 1.2 and 1.3 alike.
            Self::EcP256 => &[SignatureScheme::ECDSA_NISTP256_SHA256],
            Self::EcP384 => &[SignatureScheme::ECDSA_NISTP384_SHA384],
        }
    }

    pub fn algorithm(&self) -> rustls::SignatureAlgorithm {
        match self {
            Self::Rsa { .. } => rustls::SignatureAlgorithm::RSA,
            Self::EcP256 | Self::EcP384 => rustls::SignatureAlgorithm::ECDSA,
        }
    }
}

/// The key kind and the public key (the SPKI's bit string: RSAPublicKey DER or the EC point).
pub(crate) fn certificate_key(leaf: &CertificateDer<'_>) -> Result<(KeyKind, Vec<u8>), String> {
    const RSA: &str = "1.2.840.113549.1.1.1";
    const EC: &str = "1.2.840.10045.2.1";
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    let cert = x509_cert::Certificate::from_der(leaf)
        .map_err(|e| format!("its certificate cannot be parsed: {e}"))?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let public_key = spki.subject_public_key.raw_bytes().to_vec();
    let algorithm = spki.algorithm.oid.to_string();
    let kind = match algorithm.as_str() {
        RSA => KeyKind::Rsa {
            bits: rsa_modulus_bits(&public_key).ok_or("its RSA public key cannot be read")?,
        },
        EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
                .map(|oid| oid.to_string())
                .unwrap_or_default();
            match curve.as_str() {
                P256 => KeyKind::EcP256,
                P384 => KeyKind::EcP384,
                other => return Err(format!("EC curve {other} is not supported")),
            }
        }
        "1.3.101.112" => return Err("Ed25519 keys on tokens are not supported".to_string()),
        other => return Err(format!("key algorithm {other} is not supported")),
    };
    Ok((kind, public_key))
}

/// The modulus size of a DER RSAPublicKey (`SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    fn header(bytes: &[u8], tag: u8) -> Option<(usize, &[u8])> {
        let (&first, rest) = bytes.split_first()?;
        if first != tag {
            return None;
        }
        let (&len, rest) = rest.split_first()?;
        if len < 0x80 {
            return Some((usize::from(len), rest));
        }
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let value = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        Some((value, &rest[count..]))
    }
    let (_, body) = header(der, 0x30)?;
    let (len, body) = header(body, 0x02)?;
    let modulus = body.get(..len)?;
    let start = modulus.iter().position(|b| *b != 0)?;
    let significant = &modulus[start..];
    Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn rsa_modulus_size_from_the_fixture_certificate() {
        let pem = include_str!("../../../fixtures/client-rsa.crt");
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (kind, _) = certificate_key(&cert).unwrap();
        assert_eq!(kind, KeyKind::Rsa { bits: 2048 });
        let pem = include_str!("../../../fixtures/client-ec384.crt");
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(certificate_key(&cert).unwrap().0, KeyKind::EcP384);
    }
}
