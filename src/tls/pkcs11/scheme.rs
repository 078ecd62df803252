//! The TLS signature schemes a token key can make, and how each one is done on a token: the
//! message is hashed here (every token can sign a digest; not every token hashes), then signed with
//! the raw mechanism (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`).

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::types::Ulong;
use ring::digest;
use rustls::SignatureScheme;

use super::KeyKind;

/// The token mechanism behind a scheme: the PKCS#11 names, for the report and the mechanism check.
pub fn mechanism_type(scheme: SignatureScheme) -> MechanismType {
    match scheme {
        SignatureScheme::RSA_PSS_SHA256
        | SignatureScheme::RSA_PSS_SHA384
        | SignatureScheme::RSA_PSS_SHA512 => MechanismType::RSA_PKCS_PSS,
        SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384 => {
            MechanismType::ECDSA
        }
        _ => MechanismType::RSA_PKCS,
    }
}

/// `CKM_RSA_PKCS_PSS (SHA-256)`-style name of how a scheme is signed on the token.
pub fn mechanism_name(scheme: SignatureScheme) -> String {
    let hash = match hash_of(scheme) {
        Some(h) if h == &digest::SHA512 => "SHA-512",
        Some(h) if h == &digest::SHA384 => "SHA-384",
        _ => "SHA-256",
    };
    let mechanism = match mechanism_type(scheme) {
        m if m == MechanismType::RSA_PKCS_PSS => "CKM_RSA_PKCS_PSS",
        m if m == MechanismType::ECDSA => "CKM_ECDSA",
        _ => "CKM_RSA_PKCS",
    };
    format!("{} via {mechanism} over {hash}", scheme_name(scheme))
}

/// rustls' name of a scheme without the debug formatting of its enum (`RSA_PSS_SHA256`).
pub fn scheme_name(scheme: SignatureScheme) -> &'static str {
    match scheme {
        SignatureScheme::RSA_PSS_SHA512 => "rsa_pss_rsae_sha512",
        SignatureScheme::RSA_PSS_SHA384 => "rsa_pss_rsae_sha384",
        SignatureScheme::RSA_PSS_SHA256 => "rsa_pss_rsae_sha256",
        SignatureScheme::RSA_PKCS1_SHA512 => "rsa_pkcs1_sha512",
        SignatureScheme::RSA_PKCS1_SHA384 => "rsa_pkcs1_sha384",
        SignatureScheme::RSA_PKCS1_SHA256 => "rsa_pkcs1_sha256",
        SignatureScheme::ECDSA_NISTP256_SHA256 => "ecdsa_secp256r1_sha256",
        SignatureScheme::ECDSA_NISTP384_SHA384 => "ecdsa_secp384r1_sha384",
        _ => "other",
    }
}

fn hash_of(scheme: SignatureScheme) -> Option<&'static digest::Algorithm> {
    match scheme {
        SignatureScheme::RSA_PSS_SHA256
        | SignatureScheme::RSA_PKCS1_SHA256
        | SignatureScheme::ECDSA_NISTP256_SHA256 => Some(&digest::SHA256),
        SignatureScheme::RSA_PSS_SHA384
        | SignatureScheme::RSA_PKCS1_SHA384
        | SignatureScheme::ECDSA_NISTP384_SHA384 => Some(&digest::SHA384),
        SignatureScheme::RSA_PSS_SHA512 | SignatureScheme::RSA_PKCS1_SHA512 => {
            Some(&digest::SHA512)
        }
        _ => None,
    }
}

/// The DER DigestInfo prefix (RFC 8017 §9.2 note 1) PKCS#1 v1.5 puts before the digest.
fn digest_info_prefix(scheme: SignatureScheme) -> &'static [u8] {
    match scheme {
        SignatureScheme::RSA_PKCS1_SHA384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        SignatureScheme::RSA_PKCS1_SHA512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
    }
}

/// The mechanism and the data to hand `C_Sign` for `message` under `scheme`.
pub fn prepare(scheme: SignatureScheme, message: &[u8]) -> Option<(Mechanism<'static>, Vec<u8>)> {
    let hash = hash_of(scheme)?;
    let digest = digest::digest(hash, message);
    let digest = digest.as_ref();
    let (hash_mechanism, mgf) = match hash.output_len() {
        48 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        64 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        _ => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    };
    match mechanism_type(scheme) {
        m if m == MechanismType::RSA_PKCS_PSS => {
            let params = PkcsPssParams {
                hash_alg: hash_mechanism,
                mgf,
                // TLS wants the salt as long as the digest (RFC 8446 §4.2.3).
                s_len: Ulong::try_from(digest.len()).ok()?,
            };
            Some((Mechanism::RsaPkcsPss(params), digest.to_vec()))
        }
        m if m == MechanismType::ECDSA => Some((Mechanism::Ecdsa, digest.to_vec())),
        _ => {
            let mut data = digest_info_prefix(scheme).to_vec();
            data.extend_from_slice(digest);
            Some((Mechanism::RsaPkcs, data))
        }
    }
}

/// What the token returned, as TLS wants it: ECDSA `r || s` becomes a DER `Ecdsa-Sig-Value`.
pub fn finish(kind: KeyKind, signature: Vec<u8>) -> Option<Vec<u8>> {
    match kind {
        KeyKind::Rsa { .. } => Some(signature),
        KeyKind::EcP256 | KeyKind::EcP384 => {
            let n = field_len(kind);
            if signature.len() != 2 * n {
                return None;
            }
            let (r, s) = signature.split_at(n);
            let r = der_integer(r);
            let s = der_integer(s);
            let mut out = vec![0x30];
            push_len(&mut out, r.len() + s.len());
            out.extend(r);
            out.extend(s);
            Some(out)
        }
    }
}

/// The bytes of one coordinate (ECDSA signatures from tokens are `r || s`).
fn field_len(kind: KeyKind) -> usize {
    match kind {
        KeyKind::EcP256 => 32,
        KeyKind::EcP384 => 48,
        KeyKind::Rsa { .. } => 0,
    }
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let trimmed = &bytes[start..];
    let pad = trimmed[0] & 0x80 != 0;
    let mut out = vec![0x02];
    push_len(&mut out, trimmed.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x81);
        out.push(len as u8);
    }
}

/// ring's verifier for a scheme: the pre-flight checks each test signature with the certificate's
/// public key, which proves the key pair and the mechanism at once.
pub fn verifier(
    scheme: SignatureScheme,
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as sig;
    Some(match scheme {
        SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
        SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        SignatureScheme::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_raw_signatures_become_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[63] = 1; // s is 1 after trimming
        let der = finish(KeyKind::EcP256, raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x21, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
        assert!(finish(KeyKind::EcP256, vec![0; 63]).is_none());
    }

    #[test]
    fn pkcs1_data_is_digest_info() {
        let (mechanism, data) = prepare(SignatureScheme::RSA_PKCS1_SHA256, b"m").unwrap();
        assert_eq!(mechanism.mechanism_type(), MechanismType::RSA_PKCS);
        assert_eq!(data.len(), 19 + 32);
        let (_, data) = prepare(SignatureScheme::RSA_PSS_SHA384, b"m").unwrap();
        assert_eq!(data.len(), 48);
    }
}
