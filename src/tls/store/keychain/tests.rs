//! The Keychain source against a temporary keychain the test creates and fills from the fixtures'
//! PKCS#12 bundle. Runs on macOS only (the release workflow's macOS job); here it is compiled and
//! linted with cargo-zigbuild, never run.

use std::path::PathBuf;

use ring::signature::{self as sig, UnparsedPublicKey};
use rustls::SignatureScheme;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use security_framework::import_export::Pkcs12ImportOptions;
use security_framework::os::macos::keychain::CreateOptions;

use super::*;

const CLIENT_P12: &[u8] = include_bytes!("../../../../fixtures/client.p12");
const CLIENT_RSA: &str = include_str!("../../../../fixtures/client-rsa.crt");
/// `openssl x509 -noout -fingerprint -sha1 -in fixtures/client-rsa.crt`, without the colons.
const RSA_THUMBPRINT: &str = "A748F56D0FB487C7EF88DDC5C9A77FA3C0F653F1";

/// A keychain file of its own, deleted on drop.
struct TempKeychain {
    path: PathBuf,
    keychain: SecKeychain,
}

impl Drop for TempKeychain {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn filled_keychain(name: &str) -> TempKeychain {
    let path = std::env::temp_dir().join(format!(
        "mcp-secure-remote-{name}-{}.keychain",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let keychain = CreateOptions::new()
        .password("test-keychain")
        .create(&path)
        .unwrap();
    Pkcs12ImportOptions::new()
        .passphrase("fixture-pass")
        .keychain(keychain.clone())
        .import(CLIENT_P12)
        .unwrap();
    TempKeychain { path, keychain }
}

#[test]
fn lists_the_identity_of_a_keychain_with_its_thumbprint_selector() {
    let temp = filled_keychain("list");
    let source = KeychainSource::new("login", "login", Some(temp.keychain.clone()));
    let candidates = source.candidates().unwrap();
    assert_eq!(candidates.len(), 1, "the CA certificate has no key");
    let leaf = CertificateDer::from_pem_slice(CLIENT_RSA.as_bytes()).unwrap();
    assert_eq!(candidates[0].chain[0], leaf);
    assert_eq!(
        candidates[0].selector,
        format!("keychain:login;sha1={RSA_THUMBPRINT}")
    );
    assert_eq!(candidates[0].key_location, "macOS Keychain (software key)");
}

#[test]
fn signs_in_the_keychain_pss_and_pkcs1_verified_by_ring() {
    let temp = filled_keychain("sign");
    let source = KeychainSource::new("login", "login", Some(temp.keychain.clone()));
    let candidates = source.candidates().unwrap();
    let signing = source.signing_key(&candidates[0]).unwrap();
    let (_, public_key) = certificate_key(&candidates[0].chain[0]).unwrap();
    let message = b"the handshake transcript signed inside the Keychain";
    for (scheme, verifier) in [
        (
            SignatureScheme::RSA_PSS_SHA256,
            &sig::RSA_PSS_2048_8192_SHA256 as &dyn sig::VerificationAlgorithm,
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &sig::RSA_PKCS1_2048_8192_SHA256,
        ),
    ] {
        let signer = signing.choose_scheme(&[scheme]).unwrap();
        let signature = signer.sign(message).unwrap();
        UnparsedPublicKey::new(verifier, &public_key)
            .verify(message, &signature)
            .unwrap_or_else(|_| panic!("{scheme:?}: the Keychain signature does not verify"));
    }
    assert!(signing
        .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
        .is_none());
}

#[test]
fn refuses_an_unknown_keychain_name() {
    let message = open("icloud").err().unwrap().to_string();
    assert_eq!(
        message,
        "keychain:icloud: unknown keychain: use keychain:login (the user's keychains) or \
         keychain:system (the System keychain)"
    );
}
