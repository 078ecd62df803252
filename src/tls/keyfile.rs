//! Loading the private key of `--tls-key`: plain PEM (PKCS#1, PKCS#8, SEC1), encrypted PKCS#8
//! (`BEGIN ENCRYPTED PRIVATE KEY`) and legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`).
//!
//! Encrypted forms are detected before handing the file to `rustls-pki-types`, whose parser would
//! skip an encrypted PKCS#8 section silently ("no key") and fail on a legacy one with a base64 error.

use std::path::Path;

use pkcs8::EncryptedPrivateKeyInfoRef;
use rustls_pki_types::pem::{self as pki_pem, PemObject};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use super::legacy_pem::{self, LegacyPemError};
use super::pem::{self, PemBlock};
use super::{input, TlsError};
use crate::config::Secret;

const ENCRYPTED_PKCS8_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Reads and, if needed, decrypts the key file given with `flag`.
pub(crate) fn load(
    flag: &'static str,
    path: &Path,
    passphrase: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    // A plain key file's bytes are the key: wiped once parsed.
    let bytes = zeroize::Zeroizing::new(input::read(flag, path)?);
    parse(flag, path, &bytes, passphrase)
}

/// Parses key file contents; `flag` and `path` only label errors.
pub(crate) fn parse(
    flag: &'static str,
    path: &Path,
    bytes: &[u8],
    passphrase: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = String::from_utf8_lossy(bytes);
    // Any RFC 1421 header means a legacy (`Proc-Type: 4,ENCRYPTED`) key: pki-types cannot read those.
    let looks_encrypted = text.contains(&format!("-----BEGIN {ENCRYPTED_PKCS8_LABEL}-----"))
        || text.contains("Proc-Type:");
    if !looks_encrypted {
        return parse_plain(flag, path, bytes);
    }

    let bad_pem = |detail: String| TlsError::BadPem {
        flag,
        path: path.to_path_buf(),
        detail,
    };
    let blocks = pem::blocks(&text).map_err(bad_pem)?;
    let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        return Err(TlsError::NoPrivateKey {
            flag,
            path: path.to_path_buf(),
        });
    };
    let is_encrypted = block.label == ENCRYPTED_PKCS8_LABEL
        || block
            .header("Proc-Type")
            .is_some_and(|v| v.contains("ENCRYPTED"));
    if !is_encrypted {
        return parse_plain(flag, path, bytes);
    }
    let Some(passphrase) = passphrase else {
        return Err(TlsError::PassphraseRequired {
            flag,
            path: path.to_path_buf(),
        });
    };
    let der = block.decode().map_err(bad_pem)?;
    if block.label == ENCRYPTED_PKCS8_LABEL {
        decrypt_pkcs8(flag, path, &der, passphrase)
    } else {
        decrypt_legacy(flag, path, block, &der, passphrase)
    }
}

fn parse_plain(
    flag: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| match e {
        pki_pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            flag,
            path: path.to_path_buf(),
        },
        other => TlsError::BadPem {
            flag,
            path: path.to_path_buf(),
            detail: describe_pem_error(&other),
        },
    })
}

fn decrypt_pkcs8(
    flag: &'static str,
    path: &Path,
    der: &[u8],
    passphrase: &Secret,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let unsupported = |scheme: String| TlsError::UnsupportedKeyEncryption {
        flag,
        path: path.to_path_buf(),
        scheme,
    };
    // The pkcs8 crate only decodes PBES2 and PKCS#5 v1.5 algorithm identifiers: an older PKCS#12
    // PBE (`-v1 PBE-SHA1-3DES`) fails already here.
    let info = EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| {
        unsupported(
            pkcs12_pbe_name(der)
                .map(|name| format!("PKCS#12 password-based encryption {name}"))
                .unwrap_or_else(|| format!("not PBES2: {e}")),
        )
    })?;
    match info.decrypt(passphrase.expose()) {
        Ok(document) => Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            document.as_bytes().to_vec(),
        ))),
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::DecryptFailed))
        // The plaintext decrypted with valid padding but is not DER: a wrong passphrase.
        | Err(pkcs8::Error::Asn1(_)) => Err(TlsError::WrongPassphrase {
            flag,
            path: path.to_path_buf(),
        }),
        Err(other) => Err(unsupported(other.to_string())),
    }
}

fn decrypt_legacy(
    flag: &'static str,
    path: &Path,
    block: &PemBlock<'_>,
    der: &[u8],
    passphrase: &Secret,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let dek_info = block.header("DEK-Info").unwrap_or_default();
    let plain = legacy_pem::decrypt(dek_info, der, passphrase.expose().as_bytes()).map_err(
        |e| match e {
            LegacyPemError::DecryptFailed => TlsError::WrongPassphrase {
                flag,
                path: path.to_path_buf(),
            },
            LegacyPemError::UnsupportedCipher(cipher) => TlsError::UnsupportedKeyEncryption {
                flag,
                path: path.to_path_buf(),
                scheme: format!("legacy PEM encryption {cipher}"),
            },
            LegacyPemError::BadDekInfo(value) => TlsError::BadPem {
                flag,
                path: path.to_path_buf(),
                detail: format!("bad DEK-Info header '{value}'"),
            },
        },
    )?;
    match block.label {
        "RSA PRIVATE KEY" => Ok(PrivatePkcs1KeyDer::from(plain).into()),
        "EC PRIVATE KEY" => Ok(PrivateSec1KeyDer::from(plain).into()),
        "PRIVATE KEY" => Ok(PrivatePkcs8KeyDer::from(plain).into()),
        other => Err(TlsError::MalformedKey {
            flag,
            path: path.to_path_buf(),
            detail: format!("'{other}' keys are not supported"),
        }),
    }
}

/// The name of the PKCS#12 PBE algorithm (`openssl pkcs8 -v1 PBE-SHA1-3DES` and friends) that
/// encrypts an `EncryptedPrivateKeyInfo`, found by its OID (1.2.840.113549.1.12.1.n) near the start.
fn pkcs12_pbe_name(der: &[u8]) -> Option<&'static str> {
    const PKCS12_PBE_OID_PREFIX: [u8; 11] = [
        0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01,
    ];
    let head = &der[..der.len().min(32)];
    let at = head
        .windows(PKCS12_PBE_OID_PREFIX.len())
        .position(|w| w == PKCS12_PBE_OID_PREFIX)?;
    match head.get(at + PKCS12_PBE_OID_PREFIX.len())? {
        1 => Some("pbeWithSHAAnd128BitRC4"),
        2 => Some("pbeWithSHAAnd40BitRC4"),
        3 => Some("pbeWithSHAAnd3-KeyTripleDES-CBC"),
        4 => Some("pbeWithSHAAnd2-KeyTripleDES-CBC"),
        5 => Some("pbeWithSHAAnd128BitRC2-CBC"),
        6 => Some("pbeWithSHAAnd40BitRC2-CBC"),
        _ => None,
    }
}

/// pki-types' Display shows markers as byte arrays; say it in text.
pub(crate) fn describe_pem_error(e: &pki_pem::Error) -> String {
    match e {
        pki_pem::Error::MissingSectionEnd { end_marker } => {
            // pki-types stores only the label of the marker it was looking for.
            format!(
                "missing the line -----END {}-----",
                String::from_utf8_lossy(end_marker)
            )
        }
        pki_pem::Error::IllegalSectionStart { line } => {
            format!("malformed line {}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_fixture(text: &str, pass: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsError> {
        let secret = pass.map(|p| Secret::new(p.to_string()));
        parse(
            "--tls-key",
            Path::new("k.pem"),
            text.as_bytes(),
            secret.as_ref(),
        )
    }

    #[test]
    fn all_encodings_of_the_rsa_key_give_the_same_kind_of_key() {
        let pkcs1 = include_str!("../../fixtures/client-rsa.pkcs1.key");
        let legacy = include_str!("../../fixtures/client-rsa.legacy-enc.key");
        let des3 = include_str!("../../fixtures/client-rsa.des3-enc.key");
        let plain = parse_fixture(pkcs1, None).unwrap();
        assert_eq!(parse_fixture(legacy, Some("fixture-pass")).unwrap(), plain);
        assert_eq!(parse_fixture(des3, Some("fixture-pass")).unwrap(), plain);

        let pkcs8 = parse_fixture(include_str!("../../fixtures/client-rsa.key"), None).unwrap();
        let enc = include_str!("../../fixtures/client-rsa.enc.key");
        assert_eq!(parse_fixture(enc, Some("fixture-pass")).unwrap(), pkcs8);
    }

    #[test]
    fn encrypted_keys_without_passphrase_ask_for_one() {
        for text in [
            include_str!("../../fixtures/client-rsa.enc.key"),
            include_str!("../../fixtures/client-rsa.legacy-enc.key"),
        ] {
            let err = parse_fixture(text, None).unwrap_err();
            assert!(matches!(err, TlsError::PassphraseRequired { .. }), "{err}");
        }
    }

    #[test]
    fn pbe_sha1_3des_is_unsupported_with_advice() {
        let text = include_str!("../../fixtures/client-rsa.v1-3des-enc.key");
        let err = parse_fixture(text, Some("fixture-pass")).unwrap_err();
        assert!(
            matches!(err, TlsError::UnsupportedKeyEncryption { .. }),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("openssl pkcs8 -topk8 -v2 aes-256-cbc -in k.pem"));
    }

    #[test]
    fn certificate_in_key_file_is_no_private_key() {
        let text = include_str!("../../fixtures/client-rsa.crt");
        let err = parse_fixture(text, None).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    }
}
