//! DPoP (RFC 9449): a proof of possession on every request that uses a DPoP-bound token. The
//! proof key is the TLS client key (which may sign on a token), or a P-256 key made for this
//! process (ring) that never leaves memory (`--oauth-dpop-key`). A proof names
//! the method and URL it is for (`htm`, `htu`: no query, no fragment), is fresh each time (`jti`),
//! binds the access token (`ath`) on resource requests, and carries the last nonce a server gave.

use std::sync::{Arc, Mutex};

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::sign::SigningKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

use super::jws::JwsKey;
use super::pkce;
use super::tokens::now;
use crate::sync::lock;

/// The one DPoP key of this process, and the nonces servers handed out.
pub struct Dpop {
    key: Arc<dyn SigningKey>,
    jwk: Value,
    /// The proof algorithms the authorization server accepts (empty: ES256 only).
    algs: Vec<String>,
    /// The key is the TLS client key, which every bridge process holds: tokens bound to it can
    /// be shared through the store. An ephemeral key's tokens stay in this process.
    pub shared: bool,
    /// The authorization server's and the resource server's last `DPoP-Nonce`.
    nonces: Mutex<Nonces>,
}

#[derive(Default, Clone)]
struct Nonces {
    auth_server: Option<String>,
    resource: Option<String>,
}

/// Which server a nonce came from (each keeps its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    AuthServer,
    Resource,
}

impl Dpop {
    /// A fresh P-256 key.
    pub fn generate() -> Result<Dpop, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "cannot make a DPoP key".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "cannot read the DPoP key".to_string())?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err("unexpected DPoP public key".into());
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": Base64UrlUnpadded::encode_string(&point[1..33]),
            "y": Base64UrlUnpadded::encode_string(&point[33..65]),
        });
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
        let key = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| format!("cannot use the DPoP key: {e}"))?;
        Ok(Dpop {
            key,
            jwk,
            algs: vec!["ES256".into()],
            shared: false,
            nonces: Mutex::new(Nonces::default()),
        })
    }

    /// The TLS client key as the proof key (its public half from the certificate), signing
    /// with one of `algs` (the authorization server's `dpop_signing_alg_values_supported`).
    pub fn from_certified(
        certified: &rustls::sign::CertifiedKey,
        algs: &[String],
    ) -> Result<Dpop, String> {
        let leaf = certified
            .cert
            .first()
            .ok_or("the client certificate is missing")?;
        let jwk = jwk_of_certificate(leaf)?;
        // Fails early when the key cannot sign with any accepted algorithm.
        JwsKey::new(certified.key.as_ref(), algs)?;
        Ok(Dpop {
            key: Arc::clone(&certified.key),
            jwk,
            algs: algs.to_vec(),
            shared: true,
            nonces: Mutex::new(Nonces::default()),
        })
    }

    /// The same proof key after a TLS certificate renewal: None when the key did not change,
    /// else the renewed key for the same algorithms (the servers' nonces carry over).
    pub fn for_certificate(
        &self,
        certified: &rustls::sign::CertifiedKey,
    ) -> Result<Option<Dpop>, String> {
        let leaf = certified
            .cert
            .first()
            .ok_or("the client certificate is missing")?;
        if jwk_of_certificate(leaf)? == self.jwk {
            return Ok(None);
        }
        let renewed = Dpop::from_certified(certified, &self.algs)?;
        *lock(&renewed.nonces) = lock(&self.nonces).clone();
        Ok(Some(renewed))
    }

    /// A proof for `method` `url`; `access_token` binds it to a token (resource requests).
    pub fn proof(
        &self,
        side: Side,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let jws = JwsKey::new(self.key.as_ref(), &self.algs)?;
        let mut claims = json!({
            "jti": pkce::random_token(16)?,
            "htm": method,
            "htu": htu(url),
            "iat": now(),
        });
        if let Some(token) = access_token {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            claims["ath"] = json!(Base64UrlUnpadded::encode_string(digest.as_ref()));
        }
        if let Some(nonce) = self.nonce(side) {
            claims["nonce"] = json!(nonce);
        }
        jws.sign(json!({"typ": "dpop+jwt", "jwk": self.jwk}), &claims)
    }

    /// Keep a server's `DPoP-Nonce` for the next proof to it.
    pub fn keep_nonce(&self, side: Side, nonce: &str) {
        let mut nonces = lock(&self.nonces);
        let slot = match side {
            Side::AuthServer => &mut nonces.auth_server,
            Side::Resource => &mut nonces.resource,
        };
        *slot = Some(nonce.to_string());
    }

    fn nonce(&self, side: Side) -> Option<String> {
        let nonces = lock(&self.nonces);
        match side {
            Side::AuthServer => nonces.auth_server.clone(),
            Side::Resource => nonces.resource.clone(),
        }
    }
}

/// The public JWK (RFC 7517) of a certificate's key: EC P-256/P-384 or RSA.
fn jwk_of_certificate(leaf: &rustls_pki_types::CertificateDer<'_>) -> Result<Value, String> {
    use crate::tls::KeyKind;
    let b64 = |b: &[u8]| Base64UrlUnpadded::encode_string(b);
    let (kind, public) = crate::tls::certificate_key(leaf)
        .map_err(|e| format!("the client certificate's key cannot prove possession: {e}"))?;
    match kind {
        KeyKind::EcP256 | KeyKind::EcP384 => {
            let (crv, size) = if kind == KeyKind::EcP256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            if public.len() != 1 + 2 * size || public[0] != 4 {
                return Err("the client certificate's EC point is not uncompressed".into());
            }
            Ok(
                json!({"kty": "EC", "crv": crv, "x": b64(&public[1..1 + size]), "y": b64(&public[1 + size..])}),
            )
        }
        KeyKind::Rsa { .. } => {
            let bad = || "the client certificate's RSA key cannot be read".to_string();
            let (body, _) = super::jws::der_item(&public, 0x30).ok_or_else(bad)?;
            let (n, rest) = super::jws::der_item(body, 0x02).ok_or_else(bad)?;
            let (e, _) = super::jws::der_item(rest, 0x02).ok_or_else(bad)?;
            let strip = |i: &[u8]| {
                let first = i.iter().position(|b| *b != 0).unwrap_or(i.len());
                i[first..].to_vec()
            };
            Ok(json!({"kty": "RSA", "n": b64(&strip(n)), "e": b64(&strip(e))}))
        }
    }
}

/// `htu`: the URL without its query and fragment (RFC 9449 §4.2).
fn htu(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap_or_default())
            .unwrap_or_default()
    }

    #[test]
    fn a_proof_names_method_url_token_and_nonce_and_is_fresh() {
        let dpop = Dpop::generate().unwrap_or_else(|e| panic!("{e}"));
        dpop.keep_nonce(Side::Resource, "n1");
        let a = dpop
            .proof(Side::Resource, "POST", "https://h/mcp?x=1#f", Some("tok"))
            .unwrap_or_default();
        let b = dpop
            .proof(Side::Resource, "POST", "https://h/mcp", Some("tok"))
            .unwrap_or_default();
        let parts: Vec<&str> = a.split('.').collect();
        let header = decode(parts[0]);
        let claims = decode(parts[1]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://h/mcp");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(
            claims["ath"],
            Base64UrlUnpadded::encode_string(
                ring::digest::digest(&ring::digest::SHA256, b"tok").as_ref()
            )
        );
        assert_ne!(
            claims["jti"],
            decode(b.split('.').nth(1).unwrap_or(""))
                .get("jti")
                .cloned()
                .unwrap_or_default()
        );
        let to_as = dpop
            .proof(Side::AuthServer, "POST", "https://as/token", None)
            .unwrap_or_default();
        let claims = decode(to_as.split('.').nth(1).unwrap_or(""));
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
    }
}
