//! The random values of an authorization request: the PKCE verifier and its S256 challenge
//! (RFC 7636), and `state`. From the operating system's generator, through ring (already linked
//! for TLS).

use base64ct::{Base64UrlUnpadded, Encoding};
use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the operating system's random generator failed".to_string())?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}

/// A PKCE verifier: 32 random bytes give 43 characters, the minimum RFC 7636 allows.
pub fn verifier() -> Result<String, String> {
    random_token(32)
}

/// The S256 challenge of a verifier: base64url(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    Base64UrlUnpadded::encode_string(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_43_url_safe_characters_and_differ() {
        let a = verifier().unwrap_or_default();
        let b = verifier().unwrap_or_default();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }
}
