//! Decryption of legacy OpenSSL encrypted PEM keys (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`), as
//! written by `openssl rsa -aes256` / `openssl ec -des3` and many older tools.
//!
//! The format: the key is derived from the passphrase with OpenSSL's `EVP_BytesToKey` (MD5, one
//! round, salt = the first 8 bytes of the IV from `DEK-Info`), then the DER body is CBC-decrypted
//! with PKCS#7 padding. No crate implements it, hence these few lines.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::{block_padding::Pkcs7, BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use des::{Des, TdesEde3};
use md5::{Digest, Md5};

/// Why a legacy encrypted key could not be decrypted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LegacyPemError {
    /// `DEK-Info` names a cipher we do not implement (the name is given).
    UnsupportedCipher(String),
    /// `DEK-Info` is missing or its IV is not valid hex of the right length.
    BadDekInfo(String),
    /// Padding or structure is wrong after decryption: almost always a wrong passphrase.
    DecryptFailed,
}

/// The CBC-mode ciphers OpenSSL writes in `DEK-Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl Cipher {
    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Some(Self::Aes128),
            "AES-192-CBC" => Some(Self::Aes192),
            "AES-256-CBC" => Some(Self::Aes256),
            "DES-EDE3-CBC" => Some(Self::DesEde3),
            "DES-CBC" => Some(Self::Des),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 | Self::DesEde3 => 24,
            Self::Aes256 => 32,
            Self::Des => 8,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
            Self::DesEde3 | Self::Des => 8,
        }
    }
}

/// Decrypts the DER body of a legacy encrypted PEM key, given its `DEK-Info` header value
/// (`AES-256-CBC,<hex IV>`). Returns the plain DER (PKCS#1 or SEC1, as the PEM label says).
pub(crate) fn decrypt(
    dek_info: &str,
    ciphertext: &[u8],
    passphrase: &[u8],
) -> Result<Vec<u8>, LegacyPemError> {
    let (name, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| LegacyPemError::BadDekInfo(dek_info.to_string()))?;
    let cipher = Cipher::from_name(name.trim())
        .ok_or_else(|| LegacyPemError::UnsupportedCipher(name.trim().to_string()))?;
    let iv = decode_hex(iv_hex.trim())
        .filter(|iv| iv.len() == cipher.iv_len())
        .ok_or_else(|| LegacyPemError::BadDekInfo(dek_info.to_string()))?;
    let key = evp_bytes_to_key(passphrase, &iv[..8], cipher.key_len());

    let plain = match cipher {
        Cipher::Aes128 => cbc_decrypt::<Aes128>(&key, &iv, ciphertext),
        Cipher::Aes192 => cbc_decrypt::<Aes192>(&key, &iv, ciphertext),
        Cipher::Aes256 => cbc_decrypt::<Aes256>(&key, &iv, ciphertext),
        Cipher::DesEde3 => cbc_decrypt::<TdesEde3>(&key, &iv, ciphertext),
        Cipher::Des => cbc_decrypt::<Des>(&key, &iv, ciphertext),
    }
    .ok_or(LegacyPemError::DecryptFailed)?;

    // A wrong passphrase still yields valid padding about once in 256 tries; a DER SEQUENCE whose
    // length covers the whole buffer exactly makes that practically impossible to miss.
    if is_one_der_sequence(&plain) {
        Ok(plain)
    } else {
        Err(LegacyPemError::DecryptFailed)
    }
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>>
where
    C: BlockCipherDecrypt + KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .ok()
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration:
/// `D_1 = MD5(pass || salt)`, `D_i = MD5(D_{i-1} || pass || salt)`, key = first `len` bytes.
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut previous: Option<Vec<u8>> = None;
    while key.len() < len {
        let mut md5 = Md5::new();
        if let Some(previous) = &previous {
            md5.update(previous);
        }
        md5.update(passphrase);
        md5.update(salt);
        let digest = md5.finalize().to_vec();
        key.extend_from_slice(&digest);
        previous = Some(digest);
    }
    key.truncate(len);
    key
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// Whether `der` is exactly one DER SEQUENCE (tag 0x30 and a length that ends at the buffer's end).
fn is_one_der_sequence(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first_len)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (header_len, content_len) = if first_len < 0x80 {
        (2, usize::from(first_len))
    } else {
        let count = usize::from(first_len & 0x7f);
        if count == 0 || count > 4 || der.len() < 2 + count {
            return false;
        }
        let len = der[2..2 + count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + count, len)
    };
    header_len + content_len == der.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pem;

    const PASS: &[u8] = b"fixture-pass";

    fn plain_der(fixture_text: &str) -> Vec<u8> {
        pem::blocks(fixture_text).unwrap()[0].decode().unwrap()
    }

    fn decrypt_fixture(fixture_text: &str, pass: &[u8]) -> Result<Vec<u8>, LegacyPemError> {
        let blocks = pem::blocks(fixture_text).unwrap();
        let block = &blocks[0];
        assert_eq!(block.header("Proc-Type"), Some("4,ENCRYPTED"));
        decrypt(
            block.header("DEK-Info").unwrap(),
            &block.decode().unwrap(),
            pass,
        )
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl_enc() {
        // `openssl enc -aes-256-cbc -P -md md5 -S 0001020304050607 -pass pass:fixture-pass`
        let key = evp_bytes_to_key(PASS, &[0, 1, 2, 3, 4, 5, 6, 7], 32);
        assert_eq!(
            key,
            decode_hex("BCC423C19E3E5001B718CC8AAD6BAD6B0253FE1D18FFD96DAFD7EC2B5C81AA50").unwrap()
        );
    }

    #[test]
    fn decrypts_aes256_rsa_key_to_the_pkcs1_key() {
        let plain = decrypt_fixture(
            include_str!("../../fixtures/client-rsa.legacy-enc.key"),
            PASS,
        );
        let expected = plain_der(include_str!("../../fixtures/client-rsa.pkcs1.key"));
        assert_eq!(plain.unwrap(), expected);
    }

    #[test]
    fn decrypts_des_ede3_rsa_key_to_the_pkcs1_key() {
        let plain = decrypt_fixture(include_str!("../../fixtures/client-rsa.des3-enc.key"), PASS);
        let expected = plain_der(include_str!("../../fixtures/client-rsa.pkcs1.key"));
        assert_eq!(plain.unwrap(), expected);
    }

    #[test]
    fn decrypts_aes256_ec_key_to_the_sec1_key() {
        let plain = decrypt_fixture(
            include_str!("../../fixtures/client-ec.legacy-enc.key"),
            PASS,
        );
        let expected = plain_der(include_str!("../../fixtures/client-ec.key"));
        assert_eq!(plain.unwrap(), expected);
    }

    #[test]
    fn wrong_passphrase_is_decrypt_failed() {
        for fixture in [
            include_str!("../../fixtures/client-rsa.legacy-enc.key"),
            include_str!("../../fixtures/client-rsa.des3-enc.key"),
        ] {
            for wrong in [&b"wrong"[..], b"", b"fixture-pas"] {
                assert_eq!(
                    decrypt_fixture(fixture, wrong),
                    Err(LegacyPemError::DecryptFailed)
                );
            }
        }
    }

    #[test]
    fn rejects_unknown_cipher_and_bad_iv() {
        assert_eq!(
            decrypt(
                "AES-256-CFB,00112233445566778899AABBCCDDEEFF",
                &[0; 32],
                PASS
            ),
            Err(LegacyPemError::UnsupportedCipher("AES-256-CFB".into()))
        );
        assert!(matches!(
            decrypt("AES-256-CBC,0011", &[0; 32], PASS),
            Err(LegacyPemError::BadDekInfo(_))
        ));
        assert!(matches!(
            decrypt("AES-256-CBC", &[0; 32], PASS),
            Err(LegacyPemError::BadDekInfo(_))
        ));
    }

    #[test]
    fn der_sequence_check() {
        assert!(is_one_der_sequence(&[0x30, 0x01, 0x00]));
        assert!(!is_one_der_sequence(&[0x30, 0x02, 0x00]));
        assert!(!is_one_der_sequence(&[0x31, 0x01, 0x00]));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend([0u8; 256]);
        assert!(is_one_der_sequence(&long));
        assert!(!is_one_der_sequence(&[]));
    }
}
