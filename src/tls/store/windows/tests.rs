//! The Windows store source against a store the test fills, and its signer on keys the test
//! imports into the Microsoft Software Key Storage Provider. Runs under wine (`make test-cross`)
//! and on the native Windows CI job; what wine's CNG cannot do is named on the test that needs it.

use std::ptr;

use ring::signature::{self as sig, UnparsedPublicKey};
use rustls::SignatureScheme;
use rustls_cng::key::NCryptKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use windows_sys::Win32::Security::Cryptography::{
    BCryptBuffer, BCryptBufferDesc, CertAddEncodedCertificateToStore, CertControlStore,
    CertDeleteCertificateFromStore, CertFreeCertificateContext, CertOpenStore,
    CertSetCertificateContextProperty, NCryptDeleteKey, NCryptFinalizeKey, NCryptFreeObject,
    NCryptImportKey, NCryptOpenStorageProvider, BCRYPT_ECCKEY_BLOB, BCRYPT_ECCPRIVATE_BLOB,
    BCRYPT_ECDSA_PRIVATE_P256_MAGIC, BCRYPT_RSAKEY_BLOB, BCRYPT_RSAPRIVATE_BLOB,
    BCRYPT_RSAPRIVATE_MAGIC, CERT_CONTEXT, CERT_KEY_PROV_INFO_PROP_ID, CERT_STORE_ADD_ALWAYS,
    CERT_STORE_CTRL_COMMIT, CERT_STORE_PROV_MEMORY, CRYPT_KEY_PROV_INFO, MS_KEY_STORAGE_PROVIDER,
    NCRYPTBUFFER_PKCS_KEY_NAME, NCRYPTBUFFER_VERSION, NCRYPT_DO_NOT_FINALIZE_FLAG,
    NCRYPT_KEY_HANDLE, NCRYPT_OVERWRITE_KEY_FLAG, NCRYPT_PKCS8_PRIVATE_KEY_BLOB,
    NCRYPT_PROV_HANDLE, X509_ASN_ENCODING,
};

use super::*;
use crate::tls::certificate_key;

const CLIENT_RSA: &str = include_str!("../../../../fixtures/client-rsa.crt");
const CLIENT_RSA_KEY: &str = include_str!("../../../../fixtures/client-rsa.pkcs1.key");
const CLIENT_RSA_PKCS8: &str = include_str!("../../../../fixtures/client-rsa.key");
const CLIENT_EC: &str = include_str!("../../../../fixtures/client-ec.crt");
const CLIENT_EC_KEY: &str = include_str!("../../../../fixtures/client-ec.key");
const CLIENT_CHAIN: &str = include_str!("../../../../fixtures/client-chain.crt");
const INTERMEDIATE: &str = include_str!("../../../../fixtures/intermediate-ca.crt");
const CA: &str = include_str!("../../../../fixtures/ca.crt");

/// `openssl x509 -noout -fingerprint -sha1` of the fixtures, without the colons.
const RSA_THUMBPRINT: &str = "A748F56D0FB487C7EF88DDC5C9A77FA3C0F653F1";
const EC_THUMBPRINT: &str = "E405FB319175E2A81131E20A053FBAD6ECD7679A";
const CHAIN_THUMBPRINT: &str = "207748B149AABF7C0C890897A9559E8EF9A7B212";

const SOFTWARE_KSP: &str = "Microsoft Software Key Storage Provider";

fn cert(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// A fresh in-memory store, as a `windows:user` source.
fn memory_store() -> WindowsStore {
    // SAFETY: the memory provider takes no parameter.
    let handle = unsafe { CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, ptr::null()) };
    assert!(!handle.is_null(), "{}", std::io::Error::last_os_error());
    WindowsStore::new(StoreHandle(handle), "CurrentUser\\My", "user", false)
}

/// Adds `der` to the store; with `key`, links it to that key container of the software KSP, the
/// way an import with its private key does (`CERT_KEY_PROV_INFO_PROP_ID`).
fn add(store: &WindowsStore, der: &[u8], key: Option<&str>) {
    let mut ctx: *mut CERT_CONTEXT = ptr::null_mut();
    // SAFETY: `der` is a whole certificate; the returned context is freed below.
    let added = unsafe {
        CertAddEncodedCertificateToStore(
            store.handle.0,
            X509_ASN_ENCODING,
            der.as_ptr(),
            der.len() as u32,
            CERT_STORE_ADD_ALWAYS,
            &mut ctx,
        )
    };
    assert_ne!(added, 0, "{}", std::io::Error::last_os_error());
    if let Some(container) = key {
        let mut container = wide(container);
        let mut provider = wide(SOFTWARE_KSP);
        let info = CRYPT_KEY_PROV_INFO {
            pwszContainerName: container.as_mut_ptr(),
            pwszProvName: provider.as_mut_ptr(),
            dwProvType: 0, // a CNG key storage provider
            dwFlags: 0,
            cProvParam: 0,
            rgProvParam: ptr::null_mut(),
            dwKeySpec: 0,
        };
        // SAFETY: Windows copies the structure and its strings into the store.
        let set = unsafe {
            CertSetCertificateContextProperty(
                ctx,
                CERT_KEY_PROV_INFO_PROP_ID,
                0,
                ptr::from_ref(&info).cast(),
            )
        };
        assert_ne!(set, 0, "{}", std::io::Error::last_os_error());
    }
    // SAFETY: the context returned by the add call, released once.
    unsafe { CertFreeCertificateContext(ctx) };
}

#[test]
fn lists_every_store_identity_with_a_key_and_its_thumbprint_selector() {
    let store = memory_store();
    add(&store, cert(CA).as_ref(), None);
    add(&store, cert(INTERMEDIATE).as_ref(), None);
    add(&store, cert(CLIENT_RSA).as_ref(), Some("mcp-test-rsa"));
    add(&store, cert(CLIENT_EC).as_ref(), Some("mcp-test-ec"));
    add(&store, cert(CLIENT_CHAIN).as_ref(), Some("mcp-test-chain"));

    // The store's order is its own (wine's memory store lists the newest first): sorted here.
    let mut candidates = store.candidates().unwrap();
    candidates.sort_by(|a, b| a.selector.cmp(&b.selector));
    let selectors: Vec<&str> = candidates.iter().map(|c| c.selector.as_str()).collect();
    assert_eq!(
        selectors,
        [
            format!("windows:user;sha1={CHAIN_THUMBPRINT}"),
            format!("windows:user;sha1={RSA_THUMBPRINT}"),
            format!("windows:user;sha1={EC_THUMBPRINT}"),
        ],
        "the CA certificates have no key and are not identities"
    );
    for candidate in &candidates {
        assert_eq!(
            candidate.key_location,
            format!("Windows CNG: {SOFTWARE_KSP}")
        );
    }
    assert_eq!(
        candidates[1].chain,
        [cert(CLIENT_RSA)],
        "the self-signed root is left out"
    );
    assert_eq!(
        candidates[0].chain,
        [cert(CLIENT_CHAIN), cert(INTERMEDIATE)],
        "the intermediate comes from the store, the root is left out"
    );
    assert_eq!(store.describe(), "Windows store CurrentUser\\My");
}

/// `CurrentUser\\My` opened for writing, as a source (for [`add`]); the certificates added through
/// it are deleted on drop, so that a test leaves the user's store as it found it.
struct WritableUserStore {
    store: WindowsStore,
    added: Vec<CertificateDer<'static>>,
}

impl WritableUserStore {
    fn open() -> Self {
        let my = wide("My");
        // SAFETY: `my` is NUL-terminated and outlives the call.
        let handle = unsafe {
            CertOpenStore(
                CERT_STORE_PROV_SYSTEM_W,
                0,
                0,
                CERT_SYSTEM_STORE_CURRENT_USER,
                my.as_ptr().cast(),
            )
        };
        assert!(!handle.is_null(), "{}", std::io::Error::last_os_error());
        Self {
            store: WindowsStore::new(StoreHandle(handle), "CurrentUser\\My", "user", false),
            added: Vec::new(),
        }
    }

    fn add(&mut self, der: CertificateDer<'static>, key: &str) {
        add(&self.store, der.as_ref(), Some(key));
        self.added.push(der);
        // Windows writes a system store at once; wine only on close or on this commit.
        // SAFETY: a store handle of ours; the commit takes no parameter.
        let committed = unsafe {
            CertControlStore(self.store.handle.0, 0, CERT_STORE_CTRL_COMMIT, ptr::null())
        };
        assert_ne!(committed, 0, "{}", std::io::Error::last_os_error());
    }
}

impl Drop for WritableUserStore {
    fn drop(&mut self) {
        // Every copy (a run that crashed may have left one).
        for der in &self.added {
            loop {
                let mut found = None;
                self.store.for_each_cert(|ctx| {
                    if cert_der(ctx) == der.as_ref() {
                        // SAFETY: a second reference, consumed by the delete below.
                        found = Some(unsafe { CertDuplicateCertificateContext(ctx) });
                        return false;
                    }
                    true
                });
                let Some(ctx) = found else { break };
                // SAFETY: deletes the certificate and frees this context.
                unsafe { CertDeleteCertificateFromStore(ctx) };
            }
        }
        // SAFETY: as in `add`.
        unsafe { CertControlStore(self.store.handle.0, 0, CERT_STORE_CTRL_COMMIT, ptr::null()) };
    }
}

#[test]
fn the_user_store_lists_an_identity_enrolled_into_it() {
    let mut enrolled = WritableUserStore::open();
    enrolled.add(cert(CLIENT_EC), "mcp-secure-remote-test-enrolled-ec");
    let user = open("user").unwrap();
    let candidates = user.candidates().unwrap();
    let found = candidates
        .iter()
        .find(|c| c.selector == format!("windows:user;sha1={EC_THUMBPRINT}"))
        .unwrap_or_else(|| panic!("not listed: {candidates:?}"));
    assert_eq!(found.chain[0], cert(CLIENT_EC));
    assert_eq!(found.key_location, format!("Windows CNG: {SOFTWARE_KSP}"));
    drop(enrolled);
    let after = open("user").unwrap().candidates().unwrap();
    assert!(
        after.iter().all(|c| !c.selector.ends_with(EC_THUMBPRINT)),
        "the test's certificate was removed again"
    );
}

#[test]
fn a_certificate_gone_from_the_store_is_one_clear_error() {
    let store = memory_store();
    let gone = Candidate {
        chain: vec![cert(CLIENT_RSA)],
        selector: format!("windows:user;sha1={RSA_THUMBPRINT}"),
        key_location: format!("Windows CNG: {SOFTWARE_KSP}"),
    };
    let message = store.signing_key(&gone).err().unwrap().to_string();
    assert_eq!(
        message,
        format!(
            "Windows store CurrentUser\\My: the certificate {RSA_THUMBPRINT} is no longer in the \
             store; list the store again (mcp-secure-remote-client --list-identities)"
        )
    );
}

#[test]
fn opens_the_user_store_and_refuses_an_unknown_one() {
    let user = open("user").unwrap();
    assert_eq!(user.describe(), "Windows store CurrentUser\\My");
    user.candidates().unwrap();
    let message = open("roaming").err().unwrap().to_string();
    assert_eq!(
        message,
        "windows:roaming: unknown Windows store: use windows:user (CurrentUser\\My) or \
         windows:machine (LocalMachine\\My)"
    );
}

/// A key in the software KSP, deleted (when persisted) or freed on drop.
struct KspKey {
    provider: NCRYPT_PROV_HANDLE,
    key: NCRYPT_KEY_HANDLE,
    persisted: bool,
}

impl Drop for KspKey {
    fn drop(&mut self) {
        // SAFETY: handles from the import below, each released once.
        unsafe {
            if self.persisted {
                NCryptDeleteKey(self.key, 0);
            } else {
                NCryptFreeObject(self.key);
            }
            NCryptFreeObject(self.provider);
        }
    }
}

/// Imports a key blob into the software KSP: ephemeral, or persisted as `name` (Windows names a
/// key on import for PKCS#8 blobs).
fn import(blob_type: windows_sys::core::PCWSTR, blob: &[u8], name: Option<&str>) -> KspKey {
    let mut provider: NCRYPT_PROV_HANDLE = 0;
    // SAFETY: out-pointer valid for the call.
    let status = unsafe { NCryptOpenStorageProvider(&mut provider, MS_KEY_STORAGE_PROVIDER, 0) };
    assert_eq!(status, 0, "NCryptOpenStorageProvider: 0x{status:08X}");
    let mut name_w = wide(name.unwrap_or_default());
    let mut buffer = BCryptBuffer {
        cbBuffer: (name_w.len() * 2) as u32,
        BufferType: NCRYPTBUFFER_PKCS_KEY_NAME,
        pvBuffer: name_w.as_mut_ptr().cast(),
    };
    let params = BCryptBufferDesc {
        ulVersion: NCRYPTBUFFER_VERSION,
        cBuffers: 1,
        pBuffers: &mut buffer,
    };
    let mut key: NCRYPT_KEY_HANDLE = 0;
    // SAFETY: every pointer is valid for the call.
    let status = unsafe {
        NCryptImportKey(
            provider,
            0,
            blob_type,
            if name.is_some() { &params } else { ptr::null() },
            &mut key,
            blob.as_ptr(),
            blob.len() as u32,
            // A named key is finalized below, which persists it.
            if name.is_some() {
                NCRYPT_OVERWRITE_KEY_FLAG | NCRYPT_DO_NOT_FINALIZE_FLAG
            } else {
                0
            },
        )
    };
    assert_eq!(status, 0, "NCryptImportKey: 0x{status:08X}");
    if name.is_some() {
        // SAFETY: a key handle from the import.
        let status = unsafe { NCryptFinalizeKey(key, 0) };
        assert_eq!(status, 0, "NCryptFinalizeKey: 0x{status:08X}");
    }
    KspKey {
        provider,
        key,
        persisted: name.is_some(),
    }
}

/// The contents of the DER elements of a SEQUENCE (enough for the fixtures' RSA and EC keys).
fn der_elements(der: &[u8]) -> Vec<(u8, &[u8])> {
    fn element(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, header) = match input[1] {
            n if n < 0x80 => (n as usize, 2),
            0x81 => (input[2] as usize, 3),
            0x82 => (((input[2] as usize) << 8) | input[3] as usize, 4),
            n => panic!("DER length form 0x{n:02x}"),
        };
        (tag, &input[header..header + len], &input[header + len..])
    }
    let (_, mut body, _) = element(der);
    let mut out = Vec::new();
    while !body.is_empty() {
        let (tag, content, rest) = element(body);
        out.push((tag, content));
        body = rest;
    }
    out
}

fn unsigned(int: &[u8]) -> &[u8] {
    match int {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => int,
    }
}

/// `BCRYPT_RSAPRIVATE_BLOB` of the PKCS#1 fixture key: header, e, n, p, q (big-endian).
fn rsa_blob() -> Vec<u8> {
    let der = PrivatePkcs1KeyDer::from_pem_slice(CLIENT_RSA_KEY.as_bytes()).unwrap();
    let fields = der_elements(der.secret_pkcs1_der());
    let [n, e, p, q] = [1, 2, 4, 5].map(|i| unsigned(fields[i].1));
    let header = BCRYPT_RSAKEY_BLOB {
        Magic: BCRYPT_RSAPRIVATE_MAGIC,
        BitLength: (n.len() * 8) as u32,
        cbPublicExp: e.len() as u32,
        cbModulus: n.len() as u32,
        cbPrime1: p.len() as u32,
        cbPrime2: q.len() as u32,
    };
    let mut blob = Vec::new();
    for word in [
        header.Magic,
        header.BitLength,
        header.cbPublicExp,
        header.cbModulus,
        header.cbPrime1,
        header.cbPrime2,
    ] {
        blob.extend_from_slice(&word.to_le_bytes());
    }
    for part in [e, n, p, q] {
        blob.extend_from_slice(part);
    }
    blob
}

/// `BCRYPT_ECCPRIVATE_BLOB` of the SEC1 P-256 fixture key: header, X, Y, d.
fn ec_blob() -> Vec<u8> {
    let der = PrivateSec1KeyDer::from_pem_slice(CLIENT_EC_KEY.as_bytes()).unwrap();
    let fields = der_elements(der.secret_sec1_der());
    let d = fields[1].1;
    // [1] { BIT STRING 00 04 X Y }
    let public = der_elements_explicit(fields.iter().find(|(tag, _)| *tag == 0xa1).unwrap().1);
    let point = &public[2..]; // unused-bits byte, then 0x04
    let header = BCRYPT_ECCKEY_BLOB {
        dwMagic: BCRYPT_ECDSA_PRIVATE_P256_MAGIC,
        cbKey: 32,
    };
    let mut blob = Vec::new();
    blob.extend_from_slice(&header.dwMagic.to_le_bytes());
    blob.extend_from_slice(&header.cbKey.to_le_bytes());
    blob.extend_from_slice(&point[..64]);
    blob.extend_from_slice(d);
    blob
}

/// The content of the one element inside an explicit tag.
fn der_elements_explicit(content: &[u8]) -> &[u8] {
    let header = if content[1] < 0x80 { 2 } else { 3 };
    &content[header..]
}

/// Signs `message` with every scheme in `schemes` through [`signing_key_of`], and checks each
/// signature with ring against the certificate's public key.
fn signs_and_verifies(
    key: NCRYPT_KEY_HANDLE,
    leaf: &CertificateDer<'_>,
    schemes: &[SignatureScheme],
) {
    // Borrowed: the test's KspKey frees the handle.
    let signing = signing_key_of(NCryptKey::new_borrowed(key), "TEST").unwrap();
    let (_, public_key) = certificate_key(leaf).unwrap();
    let message = b"the handshake transcript signed inside CNG";
    for &scheme in schemes {
        let signer = signing.choose_scheme(&[scheme]).unwrap();
        assert_eq!(signer.scheme(), scheme);
        let signature = signer.sign(message).unwrap();
        let algorithm: &dyn sig::VerificationAlgorithm = match scheme {
            SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
            SignatureScheme::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
            SignatureScheme::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
            other => panic!("no verifier for {other:?}"),
        };
        UnparsedPublicKey::new(algorithm, &public_key)
            .verify(message, &signature)
            .unwrap_or_else(|_| panic!("{scheme:?}: the CNG signature does not verify"));
    }
    assert!(
        signing.choose_scheme(&[SignatureScheme::ED25519]).is_none(),
        "a scheme the key cannot make is not offered"
    );
}

#[test]
fn signs_with_an_rsa_cng_key_pkcs1_and_pss_verified_by_ring() {
    let key = import(BCRYPT_RSAPRIVATE_BLOB, &rsa_blob(), None);
    signs_and_verifies(
        key.key,
        &cert(CLIENT_RSA),
        &[
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA512,
        ],
    );
}

#[test]
#[ignore = "wine: its ncrypt refuses an ECCPRIVATEBLOB (NCryptImportKey answers \
            NTE_INVALID_PARAMETER 0x80090027); runs with --include-ignored on the native Windows CI job"]
fn signs_with_an_ecdsa_p256_cng_key_verified_by_ring() {
    let key = import(BCRYPT_ECCPRIVATE_BLOB, &ec_blob(), None);
    signs_and_verifies(
        key.key,
        &cert(CLIENT_EC),
        &[SignatureScheme::ECDSA_NISTP256_SHA256],
    );
}

#[test]
#[ignore = "wine: its ncrypt cannot persist a named key (NCryptImportKey of a PKCS#8 blob \
            with a key name answers NTE_NOT_SUPPORTED 0x80090029), so no store certificate has a \
            key CryptAcquireCertificatePrivateKey can hand back; runs with --include-ignored on \
            the native Windows CI job"]
fn the_key_of_a_store_certificate_signs_through_the_store() {
    let name = "mcp-secure-remote-test-rsa";
    let pkcs8 = PrivatePkcs8KeyDer::from_pem_slice(CLIENT_RSA_PKCS8.as_bytes()).unwrap();
    let _key = import(
        NCRYPT_PKCS8_PRIVATE_KEY_BLOB,
        pkcs8.secret_pkcs8_der(),
        Some(name),
    );
    let store = memory_store();
    add(&store, cert(CLIENT_RSA).as_ref(), Some(name));
    let candidates = store.candidates().unwrap();
    let signing = store.signing_key(&candidates[0]).unwrap();
    let (_, public_key) = certificate_key(&cert(CLIENT_RSA)).unwrap();
    let signer = signing
        .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
        .unwrap();
    let signature = signer.sign(b"m").unwrap();
    UnparsedPublicKey::new(&sig::RSA_PSS_2048_8192_SHA256, &public_key)
        .verify(b"m", &signature)
        .unwrap();
}

#[test]
fn a_store_certificate_whose_key_is_missing_says_to_import_it_again() {
    let store = memory_store();
    add(
        &store,
        cert(CLIENT_RSA).as_ref(),
        Some("mcp-secure-remote-test-no-such-key"),
    );
    let candidates = store.candidates().unwrap();
    let message = store.signing_key(&candidates[0]).err().unwrap().to_string();
    assert_eq!(
        message,
        format!(
            "Windows store CurrentUser\\My: the private key of certificate {RSA_THUMBPRINT} is \
             missing (Windows CNG: {SOFTWARE_KSP} has none for it: the certificate was imported \
             without its key, or the key was deleted); import the identity again"
        )
    );
}

#[test]
fn each_key_failure_says_what_to_do() {
    let leaf = cert(CLIENT_RSA);
    let ksp = format!("Windows CNG: {SOFTWARE_KSP}");
    let says = |code: u32, provider: &str| {
        acquire_failure(&CngError::WindowsError(code), Some(provider), leaf.as_ref())
    };
    assert_eq!(
        says(0x8010_000C, &ksp),
        format!("the key of certificate {RSA_THUMBPRINT} is on a smart card that is not inserted; insert it")
    );
    assert!(says(0x8010_006E, &ksp).contains("PIN prompt"));
    assert!(says(0x8009_0016, &ksp).contains(&format!("is missing ({ksp} has none")));
    assert!(says(0x8009_0010, &ksp).contains("Manage Private Keys"));
    assert!(says(5, &ksp).contains("Manage Private Keys"));
    let legacy = "Windows CryptoAPI: Microsoft Enhanced RSA and AES Cryptographic Provider";
    assert!(says(0x8009_0029, legacy).contains("certutil -importPFX -csp"));
    let other = says(0x8009_0029, &ksp);
    assert!(
        other.starts_with(&format!(
            "the private key of certificate {RSA_THUMBPRINT} cannot be opened (Windows error 0x80090029: "
        )),
        "{other}"
    );
}

#[test]
fn a_failed_signature_says_what_happened_to_the_key() {
    let says = |code: u32| sign_failure(&CngError::WindowsError(code), RSA_THUMBPRINT);
    assert_eq!(
        says(0x8010_0069),
        format!(
            "the smart card holding the key of certificate {RSA_THUMBPRINT} was removed; insert \
             it again"
        )
    );
    assert!(says(0x8010_006E).contains("PIN prompt"));
    assert!(says(0x8010_006B).contains("wrong PIN"));
    assert!(says(0x8009_0029).starts_with(&format!(
        "Windows CNG did not sign with the key of certificate {RSA_THUMBPRINT} (Windows error \
         0x80090029: "
    )));
}
