//! DPoP (RFC 9449): a proof of possession on every request that uses a DPoP-bound token. The
//! proof key is a P-256 key made for this process (ring); it never leaves memory. A proof names
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
    /// The authorization server's and the resource server's last `DPoP-Nonce`.
    nonces: Mutex<Nonces>,
}

#[derive(Default)]
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
            nonces: Mutex::new(Nonces::default()),
        })
    }

    /// A proof for `method` `url`; `access_token` binds it to a token (resource requests).
    pub fn proof(
        &self,
        side: Side,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let jws = JwsKey::new(self.key.as_ref(), &["ES256".to_string()])?;
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
        assert_ne!(claims["jti"], decode(b.split('.').nth(1).unwrap_or("")).get("jti").cloned().unwrap_or_default());
        let to_as = dpop
            .proof(Side::AuthServer, "POST", "https://as/token", None)
            .unwrap_or_default();
        let claims = decode(to_as.split('.').nth(1).unwrap_or(""));
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
    }
}
