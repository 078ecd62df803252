//! Compact JWS (RFC 7515) signed by a key rustls already knows how to use: a PEM file key, the
//! TLS client key (file, PKCS#12 or a PKCS#11 token, where the key never leaves the token), or an
//! ephemeral key. One signing path for client assertions (RFC 7523) and DPoP proofs (RFC 9449),
//! a few dozen lines instead of a JWT crate with a crypto back end of its own.

use base64ct::{Base64UrlUnpadded, Encoding};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use serde_json::{json, Value};

/// The JWS `alg` for each rustls scheme this module signs with, in order of preference.
const SCHEMES: [(SignatureScheme, &str); 6] = [
    (SignatureScheme::ECDSA_NISTP256_SHA256, "ES256"),
    (SignatureScheme::ECDSA_NISTP384_SHA384, "ES384"),
    (SignatureScheme::ED25519, "EdDSA"),
    (SignatureScheme::RSA_PSS_SHA256, "PS256"),
    (SignatureScheme::RSA_PKCS1_SHA256, "RS256"),
    (SignatureScheme::ECDSA_NISTP521_SHA512, "ES512"),
];

/// A key ready to sign JWS: the rustls signer and its `alg`.
pub struct JwsKey {
    signer: Box<dyn Signer>,
    alg: &'static str,
}

impl JwsKey {
    /// The signer of `key` for the first `alg` it supports among `allowed` (all when empty), in
    /// this module's order of preference; an error names what the key and the server offer.
    pub fn new(key: &dyn SigningKey, allowed: &[String]) -> Result<JwsKey, String> {
        let wanted: Vec<(SignatureScheme, &'static str)> = SCHEMES
            .into_iter()
            .filter(|(_, alg)| allowed.is_empty() || allowed.iter().any(|a| a == alg))
            .collect();
        let offered: Vec<SignatureScheme> = wanted.iter().map(|(s, _)| *s).collect();
        let signer = key.choose_scheme(&offered).ok_or_else(|| {
            format!(
                "the {} key cannot sign with any algorithm the authorization server accepts ({})",
                algorithm_name(key.algorithm()),
                if allowed.is_empty() {
                    "none known".to_string()
                } else {
                    allowed.join(", ")
                }
            )
        })?;
        let scheme = signer.scheme();
        let alg = wanted
            .iter()
            .find(|(s, _)| *s == scheme)
            .map(|(_, a)| *a)
            .ok_or("the key chose a signature scheme that was not offered")?;
        Ok(JwsKey { signer, alg })
    }

    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// `header.claims.signature`, with `alg` added to `header`.
    pub fn sign(&self, mut header: Value, claims: &Value) -> Result<String, String> {
        header["alg"] = json!(self.alg);
        let input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let signature = self
            .signer
            .sign(input.as_bytes())
            .map_err(|e| format!("signing the JWT failed: {e}"))?;
        let signature = match self.alg {
            "ES256" => ecdsa_der_to_raw(&signature, 32)?,
            "ES384" => ecdsa_der_to_raw(&signature, 48)?,
            "ES512" => ecdsa_der_to_raw(&signature, 66)?,
            _ => signature,
        };
        Ok(format!(
            "{input}.{}",
            Base64UrlUnpadded::encode_string(&signature)
        ))
    }
}

fn algorithm_name(a: SignatureAlgorithm) -> &'static str {
    match a {
        SignatureAlgorithm::RSA => "RSA",
        SignatureAlgorithm::ECDSA => "ECDSA",
        SignatureAlgorithm::ED25519 => "Ed25519",
        _ => "client",
    }
}

/// An ECDSA signature as JWS wants it (RFC 7518 §3.4): `r ‖ s`, each left-padded to `size`
/// bytes, from the DER `SEQUENCE { INTEGER r, INTEGER s }` that signers return.
pub fn ecdsa_der_to_raw(der: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let bad = || "the key returned a malformed ECDSA signature".to_string();
    let (body, rest) = der_item(der, 0x30).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let (r, body) = der_item(body, 0x02).ok_or_else(bad)?;
    let (s, body) = der_item(body, 0x02).ok_or_else(bad)?;
    if !body.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(2 * size);
    for int in [r, s] {
        let int = match int.iter().position(|b| *b != 0) {
            Some(first) => &int[first..],
            None => &[][..],
        };
        if int.len() > size {
            return Err(bad());
        }
        out.extend(std::iter::repeat_n(0u8, size - int.len()));
        out.extend_from_slice(int);
    }
    Ok(out)
}

/// One DER item of `tag`: its contents and what follows it.
pub(crate) fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, KeyPair};
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    fn p256() -> (Vec<u8>, std::sync::Arc<dyn SigningKey>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .unwrap_or_else(|e| panic!("{e}"));
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let public = pair.public_key().as_ref().to_vec();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
        let key =
            rustls::crypto::ring::sign::any_supported_type(&der).unwrap_or_else(|e| panic!("{e}"));
        (public, key)
    }

    #[test]
    fn an_es256_jws_verifies_with_the_public_key() {
        let (public, key) = p256();
        let jws = JwsKey::new(key.as_ref(), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jws.alg(), "ES256");
        let token = jws
            .sign(json!({"typ": "JWT"}), &json!({"iss": "me"}))
            .unwrap_or_else(|e| panic!("{e}"));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(parts[0]).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(header["alg"], "ES256");
        let sig = Base64UrlUnpadded::decode_vec(parts[2]).unwrap_or_default();
        assert_eq!(sig.len(), 64);
        let verifier =
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &public);
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(verifier.verify(input.as_bytes(), &sig).is_ok());
    }

    #[test]
    fn a_key_the_server_does_not_accept_is_refused_by_name() {
        let (_, key) = p256();
        let err = JwsKey::new(key.as_ref(), &["RS256".to_string()]).err();
        assert!(err.is_some_and(|e| e.contains("ECDSA") && e.contains("RS256")));
    }

    #[test]
    fn der_signatures_become_fixed_width_and_bad_ones_are_refused() {
        // r = 0x00ff (a sign byte), s = 0x01
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01];
        let raw = ecdsa_der_to_raw(&der, 4).unwrap_or_default();
        assert_eq!(raw, vec![0, 0, 0, 0xff, 0, 0, 0, 1]);
        assert!(ecdsa_der_to_raw(&der[..5], 4).is_err());
        assert!(ecdsa_der_to_raw(&[0x31, 0x00], 4).is_err());
    }
}
